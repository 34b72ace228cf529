#pragma once
// CaStore over a real directory: reads through a connection pool, writes through group commit.
#include <memory>

#include "core/config.hpp"
#include "store/ca_store.hpp"
#include "store/ldap/group_commit.hpp"
#include "store/ldap/ldap_pool.hpp"

namespace ca::store {

// Where things live under the suffix (modelled on Dogtag's tree).
struct DirectoryLayout {
  std::string suffix;
  std::string certificates() const { return "ou=certificateRepository,ou=ca," + suffix; }
  std::string requests() const { return "ou=requests,ou=ca," + suffix; }
  std::string profiles() const { return "ou=certificateProfiles,ou=ca," + suffix; }
  std::string crl_issuing_points() const { return "ou=crlIssuingPoints,ou=ca," + suffix; }
  std::string replicas() const { return "ou=replica," + suffix; }
  std::string keys() const { return "ou=keyRepository,ou=kra," + suffix; }
  std::string key_dn(std::string_view key_id) const;
  std::string recoveries() const { return "ou=recoveryRequests,ou=kra," + suffix; }
  std::string recovery_dn(std::string_view id) const;
  std::string groups() const { return "ou=groups," + suffix; }
  std::string enrollment_codes() const { return "ou=enrollmentCodes,ou=ca," + suffix; }
  std::string enrollment_code_dn(std::string_view id) const;
  std::string join_tokens() const { return "ou=joinTokens," + suffix; }
  std::string join_token_dn(std::string_view id) const;
  // The entry whose caNextRange is the shared counter of `kind`.
  std::string counter(RangeKind kind) const;
  // The folder of range entries for `kind`.
  std::string range_entries(RangeKind kind) const;
  std::string certificate_dn(std::string_view serial_hex) const;
  std::string request_dn(std::string_view id_hex) const;
  std::string replica_dn(int replica_id) const;
  std::string crl_dn(std::string_view issuing_point) const;
  std::string group_dn(std::string_view group) const;
  std::string audit_checkpoints() const { return "ou=auditCheckpoints,ou=ca," + suffix; }
  std::string audit_trail_dn(std::string_view instance) const;
  std::string audit_checkpoint_dn(std::string_view instance, uint64_t seq) const;
};

class LdapCaStore final : public CaStore {
 public:
  LdapCaStore(const LdapEndpoint& endpoint, std::string suffix, int pool_size, GroupCommitOptions group_commit);
  ~LdapCaStore() override;

  void commit_enrollment(RequestRecord request, std::optional<CertificateRecord> certificate,
                         std::function<void(Status)> done) override;
  void set_checkpoint_source(std::function<CounterCheckpoint()> source) override;
  Result<CertificateRecord> find_certificate(std::string_view serial_hex) override;
  Result<bool> certificate_exists(std::string_view serial_hex) override;
  Result<RequestRecord> find_request(std::string_view id_hex) override;
  Result<CertificatePage> list_certificates(const CertificateQuery& query) override;
  Result<NumberRange> claim_range(RangeKind kind, uint64_t size, uint64_t floor, int replica_id,
                                  std::string_view instance_id) override;
  Result<std::optional<ReplicaRecord>> load_replica(int replica_id) override;
  Status save_replica(const ReplicaRecord& replica) override;
  Status touch_heartbeat(int replica_id) override;
  Result<std::vector<ReplicaRecord>> list_replicas() override;
  Result<std::optional<uint64_t>> highest_counter_used(RangeKind kind, int replica_id, uint64_t from,
                                                       uint64_t to) override;
  Status revoke_certificate(const Revocation& revocation) override;
  Status unrevoke_certificate(std::string_view serial_hex, std::string_view by) override;
  Status each_revocation_change(std::optional<TimePoint> since,
                                const std::function<void(const RevocationChange&)>& visit) override;
  Result<std::optional<CrlRecord>> load_crl(std::string_view issuing_point, uint64_t skip_full_number = 0) override;
  // What a watch of revocations (store/directory_watch.hpp) follows: the revoked records, with these
  // attributes, each turned into a change (one without attributes = no longer revoked).
  static const std::vector<std::string>& revocation_attributes();
  static std::string revoked_filter();
  static std::optional<RevocationChange> revocation_change_from(const LdapEntry& entry);
  Result<std::optional<CrlRecord>> load_crl_numbers(std::string_view issuing_point) override;
  Result<CrlLease> read_crl_lease(std::string_view issuing_point) override;
  Status write_crl_lease(std::string_view issuing_point, const CrlLease& expected, const CrlLease& lease) override;
  Status set_crl_role_hint(std::string_view issuing_point, CrlRoleHint hint, std::string_view instance) override;
  Status save_crl(const CrlRecord& crl) override;
  Result<bool> is_group_member(std::string_view group, std::string_view member) override;
  Status add_group_member(std::string_view group, std::string_view member) override;
  Status remove_group_member(std::string_view group, std::string_view member) override;
  Result<std::vector<std::string>> group_members(std::string_view group) override;
  Status transition_request(std::string_view id_hex, std::string_view expected_state,
                            const RequestTransition& transition) override;
  void commit_approved_request(const RequestRecord& request, CertificateRecord certificate,
                               std::optional<std::pair<std::string, std::string>> group_member,
                               std::function<void(Status)> done) override;
  Result<RequestPage> list_requests(const RequestQuery& query) override;
  Status add_join_token(const JoinTokenRecord& token) override;
  Result<JoinTokenRecord> find_join_token(std::string_view id) override;
  Status consume_join_token(std::string_view id, int replica_id) override;
  void commit_enrollment_with_key(RequestRecord request, CertificateRecord certificate, KeyRecord key,
                                  std::function<void(Status)> done) override;
  Result<KeyRecord> find_key_by_serial(std::string_view serial_hex) override;
  Result<KeyRecord> find_key(std::string_view key_id) override;
  Status add_recovery(const RecoveryRecord& recovery) override;
  Result<RecoveryRecord> find_recovery(std::string_view id) override;
  Result<std::vector<RecoveryRecord>> list_recoveries(std::string_view state) override;
  Status approve_recovery(std::string_view id, std::string_view approver, int seen, bool complete) override;
  Status transition_recovery(std::string_view id, std::string_view from, std::string_view to,
                             std::string_view result) override;
  Status add_enrollment_code(const EnrollmentCodeRecord& code) override;
  Result<EnrollmentCodeRecord> find_enrollment_code(std::string_view id) override;
  Status consume_enrollment_code(std::string_view id, std::string_view request_id_hex) override;
  Status release_enrollment_code(std::string_view id) override;
  Status put_profile(const ProfileRecord& profile, bool overwrite) override;
  Result<std::vector<ProfileRecord>> list_profiles() override;
  Status record_audit_checkpoint(std::string_view instance, const AuditCheckpoint& checkpoint) override;
  Status record_audit_cut(std::string_view instance, const AuditCut& cut) override;
  Result<AuditTrail> audit_trail(std::string_view instance) override;

  const DirectoryLayout& layout() const { return layout_; }
  LdapPool& pool() { return pool_; }
  GroupCommitWriter& writer() { return writer_; }

 private:
  DirectoryLayout layout_;
  LdapPool pool_;
  GroupCommitWriter writer_;
};

// Record <-> entry mapping, exposed for tests and for tools that read the directory.
std::vector<LdapAttribute> certificate_attributes(const CertificateRecord& r);
Result<CertificateRecord> certificate_from_entry(const LdapEntry& e);
std::vector<LdapAttribute> request_attributes(const RequestRecord& r);
Result<RequestRecord> request_from_entry(const LdapEntry& e);
// caAuditCut values: "<first missing seq>:<expected seq>:<expected hash>:<generalized time found>".
std::string audit_cut_value(const AuditCut& cut);
std::optional<AuditCut> audit_cut_from_value(std::string_view value);
// The attribute of the issuing point entry that holds a hint of the CRL master lease.
std::string_view crl_role_hint_attribute(RevocationStore::CrlRoleHint hint);

}  // namespace ca::store
