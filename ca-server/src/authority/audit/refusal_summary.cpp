#include "authority/audit/refusal_summary.hpp"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "authority/audit/audit_log.hpp"
#include "core/caller_text.hpp"

namespace ca::authority {

RefusalSummary::RefusalSummary(AuditLog& log, RefusalSummaryOptions options, bool background)
    : log_(log), options_(options) {
  if (!background) return;
  writer_ = std::thread([this] {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      if (total_ == 0) {
        wake_.wait(lock);
        continue;
      }
      const auto due = interval_start_ + options_.interval;
      if (Clock::now() >= due) {
        write_locked(lock);
        continue;
      }
      wake_.wait_until(lock, due);
    }
  });
}

RefusalSummary::~RefusalSummary() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (writer_.joinable()) writer_.join();
  write_now();
}

void RefusalSummary::count(std::string_view event, std::string_view reason, std::string_view client_address) {
  bool first = false;
  {
    std::lock_guard lock(mutex_);
    first = total_ == 0;
    if (first) interval_start_ = Clock::now();
    ++total_;
    Key key{std::string(event), caller_text(reason, 64), caller_text(client_address, 64)};
    if (auto it = counts_.find(key); it != counts_.end())
      ++it->second;
    else if (counts_.size() < options_.max_keys)
      counts_.emplace(std::move(key), 1);
    else
      ++overflow_;
  }
  if (first) wake_.notify_all();
}

void RefusalSummary::write_due(Clock::time_point now) {
  std::unique_lock lock(mutex_);
  if (total_ > 0 && now >= interval_start_ + options_.interval) write_locked(lock);
}

void RefusalSummary::write_now() {
  std::unique_lock lock(mutex_);
  if (total_ > 0) write_locked(lock);
}

// The counts are taken under the lock; the record is written (and synced) without it, so that
// count() never waits for the disk.
void RefusalSummary::write_locked(std::unique_lock<std::mutex>& lock) {
  auto counts = std::move(counts_);
  counts_.clear();
  const uint64_t overflow = std::exchange(overflow_, 0);
  const uint64_t total = std::exchange(total_, 0);
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - interval_start_).count();
  lock.unlock();
  std::string what;
  for (const auto& [key, n] : counts) {
    const auto& [event, reason, address] = key;
    if (!what.empty()) what += "; ";
    what += fmt::format("{} {} from {}: {}", event, reason, address, n);
  }
  if (overflow > 0)
    what += fmt::format("{}others (more than {} kinds): {}", what.empty() ? "" : "; ", options_.max_keys, overflow);
  log_.record("requests_refused", "unauthenticated callers", what,
              fmt::format("{} refused in {} s", total, std::max<int64_t>(seconds, 0)));
  lock.lock();
}

}  // namespace ca::authority
