#pragma once

// `cutover verify`: prove old and new hold the same data. Plans the job (schema differences,
// chunks of --chunk-rows keys per table, the extra chunks), shares its chunks with any other
// process of the same --job through the control database, and prints the verdict.

#include <ostream>

#include "migrate/verify_options.h"

namespace cutover::migrate {

// Exit status: 0 equal, 1 differences, 2 could not run (the reason on `err`).
int runVerify(const VerifyOptions& options, std::ostream& out, std::ostream& err);

}  // namespace cutover::migrate
