#pragma once
// The narrow interface the authority layer uses. One implementation talks LDAP (LdapCaStore);
// unit tests of the authority use a fake.
#include <functional>

#include "core/error.hpp"
#include "store/records.hpp"

namespace ca::store {

// What a batch commit should also record about this instance (see GroupCommitWriter).
struct CounterCheckpoint {
  int replica_id = 0;
  uint64_t serial_next = 0;
  uint64_t request_next = 0;
};

class CaStore {
 public:
  virtual ~CaStore() = default;

  // Durably stores an enrollment (request + certificate) as one all-or-nothing unit; `done` runs
  // on a store thread once the directory has committed it, or with the error.
  virtual void commit_enrollment(RequestRecord request, std::optional<CertificateRecord> certificate,
                                 std::function<void(Status)> done) = 0;
  // Registers the source of the counter checkpoint written with every commit batch.
  virtual void set_checkpoint_source(std::function<CounterCheckpoint()> source) = 0;

  virtual Result<CertificateRecord> find_certificate(std::string_view serial_hex) = 0;
  virtual Result<bool> certificate_exists(std::string_view serial_hex) = 0;
  virtual Result<RequestRecord> find_request(std::string_view id_hex) = 0;
  virtual Result<CertificatePage> list_certificates(const CertificateQuery& query) = 0;

  // Claims [start, start+size-1] from the shared counter of `kind` with an atomic
  // delete-old/add-new modify (retried on conflict), where start >= max(counter, floor), and
  // records a range entry naming the owner.
  virtual Result<NumberRange> claim_range(RangeKind kind, uint64_t size, uint64_t floor, int replica_id,
                                          std::string_view instance_id) = 0;
  virtual Result<std::optional<ReplicaRecord>> load_replica(int replica_id) = 0;
  // One small write (the replica entry's heartbeat): proves the directory takes writes (/readyz).
  virtual Status touch_heartbeat(int replica_id) = 0;
  virtual Status save_replica(const ReplicaRecord& replica) = 0;
  // Every registered instance (retired ones too), by replica ID.
  virtual Result<std::vector<ReplicaRecord>> list_replicas() = 0;
  // Highest counter this replica has used in [from, to] (certificates for serial, requests for
  // request numbers), found by a range search; nullopt when none.
  virtual Result<std::optional<uint64_t>> highest_counter_used(RangeKind kind, int replica_id, uint64_t from,
                                                               uint64_t to) = 0;

  // Revocation: an atomic change of caCertStatus VALID -> REVOKED on the record (so two agents
  // revoking at once get one success and one conflict). not_found / conflict ("already revoked").
  virtual Status revoke_certificate(const Revocation& revocation) = 0;
  // certificateHold -> VALID; conflict when the certificate is not on hold.
  virtual Status unrevoke_certificate(std::string_view serial_hex, std::string_view by) = 0;
  // Every revocation (or unrevocation) modified at or after `since` (all revoked when nullopt),
  // streamed to `visit` without holding them all in memory.
  virtual Status each_revocation_change(std::optional<TimePoint> since,
                                        const std::function<void(const RevocationChange&)>& visit) = 0;
  // The issuing point's numbers and its stored CRLs (complete and partitions). The full CRLs are
  // left out (only their numbers read) when the stored full CRL number is `skip_full_number`: a
  // follower that already serves that full CRL reads only the new delta.
  virtual Result<std::optional<CrlRecord>> load_crl(std::string_view issuing_point, uint64_t skip_full_number = 0) = 0;
  // The numbers and times only (no DER): cheap enough to poll.
  virtual Result<std::optional<CrlRecord>> load_crl_numbers(std::string_view issuing_point) = 0;
  // The lease: the epoch entry with the highest epoch (one entry per epoch, so that replication,
  // which resolves two writes of one entry by the later write, can never bring a lower epoch back
  // over a higher one), with the issuing point's pin and handover.
  virtual Result<CrlLease> read_crl_lease(std::string_view issuing_point) = 0;
  // Writes the lease when the highest epoch here is still `expected`'s (holder and epoch; conflict
  // otherwise): the same epoch renews (or gives back) that epoch's entry, only while it names its
  // holder; a higher epoch adds a new entry (conflict if it exists). An epoch never goes down and
  // changes holder only with a new epoch. A handover request that `expected` carried and `lease`
  // does not is withdrawn; the pin is left alone.
  virtual Status write_crl_lease(std::string_view issuing_point, const CrlLease& expected, const CrlLease& lease) = 0;
  // Sets (or clears, with "") the pin or the handover request of an issuing point's lease.
  enum class CrlRoleHint { pinned, handover };
  virtual Status set_crl_role_hint(std::string_view issuing_point, CrlRoleHint hint, std::string_view instance) = 0;
  // Stores a publication: the numbers on the issuing point entry first (compare-and-set: above the
  // stored ones, and the highest lease epoch is crl.epoch when that is set), then each CRL present in
  // crl.complete / crl.partitions in its own entry. CRLs absent from the record stay as stored.
  virtual Status save_crl(const CrlRecord& crl) = 0;
  // Group membership (agents): the member value names a certificate (see authority/agent_authenticator.hpp).
  virtual Result<bool> is_group_member(std::string_view group, std::string_view member) = 0;
  virtual Status add_group_member(std::string_view group, std::string_view member) = 0;
  // not_found when the value is not a member.
  virtual Status remove_group_member(std::string_view group, std::string_view member) = 0;
  virtual Result<std::vector<std::string>> group_members(std::string_view group) = 0;

  // Compare-and-set of a request's state: succeeds only if the stored state is `expected_state`
  // (conflict otherwise, not_found for no such request). Atomic on one directory server.
  virtual Status transition_request(std::string_view id_hex, std::string_view expected_state,
                                    const RequestTransition& transition) = 0;
  // Issues an approved request as one unit: adds the certificate and moves the request from
  // approved to complete with its serial (and, when `group` is set, adds `member` to it). When the
  // request is no longer approved the unit fails with conflict and the certificate is removed again.
  virtual void commit_approved_request(const RequestRecord& request, CertificateRecord certificate,
                                       std::optional<std::pair<std::string, std::string>> group_member,
                                       std::function<void(Status)> done) = 0;
  virtual Result<RequestPage> list_requests(const RequestQuery& query) = 0;

  // Join tokens. consume: unused -> used, recording the replica it registered (forbidden when used).
  virtual Status add_join_token(const JoinTokenRecord& token) = 0;
  virtual Result<JoinTokenRecord> find_join_token(std::string_view id) = 0;
  virtual Status consume_join_token(std::string_view id, int replica_id) = 0;

  // Enrollment codes. consume: unused -> used (conflict when already used); release undoes it.
  // Key archival: the request, certificate and archived key written as one unit.
  virtual void commit_enrollment_with_key(RequestRecord request, CertificateRecord certificate, KeyRecord key,
                                          std::function<void(Status)> done) = 0;
  virtual Result<KeyRecord> find_key_by_serial(std::string_view serial_hex) = 0;
  virtual Result<KeyRecord> find_key(std::string_view key_id) = 0;
  virtual Status add_recovery(const RecoveryRecord& recovery) = 0;
  virtual Result<RecoveryRecord> find_recovery(std::string_view id) = 0;
  virtual Result<std::vector<RecoveryRecord>> list_recoveries(std::string_view state) = 0;
  // One approval, as a compare-and-set on the approval count (`seen` approvals before this one):
  // conflict when another approval came first (re-read and try again) or when this approver has
  // approved already (the message says which). `complete`: the state moves pending -> approved.
  virtual Status approve_recovery(std::string_view id, std::string_view approver, int seen, bool complete) = 0;
  // pending|approved -> `to` as a compare-and-set on `from`; conflict when the state was not `from`.
  virtual Status transition_recovery(std::string_view id, std::string_view from, std::string_view to,
                                     std::string_view result) = 0;

  virtual Status add_enrollment_code(const EnrollmentCodeRecord& code) = 0;
  virtual Result<EnrollmentCodeRecord> find_enrollment_code(std::string_view id) = 0;
  virtual Status consume_enrollment_code(std::string_view id, std::string_view request_id_hex) = 0;
  virtual Status release_enrollment_code(std::string_view id) = 0;

  // The audit trail of an instance (authority/audit/audit_checkpoints.hpp). A checkpoint is added once
  // and never changed: conflict when its seq is not above the highest recorded for the instance
  // (the same seq with the same hash again is ok: a retry), so the highest never goes down. Only
  // the newest kAuditCheckpointsKept stay; older ones are deleted.
  [[nodiscard]] virtual Status record_audit_checkpoint(std::string_view instance,
                                                       const AuditCheckpoint& checkpoint) = 0;
  // Adds a cut to the instance's trail (kept for good: a cut is never healed).
  [[nodiscard]] virtual Status record_audit_cut(std::string_view instance, const AuditCut& cut) = 0;
  // Empty when the instance has recorded nothing.
  [[nodiscard]] virtual Result<AuditTrail> audit_trail(std::string_view instance) = 0;

  virtual Status put_profile(const ProfileRecord& profile, bool overwrite) = 0;
  virtual Result<std::vector<ProfileRecord>> list_profiles() = 0;
};

// Checkpoints kept per instance: enough to name where a log was cut within the last
// kAuditCheckpointsKept signatures (100 records or a minute each, by default).
inline constexpr std::size_t kAuditCheckpointsKept = 64;

// Serial/request number layout shared by every instance: counter in the high bits, replica ID in
// the low 16 bits. Two instances that hold the same counter range still produce different numbers.
constexpr int kReplicaBits = 16;
inline uint64_t compose_number(uint64_t counter, int replica_id) {
  return (counter << kReplicaBits) | static_cast<uint64_t>(replica_id);
}
inline uint64_t counter_of(uint64_t number) { return number >> kReplicaBits; }
inline int replica_of(uint64_t number) { return static_cast<int>(number & ((1u << kReplicaBits) - 1)); }

}  // namespace ca::store
