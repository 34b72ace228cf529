#include "http/client_limits.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

namespace ca::http {

ClientConnectionSlot::~ClientConnectionSlot() {
  if (owner_) owner_->release(address_);
}

ClientConnectionSlot::ClientConnectionSlot(ClientConnectionSlot&& other) noexcept
    : owner_(std::exchange(other.owner_, nullptr)), address_(std::move(other.address_)) {}

ClientConnectionSlot& ClientConnectionSlot::operator=(ClientConnectionSlot&& other) noexcept {
  if (this != &other) {
    if (owner_) owner_->release(address_);
    owner_ = std::exchange(other.owner_, nullptr);
    address_ = std::move(other.address_);
  }
  return *this;
}

ClientConnectionSlot ConnectionsPerClient::try_open(std::string_view address) {
  std::lock_guard lock(mutex_);
  std::string key(address);
  auto [it, inserted] = open_.try_emplace(key, 0);
  if (it->second >= max_per_client_) return {};
  ++it->second;
  return ClientConnectionSlot(this, std::move(key));
}

int ConnectionsPerClient::open(std::string_view address) const {
  std::lock_guard lock(mutex_);
  auto it = open_.find(std::string(address));
  return it == open_.end() ? 0 : it->second;
}

void ConnectionsPerClient::release(const std::string& address) {
  std::lock_guard lock(mutex_);
  auto it = open_.find(address);
  if (it == open_.end()) return;
  if (--it->second <= 0) open_.erase(it);
}

std::chrono::milliseconds RequestRateLimiter::acquire(std::string_view address, Clock::time_point now) {
  if (!enabled()) return std::chrono::milliseconds(0);
  const double burst = std::max(1.0, options_.burst);
  std::lock_guard lock(mutex_);
  auto it = buckets_.find(std::string(address));
  if (it == buckets_.end()) {
    if (buckets_.size() >= options_.max_clients) forget_full_buckets(now);
    it = buckets_.emplace(std::string(address), Bucket{burst, now}).first;
  }
  auto& bucket = it->second;
  const double elapsed = std::chrono::duration<double>(now - bucket.updated).count();
  if (elapsed > 0) {
    bucket.tokens = std::min(burst, bucket.tokens + elapsed * options_.per_second);
    bucket.updated = now;
  }
  if (bucket.tokens >= 1.0) {
    bucket.tokens -= 1.0;
    return std::chrono::milliseconds(0);
  }
  const double wait_seconds = (1.0 - bucket.tokens) / options_.per_second;
  return std::chrono::milliseconds(std::max<int64_t>(1, static_cast<int64_t>(std::ceil(wait_seconds * 1000))));
}

// A full bucket says nothing a new one would not: dropping it loses no limit. If every tracked
// client is mid-burst (more than max_clients addresses busy at once), the table is cleared: a
// bounded memory matters more than the few requests that then pass unthrottled.
void RequestRateLimiter::forget_full_buckets(Clock::time_point now) {
  const double burst = std::max(1.0, options_.burst);
  std::erase_if(buckets_, [&](const auto& entry) {
    const double elapsed = std::chrono::duration<double>(now - entry.second.updated).count();
    return entry.second.tokens + elapsed * options_.per_second >= burst;
  });
  if (buckets_.size() >= options_.max_clients) buckets_.clear();
}

}  // namespace ca::http
