#pragma once

// `cutover verify` command line (DESIGN.md "Interfaces").

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace cutover::migrate {

struct VerifyOptions {
  std::string config_path;
  std::vector<std::string> tables;   // --table, repeatable; empty = every table
  std::vector<std::string> exclude;  // --exclude, repeatable
  int64_t sample = 0;                // --sample N random rows per table, compared field by field
  int64_t chunk_rows = 0;            // --chunk-rows; 0 = verify.chunk_rows
  int workers = 1;                   // --workers threads
  double max_rows_per_sec = 0;       // --max-rows-per-sec; 0 = unthrottled
  std::string json_path;             // --json FILE ("-" = stdout)
  std::string job_id;                // --job ID: resume or join; empty = a new job
  bool show_values = false;          // --show-values: differing values shown, not redacted
  int lease_s = 60;                  // --lease-s: how long a claimed chunk stays its process's
  bool quiet = false;                // --quiet: no progress output
};

inline constexpr const char* kVerifyUsage =
    "usage: cutover verify --config FILE [--table T]... [--exclude T]... [--sample N]\n"
    "                      [--chunk-rows N] [--workers N] [--max-rows-per-sec R] [--json FILE]\n"
    "                      [--job ID] [--show-values] [--lease-s S] [--quiet]\n"
    "exit status: 0 the stores hold the same data, 1 differences, 2 could not run\n";

// Errors read "cutover verify: <what>" without the usage text.
Result<VerifyOptions> parseVerifyArgs(const std::vector<std::string>& args);

}  // namespace cutover::migrate
