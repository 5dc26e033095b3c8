#pragma once

// One claimed chunk of a verify job run against both stores, its result as the JSON the job
// table keeps (verify_report.h reads it back): range and multiset chunks (chunk_checker.h),
// --sample rows, per-table aggregates and the declared checks of verify.checks.

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "config/config.h"
#include "migrate/chunk_checker.h"
#include "migrate/verify_job.h"

namespace cutover::migrate {

// Chunk numbers of a table's extra chunks (range chunks are 0, 1, ...).
inline constexpr int kSampleChunk = -2;
inline constexpr int kAggregatesChunk = -1;
// A check's chunk is named "check:<name>".
inline constexpr const char* kCheckPrefix = "check:";

struct ChunkResult {
  int64_t rows_old = 0, rows_new = 0;
  nlohmann::json result;
};

struct ChunkContext {
  const std::vector<TablePlan>& tables;
  const config::Config& config;
  int64_t sample = 0;
  bool show_values = false;
};

Result<ChunkResult> runChunk(const ChunkTask& task, const ChunkContext& context, StorePair& stores);

// A row difference as the job table and --json keep it.
nlohmann::json toJson(const RowDiff& diff);

// Runs a verify.checks query on both stores and compares the results cell by cell (the column
// types decide float tolerance and numeric scale); re-run after the recheck delay while they
// differ. Exposed for tests.
Result<nlohmann::json> runCheck(const config::VerifyCheck& check, const config::Config& config,
                                bool show_values, StorePair& stores);

}  // namespace cutover::migrate
