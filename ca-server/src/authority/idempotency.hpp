#pragma once
// Idempotency-Key for enrollments: a client that did not get its answer (a timeout, a dropped
// connection, an instance killed mid-request) sends the same request with the same key again, to
// any instance behind the balancer, and gets the same answer instead of a second certificate.
//
// Where a key is decided: a claim entry cn=<SHA-256 of the key>,ou=idempotencyKeys in ONE
// directory, chosen by rendezvous hashing of the key over the instances that advertise a
// directory URL (the replication mesh): every instance picks the same directory for the same
// key, and an LDAP add there is atomic, so of two instances claiming one key at once exactly one
// wins, whichever directories they use themselves. The claim then replicates like everything else.
// A directory that cannot be reached is skipped for the next one in the key's order (and avoided
// for a while); only when two instances rank the directories differently (a partition, or the
// seconds until both have re-read the registry after an instance joined or left) can each claim
// the key once (docs/deployment.md).
//
// A claim is "pending" while its owner enrolls, then "done" with the answer stored (status line and
// JSON body, never a private key: server-side key generation does not take a key). A failed
// enrollment releases the claim, so a retry enrolls afresh. A pending claim older than
// `pending_timeout` (its owner died) is taken over with a compare-and-set of its nonce.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/thread_pool.hpp>

#include "core/config.hpp"
#include "store/ca_store.hpp"
#include "store/ldap_pool.hpp"

namespace ca::authority {

struct IdempotencyOptions {
  // A pending claim older than this is taken over: its owner died, or its answer was cut off by
  // the request timeout (a frozen directory). Keep it above server.request_timeout_ms.
  std::chrono::seconds pending_timeout{5};
  std::chrono::hours retention{24};          // claims are kept (and answers replayed) this long
  int directory_timeout_ms = 1000;           // per directory tried for a claim
  // An attempt on a directory that has not answered for this long makes other claims skip it (as
  // if it had failed). Not much below directory_timeout_ms: a directory skipped by one instance
  // and not by another is where a key can be claimed twice.
  std::chrono::milliseconds hanging_after{900};
};

struct IdempotencyClaim {
  enum class State { claimed, replay, mismatch, in_progress };
  State state = State::claimed;
  std::string key_hash;         // hex SHA-256 of the key
  std::string nonce;            // ours, when claimed
  std::string directory;        // the URL of the directory that holds the claim
  int status = 0;               // replay: the stored status code
  std::string stored_body;      // replay: the stored body
};

class IdempotencyKeys {
 public:
  // `local`: this instance's own directory (admin bind). Other directories are reached with this
  // instance's replication account (secrets/replication.pass), which may write claims there.
  IdempotencyKeys(const InstanceConfig& config, store::CaStore& store, store::LdapEndpoint local,
                  IdempotencyOptions options = {});

  // A usable key: 1 to 255 printable ASCII characters (no spaces).
  static Status check_key(std::string_view key);
  // Hex SHA-256 of `data` (the request body, or the key).
  static std::string digest(std::string_view data);

  // Claims `key` for a request whose body digests to `request_digest`, or says what holds it.
  // `request_started`: when the request reached this server; a claim counts as stale
  // `pending_timeout` after it (the client had its answer, a 503, by then).
  Result<IdempotencyClaim> begin(std::string_view key, const std::string& request_digest,
                                 std::chrono::system_clock::time_point request_started = std::chrono::system_clock::now());
  // Looks again at a claim that was in progress (another instance is enrolling it).
  Result<IdempotencyClaim> look(const IdempotencyClaim& claim, const std::string& request_digest);
  // Stores the answer of a claimed request: from now on it is replayed.
  Status complete(const IdempotencyClaim& claim, int status, const std::string& body);
  // The enrollment failed: the key is free again (best effort; a stale claim is taken over anyway).
  void release(const IdempotencyClaim& claim);
  // complete() or release() on this object's own threads, then `then()`: enrollment callbacks run
  // on the group-commit writers, which must not wait for another directory.
  void finish_later(IdempotencyClaim claim, bool succeeded, int status, std::string body, std::function<void()> then);
  // Waits for the work given to finish_later (before the server that `then` answers through goes).
  void drain();
  // Re-reads the registry of directories (called now and then, off the request path: a request
  // never waits for it, except the very first one).
  Status refresh_directories();
  // Deletes this directory's claims past their retention (called now and then); returns how many.
  Result<int> sweep_expired();

 private:
  struct Directory {
    std::string url;
    int replica_id = 0;
    std::shared_ptr<store::LdapPool> pool;
  };
  // The directories to try for a key, best first.
  Result<std::vector<Directory>> order_for(const std::string& key_hash);
  Result<IdempotencyClaim> claim_in(const Directory& d, const std::string& key_hash, const std::string& request_digest,
                                    std::chrono::system_clock::time_point request_started);
  Result<IdempotencyClaim> read_in(store::LdapPool& pool, const std::string& key_hash, const std::string& request_digest,
                                   const std::string& url);
  std::shared_ptr<store::LdapPool> pool_for(const std::string& url);
  std::string claim_dn(const std::string& key_hash) const;
  void mark_unreachable(const std::string& url);

  const InstanceConfig& config_;
  store::CaStore& store_;
  IdempotencyOptions options_;
  std::shared_ptr<store::LdapPool> local_;
  std::mutex mutex_;
  std::vector<store::ReplicaRecord> replicas_;  // cached registry
  std::chrono::steady_clock::time_point replicas_read_{};
  std::map<std::string, std::shared_ptr<store::LdapPool>> pools_;  // by directory URL
  // What this instance saw of each directory lately: a directory that failed is avoided for a
  // while, and so is one with an attempt hanging for longer than a healthy one takes (frozen), so
  // that one slow directory does not hold every claim that ranks it first.
  struct DirectoryHealth {
    std::chrono::steady_clock::time_point avoid_until{};
    std::multiset<std::chrono::steady_clock::time_point> attempts;  // start times of those in flight
  };
  std::map<std::string, DirectoryHealth> health_;  // by URL
  boost::asio::thread_pool finishers_{2};
};

}  // namespace ca::authority
