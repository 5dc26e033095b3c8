#pragma once

// A finished verify job's verdict, built from its chunk results in the control database: the
// human summary per table and the --json document.

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "migrate/verify_job.h"

namespace cutover::migrate {

struct TableReport {
  std::string table;
  bool has_key = true;
  int64_t rows_old = 0, rows_new = 0, chunks = 0;
  int64_t differing_rows = 0, transient = 0;
  nlohmann::json differences = nlohmann::json::array();  // the first ones, with keys and columns
  int64_t sampled = 0, sample_differences = 0;
  nlohmann::json aggregates = nlohmann::json::array();   // only the differing ones
  bool differs() const {
    return differing_rows > 0 || sample_differences > 0 || !aggregates.empty();
  }
};

struct CheckReport {
  std::string name;
  bool equal = true;
  bool unsettled = false;  // differed, but its results moved between reads (live writes)
  bool fails() const { return !equal && !unsettled; }
  nlohmann::json old_rows, new_rows;
};

struct VerifyReport {
  std::string job_id;
  nlohmann::json schema_differences = nlohmann::json::array();
  std::vector<TableReport> tables;
  std::vector<CheckReport> checks;
  bool differs() const;
  // "equal" or "differences": the job's state in the control database.
  const char* verdict() const { return differs() ? "differences" : "equal"; }
};

// Differences listed per table in the human report (all are in --json, up to 100 per chunk).
inline constexpr size_t kShownDifferences = 10;

VerifyReport buildReport(const std::string& job_id, const nlohmann::json& schema_differences,
                         const std::vector<ChunkRecord>& chunks);

void printReport(const VerifyReport& report, std::ostream& out);
nlohmann::json reportJson(const VerifyReport& report);
// The job row's summary: counts only, for status output.
nlohmann::json reportSummary(const VerifyReport& report);

}  // namespace cutover::migrate
