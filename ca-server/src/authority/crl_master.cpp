#include "authority/crl_master.hpp"

#include "core/log.hpp"

namespace ca::authority {

namespace {
// The expiry a lease is given back with (stop()): 1970-01-01T00:00:01Z, never a real expiry.
const std::chrono::system_clock::time_point kReleased =
    std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::time_point{} + std::chrono::seconds(1));
}  // namespace

namespace {
constexpr std::string_view kLog = "crl-master";
}

CrlMasterElection::CrlMasterElection(store::CaStore& store, std::string instance_id, ElectionOptions options)
    : store_(store), instance_id_(std::move(instance_id)), options_(std::move(options)) {}

CrlMasterElection::~CrlMasterElection() { stop(); }

void CrlMasterElection::start() {
  run_round();
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
  if (is_master()) {
    // Hand over at once instead of making the others wait for the lease to run out.
    // Expiring at kReleased marks it given back (not merely run out): taken at first sight.
    Status released = store_.write_crl_lease(options_.issuing_point, instance_id_, store::CrlLease{instance_id_, kReleased});
    if (released) log::info(kLog, "'{}' released the CRL lease", instance_id_);
    std::lock_guard lock(mutex_);
    master_ = false;
  }
}

bool CrlMasterElection::is_master() const {
  std::lock_guard lock(mutex_);
  return master_;
}

store::CrlLease CrlMasterElection::last_seen() const {
  std::lock_guard lock(mutex_);
  return seen_;
}

void CrlMasterElection::set_master(bool master) {
  bool changed;
  {
    std::lock_guard lock(mutex_);
    changed = master_ != master;
    master_ = master;
  }
  if (!changed) return;
  if (master) log::info(kLog, "'{}' is now the CRL master (lease {} ms)", instance_id_, options_.lease.count());
  else log::info(kLog, "'{}' is no longer the CRL master", instance_id_);
  if (on_change_) on_change_(master);
}

bool CrlMasterElection::run_round() {
  auto lease = store_.read_crl_lease(options_.issuing_point);
  if (!lease) {
    // Without the directory nobody can tell who is master; keep generating only until our own
    // lease runs out, so that a short outage does not stop CRLs, and a long one hands over.
    log::warn(kLog, "cannot read the CRL lease: {}", lease.error().message);
    bool still = is_master() && std::chrono::system_clock::now() < last_seen().expires;
    set_master(still);
    return still;
  }
  {
    std::lock_guard lock(mutex_);
    seen_ = *lease;
  }
  auto now = std::chrono::system_clock::now();
  store::CrlLease mine{instance_id_, now + options_.lease};
  if (lease->holder == instance_id_) {
    if (!options_.eligible) {
      set_master(false);
      return false;
    }
    Status renewed = store_.write_crl_lease(options_.issuing_point, instance_id_, mine);
    if (!renewed) {
      log::info(kLog, "lease renewal refused ({}); stepping down", renewed.error().message);
      set_master(false);
      return false;
    }
    std::lock_guard lock(mutex_);
    seen_ = mine;  // also our own lease from before a restart: we simply carry on
  } else {
    bool expired = lease->holder.empty() || now > lease->expires;
    if (!options_.eligible || !expired) {
      expired_seen_.reset();
      set_master(false);
      return false;
    }
    if (!lease->holder.empty() && lease->expires != kReleased) {
      const auto steady_now = std::chrono::steady_clock::now();
      const bool same = expired_seen_ && expired_seen_->first.holder == lease->holder &&
                        expired_seen_->first.expires == lease->expires;
      if (!same) {
        expired_seen_.emplace(*lease, steady_now);
        log::info(kLog, "the CRL lease of '{}' looks expired; taking it if it still does in {} ms", lease->holder,
                  options_.settle.count());
        set_master(false);
        return false;
      }
      if (steady_now - expired_seen_->second < options_.settle) {
        set_master(false);
        return false;
      }
    }
    expired_seen_.reset();
    Status taken = store_.write_crl_lease(options_.issuing_point, lease->holder, mine);
    if (!taken) {
      set_master(false);
      return false;
    }
    log::info(kLog, "took the CRL lease from '{}' (expired); confirming in {} ms",
              lease->holder.empty() ? "nobody" : lease->holder, options_.settle.count());
    {
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, options_.settle, [&] { return stopping_; });
      if (stopping_) return false;
    }
    auto confirmed = store_.read_crl_lease(options_.issuing_point);
    if (!confirmed || confirmed->holder != instance_id_) {
      log::info(kLog, "another instance won the CRL lease ('{}')", confirmed ? confirmed->holder : "unknown");
      set_master(false);
      return false;
    }
    std::lock_guard lock(mutex_);
    seen_ = *confirmed;
  }
  set_master(true);
  return true;
}

void CrlMasterElection::loop() {
  const auto period = std::max<std::chrono::milliseconds>(options_.lease / 3, std::chrono::milliseconds(100));
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, period, [&] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    run_round();
    lock.lock();
  }
}

}  // namespace ca::authority
