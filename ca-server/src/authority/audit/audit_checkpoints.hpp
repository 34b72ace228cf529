#pragma once
// The audit log's checkpoints outside the file: every signature of an instance's audit log
// (seq signed, hash signed, time) is kept in the replicated directory too (CaStore's audit trail),
// so that a file cut back to an earlier signed point, emptied, or cut and continued does not
// verify as intact. The directory keeps the highest checkpoint (it never goes down), the newest
// store::kAuditCheckpointsKept, and every cut an instance found in its own log.
//
// - AuditCheckpointPublisher takes the checkpoints from the log's writer thread without waiting
//   and writes them on a thread of its own, retrying while the directory is down: the audited
//   operation never waits for or fails on the directory. A checkpoint is then late, and a verify
//   in between sees the file ahead of the directory (not a finding).
// - compare_audit_trail: what the file holds against what the directory holds.
// - check_audit_trail_at_start: the server's own comparison when it starts; a cut found is
//   logged, recorded in the file (audit_log_cut) and in the directory, and reported by every
//   verify after (the record does not heal the cut). The chain goes on after the file's last record.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "authority/audit/audit_log.hpp"
#include "core/error.hpp"
#include "store/ca_store.hpp"

namespace ca::authority {

struct AuditCheckpointPublisherOptions {
  std::chrono::milliseconds retry_interval{5000};  // after a write the directory did not take
};

class AuditCheckpointPublisher final : public AuditCheckpointSink {
 public:
  AuditCheckpointPublisher(store::CaStore& store, std::string instance_id,
                           AuditCheckpointPublisherOptions options = {});
  // Stops; what is still waiting for the directory is dropped (logged).
  ~AuditCheckpointPublisher() override;
  AuditCheckpointPublisher(const AuditCheckpointPublisher&) = delete;
  AuditCheckpointPublisher& operator=(const AuditCheckpointPublisher&) = delete;

  void checkpoint_signed(const store::AuditCheckpoint& checkpoint) override;
  void cut_found(const store::AuditCut& cut) override;

  // Waits up to `limit` until everything handed over was written (or refused by the directory).
  // True when nothing is left waiting.
  [[nodiscard]] bool drain(std::chrono::milliseconds limit);
  std::size_t waiting() const;

 private:
  struct Item {
    std::optional<store::AuditCheckpoint> checkpoint;
    std::optional<store::AuditCut> cut;
  };
  void run();
  [[nodiscard]] Status write(const Item& item);
  void enqueue(Item item);

  store::CaStore& store_;
  const std::string instance_id_;
  const AuditCheckpointPublisherOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable idle_;
  std::deque<Item> queue_;
  bool busy_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

// Attaches a publisher to a log for its lifetime (declare it after both: it detaches first).
class AuditCheckpointAttachment {
 public:
  AuditCheckpointAttachment(AuditLog& log, AuditCheckpointSink& sink) : log_(log) { log_.set_checkpoint_sink(&sink); }
  ~AuditCheckpointAttachment() { log_.set_checkpoint_sink(nullptr); }
  AuditCheckpointAttachment(const AuditCheckpointAttachment&) = delete;
  AuditCheckpointAttachment& operator=(const AuditCheckpointAttachment&) = delete;

 private:
  AuditLog& log_;
};

struct AuditTrailFinding {
  enum class Kind {
    missing_tail,  // the file ends before a checkpoint (truncated, emptied)
    diverged,      // a checkpointed seq has another hash in the file (cut, then continued)
    recorded_cut,  // a cut the instance found and recorded in the directory
  };
  Kind kind = Kind::missing_tail;
  // The first record of the checkpointed chain the file does not hold (diverged: the earliest it
  // can be, the one after the last checkpoint that matches).
  uint64_t first_missing_seq = 0;
  store::AuditCheckpoint expected;  // the directory's checkpoint the file lacks
  std::string text;                 // one line for people
};

struct AuditTrailComparison {
  std::vector<AuditTrailFinding> findings;  // empty: the file holds every checkpoint
  std::size_t checkpoints_matched = 0;
  uint64_t highest_checkpoint = 0;  // 0: the directory has none
  // The file has signed records past the highest checkpoint: not yet in the directory (its
  // writes are asynchronous and retried), not a finding.
  uint64_t signed_beyond_checkpoints = 0;
  bool matches() const { return findings.empty(); }
};

// The seqs whose hashes compare_audit_trail needs.
std::set<uint64_t> checkpointed_seqs(const store::AuditTrail& trail);
// `hashes`: the file's record hashes at (at least) checkpointed_seqs(trail).
[[nodiscard]] AuditTrailComparison compare_audit_trail(uint64_t file_last_seq, uint64_t file_last_signed_seq,
                                                       const std::map<uint64_t, std::string>& hashes,
                                                       const store::AuditTrail& trail);

// At start, before anything is recorded: compares the instance's log with its checkpoints. A cut
// not yet recorded is logged, recorded in the file (audit_log_cut) and in the directory, and
// returned. A directory that cannot be read skips the check (logged): it must not stop the CA.
std::optional<store::AuditCut> check_audit_trail_at_start(AuditLog& log, store::CaStore& store);

}  // namespace ca::authority
