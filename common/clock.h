#pragma once

#include <string>

namespace cutover {

// The current time as RFC 3339 UTC with milliseconds, "2026-11-21T07:50:01.123Z" (logs, journals,
// flag snapshots all stamp time this way).
std::string nowRfc3339Ms();

}  // namespace cutover
