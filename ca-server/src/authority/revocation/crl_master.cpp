#include "authority/revocation/crl_master.hpp"

#include <algorithm>

#include "authority/revocation/crl_numbering.hpp"
#include "core/log.hpp"

namespace ca::authority {

namespace {
constexpr std::string_view kLog = "crl-master";

class SystemElectionClock final : public ElectionClock {
 public:
  std::chrono::steady_clock::time_point steady_now() const override { return std::chrono::steady_clock::now(); }
  std::chrono::system_clock::time_point wall_now() const override { return std::chrono::system_clock::now(); }
};
}  // namespace

const ElectionClock& system_election_clock() {
  static const SystemElectionClock clock;
  return clock;
}

CrlMasterElection::CrlMasterElection(store::CaStore& store, std::string instance_id, ElectionOptions options,
                                     const ElectionClock& clock)
    : store_(store), instance_id_(std::move(instance_id)), options_(std::move(options)), clock_(clock) {}

CrlMasterElection::~CrlMasterElection() { stop(); }

std::chrono::milliseconds CrlMasterElection::margin() const {
  return options_.margin.count() > 0 ? options_.margin : options_.lease / 5;
}

void CrlMasterElection::start() {
  run_round();
  // Just took the lease over (e.g. a single instance's first start): confirm it before start()
  // returns, so that an instance alone is master at once.
  std::optional<std::chrono::steady_clock::time_point> confirm;
  {
    std::lock_guard lock(mutex_);
    confirm = confirm_at_;
  }
  if (confirm) {
    std::this_thread::sleep_for(std::max(*confirm - clock_.steady_now(), std::chrono::steady_clock::duration::zero()));
    run_round();
  }
  thread_ = std::thread([this] { loop(); });
}

void CrlMasterElection::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  uint64_t epoch;
  {
    std::lock_guard lock(mutex_);
    epoch = epoch_;
  }
  if (is_master()) {
    // Stop generating first, then hand over at once instead of making the others wait for the
    // lease to run out. Expiring at kCrlLeaseGivenBack marks it given back (not merely run out).
    set_master(false);
    store::CrlLease held{instance_id_, {}, epoch, {}, {}};
    Status released =
        store_.write_crl_lease(options_.issuing_point, held, {instance_id_, kCrlLeaseGivenBack, epoch, {}, {}});
    if (released) log::info(kLog, "'{}' released the CRL lease (epoch {})", instance_id_, epoch);
  }
}

bool CrlMasterElection::is_master() const {
  std::lock_guard lock(mutex_);
  return master_ && clock_.steady_now() < valid_until_;
}

uint64_t CrlMasterElection::epoch() const {
  std::lock_guard lock(mutex_);
  return master_ && clock_.steady_now() < valid_until_ ? epoch_ : 0;
}

store::CrlLease CrlMasterElection::last_seen() const {
  std::lock_guard lock(mutex_);
  return seen_;
}

void CrlMasterElection::observe_crl_number(uint64_t number) {
  const uint64_t generation = epoch_generation(epoch_of_crl_number(number));
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    highest_generation_seen_ = std::max(highest_generation_seen_, generation);
    if (master_ && epoch_of_crl_number(number) > epoch_ && !new_epoch_wanted_) {
      new_epoch_wanted_ = true;
      wake = true;
    }
  }
  if (wake) {
    log::info(kLog, "a CRL number of a later epoch is stored ({}); '{}' mints a new epoch", number, instance_id_);
    wake_.notify_all();
  }
}

void CrlMasterElection::set_master(bool master, std::chrono::steady_clock::time_point valid_until, uint64_t epoch) {
  bool changed, ran_out = false;
  {
    std::lock_guard lock(mutex_);
    // master_ is the role as last decided by a round; is_master() also ends it when the lease ran
    // out meanwhile. A change of the decision is what is logged and reported.
    const bool was = master_;
    ran_out = was && !master && clock_.steady_now() >= valid_until_;
    master_ = master;
    if (master) {
      valid_until_ = valid_until;
      epoch_ = epoch;
    } else {
      valid_until_ = {};
      epoch_ = 0;
      new_epoch_wanted_ = false;
    }
    changed = was != master;
  }
  if (!changed) return;
  if (master)
    log::info(kLog, "'{}' is now the CRL master (epoch {}, lease {} ms)", instance_id_, epoch, options_.lease.count());
  else if (ran_out)
    log::info(kLog, "'{}' is no longer the CRL master (its lease ran out before it could renew it)", instance_id_);
  else
    log::info(kLog, "'{}' is no longer the CRL master", instance_id_);
  if (on_change_) on_change_(master);
}

uint64_t CrlMasterElection::mint_epoch(const store::CrlLease& seen) {
  std::lock_guard lock(mutex_);
  highest_generation_seen_ =
      std::max({highest_generation_seen_, epoch_generation(seen.epoch), epoch_generation(epoch_)});
  ++highest_generation_seen_;
  return crl_epoch(highest_generation_seen_, options_.replica_id);
}

bool CrlMasterElection::write_lease(const store::CrlLease& expected, const store::CrlLease& next,
                                    std::string_view what) {
  Status written = store_.write_crl_lease(options_.issuing_point, expected, next);
  if (!written) {
    log::info(kLog, "{} refused: {}", what, written.error().message);
    return false;
  }
  std::lock_guard lock(mutex_);
  seen_ = next;
  observed_.reset();
  return true;
}

bool CrlMasterElection::run_round() {
  auto lease = store_.read_crl_lease(options_.issuing_point);
  if (!lease) {
    // Without the directory nobody can tell who is master: keep generating only while our own
    // lease lasts (is_master() ends it by itself), so a short outage does not stop CRLs.
    log::warn(kLog, "cannot read the CRL lease: {}", lease.error().message);
    {
      // Out of sight: whatever this directory shows when it answers again may be behind (it was
      // frozen, or cut off), so an unchanged lease is judged from that first read on, not from
      // one seen before the outage.
      std::lock_guard lock(mutex_);
      observed_.reset();
    }
    return is_master();
  }
  uint64_t highest_before;
  {
    std::lock_guard lock(mutex_);
    highest_before = highest_epoch_seen_;
    if (lease->epoch >= highest_epoch_seen_) {
      seen_ = *lease;
      highest_epoch_seen_ = lease->epoch;
      highest_generation_seen_ = std::max(highest_generation_seen_, epoch_generation(lease->epoch));
    }
  }
  if (lease->epoch < highest_before) {
    // The highest epoch in a directory never goes down (crl_master.hpp): this one is behind, or was
    // restored. Nobody is followed or replaced on its word; our own lease ends by our clock.
    epoch_regressions_.fetch_add(1);
    log::warn(kLog,
              "the CRL lease here names '{}' at epoch {}, below epoch {} seen before: the directory is behind; "
              "'{}' neither yields to it nor takes it over",
              lease->holder, lease->epoch, highest_before, instance_id_);
    return is_master();
  }
  bool first_round;
  {
    std::lock_guard lock(mutex_);
    first_round = std::exchange(first_round_, false);
  }
  if (lease->holder == instance_id_) return round_as_holder(*lease, first_round);
  if (is_master()) log::info(kLog, "the CRL lease is held by '{}' (epoch {}) now", lease->holder, lease->epoch);
  set_master(false);
  return round_as_other(*lease);
}

bool CrlMasterElection::round_as_holder(const store::CrlLease& lease, bool first_round) {
  const auto now = clock_.steady_now();
  const bool pinned_elsewhere = !lease.pinned.empty() && lease.pinned != instance_id_;
  const std::string target = pinned_elsewhere                                              ? lease.pinned
                             : (!lease.handover.empty() && lease.handover != instance_id_) ? lease.handover
                                                                                           : std::string();
  if (lease.expires == kCrlLeaseGivenBack) {
    // Given back (by this instance before a restart, or its stop): others may take it at once.
    set_master(false);
    return round_as_other(lease);
  }
  if (!options_.eligible || !target.empty()) {
    // Stop generating first, then write the lease over: never two masters.
    set_master(false);
    store::CrlLease next = lease;
    next.handover.clear();
    if (!options_.eligible || target == kCrlHandoverToAnyone) {
      next.expires = kCrlLeaseGivenBack;
    } else {
      next.holder = target;
      next.epoch = mint_epoch(lease);
      next.expires = clock_.wall_now() + options_.lease;
    }
    if (write_lease(lease, next, "giving the CRL lease up")) {
      std::lock_guard lock(mutex_);
      released_until_ = now + options_.lease;
      confirm_at_.reset();
      lapsed_epoch_ = std::max(lapsed_epoch_, lease.epoch);
      held_epoch_ = 0;
      highest_epoch_seen_ = std::max(highest_epoch_seen_, next.epoch);
      log::info(kLog, "'{}' gave the CRL lease {}", instance_id_,
                next.expires == kCrlLeaseGivenBack ? std::string("up") : "to '" + next.holder + "'");
    }
    return false;
  }
  if (confirm_at_ && now < *confirm_at_) return false;  // just taken over: let replication settle
  bool fresh_epoch;
  {
    std::lock_guard lock(mutex_);
    fresh_epoch = new_epoch_wanted_;
  }
  bool left_from_before;
  {
    std::lock_guard lock(mutex_);
    if (first_round) stale_epoch_ = lease.epoch;
    left_from_before = stale_epoch_ && *stale_epoch_ == lease.epoch;
  }
  if (left_from_before) {
    // Our own lease from before a restart (a SIGKILL). This directory may be behind: another
    // instance may hold the lease by now. Judge it like anyone's lease: taken over (with a new
    // epoch) only if nobody renews it for lease + margin.
    set_master(false);
    return round_as_other(lease);
  }
  if (!may_renew(lease, now)) {
    set_master(false);
    return round_as_other(lease);
  }
  store::CrlLease next = lease;
  next.expires = clock_.wall_now() + options_.lease;
  if (lease.epoch == 0 || fresh_epoch) next.epoch = mint_epoch(lease);  // a lease from before epochs, or deposed once
  const auto attempt = clock_.steady_now();
  if (!write_lease(lease, next, "CRL lease renewal")) {
    set_master(false);
    return false;
  }
  {
    std::lock_guard lock(mutex_);
    confirm_at_.reset();
    new_epoch_wanted_ = false;
    hold(next.epoch, attempt);
  }
  // Master until the lease, counted from before the write, less the margin, by this clock.
  set_master(true, attempt + options_.lease - margin(), next.epoch);
  return true;
}

void CrlMasterElection::hold(uint64_t epoch, std::chrono::steady_clock::time_point written_at) {
  held_epoch_ = epoch;
  held_until_ = written_at + options_.lease - margin();
  highest_epoch_seen_ = std::max(highest_epoch_seen_, epoch);
  highest_generation_seen_ = std::max(highest_generation_seen_, epoch_generation(epoch));
}

bool CrlMasterElection::may_renew(const store::CrlLease& lease, std::chrono::steady_clock::time_point now) {
  std::lock_guard lock(mutex_);
  if (lease.epoch != 0 && lease.epoch <= lapsed_epoch_) return false;  // lapsed before: never again
  if (lease.epoch == held_epoch_ && held_epoch_ != 0) {
    if (now < held_until_) return true;
    // Our lease lapsed by our own clock (a frozen directory, a SIGSTOP, a paused VM). This
    // directory may not show a takeover made elsewhere meanwhile, and a renewal written now would
    // be newer than it: never renew this epoch; stand for election like anyone, with a new one.
    lapsed_epoch_ = std::max(lapsed_epoch_, held_epoch_);
    held_epoch_ = 0;
    log::info(kLog,
              "'{}' could not renew its CRL lease (epoch {}) in time by its own clock: it never renews that "
              "epoch again and stands for election like anyone",
              instance_id_, lease.epoch);
    return false;
  }
  // An epoch this instance never held names it: a holder handed the lease over to it (or a lease
  // from before epochs). Adopted while fresh by this instance's clock, like a lease it took itself.
  if (!handed_over_ || handed_over_->first != lease.epoch) handed_over_.emplace(lease.epoch, now);
  if (lease.epoch != 0 && now - handed_over_->second >= options_.lease - margin()) {
    lapsed_epoch_ = std::max(lapsed_epoch_, lease.epoch);
    log::info(kLog,
              "'{}' did not adopt the CRL lease handed to it (epoch {}) in time: it stands for election like anyone",
              instance_id_, lease.epoch);
    return false;
  }
  return true;
}

bool CrlMasterElection::round_as_other(const store::CrlLease& lease) {
  const auto now = clock_.steady_now();
  if (!options_.eligible) return false;
  if (!lease.pinned.empty() && lease.pinned != instance_id_) return false;
  const bool released = lease.holder.empty() || lease.expires == kCrlLeaseGivenBack;
  {
    std::lock_guard lock(mutex_);
    if (released_until_ && now < *released_until_ && lease.pinned != instance_id_) return false;  // just gave it up
    if (!released) {
      if (!observed_ || observed_->first != lease) {
        observed_.emplace(lease, now);
        return false;
      }
      const auto unchanged = now - observed_->second;
      if (unchanged < options_.lease + margin()) return false;
      log::info(kLog, "the CRL lease of '{}' (epoch {}) has not been renewed for {} ms; taking it over", lease.holder,
                lease.epoch, std::chrono::duration_cast<std::chrono::milliseconds>(unchanged).count());
    }
  }
  store::CrlLease next{instance_id_, clock_.wall_now() + options_.lease, mint_epoch(lease), lease.pinned, {}};
  const auto attempt = clock_.steady_now();
  if (!write_lease(lease, next, "CRL lease takeover")) return false;
  {
    std::lock_guard lock(mutex_);
    confirm_at_ = now + options_.settle;
    released_until_.reset();
    hold(next.epoch, attempt);
  }
  log::info(kLog, "'{}' took the CRL lease from '{}' (epoch {}); confirming in {} ms", instance_id_,
            lease.holder.empty() ? "nobody" : lease.holder, next.epoch, options_.settle.count());
  return false;
}

void CrlMasterElection::loop() {
  const auto period = std::max<std::chrono::milliseconds>(options_.lease / 3, std::chrono::milliseconds(100));
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    auto wait = period;
    if (confirm_at_) {
      const auto until = std::chrono::duration_cast<std::chrono::milliseconds>(*confirm_at_ - clock_.steady_now());
      wait = std::clamp(until + std::chrono::milliseconds(1), std::chrono::milliseconds(1), period);
    }
    wake_.wait_for(lock, wait, [&] { return stopping_ || new_epoch_wanted_; });
    if (stopping_) break;
    lock.unlock();
    run_round();
    lock.lock();
  }
}

}  // namespace ca::authority
