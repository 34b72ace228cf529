#pragma once
// Refusals of unauthenticated callers, audited in aggregate: anyone can make the CA refuse a
// request, so one synced audit record per refusal would let one client fill the disk and keep the
// log's writer busy. Instead each refusal is counted under (event, reason, client address), and
// once per interval one `requests_refused` record lists the counts. Memory is bounded: at most
// max_keys distinct keys per interval; refusals beyond them are counted in one overflow total.
// Refusals of authenticated callers (a presented certificate, an agent) stay individual records.
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>

namespace ca::authority {

class AuditLog;

struct RefusalSummaryOptions {
  std::chrono::milliseconds interval{60000};
  std::size_t max_keys = 256;  // distinct (event, reason, address) counted per interval
};

class RefusalSummary {
 public:
  using Clock = std::chrono::steady_clock;
  // Writes to `log`, which must outlive this. With `background`, a thread of its own writes each
  // interval's record once the interval ends; without, the caller calls write_due().
  RefusalSummary(AuditLog& log, RefusalSummaryOptions options, bool background = true);
  // Writes what is counted.
  ~RefusalSummary();
  RefusalSummary(const RefusalSummary&) = delete;
  RefusalSummary& operator=(const RefusalSummary&) = delete;

  // Never blocks on the disk. Caller-supplied parts are cut short (caller_text).
  void count(std::string_view event, std::string_view reason, std::string_view client_address);
  // Writes the record if the interval that began with the first refusal counted has ended at `now`.
  void write_due(Clock::time_point now);
  // Writes the record for whatever is counted, if anything.
  void write_now();

 private:
  using Key = std::tuple<std::string, std::string, std::string>;  // event, reason, address
  void write_locked(std::unique_lock<std::mutex>& lock);

  AuditLog& log_;
  const RefusalSummaryOptions options_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::map<Key, uint64_t> counts_;
  uint64_t overflow_ = 0;  // refusals under keys beyond max_keys
  uint64_t total_ = 0;
  Clock::time_point interval_start_{};
  bool stopping_ = false;
  std::thread writer_;
};

}  // namespace ca::authority
