#include "core/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace ca::log {
namespace {
std::atomic<int> g_level{static_cast<int>(Level::info)};
std::mutex g_mutex;
constexpr const char* kNames[] = {"DEBUG", "INFO", "WARN", "ERROR"};
}  // namespace

void set_level(Level level) { g_level = static_cast<int>(level); }

bool parse_level(std::string_view text, Level& out) {
  if (text == "debug") out = Level::debug;
  else if (text == "info") out = Level::info;
  else if (text == "warn") out = Level::warn;
  else if (text == "error") out = Level::error;
  else return false;
  return true;
}

bool enabled(Level level) { return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed); }

std::string rfc3339_milliseconds(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const auto since_epoch = duration_cast<milliseconds>(t.time_since_epoch());
  const auto whole = floor<seconds>(since_epoch);
  const std::time_t secs = static_cast<std::time_t>(whole.count());
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char text[96];  // room for any int the format could print (the compiler checks)
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>((since_epoch - whole).count()));
  return text;
}

void write(Level level, std::string_view component, std::string_view message) {
  const std::string ts = rfc3339_milliseconds(std::chrono::system_clock::now());
  std::lock_guard lock(g_mutex);
  std::fprintf(stderr, "%s %-5s %.*s: %.*s\n", ts.c_str(), kNames[static_cast<int>(level)],
               static_cast<int>(component.size()), component.data(), static_cast<int>(message.size()),
               message.data());
}

}  // namespace ca::log
