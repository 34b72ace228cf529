#pragma once
// Generates the CRLs of the issuing point MasterCRL: a full CRL and a delta CRL (changes since
// the previous full CRL), on a schedule and soon after a revocation (debounced). The latest pair is
// kept in memory for serving and stored in the directory (cn=MasterCRL,ou=crlIssuingPoints) so LDAP
// clients and other instances read the same bytes. CRL numbers come from the directory entry and
// never go backwards, also across restarts.
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

#include "authority/revoked_index.hpp"
#include "core/openssl_owners.hpp"
#include "store/ca_store.hpp"

namespace ca::authority {

struct CrlOptions {
  std::chrono::seconds update_interval{3600};  // a new full CRL at least this often
  std::chrono::seconds validity{86400};        // nextUpdate = thisUpdate + validity
  std::chrono::milliseconds debounce{500};     // after a revocation, wait this long for more
  bool generate = true;                        // false: only serve what the directory holds
  // How often the master looks for revocations made by other instances, and a follower for a CRL
  // newer than the one it serves.
  std::chrono::milliseconds poll_interval{2000};
  // A new CRL is served (here and, through the directory, by every instance) only from this long
  // after its publication, so that all instances switch together and a relying party behind a
  // balancer never sees the number go back; the push to the other instances takes milliseconds.
  // 0 = at once (a single instance).
  std::chrono::milliseconds activation_delay{0};
};

// What relying parties are served: immutable once published.
struct PublishedCrl {
  uint64_t number = 0;
  std::vector<uint8_t> der;
  std::chrono::system_clock::time_point this_update, next_update;
  std::string etag;
};

struct CrlSet {
  std::shared_ptr<const PublishedCrl> full;
  std::shared_ptr<const PublishedCrl> delta;  // may be null
};

class CrlPublisher {
 public:
  CrlPublisher(store::CaStore& store, X509* ca_cert, EVP_PKEY* ca_key, CrlOptions options);
  ~CrlPublisher();

  // Whether this instance generates CRLs now (the elected CRL master); unset = always.
  // Set before start().
  void set_master_check(std::function<bool()> is_master) { is_master_ = std::move(is_master); }
  // Wakes the schedule at once (mastership changed).
  void poke();
  // The stored CRL changed (a push from the directory): a follower reloads it at once instead of
  // at its next poll.
  void stored_crl_changed();

  // Loads the last stored CRL; if generating, the index too and publishes a fresh CRL; then starts
  // the schedule.
  Status start();
  void stop();
  // A revocation happened (here: applied to the index at once; elsewhere: found by refresh).
  void revoked(const store::RevocationChange& change);
  // Generates and stores a new CRL pair now.
  Status publish_now();
  CrlSet latest() const;
  RevokedIndex& index() { return index_; }

 private:
  void loop();
  Result<std::shared_ptr<PublishedCrl>> build(uint64_t number, std::optional<uint64_t> delta_base,
                                               std::span<const crypto::CrlEntry> entries,
                                               std::chrono::system_clock::time_point now);
  Status load_stored();
  // Serves `set` from `from` on (at once when nothing is served yet or `from` has passed). mutex_ held.
  void stage(CrlSet set, std::chrono::system_clock::time_point from);
  // The newest number served or waiting to be. mutex_ held.
  uint64_t known_number() const;
  bool generating() const;
  // Follower: reloads the stored CRL when its numbers moved.
  Status follow();

  store::CaStore& store_;
  std::function<bool()> is_master_;
  X509* ca_cert_;
  EVP_PKEY* ca_key_;
  CrlOptions options_;
  RevokedIndex index_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  // latest_: served now. pending_: published, served from pending_from_ on (latest() switches).
  mutable CrlSet latest_;
  mutable std::optional<CrlSet> pending_;
  mutable std::chrono::system_clock::time_point pending_from_{};
  uint64_t last_number_ = 0;
  bool dirty_ = false;
  bool follow_now_ = false;  // guarded by mutex_
  std::chrono::steady_clock::time_point dirty_since_;
  bool stopping_ = false;
  bool initial_published_ = false;
  std::mutex publish_mutex_;
  std::thread thread_;
};

}  // namespace ca::authority
