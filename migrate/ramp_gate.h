#pragma once

// The read-ramp gate (DESIGN.md "Migration phases and gates"; config verify.require_for_ramp):
// with it on, a flag change that sends more reads to the new store — a higher global
// reads_new_percent, or a table's effective percent raised — is refused unless a verify proves
// the data it exposes equal, and recently. Lowering is never gated: a rollback must always work.
//
// Pure: the caller reads the verifies from the control database (VerifyJob::recent) and passes
// them in, newest first.

#include <cstdint>
#include <string>
#include <vector>

#include "flags/flag_snapshot.h"
#include "migrate/verify_job.h"

namespace cutover::migrate {

struct RampGateRules {
  int64_t max_age_s = 86400;  // verify.max_age_s: an older verify proves nothing about today
};

struct RampGateDecision {
  bool allowed = true;
  std::vector<std::string> raised;   // "reads_new_percent", "tables.orders.reads_new_percent", ...
  std::string reason;                // why refused: names the verify and what to run
};

// `recent`: finished verifies, newest first. A raise of the global percent needs the newest
// complete verify (no --table/--exclude) equal and younger than max_age_s, and no newer verify
// that found differences; a table's raise needs the newest verify that covered the table (a flag
// key without a schema covers any schema's table of that name) equal and young enough.
RampGateDecision rampGate(const flags::FlagSnapshot& before, const flags::FlagSnapshot& after,
                          const std::vector<LastVerify>& recent, const RampGateRules& rules);

}  // namespace cutover::migrate
