#pragma once
// The audit trail of security events (enrollments issued and rejected, agent decisions,
// revocations, clone registration, key archival and recovery ...): one JSON object per line in
// <instance>/logs/audit.log (mode 0600), echoed to the service log, hash-chained and signed so that
// removing, altering or reordering a record shows (`ca-server audit verify`, docs/observability.md):
//
//   {"seq":7,"prev":"<64 hex>","time":"2026-12-01T10:00:00.123Z","instance":"ca1",
//    "event":"certificate_issued","who":"...","what":"...","outcome":"..."}
//
// - seq counts 1, 2, 3 ... and goes on across restarts (the last line is read back first);
//   a file found shorter than this process left it (cut, or replaced) gets an audit_log_cut
//   record naming the first missing seq before the chain goes on;
// - prev is the SHA-256 (hex) of the exact bytes of the line before, newline excluded; 64 zeros on
//   the first line;
// - every `records_per_signature` records, at least every `signature_interval` while anything is
//   unsigned, and when the log is closed, a record {"event":"log_signature","signed_seq":N,
//   "signature":"<base64>"} follows: the audit signing key's signature (through its
//   crypto::Issuer: EVP_DigestSign, the key's default digest) over the 32 bytes of its own
//   prev, the hash of record N. It is in the chain too.
//
// Each signature is a checkpoint (seq signed, hash signed, time) handed, once on disk, to the
// AuditCheckpointSink (authority/audit/audit_checkpoints.hpp keeps them in the replicated directory, so
// that a file cut back to an earlier signed point shows).
//
// Records are written by one thread of the log, in batches (many records, one fdatasync), under an
// exclusive flock of the file: `ca-server agent` run next to a server appends to the same chain.
// Recording never fails the operation recorded: a write error is logged loudly instead.
#include <sys/stat.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/config.hpp"
#include "core/error.hpp"
#include "core/openssl_owners.hpp"
#include "crypto/issuer.hpp"
#include "store/records.hpp"

namespace ca::authority {

struct AuditSigningOptions {
  std::size_t records_per_signature = 100;
  std::chrono::milliseconds interval{60000};  // a signature at most this long after an unsigned record
};

// Told by the log's writer thread about each signature once it is on disk, and about a cut the
// writer found. Must return at once (it must not wait for a directory).
class AuditCheckpointSink {
 public:
  virtual ~AuditCheckpointSink() = default;
  virtual void checkpoint_signed(const store::AuditCheckpoint& checkpoint) = 0;
  virtual void cut_found(const store::AuditCut& cut) = 0;
};

inline constexpr std::string_view kAuditCutEvent = "audit_log_cut";

class AuditLog {
 public:
  // Chained but not signed (an instance without an audit signing key, tests).
  AuditLog(std::filesystem::path file, std::string instance_id);
  // Signed by `signer`: the audit signing certificate and its key.
  AuditLog(std::filesystem::path file, std::string instance_id, crypto::Issuer signer,
           AuditSigningOptions options = {});
  // Signs what is unsigned and writes everything recorded.
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Longer who / what / outcome fields are cut (with "…"): whatever a caller managed to put in
  // them, one record stays small. Callers cut caller input shorter still (core/caller_text.hpp).
  static constexpr std::size_t kMaxFieldBytes = 2048;

  // On disk (written and fdatasync'ed, or failed loudly) when it returns.
  void record(std::string_view event, std::string_view who, std::string_view what, std::string_view outcome);
  // Returns at once; `then` runs on the log's thread once the record is on disk (or its write
  // failed). For callers on a thread that must not wait for the disk (a store writer's callback):
  // the operation is still answered only after its record is durable.
  void record_then(std::string_view event, std::string_view who, std::string_view what, std::string_view outcome,
                   std::function<void()> then);
  // Waits until everything recorded so far is on disk and its `then` has run.
  void flush();
  // Appends a log_signature record now if anything is unsigned, and waits for it.
  void sign_now();

  // Signatures written from now on go to `sink` too (nullptr: to nobody). The sink must outlive
  // the log or be detached first.
  void set_checkpoint_sink(AuditCheckpointSink* sink);

  const std::filesystem::path& file() const { return file_; }
  const std::string& instance_id() const { return instance_id_; }
  bool signing() const { return signer_.has_value(); }

 private:
  struct Entry {
    std::chrono::system_clock::time_point time;
    std::string event, who, what, outcome;
    std::function<void()> then;
  };

  AuditLog(std::filesystem::path file, std::string instance_id, std::optional<crypto::Issuer> signer,
           AuditSigningOptions options);
  uint64_t enqueue(Entry entry);
  void wait_written(uint64_t ticket);
  void writer_loop();
  // Appends the batch (and a signature when `sign` or when due) under the file lock.
  void append(std::vector<Entry>& batch, bool sign);
  void add_record(std::string& text, const Entry& entry);
  void add_signature(std::string& text, std::vector<store::AuditCheckpoint>& signed_here);
  // Reads the head again when the file is not as this process left it (another writer, a cut);
  // the cut, when the file lost records this process wrote (an audit_log_cut record is in `text`).
  std::optional<store::AuditCut> catch_up_with_file(int fd, const struct stat& st, std::string& text);
  // Re-reads seq and hash of the last line (the file is new to us, or another process wrote).
  void load_head(int fd, std::uintmax_t size);
  void chain_line(std::string& out, const std::string& body);
  std::string record_body(const Entry& entry) const;
  Result<std::string> signature_record(std::chrono::system_clock::time_point now);

  const std::filesystem::path file_;
  const std::string instance_id_;
  const std::optional<crypto::Issuer> signer_;
  const AuditSigningOptions options_;

  std::mutex mutex_;
  std::condition_variable wake_;     // the writer: work or stop
  std::condition_variable written_;  // the waiters: written_count_ moved
  std::vector<Entry> queue_;
  uint64_t queued_count_ = 0;
  uint64_t written_count_ = 0;
  uint64_t sign_requests_ = 0;  // sign_now() tickets asked for / served
  uint64_t signs_done_ = 0;
  bool stopping_ = false;
  std::mutex sink_mutex_;  // held while the writer tells the sink: detaching waits for it
  AuditCheckpointSink* sink_ = nullptr;

  // The writer thread's own state: the chain as it knows it.
  uint64_t seq_ = 0;
  std::string prev_hex_;
  std::vector<unsigned char> prev_hash_;
  std::intmax_t known_size_ = -1;  // the file's size after our last write; -1: read the head again
  std::uintmax_t known_inode_ = 0;
  std::size_t unsigned_ = 0;
  std::chrono::steady_clock::time_point oldest_unsigned_{};
  store::AuditCheckpoint last_signed_;  // the newest signature this process wrote

  std::thread::id writer_id_;
  std::thread writer_;
};

// The log of an instance: <dir>/logs/audit.log, signed with the audit signing key when the instance
// has one (private/audit_signing.key; instances made before it have none: chained only, warned).
[[nodiscard]] Result<std::unique_ptr<AuditLog>> open_instance_audit_log(const InstanceConfig& config,
                                                                        AuditSigningOptions options = {});

// What `ca-server audit verify` found.
struct AuditVerification {
  std::size_t records = 0;     // lines checked, signature records included
  std::size_t signatures = 0;  // log_signature records that verified
  uint64_t first_seq = 0, last_seq = 0;
  std::size_t unsigned_tail = 0;           // records after the last signature: unverified
  uint64_t last_signed_seq = 0;            // the seq the last verified signature signed
  std::map<uint64_t, std::string> hashes;  // of the records asked for (hashes_wanted), as hex
  std::vector<std::string> cuts;           // audit_log_cut records in the file: "record 51: <what>"
  std::string problem;                     // the first problem found, "record 57: ..."; empty: intact
  bool intact() const { return problem.empty(); }
};

// Checks seq continuity, every prev hash and every signature (with audit_cert's key), and that
// audit_cert is signed by ca_cert. Stops at the first problem. Fails (io) only when the file
// cannot be read.
[[nodiscard]] Result<AuditVerification> verify_audit_log(const std::filesystem::path& file, X509* audit_cert,
                                                         X509* ca_cert, const std::set<uint64_t>& hashes_wanted = {});

// The chain of a file as the writer sees it, without checking it: the last seq and the hashes of
// the records asked for. For the comparison with the directory at start.
struct AuditChainHashes {
  uint64_t last_seq = 0;
  std::map<uint64_t, std::string> hashes;
};
[[nodiscard]] Result<AuditChainHashes> read_audit_chain_hashes(const std::filesystem::path& file,
                                                               const std::set<uint64_t>& hashes_wanted);

}  // namespace ca::authority
