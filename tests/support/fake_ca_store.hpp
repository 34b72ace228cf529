#pragma once
// An in-memory CaStore for fast unit tests of the authority layer. Behaves like one directory
// server; `set_counter` lets a test make a shared counter go backwards, as replication can.
#include <map>
#include <mutex>

#include "store/ca_store.hpp"

namespace ca::testing {

class FakeCaStore final : public store::CaStore {
 public:
  void commit_enrollment(store::RequestRecord request, std::optional<store::CertificateRecord> certificate,
                         std::function<void(Status)> done) override;
  void set_checkpoint_source(std::function<store::CounterCheckpoint()> source) override { checkpoint_ = std::move(source); }
  Result<store::CertificateRecord> find_certificate(std::string_view serial_hex) override;
  Result<bool> certificate_exists(std::string_view serial_hex) override;
  Result<store::RequestRecord> find_request(std::string_view id_hex) override;
  Result<store::CertificatePage> list_certificates(const store::CertificateQuery& query) override;
  Result<store::NumberRange> claim_range(store::RangeKind kind, uint64_t size, uint64_t floor, int replica_id,
                                         std::string_view instance_id) override;
  Result<std::optional<store::ReplicaRecord>> load_replica(int replica_id) override;
  Status save_replica(const store::ReplicaRecord& replica) override;
  Status touch_heartbeat(int) override { std::lock_guard lock(mutex_); return check_up(); }
  Result<std::vector<store::ReplicaRecord>> list_replicas() override;
  Result<std::optional<uint64_t>> highest_counter_used(store::RangeKind kind, int replica_id, uint64_t from,
                                                       uint64_t to) override;
  Status revoke_certificate(const store::Revocation& revocation) override;
  Status unrevoke_certificate(std::string_view serial_hex, std::string_view by) override;
  Status each_revocation_change(std::optional<store::TimePoint> since,
                                const std::function<void(const store::RevocationChange&)>& visit) override;
  Result<std::optional<store::CrlRecord>> load_crl(std::string_view issuing_point, uint64_t skip_full_number = 0) override;
  Status save_crl(const store::CrlRecord& crl) override;
  Result<std::optional<store::CrlRecord>> load_crl_numbers(std::string_view issuing_point) override;
  Result<store::CrlLease> read_crl_lease(std::string_view issuing_point) override;
  Status write_crl_lease(std::string_view issuing_point, const store::CrlLease& expected,
                         const store::CrlLease& lease) override;
  Status set_crl_role_hint(std::string_view issuing_point, CrlRoleHint hint, std::string_view instance) override;
  // Writes of CRL DER so far (full and delta separately), for tests of what a publication stores.
  std::size_t full_crl_writes() const;
  std::size_t delta_crl_writes() const;
  Result<bool> is_group_member(std::string_view group, std::string_view member) override;
  Status add_group_member(std::string_view group, std::string_view member) override;
  Status remove_group_member(std::string_view group, std::string_view member) override;
  Result<std::vector<std::string>> group_members(std::string_view group) override;
  Status transition_request(std::string_view id_hex, std::string_view expected_state,
                            const store::RequestTransition& transition) override;
  void commit_approved_request(const store::RequestRecord& request, store::CertificateRecord certificate,
                               std::optional<std::pair<std::string, std::string>> group_member,
                               std::function<void(Status)> done) override;
  Result<store::RequestPage> list_requests(const store::RequestQuery& query) override;
  Status add_join_token(const store::JoinTokenRecord& token) override;
  Result<store::JoinTokenRecord> find_join_token(std::string_view id) override;
  Status consume_join_token(std::string_view id, int replica_id) override;
  void commit_enrollment_with_key(store::RequestRecord request, store::CertificateRecord certificate,
                                  store::KeyRecord key, std::function<void(Status)> done) override;
  Result<store::KeyRecord> find_key_by_serial(std::string_view serial_hex) override;
  Result<store::KeyRecord> find_key(std::string_view key_id) override;
  Status add_recovery(const store::RecoveryRecord& recovery) override;
  Result<store::RecoveryRecord> find_recovery(std::string_view id) override;
  Result<std::vector<store::RecoveryRecord>> list_recoveries(std::string_view state) override;
  Status approve_recovery(std::string_view id, std::string_view approver, int seen, bool complete) override;
  Status transition_recovery(std::string_view id, std::string_view from, std::string_view to,
                             std::string_view result) override;
  Status add_enrollment_code(const store::EnrollmentCodeRecord& code) override;
  Result<store::EnrollmentCodeRecord> find_enrollment_code(std::string_view id) override;
  Status consume_enrollment_code(std::string_view id, std::string_view request_id_hex) override;
  Status release_enrollment_code(std::string_view id) override;
  Status put_profile(const store::ProfileRecord& profile, bool overwrite) override;
  Result<std::vector<store::ProfileRecord>> list_profiles() override;
  Status record_audit_checkpoint(std::string_view instance, const store::AuditCheckpoint& checkpoint) override;
  Status record_audit_cut(std::string_view instance, const store::AuditCut& cut) override;
  Result<store::AuditTrail> audit_trail(std::string_view instance) override;

  // Test controls.
  void set_counter(store::RangeKind kind, uint64_t value);
  void set_unavailable(bool down) {
    std::lock_guard lock(mutex_);
    down_ = down;
  }
  std::size_t certificate_count() const;
  std::size_t request_count() const;
  int claims() const { return claims_; }
  // Replication of the CRL lease as syncrepl does it between two directories: every epoch entry of
  // `from` reaches this store, and of two writes of one entry the later one wins (entryCSN).
  void replicate_crl_leases_from(const FakeCaStore& from);
  // A directory restored from an old backup: the lease entry of `epoch` is gone.
  void drop_crl_lease_epoch(std::string_view issuing_point, uint64_t epoch);

 private:
  Status check_up() const;
  mutable std::mutex mutex_;
  bool down_ = false;
  int claims_ = 0;
  std::map<store::RangeKind, uint64_t> counters_;
  std::map<std::string, store::CertificateRecord> certificates_;
  std::map<std::string, store::RequestRecord> requests_;
  std::map<std::string, store::KeyRecord> keys_;
  std::map<std::string, store::RecoveryRecord> recoveries_;
  std::map<int, store::ReplicaRecord> replicas_;
  std::map<std::string, store::ProfileRecord> profiles_;
  std::map<std::string, store::CrlRecord> crls_;
  // The lease as LdapCaStore stores it: one entry per epoch (the highest is the lease), and the
  // pin and handover on the issuing point. `written` orders writes across stores like an entryCSN.
  struct EpochEntry {
    std::string holder;
    store::TimePoint expires{};
    uint64_t written = 0;
  };
  struct LeaseEntries {
    std::map<uint64_t, EpochEntry> epochs;
    std::string pinned, handover;
  };
  store::CrlLease lease_view(const LeaseEntries& entries) const;
  std::map<std::string, LeaseEntries> leases_;
  std::size_t full_crl_writes_ = 0, delta_crl_writes_ = 0;
  std::map<std::string, std::vector<std::string>> groups_;
  std::map<std::string, store::EnrollmentCodeRecord> codes_;
  std::map<std::string, store::JoinTokenRecord> tokens_;
  std::map<std::string, store::TimePoint> modified_;
  std::function<store::CounterCheckpoint()> checkpoint_;
  std::map<std::string, store::AuditTrail, std::less<>> audit_trails_;
};

}  // namespace ca::testing
