#include "crl_role_move.hpp"

#include "authority/revocation/crl_master.hpp"

namespace ca::clone_tools {

std::string_view role_move_progress_name(RoleMoveProgress progress) {
  switch (progress) {
    case RoleMoveProgress::waiting:
      return "waiting";
    case RoleMoveProgress::handed_over:
      return "handed_over";
    case RoleMoveProgress::given_back:
      return "given_back";
    case RoleMoveProgress::done:
      return "done";
    case RoleMoveProgress::taken_back:
      return "taken_back";
    case RoleMoveProgress::target_let_go:
      return "target_let_go";
  }
  return "?";
}

bool role_move_finished(RoleMoveProgress progress) {
  return progress == RoleMoveProgress::done || progress == RoleMoveProgress::taken_back ||
         progress == RoleMoveProgress::target_let_go;
}

CrlRoleMove::CrlRoleMove(RoleRequest request, std::string request_value, bool away, store::CrlLease before,
                         Clock::duration settle)
    : request_(request),
      request_value_(std::move(request_value)),
      away_(away),
      before_(std::move(before)),
      settle_(settle) {
  target_held_before_ = !away_ && before_.holder == request_value_ && !authority::crl_lease_given_back(before_);
}

CrlRoleMove CrlRoleMove::towards(std::string target, RoleRequest request, store::CrlLease before,
                                 Clock::duration settle) {
  return CrlRoleMove(request, std::move(target), false, std::move(before), settle);
}

CrlRoleMove CrlRoleMove::away(store::CrlLease before, Clock::duration settle) {
  return CrlRoleMove(RoleRequest::handover, std::string(authority::kCrlHandoverToAnyone), true, std::move(before),
                     settle);
}

bool CrlRoleMove::request_present(const store::CrlLease& lease) const {
  return (request_ == RoleRequest::pin ? lease.pinned : lease.handover) == request_value_;
}

RoleMoveProgress CrlRoleMove::judge_towards(const store::CrlLease& lease) {
  const std::string& target = request_value_;
  const bool target_holds = lease.holder == target && !authority::crl_lease_given_back(lease) &&
                            (lease.epoch > before_.epoch || target_held_before_);
  if (!target_holds) {
    first_held_.reset();
    if (target_ever_held_) return RoleMoveProgress::target_let_go;
    return authority::crl_lease_given_back(lease) ? RoleMoveProgress::given_back : RoleMoveProgress::waiting;
  }
  target_ever_held_ = true;
  // A pin is done only once a renewal carries it: the lease entry the holder writes is the one
  // that replicates.
  if (request_ == RoleRequest::pin && !request_present(lease)) {
    first_held_.reset();
    return RoleMoveProgress::handed_over;
  }
  if (!first_held_) {
    first_held_ = lease;
    return RoleMoveProgress::handed_over;
  }
  const bool renewed = lease.expires != first_held_->expires || lease.epoch != first_held_->epoch;
  return renewed ? RoleMoveProgress::done : RoleMoveProgress::handed_over;
}

RoleMoveProgress CrlRoleMove::judge_away(const store::CrlLease& lease) const {
  if (authority::crl_lease_given_back(lease)) return RoleMoveProgress::given_back;
  if (lease.holder.empty()) return RoleMoveProgress::waiting;
  if (lease.holder != before_.holder) return RoleMoveProgress::done;
  if (lease.epoch != before_.epoch) return RoleMoveProgress::taken_back;
  return RoleMoveProgress::waiting;
}

bool CrlRoleMove::check_missing(const store::CrlLease& lease, bool move_begun, Clock::time_point now) {
  if (request_present(lease) || move_begun) {
    missing_since_.reset();
    return false;
  }
  // Missing under the same holder and epoch for `settle`: every write made before the request
  // reached the other directories has arrived by now, so the request is gone, not in flight.
  std::pair<std::string, uint64_t> key{lease.holder, lease.epoch};
  if (!missing_since_ || missing_since_->second != key) {
    missing_since_.emplace(now, std::move(key));
    return false;
  }
  return now - missing_since_->first >= settle_;
}

CrlRoleMove::Step CrlRoleMove::observe(const store::CrlLease& lease, Clock::time_point now) {
  Step step;
  step.progress = away_ ? judge_away(lease) : judge_towards(lease);
  // A handover request is consumed by the move (the holder clears it when it writes the lease
  // over); a pin stays for good.
  const bool move_begun = request_ == RoleRequest::pin ? false : step.progress != RoleMoveProgress::waiting;
  step.request_missing = !role_move_finished(step.progress) && check_missing(lease, move_begun, now);
  return step;
}

void CrlRoleMove::request_rewritten(Clock::time_point now) {
  if (missing_since_) missing_since_->first = now;
}

}  // namespace ca::clone_tools
