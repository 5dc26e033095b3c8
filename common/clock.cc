#include "common/clock.h"

#include <sys/time.h>
#include <time.h>

#include <fmt/format.h>

namespace cutover {

std::string nowRfc3339Ms() {
  timeval tv;
  gettimeofday(&tv, nullptr);
  tm utc;
  gmtime_r(&tv.tv_sec, &utc);
  char stamp[32];
  strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
  return fmt::format("{}.{:03d}Z", stamp, static_cast<int>(tv.tv_usec / 1000));
}

}  // namespace cutover
