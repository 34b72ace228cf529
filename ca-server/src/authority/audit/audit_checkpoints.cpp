#include "authority/audit/audit_checkpoints.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "core/log.hpp"

namespace ca::authority {

namespace {
constexpr std::string_view kLog = "audit";

std::string short_hash(const std::string& hash) { return hash.substr(0, 16); }

std::string describe(const store::AuditCheckpoint& c) {
  return fmt::format("seq {} (hash {}..., signed {})", c.seq, short_hash(c.hash), store::to_iso8601(c.time));
}
}  // namespace

AuditCheckpointPublisher::AuditCheckpointPublisher(store::CaStore& store, std::string instance_id,
                                                   AuditCheckpointPublisherOptions options)
    : store_(store), instance_id_(std::move(instance_id)), options_(options) {
  thread_ = std::thread([this] { run(); });
}

AuditCheckpointPublisher::~AuditCheckpointPublisher() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
  if (!queue_.empty())
    log::warn(kLog,
              "{} audit checkpoint(s) not written to the directory (it was not reachable); the file is ahead "
              "of the directory until the next signature is written",
              queue_.size());
}

void AuditCheckpointPublisher::checkpoint_signed(const store::AuditCheckpoint& checkpoint) {
  enqueue({checkpoint, std::nullopt});
}

void AuditCheckpointPublisher::cut_found(const store::AuditCut& cut) { enqueue({std::nullopt, cut}); }

void AuditCheckpointPublisher::enqueue(Item item) {
  std::lock_guard lock(mutex_);
  queue_.push_back(std::move(item));
  // While the directory is away, only the newest checkpoints matter (it keeps no more); cuts stay.
  std::size_t checkpoints = 0;
  for (const auto& i : queue_) checkpoints += i.checkpoint ? 1 : 0;
  for (auto it = queue_.begin(); checkpoints > store::kAuditCheckpointsKept && it != queue_.end();) {
    if (it->checkpoint && !(busy_ && it == queue_.begin())) {
      it = queue_.erase(it);
      --checkpoints;
    } else {
      ++it;
    }
  }
  wake_.notify_one();
}

std::size_t AuditCheckpointPublisher::waiting() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

bool AuditCheckpointPublisher::drain(std::chrono::milliseconds limit) {
  std::unique_lock lock(mutex_);
  wake_.notify_one();
  return idle_.wait_for(lock, limit, [this] { return queue_.empty(); });
}

Status AuditCheckpointPublisher::write(const Item& item) {
  if (item.checkpoint) return store_.record_audit_checkpoint(instance_id_, *item.checkpoint);
  return store_.record_audit_cut(instance_id_, *item.cut);
}

void AuditCheckpointPublisher::run() {
  std::unique_lock lock(mutex_);
  bool failing = false;
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    Item item = queue_.front();
    busy_ = true;
    lock.unlock();
    Status written = write(item);
    lock.lock();
    busy_ = false;
    if (written || written.error().is(ErrorCode::conflict)) {
      if (!written)
        log::error(kLog, "the directory refused audit checkpoint {}: {}",
                   item.checkpoint ? std::to_string(item.checkpoint->seq) : std::string("(cut)"),
                   written.error().message);
      else if (failing)
        log::info(kLog, "audit checkpoints reach the directory again");
      failing = false;
      queue_.pop_front();
      if (queue_.empty()) idle_.notify_all();
      continue;
    }
    if (!failing)
      log::warn(kLog,
                "cannot write audit checkpoints to the directory ({}); retrying every {} ms, the file is ahead "
                "of the directory meanwhile",
                written.error().message, options_.retry_interval.count());
    failing = true;
    wake_.wait_for(lock, options_.retry_interval, [this] { return stopping_; });
  }
}

std::set<uint64_t> checkpointed_seqs(const store::AuditTrail& trail) {
  std::set<uint64_t> seqs;
  for (const auto& c : trail.checkpoints) seqs.insert(c.seq);
  return seqs;
}

AuditTrailComparison compare_audit_trail(uint64_t file_last_seq, uint64_t file_last_signed_seq,
                                         const std::map<uint64_t, std::string>& hashes,
                                         const store::AuditTrail& trail) {
  AuditTrailComparison out;
  if (const auto* highest = trail.highest()) out.highest_checkpoint = highest->seq;
  uint64_t last_matched = 0;
  for (const auto& c : trail.checkpoints) {
    if (c.seq > file_last_seq) {
      const auto& highest = *trail.highest();
      AuditTrailFinding f{AuditTrailFinding::Kind::missing_tail, file_last_seq + 1, highest, {}};
      f.text = fmt::format(
          "missing tail: {} but the directory has checkpoint {}: records {}..{} at least are gone "
          "(first missing seq {})",
          file_last_seq == 0 ? std::string("the file holds no records")
                             : fmt::format("the file ends at seq {}", file_last_seq),
          describe(highest), file_last_seq + 1, highest.seq, file_last_seq + 1);
      out.findings.push_back(std::move(f));
      break;
    }
    const auto hash = hashes.find(c.seq);
    if (hash == hashes.end() || hash->second != c.hash) {
      AuditTrailFinding f{AuditTrailFinding::Kind::diverged, last_matched + 1, c, {}};
      f.text = fmt::format(
          "cut and continued: record {} in the file is not the one checkpointed as {}: the file's "
          "chain leaves the checkpointed one after seq {} (first missing seq {} at the earliest)",
          c.seq, describe(c), last_matched, last_matched + 1);
      out.findings.push_back(std::move(f));
      break;
    }
    last_matched = c.seq;
    ++out.checkpoints_matched;
  }
  for (const auto& cut : trail.cuts) {
    AuditTrailFinding f{AuditTrailFinding::Kind::recorded_cut, cut.first_missing_seq, cut.expected, {}};
    f.text = fmt::format("cut recorded by the instance on {}: first missing seq {}{}", store::to_iso8601(cut.found),
                         cut.first_missing_seq,
                         cut.expected.seq ? fmt::format(" (expected checkpoint seq {}, hash {}...)", cut.expected.seq,
                                                        short_hash(cut.expected.hash))
                                          : "");
    out.findings.push_back(std::move(f));
  }
  if (file_last_signed_seq > out.highest_checkpoint && out.findings.empty())
    out.signed_beyond_checkpoints = file_last_signed_seq;
  return out;
}

std::optional<store::AuditCut> check_audit_trail_at_start(AuditLog& log, store::CaStore& store) {
  auto trail = store.audit_trail(log.instance_id());
  if (!trail) {
    log::warn(kLog,
              "cannot read this instance's audit checkpoints from the directory ({}): the audit log is not "
              "compared with them at this start",
              trail.error().message);
    return std::nullopt;
  }
  if (trail->checkpoints.empty()) return std::nullopt;
  log.flush();
  auto chain = read_audit_chain_hashes(log.file(), checkpointed_seqs(*trail));
  if (!chain) {
    log::error(kLog, "cannot read {} to compare it with the directory's checkpoints: {}", log.file().string(),
               chain.error().message);
    return std::nullopt;
  }
  const auto comparison = compare_audit_trail(chain->last_seq, 0, chain->hashes, *trail);
  const auto found = std::find_if(comparison.findings.begin(), comparison.findings.end(),
                                  [](const auto& f) { return f.kind != AuditTrailFinding::Kind::recorded_cut; });
  if (found == comparison.findings.end()) return std::nullopt;
  // Reported at an earlier start already: the checkpoints up to the one that cut named are of the
  // chain that was cut (every checkpoint above it was added after), so they differ for good.
  for (const auto& cut : trail->cuts)
    if (found->expected.seq <= cut.expected.seq) return std::nullopt;
  store::AuditCut cut{found->first_missing_seq, found->expected, std::chrono::system_clock::now()};
  log::error(kLog, "THE AUDIT LOG WAS CUT: {} ({}); recorded as {} in the log and in the directory",
             log.file().string(), found->text, kAuditCutEvent);
  log.record(kAuditCutEvent, "ca-server (start)",
             fmt::format("the audit log was cut: first missing seq {}; the directory's checkpoint seq {} (hash {}) "
                         "is not in the file",
                         cut.first_missing_seq, cut.expected.seq, cut.expected.hash),
             fmt::format("{}; the chain goes on after seq {}, the cut stays reported", found->text, chain->last_seq));
  if (Status st = store.record_audit_cut(log.instance_id(), cut); !st)
    log::error(kLog, "cannot record the audit log cut in the directory: {}", st.error().message);
  return cut;
}

}  // namespace ca::authority
