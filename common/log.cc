#include "common/log.h"

#include "common/clock.h"

#include <unistd.h>

#include <atomic>

namespace cutover::log {
namespace {
std::atomic<int> g_level{static_cast<int>(Level::Info)};
const char* kNames[] = {"debug", "info", "warn", "error"};
}  // namespace

void setLevel(Level l) { g_level.store(static_cast<int>(l), std::memory_order_relaxed); }
Level level() { return static_cast<Level>(g_level.load(std::memory_order_relaxed)); }

bool parseLevel(std::string_view text, Level& out) {
  for (int i = 0; i < 4; ++i) {
    if (text == kNames[i]) {
      out = static_cast<Level>(i);
      return true;
    }
  }
  return false;
}

void write(Level l, std::string_view message) {
  std::string line = fmt::format("{} level={} {}\n", nowRfc3339Ms(), kNames[static_cast<int>(l)], message);
  // One write(2) per line so lines from different workers never interleave.
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

}  // namespace cutover::log
