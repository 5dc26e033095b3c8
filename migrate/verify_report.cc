#include "migrate/verify_report.h"

#include <fmt/format.h>

#include <map>

#include "migrate/verify_chunk.h"

namespace cutover::migrate {
namespace {

int64_t intOf(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<int64_t>() : 0;
}

std::string keyText(const nlohmann::json& key) {
  std::string out = "(";
  for (size_t i = 0; i < key.size(); ++i) {
    if (i > 0) out += ", ";
    out += key[i].get<std::string>();
  }
  return out + ")";
}

std::string valueText(const nlohmann::json& v) { return v.is_null() ? "NULL" : v.get<std::string>(); }

std::string differenceLine(const nlohmann::json& d) {
  const std::string kind = d.value("kind", "");
  if (d.contains("detail")) {
    return fmt::format("{}: {}", kind == "missing_on_new" ? "missing on new" : "extra on new",
                       d["detail"].get<std::string>());
  }
  const std::string key = keyText(d["key"]);
  if (kind == "missing_on_new") return fmt::format("key {}: missing on new", key);
  if (kind == "extra_on_new") return fmt::format("key {}: extra on new", key);
  std::string columns;
  for (const auto& c : d["columns"]) {
    if (!columns.empty()) columns += "; ";
    columns += fmt::format("{} old {} new {}", c["column"].get<std::string>(), valueText(c["old"]),
                           valueText(c["new"]));
  }
  return fmt::format("key {}: {}", key, columns);
}

}  // namespace

bool VerifyReport::differs() const {
  if (!schema_differences.empty()) return true;
  for (const TableReport& t : tables) {
    if (t.differs()) return true;
  }
  for (const CheckReport& c : checks) {
    if (c.fails()) return true;
  }
  return false;
}

VerifyReport buildReport(const std::string& job_id, const nlohmann::json& schema_differences,
                         const std::vector<ChunkRecord>& chunks) {
  VerifyReport report;
  report.job_id = job_id;
  report.schema_differences = schema_differences.is_array() ? schema_differences : nlohmann::json::array();
  std::map<std::string, TableReport> tables;
  for (const ChunkRecord& c : chunks) {
    const nlohmann::json& r = c.result;
    if (c.task.kind == ChunkKind::Check) {
      report.checks.push_back(CheckReport{c.task.table.substr(std::string_view(kCheckPrefix).size()),
                                          r.value("equal", false), r.value("unsettled", false),
                                          r.value("old", nlohmann::json()),
                                          r.value("new", nlohmann::json())});
      continue;
    }
    TableReport& t = tables[c.task.table];
    t.table = c.task.table;
    switch (c.task.kind) {
      case ChunkKind::Multiset:
        t.has_key = false;
        [[fallthrough]];
      case ChunkKind::Range:
        ++t.chunks;
        t.rows_old += c.rows_old;
        t.rows_new += c.rows_new;
        t.differing_rows += intOf(r, "difference_count");
        t.transient += intOf(r, "transient");
        if (r.contains("differences")) {
          for (const auto& d : r["differences"]) t.differences.push_back(d);
        }
        break;
      case ChunkKind::Sample:
        t.sampled += intOf(r, "sampled");
        t.sample_differences += intOf(r, "difference_count");
        t.transient += intOf(r, "transient");
        if (r.contains("differences")) {
          for (const auto& d : r["differences"]) t.differences.push_back(d);
        }
        break;
      case ChunkKind::Aggregates:
        t.transient += intOf(r, "transient");
        if (r.contains("aggregates")) {
          for (const auto& a : r["aggregates"]) {
            if (!a.value("equal", true) && !a.value("unsettled", false)) t.aggregates.push_back(a);
          }
        }
        break;
      case ChunkKind::Check:
        break;
    }
  }
  for (auto& [name, t] : tables) report.tables.push_back(std::move(t));
  return report;
}

void printReport(const VerifyReport& report, std::ostream& out) {
  out << fmt::format("verify job {}\n", report.job_id);
  if (!report.schema_differences.empty()) {
    out << fmt::format("schema: {} difference(s)\n", report.schema_differences.size());
    for (const auto& d : report.schema_differences) {
      const std::string column = d.value("column", "");
      out << fmt::format("  {}{}: {}\n", d.value("table", ""), column.empty() ? "" : "." + column,
                         d.value("what", ""));
    }
  }
  int64_t differing_tables = 0, differing_rows = 0;
  for (const TableReport& t : report.tables) {
    const bool differs = t.differs();
    if (differs) ++differing_tables;
    differing_rows += t.differing_rows + t.sample_differences;
    std::string rows = t.rows_old == t.rows_new ? fmt::format("{} rows", t.rows_old)
                                                : fmt::format("rows old {}, new {}", t.rows_old, t.rows_new);
    std::string how = t.has_key ? fmt::format("{} chunk(s)", t.chunks) : "no primary key: count and multiset hash";
    std::string verdict = differs ? fmt::format("DIFFERS, {} differing row(s)", t.differing_rows + t.sample_differences)
                                  : "equal";
    if (t.transient > 0) verdict += fmt::format(" ({} transient)", t.transient);
    if (t.sampled > 0) verdict += fmt::format("; {} sampled", t.sampled);
    out << fmt::format("{}: {}, {}: {}\n", t.table, rows, how, verdict);
    for (size_t i = 0; i < t.differences.size() && i < kShownDifferences; ++i) {
      out << "  " << differenceLine(t.differences[i]) << "\n";
    }
    if (t.differences.size() > kShownDifferences) {
      out << fmt::format("  ... {} more (see --json)\n", t.differences.size() - kShownDifferences);
    }
    for (const auto& a : t.aggregates) {
      out << fmt::format("  aggregate {}: old {} new {}\n", a.value("name", ""), valueText(a["old"]),
                         valueText(a["new"]));
    }
  }
  int64_t failed_checks = 0;
  for (const CheckReport& c : report.checks) {
    if (c.fails()) ++failed_checks;
    std::string verdict = c.equal ? "equal"
                          : c.unsettled ? "unsettled (its results moved between reads)"
                                        : fmt::format("DIFFERS: old {} new {}", c.old_rows.dump(), c.new_rows.dump());
    out << fmt::format("check {}: {}\n", c.name, verdict);
  }
  if (!report.differs()) {
    out << fmt::format("result: equal ({} table(s), {} check(s))\n", report.tables.size(), report.checks.size());
  } else {
    out << fmt::format("result: differences ({} schema, {} table(s) with {} differing row(s), {} check(s))\n",
                       report.schema_differences.size(), differing_tables, differing_rows, failed_checks);
  }
}

nlohmann::json reportJson(const VerifyReport& report) {
  nlohmann::json tables = nlohmann::json::array();
  for (const TableReport& t : report.tables) {
    tables.push_back({{"table", t.table}, {"has_primary_key", t.has_key},
                      {"rows_old", t.rows_old}, {"rows_new", t.rows_new}, {"chunks", t.chunks},
                      {"differing_rows", t.differing_rows}, {"transient", t.transient},
                      {"sampled", t.sampled}, {"sample_differences", t.sample_differences},
                      {"differences", t.differences}, {"aggregate_differences", t.aggregates},
                      {"equal", !t.differs()}});
  }
  nlohmann::json checks = nlohmann::json::array();
  for (const CheckReport& c : report.checks) {
    checks.push_back({{"name", c.name}, {"equal", c.equal}, {"unsettled", c.unsettled},
                      {"old", c.old_rows}, {"new", c.new_rows}});
  }
  return {{"job", report.job_id}, {"result", report.verdict()},
          {"schema_differences", report.schema_differences}, {"tables", tables}, {"checks", checks}};
}

nlohmann::json reportSummary(const VerifyReport& report) {
  int64_t differing_tables = 0, rows = 0, failed_checks = 0;
  for (const TableReport& t : report.tables) {
    if (t.differs()) ++differing_tables;
    rows += t.rows_old;
  }
  for (const CheckReport& c : report.checks) failed_checks += c.fails() ? 1 : 0;
  return {{"result", report.verdict()}, {"tables", report.tables.size()},
          {"differing_tables", differing_tables}, {"rows", rows},
          {"schema_differences", report.schema_differences.size()},
          {"failed_checks", failed_checks}};
}

}  // namespace cutover::migrate
