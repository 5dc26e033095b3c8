#include "migrate/chunk_checker.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <thread>

namespace cutover::migrate {
namespace {

// Bisection stops here whatever the counts (keys that cannot be split further).
constexpr int kMaxDepth = 16;
// A table without key whose differing rows are listed is read grouped up to this many rows.
constexpr int64_t kMaxMultisetRows = 1000000;

struct Checksum {
  int64_t rows = 0;
  std::string hash;
};

Checksum checksumOf(const pgclient::Reply& reply) {
  return Checksum{std::stoll(std::string(reply.value(0, 0))), std::string(reply.value(0, 1))};
}

}  // namespace

Result<ChunkOutcome> ChunkChecker::checkRange(const TablePlan& plan, const KeyRange& range) {
  ChunkOutcome outcome;
  if (Status s = visit(plan, range, 0, outcome); !s) return s;
  if (Status s = confirm(plan, outcome); !s) return s;
  return outcome;
}

Status ChunkChecker::visit(const TablePlan& plan, const KeyRange& range, int depth,
                           ChunkOutcome& outcome) {
  auto sums = stores_.both(checksumSql(plan, range));
  if (!sums) return sums.status();
  ++outcome.ranges_checked;
  const Checksum o = checksumOf(sums->old_reply), n = checksumOf(sums->new_reply);
  if (depth == 0) {
    outcome.rows_old = o.rows;
    outcome.rows_new = n.rows;
  }
  if (o.rows == n.rows && o.hash == n.hash) return Status::ok();
  const int64_t most = std::max(o.rows, n.rows);
  if (most <= leaf_rows_ || depth >= kMaxDepth) return leaf(plan, range, outcome);
  const bool split_on_old = o.rows >= n.rows;
  const long step = static_cast<long>((most + kFanOut - 1) / kFanOut);
  auto ends = stores_.one(split_on_old, boundariesSql(plan, range, step));
  if (!ends) return ends.status();
  std::vector<KeyedRow> keys;
  for (int r = 0; r < ends->rows(); ++r) {
    KeyValues key;
    for (int c = 0; c < ends->columns(); ++c) key.emplace_back(ends->value(r, c));
    keys.push_back({std::move(key), {}});
  }
  if (keys.empty()) return leaf(plan, range, outcome);
  std::optional<KeyValues> lo = range.lo;
  for (size_t i = 0; i <= keys.size(); ++i) {
    KeyRange sub{lo, i < keys.size() ? std::optional<KeyValues>(keys[i].key) : range.hi};
    if (i == keys.size() && sub.lo == range.hi && range.hi) break;  // the last end was hi itself
    if (Status s = visit(plan, sub, depth + 1, outcome); !s) return s;
    lo = sub.hi;
  }
  return Status::ok();
}

Status ChunkChecker::leaf(const TablePlan& plan, const KeyRange& range, ChunkOutcome& outcome) {
  auto rows = stores_.both(rowsSql(plan, range));
  if (!rows) return rows.status();
  std::vector<RowDiff> found =
      diffRows(plan, keyedRows(plan, rows->old_reply), keyedRows(plan, rows->new_reply));
  for (RowDiff& d : found) outcome.differences.push_back(std::move(d));
  return Status::ok();
}

Result<std::vector<RowDiff>> ChunkChecker::compareKeys(const TablePlan& plan,
                                                       const std::vector<KeyValues>& keys) {
  if (keys.empty()) return std::vector<RowDiff>{};
  auto rows = stores_.both(rowsByKeySql(plan, keys));
  if (!rows) return rows.status();
  return diffRows(plan, keyedRows(plan, rows->old_reply), keyedRows(plan, rows->new_reply));
}

Status ChunkChecker::confirm(const TablePlan& plan, ChunkOutcome& outcome) {
  for (int attempt = 0; attempt < recheck_.attempts && !outcome.differences.empty(); ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(recheck_.delay_ms));
    std::vector<KeyValues> keys;
    for (const RowDiff& d : outcome.differences) keys.push_back(d.key);
    // Bounded statements: at most 1000 keys per read.
    std::vector<RowDiff> still;
    for (size_t first = 0; first < keys.size(); first += 1000) {
      std::vector<KeyValues> part(keys.begin() + static_cast<long>(first),
                                  keys.begin() + static_cast<long>(std::min(keys.size(), first + 1000)));
      auto again = compareKeys(plan, part);
      if (!again) return again.status();
      for (RowDiff& d : *again) still.push_back(std::move(d));
    }
    outcome.transient += static_cast<int64_t>(outcome.differences.size() - still.size());
    outcome.differences = std::move(still);
  }
  return Status::ok();
}

Result<ChunkOutcome> ChunkChecker::checkMultiset(const TablePlan& plan) {
  ChunkOutcome outcome;
  Checksum o, n;
  // Without a key no row can be re-read alone: the whole table is, after the recheck delay.
  for (int attempt = 0;; ++attempt) {
    auto sums = stores_.both(multisetSql(plan));
    if (!sums) return sums.status();
    ++outcome.ranges_checked;
    o = checksumOf(sums->old_reply);
    n = checksumOf(sums->new_reply);
    outcome.rows_old = o.rows;
    outcome.rows_new = n.rows;
    if (o.rows == n.rows && o.hash == n.hash) {
      if (attempt > 0) outcome.transient = 1;
      return outcome;
    }
    if (attempt >= recheck_.attempts) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(recheck_.delay_ms));
  }
  if (std::max(o.rows, n.rows) > kMaxMultisetRows) {
    outcome.differences.push_back(
        {{}, o.rows >= n.rows ? RowDiffKind::MissingOnNew : RowDiffKind::ExtraOnNew, {},
         fmt::format("old {} rows, new {}; the multiset hashes differ (too many rows to list)",
                     o.rows, n.rows)});
    return outcome;
  }
  auto groups = stores_.both(multisetRowsSql(plan));
  if (!groups) return groups.status();
  std::map<std::string, std::pair<int64_t, int64_t>> copies;
  for (int r = 0; r < groups->old_reply.rows(); ++r) {
    copies[std::string(groups->old_reply.value(r, 0))].first =
        std::stoll(std::string(groups->old_reply.value(r, 1)));
  }
  for (int r = 0; r < groups->new_reply.rows(); ++r) {
    copies[std::string(groups->new_reply.value(r, 0))].second =
        std::stoll(std::string(groups->new_reply.value(r, 1)));
  }
  for (const auto& [row, count] : copies) {
    if (count.first == count.second) continue;
    const std::string shown = *compare::shownValue(row, plan.rules.log_values);
    outcome.differences.push_back(
        {{}, count.first > count.second ? RowDiffKind::MissingOnNew : RowDiffKind::ExtraOnNew, {},
         fmt::format("copies: old {}, new {}; row {}", count.first, count.second, shown)});
  }
  return outcome;
}

}  // namespace cutover::migrate
