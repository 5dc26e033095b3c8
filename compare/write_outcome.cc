#include "compare/write_outcome.h"

#include <algorithm>

#include <fmt/format.h>

#include "compare/divergence.h"
#include "compare/row_hash.h"

namespace cutover::compare {
namespace {

constexpr uint64_t kRowSeed = 0x5752495445524f57ull;   // "WRITEROW"

// A multiset hash (a sum of mixed row hashes): the order of an UPDATE's or DELETE's RETURNING
// rows follows each store's own physical layout, and is no difference in the data.
uint64_t fold(uint64_t digest, uint64_t row) { return digest + row_hash::mum(row, row_hash::kP1); }

}  // namespace

void WriteOutcome::addRow(std::span<const uint8_t> body) {
  digest = fold(digest, row_hash::bytes(body.data(), body.size(), kRowSeed));
  ++rows;
}

void WriteOutcome::addRowOfLength(size_t length) {
  digest = fold(digest, row_hash::word(length, kRowSeed));
  ++rows;
}

void WriteOutcome::addError(std::string_view sqlstate, std::string_view message) {
  if (failed) return;
  failed = true;
  error = fmt::format("{} {}", sqlstate, message);
}

void WriteOutcome::add(const WriteOutcome& later) {
  tags.insert(tags.end(), later.tags.begin(), later.tags.end());
  if (!failed && later.failed) {
    failed = true;
    error = later.error;
  }
}

std::string WriteOutcome::describe() const {
  std::string out;
  for (const auto& t : tags) {
    if (!out.empty()) out += "; ";
    out += t;
  }
  if (failed) {
    if (!out.empty()) out += "; ";
    out += "ERROR " + error;
  }
  if (rows > 0) out += fmt::format("; {} rows returned, digest {:016x}", rows, digest);
  return out.empty() ? "(no result)" : out;
}

std::string_view judgeWrite(const WriteOutcome& a, const WriteOutcome& b, const WriteJudgement& how) {
  if (a.failed != b.failed) return divergence_kind::kErrorOneSide;
  if ((!a.failed || how.tags_when_failed) && a.tags != b.tags) return divergence_kind::kTagMismatch;
  // Same tags, different RETURNING rows. Expected for nondeterministic writes (serials, now(),
  // random()): counted as such, not as a divergence.
  if (how.compare_rows && !a.failed && !how.nondeterministic && (a.rows != b.rows || a.digest != b.digest)) {
    return divergence_kind::kReturningMismatch;
  }
  return {};
}

size_t firstDifference(const WriteOutcome& a, const WriteOutcome& b) {
  const size_t common = std::min(a.tags.size(), b.tags.size());
  for (size_t i = 0; i < common; ++i) {
    if (a.tags[i] != b.tags[i]) return i;
  }
  if (a.failed != b.failed || a.tags.size() != b.tags.size()) return common;   // where one side stopped
  return std::string::npos;
}

}  // namespace cutover::compare
