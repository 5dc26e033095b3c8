#pragma once

// One chunk of a table checked on both stores: the count and hash of its key range computed in
// each database at once; a differing range is bisected (split into kFanOut sub-ranges by the keys
// of the side with more rows) until at most leaf_rows rows, whose rows are then read and compared
// column by column. A differing row is re-read after compare.recheck.delay_ms, up to
// compare.recheck.attempts times, and confirmed only if it still differs (beside live writes a
// row read on one store a moment before the other can differ for that moment: transient).

#include <cstdint>
#include <vector>

#include "common/status.h"
#include "config/config.h"
#include "migrate/row_diff.h"
#include "migrate/store_pair.h"

namespace cutover::migrate {

struct ChunkOutcome {
  int64_t rows_old = 0, rows_new = 0;
  std::vector<RowDiff> differences;  // confirmed
  int64_t transient = 0;             // rows that differed once and then no longer
  int64_t ranges_checked = 0;        // checksum statements (1 when the chunk is equal)
};

class ChunkChecker {
 public:
  static constexpr int kFanOut = 8;

  ChunkChecker(StorePair& stores, const config::RecheckConfig& recheck, int64_t leaf_rows = 1000)
      : stores_(stores), recheck_(recheck), leaf_rows_(leaf_rows) {}

  Result<ChunkOutcome> checkRange(const TablePlan& plan, const KeyRange& range);
  // A table without a primary key: count and multiset hash; if they differ, the rows whose
  // number of copies differs (read grouped, so only for tables that fit in memory).
  Result<ChunkOutcome> checkMultiset(const TablePlan& plan);
  // Reads the rows with these keys on both stores and compares them (samples use it too).
  Result<std::vector<RowDiff>> compareKeys(const TablePlan& plan, const std::vector<KeyValues>& keys);
  // Re-reads outcome's differing rows after the recheck delay, up to recheck.attempts times;
  // rows that no longer differ move to outcome.transient.
  Status confirm(const TablePlan& plan, ChunkOutcome& outcome);

 private:
  Status visit(const TablePlan& plan, const KeyRange& range, int depth, ChunkOutcome& outcome);
  Status leaf(const TablePlan& plan, const KeyRange& range, ChunkOutcome& outcome);

  StorePair& stores_;
  config::RecheckConfig recheck_;
  int64_t leaf_rows_;
};

}  // namespace cutover::migrate
