#pragma once

#include <fmt/format.h>
#include <string>
#include <string_view>

namespace cutover::log {

enum class Level { Debug = 0, Info = 1, Warn = 2, Error = 3 };

void setLevel(Level level);
Level level();
bool parseLevel(std::string_view text, Level& out);
// One line to stderr: "2026-11-21T07:50:01.123Z level=info msg". Thread-safe (one write(2)).
void write(Level level, std::string_view message);

template <typename... Args>
void debug(fmt::format_string<Args...> fmt, Args&&... args) {
  if (level() <= Level::Debug) write(Level::Debug, fmt::format(fmt, std::forward<Args>(args)...));
}
template <typename... Args>
void info(fmt::format_string<Args...> fmt, Args&&... args) {
  if (level() <= Level::Info) write(Level::Info, fmt::format(fmt, std::forward<Args>(args)...));
}
template <typename... Args>
void warn(fmt::format_string<Args...> fmt, Args&&... args) {
  if (level() <= Level::Warn) write(Level::Warn, fmt::format(fmt, std::forward<Args>(args)...));
}
template <typename... Args>
void error(fmt::format_string<Args...> fmt, Args&&... args) {
  write(Level::Error, fmt::format(fmt, std::forward<Args>(args)...));
}

}  // namespace cutover::log
