#include "authority/revocation/crl_consistency.hpp"

#include <fmt/format.h>

namespace ca::authority {

namespace {
long long millis(std::chrono::steady_clock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}
}  // namespace

Status CrlConsistency::judge_served(uint64_t served, uint64_t newest, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  if (newest <= served) {
    behind_since_.reset();
    behind_reported_ = false;
    return ok();
  }
  if (!behind_since_) behind_since_ = now;
  if (now - *behind_since_ <= options_.behind_bound) return ok();
  if (!std::exchange(behind_reported_, true)) behind_episodes_.fetch_add(1);
  return fail(
      Error::unavailable(fmt::format("serving CRL {} but CRL {} is published (in this directory or by a peer); "
                                     "behind for {} ms",
                                     served, newest, millis(now - *behind_since_))));
}

Status CrlConsistency::judge_epochs(uint64_t lease_regressions, std::optional<Clock::time_point> older_stored_at,
                                    Clock::time_point now) {
  std::lock_guard lock(mutex_);
  if (lease_regressions > regressions_seen_) {
    regressions_seen_ = lease_regressions;
    regression_at_ = now;
  }
  const auto recent = [&](const std::optional<Clock::time_point>& at) {
    return at && now - *at < options_.advisory_window;
  };
  if (recent(regression_at_))
    return fail(
        Error::unavailable(fmt::format("the CRL lease in this directory went down to a lower epoch {} ms ago "
                                       "(the directory is behind; not followed)",
                                       millis(now - *regression_at_))));
  if (recent(older_stored_at))
    return fail(
        Error::unavailable(fmt::format("two epochs published CRLs: the directory held a CRL below the one "
                                       "served here {} ms ago (the lower one is never served)",
                                       millis(now - *older_stored_at))));
  return ok();
}

}  // namespace ca::authority
