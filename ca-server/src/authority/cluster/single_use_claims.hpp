#pragma once
// Single-use claims: a token that may be spent once in the whole cluster (an Idempotency-Key, an
// enrollment code, the retrieval of a recovered key) is spent by an LDAP add of a claim entry in
// ONE directory, the token's home. The home is chosen by rendezvous hashing of (kind, token id)
// over the registered, non-retired directories of the replication mesh, so every instance that
// read the same registry picks the same home, and an add there is atomic: of two instances spending
// a token at once, exactly one wins, whichever directory each of them uses itself.
//
// Fail closed: when the home cannot be reached (down, frozen, cut off by a partition) the claim is
// refused with `unavailable` (HTTP 503), never made in another directory. Moving it elsewhere would
// let each side of a partition spend the token once. A token is therefore spent once or refused.
//
// A claim given back (release) stays as a "released" entry that the next claim takes over with a
// compare-and-set of its nonce, so that a release never deletes a claim made in between.
//
// An add that timed out may still be applied when a frozen home resumes (it waited in the
// socket): the token would then be spent with nothing done for it. This instance remembers the
// nonces of its refused attempts: the next claim of the token here takes such an entry over, and
// settle_abandoned() gives it back once the home answers again.
//
// Claims replicate like every other entry and are swept after `retention`. An instance whose
// registry lists no directory URL (a single instance, an embedded directory without a TCP port)
// is its own home.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/thread_pool.hpp>

#include "core/config.hpp"
#include "store/claim_store.hpp"
#include "store/replica_store.hpp"

namespace ca::authority {

enum class ClaimKind { idempotency_key, enrollment_code, key_retrieval };
std::string_view claim_kind_name(ClaimKind kind);

// A directory that can hold claims.
struct ClaimDirectory {
  std::string url;  // as registered; empty: this instance's own directory, no URL registered
  int replica_id = 0;
  bool operator==(const ClaimDirectory&) const = default;
};

// The home of a token over `registry`: the registered (directory URL set), non-retired directory
// with the highest rendezvous weight; nullopt when the registry lists none.
std::optional<ClaimDirectory> claim_home(ClaimKind kind, std::string_view token_id,
                                         const std::vector<store::ReplicaRecord>& registry);

struct ClaimOptions {
  std::chrono::hours retention{24};  // claims are kept this long, then swept
  int directory_timeout_ms = 1000;   // a claim waits this long for its home
  // A home with an attempt hanging for longer than this (a frozen directory) refuses further
  // claims at once instead of making each request wait for its own timeout.
  std::chrono::milliseconds hanging_after{900};
};

// A token this instance spent (claim()), to release if the operation it guarded failed.
struct HeldClaim {
  ClaimKind kind = ClaimKind::enrollment_code;
  std::string token_id;
  std::string nonce;
  ClaimDirectory home;
};

class SingleUseClaims {
 public:
  // Opens the claims of another instance's directory (the composition root's binds with this
  // instance's replication account); null when it cannot.
  using StoreOpener = std::function<std::shared_ptr<store::ClaimStore>(const ClaimDirectory&)>;
  // The home, and its claims.
  struct Home {
    ClaimDirectory directory;
    std::shared_ptr<store::ClaimStore> claims;
    std::string name() const { return directory.url.empty() ? "this instance's directory" : directory.url; }
  };

  // The registry from `registry`, `local` for this instance's own directory, `open` for the others.
  SingleUseClaims(const InstanceConfig& config, store::ReplicaStore& registry, std::shared_ptr<store::ClaimStore> local,
                  StoreOpener open, ClaimOptions options = {});
  SingleUseClaims(int own_replica_id, std::string instance_id, store::ReplicaStore& registry,
                  std::shared_ptr<store::ClaimStore> local, StoreOpener open, ClaimOptions options = {});
  ~SingleUseClaims();

  // Spends `token_id` of `kind`: conflict if it was spent already (here or on any instance whose
  // claim reached the home), unavailable if the home cannot be reached.
  [[nodiscard]] Result<HeldClaim> claim(ClaimKind kind, std::string_view token_id);
  // Gives a token back: the operation it guarded did not happen. Best effort (an unreachable home
  // keeps the token spent until the claim expires).
  void release(const HeldClaim& claim);
  // release() on this object's own threads: callers on the group-commit writers must not wait
  // for another directory.
  void release_later(HeldClaim claim);
  // Waits for the releases given to release_later.
  void drain();

  // Runs `operation(home)` against the token's home, refusing (unavailable, saying so) when the
  // home cannot be reached or is hanging: other mechanisms with richer claim entries
  // (Idempotency-Keys) place theirs with it.
  [[nodiscard]] Result<Home> home(ClaimKind kind, std::string_view token_id);
  template <typename Operation>
  auto at_home(ClaimKind kind, std::string_view token_id, Operation&& operation)
      -> decltype(operation(std::declval<const Home&>()));

  // Remembers the nonce of an add that was refused (timed out): a later claim of the same token
  // here takes the entry over if the add landed after all. `settle`: also give it back by
  // itself (settle_abandoned) once the home answers.
  void note_abandoned(ClaimKind kind, std::string_view token_id, const std::string& nonce, const ClaimDirectory& home,
                      bool settle);
  // True (once) if `nonce` is of an attempt of this instance that was refused.
  bool take_abandoned(const std::string& nonce);
  // Gives back the claims of refused attempts that landed after all (called now and then).
  void settle_abandoned();

  // Re-reads the registry of directories (now and then, off the request path).
  [[nodiscard]] Status refresh_directories();
  // Deletes this directory's claims past their retention (every claim container); returns how many.
  [[nodiscard]] Result<int> sweep_expired();

  // The claim of `token_id` of `kind` in its home's store.
  static store::ClaimId claim_id(ClaimKind kind, std::string_view token_id);

 private:
  // The error a claim gets when its home does not answer.
  static Error refused(ClaimKind kind, const Home& home, const std::string& cause);
  std::shared_ptr<store::ClaimStore> open_other(const ClaimDirectory& d);
  bool hanging(const std::string& key) const;  // with mutex_ held
  int64_t attempt_started(const std::string& key);
  void attempt_ended(const std::string& key, int64_t id);

  // The add, or the takeover of a released entry or of an abandoned attempt of ours.
  Result<HeldClaim> claim_at(const Home& home, ClaimKind kind, std::string_view token_id);

  struct AbandonedAttempt {
    ClaimKind kind;
    std::string token_id;
    ClaimDirectory home;
    bool settle = true;
    int absent_answers = 0;  // the home answered and the entry was not there
    std::chrono::steady_clock::time_point noted;
  };

  int own_replica_id_;
  std::string instance_id_;
  store::ReplicaStore& registry_store_;
  ClaimOptions options_;
  std::shared_ptr<store::ClaimStore> local_;
  StoreOpener open_;
  mutable std::mutex mutex_;
  std::vector<store::ReplicaRecord> registry_;  // cached
  bool registry_read_ = false;
  std::map<std::string, std::shared_ptr<store::ClaimStore>> others_;  // by directory URL
  // Start times of the attempts in flight, by directory: a home with an attempt hanging longer
  // than a healthy directory takes is frozen, and refuses the next claims at once.
  std::map<std::string, std::map<int64_t, std::chrono::steady_clock::time_point>> attempts_;
  int64_t next_attempt_ = 0;
  std::map<std::string, AbandonedAttempt> abandoned_;  // by nonce
  boost::asio::thread_pool releasers_{1};
};

template <typename Operation>
auto SingleUseClaims::at_home(ClaimKind kind, std::string_view token_id, Operation&& operation)
    -> decltype(operation(std::declval<const Home&>())) {
  auto where = home(kind, token_id);
  if (!where) return std::unexpected(where.error());
  const std::string key = where->name();
  const int64_t attempt = attempt_started(key);
  auto result = operation(*where);
  attempt_ended(key, attempt);
  if (!result && (result.error().is(ErrorCode::unavailable) || result.error().is(ErrorCode::directory)))
    return std::unexpected(refused(kind, *where, result.error().message));
  return result;
}

}  // namespace ca::authority
