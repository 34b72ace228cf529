#pragma once
// Electing the one instance that generates CRLs (the CRL master) through the directory, and fencing
// it: a master stops before anyone else can take over, and everything it writes names its epoch.
//
// The lease is one entry per epoch under the issuing point (cn=epoch-<N>,cn=MasterCRL: caCrlMaster,
// caLeaseExpires, caCrlEpoch); the highest epoch present is the lease (store::CaStore says why
// replication can never lower it). The operator's caCrlPinned / caCrlHandover stay on the issuing
// point entry. Rounds run every `lease / 3`:
// - The holder renews its epoch's entry. It is master only until (start of its last successful
//   write + lease - margin) by its own monotonic clock: if renewals stall (a frozen directory, a
//   SIGSTOP, a VM pause), is_master() turns false by itself, without a round having to run, and the
//   publisher writes nothing more. Past that point it NEVER renews that epoch again, even when its
//   directory still names it (a takeover made elsewhere may not have replicated into it yet): it
//   stands for election like anyone, and takes the lease back only with a new epoch.
// - No instance yields to, or renews, an epoch below one it has seen (a directory behind).
// - Anybody else judges expiry by its own monotonic clock too, never by comparing wall clocks: a
//   lease whose value (holder, expiry, epoch) has not changed for `lease + margin` since it first
//   saw it has not been renewed, so its holder has stopped (at most lease - margin after its last
//   renewal). Clock skew between machines does not matter; the margin absorbs clock-rate drift and
//   scheduling. It takes the lease with a compare-and-set from the old holder, minting a new epoch
//   (crl_numbering.hpp), and acts as master only if a round at least `settle` later can still renew
//   it (replication from other directories has had time to arrive).
// - A lease given back (clean stop, demote) carries the expiry kReleased and is taken at once.
// - A pin (caCrlPinned) lets only the pinned instance hold the lease; a handover request
//   (caCrlHandover) makes the holder write the lease over to the named instance, with a new epoch,
//   at its next round: the lease never lapses.
//
// On one directory server two takeovers at once both add their epochs and the higher wins; the
// lower one finds it at its confirming round `settle` later. During a network partition each side
// may elect its own master (CRLs stay fresh on both sides), with different epochs, so their CRL
// numbers differ; when it heals both epochs' entries reach every directory, the higher is the
// lease, and the other master stands down at its next round. docs/crl.md says what relying
// parties observe.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "store/ca_store.hpp"

namespace ca::authority {

// The clocks the election decides by: the real ones in ca-server, a hand-driven one in tests.
class ElectionClock {
 public:
  virtual ~ElectionClock() = default;
  // Monotonic: every lease decision.
  virtual std::chrono::steady_clock::time_point steady_now() const = 0;
  // Wall clock: only the expiry written into the lease, for people and status tools.
  virtual std::chrono::system_clock::time_point wall_now() const = 0;
};
const ElectionClock& system_election_clock();

// The expiry a lease is given back with (a clean stop, a demote): 1970-01-01T00:00:01Z, never a
// real expiry. The next eligible instance takes a lease given back at once.
inline constexpr std::chrono::system_clock::time_point kCrlLeaseGivenBack{std::chrono::seconds(1)};
inline bool crl_lease_given_back(const store::CrlLease& lease) { return lease.expires == kCrlLeaseGivenBack; }
// The caCrlHandover value that asks the holder to give the lease up to whoever takes it (demote).
inline constexpr std::string_view kCrlHandoverToAnyone = "*";

struct ElectionOptions {
  std::chrono::milliseconds lease{30000};
  std::chrono::milliseconds settle{1500};  // after a takeover, wait this long before acting on it
  // Safety margin on both sides of the lease: the holder stops `margin` before its lease can end,
  // the others take over `margin` after. 0 = lease / 5.
  std::chrono::milliseconds margin{0};
  bool eligible = true;  // false: never become master (serve CRLs only)
  std::string issuing_point = "MasterCRL";
  int replica_id = 1;  // the low bits of the epochs this instance mints
};

class CrlMasterElection {
 public:
  CrlMasterElection(store::CaStore& store, std::string instance_id, ElectionOptions options,
                    const ElectionClock& clock = system_election_clock());
  ~CrlMasterElection();

  // Runs the first round now (so a single instance is master when start returns), then a thread.
  void start();
  // Stops the rounds and gives the lease back if held.
  void stop();

  // One round; returns whether this instance is master after it. Public for tests.
  bool run_round();
  // Master now: holds a confirmed lease whose renewal is not overdue (by the monotonic clock).
  bool is_master() const;
  // The epoch of this instance's lease while it is master (0 otherwise).
  uint64_t epoch() const;
  store::CrlLease last_seen() const;
  // A CRL number stored by someone: a master whose epoch is below that number's epoch (it was
  // deposed and the lease came back to it after a partition healed) mints a new epoch at its next
  // round, which runs at once.
  void observe_crl_number(uint64_t number);
  // Rounds that read a lease whose epoch was below one seen before (a directory behind or restored):
  // never followed; counted for /metrics.
  uint64_t epoch_regressions() const { return epoch_regressions_.load(); }
  // Called from the election thread when mastership changes (true = became master).
  void on_change(std::function<void(bool)> callback) { on_change_ = std::move(callback); }

 private:
  void set_master(bool master, std::chrono::steady_clock::time_point valid_until = {}, uint64_t epoch = 0);
  // first_round: the first round of this process (the lease may be left from before a restart).
  bool round_as_holder(const store::CrlLease& lease, bool first_round);
  bool round_as_other(const store::CrlLease& lease);
  // Writes `next` over `expected`, then acts on the outcome. Returns whether the write succeeded.
  bool write_lease(const store::CrlLease& expected, const store::CrlLease& next, std::string_view what);
  uint64_t mint_epoch(const store::CrlLease& seen);
  // With mutex_ held: this instance wrote `epoch` (a renewal or a takeover) at `written_at`; it may
  // renew it until written_at + lease - margin by its own clock, never after.
  void hold(uint64_t epoch, std::chrono::steady_clock::time_point written_at);
  // Whether a lease naming this instance may be renewed now (false: it is judged like anyone's).
  bool may_renew(const store::CrlLease& lease, std::chrono::steady_clock::time_point now);
  std::chrono::milliseconds margin() const;
  void loop();

  store::CaStore& store_;
  std::string instance_id_;
  ElectionOptions options_;
  const ElectionClock& clock_;
  std::function<void(bool)> on_change_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool master_ = false;
  uint64_t epoch_ = 0;
  std::chrono::steady_clock::time_point valid_until_{};
  store::CrlLease seen_;
  uint64_t highest_generation_seen_ = 0;
  uint64_t highest_epoch_seen_ = 0;  // read here or written by us; a directory showing less is behind
  // The epoch this instance holds by its own clock, and until when it may renew it.
  uint64_t held_epoch_ = 0;
  std::chrono::steady_clock::time_point held_until_{};
  uint64_t lapsed_epoch_ = 0;  // the highest epoch this instance held and lost: never renewed again
  // An epoch handed over to this instance, and when it first saw it.
  std::optional<std::pair<uint64_t, std::chrono::steady_clock::time_point>> handed_over_;
  std::atomic<uint64_t> epoch_regressions_{0};
  bool new_epoch_wanted_ = false;
  bool first_round_ = true;
  // The epoch of a lease that named this instance when it started (left from before a restart):
  // never renewed as ours, only taken over like anyone's.
  std::optional<uint64_t> stale_epoch_;
  // The lease value as first seen, and when (monotonic): unchanged for lease + margin = expired.
  std::optional<std::pair<store::CrlLease, std::chrono::steady_clock::time_point>> observed_;
  // After this instance took the lease over: not master before this time (settle).
  std::optional<std::chrono::steady_clock::time_point> confirm_at_;
  // After this instance gave the lease up (demote, pin elsewhere): do not take it back before.
  std::optional<std::chrono::steady_clock::time_point> released_until_;
  std::thread thread_;
};

}  // namespace ca::authority
