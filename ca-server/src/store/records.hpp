#pragma once
// What the CA keeps in the directory, as plain values. The LDAP mapping lives in ldap_ca_store.cpp.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ca::store {

using TimePoint = std::chrono::system_clock::time_point;

enum class RangeKind { serial, request, replica };
std::string_view range_kind_name(RangeKind kind);

// An inclusive range of counter values [begin, end].
struct NumberRange {
  uint64_t begin = 0;
  uint64_t end = 0;
  uint64_t size() const { return end - begin + 1; }
  bool contains(uint64_t v) const { return v >= begin && v <= end; }
  bool operator==(const NumberRange&) const = default;
};
std::string format_range(const NumberRange& r);
std::optional<NumberRange> parse_range(std::string_view text);

struct CertificateRecord {
  std::string serial_hex;  // canonical: lowercase, no leading zeros
  std::string status = "VALID";
  std::string subject_dn;
  std::string issuer_dn;
  TimePoint not_before{};
  TimePoint not_after{};
  TimePoint issued_at{};
  std::string profile_id;
  std::string request_id_hex;
  int replica_id = 0;
  std::string issued_by;  // instance id
  std::vector<uint8_t> der;
  // Revocation.
  std::optional<TimePoint> revoked_on;
  int revocation_reason = 0;
  std::string revoked_by;
  std::optional<TimePoint> invalidity_date;
  TimePoint modified_at{};  // last change (revocation, release from hold); read, never written from here
};

struct RequestRecord {
  std::string id_hex;
  std::string type = "enrollment";
  std::string state = "complete";  // pending, complete, rejected, canceled
  std::string profile_id;
  std::vector<uint8_t> csr_der;
  std::string serial_hex;  // the certificate issued for it
  std::string subject_dn;
  TimePoint created_at{};
  TimePoint modified_at{};
  std::string result;
  int replica_id = 0;  // the instance that received it; only that instance issues it once approved
  std::string instance_id;
  std::string secret_hash;       // salted hash of the requester's per-request secret
  std::string requester;         // how the requester was authenticated ("anonymous", "enrollment code ...", ...)
  std::string approved_by;       // the agent who approved or rejected it
  std::string approval_changes;  // JSON: what the approving agent changed (validity_days, SANs)
};

// A request's move from one state to the next (see CaStore::transition_request).
struct RequestTransition {
  std::string state;             // the new state
  std::string approved_by;       // set when not empty
  std::string approval_changes;  // set when not empty
  std::string result;            // set when not empty
};

struct RequestQuery {
  std::string state;       // pending, approved, complete, rejected; or empty
  int replica_id = 0;      // only requests received by this instance; 0 = any
  std::string subject_dn;  // exactly this subject (as stored); or empty
  std::string profile_id;  // or empty
  std::size_t start = 0;
  std::size_t size = 20;  // page size, at most 1000
};

struct RequestPage {
  std::vector<RequestRecord> entries;
  std::size_t total = 0;
  bool truncated = false;  // more matched than the search limit; total is a lower bound
};

// An archived private key (ou=keyRepository,ou=kra): sealed (crypto/key_archive.hpp), never in clear.
struct KeyRecord {
  std::string key_id;           // random hex; the entry's cn
  std::vector<uint8_t> sealed;  // crypto::encode_sealed_key
  std::string owner;            // subject DN of the certificate
  std::string serial_hex;       // the certificate of the key
  std::string algorithm;        // "EC", "RSA", ...
  int size_bits = 0;
  std::string state = "active";
  std::string request_id_hex;  // the enrollment that archived it
  std::string archived_by;     // how: "server-side key generation on <instance>", "client envelope ..."
  TimePoint created_at{};
};

// An agent's request to recover an archived key: pending until enough distinct agents approve it
// (each approval a compare-and-set), then retrieved once by the agent who asked.
struct RecoveryRecord {
  std::string id;                 // random hex; the entry's cn
  std::string state = "pending";  // pending, approved, retrieved, rejected
  std::string key_id;
  std::string serial_hex;
  std::string requester;               // member value of the requesting agent's certificate
  std::string requester_name;          // its subject, for people
  std::vector<std::string> approvers;  // member values of the approving agents
  int approvals_required = 1;
  int approval_count = 0;
  std::string result;
  std::string instance_id;  // where it was asked for
  TimePoint created_at{};
  TimePoint modified_at{};
};

// A one-time enrollment code: created by an agent, consumed by the first enrollment presenting it.
struct EnrollmentCodeRecord {
  std::string id;  // public part of the code
  std::string profile_id;
  std::string secret_hash;                 // salted hash of the secret part
  std::string state = "unused";            // unused, used
  std::string subject_dn;                  // allowed subject (RFC 4514), empty = any the profile allows
  std::vector<std::string> allowed_names;  // "dns:NAME", "ip:ADDRESS", "email:ADDRESS"; empty = any
  TimePoint expires_at{};
  TimePoint created_at{};
  std::string created_by;       // agent
  std::string used_by_request;  // request id (hex) that consumed it
};

// The entry of one CA instance (cn=replica-<id>,ou=replica,<suffix>): its replica ID and the
// counter ranges it holds. `*_next` is a checkpoint: no number below it is free any more.
struct ReplicaRecord {
  int replica_id = 0;
  std::string instance_id;
  std::string url;
  std::optional<NumberRange> serial_current, serial_standby;
  uint64_t serial_next = 0;
  uint64_t serial_high_water = 0;
  std::optional<NumberRange> request_current, request_standby;
  uint64_t request_next = 0;
  uint64_t request_high_water = 0;
  bool retired = false;
  TimePoint heartbeat{};  // last save by the instance (read only)
  // The instance's own certificates (serials, hex). Written only when set: an instance saving its
  // counters never clears what the master recorded about it.
  std::string subsystem_serial;       // its subsystem certificate: the identity it calls other instances with
  std::string server_cert_serial;     // its TLS server certificate
  std::string directory_cert_serial;  // the TLS certificate of its directory
  std::string directory_url;          // ldaps://host:port/ its directory listens on for the others (read only here)
};

// A one-time credential that lets a new clone register (made by `ca-clone prepare`).
struct JoinTokenRecord {
  std::string id;
  std::string secret_hash;
  std::string state = "unused";  // unused, used
  std::string instance_id;       // the clone it is for; empty = any
  TimePoint expires_at{};
  TimePoint created_at{};
  std::string created_by;
  int replica_id = 0;  // the replica registered with it
};

// RFC 5280 CRLReason codes (7 is unused).
enum class RevocationReason {
  unspecified = 0,
  key_compromise = 1,
  ca_compromise = 2,
  affiliation_changed = 3,
  superseded = 4,
  cessation_of_operation = 5,
  certificate_hold = 6,
  remove_from_crl = 8,
  privilege_withdrawn = 9,
  aa_compromise = 10
};

struct Revocation {
  std::string serial_hex;
  TimePoint revoked_on{};
  int reason = 0;
  std::optional<TimePoint> invalidity_date;
  std::string revoked_by;
};

// A revocation as the CRL and OCSP need it; `revoked == false` means it was taken back (unrevoked).
struct RevocationChange {
  std::string serial_hex;
  bool revoked = true;
  TimePoint revoked_on{};
  int reason = 0;
  std::optional<TimePoint> invalidity_date;
  TimePoint modified_at{};
};

// One stored CRL (full or delta) of one scope: the complete CRL or a partition. Stored in an entry
// of its own under the issuing point (cn=full / cn=delta, cn=full-K / cn=delta-K), so that writing a
// delta never rewrites (nor re-replicates) the full CRL.
struct StoredCrl {
  uint64_t number = 0;
  uint64_t base = 0;  // delta CRLs: the number of the full CRL it completes; 0 = a full CRL
  TimePoint this_update{}, next_update{};
  // Every instance serves this CRL from then on, not before (millisecond precision): relying
  // parties behind a balancer see all instances switch together. Epoch = at once.
  std::chrono::system_clock::time_point serve_from{};
  std::vector<uint8_t> der;
};

// The CRLs of one scope as published together: the full CRL (absent when a publication carried
// only a new delta) and the delta CRL.
struct CrlScope {
  std::optional<StoredCrl> full;
  std::optional<StoredCrl> delta;
};

// An issuing point: its numbers (on the issuing point entry itself, small, what followers and
// peers poll) and, when loaded or saved, its CRLs.
struct CrlRecord {
  std::string issuing_point = "MasterCRL";
  uint64_t crl_number = 0;                             // of the latest full CRL
  uint64_t delta_number = 0;                           // of the latest delta CRL (0 = none)
  TimePoint this_update{}, next_update{};              // of the latest publication
  std::chrono::system_clock::time_point serve_from{};  // of the latest publication
  // save_crl: the lease epoch of the publishing master; the write is refused when the issuing
  // point's lease carries another (a deposed master writes nothing). 0 = not checked.
  uint64_t epoch = 0;
  uint64_t partition_count = 0;  // as stored: partitions published besides the complete CRL
  // The highest number in any of the issuing point's entries. Above crl_number / delta_number when
  // replication's last-writer-wins (per entry) mixed two masters' writes after a partition healed:
  // the CRL entries of one, the issuing point entry of the other.
  uint64_t newest_stored = 0;
  CrlScope complete;
  // Partition k of the revoked entries (crl.partitions), published with the same numbers.
  std::vector<CrlScope> partitions;
};

// Who generates the CRLs of an issuing point, and until when (the CRL master's lease).
struct CrlLease {
  std::string holder;  // instance ID; empty = nobody
  TimePoint expires{};
  // Strictly increases with every takeover: (generation << 12) | replica ID of the taker, so two
  // instances that take over at once on the two sides of a partition still differ.
  uint64_t epoch = 0;
  std::string pinned;    // the role is pinned to this instance ("" = any eligible instance)
  std::string handover;  // the holder is asked to hand the lease to this instance ("" = no)
  bool operator==(const CrlLease&) const = default;
};

struct ProfileRecord {
  std::string id;
  std::string definition_yaml;
  bool enabled = true;
};

struct CertificateQuery {
  std::string status;      // VALID / REVOKED / ... or empty
  std::string profile_id;  // or empty
  std::string subject_contains;
  std::string issued_by;
  std::size_t start = 0;
  std::size_t size = 20;  // page size, at most 1000
};

struct CertificatePage {
  std::vector<CertificateRecord> entries;
  std::size_t total = 0;
  bool truncated = false;  // more matched than the search limit; total is a lower bound
};

// Searches behind public endpoints read at most this many keys: a listing cannot make the
// directory (or the server's memory) do unbounded work.
inline constexpr int kListingSearchLimit = 10000;

// A signed point of an instance's audit log (authority/audit/audit_log.hpp): record `seq` was signed by a
// log_signature record, over `hash` (the SHA-256 of that record's line, lowercase hex).
struct AuditCheckpoint {
  uint64_t seq = 0;
  std::string hash;
  TimePoint time{};
  bool operator==(const AuditCheckpoint&) const = default;
};

// A cut found in an instance's audit log by the instance itself at start: the file ended, or its
// chain went another way, before `expected` (a checkpoint of the directory); the first record of
// the original chain the file no longer holds is `first_missing_seq`.
struct AuditCut {
  uint64_t first_missing_seq = 0;
  AuditCheckpoint expected;
  TimePoint found{};
  bool operator==(const AuditCut&) const = default;
};

// What the directory holds about one instance's audit log: its newest checkpoints (ascending
// seq; the last is the highest ever recorded) and every cut it reported.
struct AuditTrail {
  std::vector<AuditCheckpoint> checkpoints;
  std::vector<AuditCut> cuts;
  const AuditCheckpoint* highest() const { return checkpoints.empty() ? nullptr : &checkpoints.back(); }
};

// Serial and request numbers are stored as 40 lowercase hex digits so that the directory orders
// them numerically with a plain string ordering rule.
std::string fixed_width_hex(std::string_view hex);
std::string fixed_width_hex(uint64_t value);
std::string canonical_hex(std::string_view hex);  // strips leading zeros, lowercases

std::string to_generalized_time(TimePoint t);
// 2026-11-30T17:30:01Z: a time for people and JSON (whole seconds, UTC).
std::string to_iso8601(TimePoint t);
std::optional<TimePoint> from_generalized_time(std::string_view text);

// Certificate serial numbers (ranges mode): the number (ca_store.hpp: compose_number), then 64
// bits from the CSPRNG:
// serial = (counter << 16 | replica_id) << 64 | random. Unique by construction (no two
// instances ever hold the same counter/replica pair, docs/ranges.md), unpredictable (64 random
// bits, the CA/Browser Forum minimum), positive and at most 16 octets (20 allowed by RFC 5280).
// The number stays in the high bits, so the directory still finds an instance's serials in a
// counter range with an ordering search.
constexpr int kSerialRandomBits = 64;
std::string compose_serial_hex(uint64_t number, uint64_t random_bits);
// The number of a serial made by compose_serial_hex; nullopt for a serial of another layout.
std::optional<uint64_t> number_of_serial(std::string_view serial_hex);
// Fixed-width hex bound of all serials of `number` (lowest when !upper, highest when upper).
std::string serial_search_bound(uint64_t number, bool upper);

}  // namespace ca::store
