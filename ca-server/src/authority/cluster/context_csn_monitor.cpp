#include "authority/cluster/context_csn_monitor.hpp"

#include <ctime>

#include <fmt/format.h>

#include "core/log.hpp"
#include "core/time_text.hpp"

namespace ca::authority {

namespace {
constexpr std::string_view kLog = "replication";
}  // namespace

Result<std::chrono::system_clock::time_point> csn_time(std::string_view csn) {
  const auto bad = [&] {
    return fail(Error::bad_request(fmt::format("'{}' is not a CSN (YYYYmmddHHMMSS.ffffffZ#...)", csn.substr(0, 64))));
  };
  // 20261123163001.123456Z#000000#001#000000
  if (csn.size() < 22 || csn[14] != '.' || csn[21] != 'Z' || (csn.size() > 22 && csn[22] != '#')) return bad();
  int fields[6];
  const int widths[6] = {4, 2, 2, 2, 2, 2};
  std::size_t pos = 0;
  for (int i = 0; i < 6; ++i) {
    int value = 0;
    for (int k = 0; k < widths[i]; ++k, ++pos) {
      if (csn[pos] < '0' || csn[pos] > '9') return bad();
      value = value * 10 + (csn[pos] - '0');
    }
    fields[i] = value;
  }
  long micros = 0;
  for (std::size_t i = 15; i < 21; ++i) {
    if (csn[i] < '0' || csn[i] > '9') return bad();
    micros = micros * 10 + (csn[i] - '0');
  }
  if (fields[1] < 1 || fields[1] > 12 || fields[2] < 1 || fields[2] > 31 || fields[3] > 23 || fields[4] > 59 ||
      fields[5] > 60)
    return bad();
  std::tm tm{};
  tm.tm_year = fields[0] - 1900;
  tm.tm_mon = fields[1] - 1;
  tm.tm_mday = fields[2];
  tm.tm_hour = fields[3];
  tm.tm_min = fields[4];
  tm.tm_sec = fields[5];
  return from_utc_tm(tm) + std::chrono::microseconds(micros);
}

ContextCsnMonitor::ContextCsnMonitor(Reader read, std::chrono::milliseconds interval)
    : read_(std::move(read)), interval_(interval) {}

ContextCsnMonitor::~ContextCsnMonitor() { stop(); }

void ContextCsnMonitor::start() {
  std::lock_guard lock(mutex_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { loop(); });
}

void ContextCsnMonitor::stop() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ContextCsnMonitor::refresh() {
  auto csns = read_();
  if (!csns) {
    log::debug(kLog, "reading contextCSN failed: {}", csns.error().message);
    return;  // the previous figures stay, and their read_at says how old they are
  }
  std::map<int, std::chrono::system_clock::time_point> times;
  for (const auto& [sid, csn] : *csns) {
    if (auto t = csn_time(csn))
      times[sid] = *t;
    else
      log::debug(kLog, "{}", t.error().message);
  }
  std::lock_guard lock(mutex_);
  last_.csn_times = std::move(times);
  last_.read_at = std::chrono::steady_clock::now();
}

ContextCsnMonitor::Snapshot ContextCsnMonitor::snapshot() const {
  std::lock_guard lock(mutex_);
  return last_;
}

void ContextCsnMonitor::loop() {
  while (true) {
    refresh();
    std::unique_lock lock(mutex_);
    if (wake_.wait_for(lock, interval_, [this] { return stop_; })) return;
  }
}

}  // namespace ca::authority
