#include "authority/idempotency.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include <boost/asio/post.hpp>
#include <fmt/format.h>
#include <openssl/evp.h>

#include "authority/instance_setup.hpp"
#include "authority/one_time_secret.hpp"
#include "core/log.hpp"
#include "store/replication.hpp"

namespace ca::authority {

namespace {
constexpr std::string_view kLog = "idempotency";
using Op = store::LdapModification::Op;

std::string hex(const unsigned char* data, std::size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(kDigits[data[i] >> 4]);
    out.push_back(kDigits[data[i] & 15]);
  }
  return out;
}

// Rendezvous weight of (key, directory): the highest wins.
uint64_t weight(const std::string& key_hash, int replica_id) {
  std::string input = fmt::format("{}:{}", key_hash, replica_id);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(input.data(), input.size(), digest, &length, EVP_sha256(), nullptr);
  uint64_t w = 0;
  for (int i = 0; i < 8; ++i) w = (w << 8) | digest[i];
  return w;
}

std::string now_text() { return store::to_generalized_time(std::chrono::system_clock::now()); }
}  // namespace

IdempotencyKeys::IdempotencyKeys(const InstanceConfig& config, store::CaStore& store, store::LdapEndpoint local,
                                 IdempotencyOptions options)
    : config_(config), store_(store), options_(options) {
  local.timeout_ms = std::min(local.timeout_ms, options_.directory_timeout_ms);  // a claim never waits longer
  local_ = std::make_shared<store::LdapPool>(std::move(local), 4);
}

Status IdempotencyKeys::check_key(std::string_view key) {
  if (key.empty() || key.size() > 255)
    return fail(Error::bad_request("Idempotency-Key must be 1 to 255 characters"));
  for (char c : key)
    if (c <= 0x20 || c >= 0x7f)
      return fail(Error::bad_request("Idempotency-Key must be printable ASCII without spaces"));
  return ok();
}

std::string IdempotencyKeys::digest(std::string_view data) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), d, &length, EVP_sha256(), nullptr);
  return hex(d, length);
}

std::string IdempotencyKeys::claim_dn(const std::string& key_hash) const {
  return fmt::format("cn={},ou=idempotencyKeys,{}", key_hash, config_.directory.suffix);
}

std::shared_ptr<store::LdapPool> IdempotencyKeys::pool_for(const std::string& url) {
  // Called with mutex_ held.
  auto& pool = pools_[url];
  if (!pool) {
    auto password = read_secret_file(config_.dir / "secrets" / "replication.pass");
    if (!password) return nullptr;
    store::LdapEndpoint endpoint{url, store::replication_account_dn(config_.directory.suffix, config_.ranges.replica_id),
                                 *password, options_.directory_timeout_ms, config_.cert_file("ca_signing").string()};
    pool = std::make_shared<store::LdapPool>(std::move(endpoint), 4);
  }
  return pool;
}

void IdempotencyKeys::mark_unreachable(const std::string& url) {
  std::lock_guard lock(mutex_);
  health_[url].avoid_until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
}

Status IdempotencyKeys::refresh_directories() {
  CA_TRY(auto replicas, store_.list_replicas());
  std::lock_guard lock(mutex_);
  replicas_ = std::move(replicas);
  replicas_read_ = std::chrono::steady_clock::now();
  return ok();
}

Result<std::vector<IdempotencyKeys::Directory>> IdempotencyKeys::order_for(const std::string& key_hash) {
  const auto now = std::chrono::steady_clock::now();
  std::unique_lock lock(mutex_);
  if (replicas_.empty()) {
    lock.unlock();
    CA_CHECK(refresh_directories());
    lock.lock();
  }
  struct Ranked {
    uint64_t weight;
    bool avoided;
    Directory d;
  };
  std::vector<Ranked> ranked;
  for (const auto& r : replicas_) {
    if (r.retired || r.directory_url.empty()) continue;
    Directory d{r.directory_url, r.replica_id, nullptr};
    d.pool = r.replica_id == config_.ranges.replica_id ? local_ : pool_for(r.directory_url);
    if (!d.pool) continue;  // no replication account yet: cannot write there
    bool avoided = false;
    if (auto h = health_.find(r.directory_url); h != health_.end())
      avoided = h->second.avoid_until > now ||
                (!h->second.attempts.empty() && now - *h->second.attempts.begin() > options_.hanging_after);
    ranked.push_back({weight(key_hash, r.replica_id), avoided, std::move(d)});
  }
  // By weight, but directories that just failed go last (still tried: they may be back).
  std::stable_sort(ranked.begin(), ranked.end(), [](const Ranked& a, const Ranked& b) {
    if (a.avoided != b.avoided) return !a.avoided;
    return a.weight > b.weight;
  });
  std::vector<Directory> out;
  for (auto& r : ranked) out.push_back(std::move(r.d));
  const bool has_local = std::any_of(out.begin(), out.end(), [&](const Directory& d) { return d.pool == local_; });
  if (!has_local) out.push_back(Directory{"(this instance's directory)", config_.ranges.replica_id, local_});
  return out;
}

Result<IdempotencyClaim> IdempotencyKeys::read_in(store::LdapPool& pool, const std::string& key_hash,
                                                  const std::string& request_digest, const std::string& url) {
  CA_TRY(auto entry, pool.with_connection([&](store::LdapConnection& c) {
    return c.read(claim_dn(key_hash), {"caRequestDigest", "caCodeState", "caClaimNonce", "caStoredResponse", "caCreatedAt"});
  }));
  IdempotencyClaim claim;
  claim.key_hash = key_hash;
  claim.directory = url;
  if (!entry) {
    claim.state = IdempotencyClaim::State::claimed;  // gone: the caller may claim again
    claim.nonce.clear();
    return claim;
  }
  if (entry->first_or("caRequestDigest") != request_digest) {
    claim.state = IdempotencyClaim::State::mismatch;
    return claim;
  }
  claim.nonce = entry->first_or("caClaimNonce");
  if (entry->first_or("caCodeState") == "done") {
    const std::string stored = entry->first_or("caStoredResponse");
    auto newline = stored.find('\n');
    claim.state = IdempotencyClaim::State::replay;
    claim.status = std::atoi(stored.substr(0, newline).c_str());
    claim.stored_body = newline == std::string::npos ? std::string() : stored.substr(newline + 1);
    return claim;
  }
  claim.state = IdempotencyClaim::State::in_progress;
  // A pending claim whose owner is gone: take it over (compare-and-set on the nonce).
  auto created = store::from_generalized_time(entry->first_or("caCreatedAt"));
  if (created && std::chrono::system_clock::now() - *created > options_.pending_timeout) {
    CA_TRY(std::string nonce, random_hex(12));
    Status taken = pool.with_connection([&](store::LdapConnection& c) {
      return c.modify(claim_dn(key_hash), {{Op::remove, "caClaimNonce", {claim.nonce}},
                                           {Op::add, "caClaimNonce", {nonce}},
                                           {Op::replace, "caCreatedAt", {now_text()}},
                                           {Op::replace, "caInstanceId", {config_.instance_id}}});
    });
    if (taken) {
      log::info(kLog, "took over the stale claim of key {} in {}", key_hash.substr(0, 16), url);
      claim.state = IdempotencyClaim::State::claimed;
      claim.nonce = nonce;
    } else if (!taken.error().is(ErrorCode::conflict)) {
      return fail(taken.error());
    }
  }
  return claim;
}

Result<IdempotencyClaim> IdempotencyKeys::claim_in(const Directory& d, const std::string& key_hash,
                                                   const std::string& request_digest,
                                                   std::chrono::system_clock::time_point request_started) {
  CA_TRY(std::string nonce, random_hex(12));
  const auto expires = std::chrono::system_clock::now() + options_.retention;
  std::vector<store::LdapAttribute> attrs{{"objectClass", {"caIdempotencyClaim"}},
                                          {"cn", {key_hash}},
                                          {"caRequestDigest", {request_digest}},
                                          {"caCodeState", {"pending"}},
                                          {"caClaimNonce", {nonce}},
                                          {"caInstanceId", {config_.instance_id}},
                                          {"caCreatedAt", {store::to_generalized_time(request_started)}},
                                          {"caExpiresAt", {store::to_generalized_time(expires)}}};
  Status added = d.pool->with_connection([&](store::LdapConnection& c) { return c.add(claim_dn(key_hash), attrs); });
  if (added) {
    IdempotencyClaim claim;
    claim.key_hash = key_hash;
    claim.nonce = nonce;
    claim.directory = d.url;
    return claim;
  }
  if (!added.error().is(ErrorCode::conflict)) return fail(added.error());
  CA_TRY(auto existing, read_in(*d.pool, key_hash, request_digest, d.url));
  if (existing.state == IdempotencyClaim::State::claimed && existing.nonce.empty())
    return claim_in(d, key_hash, request_digest, request_started);  // released between our add and our read
  return existing;
}

Result<IdempotencyClaim> IdempotencyKeys::begin(std::string_view key, const std::string& request_digest,
                                                std::chrono::system_clock::time_point request_started) {
  CA_CHECK(check_key(key));
  const std::string key_hash = digest(key);
  CA_TRY(auto order, order_for(key_hash));
  Error last = Error::unavailable("no directory to hold the Idempotency-Key");
  for (const auto& d : order) {
    const auto started = std::chrono::steady_clock::now();
    {
      std::lock_guard lock(mutex_);
      health_[d.url].attempts.insert(started);
    }
    auto claimed = claim_in(d, key_hash, request_digest, request_started);
    {
      std::lock_guard lock(mutex_);
      auto& attempts = health_[d.url].attempts;
      if (auto it = attempts.find(started); it != attempts.end()) attempts.erase(it);
    }
    if (claimed) return claimed;
    if (!claimed.error().is(ErrorCode::unavailable)) return claimed;
    log::warn(kLog, "directory {} cannot take the claim of an Idempotency-Key ({}); trying the next",
              d.url, claimed.error().message);
    mark_unreachable(d.url);
    last = claimed.error();
  }
  return fail(last);
}

Result<IdempotencyClaim> IdempotencyKeys::look(const IdempotencyClaim& claim, const std::string& request_digest) {
  CA_TRY(auto order, order_for(claim.key_hash));
  for (const auto& d : order)
    if (d.url == claim.directory) {
      CA_TRY(auto seen, read_in(*d.pool, claim.key_hash, request_digest, d.url));
      if (seen.state == IdempotencyClaim::State::claimed && seen.nonce.empty())
        return claim_in(d, claim.key_hash, request_digest, std::chrono::system_clock::now());
      return seen;
    }
  return fail(Error::unavailable("the directory holding this Idempotency-Key is no longer known"));
}

Status IdempotencyKeys::complete(const IdempotencyClaim& claim, int status, const std::string& body) {
  CA_TRY(auto order, order_for(claim.key_hash));
  for (const auto& d : order) {
    if (d.url != claim.directory) continue;
    return d.pool->with_connection([&](store::LdapConnection& c) {
      // Still ours (nobody took it over): the nonce is removed and put back in one modify.
      return c.modify(claim_dn(claim.key_hash), {{Op::remove, "caClaimNonce", {claim.nonce}},
                                                 {Op::add, "caClaimNonce", {claim.nonce}},
                                                 {Op::replace, "caCodeState", {"done"}},
                                                 {Op::replace, "caStoredResponse", {fmt::format("{}\n{}", status, body)}},
                                                 {Op::replace, "caModifiedAt", {now_text()}}});
    });
  }
  return fail(Error::unavailable("the directory holding this Idempotency-Key is no longer known"));
}

void IdempotencyKeys::release(const IdempotencyClaim& claim) {
  auto order = order_for(claim.key_hash);
  if (!order) return;
  for (const auto& d : *order) {
    if (d.url != claim.directory) continue;
    Status removed = d.pool->with_connection([&](store::LdapConnection& c) -> Status {
      CA_TRY(auto entry, c.read(claim_dn(claim.key_hash), {"caClaimNonce", "caCodeState"}));
      if (!entry || entry->first_or("caClaimNonce") != claim.nonce || entry->first_or("caCodeState") != "pending")
        return ok();
      return c.remove(claim_dn(claim.key_hash));
    });
    if (!removed) log::info(kLog, "could not release an Idempotency-Key claim ({}); it expires by itself", removed.error().message);
    return;
  }
}

void IdempotencyKeys::finish_later(IdempotencyClaim claim, bool succeeded, int status, std::string body,
                                   std::function<void()> then) {
  boost::asio::post(finishers_, [this, claim = std::move(claim), succeeded, status, body = std::move(body),
                                 then = std::move(then)] {
    if (succeeded) {
      if (Status st = complete(claim, status, body); !st)
        log::warn(kLog, "could not store the answer for an Idempotency-Key ({}); a retry may be told to wait",
                  st.error().message);
    } else {
      release(claim);
    }
    then();
  });
}

void IdempotencyKeys::drain() { finishers_.join(); }

Result<int> IdempotencyKeys::sweep_expired() {
  const std::string base = fmt::format("ou=idempotencyKeys,{}", config_.directory.suffix);
  const std::string filter = fmt::format("(&(objectClass=caIdempotencyClaim)(caExpiresAt<={}))", now_text());
  CA_TRY(auto expired, local_->with_connection([&](store::LdapConnection& c) {
    return c.search(base, store::SearchScope::one, filter, store::SearchOptions{{"cn"}, 500});
  }));
  int removed = 0;
  for (const auto& e : expired) {
    Status st = local_->with_connection([&](store::LdapConnection& c) { return c.remove(e.dn); });
    if (st) ++removed;
  }
  if (removed) log::info(kLog, "removed {} expired Idempotency-Key claim(s)", removed);
  return removed;
}

}  // namespace ca::authority
