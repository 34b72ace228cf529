#include "authority/revocation/crl_publisher.hpp"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "authority/revocation/crl_numbering.hpp"
#include "authority/revocation/crl_partitions.hpp"
#include "core/log.hpp"
#include "crypto/crl_builder.hpp"
#include "crypto/crl_reader.hpp"

namespace ca::authority {

namespace {
constexpr std::string_view kLog = "crl";
constexpr std::string_view kIssuingPoint = "MasterCRL";

std::string etag_of(std::optional<std::size_t> partition, bool delta, uint64_t number) {
  std::string name = crl_issuing_point_name(partition);
  return fmt::format("\"{}{}-{}\"", name, delta ? "-delta" : "", number);
}

std::shared_ptr<PublishedCrl> published_from(store::StoredCrl stored, std::optional<std::size_t> partition) {
  auto crl = std::make_shared<PublishedCrl>();
  crl->number = stored.number;
  crl->base = stored.base;
  crl->der = std::move(stored.der);
  crl->this_update = stored.this_update;
  crl->next_update = stored.next_update;
  crl->etag = etag_of(partition, stored.base != 0, stored.number);
  return crl;
}

store::StoredCrl stored_from(const PublishedCrl& crl, std::chrono::system_clock::time_point serve_from) {
  return store::StoredCrl{crl.number, crl.base, crl.this_update, crl.next_update, serve_from, crl.der};
}
}  // namespace

std::string serial_hex_of(const crypto::CrlEntry& e) {
  std::string hex;
  for (uint8_t b : e.serial_bytes()) hex += fmt::format("{:02x}", b);
  return hex;
}

struct CrlPublisher::Built {
  CrlSet set;
  std::size_t changes = 0;
};

uint64_t CrlSet::newest_number() const { return std::max(full ? full->number : 0, delta ? delta->number : 0); }

CrlPublisher::CrlPublisher(store::CaStore& store, const crypto::Issuer& ca, CrlOptions options)
    : store_(store), ca_(ca), options_(std::move(options)), index_(store) {}

CrlPublisher::~CrlPublisher() { stop(); }

void CrlPublisher::set_master_check(std::function<bool()> is_master) {
  master_epoch_ = [is_master = std::move(is_master)]() -> std::optional<uint64_t> {
    return is_master() ? std::optional<uint64_t>(0) : std::nullopt;
  };
}

std::optional<uint64_t> CrlPublisher::current_epoch() const {
  if (!options_.generate) return std::nullopt;
  if (!master_epoch_) return uint64_t{0};
  return master_epoch_();
}

const CrlSet& CrlPublisher::newest_set() const { return pending_ ? *pending_ : latest_; }

Status CrlPublisher::load_stored() {
  uint64_t have_full;
  std::size_t have_partitions;
  {
    std::lock_guard lock(mutex_);
    have_full = newest_set().full ? newest_set().full->number : 0;
    have_partitions = newest_set().partitions.size();
  }
  CA_TRY(auto stored, store_.load_crl(kIssuingPoint, have_full));
  // The entry exists without a CRL before the first publication (the election keeps its lease there).
  if (!stored || stored->crl_number == 0) return ok();
  bool full_skipped = have_full != 0 && stored->crl_number == have_full;
  if (full_skipped && stored->partitions.size() != have_partitions) {
    CA_TRY(auto again, store_.load_crl(kIssuingPoint, 0));
    if (!again) return ok();
    stored = std::move(again);
    full_skipped = false;
  }
  if (number_observer_) number_observer_(std::max(stored->crl_number, stored->delta_number));
  // Replication brings the issuing point entry and the CRL entries separately: use them only once
  // they agree (the next push or poll looks again).
  std::vector<std::string> missing;
  auto scope_of = [&](store::CrlScope& scope, const std::shared_ptr<const PublishedCrl>& current_full,
                      std::optional<std::size_t> partition) -> CrlPair {
    CrlPair pair;
    if (full_skipped)
      pair.full = current_full;
    else if (scope.full && scope.full->number == stored->crl_number)
      pair.full = published_from(std::move(*scope.full), partition);
    if (!pair.full) missing.push_back(crl_file_name(partition, false));
    if (stored->delta_number) {
      if (scope.delta && scope.delta->number == stored->delta_number && scope.delta->base == stored->crl_number)
        pair.delta = published_from(std::move(*scope.delta), partition);
      else
        missing.push_back(crl_file_name(partition, true));
    }
    return pair;
  };
  CrlSet set;
  {
    CrlSet current;
    {
      std::lock_guard lock(mutex_);
      current = newest_set();
    }
    CrlPair complete = scope_of(stored->complete, current.full, std::nullopt);
    set.full = complete.full;
    set.delta = complete.delta;
    for (std::size_t k = 0; k < stored->partitions.size(); ++k)
      set.partitions.push_back(
          scope_of(stored->partitions[k], k < current.partitions.size() ? current.partitions[k].full : nullptr, k));
  }
  if (!missing.empty()) {
    log::info(kLog, "CRL {} / delta {} announced, {} not replicated here yet", stored->crl_number, stored->delta_number,
              fmt::join(missing, ", "));
    return ok();
  }
  CrlSet current;
  {
    std::lock_guard lock(mutex_);
    current = newest_set();
  }
  if (current.full && set.newest_number() > current.newest_number()) {
    CA_TRY(bool complete, lists_everything_still_revoked(current, set));
    if (!complete) return ok();  // keep serving what we serve; the next push or poll looks again
  }
  std::lock_guard lock(mutex_);
  last_number_ = std::max({last_number_, stored->crl_number, stored->delta_number});
  stage(std::move(set), stored->serve_from);
  return ok();
}

Result<std::vector<crypto::CrlEntry>> CrlPublisher::listed_by(const CrlSet& set) {
  std::vector<crypto::CrlEntry> listed;
  if (!set.full) return listed;
  if (listed_cache_number_ == set.full->number) {
    listed = listed_cache_;
  } else {
    CA_TRY(auto full, crypto::read_crl(set.full->der));
    listed = std::move(full.entries);
    std::sort(listed.begin(), listed.end());
    listed_cache_ = listed;
    listed_cache_number_ = set.full->number;
  }
  if (set.delta && set.delta->base == set.full->number) {
    CA_TRY(auto delta, crypto::read_crl(set.delta->der));
    std::sort(delta.entries.begin(), delta.entries.end());
    // One merge: a delta of a mass revocation holds up to 10 % of a million entries.
    std::vector<crypto::CrlEntry> merged;
    merged.reserve(listed.size() + delta.entries.size());
    auto it = listed.begin();
    for (const auto& e : delta.entries) {
      while (it != listed.end() && *it < e) merged.push_back(*it++);
      if (it != listed.end() && it->same_serial(e)) ++it;
      if (e.reason != 8) merged.push_back(e);  // removeFromCRL takes it off
    }
    merged.insert(merged.end(), it, listed.end());
    listed = std::move(merged);
  }
  return listed;
}

Result<bool> CrlPublisher::lists_everything_still_revoked(const CrlSet& served, const CrlSet& next) {
  CA_TRY(auto before, listed_by(served));
  CA_TRY(auto after, listed_by(next));
  std::vector<crypto::CrlEntry> dropped;
  std::set_difference(before.begin(), before.end(), after.begin(), after.end(), std::back_inserter(dropped));
  for (const auto& e : dropped) {
    // Dropped legitimately only when taken off hold (or never revoked here: a CRL of a master that
    // has since been shown wrong is not a reason to drop a serial either way, so check the record).
    auto record = store_.find_certificate(serial_hex_of(e));
    if (!record && !record.error().is(ErrorCode::not_found)) return fail(record.error());
    if (record && record->status != "REVOKED") continue;
    log::warn(kLog,
              "CRL {} / delta {} does not list serial {}, which is revoked here (published before its "
              "master learned of it, after a partition?): keeping CRL {} / delta {} until a complete one",
              next.full->number, next.delta ? next.delta->number : 0, serial_hex_of(e), served.full->number,
              served.delta ? served.delta->number : 0);
    return false;
  }
  return true;
}

void CrlPublisher::stage(CrlSet set, std::chrono::system_clock::time_point from) {
  if (set.newest_number() <= known_number() && latest_.full) return;  // never back
  if (!latest_.full || from <= std::chrono::system_clock::now()) {
    latest_ = std::move(set);
    pending_.reset();
    return;
  }
  pending_ = std::move(set);
  pending_from_ = from;
}

uint64_t CrlPublisher::known_number() const {
  return std::max(latest_.newest_number(), pending_ ? pending_->newest_number() : 0);
}

void CrlPublisher::poke() { wake_.notify_all(); }

void CrlPublisher::stored_crl_changed() {
  {
    std::lock_guard lock(mutex_);
    follow_now_ = true;
  }
  wake_.notify_all();
}

void CrlPublisher::feed_reload_end() {
  index_.end_reload();
  {
    std::lock_guard lock(mutex_);
    // A (re)loaded index cannot say what changed since the last full CRL: the next CRL is a full one.
    full_due_ = true;
    if (!dirty_) dirty_since_ = std::chrono::steady_clock::now();
    dirty_ = true;
  }
  wake_.notify_all();
}

Status CrlPublisher::reconcile_with_stored() {
  CA_TRY(auto stored, store_.load_crl(kIssuingPoint));
  if (!stored) return ok();
  std::size_t carried = 0;
  auto consider = [&](const std::optional<store::StoredCrl>& crl) -> Status {
    if (!crl || crl->der.empty()) return ok();
    if (!crypto::crl_signed_by(crl->der, ca_.certificate())) {
      log::warn(kLog, "the stored CRL {} is not signed by this CA; not reconciled with", crl->number);
      return ok();
    }
    CA_TRY(auto contents, crypto::read_crl(crl->der));
    const auto published = std::chrono::system_clock::from_time_t(static_cast<std::time_t>(contents.this_update));
    for (const auto& e : contents.entries) {
      if (e.reason == 8 || index_.contains(e)) continue;  // removeFromCRL, or known
      store::RevocationChange change;
      change.serial_hex = serial_hex_of(e);
      change.revoked = true;
      change.revoked_on = std::chrono::system_clock::from_time_t(static_cast<std::time_t>(e.revoked_at));
      change.reason = e.reason;
      if (e.invalidity_date)
        change.invalidity_date = std::chrono::system_clock::from_time_t(static_cast<std::time_t>(e.invalidity_date));
      auto record = store_.find_certificate(change.serial_hex);
      if (record) {
        if (record->status == "REVOKED" && record->revoked_on) {
          change.revoked_on = *record->revoked_on;
          change.reason = record->revocation_reason;
        } else if (record->modified_at >= published) {
          continue;  // taken off hold after that CRL was published
        }
      } else if (!record.error().is(ErrorCode::not_found)) {
        return fail(record.error());
      }
      // Revoked here, or published by another master before its record reached this directory.
      // (Should that record arrive released from hold, the watch does not report it: it never
      // matched the revoked filter here. The serial then stays listed on hold until the index is
      // rebuilt by the watch's next refresh; over-listing a hold is the safe side.)
      index_.apply(change);
      ++carried;
    }
    return ok();
  };
  CA_CHECK(consider(stored->complete.full));
  CA_CHECK(consider(stored->complete.delta));
  if (carried)
    log::info(kLog, "{} serials listed by the stored CRLs (up to {}) were not in the index yet; they stay listed",
              carried, std::max(stored->crl_number, stored->delta_number));
  return ok();
}

Status CrlPublisher::start(std::chrono::milliseconds index_wait) {
  CA_CHECK(load_stored());
  if (generating()) {
    Status first = ok();
    if (options_.revocations_fed) {
      // The watch's first refresh phase is the index load (a million entries take seconds).
      const auto until = std::chrono::steady_clock::now() + index_wait;
      auto next_note = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while (!index_.ready() && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        if (std::chrono::steady_clock::now() >= next_note) {
          log::info(kLog, "waiting for the revoked index to load from the directory");
          next_note += std::chrono::seconds(5);
        }
      }
    } else {
      first = index_.load();
    }
    // A failure here is not fatal: the server can serve and revoke meanwhile, and the schedule
    // retries (every 5 s) until a CRL is published.
    if (first) first = reconcile_with_stored();
    if (first) first = publish_now(true);
    if (!first)
      log::error(kLog, "the first CRL could not be published (retrying): {}", first.error().message);
    else
      initial_published_ = true;
  }
  thread_ = std::thread([this] { loop(); });
  return ok();
}

Status CrlPublisher::follow() {
  CA_TRY(auto stored, store_.load_crl_numbers(kIssuingPoint));
  if (!stored) return ok();
  if (number_observer_ && stored->newest_stored) number_observer_(stored->newest_stored);
  const uint64_t newest = std::max(stored->crl_number, stored->delta_number);
  {
    std::lock_guard lock(mutex_);
    const uint64_t served = known_number();
    if (newest < served && newest != last_older_stored_) {
      // Never served (a number never goes down here), but a sign of two epochs publishing: a
      // deposed master's late write, or this directory behind. Counted for /metrics and /readyz.
      last_older_stored_ = newest;
      older_stored_.fetch_add(1);
      older_stored_at_ = std::chrono::steady_clock::now();
      log::warn(kLog,
                "the directory holds CRL {} (epoch {}), below CRL {} served here: another epoch published; "
                "CRL {} stays served",
                newest, epoch_of_crl_number(newest), served, served);
    }
    if (newest <= served) return ok();
  }
  CA_CHECK(load_stored());
  {
    std::lock_guard lock(mutex_);
    if (known_number() < newest) return ok();  // not all of it replicated here yet
  }
  const auto wait =
      std::chrono::duration_cast<std::chrono::milliseconds>(stored->serve_from - std::chrono::system_clock::now());
  if (wait.count() > 0)
    log::info(kLog, "CRL {} / delta {} published by the CRL master: served from {} ms on", stored->crl_number,
              stored->delta_number, wait.count());
  else
    log::info(kLog, "serving CRL {} / delta {} published by the CRL master", stored->crl_number, stored->delta_number);
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

Result<std::shared_ptr<PublishedCrl>> CrlPublisher::build(uint64_t number, uint64_t delta_base,
                                                          std::span<const crypto::CrlEntry> entries,
                                                          std::optional<std::size_t> partition,
                                                          std::chrono::system_clock::time_point now) {
  crypto::CrlParams params;
  params.crl_number = number;
  if (delta_base) params.delta_base = delta_base;
  params.this_update = now;
  params.next_update = now + options_.validity;
  if (!options_.base_url.empty()) {
    if (partition) params.issuing_distribution_point = options_.base_url + "/crl/" + crl_file_name(partition, false);
    if (!delta_base) params.freshest_crl = options_.base_url + "/crl/" + crl_file_name(partition, true);
  }
  CA_TRY(auto der, crypto::build_crl(ca_, params, entries));
  auto crl = std::make_shared<PublishedCrl>();
  crl->number = number;
  crl->base = delta_base;
  crl->der = std::move(der);
  crl->this_update = params.this_update;
  crl->next_update = params.next_update;
  crl->etag = etag_of(partition, delta_base != 0, number);
  return crl;
}

Status CrlPublisher::build_scopes(Built& out, bool full, uint64_t number, uint64_t base,
                                  std::span<const crypto::CrlEntry> entries, std::span<const crypto::CrlEntry> changes,
                                  std::chrono::system_clock::time_point now) {
  const std::size_t partitions = options_.partitions > 1 ? options_.partitions : 0;
  auto split = [&](std::span<const crypto::CrlEntry> all) {
    std::vector<std::vector<crypto::CrlEntry>> parts(partitions);
    if (partitions == 0) return parts;
    for (const auto& e : all) parts[crl_partition_of(e, partitions)].push_back(e);
    return parts;
  };
  out.set.partitions.assign(partitions, CrlPair{});
  if (full) {
    // A full CRL, and an empty delta based on it (clients that fetch deltas find one at once).
    CA_TRY(auto complete, build(number, 0, entries, std::nullopt, now));
    CA_TRY(auto delta, build(number + 1, number, {}, std::nullopt, now));
    out.set.full = complete;
    out.set.delta = delta;
    const auto parts = split(entries);
    for (std::size_t k = 0; k < partitions; ++k) {
      CA_TRY(auto f, build(number, 0, parts[k], k, now));
      CA_TRY(auto d, build(number + 1, number, {}, k, now));
      out.set.partitions[k] = CrlPair{f, d};
    }
    return ok();
  }
  const uint64_t delta_number = number;
  out.changes = changes.size();
  CA_TRY(auto delta, build(delta_number, base, changes, std::nullopt, now));
  out.set.delta = delta;
  const auto parts = split(changes);
  for (std::size_t k = 0; k < partitions; ++k) {
    CA_TRY(auto d, build(delta_number, base, parts[k], k, now));
    out.set.partitions[k].delta = d;
  }
  return ok();
}

bool CrlPublisher::delta_suffices(uint64_t base, uint64_t epoch, const CrlSet& current) const {
  // A delta needs a base this master published in this epoch, whose content the index's recorded
  // changes are relative to; and stays small, else a new full CRL is cheaper for everyone.
  const bool base_ours = base != 0 && (epoch == 0 || epoch_of_crl_number(base) == epoch) && index_.delta_complete() &&
                         current.partitions.size() == (options_.partitions > 1 ? options_.partitions : 0);
  const auto limit = std::max<std::size_t>(
      options_.full_after_min_changes,
      static_cast<std::size_t>(options_.full_after_fraction * static_cast<double>(index_.size())));
  const bool delta_large = index_.delta_size() > limit;
  return base_ours && !delta_large;
}

Status CrlPublisher::publish_now(bool full) {
  std::lock_guard publishing(publish_mutex_);
  const auto started = std::chrono::steady_clock::now();
  const auto epoch = current_epoch();
  if (!epoch) return fail(Error::unavailable("this instance is not the CRL master"));
  if (!options_.revocations_fed) {
    CA_CHECK(index_.refresh());  // revocations made by other instances (and any we missed)
  } else if (!index_.ready()) {
    return fail(Error::unavailable("the revoked index has not been loaded from the directory yet"));
  }
  // Numbers continue from the directory, so they never go backwards across restarts or instances.
  CA_TRY(auto stored, store_.load_crl_numbers(kIssuingPoint));
  const uint64_t stored_newest = stored ? stored->newest_stored : 0;
  if (number_observer_ && stored_newest) number_observer_(stored_newest);
  uint64_t newest, base;
  CrlSet current;
  {
    std::lock_guard lock(mutex_);
    newest = std::max(stored_newest, last_number_);
    current = newest_set();
    base = current.full ? current.full->number : 0;
    full = full || full_due_;
    dirty_ = false;
  }
  if (*epoch != 0 && epoch_of_crl_number(newest) > *epoch) {
    // The election mints a new epoch at once (number_observer_); publish again soon after.
    std::lock_guard lock(mutex_);
    full_due_ = true;
    dirty_ = true;
    dirty_since_ = std::chrono::steady_clock::now();
    stale_epoch_ = true;
    return fail(
        Error::conflict(fmt::format("CRL {} of a later epoch ({}) is stored: epoch {} is stale, a new one is due",
                                    newest, epoch_of_crl_number(newest), *epoch)));
  }
  const uint64_t number =
      (*epoch == 0 || epoch_of_crl_number(newest) == *epoch) ? newest + 1 : first_crl_number(*epoch);
  full = full || !delta_suffices(base, *epoch, current);

  const auto now = std::chrono::system_clock::now();
  Built built;
  if (!full) built.set.full = current.full;  // only the deltas are new
  Status made = index_.build_and_take_delta(
      [&](std::span<const crypto::CrlEntry> entries, std::span<const crypto::CrlEntry> changes, bool) -> Status {
        return build_scopes(built, full, number, base, entries, changes, now);
      },
      full);
  if (!made) {
    if (full) index_.restore_delta();
    return made;
  }
  if (!full) {
    // Only the deltas are new; the full CRLs stay the ones served.
    for (std::size_t k = 0; k < built.set.partitions.size(); ++k)
      built.set.partitions[k].full = current.partitions[k].full;
  }
  store::CrlRecord record = record_of(built, full, *epoch, now);
  const auto serve_from = record.serve_from;
  // The fence: is_master() turns false by itself once a renewal is overdue; check right before
  // the write (the store checks the epoch once more).
  if (current_epoch() != epoch) {
    if (full) index_.restore_delta();
    return fail(Error::unavailable("no longer the CRL master; nothing written"));
  }
  if (Status saved = store_.save_crl(record); !saved) {
    if (full) index_.restore_delta();
    return saved;
  }
  const std::size_t entries = index_.size();
  {
    std::lock_guard lock(mutex_);
    last_number_ = record.delta_number;
    full_due_ = false;
    stage(built.set, serve_from);
  }
  log_published(built, record, full, entries, started);
  return ok();
}

store::CrlRecord CrlPublisher::record_of(const Built& built, bool full, uint64_t epoch,
                                         std::chrono::system_clock::time_point now) const {
  store::CrlRecord record;
  record.issuing_point = std::string(kIssuingPoint);
  record.crl_number = built.set.full->number;
  record.delta_number = built.set.delta->number;
  record.this_update = now;
  record.next_update = now + options_.validity;
  record.epoch = epoch;
  // All instances switch together: long enough for replication to carry the new CRLs to every
  // directory and for the followers to load them. A full CRL of a large CA takes longer (47 MB at a
  // million entries): a second per 16 MiB on top.
  auto activation = options_.activation_delay;
  if (activation.count() > 0 && full) {
    std::size_t bytes = built.set.full->der.size();
    for (const auto& pair : built.set.partitions) bytes += pair.full->der.size();
    activation += std::chrono::milliseconds(bytes * 1000 / (std::size_t{16} << 20));
  }
  const auto serve_from = std::chrono::system_clock::now() + activation;
  record.serve_from = serve_from;
  if (full) record.complete.full = stored_from(*built.set.full, serve_from);
  record.complete.delta = stored_from(*built.set.delta, serve_from);
  for (const auto& pair : built.set.partitions) {
    store::CrlScope scope;
    if (full) scope.full = stored_from(*pair.full, serve_from);
    scope.delta = stored_from(*pair.delta, serve_from);
    record.partitions.push_back(std::move(scope));
  }
  return record;
}

void CrlPublisher::log_published(const Built& built, const store::CrlRecord& record, bool full, std::size_t entries,
                                 std::chrono::steady_clock::time_point started) const {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
  if (full)
    log::info(
        kLog, "published full CRL {} ({} entries, {} bytes{}) and delta CRL {} in {} ms", record.crl_number, entries,
        built.set.full->der.size(),
        built.set.partitions.empty() ? std::string() : fmt::format(", {} partitions", built.set.partitions.size()),
        record.delta_number, ms);
  else
    log::info(kLog, "published delta CRL {} ({} changes since full CRL {}, {} bytes) in {} ms", record.delta_number,
              built.changes, record.crl_number, built.set.delta->der.size(), ms);
}

Status CrlPublisher::check_stored_by_others(uint64_t epoch, std::chrono::steady_clock::time_point now) {
  // Someone else published (a master on the other side of a healed partition, or a deposed one):
  // the observer re-epochs this master if needed, and a new full CRL supersedes theirs.
  auto stored = store_.load_crl_numbers(kIssuingPoint);
  if (!stored || !*stored) return ok();
  const uint64_t newest = (*stored)->newest_stored;
  if (number_observer_) number_observer_(newest);
  bool foreign, overwritten;
  uint64_t ours;
  {
    std::lock_guard guard(mutex_);
    ours = last_number_;
    foreign = epoch != 0 && epoch_of_crl_number(newest) != epoch && newest > ours;
    // A write of a lower number landed over ours (a deposed master's publication that its frozen
    // directory applied late, and replicated as the newer write): publish a full CRL again so that
    // the directory holds the newest one.
    overwritten = newest < ours && newest != last_older_stored_;
    if (overwritten) {
      last_older_stored_ = newest;
      older_stored_.fetch_add(1);
      older_stored_at_ = now;
    }
    if (overwritten || foreign) {
      full_due_ = true;
      if (!dirty_) dirty_since_ = now;
      dirty_ = true;
    }
  }
  if (overwritten)
    log::warn(kLog, "the directory holds CRL {} (epoch {}) over CRL {} published here: publishing a full CRL again",
              newest, epoch_of_crl_number(newest), ours);
  if (!foreign) return ok();
  log::info(kLog, "CRL {} was published by another master (epoch {}); a full CRL follows", newest,
            epoch_of_crl_number(newest));
  return reconcile_with_stored();
}

Status CrlPublisher::master_round(uint64_t epoch, bool pushed, std::chrono::steady_clock::time_point now,
                                  std::chrono::steady_clock::time_point& last_full,
                                  std::chrono::steady_clock::time_point& last_poll) {
  using clock = std::chrono::steady_clock;
  Status st = ok();
  if (pushed) st = check_stored_by_others(epoch, now);
  if (!options_.revocations_fed && now >= last_poll + options_.poll_interval) {
    last_poll = now;
    auto found = index_.refresh();  // revocations made on other instances
    if (found && *found > 0) {
      std::lock_guard guard(mutex_);
      if (!dirty_) dirty_since_ = now;
      dirty_ = true;
    } else if (!found) {
      st = fail(found.error());
    }
  } else if (now >= last_poll + options_.poll_interval) {
    last_poll = now;
  }
  const bool scheduled = now >= last_full + options_.update_interval;
  bool debounced;
  {
    std::lock_guard guard(mutex_);
    debounced = dirty_ && now >= dirty_since_ + options_.debounce;
  }
  if (st && (scheduled || debounced)) {
    // The polled index reloads on the schedule: it also picks up revocations that replication
    // delivered late, with timestamps older than the refresh margin. A fed one needs no reload.
    if (scheduled && !options_.revocations_fed) st = index_.load();
    if (st) st = publish_now(scheduled);
    if (st && scheduled) last_full = clock::now();
  }
  return st;
}

void CrlPublisher::loop() {
  using clock = std::chrono::steady_clock;
  auto last_full = clock::now();
  auto last_poll = clock::now();
  // Not yet published at start: behave as if just elected, so the first round publishes.
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
    const auto now = clock::now();
    const auto epoch = current_epoch();
    const bool gen = epoch.has_value();
    Status st = ok();
    if (gen && !was_generating) {
      // Just elected: everything any master published stays listed, and a full CRL starts (the
      // index's changes are relative to nobody's base).
      st = reconcile_with_stored();
      if (st) st = publish_now(true);
      if (st) last_full = clock::now();
    } else if (gen) {
      st = master_round(*epoch, pushed, now, last_full, last_poll);
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
    bool retry_soon;
    {
      std::lock_guard guard(mutex_);
      retry_soon = std::exchange(stale_epoch_, false);
    }
    if (!st && retry_soon) {
      log::info(kLog, "CRL generation waits for a new epoch: {}", st.error().message);
    } else if (!st) {
      log::warn(kLog, "CRL {} failed, retrying in 5 s: {}", gen ? "generation" : "refresh", st.error().message);
      last_full = clock::now() - options_.update_interval + std::chrono::seconds(5);
    }
    lock.lock();
  }
}

}  // namespace ca::authority
