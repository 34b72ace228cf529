#pragma once
// Idempotency-Key for enrollments: a client that did not get its answer (a timeout, a dropped
// connection, an instance killed mid-request) sends the same request with the same key again, to
// any instance behind the balancer, and gets the same answer instead of a second certificate.
//
// Where a key is decided: a claim named by the SHA-256 of the key (store/claim_store.hpp) in the key's
// home directory (SingleUseClaims: rendezvous hashing over the registered directories, the same
// on every instance). An LDAP add there is atomic, so of two instances claiming one key at once
// exactly one wins. A home that cannot be reached refuses the key (503): the claim is never made in
// another directory, where each side of a partition could claim it once (docs/deployment.md).
//
// A claim is "pending" while its owner enrolls, then "done" with the answer stored (status line and
// JSON body, never a private key: server-side key generation does not take a key). A failed
// enrollment releases the claim, so a retry enrolls afresh. A pending claim older than
// `pending_timeout` (its owner died) is taken over with a compare-and-set of its nonce.
#include <chrono>
#include <functional>
#include <string>

#include <boost/asio/thread_pool.hpp>

#include "authority/cluster/single_use_claims.hpp"
#include "core/config.hpp"

namespace ca::authority {

struct IdempotencyOptions {
  // A pending claim older than this is taken over: its owner died, or its answer was cut off by
  // the request timeout (a frozen directory). Keep it above server.request_timeout_ms.
  std::chrono::seconds pending_timeout{5};
  std::chrono::hours retention{24};  // claims are kept (and answers replayed) this long
};

struct IdempotencyClaim {
  enum class State { claimed, replay, mismatch, in_progress };
  State state = State::claimed;
  std::string key_hash;     // hex SHA-256 of the key
  std::string nonce;        // ours, when claimed
  ClaimDirectory home;      // the directory that holds the claim
  int status = 0;           // replay: the stored status code
  std::string stored_body;  // replay: the stored body
};

// The answer a protocol gives for a keyed request: a fresh one (stored before it is sent), the
// stored one of an earlier request with the same key, or "still in progress" (another request with
// this key is being enrolled right now: retry in a second).
struct KeyedAnswer {
  enum class Kind { fresh, replayed, in_progress };
  Kind kind = Kind::fresh;
  int status = 0;    // fresh, replayed: the status code the protocol answers with
  std::string body;  // fresh, replayed: the body it answers with (stored, so never a private key)
};
using KeyedAnswerCallback = std::function<void(Result<KeyedAnswer>)>;
// The work a key guards: enroll, render the answer (status and body), call back with it or an error.
using KeyedWork = std::function<void(KeyedAnswerCallback)>;

class IdempotencyKeys {
 public:
  // `claims`: places the claim entries in their home directories.
  IdempotencyKeys(const InstanceConfig& config, SingleUseClaims& claims, IdempotencyOptions options = {});

  // A usable key: 1 to 255 printable ASCII characters (no spaces).
  static Status check_key(std::string_view key);
  // Hex SHA-256 of `data` (the request body, or the key).
  static std::string digest(std::string_view data);

  // The whole exchange for one keyed request: claims the key in its home directory, then runs
  // `work` once (its answer is stored before `done` gets it; a failure frees the key), or gives
  // `done` the stored answer, or refuses (a different request under the same key: conflict; the
  // home cannot be reached: unavailable). While another instance holds the key in progress, it is
  // looked at again every 100 ms for up to 3 s on this object's threads (no thread sleeps), then
  // answered in_progress. `done` may run on another thread than the caller's.
  void submit(std::string_view key, const std::string& request_digest,
              std::chrono::system_clock::time_point received_at, KeyedWork work, KeyedAnswerCallback done);

  // Claims `key` for a request whose body digests to `request_digest`, or says what holds it.
  // `request_started`: when the request reached this server; a claim counts as stale
  // `pending_timeout` after it (the client had its answer, a 503, by then).
  Result<IdempotencyClaim> begin(
      std::string_view key, const std::string& request_digest,
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

 private:
  using Home = SingleUseClaims::Home;
  // Runs `operation` in the home of an existing claim (refused when it moved since).
  template <typename Operation>
  auto at_claim_home(const IdempotencyClaim& claim, Operation&& operation)
      -> decltype(operation(std::declval<const Home&>()));
  Result<IdempotencyClaim> claim_in(const Home& home, const std::string& key_hash, const std::string& request_digest,
                                    std::chrono::system_clock::time_point request_started);
  Result<IdempotencyClaim> read_in(const Home& home, const std::string& key_hash, const std::string& request_digest);
  static store::ClaimId claim_id(const std::string& key_hash);
  // submit() from a claim that was just read: what to do with it.
  void settle(Result<IdempotencyClaim> claim, std::string request_digest,
              std::chrono::steady_clock::time_point wait_until, KeyedWork work, KeyedAnswerCallback done);

  const InstanceConfig& config_;
  SingleUseClaims& claims_;
  IdempotencyOptions options_;
  boost::asio::thread_pool finishers_{2};
};

}  // namespace ca::authority
