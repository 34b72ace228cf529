#include "core/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

#include "core/time_text.hpp"

namespace ca::log {
namespace {
std::atomic<int> g_level{static_cast<int>(Level::info)};
std::mutex g_mutex;
constexpr const char* kNames[] = {"DEBUG", "INFO", "WARN", "ERROR"};
}  // namespace

void set_level(Level level) { g_level = static_cast<int>(level); }

bool parse_level(std::string_view text, Level& out) {
  if (text == "debug")
    out = Level::debug;
  else if (text == "info")
    out = Level::info;
  else if (text == "warn")
    out = Level::warn;
  else if (text == "error")
    out = Level::error;
  else
    return false;
  return true;
}

bool enabled(Level level) { return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed); }

std::string rfc3339_milliseconds(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const auto since_epoch = duration_cast<milliseconds>(t.time_since_epoch());
  const auto whole = floor<seconds>(since_epoch);
  char millis[8];
  std::snprintf(millis, sizeof millis, ".%03dZ", static_cast<int>((since_epoch - whole).count()));
  return utc_text(TimePoint(whole), "%Y-%m-%dT%H:%M:%S") + millis;
}

void write(Level level, std::string_view component, std::string_view message) {
  const std::string ts = rfc3339_milliseconds(std::chrono::system_clock::now());
  std::lock_guard lock(g_mutex);
  std::fprintf(stderr, "%s %-5s %.*s: %.*s\n", ts.c_str(), kNames[static_cast<int>(level)],
               static_cast<int>(component.size()), component.data(), static_cast<int>(message.size()), message.data());
}

}  // namespace ca::log
