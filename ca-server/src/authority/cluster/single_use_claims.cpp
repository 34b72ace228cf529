#include "authority/cluster/single_use_claims.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <boost/asio/post.hpp>

#include "authority/access/one_time_secret.hpp"
#include "core/log.hpp"

namespace ca::authority {

namespace {
constexpr std::string_view kLog = "claims";

// Rendezvous weight of (token, directory): the highest wins. Idempotency-Keys keep the input they
// were first placed with ("<key hash>:<replica id>"), so that an upgrade does not move the home of
// keys claimed just before it; the other kinds name themselves in it.
uint64_t weight(ClaimKind kind, std::string_view token_id, int replica_id) {
  const std::string input = kind == ClaimKind::idempotency_key
                                ? fmt::format("{}:{}", token_id, replica_id)
                                : fmt::format("{}/{}:{}", claim_kind_name(kind), token_id, replica_id);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(input.data(), input.size(), digest, &length, EVP_sha256(), nullptr);
  uint64_t w = 0;
  for (int i = 0; i < 8; ++i) w = (w << 8) | digest[i];
  return w;
}

// Marks a claim given back: a compare-and-set of its nonce, so a claim made in between (with
// another nonce) is never touched. The next claim takes the released claim over.
Status release_entry(store::ClaimStore& claims, const store::ClaimId& id, const std::string& nonce) {
  CA_TRY(std::string tombstone, random_hex(12));
  store::ClaimChange change;
  change.state = "released";
  change.modified_at = std::chrono::system_clock::now();
  return claims.swap_claim_nonce(id, nonce, tombstone, change);
}
}  // namespace

std::string_view claim_kind_name(ClaimKind kind) {
  switch (kind) {
    case ClaimKind::idempotency_key:
      return "idempotency_key";
    case ClaimKind::enrollment_code:
      return "enrollment_code";
    case ClaimKind::key_retrieval:
      return "key_retrieval";
  }
  return "claim";
}

std::optional<ClaimDirectory> claim_home(ClaimKind kind, std::string_view token_id,
                                         const std::vector<store::ReplicaRecord>& registry) {
  std::optional<ClaimDirectory> best;
  uint64_t best_weight = 0;
  for (const auto& r : registry) {
    if (r.retired || r.directory_url.empty()) continue;
    const uint64_t w = weight(kind, token_id, r.replica_id);
    // Ties (never seen with SHA-256, but defined): the lower replica id.
    if (!best || w > best_weight || (w == best_weight && r.replica_id < best->replica_id)) {
      best = ClaimDirectory{r.directory_url, r.replica_id};
      best_weight = w;
    }
  }
  return best;
}

SingleUseClaims::SingleUseClaims(const InstanceConfig& config, store::ReplicaStore& registry,
                                 std::shared_ptr<store::ClaimStore> local, StoreOpener open, ClaimOptions options)
    : SingleUseClaims(config.ranges.replica_id, config.instance_id, registry, std::move(local), std::move(open),
                      options) {}

SingleUseClaims::SingleUseClaims(int own_replica_id, std::string instance_id, store::ReplicaStore& registry,
                                 std::shared_ptr<store::ClaimStore> local, StoreOpener open, ClaimOptions options)
    : own_replica_id_(own_replica_id),
      instance_id_(std::move(instance_id)),
      registry_store_(registry),
      options_(options),
      local_(std::move(local)),
      open_(std::move(open)) {}

SingleUseClaims::~SingleUseClaims() { releasers_.join(); }

store::ClaimId SingleUseClaims::claim_id(ClaimKind kind, std::string_view token_id) {
  if (kind == ClaimKind::idempotency_key)
    return store::ClaimId{store::ClaimContainer::idempotency_key, "", std::string(token_id)};
  return store::ClaimId{store::ClaimContainer::single_use, std::string(claim_kind_name(kind)), std::string(token_id)};
}

Error SingleUseClaims::refused(ClaimKind kind, const Home& home, const std::string& cause) {
  return Error::unavailable(fmt::format(
      "the home directory of this {} claim ({}) cannot be reached, so the claim is refused rather than made in another "
      "directory (where it could be spent twice); retry later ({})",
      claim_kind_name(kind), home.name(), cause));
}

Status SingleUseClaims::refresh_directories() {
  CA_TRY(auto replicas, registry_store_.list_replicas());
  std::lock_guard lock(mutex_);
  registry_ = std::move(replicas);
  registry_read_ = true;
  return ok();
}

std::shared_ptr<store::ClaimStore> SingleUseClaims::open_other(const ClaimDirectory& d) {
  // Called with mutex_ held.
  auto& other = others_[d.url];
  if (!other) other = open_(d);
  return other;
}

bool SingleUseClaims::hanging(const std::string& key) const {
  auto it = attempts_.find(key);
  if (it == attempts_.end()) return false;
  const auto now = std::chrono::steady_clock::now();
  for (const auto& [id, started] : it->second)
    if (now - started > options_.hanging_after) return true;
  return false;
}

int64_t SingleUseClaims::attempt_started(const std::string& key) {
  std::lock_guard lock(mutex_);
  const int64_t id = next_attempt_++;
  attempts_[key].emplace(id, std::chrono::steady_clock::now());
  return id;
}

void SingleUseClaims::attempt_ended(const std::string& key, int64_t id) {
  std::lock_guard lock(mutex_);
  auto it = attempts_.find(key);
  if (it == attempts_.end()) return;
  it->second.erase(id);
  if (it->second.empty()) attempts_.erase(it);
}

Result<SingleUseClaims::Home> SingleUseClaims::home(ClaimKind kind, std::string_view token_id) {
  bool read;
  {
    std::lock_guard lock(mutex_);
    read = registry_read_;
  }
  if (!read) CA_CHECK(refresh_directories());
  std::lock_guard lock(mutex_);
  auto chosen = claim_home(kind, token_id, registry_);
  Home home;
  if (!chosen || chosen->replica_id == own_replica_id_) {
    // No mesh registered (a single instance), or the home is this instance's own directory.
    home.directory = chosen.value_or(ClaimDirectory{"", own_replica_id_});
    home.claims = local_;
  } else {
    home.directory = *chosen;
    home.claims = open_other(*chosen);
    if (!home.claims) return fail(refused(kind, home, "this instance has no replication account to write there yet"));
  }
  if (hanging(home.name())) return fail(refused(kind, home, "an earlier claim there is still waiting for an answer"));
  return home;
}

Result<HeldClaim> SingleUseClaims::claim(ClaimKind kind, std::string_view token_id) {
  return at_home(kind, token_id, [&](const Home& home) { return claim_at(home, kind, token_id); });
}

Result<HeldClaim> SingleUseClaims::claim_at(const Home& home, ClaimKind kind, std::string_view token_id) {
  CA_TRY(std::string nonce, random_hex(12));
  const auto now = std::chrono::system_clock::now();
  HeldClaim held{kind, std::string(token_id), nonce, home.directory};
  store::ClaimRecord claim;
  claim.id = claim_id(kind, token_id);
  claim.digest = fmt::format("{}:{}", claim_kind_name(kind), token_id);  // names what was spent
  claim.state = "spent";
  claim.nonce = nonce;
  claim.instance_id = instance_id_;
  claim.created_at = now;
  claim.expires_at = now + options_.retention;
  const Error used = Error::conflict(fmt::format("this {} was already used", claim_kind_name(kind)));
  // Twice at most: the claim may be released or deleted between our add and our read.
  for (int attempt = 0; attempt < 3; ++attempt) {
    Status added = home.claims->add_claim(claim);
    if (added) {
      log::debug(kLog, "claimed {} {} in {}", claim_kind_name(kind), token_id, home.name());
      return held;
    }
    if (!added.error().is(ErrorCode::conflict)) {
      // It may still land (it waits in the socket of a frozen directory).
      note_abandoned(kind, token_id, nonce, home.directory, true);
      return fail(added.error());
    }
    CA_TRY(auto stored, home.claims->read_claim(claim.id));
    if (!stored) continue;  // swept or deleted just now: add again
    const bool free = stored->state == "released" || take_abandoned(stored->nonce);
    if (!free) return fail(used);
    // Released, or an attempt of ours that was refused and landed after all: take it over.
    Status taken = home.claims->swap_claim_nonce(
        claim.id, stored->nonce, nonce,
        store::ClaimChange{
            .state = "spent", .instance_id = instance_id_, .created_at = now, .expires_at = claim.expires_at});
    if (taken) {
      log::debug(kLog, "claimed {} {} in {} (took over a given-back claim)", claim_kind_name(kind), token_id,
                 home.name());
      return held;
    }
    if (!taken.error().is(ErrorCode::conflict)) {
      note_abandoned(kind, token_id, nonce, home.directory, true);
      return fail(taken.error());
    }
    // Someone else took it over first: look again.
  }
  return fail(used);
}

void SingleUseClaims::release(const HeldClaim& claim) {
  const store::ClaimId id = claim_id(claim.kind, claim.token_id);
  Status released = at_home(claim.kind, claim.token_id, [&](const Home& home) -> Status {
    if (home.directory != claim.home) return fail(Error::unavailable("the registry moved the claim's home"));
    Status st = release_entry(*home.claims, id, claim.nonce);
    if (!st && (st.error().is(ErrorCode::conflict) || st.error().is(ErrorCode::not_found)))
      return ok();  // not ours any more
    return st;
  });
  if (!released)
    log::warn(kLog, "could not give back {} {} ({}); it stays spent until its claim expires",
              claim_kind_name(claim.kind), claim.token_id, released.error().message);
}

void SingleUseClaims::note_abandoned(ClaimKind kind, std::string_view token_id, const std::string& nonce,
                                     const ClaimDirectory& home, bool settle) {
  std::lock_guard lock(mutex_);
  if (abandoned_.size() >= 10000) return;  // a home frozen for long: the claims expire by themselves
  abandoned_[nonce] = AbandonedAttempt{kind, std::string(token_id), home, settle, 0, std::chrono::steady_clock::now()};
}

bool SingleUseClaims::take_abandoned(const std::string& nonce) {
  std::lock_guard lock(mutex_);
  return abandoned_.erase(nonce) > 0;
}

void SingleUseClaims::settle_abandoned() {
  std::vector<std::pair<std::string, AbandonedAttempt>> pending;
  {
    std::lock_guard lock(mutex_);
    const auto now = std::chrono::steady_clock::now();
    for (auto it = abandoned_.begin(); it != abandoned_.end();) {
      // Remembered for a while: long enough for a frozen home to be resumed and to apply them.
      if (now - it->second.noted > std::chrono::minutes(10))
        it = abandoned_.erase(it);
      else {
        if (it->second.settle) pending.emplace_back(*it);
        ++it;
      }
    }
  }
  for (const auto& [nonce, attempt] : pending) {
    const store::ClaimId id = claim_id(attempt.kind, attempt.token_id);
    auto outcome = at_home(attempt.kind, attempt.token_id, [&](const Home& home) -> Result<bool> {
      if (home.directory != attempt.home) return true;  // its home moved: nothing to give back there
      CA_TRY(auto stored, home.claims->read_claim(id));
      if (!stored) return false;                // not (yet) there
      if (stored->nonce != nonce) return true;  // another claim: not ours to touch
      Status st = release_entry(*home.claims, id, nonce);
      if (st)
        log::info(kLog, "gave back {} {}: its refused claim reached {} after all", claim_kind_name(attempt.kind),
                  attempt.token_id, home.name());
      if (!st && !st.error().is(ErrorCode::conflict)) return fail(st.error());
      return true;
    });
    if (!outcome) continue;  // the home still does not answer: next time
    std::lock_guard lock(mutex_);
    auto it = abandoned_.find(nonce);
    if (it == abandoned_.end()) continue;  // taken over by a claim meanwhile
    // Done, or absent three times in a row while the home answered: the add was never applied.
    if (*outcome || ++it->second.absent_answers >= 3) abandoned_.erase(it);
  }
}

void SingleUseClaims::release_later(HeldClaim claim) {
  boost::asio::post(releasers_, [this, claim = std::move(claim)] { release(claim); });
}

void SingleUseClaims::drain() { releasers_.join(); }

Result<int> SingleUseClaims::sweep_expired() {
  CA_TRY(int removed, local_->remove_expired_claims(std::chrono::system_clock::now()));
  if (removed) log::info(kLog, "removed {} expired claim(s)", removed);
  return removed;
}

}  // namespace ca::authority
