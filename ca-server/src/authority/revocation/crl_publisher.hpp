#pragma once
// Generates the CRLs of the issuing point MasterCRL (on the elected CRL master) and serves the
// latest ones (on every instance).
//
// - A full CRL is published on its schedule (update_interval), when this instance becomes master,
//   and when the delta would grow past max(full_after_min_changes, full_after_fraction x entries);
//   it comes with an empty delta CRL based on it.
// - Between full CRLs, each revocation burst (debounced) publishes only a new delta CRL (RFC 5280
//   5.2.4), cumulative since the full CRL: the directory write and what replication carries are
//   proportional to the changes, and the full CRL, its ETag and its Last-Modified stay put.
// - Every CRL is stored in its own directory entry (store::CaStore::save_crl), numbers on the
//   issuing point entry; numbers carry the master's lease epoch (crl_numbering.hpp), so two
//   masters never publish the same number, and the store refuses a publication from a deposed one.
// - With crl.partitions = N, each publication also makes the N partitions' CRLs (crl_partitions.hpp).
// - A follower serves what the directory holds, from its serve-from time on (all instances switch
//   together behind a balancer), and never goes back to a lower number.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "authority/revocation/revoked_index.hpp"
#include "core/openssl_owners.hpp"
#include "crypto/issuer.hpp"
#include "store/ca_store.hpp"

namespace ca::authority {

struct CrlOptions {
  std::chrono::seconds update_interval{3600};  // a new full CRL at least this often
  std::chrono::seconds validity{86400};        // nextUpdate = thisUpdate + validity
  std::chrono::milliseconds debounce{500};     // after a revocation, wait this long for more
  bool generate = true;                        // false: only serve what the directory holds
  // How often the master looks for revocations made by other instances (polled index only), and a
  // follower for a CRL newer than the one it serves.
  std::chrono::milliseconds poll_interval{2000};
  // A new CRL is served (here and, through the directory, by every instance) only from this long
  // after its publication, so that all instances switch together and a relying party behind a
  // balancer never sees the number go back; the push to the other instances takes milliseconds.
  // 0 = at once (a single instance).
  std::chrono::milliseconds activation_delay{0};
  // A full CRL instead of a delta once the delta would list more than
  // max(full_after_min_changes, full_after_fraction x the full CRL's entries).
  std::size_t full_after_min_changes = 1000;
  double full_after_fraction = 0.10;
  // Partitions besides the complete CRL (1 = none).
  std::size_t partitions = 1;
  // Base of the URLs the CRLs name (Freshest CRL, Issuing Distribution Point), e.g.
  // http://ca.example:8080. Empty: no such extensions.
  std::string base_url;
  // The index is fed by a directory watch (feed_* below) instead of being polled.
  bool revocations_fed = false;
};

// What relying parties are served: immutable once published.
struct PublishedCrl {
  uint64_t number = 0;
  uint64_t base = 0;  // delta CRLs: the full CRL it completes
  std::vector<uint8_t> der;
  std::chrono::system_clock::time_point this_update, next_update;
  std::string etag;
};

struct CrlPair {
  std::shared_ptr<const PublishedCrl> full;
  std::shared_ptr<const PublishedCrl> delta;  // may be null
};

struct CrlSet {
  std::shared_ptr<const PublishedCrl> full;   // the complete CRL
  std::shared_ptr<const PublishedCrl> delta;  // its delta; may be null
  std::vector<CrlPair> partitions;
  uint64_t newest_number() const;
};

class CrlPublisher {
 public:
  CrlPublisher(store::CaStore& store, const crypto::Issuer& ca, CrlOptions options);
  ~CrlPublisher();

  // The lease epoch while this instance is the CRL master, nullopt when it is not; set before
  // start(). Unset = always master, epoch 0 (a single instance, tests).
  void set_master_epoch(std::function<std::optional<uint64_t>()> epoch) { master_epoch_ = std::move(epoch); }
  void set_master_check(std::function<bool()> is_master);
  // Told every stored CRL number this instance sees (the election re-epochs a deposed master).
  void set_number_observer(std::function<void(uint64_t)> observer) { number_observer_ = std::move(observer); }
  // Wakes the schedule at once (mastership changed).
  void poke();
  // The stored CRL changed (a push from the directory): a follower reloads it at once instead of
  // at its next poll.
  void stored_crl_changed();

  // Loads the last stored CRL; if generating, the index too and publishes a fresh CRL; then starts
  // the schedule. With a fed index, waits (up to index_wait) for its first refresh.
  Status start(std::chrono::milliseconds index_wait = std::chrono::minutes(5));
  void stop();
  // A revocation happened (here, or reported by the watch): applied to the index at once.
  void revoked(const store::RevocationChange& change);
  // The watch of revoked records (CrlOptions::revocations_fed).
  void feed_reload_begin() { index_.begin_reload(); }
  void feed_reload_entry(const store::RevocationChange& change) { index_.reload_entry(change); }
  void feed_reload_end();
  // Generates and stores a CRL now: a full one, or a delta when that suffices (full = false).
  Status publish_now(bool full = true);
  CrlSet latest() const;
  RevokedIndex& index() { return index_; }
  // Times this instance found the directory holding a CRL below the one it serves or published:
  // two epochs publishing (never served: numbers only go up here). And when it last did.
  uint64_t older_crls_stored() const { return older_stored_.load(); }
  std::optional<std::chrono::steady_clock::time_point> older_crl_stored_at() const {
    std::lock_guard lock(mutex_);
    return older_stored_at_;
  }

 private:
  struct Built;
  void loop();
  Result<std::shared_ptr<PublishedCrl>> build(uint64_t number, uint64_t delta_base,
                                              std::span<const crypto::CrlEntry> entries,
                                              std::optional<std::size_t> partition,
                                              std::chrono::system_clock::time_point now);
  // Full (and its empty delta) or delta CRLs of the complete scope and every partition.
  // number: of the full CRL (its empty delta takes number + 1), or of the delta against `base`.
  Status build_scopes(Built& out, bool full, uint64_t number, uint64_t base, std::span<const crypto::CrlEntry> entries,
                      std::span<const crypto::CrlEntry> changes, std::chrono::system_clock::time_point now);
  Status load_stored();
  // Serials listed by the CRLs stored in the directory (published by any master, e.g. on the other
  // side of a healed partition) that the index does not hold yet: each stays listed unless its record
  // here shows it was taken off hold after that CRL. What a relying party saw listed once stays listed.
  Status reconcile_with_stored();
  // The serials a set lists: its full CRL completed by its delta (removeFromCRL takes one off).
  // The full CRL's entries are cached by number (a follower compares every delta with them).
  Result<std::vector<crypto::CrlEntry>> listed_by(const CrlSet& set);
  // Follower: whether `next` still lists every serial `served` lists that is revoked in this
  // directory. A relying party that saw a serial listed must never see it disappear (a CRL published
  // on the other side of a partition, before its master learned of this side's revocations).
  Result<bool> lists_everything_still_revoked(const CrlSet& served, const CrlSet& next);
  // Serves `set` from `from` on (at once when nothing is served yet or `from` has passed). mutex_ held.
  void stage(CrlSet set, std::chrono::system_clock::time_point from);
  // The newest number served or waiting to be. mutex_ held.
  uint64_t known_number() const;
  // The newest set published or stored here (pending, else latest). mutex_ held.
  const CrlSet& newest_set() const;
  std::optional<uint64_t> current_epoch() const;
  bool generating() const { return current_epoch().has_value(); }
  // Follower: reloads the stored CRL when its numbers moved.
  Status follow();
  // Master, told the stored CRL changed: another epoch's CRL above ours (carried over, a full CRL
  // follows), or a lower one written over ours (a full CRL again).
  Status check_stored_by_others(uint64_t epoch, std::chrono::steady_clock::time_point now);
  // Whether a delta CRL against the full CRL `base` will do (else a new full CRL is due).
  bool delta_suffices(uint64_t base, uint64_t epoch, const CrlSet& current) const;
  // One round of the loop while this instance is the CRL master: poll, then publish when due.
  Status master_round(uint64_t epoch, bool pushed, std::chrono::steady_clock::time_point now,
                      std::chrono::steady_clock::time_point& last_full,
                      std::chrono::steady_clock::time_point& last_poll);
  // The directory record of the CRLs just built, with the time every instance serves them from.
  store::CrlRecord record_of(const Built& built, bool full, uint64_t epoch,
                             std::chrono::system_clock::time_point now) const;
  void log_published(const Built& built, const store::CrlRecord& record, bool full, std::size_t entries,
                     std::chrono::steady_clock::time_point started) const;

  store::CaStore& store_;
  std::function<std::optional<uint64_t>()> master_epoch_;
  std::function<void(uint64_t)> number_observer_;
  const crypto::Issuer& ca_;  // signs every CRL; outlives the publisher
  CrlOptions options_;
  RevokedIndex index_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  // latest_: served now. pending_: published, served from pending_from_ on (latest() switches).
  mutable CrlSet latest_;
  mutable std::optional<CrlSet> pending_;
  mutable std::chrono::system_clock::time_point pending_from_{};
  uint64_t last_number_ = 0;
  uint64_t last_older_stored_ = 0;  // guarded by mutex_: the last lower number reported
  std::optional<std::chrono::steady_clock::time_point> older_stored_at_;  // guarded by mutex_
  std::atomic<uint64_t> older_stored_{0};
  bool dirty_ = false;
  bool follow_now_ = false;   // guarded by mutex_
  bool full_due_ = false;     // guarded by mutex_: the next publication is a full CRL
  bool stale_epoch_ = false;  // guarded by mutex_: refused for a stale epoch; retry after the debounce
  std::chrono::steady_clock::time_point dirty_since_;
  bool stopping_ = false;
  bool initial_published_ = false;
  std::mutex publish_mutex_;
  uint64_t listed_cache_number_ = 0;  // the follower thread only
  std::vector<crypto::CrlEntry> listed_cache_;
  std::thread thread_;
};

}  // namespace ca::authority
