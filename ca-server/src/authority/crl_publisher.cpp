#include "authority/crl_publisher.hpp"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "core/log.hpp"
#include "crypto/crl_builder.hpp"

namespace ca::authority {

namespace {
constexpr std::string_view kLog = "crl";
}

CrlPublisher::CrlPublisher(store::CaStore& store, X509* ca_cert, EVP_PKEY* ca_key, CrlOptions options)
    : store_(store), ca_cert_(ca_cert), ca_key_(ca_key), options_(options), index_(store) {}

CrlPublisher::~CrlPublisher() { stop(); }

Status CrlPublisher::load_stored() {
  CA_TRY(auto stored, store_.load_crl("MasterCRL"));
  // The entry exists without a CRL before the first publication (the election keeps its lease there).
  if (!stored || stored->crl_der.empty()) return ok();
  CrlSet set;
  auto full = std::make_shared<PublishedCrl>();
  full->number = stored->crl_number;
  full->der = std::move(stored->crl_der);
  full->this_update = stored->this_update;
  full->next_update = stored->next_update;
  full->etag = fmt::format("\"MasterCRL-{}\"", full->number);
  set.full = full;
  if (!stored->delta_der.empty()) {
    auto delta = std::make_shared<PublishedCrl>();
    delta->number = stored->delta_number;
    delta->der = std::move(stored->delta_der);
    delta->this_update = stored->this_update;
    delta->next_update = stored->next_update;
    delta->etag = fmt::format("\"MasterCRL-delta-{}\"", delta->number);
    set.delta = delta;
  }
  std::lock_guard lock(mutex_);
  last_number_ = std::max({last_number_, stored->crl_number, stored->delta_number});
  stage(std::move(set), stored->serve_from);
  return ok();
}

void CrlPublisher::stage(CrlSet set, std::chrono::system_clock::time_point from) {
  const uint64_t number = std::max(set.full ? set.full->number : 0, set.delta ? set.delta->number : 0);
  if (number <= known_number() && latest_.full) return;  // never back
  if (!latest_.full || from <= std::chrono::system_clock::now()) {
    latest_ = std::move(set);
    pending_.reset();
    return;
  }
  pending_ = std::move(set);
  pending_from_ = from;
}

uint64_t CrlPublisher::known_number() const {
  auto number_of = [](const CrlSet& s) {
    return std::max(s.full ? s.full->number : 0, s.delta ? s.delta->number : 0);
  };
  return std::max(number_of(latest_), pending_ ? number_of(*pending_) : 0);
}

bool CrlPublisher::generating() const { return options_.generate && (!is_master_ || is_master_()); }

void CrlPublisher::poke() { wake_.notify_all(); }

void CrlPublisher::stored_crl_changed() {
  {
    std::lock_guard lock(mutex_);
    follow_now_ = true;
  }
  wake_.notify_all();
}

Status CrlPublisher::start() {
  CA_CHECK(load_stored());
  if (generating()) {
    // A failure here is not fatal: the server can serve and revoke meanwhile, and the schedule
    // retries (every 5 s) until a CRL is published.
    Status first = index_.load();
    if (first) first = publish_now();
    if (!first) log::error(kLog, "the first CRL could not be published (retrying): {}", first.error().message);
    else initial_published_ = true;
  }
  thread_ = std::thread([this] { loop(); });
  return ok();
}

Status CrlPublisher::follow() {
  CA_TRY(auto stored, store_.load_crl_numbers("MasterCRL"));
  if (!stored) return ok();
  uint64_t newest = std::max(stored->crl_number, stored->delta_number);
  {
    std::lock_guard lock(mutex_);
    if (newest <= known_number()) return ok();
  }
  CA_CHECK(load_stored());
  const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(stored->serve_from - std::chrono::system_clock::now());
  if (wait.count() > 0)
    log::info(kLog, "CRL {} published by the CRL master: served from {} ms on", stored->crl_number, wait.count());
  else
    log::info(kLog, "serving CRL {} published by the CRL master", stored->crl_number);
  return ok();
}

void CrlPublisher::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void CrlPublisher::revoked(const store::RevocationChange& change) {
  index_.apply(change);
  std::lock_guard lock(mutex_);
  if (!dirty_) dirty_since_ = std::chrono::steady_clock::now();
  dirty_ = true;
  wake_.notify_all();
}

CrlSet CrlPublisher::latest() const {
  std::lock_guard lock(mutex_);
  if (pending_ && pending_from_ <= std::chrono::system_clock::now()) {
    latest_ = std::move(*pending_);
    pending_.reset();
  }
  return latest_;
}

Result<std::shared_ptr<PublishedCrl>> CrlPublisher::build(uint64_t number, std::optional<uint64_t> delta_base,
                                                          std::span<const crypto::CrlEntry> entries,
                                                          std::chrono::system_clock::time_point now) {
  crypto::CrlParams params{number, delta_base, now, now + options_.validity};
  CA_TRY(auto der, crypto::build_crl(ca_cert_, ca_key_, params, entries));
  auto crl = std::make_shared<PublishedCrl>();
  crl->number = number;
  crl->der = std::move(der);
  crl->this_update = params.this_update;
  crl->next_update = params.next_update;
  crl->etag = delta_base ? fmt::format("\"MasterCRL-delta-{}\"", number) : fmt::format("\"MasterCRL-{}\"", number);
  return crl;
}

Status CrlPublisher::publish_now() {
  std::lock_guard publishing(publish_mutex_);
  auto started = std::chrono::steady_clock::now();
  // Pick up revocations made by other instances (and any we missed) first.
  CA_CHECK(index_.refresh());
  uint64_t base_number;
  {
    std::lock_guard lock(mutex_);
    dirty_ = false;
    // The base of the next delta: the newest full CRL published, served yet or not.
    const CrlSet& newest = pending_ ? *pending_ : latest_;
    base_number = newest.full ? newest.full->number : 0;
  }
  // Numbers continue from the directory, so they never go backwards across restarts or instances.
  CA_TRY(auto stored, store_.load_crl_numbers("MasterCRL"));
  uint64_t last = stored ? std::max(stored->crl_number, stored->delta_number) : 0;
  {
    std::lock_guard lock(mutex_);
    last = std::max(last, last_number_);
  }
  const uint64_t full_number = last + 1;
  auto now = std::chrono::system_clock::now();
  std::shared_ptr<PublishedCrl> full, delta;
  std::size_t delta_count = 0;
  Status built = index_.build_and_take_delta(
      [&](std::span<const crypto::CrlEntry> entries, std::span<const crypto::CrlEntry> changes, bool complete) -> Status {
        CA_TRY(full, build(full_number, std::nullopt, entries, now));
        if (!complete) {
          // The index was (re)loaded: it cannot say what changed since the previous CRL (made
          // perhaps by another instance, before a restart or a takeover), so this full CRL becomes
          // the base of an empty delta rather than a delta against a base it cannot vouch for.
          base_number = full_number;
          changes = {};
        }
        delta_count = changes.size();
        if (base_number > 0) {
          CA_TRY(delta, build(full_number + 1, base_number, changes, now));
        }
        return ok();
      });
  if (!built) {
    index_.restore_delta();
    return built;
  }
  store::CrlRecord record;
  record.crl_number = full_number;
  record.delta_number = delta ? delta->number : 0;
  record.this_update = now;
  record.next_update = full->next_update;
  record.crl_der = full->der;
  if (delta) record.delta_der = delta->der;
  const auto serve_from = std::chrono::system_clock::now() + options_.activation_delay;
  record.serve_from = serve_from;
  if (Status saved = store_.save_crl(record); !saved) {
    index_.restore_delta();
    return saved;
  }
  std::size_t entries = index_.size();
  {
    std::lock_guard lock(mutex_);
    last_number_ = delta ? delta->number : full->number;
    stage(CrlSet{full, delta}, serve_from);
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
  log::info(kLog, "published CRL {} ({} entries, {} bytes){} in {} ms", full_number, entries, full->der.size(),
            delta ? fmt::format(" and delta CRL {} ({} changes since CRL {})", delta->number, delta_count, base_number)
                  : std::string(),
            ms);
  return ok();
}

void CrlPublisher::loop() {
  using clock = std::chrono::steady_clock;
  auto last_full = clock::now();
  auto last_poll = clock::now();
  // Not yet published at start: behave as if just elected, so the first round loads and publishes.
  bool was_generating = generating() && initial_published_;
  if (!initial_published_) last_poll = clock::now() - options_.poll_interval;
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    auto deadline = std::min(last_full + options_.update_interval, last_poll + options_.poll_interval);
    if (dirty_) deadline = std::min(deadline, dirty_since_ + options_.debounce);
    // No predicate: a revocation that arrives while we sleep shortens the deadline, so recompute it
    // on every wake-up instead of sleeping on to the one computed before.
    if (!follow_now_) wake_.wait_until(lock, deadline);
    if (stopping_) break;
    const bool pushed = std::exchange(follow_now_, false);
    lock.unlock();
    auto now = clock::now();
    const bool gen = generating();
    Status st = ok();
    if (gen && !was_generating) {
      // Just elected: the index may be stale or never loaded; start from the directory.
      st = index_.load();
      if (st) st = publish_now();
      if (st) last_full = clock::now();
    } else if (gen) {
      if (now >= last_poll + options_.poll_interval) {
        last_poll = now;
        auto found = index_.refresh();  // revocations made on other instances
        if (found && *found > 0) {
          std::lock_guard guard(mutex_);
          if (!dirty_) dirty_since_ = now;
          dirty_ = true;
        } else if (!found) {
          st = fail(found.error());
        }
      }
      bool scheduled = now >= last_full + options_.update_interval;
      bool debounced;
      {
        std::lock_guard guard(mutex_);
        debounced = dirty_ && now >= dirty_since_ + options_.debounce;
      }
      if (st && (scheduled || debounced)) {
        // The scheduled full CRL reloads the whole index: it also picks up revocations that
        // replication delivered late, with timestamps older than the refresh margin.
        if (scheduled) st = index_.load();
        if (st) st = publish_now();
        if (st) last_full = clock::now();
      }
    } else {
      {
        // Our own revocations mark the CRL dirty; only the CRL master acts on it. Without this a
        // follower's deadline would stay in the past and the loop would spin.
        std::lock_guard guard(mutex_);
        dirty_ = false;
      }
      if (pushed || now >= last_poll + options_.poll_interval) {
        last_poll = now;
        st = follow();
      }
      if (now >= last_full + options_.update_interval) last_full = now;  // keeps the deadline ahead
    }
    was_generating = gen;
    if (!st) {
      log::warn(kLog, "CRL {} failed, retrying in 5 s: {}", gen ? "generation" : "refresh", st.error().message);
      last_full = clock::now() - options_.update_interval + std::chrono::seconds(5);
    }
    lock.lock();
  }
}

}  // namespace ca::authority
