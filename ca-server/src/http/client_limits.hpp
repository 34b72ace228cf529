#pragma once
// What one client address may make the server hold and do, so that one client (or one small
// group of addresses) cannot lock out everyone else: a cap on its open connections, checked when a
// connection is accepted (or, behind a PROXY-protocol balancer, once the header names the client),
// and a token bucket on its request rate. The address is the IP text the transport settled on.
#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace ca::http {

class ConnectionsPerClient;

// One open connection of a client, counted until it is destroyed. Empty (counts nothing) when
// default-constructed or moved from.
class ClientConnectionSlot {
 public:
  ClientConnectionSlot() = default;
  ~ClientConnectionSlot();
  ClientConnectionSlot(ClientConnectionSlot&& other) noexcept;
  ClientConnectionSlot& operator=(ClientConnectionSlot&& other) noexcept;
  ClientConnectionSlot(const ClientConnectionSlot&) = delete;
  ClientConnectionSlot& operator=(const ClientConnectionSlot&) = delete;
  explicit operator bool() const { return owner_ != nullptr; }

 private:
  friend class ConnectionsPerClient;
  ClientConnectionSlot(ConnectionsPerClient* owner, std::string address)
      : owner_(owner), address_(std::move(address)) {}
  ConnectionsPerClient* owner_ = nullptr;
  std::string address_;
};

// Thread-safe. Holds one entry per address with open connections: at most as many as the server
// has connections.
class ConnectionsPerClient {
 public:
  explicit ConnectionsPerClient(int max_per_client) : max_per_client_(max_per_client) {}
  ConnectionsPerClient(const ConnectionsPerClient&) = delete;
  ConnectionsPerClient& operator=(const ConnectionsPerClient&) = delete;

  // A slot if `address` has fewer than max_per_client connections open, else an empty one. The
  // slot must not outlive this object.
  ClientConnectionSlot try_open(std::string_view address);
  int open(std::string_view address) const;

 private:
  friend class ClientConnectionSlot;
  void release(const std::string& address);

  const int max_per_client_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, int> open_;
};

struct RequestRateOptions {
  double per_second = 0;             // sustained requests a second per client address; 0 = no limit
  double burst = 0;                  // the bucket's size: requests a client may send at once after a pause
  std::size_t max_clients = 100000;  // addresses tracked at once (full buckets are dropped first)
};

// A token bucket per client address. Time is passed in (the caller's clock), which keeps the
// arithmetic testable. Thread-safe.
class RequestRateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  explicit RequestRateLimiter(RequestRateOptions options) : options_(options) {}

  bool enabled() const { return options_.per_second > 0; }
  // Takes a token for one request of `address` at `now`: zero when allowed, else how long until
  // the next token (the Retry-After).
  std::chrono::milliseconds acquire(std::string_view address, Clock::time_point now);

 private:
  struct Bucket {
    double tokens = 0;
    Clock::time_point updated;
  };
  void forget_full_buckets(Clock::time_point now);

  const RequestRateOptions options_;
  std::mutex mutex_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace ca::http
