#pragma once
// Minimal structured-enough logging: "<UTC time> <level> <component>: message" on stderr.
#include <chrono>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace ca::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3 };

void set_level(Level level);
bool parse_level(std::string_view text, Level& out);
bool enabled(Level level);
void write(Level level, std::string_view component, std::string_view message);

// RFC 3339 in UTC with milliseconds, "2026-12-01T10:00:00.123Z": the time of log lines, access
// log and audit records.
std::string rfc3339_milliseconds(std::chrono::system_clock::time_point t);

template <typename... Args>
void debug(std::string_view component, fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::debug)) write(Level::debug, component, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void info(std::string_view component, fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::info)) write(Level::info, component, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void warn(std::string_view component, fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::warn)) write(Level::warn, component, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void error(std::string_view component, fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::error)) write(Level::error, component, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace ca::log
