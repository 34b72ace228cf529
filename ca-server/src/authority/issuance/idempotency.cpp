#include "authority/issuance/idempotency.hpp"

#include <cctype>

#include <fmt/format.h>
#include <openssl/evp.h>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "authority/access/one_time_secret.hpp"
#include "core/log.hpp"

namespace ca::authority {

namespace {
constexpr std::string_view kLog = "idempotency";

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
}  // namespace

IdempotencyKeys::IdempotencyKeys(const InstanceConfig& config, SingleUseClaims& claims, IdempotencyOptions options)
    : config_(config), claims_(claims), options_(options) {}

Status IdempotencyKeys::check_key(std::string_view key) {
  if (key.empty() || key.size() > 255) return fail(Error::bad_request("Idempotency-Key must be 1 to 255 characters"));
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

store::ClaimId IdempotencyKeys::claim_id(const std::string& key_hash) {
  return SingleUseClaims::claim_id(ClaimKind::idempotency_key, key_hash);
}

template <typename Operation>
auto IdempotencyKeys::at_claim_home(const IdempotencyClaim& claim, Operation&& operation)
    -> decltype(operation(std::declval<const Home&>())) {
  return claims_.at_home(
      ClaimKind::idempotency_key, claim.key_hash,
      [&](const Home& home) -> decltype(operation(std::declval<const Home&>())) {
        // The registry changed since the claim was made (an instance joined or left).
        if (home.directory != claim.home)
          return std::unexpected(Error::unavailable("the home directory of this Idempotency-Key moved"));
        return operation(home);
      });
}

Result<IdempotencyClaim> IdempotencyKeys::read_in(const Home& home, const std::string& key_hash,
                                                  const std::string& request_digest) {
  CA_TRY(auto stored, home.claims->read_claim(claim_id(key_hash)));
  IdempotencyClaim claim;
  claim.key_hash = key_hash;
  claim.home = home.directory;
  if (!stored) {
    claim.state = IdempotencyClaim::State::claimed;  // gone: the caller may claim again
    claim.nonce.clear();
    return claim;
  }
  if (stored->digest != request_digest) {
    claim.state = IdempotencyClaim::State::mismatch;
    return claim;
  }
  claim.nonce = stored->nonce;
  if (stored->state == "done") {
    const std::string& answer = stored->stored_response;
    auto newline = answer.find('\n');
    claim.state = IdempotencyClaim::State::replay;
    claim.status = std::atoi(answer.substr(0, newline).c_str());
    claim.stored_body = newline == std::string::npos ? std::string() : answer.substr(newline + 1);
    return claim;
  }
  claim.state = IdempotencyClaim::State::in_progress;
  // A pending claim whose owner is gone: take it over (compare-and-set on the nonce). Or one of
  // this instance's own attempts, refused when the add timed out, that landed after all.
  const auto now = std::chrono::system_clock::now();
  if (now - stored->created_at > options_.pending_timeout || claims_.take_abandoned(claim.nonce)) {
    CA_TRY(std::string nonce, random_hex(12));
    Status taken =
        home.claims->swap_claim_nonce(claim_id(key_hash), claim.nonce, nonce,
                                      store::ClaimChange{.instance_id = config_.instance_id, .created_at = now});
    if (taken) {
      log::info(kLog, "took over the stale claim of key {} in {}", key_hash.substr(0, 16), home.name());
      claim.state = IdempotencyClaim::State::claimed;
      claim.nonce = nonce;
    } else if (!taken.error().is(ErrorCode::conflict)) {
      return fail(taken.error());
    }
  }
  return claim;
}

Result<IdempotencyClaim> IdempotencyKeys::claim_in(const Home& home, const std::string& key_hash,
                                                   const std::string& request_digest,
                                                   std::chrono::system_clock::time_point request_started) {
  CA_TRY(std::string nonce, random_hex(12));
  store::ClaimRecord record;
  record.id = claim_id(key_hash);
  record.digest = request_digest;
  record.state = "pending";
  record.nonce = nonce;
  record.instance_id = config_.instance_id;
  record.created_at = request_started;
  record.expires_at = std::chrono::system_clock::now() + options_.retention;
  Status added = home.claims->add_claim(record);
  if (added) {
    IdempotencyClaim claim;
    claim.key_hash = key_hash;
    claim.nonce = nonce;
    claim.home = home.directory;
    return claim;
  }
  if (!added.error().is(ErrorCode::conflict)) {
    // It may still land (a frozen home): the next attempt here takes it over at once, others once
    // it is stale.
    claims_.note_abandoned(ClaimKind::idempotency_key, key_hash, nonce, home.directory, false);
    return fail(added.error());
  }
  CA_TRY(auto existing, read_in(home, key_hash, request_digest));
  if (existing.state == IdempotencyClaim::State::claimed && existing.nonce.empty())
    return claim_in(home, key_hash, request_digest, request_started);  // released between our add and our read
  return existing;
}

Result<IdempotencyClaim> IdempotencyKeys::begin(std::string_view key, const std::string& request_digest,
                                                std::chrono::system_clock::time_point request_started) {
  CA_CHECK(check_key(key));
  const std::string key_hash = digest(key);
  // Only in the key's home: a home that does not answer refuses the key (fail closed).
  return claims_.at_home(ClaimKind::idempotency_key, key_hash,
                         [&](const Home& home) { return claim_in(home, key_hash, request_digest, request_started); });
}

Result<IdempotencyClaim> IdempotencyKeys::look(const IdempotencyClaim& claim, const std::string& request_digest) {
  return at_claim_home(claim, [&](const Home& home) -> Result<IdempotencyClaim> {
    CA_TRY(auto seen, read_in(home, claim.key_hash, request_digest));
    if (seen.state == IdempotencyClaim::State::claimed && seen.nonce.empty())
      return claim_in(home, claim.key_hash, request_digest, std::chrono::system_clock::now());
    return seen;
  });
}

Status IdempotencyKeys::complete(const IdempotencyClaim& claim, int status, const std::string& body) {
  return at_claim_home(claim, [&](const Home& home) -> Status {
    // Still ours (nobody took it over): the nonce is removed and put back in one modify.
    return home.claims->swap_claim_nonce(claim_id(claim.key_hash), claim.nonce, claim.nonce,
                                         store::ClaimChange{.state = "done",
                                                            .stored_response = fmt::format("{}\n{}", status, body),
                                                            .modified_at = std::chrono::system_clock::now()});
  });
}

void IdempotencyKeys::release(const IdempotencyClaim& claim) {
  Status removed = at_claim_home(claim, [&](const Home& home) -> Status {
    CA_TRY(auto stored, home.claims->read_claim(claim_id(claim.key_hash)));
    if (!stored || stored->nonce != claim.nonce || stored->state != "pending") return ok();
    return home.claims->remove_claim(claim_id(claim.key_hash));
  });
  if (!removed)
    log::info(kLog, "could not release an Idempotency-Key claim ({}); it expires by itself", removed.error().message);
}

void IdempotencyKeys::finish_later(IdempotencyClaim claim, bool succeeded, int status, std::string body,
                                   std::function<void()> then) {
  boost::asio::post(
      finishers_, [this, claim = std::move(claim), succeeded, status, body = std::move(body), then = std::move(then)] {
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

void IdempotencyKeys::submit(std::string_view key, const std::string& request_digest,
                             std::chrono::system_clock::time_point received_at, KeyedWork work,
                             KeyedAnswerCallback done) {
  // Another instance enrolling this key right now has its answer usually milliseconds away: it is
  // waited for at most 3 s (the claim is taken over once stale, see IdempotencyOptions).
  settle(begin(key, request_digest, received_at), request_digest,
         std::chrono::steady_clock::now() + std::chrono::seconds(3), std::move(work), std::move(done));
}

void IdempotencyKeys::settle(Result<IdempotencyClaim> claim, std::string request_digest,
                             std::chrono::steady_clock::time_point wait_until, KeyedWork work,
                             KeyedAnswerCallback done) {
  if (!claim) return done(fail(claim.error()));
  using State = IdempotencyClaim::State;
  switch (claim->state) {
    case State::mismatch:
      return done(fail(Error::conflict("this Idempotency-Key was already used with a different request")));
    case State::in_progress: {
      if (std::chrono::steady_clock::now() >= wait_until)
        return done(KeyedAnswer{KeyedAnswer::Kind::in_progress, 0, {}});
      auto timer = std::make_shared<boost::asio::steady_timer>(finishers_, std::chrono::milliseconds(100));
      timer->async_wait([this, timer, held = std::move(*claim), request_digest = std::move(request_digest), wait_until,
                         work = std::move(work), done = std::move(done)](boost::system::error_code) mutable {
        auto again = look(held, request_digest);  // before request_digest is moved on
        settle(std::move(again), std::move(request_digest), wait_until, std::move(work), std::move(done));
      });
      return;
    }
    case State::replay:
      return done(KeyedAnswer{KeyedAnswer::Kind::replayed, claim->status, std::move(claim->stored_body)});
    case State::claimed:
      break;
  }
  work([this, held = std::move(*claim), done = std::move(done)](Result<KeyedAnswer> answer) mutable {
    if (!answer) {
      finish_later(std::move(held), false, 0, {},
                   [done = std::move(done), error = answer.error()] { done(fail(error)); });
      return;
    }
    const int status = answer->status;
    std::string body = answer->body;
    finish_later(std::move(held), true, status, std::move(body),
                 [done = std::move(done), answer = std::move(*answer)]() mutable { done(std::move(answer)); });
  });
}

}  // namespace ca::authority
