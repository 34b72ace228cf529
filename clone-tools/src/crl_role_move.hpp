#pragma once
// Following a move of the CRL master role that `ca-clone crl-master` asked for. The command writes
// a request into the lease entry (caCrlHandover for promote and demote, caCrlPinned for pin) and
// the running instances carry it out at their next election rounds (authority/revocation/crl_master.hpp):
// the holder stops generating, then writes the lease over to the target under a new epoch (or
// gives it back, for a demote), and the target renews it as the new CRL master. This judges, from
// the lease before the request and each lease read since, how far the move has come. Pure: the
// caller reads the directory and passes the (monotonic) time in.
//
// A request can vanish without being carried out: the directories replicate whole entries (plain
// syncrepl: the entry's newest change wins), so a renewal written in another directory before the
// request reached it can replace the entry without the request. A request absent for `settle`
// while the lease stood still is reported missing, and the caller writes it again.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "store/records.hpp"

namespace ca::clone_tools {

enum class RoleMoveProgress {
  waiting,        // the holder has not acted on the request yet
  handed_over,    // towards: the lease names the target under a new epoch; the target has not renewed it yet
  given_back,     // the lease is given back; no instance has taken it yet
  done,           // towards: the target renewed the lease, it is the CRL master; away: another instance holds it
  taken_back,     // away: the old holder took the lease back (no other instance took it)
  target_let_go,  // towards: the target held the lease and did not keep it (stopped, or not eligible)
};
std::string_view role_move_progress_name(RoleMoveProgress progress);
// done, taken_back and target_let_go: the move is over, one way or the other.
bool role_move_finished(RoleMoveProgress progress);

// What the command wrote into the lease entry.
enum class RoleRequest { handover, pin };

class CrlRoleMove {
 public:
  using Clock = std::chrono::steady_clock;

  // promote (a handover request) or pin: until `target` holds the lease (under a later epoch than
  // `before`, unless it held it already) and has renewed it; for a pin, with the pin in the lease.
  static CrlRoleMove towards(std::string target, RoleRequest request, store::CrlLease before, Clock::duration settle);
  // demote (the handover request "*"): until another instance holds the lease.
  static CrlRoleMove away(store::CrlLease before, Clock::duration settle);

  struct Step {
    RoleMoveProgress progress = RoleMoveProgress::waiting;
    bool request_missing = false;  // write the request again (then call request_rewritten)
  };
  Step observe(const store::CrlLease& lease, Clock::time_point now);
  void request_rewritten(Clock::time_point now);

  RoleRequest request() const { return request_; }
  bool away() const { return away_; }
  // The value the request puts into the lease entry: the target, or "*" (demote).
  const std::string& request_value() const { return request_value_; }
  const store::CrlLease& before() const { return before_; }

 private:
  CrlRoleMove(RoleRequest request, std::string request_value, bool away, store::CrlLease before,
              Clock::duration settle);
  RoleMoveProgress judge_towards(const store::CrlLease& lease);
  RoleMoveProgress judge_away(const store::CrlLease& lease) const;
  bool request_present(const store::CrlLease& lease) const;
  bool check_missing(const store::CrlLease& lease, bool move_begun, Clock::time_point now);

  RoleRequest request_;
  std::string request_value_;
  bool away_;
  store::CrlLease before_;
  Clock::duration settle_;
  bool target_held_before_ = false;
  // The lease as the target first held it: a later value (expiry, epoch) is its renewal.
  std::optional<store::CrlLease> first_held_;
  bool target_ever_held_ = false;
  // Since when the request has been missing, and the (holder, epoch) it was missing under.
  std::optional<std::pair<Clock::time_point, std::pair<std::string, uint64_t>>> missing_since_;
};

}  // namespace ca::clone_tools
