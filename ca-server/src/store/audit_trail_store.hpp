#pragma once
// The audit trail of every instance: checkpoints of its log and the cuts found in it.

#include "core/error.hpp"
#include "store/records.hpp"

namespace ca::store {

class AuditTrailStore {
 public:
  virtual ~AuditTrailStore() = default;

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
};

// Checkpoints kept per instance: enough to name where a log was cut within the last
// kAuditCheckpointsKept signatures (100 records or a minute each, by default).
inline constexpr std::size_t kAuditCheckpointsKept = 64;

}  // namespace ca::store
