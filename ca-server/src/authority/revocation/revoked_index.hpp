#pragma once
// The revoked serials of this CA, in memory, sorted, so that a CRL of a million entries needs no
// directory scan. 48 bytes per entry (crypto::CrlEntry). Two ways to keep it current:
// - fed (ca-server): a watch of the revoked records (store/directory_watch.hpp) rebuilds it from
//   each refresh phase (begin_reload .. end_reload) and applies every later change in the order the
//   directory applied it, however late replication delivered it;
// - polled (tests over the fake store): load() and refresh() by modification time.
// It also records the changes since the last full CRL (the next delta CRL's entries).
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
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
  // Returns the number of changes that altered the index (one seen before does not count). Changes are also recorded
  // for the next delta CRL.
  Result<std::size_t> refresh();
  // Applies a change made by this instance right away (no directory round trip).
  void apply(const store::RevocationChange& change);

  // Fed: a refresh phase starts; its entries replace the index at end_reload(). Changes applied
  // meanwhile (this instance's own revocations) are applied again on top.
  void begin_reload();
  void reload_entry(const store::RevocationChange& change);
  void end_reload();
  // Loaded at least once (fed: a refresh phase has completed).
  bool ready() const;

  // Changes recorded since the last full CRL, as delta entries (unrevoked -> removeFromCRL).
  std::vector<crypto::CrlEntry> delta_since_base() const;
  std::size_t delta_size() const;
  bool delta_complete() const;
  // The delta holds no change since the last full CRL anymore (a new base is due).
  void mark_delta_incomplete();
  // Whether `serial` is in the index (tests, reconciliation).
  bool contains(const crypto::CrlEntry& serial) const;
  // For publishing a CRL pair: under one lock, fn(all entries, changes since the last base,
  // complete) runs and the changes are taken out, so a revocation that arrives meanwhile goes into
  // the next delta (it cannot fall between the full CRL being built and the delta being reset).
  // `complete` is false after a load(): the changes then do not cover everything since the last
  // published CRL, and the pair must start a fresh base. Give the changes back with
  // restore_delta() if the pair could not be published.
  // With take = false (a delta CRL only) the changes stay: deltas are cumulative since the full CRL.
  template <typename Fn>
  auto build_and_take_delta(Fn&& fn, bool take = true) {
    std::lock_guard lock(mutex_);
    merge_pending_locked();
    auto result =
        fn(std::span<const crypto::CrlEntry>(entries_), std::span<const crypto::CrlEntry>(delta_), delta_complete_);
    if (!take) return result;
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
  // Merges the pending changes into entries_ and delta_ in one pass. mutex_ held.
  void merge_pending_locked() const;
  static constexpr std::size_t kMergeEvery = 65536;
  store::CaStore& store_;
  mutable std::mutex mutex_;
  // mutable: reads merge the pending changes first.
  mutable std::vector<crypto::CrlEntry> entries_;  // sorted by serial
  mutable std::vector<crypto::CrlEntry> delta_;    // sorted by serial; reason 8 = removed
  // Changes not merged yet, in arrival order, and the newest one of each serial (by serial bytes).
  mutable std::vector<std::pair<crypto::CrlEntry, bool>> pending_;  // (entry, removed)
  mutable std::unordered_map<std::string, std::size_t> pending_index_;
  std::vector<crypto::CrlEntry> taken_delta_;  // the changes of the pair being published
  bool delta_complete_ = false;                // delta_ holds every change since the last published CRL
  bool taken_complete_ = false;
  std::optional<store::TimePoint> last_refresh_;
  bool ready_ = false;
  std::optional<std::vector<crypto::CrlEntry>> reloading_;      // entries of a refresh phase
  std::vector<store::RevocationChange> applied_during_reload_;  // re-applied at end_reload
};

}  // namespace ca::authority
