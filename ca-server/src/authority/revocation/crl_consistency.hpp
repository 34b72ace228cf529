#pragma once
// Whether the CRLs this instance serves agree with the cluster's, for /readyz and /metrics:
// - behind: the number served here is below the newest one stored in this directory or served by
//   a peer. A push takes a moment, so it turns the instance not ready only once it lasted longer
//   than `behind_bound` (relying parties behind the balancer would see numbers go down).
// - epochs (advisory): two epochs publishing (the directory held a CRL below the one served or
//   published here) or a CRL lease whose epoch went down. Every instance sees such a condition
//   alike and none of them serves the lower CRL, so it is reported, not acted on: for
//   `advisory_window` after it was last seen.
// The judging runs on the readiness thread; the counters are read by /metrics.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>

#include "core/error.hpp"

namespace ca::authority {

class CrlConsistency {
 public:
  using Clock = std::chrono::steady_clock;
  struct Options {
    std::chrono::milliseconds behind_bound{3000};
    std::chrono::milliseconds advisory_window{60000};
  };
  explicit CrlConsistency(Options options) : options_(options) {}

  // served: the newest number served here (full or delta); newest: the newest stored here or
  // served by a peer.
  [[nodiscard]] Status judge_served(uint64_t served, uint64_t newest, Clock::time_point now);
  // lease_regressions: the election's count of lease reads below a seen epoch; older_stored_at:
  // when the publisher last found the directory holding a CRL below its own.
  [[nodiscard]] Status judge_epochs(uint64_t lease_regressions, std::optional<Clock::time_point> older_stored_at,
                                    Clock::time_point now);
  // Times this instance turned not ready for serving a CRL below the newest (one per episode).
  uint64_t behind_episodes() const { return behind_episodes_.load(); }

 private:
  Options options_;
  std::mutex mutex_;
  std::optional<Clock::time_point> behind_since_;
  bool behind_reported_ = false;
  uint64_t regressions_seen_ = 0;
  std::optional<Clock::time_point> regression_at_;
  std::atomic<uint64_t> behind_episodes_{0};
};

}  // namespace ca::authority
