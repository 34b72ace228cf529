#include "support/fake_ca_store.hpp"


#include <algorithm>
#include <atomic>
#include <charconv>

#include <fmt/format.h>

namespace ca::testing {

using namespace store;

Status FakeCaStore::check_up() const {
  if (down_) return fail(Error::unavailable("fake directory is down"));
  return ok();
}

void FakeCaStore::commit_enrollment(RequestRecord request, std::optional<CertificateRecord> certificate,
                                    std::function<void(Status)> done) {
  Status st = [&]() -> Status {
    std::lock_guard lock(mutex_);
    CA_CHECK(check_up());
    std::string rid = canonical_hex(request.id_hex);
    if (requests_.count(rid)) return fail(Error::conflict("request exists: " + rid));
    if (certificate && certificates_.count(canonical_hex(certificate->serial_hex)))
      return fail(Error::conflict("certificate exists: " + certificate->serial_hex));
    requests_[rid] = request;
    if (certificate) certificates_[canonical_hex(certificate->serial_hex)] = *certificate;
    return ok();
  }();
  done(st);
}

void FakeCaStore::commit_enrollment_with_key(RequestRecord request, CertificateRecord certificate, KeyRecord key,
                                             std::function<void(Status)> done) {
  Status st = [&]() -> Status {
    std::lock_guard lock(mutex_);
    CA_CHECK(check_up());
    std::string rid = canonical_hex(request.id_hex);
    if (requests_.count(rid) || certificates_.count(canonical_hex(certificate.serial_hex)) || keys_.count(key.key_id))
      return fail(Error::conflict("record exists"));
    requests_[rid] = request;
    certificates_[canonical_hex(certificate.serial_hex)] = certificate;
    keys_[key.key_id] = key;
    return ok();
  }();
  done(st);
}

Result<store::KeyRecord> FakeCaStore::find_key_by_serial(std::string_view serial_hex) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  for (const auto& [id, k] : keys_)
    if (canonical_hex(k.serial_hex) == canonical_hex(serial_hex)) return k;
  return fail(Error::not_found("no archived key for that certificate"));
}

Result<store::KeyRecord> FakeCaStore::find_key(std::string_view key_id) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  auto it = keys_.find(std::string(key_id));
  if (it == keys_.end()) return fail(Error::not_found("no archived key"));
  return it->second;
}

Status FakeCaStore::add_recovery(const store::RecoveryRecord& recovery) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  if (!recoveries_.emplace(recovery.id, recovery).second) return fail(Error::conflict("recovery exists"));
  return ok();
}

Result<store::RecoveryRecord> FakeCaStore::find_recovery(std::string_view id) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  auto it = recoveries_.find(std::string(id));
  if (it == recoveries_.end()) return fail(Error::not_found("no recovery request"));
  return it->second;
}

Result<std::vector<store::RecoveryRecord>> FakeCaStore::list_recoveries(std::string_view state) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  std::vector<store::RecoveryRecord> out;
  for (const auto& [id, r] : recoveries_)
    if (state.empty() || r.state == state) out.push_back(r);
  return out;
}

Status FakeCaStore::approve_recovery(std::string_view id, std::string_view approver, int seen, bool complete) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  auto it = recoveries_.find(std::string(id));
  if (it == recoveries_.end()) return fail(Error::not_found("no recovery request"));
  auto& r = it->second;
  if (std::find(r.approvers.begin(), r.approvers.end(), approver) != r.approvers.end())
    return fail(Error::conflict("type or value exists"));
  if (r.approval_count != seen) return fail(Error::conflict("no such value"));
  if (complete && r.state != "pending") return fail(Error::conflict("no such value"));
  r.approvers.emplace_back(approver);
  r.approval_count = seen + 1;
  if (complete) r.state = "approved";
  return ok();
}

Status FakeCaStore::transition_recovery(std::string_view id, std::string_view from, std::string_view to,
                                        std::string_view result) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  auto it = recoveries_.find(std::string(id));
  if (it == recoveries_.end()) return fail(Error::not_found("no recovery request"));
  if (it->second.state != from) return fail(Error::conflict("no such value"));
  it->second.state = std::string(to);
  if (!result.empty()) it->second.result = std::string(result);
  return ok();
}

Result<CertificateRecord> FakeCaStore::find_certificate(std::string_view serial_hex) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  auto it = certificates_.find(canonical_hex(serial_hex));
  if (it == certificates_.end()) return fail(Error::not_found("no certificate"));
  return it->second;
}

Result<bool> FakeCaStore::certificate_exists(std::string_view serial_hex) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  return certificates_.count(canonical_hex(serial_hex)) > 0;
}

Result<RequestRecord> FakeCaStore::find_request(std::string_view id_hex) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  auto it = requests_.find(canonical_hex(id_hex));
  if (it == requests_.end()) return fail(Error::not_found("no request"));
  return it->second;
}

Result<CertificatePage> FakeCaStore::list_certificates(const CertificateQuery& q) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  CertificatePage page;
  std::size_t i = 0;
  for (const auto& [serial, rec] : certificates_) {
    if (!q.status.empty() && rec.status != q.status) continue;
    if (!q.profile_id.empty() && rec.profile_id != q.profile_id) continue;
    if (i >= q.start && page.entries.size() < q.size) page.entries.push_back(rec);
    ++i;
  }
  page.total = i;
  return page;
}

Result<NumberRange> FakeCaStore::claim_range(RangeKind kind, uint64_t size, uint64_t floor, int, std::string_view) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  uint64_t& counter = counters_.try_emplace(kind, 1).first->second;
  NumberRange r{std::max(counter, floor), std::max(counter, floor) + size - 1};
  counter = r.end + 1;
  ++claims_;
  return r;
}

Result<std::optional<ReplicaRecord>> FakeCaStore::load_replica(int replica_id) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  auto it = replicas_.find(replica_id);
  if (it == replicas_.end()) return std::optional<ReplicaRecord>{};
  return std::optional<ReplicaRecord>(it->second);
}

Status FakeCaStore::save_replica(const ReplicaRecord& replica) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  // Like the directory: identity fields are only written when set.
  auto& stored = replicas_[replica.replica_id];
  auto keep = stored;
  stored = replica;
  if (stored.subsystem_serial.empty()) stored.subsystem_serial = keep.subsystem_serial;
  if (stored.server_cert_serial.empty()) stored.server_cert_serial = keep.server_cert_serial;
  if (stored.directory_cert_serial.empty()) stored.directory_cert_serial = keep.directory_cert_serial;
  return ok();
}

Result<std::vector<ReplicaRecord>> FakeCaStore::list_replicas() {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  std::vector<ReplicaRecord> out;
  for (const auto& [id, r] : replicas_) out.push_back(r);
  return out;
}

Result<std::optional<uint64_t>> FakeCaStore::highest_counter_used(RangeKind kind, int replica_id, uint64_t from,
                                                                  uint64_t to) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  std::optional<uint64_t> highest;
  auto consider = [&](const std::string& hex) {
    uint64_t v = 0;
    std::from_chars(hex.data(), hex.data() + hex.size(), v, 16);
    if (replica_of(v) != replica_id) return;
    uint64_t c = counter_of(v);
    if (c >= from && c <= to) highest = std::max(highest.value_or(0), c);
  };
  if (kind == RangeKind::serial)
    for (const auto& [k, _] : certificates_) consider(k);
  else
    for (const auto& [k, _] : requests_) consider(k);
  return highest;
}

Status FakeCaStore::put_profile(const ProfileRecord& profile, bool overwrite) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  if (!overwrite && profiles_.count(profile.id)) return ok();
  profiles_[profile.id] = profile;
  return ok();
}

Result<std::vector<ProfileRecord>> FakeCaStore::list_profiles() {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  std::vector<ProfileRecord> out;
  for (const auto& [_, p] : profiles_) out.push_back(p);
  return out;
}

Status FakeCaStore::revoke_certificate(const Revocation& r) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  auto it = certificates_.find(canonical_hex(r.serial_hex));
  if (it == certificates_.end()) return fail(Error::not_found("no certificate"));
  if (it->second.status != "VALID") return fail(Error::conflict("already revoked"));
  it->second.status = "REVOKED";
  it->second.revoked_on = r.revoked_on;
  it->second.revocation_reason = r.reason;
  it->second.invalidity_date = r.invalidity_date;
  it->second.revoked_by = r.revoked_by;
  modified_[it->first] = std::chrono::system_clock::now();
  return ok();
}

Status FakeCaStore::unrevoke_certificate(std::string_view serial_hex, std::string_view) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  auto it = certificates_.find(canonical_hex(serial_hex));
  if (it == certificates_.end()) return fail(Error::not_found("no certificate"));
  if (it->second.status != "REVOKED" || it->second.revocation_reason != 6) return fail(Error::conflict("not on hold"));
  it->second.status = "VALID";
  it->second.revoked_on.reset();
  modified_[it->first] = std::chrono::system_clock::now();
  return ok();
}

Status FakeCaStore::each_revocation_change(std::optional<TimePoint> since,
                                           const std::function<void(const RevocationChange&)>& visit) {
  std::vector<RevocationChange> out;
  {
    std::lock_guard lock(mutex_);
    CA_CHECK(check_up());
    for (const auto& [serial, rec] : certificates_) {
      auto m = modified_.find(serial);
      if (since ? (m == modified_.end() || m->second < *since) : rec.status != "REVOKED") continue;
      out.push_back({serial, rec.status == "REVOKED", rec.revoked_on.value_or(TimePoint{}), rec.revocation_reason,
                     rec.invalidity_date, m == modified_.end() ? TimePoint{} : m->second});
    }
  }
  for (const auto& ch : out) visit(ch);
  return ok();
}

Result<std::optional<CrlRecord>> FakeCaStore::load_crl(std::string_view issuing_point, uint64_t skip_full_number) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  auto it = crls_.find(std::string(issuing_point));
  if (it == crls_.end()) return std::optional<CrlRecord>{};
  CrlRecord r = it->second;
  if (skip_full_number && r.crl_number == skip_full_number) {
    r.complete.full.reset();
    for (auto& p : r.partitions) p.full.reset();
  }
  return std::optional<CrlRecord>(std::move(r));
}

Status FakeCaStore::save_crl(const CrlRecord& crl) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  auto it = crls_.find(crl.issuing_point);
  if (it != crls_.end() && std::max(crl.crl_number, crl.delta_number) <=
                               std::max(it->second.crl_number, it->second.delta_number))
    return fail(Error::conflict("CRL number not above the stored one"));
  if (crl.epoch && lease_view(leases_[crl.issuing_point]).epoch != crl.epoch)
    return fail(Error::conflict("the CRL lease is at another epoch"));
  CrlRecord& stored = crls_[crl.issuing_point];
  auto merge = [&](CrlScope& into, const CrlScope& from) {
    if (from.full) {
      into.full = from.full;
      ++full_crl_writes_;
    }
    if (from.delta) {
      into.delta = from.delta;
      ++delta_crl_writes_;
    }
  };
  stored.issuing_point = crl.issuing_point;
  stored.crl_number = crl.crl_number;
  stored.delta_number = crl.delta_number;
  stored.this_update = crl.this_update;
  stored.next_update = crl.next_update;
  stored.serve_from = crl.serve_from;
  stored.epoch = crl.epoch ? crl.epoch : stored.epoch;
  stored.partition_count = crl.partitions.size();
  merge(stored.complete, crl.complete);
  stored.partitions.resize(crl.partitions.size());
  for (std::size_t k = 0; k < crl.partitions.size(); ++k) merge(stored.partitions[k], crl.partitions[k]);
  return ok();
}

std::size_t FakeCaStore::full_crl_writes() const {
  std::lock_guard lock(mutex_);
  return full_crl_writes_;
}

std::size_t FakeCaStore::delta_crl_writes() const {
  std::lock_guard lock(mutex_);
  return delta_crl_writes_;
}

Result<std::optional<CrlRecord>> FakeCaStore::load_crl_numbers(std::string_view issuing_point) {
  CA_TRY(auto crl, load_crl(issuing_point));
  if (crl) {
    crl->newest_stored = std::max(crl->crl_number, crl->delta_number);
    crl->complete = {};
    crl->partitions.clear();
  }
  return crl;
}

namespace {
std::atomic<uint64_t> g_lease_writes{0};  // a CSN shared by every fake directory of a test
}

store::CrlLease FakeCaStore::lease_view(const LeaseEntries& entries) const {
  store::CrlLease lease;
  if (!entries.epochs.empty()) {
    const auto& [epoch, entry] = *entries.epochs.rbegin();
    lease.holder = entry.holder;
    lease.expires = entry.expires;
    lease.epoch = epoch;
  }
  lease.pinned = entries.pinned;
  lease.handover = entries.handover;
  return lease;
}

Result<CrlLease> FakeCaStore::read_crl_lease(std::string_view issuing_point) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  return lease_view(leases_[std::string(issuing_point)]);
}

Status FakeCaStore::write_crl_lease(std::string_view issuing_point, const CrlLease& expected, const CrlLease& lease) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  if (lease.epoch == 0 || lease.holder.empty() || lease.epoch < expected.epoch ||
      (lease.epoch == expected.epoch && lease.holder != expected.holder))
    return fail(Error::internal("not a lease write LdapCaStore takes"));
  auto& entries = leases_[std::string(issuing_point)];
  const CrlLease now = lease_view(entries);
  if (now.holder != expected.holder || now.epoch != expected.epoch) return fail(Error::conflict("the CRL lease moved"));
  if (lease.epoch != expected.epoch && entries.epochs.count(lease.epoch))
    return fail(Error::conflict("the CRL lease of this epoch exists already"));
  entries.epochs[lease.epoch] = {lease.holder, lease.expires, ++g_lease_writes};
  if (!expected.handover.empty() && lease.handover.empty() && entries.handover == expected.handover)
    entries.handover.clear();
  return ok();
}

void FakeCaStore::replicate_crl_leases_from(const FakeCaStore& from) {
  std::scoped_lock lock(mutex_, from.mutex_);
  for (const auto& [point, theirs] : from.leases_) {
    auto& ours = leases_[point];
    for (const auto& [epoch, entry] : theirs.epochs) {
      auto it = ours.epochs.find(epoch);
      if (it == ours.epochs.end() || it->second.written < entry.written) ours.epochs[epoch] = entry;
    }
  }
}

void FakeCaStore::drop_crl_lease_epoch(std::string_view issuing_point, uint64_t epoch) {
  std::lock_guard lock(mutex_);
  leases_[std::string(issuing_point)].epochs.erase(epoch);
}

Status FakeCaStore::set_crl_role_hint(std::string_view issuing_point, CrlRoleHint hint, std::string_view instance) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  auto& stored = leases_[std::string(issuing_point)];
  (hint == CrlRoleHint::pinned ? stored.pinned : stored.handover) = std::string(instance);
  return ok();
}

Result<bool> FakeCaStore::is_group_member(std::string_view group, std::string_view member) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  const auto& m = groups_[std::string(group)];
  return std::find(m.begin(), m.end(), member) != m.end();
}

Status FakeCaStore::add_group_member(std::string_view group, std::string_view member) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  groups_[std::string(group)].push_back(std::string(member));
  return ok();
}

Status FakeCaStore::remove_group_member(std::string_view group, std::string_view member) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  auto& m = groups_[std::string(group)];
  auto it = std::find(m.begin(), m.end(), member);
  if (it == m.end()) return fail(Error::not_found("not a member"));
  m.erase(it);
  return ok();
}

Result<std::vector<std::string>> FakeCaStore::group_members(std::string_view group) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  return groups_[std::string(group)];
}

Status FakeCaStore::transition_request(std::string_view id_hex, std::string_view expected_state,
                                       const store::RequestTransition& t) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  auto it = requests_.find(store::canonical_hex(id_hex));
  if (it == requests_.end()) return fail(Error::not_found("no such request"));
  if (it->second.state != expected_state) return fail(Error::conflict("request state changed"));
  it->second.state = t.state;
  if (!t.approved_by.empty()) it->second.approved_by = t.approved_by;
  if (!t.approval_changes.empty()) it->second.approval_changes = t.approval_changes;
  if (!t.result.empty()) it->second.result = t.result;
  return ok();
}

void FakeCaStore::commit_approved_request(const store::RequestRecord& request, store::CertificateRecord certificate,
                                          std::optional<std::pair<std::string, std::string>> group_member,
                                          std::function<void(Status)> done) {
  Status st = [&]() -> Status {
    std::lock_guard lock(mutex_);
    CA_CHECK(check_up());
    auto it = requests_.find(store::canonical_hex(request.id_hex));
    if (it == requests_.end()) return fail(Error::not_found("no such request"));
    if (it->second.state != "approved") return fail(Error::conflict("request is no longer approved"));
    it->second.state = "complete";
    it->second.serial_hex = certificate.serial_hex;
    if (group_member) groups_[group_member->first].push_back(group_member->second);
    certificates_[store::canonical_hex(certificate.serial_hex)] = std::move(certificate);
    return ok();
  }();
  done(st);
}

Result<store::RequestPage> FakeCaStore::list_requests(const store::RequestQuery& q) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  store::RequestPage page;
  std::size_t index = 0;
  for (const auto& [id, r] : requests_) {
    if (!q.state.empty() && r.state != q.state) continue;
    if (q.replica_id > 0 && r.replica_id != q.replica_id) continue;
    if (!q.subject_dn.empty() && r.subject_dn != q.subject_dn) continue;
    if (!q.profile_id.empty() && r.profile_id != q.profile_id) continue;
    ++page.total;
    if (index++ >= q.start && page.entries.size() < q.size) page.entries.push_back(r);
  }
  return page;
}

Status FakeCaStore::add_join_token(const store::JoinTokenRecord& token) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  if (!tokens_.emplace(token.id, token).second) return fail(Error::conflict("token exists"));
  return ok();
}

Result<store::JoinTokenRecord> FakeCaStore::find_join_token(std::string_view id) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  auto it = tokens_.find(std::string(id));
  if (it == tokens_.end()) return fail(Error::not_found("unknown join token"));
  return it->second;
}

Status FakeCaStore::consume_join_token(std::string_view id, int replica_id) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  auto it = tokens_.find(std::string(id));
  if (it == tokens_.end()) return fail(Error::not_found("unknown join token"));
  if (it->second.state != "unused") return fail(Error::forbidden("this join token was already used"));
  it->second.state = "used";
  it->second.replica_id = replica_id;
  return ok();
}

Status FakeCaStore::add_enrollment_code(const store::EnrollmentCodeRecord& code) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  if (!codes_.emplace(code.id, code).second) return fail(Error::conflict("code exists"));
  return ok();
}

Result<store::EnrollmentCodeRecord> FakeCaStore::find_enrollment_code(std::string_view id) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  auto it = codes_.find(std::string(id));
  if (it == codes_.end()) return fail(Error::not_found("unknown enrollment code"));
  return it->second;
}

Status FakeCaStore::consume_enrollment_code(std::string_view id, std::string_view request_id_hex) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  auto it = codes_.find(std::string(id));
  if (it == codes_.end()) return fail(Error::not_found("unknown enrollment code"));
  if (it->second.state != "unused") return fail(Error::forbidden("this enrollment code was already used"));
  it->second.state = "used";
  it->second.used_by_request = std::string(request_id_hex);
  return ok();
}

Status FakeCaStore::release_enrollment_code(std::string_view id) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  auto it = codes_.find(std::string(id));
  if (it == codes_.end()) return fail(Error::not_found("unknown enrollment code"));
  it->second.state = "unused";
  it->second.used_by_request.clear();
  return ok();
}

void FakeCaStore::set_counter(RangeKind kind, uint64_t value) {
  std::lock_guard lock(mutex_);
  counters_[kind] = value;
}

std::size_t FakeCaStore::certificate_count() const {
  std::lock_guard lock(mutex_);
  return certificates_.size();
}

std::size_t FakeCaStore::request_count() const {
  std::lock_guard lock(mutex_);
  return requests_.size();
}

// As LdapCaStore: add-only checkpoints above the highest, the newest kAuditCheckpointsKept kept.
Status FakeCaStore::record_audit_checkpoint(std::string_view instance, const store::AuditCheckpoint& checkpoint) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  auto& trail = audit_trails_[std::string(instance)];
  if (const auto* highest = trail.highest(); highest && highest->seq >= checkpoint.seq) {
    const auto same = std::find_if(trail.checkpoints.begin(), trail.checkpoints.end(),
                                   [&](const auto& e) { return e.seq == checkpoint.seq; });
    if (same != trail.checkpoints.end() && same->hash == checkpoint.hash) return ok();
    return fail(Error::conflict(fmt::format("the audit trail of '{}' has checkpoint {} already", instance, highest->seq)));
  }
  trail.checkpoints.push_back(checkpoint);
  if (trail.checkpoints.size() > store::kAuditCheckpointsKept)
    trail.checkpoints.erase(trail.checkpoints.begin(),
                            trail.checkpoints.end() - static_cast<std::ptrdiff_t>(store::kAuditCheckpointsKept));
  return ok();
}

Status FakeCaStore::record_audit_cut(std::string_view instance, const store::AuditCut& cut) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  auto& cuts = audit_trails_[std::string(instance)].cuts;
  if (std::find(cuts.begin(), cuts.end(), cut) == cuts.end()) cuts.push_back(cut);
  return ok();
}

Result<store::AuditTrail> FakeCaStore::audit_trail(std::string_view instance) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  auto it = audit_trails_.find(instance);
  return it == audit_trails_.end() ? store::AuditTrail{} : it->second;
}

}  // namespace ca::testing
