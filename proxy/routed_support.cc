#include "proxy/routed_support.h"

#include <fmt/format.h>

namespace cutover::proxy {

bool journalText(std::string_view sql, std::string& out) {
  if (sql.size() <= kJournalTextBytes) {
    out.assign(sql);
    return false;
  }
  size_t keep = kJournalTextBytes;
  while (keep > 0 && (static_cast<unsigned char>(sql[keep]) & 0xC0) == 0x80) --keep;   // UTF-8 continuation
  out = fmt::format("{}… [statement of {} bytes, cut at {} in the journal]", sql.substr(0, keep), sql.size(), keep);
  return true;
}

metrics::StatementKindLabel kindLabel(router::StatementKind kind) {
  switch (kind) {
    case router::StatementKind::Read: return metrics::StatementKindLabel::Read;
    case router::StatementKind::Write: return metrics::StatementKindLabel::Write;
    case router::StatementKind::Ddl: return metrics::StatementKindLabel::Ddl;
    case router::StatementKind::Transaction: return metrics::StatementKindLabel::Transaction;
    case router::StatementKind::Session: return metrics::StatementKindLabel::Session;
  }
  return metrics::StatementKindLabel::Write;
}

router::FlagView viewOf(const flags::FlagSnapshot& f) {
  router::FlagView v;
  v.writes = f.writes;
  v.mirror = f.mirror;
  v.reads_new_percent = f.reads_new_percent;
  v.shadow_percent = f.shadow_percent;
  v.sticky = f.sticky;
  v.tables = &f.tables;
  return v;
}

}  // namespace cutover::proxy
