#pragma once
// The revoked serials of this CA, in memory, sorted: loaded once from the directory, then kept up
// to date from changes (caModifiedAt) so that a CRL of a million entries needs no directory scan.
// 48 bytes per entry (crypto::CrlEntry).
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "crypto/crl_builder.hpp"
#include "store/ca_store.hpp"

namespace ca::authority {

class RevokedIndex {
 public:
  explicit RevokedIndex(store::CaStore& store) : store_(store) {}

  // Full load (streamed). Also catches changes that replication delivered late (after a partition),
  // with timestamps older than the refresh margin. The recorded changes no longer tell what changed
  // since the last published CRL, so the next CRL pair starts a fresh base (see build_and_take_delta).
  Status load();
  // Applies every change since the last refresh (with a margin for clock skew between instances).
  // Returns the number of changes that altered the index (one seen before does not count). Changes are also recorded for the next delta CRL.
  Result<std::size_t> refresh();
  // Applies a change made by this instance right away (no directory round trip).
  void apply(const store::RevocationChange& change);

  // Changes recorded since the last CRL pair, as delta entries (unrevoked -> removeFromCRL).
  std::vector<crypto::CrlEntry> delta_since_base() const;
  // For publishing a CRL pair: under one lock, fn(all entries, changes since the last base,
  // complete) runs and the changes are taken out, so a revocation that arrives meanwhile goes into
  // the next delta (it cannot fall between the full CRL being built and the delta being reset).
  // `complete` is false after a load(): the changes then do not cover everything since the last
  // published CRL, and the pair must start a fresh base. Give the changes back with
  // restore_delta() if the pair could not be published.
  template <typename Fn>
  auto build_and_take_delta(Fn&& fn) {
    std::lock_guard lock(mutex_);
    auto result = fn(std::span<const crypto::CrlEntry>(entries_), std::span<const crypto::CrlEntry>(delta_),
                     delta_complete_);
    taken_delta_.swap(delta_);
    delta_.clear();
    taken_complete_ = delta_complete_;
    delta_complete_ = true;
    return result;
  }
  void restore_delta();
  std::size_t size() const;

 private:
  bool apply_locked(const store::RevocationChange& change);
  store::CaStore& store_;
  mutable std::mutex mutex_;
  std::vector<crypto::CrlEntry> entries_;  // sorted by serial
  std::vector<crypto::CrlEntry> delta_;    // sorted by serial; reason 8 = removed
  std::vector<crypto::CrlEntry> taken_delta_;  // the changes of the pair being published
  bool delta_complete_ = false;  // delta_ holds every change since the last published CRL
  bool taken_complete_ = false;
  std::optional<store::TimePoint> last_refresh_;
};

}  // namespace ca::authority
