// ca-clone crl-master: shows the CRL master role and moves it (promote, demote, pin, unpin).
//
// The role is elected by the running ca-servers through the lease on the issuing point entry
// (authority/revocation/crl_master.hpp). This command never writes the lease itself: it writes a request
// (caCrlHandover or caCrlPinned) into the directory of the instance it is given, the elections
// carry it out at their next rounds, and the command waits, reading the lease, until they have
// (crl_role_move.hpp judges the progress).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "authority/audit/audit_log.hpp"
#include "authority/instance/clone_registry.hpp"
#include "authority/revocation/crl_master.hpp"
#include "commands.hpp"
#include "core/config.hpp"
#include "core/log.hpp"
#include "crl_role_move.hpp"
#include "crl_role_report.hpp"
#include "running_instance_store.hpp"

namespace ca::clone_tools {

namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kUsage = R"(usage: ca-clone crl-master ACTION [INSTANCE] --config INSTANCE.yaml [options]

Shows and moves the CRL master role: the one instance that generates the CRLs, elected by the
running ca-servers through a lease in the replicated directory. Works through the directory of the
instance configured in INSTANCE.yaml (any instance of the topology; its ca-server must be running).
The commands that move the role write a request into the directory; the instances carry it out
at their next election rounds (every lease/3) and the command waits until they have.

Actions:
  status            who holds the role, its epoch and lease, the pin, a pending handover, the
                    latest CRL numbers
  promote INSTANCE  the holder hands the role to INSTANCE
  demote            the holder gives the role up to whichever instance takes it
  pin INSTANCE      only INSTANCE may hold the role (it moves there and stays, even when INSTANCE
                    is down)
  unpin             the election chooses again

Run ca-clone crl-master ACTION --help for the options of each.

Exit status: 0 done, 1 failed (the directory cannot be reached, or the move did not happen in
time: the request is then withdrawn), 2 refused (usage error, INSTANCE unknown, retired or not an
instance ID, the role pinned to another instance).
)";

constexpr std::string_view kStatusUsage = R"(usage: ca-clone crl-master status --config INSTANCE.yaml [--json]

Shows the CRL master role as the directory of the instance configured in INSTANCE.yaml holds it:
  holder          the instance that holds the lease (it generates the CRLs)
  epoch           the lease's epoch, with its generation (epoch >> 12) and the replica ID of the
                  instance that minted it (epoch & 0xfff); every takeover mints a higher one
  lease expires   the end of the lease, or "given back" (a clean stop or a demote; the next
                  eligible instance takes it at once); the seconds left are by this machine's
                  clock, for information only: the instances judge expiry by their own clocks
  pinned to       the only instance that may hold the role, if pinned
  handover        a pending request: hand the role to an instance, or "*" (give it up)
  full CRL        the latest full CRL number, also as epoch/sequence (number = epoch << 32 | sequence)
  delta CRL       the latest delta CRL number, likewise

Options:
  --config FILE  an instance's YAML (any instance of the topology)
  --json         machine-readable output
  -h, --help     show this help

Exit status: 0 shown, 1 the directory cannot be read, 2 usage error.
)";

constexpr std::string_view kPromoteUsage =
    R"(usage: ca-clone crl-master promote INSTANCE --config INSTANCE.yaml [--timeout SECONDS]

Moves the CRL master role to INSTANCE: asks the holder to hand the lease over ({handover}).
At its next round the holder stops generating CRLs, then writes the lease over to INSTANCE under
a new epoch; INSTANCE renews it and generates the next CRLs, numbered in the new epoch. The lease
never lapses.

INSTANCE must be a registered instance that is not retired (ca-clone status lists them). Whether
it may generate CRLs (crl.generate in its own YAML) is not in the directory: an instance that may
not gives the lease back at once, and promote reports that it did not keep it. Refused while the
role is pinned to another instance: unpin first.

promote waits, printing its progress, until INSTANCE holds the lease under a higher epoch and has
renewed it; then it prints the old holder and epoch and the new ones. When that does not happen
within the timeout, it withdraws its request (if still pending) and fails.

Options:
  --config FILE      an instance's YAML (any instance of the topology)
  --timeout SECONDS  how long to wait (default: 2 x crl.lease_seconds of that YAML + 5)
  -h, --help         show this help

Exit status: 0 INSTANCE is the CRL master, 1 failed or timed out (request withdrawn), 2 refused
(usage error, INSTANCE unknown, retired or not an instance ID, the role pinned elsewhere).
)";

constexpr std::string_view kDemoteUsage =
    R"(usage: ca-clone crl-master demote --config INSTANCE.yaml [--timeout SECONDS]

Takes the CRL master role away from its holder: asks it to give the lease up ({handover} "*").
At its next round the holder stops generating CRLs and gives the lease back; the next eligible
instance takes it at once. The old holder does not take it back for a whole lease, unless no other
instance has by then.

demote waits, printing its progress, until another instance holds the lease, and prints who does.
Refused while the role is pinned: unpin first.

Options:
  --config FILE      an instance's YAML (any instance of the topology)
  --timeout SECONDS  how long to wait (default: 2 x crl.lease_seconds of that YAML + 5)
  -h, --help         show this help

Exit status: 0 another instance holds the role, 1 failed, timed out (request withdrawn) or the old
holder took the role back (no other instance took it), 2 refused (usage error, role pinned).
)";

constexpr std::string_view kPinUsage =
    R"(usage: ca-clone crl-master pin INSTANCE --config INSTANCE.yaml [--timeout SECONDS]

Pins the CRL master role to INSTANCE ({pinned}): from then on only INSTANCE may hold it. The
holder hands the lease over to INSTANCE at its next round, as for promote. A pinned role does not
move when INSTANCE dies: nobody else takes the lease, and CRLs are not renewed until INSTANCE is
back or the role is unpinned. That is the point of a pin (CRLs from one known instance only); use
promote to move the role while letting the election keep it alive.

INSTANCE is checked as for promote. A pin to another instance is replaced.

pin waits, printing its progress, until INSTANCE holds the lease and has renewed it with the pin
in place. When that does not happen within the timeout, it sets the pin back to what it was and
fails.

Options:
  --config FILE      an instance's YAML (any instance of the topology)
  --timeout SECONDS  how long to wait (default: 2 x crl.lease_seconds of that YAML + 5)
  -h, --help         show this help

Exit status: 0 INSTANCE holds the pinned role, 1 failed or timed out (pin set back), 2 refused
(usage error, INSTANCE unknown, retired or not an instance ID).
)";

constexpr std::string_view kUnpinUsage = R"(usage: ca-clone crl-master unpin --config INSTANCE.yaml

Removes the pin of the CRL master role: the election chooses again. The holder keeps the role
while it runs; if the pinned instance is down, another eligible instance takes the lease once it
has run out.

Options:
  --config FILE  an instance's YAML (any instance of the topology)
  -h, --help     show this help

Exit status: 0 not pinned (now or already), 1 failed, 2 usage error.
)";

// How long a request must have been missing from the lease entry before it is written again, and
// how long after a write it is checked: replication between the directories has arrived by then
// (the election's own settle time).
const Clock::duration kSettle = authority::ElectionOptions{}.settle;
constexpr auto kPollInterval = std::chrono::milliseconds(200);
// With no news, a progress line this often.
constexpr auto kQuietProgress = std::chrono::seconds(5);

// What every action works with: the instance's configuration, its directory, its audit log.
struct Session {
  std::string action;
  std::string config_file;
  InstanceConfig config;
  RunningInstanceStore directory;
  const OptionParser* options = nullptr;

  store::CaStore& store() const { return *directory.store; }
  std::chrono::seconds lease() const { return std::chrono::seconds(config.crl.lease_seconds); }

  Result<store::CrlLease> read_lease() const {
    auto lease = store().read_crl_lease(crl_issuing_point());
    if (!lease)
      return fail(Error{lease.error().code, fmt::format("cannot read the CRL lease from this instance's directory: {} "
                                                        "(is its ca-server running?)",
                                                        lease.error().message)});
    return lease;
  }

  Status write_hint(store::CaStore::CrlRoleHint hint, const std::string& value) const {
    Status written = store().set_crl_role_hint(crl_issuing_point(), hint, value);
    if (!written)
      return fail(Error{written.error().code,
                        fmt::format("cannot write to this instance's directory: {}", written.error().message)});
    return written;
  }

  // One audit record; the instance's audit log is opened on first use.
  void audit(std::string_view event, std::string_view what, std::string_view outcome) {
    if (!audit_log_) {
      auto opened = authority::open_instance_audit_log(config);
      if (!opened) {
        std::fprintf(stderr, "ca-clone crl-master %s: warning: no audit record (%s)\n", action.c_str(),
                     opened.error().message.c_str());
        return;
      }
      audit_log_ = std::move(*opened);
    }
    audit_log_->record(event, fmt::format("ca-clone crl-master {} (uid {})", action, ::getuid()), what, outcome);
  }

 private:
  std::unique_ptr<authority::AuditLog> audit_log_;
};

// Prints "<program>: <message>" to stderr; returns kExitUsage: the command refused, nothing changed.
int refuse(const Session& s, std::string_view message) {
  std::fprintf(stderr, "%s: %.*s\n", s.options->program().c_str(), static_cast<int>(message.size()), message.data());
  return kExitUsage;
}

std::string quoted(const std::string& instance) { return fmt::format("'{}'", instance); }
std::string holder_name(const store::CrlLease& lease) {
  return lease.holder.empty() ? std::string("nobody") : quoted(lease.holder);
}
std::string pin_name(const std::string& pinned) { return pinned.empty() ? std::string("nobody") : quoted(pinned); }

// INSTANCE as promote and pin take it: an instance ID (it is written into the directory),
// registered and not retired. An Error: the instances could not be listed (exit 1); a string: why
// INSTANCE is refused (exit 2); nullopt: fine.
Result<std::optional<std::string>> refusal_of_target(const Session& s, const std::string& instance) {
  if (auto shape = authority::check_instance_id(instance); !shape) return shape.error().message;
  auto replicas = s.store().list_replicas();
  if (!replicas)
    return fail(Error{replicas.error().code, fmt::format("cannot list the instances in this instance's directory: {}",
                                                         replicas.error().message)});
  for (const auto& r : *replicas) {
    if (r.instance_id != instance) continue;
    if (r.retired) return fmt::format("instance '{}' (replica {}) is retired", instance, r.replica_id);
    // Every running ca-server writes its heartbeat once a second: an old one is worth a word.
    const auto age = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now() - r.heartbeat);
    if (age > std::max<std::chrono::seconds>(std::chrono::seconds(15), s.lease()))
      std::printf("warning: the heartbeat of '%s' in this directory is %lld s old: its ca-server may be down\n",
                  instance.c_str(), static_cast<long long>(age.count()));
    return std::optional<std::string>();
  }
  return fmt::format("no instance '{}' is registered in this instance's directory (ca-clone status lists them)",
                     instance);
}

// Writes a hint and checks, kSettle later, that it is still there: a lease write made in another
// directory before the hint reached it can replace the whole entry. Writes it again if not.
Status write_hint_settled(const Session& s, store::CaStore::CrlRoleHint hint, const std::string& value) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    CA_CHECK(s.write_hint(hint, value));
    std::this_thread::sleep_for(kSettle);
    CA_TRY(auto lease, s.read_lease());
    if ((hint == store::CaStore::CrlRoleHint::pinned ? lease.pinned : lease.handover) == value) return ok();
  }
  return fail(Error::conflict("the change did not stay in the directory (replaced three times by other writes)"));
}

// Seconds since `start`, for progress lines.
double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

std::string progress_line(RoleMoveProgress progress, const CrlRoleMove& move, const store::CrlLease& lease) {
  switch (progress) {
    case RoleMoveProgress::waiting:
      return fmt::format("waiting for {} (epoch {}) to act at its next round", holder_name(lease), lease.epoch);
    case RoleMoveProgress::handed_over:
      return move.request() == RoleRequest::pin && !lease.pinned.empty() && lease.holder == move.before().holder
                 ? fmt::format("'{}' holds the lease (epoch {}); waiting for it to renew the lease with the pin in it",
                               lease.holder, lease.epoch)
                 : fmt::format("the lease names '{}' now (epoch {}); waiting for it to renew the lease", lease.holder,
                               lease.epoch);
    case RoleMoveProgress::given_back:
      return fmt::format("{} gave the lease back; waiting for an instance to take it", holder_name(lease));
    case RoleMoveProgress::done:
      return move.away() ? fmt::format("'{}' took the lease (epoch {})", lease.holder, lease.epoch)
                         : fmt::format("'{}' renewed the lease: it is the CRL master", lease.holder);
    case RoleMoveProgress::taken_back:
      return fmt::format("'{}' took the lease back (epoch {}): no other instance took it", lease.holder, lease.epoch);
    case RoleMoveProgress::target_let_go:
      return fmt::format("'{}' did not keep the lease; the lease now: {}", move.request_value(),
                         crl_holder_summary(lease));
  }
  return "";
}

struct MoveOutcome {
  RoleMoveProgress progress = RoleMoveProgress::waiting;
  store::CrlLease last;  // the lease as last read
};

// Reads the lease until the move is finished or `timeout` has passed, printing each change;
// writes the request again when it went missing.
MoveOutcome follow_move(const Session& s, CrlRoleMove& move, std::chrono::duration<double> timeout) {
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration_cast<Clock::duration>(timeout);
  const auto hint =
      move.request() == RoleRequest::pin ? store::CaStore::CrlRoleHint::pinned : store::CaStore::CrlRoleHint::handover;
  std::printf("waiting up to %.0f s (the instances' election rounds run every %.1f s)\n", timeout.count(),
              static_cast<double>(s.config.crl.lease_seconds) / 3);
  std::fflush(stdout);
  MoveOutcome outcome;
  outcome.last = move.before();
  std::optional<RoleMoveProgress> shown;
  auto last_line = start;
  std::string last_error;
  for (;;) {
    const auto now = Clock::now();
    auto lease = s.read_lease();
    if (!lease) {
      if (lease.error().message != last_error)
        std::printf("  [%5.1f s] %s\n", seconds_since(start), lease.error().message.c_str());
      last_error = lease.error().message;
    } else {
      last_error.clear();
      outcome.last = *lease;
      auto step = move.observe(*lease, now);
      outcome.progress = step.progress;
      if (step.request_missing) {
        std::printf(
            "  [%5.1f s] the request is no longer in the lease entry (replaced by a lease write replicated from "
            "another directory); writing it again\n",
            seconds_since(start));
        if (auto rewritten = s.write_hint(hint, move.request_value()); !rewritten)
          std::printf("  [%5.1f s] %s\n", seconds_since(start), rewritten.error().message.c_str());
        move.request_rewritten(Clock::now());
      }
      if (!shown || *shown != step.progress || Clock::now() - last_line >= kQuietProgress) {
        std::printf("  [%5.1f s] %s\n", seconds_since(start), progress_line(step.progress, move, *lease).c_str());
        shown = step.progress;
        last_line = Clock::now();
      }
      if (role_move_finished(step.progress)) break;
    }
    std::fflush(stdout);
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(kPollInterval);
  }
  std::fflush(stdout);
  return outcome;
}

// Takes back a handover request that is still pending after a failed move (another one, written
// since by someone else, is left alone).
void withdraw_handover(Session& s, const std::string& value) {
  auto lease = s.read_lease();
  if (!lease) {
    std::printf("could not check the handover request: %s\n", lease.error().message.c_str());
    return;
  }
  if (lease->handover != value) return;
  if (auto cleared = write_hint_settled(s, store::CaStore::CrlRoleHint::handover, ""); !cleared)
    std::printf("could not withdraw the handover request: %s\n", cleared.error().message.c_str());
  else
    std::printf("The handover request is withdrawn.\n");
}

std::string move_summary(const store::CrlLease& before, const store::CrlLease& after) {
  return fmt::format("CRL master: {} (epoch {}) -> {} (epoch {})", holder_name(before), before.epoch,
                     holder_name(after), epoch_text(after.epoch));
}

// Why a move towards an instance did not finish.
std::string failed_move_text(const MoveOutcome& outcome, const std::string& target,
                             std::chrono::duration<double> timeout) {
  if (outcome.progress == RoleMoveProgress::target_let_go)
    return fmt::format(
        "'{}' was handed the lease but did not keep it (the lease now: {}). Is its ca-server running, "
        "with crl.generate: true?",
        target, crl_holder_summary(outcome.last));
  if (outcome.progress == RoleMoveProgress::handed_over)
    return fmt::format(
        "timed out after {:.0f} s: the lease names '{}' but it has not renewed it: is its ca-server "
        "running?",
        timeout.count(), target);
  return fmt::format("timed out after {:.0f} s; the lease: {}", timeout.count(), crl_holder_summary(outcome.last));
}

int run_status_action(Session& s, bool as_json) {
  CrlRoleReport report;
  report.issuing_point = crl_issuing_point();
  report.read_at = std::chrono::system_clock::now();
  auto lease = s.read_lease();
  if (!lease) return s.options->failure(lease.error());
  report.lease = *lease;
  auto numbers = s.store().load_crl_numbers(crl_issuing_point());
  if (!numbers) return s.options->failure(numbers.error().context("reading the CRL numbers"));
  report.numbers = *numbers;
  if (as_json)
    std::puts(json::serialize(crl_role_json(report)).c_str());
  else
    std::fputs(crl_role_text(report).c_str(), stdout);
  return kExitOk;
}

int run_promote_action(Session& s, const std::string& target, std::chrono::duration<double> timeout) {
  auto before = s.read_lease();
  if (!before) return s.options->failure(before.error());
  auto refusal = refusal_of_target(s, target);
  if (!refusal) return s.options->failure(refusal.error());
  if (*refusal) return refuse(s, **refusal);
  if (!before->pinned.empty() && before->pinned != target)
    return refuse(s, fmt::format("the CRL master role is pinned to '{}': only it may hold the role. Run `ca-clone "
                                 "crl-master unpin --config {}` first (or pin '{}' instead)",
                                 before->pinned, s.config_file, target));
  if (before->holder == target && !authority::crl_lease_given_back(*before)) {
    std::printf("'%s' holds the CRL master role already, epoch %s; nothing to do.\n", target.c_str(),
                epoch_text(before->epoch).c_str());
    return kExitOk;
  }
  if (!before->handover.empty() && before->handover != target)
    std::printf("replacing the pending handover request (%s)\n", before->handover.c_str());
  const std::string what =
      fmt::format("CRL master role to '{}' (holder {}, epoch {})", target, holder_name(*before), before->epoch);
  if (auto written = s.write_hint(store::CaStore::CrlRoleHint::handover, target); !written)
    return s.options->failure(written.error());
  s.audit("crl_master_promote", what, "requested");
  std::printf("asked %s (epoch %llu) to hand the CRL master role to '%s'\n", holder_name(*before).c_str(),
              static_cast<unsigned long long>(before->epoch), target.c_str());

  auto move = CrlRoleMove::towards(target, RoleRequest::handover, *before, kSettle);
  auto outcome = follow_move(s, move, timeout);
  if (outcome.progress == RoleMoveProgress::done) {
    std::printf("%s\n", move_summary(*before, outcome.last).c_str());
    s.audit("crl_master_promote", what, fmt::format("done: '{}' holds it, epoch {}", target, outcome.last.epoch));
    return kExitOk;
  }
  const std::string why = failed_move_text(outcome, target, timeout);
  std::fprintf(stderr, "ca-clone crl-master promote: %s\n", why.c_str());
  withdraw_handover(s, target);
  s.audit("crl_master_promote", what, fmt::format("failed: {}", why));
  return kExitFailure;
}

int run_demote_action(Session& s, std::chrono::duration<double> timeout) {
  auto before = s.read_lease();
  if (!before) return s.options->failure(before.error());
  if (!before->pinned.empty())
    return refuse(s, fmt::format("the CRL master role is pinned to '{}': it does not move while pinned. Run `ca-clone "
                                 "crl-master unpin --config {}` first",
                                 before->pinned, s.config_file));
  if (before->holder.empty() || authority::crl_lease_given_back(*before)) {
    std::printf("Nobody holds the CRL master role (%s); nothing to demote.\n", crl_holder_summary(*before).c_str());
    return kExitOk;
  }
  const std::string anyone(authority::kCrlHandoverToAnyone);
  const std::string what = fmt::format("CRL master role away from '{}' (epoch {})", before->holder, before->epoch);
  if (auto written = s.write_hint(store::CaStore::CrlRoleHint::handover, anyone); !written)
    return s.options->failure(written.error());
  s.audit("crl_master_demote", what, "requested");
  std::printf("asked '%s' (epoch %llu) to give the CRL master role up\n", before->holder.c_str(),
              static_cast<unsigned long long>(before->epoch));

  auto move = CrlRoleMove::away(*before, kSettle);
  auto outcome = follow_move(s, move, timeout);
  if (outcome.progress == RoleMoveProgress::done) {
    std::printf("%s\n", move_summary(*before, outcome.last).c_str());
    s.audit("crl_master_demote", what,
            fmt::format("done: '{}' holds it, epoch {}", outcome.last.holder, outcome.last.epoch));
    return kExitOk;
  }
  std::string why =
      outcome.progress == RoleMoveProgress::taken_back
          ? fmt::format(
                "no other instance took the role: '{}' took it back (epoch {}). Is another "
                "instance with crl.generate: true running?",
                outcome.last.holder, outcome.last.epoch)
          : fmt::format("timed out after {:.0f} s; the lease: {}", timeout.count(), crl_holder_summary(outcome.last));
  std::fprintf(stderr, "ca-clone crl-master demote: %s\n", why.c_str());
  withdraw_handover(s, anyone);
  s.audit("crl_master_demote", what, fmt::format("failed: {}", why));
  return kExitFailure;
}

int run_pin_action(Session& s, const std::string& target, std::chrono::duration<double> timeout) {
  auto before = s.read_lease();
  if (!before) return s.options->failure(before.error());
  auto refusal = refusal_of_target(s, target);
  if (!refusal) return s.options->failure(refusal.error());
  if (*refusal) return refuse(s, **refusal);
  const std::string what = fmt::format("CRL master role pinned to '{}' (pinned before: {}; holder {}, epoch {})",
                                       target, pin_name(before->pinned), holder_name(*before), before->epoch);
  if (before->pinned != target) {
    if (auto written = s.write_hint(store::CaStore::CrlRoleHint::pinned, target); !written)
      return s.options->failure(written.error());
    s.audit("crl_master_pin", what, "requested");
    std::printf("pinned the CRL master role to '%s' (before: %s)\n", target.c_str(), pin_name(before->pinned).c_str());
  } else {
    std::printf("the CRL master role is pinned to '%s' already\n", target.c_str());
  }

  auto move = CrlRoleMove::towards(target, RoleRequest::pin, *before, kSettle);
  auto outcome = follow_move(s, move, timeout);
  if (outcome.progress == RoleMoveProgress::done) {
    if (before->holder != target || authority::crl_lease_given_back(*before))
      std::printf("%s\n", move_summary(*before, outcome.last).c_str());
    std::printf(
        "'%s' holds the pinned CRL master role, epoch %s. Only it holds the role from now on, even while it "
        "is down: `ca-clone crl-master unpin` lets the election choose again.\n",
        target.c_str(), epoch_text(outcome.last.epoch).c_str());
    if (before->pinned != target)
      s.audit("crl_master_pin", what, fmt::format("done: '{}' holds it, epoch {}", target, outcome.last.epoch));
    return kExitOk;
  }
  const std::string why = failed_move_text(outcome, target, timeout);
  std::fprintf(stderr, "ca-clone crl-master pin: %s\n", why.c_str());
  if (before->pinned != target) {
    // A pin that did not take would leave the role with nobody able to take it: set it back.
    if (auto restored = write_hint_settled(s, store::CaStore::CrlRoleHint::pinned, before->pinned); !restored)
      std::fprintf(stderr, "ca-clone crl-master pin: could not set the pin back to %s: %s\n",
                   pin_name(before->pinned).c_str(), restored.error().message.c_str());
    else
      std::printf("The pin is set back to %s.\n", pin_name(before->pinned).c_str());
    s.audit("crl_master_pin", what, fmt::format("failed, pin set back: {}", why));
  }
  return kExitFailure;
}

int run_unpin_action(Session& s) {
  auto before = s.read_lease();
  if (!before) return s.options->failure(before.error());
  if (before->pinned.empty()) {
    std::printf("The CRL master role is not pinned; nothing to do (holder: %s).\n",
                crl_holder_summary(*before).c_str());
    return kExitOk;
  }
  const std::string what = fmt::format("CRL master role unpinned (was pinned to '{}'; holder {}, epoch {})",
                                       before->pinned, holder_name(*before), before->epoch);
  if (auto cleared = write_hint_settled(s, store::CaStore::CrlRoleHint::pinned, ""); !cleared) {
    s.audit("crl_master_unpin", what, fmt::format("failed: {}", cleared.error().message));
    return s.options->failure(cleared.error());
  }
  s.audit("crl_master_unpin", what, "done");
  std::printf("Unpinned (was pinned to '%s'): the election chooses again. Holder: %s.\n", before->pinned.c_str(),
              holder_name(*before).c_str());
  // Lease + margin (a fifth) unchanged, then the settle time: crl_master.hpp.
  std::printf("If %s is down, another eligible instance takes the role once its lease has run out (in about %.0f s).\n",
              holder_name(*before).c_str(),
              s.config.crl.lease_seconds * 1.2 + std::chrono::duration<double>(kSettle).count());
  return kExitOk;
}

struct Action {
  std::string_view name;
  std::string_view usage;  // {handover}, {pinned}: the names of the lease's hints in the directory
  bool takes_instance = false;
  bool waits = false;     // --timeout
  bool has_json = false;  // --json
};

constexpr Action kActions[] = {
    {"status", kStatusUsage, false, false, true}, {"promote", kPromoteUsage, true, true, false},
    {"demote", kDemoteUsage, false, true, false}, {"pin", kPinUsage, true, true, false},
    {"unpin", kUnpinUsage, false, false, false},
};

}  // namespace

int run_crl_master(Args args) {
  OptionParser top("ca-clone crl-master", kUsage);
  if (args.empty()) return top.usage_error("an action is required");
  const std::string_view first = args[0];
  if (first == "-h" || first == "--help") return top.parse(args.subspan(0, 1)).value_or(kExitOk);
  const Action* action = nullptr;
  for (const auto& a : kActions)
    if (a.name == first) action = &a;
  if (!action) return top.usage_error(fmt::format("unknown action '{}' (the action comes first)", first));
  Args rest = args.subspan(1);

  Session s;
  s.action = std::string(action->name);
  using Hint = store::CaStore::CrlRoleHint;
  const std::string usage =
      fmt::format(fmt::runtime(action->usage), fmt::arg("handover", store::crl_role_hint_attribute(Hint::handover)),
                  fmt::arg("pinned", store::crl_role_hint_attribute(Hint::pinned)));
  OptionParser options(fmt::format("ca-clone crl-master {}", action->name), usage);
  s.options = &options;
  std::string target, timeout_text;
  bool as_json = false;
  // INSTANCE comes right after the action (not "-h" or "--help": those print this action's usage).
  if (action->takes_instance && !rest.empty() && !std::string_view(rest[0]).starts_with("-")) {
    target = rest[0];
    rest = rest.subspan(1);
  }
  options.value("--config", &s.config_file);
  if (action->waits) options.value("--timeout", &timeout_text);
  if (action->has_json) options.flag("--json", &as_json);
  if (auto done = options.parse(rest)) return *done;
  if (action->takes_instance && target.empty()) return options.usage_error("INSTANCE is required");
  if (s.config_file.empty()) return options.usage_error("--config is required");
  // Checked before anything is read: INSTANCE is written into the directory.
  if (!target.empty())
    if (auto shape = authority::check_instance_id(target); !shape) return refuse(s, shape.error().message);
  std::optional<double> timeout_seconds;
  if (options.given("--timeout")) {
    timeout_seconds = seconds_option(timeout_text, 86400);
    if (!timeout_seconds)
      return options.usage_error("--timeout expects a number of seconds, more than 0 and at most 86400");
  }

  log::set_level(log::Level::warn);
  auto config = load_instance_config(s.config_file);
  if (!config)
    return std::fprintf(stderr, "%s: %s\n", options.program().c_str(), config.error().message.c_str()), kExitUsage;
  s.config = std::move(*config);
  auto directory = open_running_instance_store(s.config);
  if (!directory) return options.failure(directory.error());
  s.directory = std::move(*directory);
  const std::chrono::duration<double> timeout =
      timeout_seconds ? std::chrono::duration<double>(*timeout_seconds) : 2 * s.lease() + std::chrono::seconds(5);

  if (action->name == "status") return run_status_action(s, as_json);
  if (action->name == "promote") return run_promote_action(s, target, timeout);
  if (action->name == "demote") return run_demote_action(s, timeout);
  if (action->name == "pin") return run_pin_action(s, target, timeout);
  return run_unpin_action(s);
}

}  // namespace ca::clone_tools
