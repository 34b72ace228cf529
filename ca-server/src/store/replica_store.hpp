#pragma once
// Ranges, the registry of instances (replicas) and the join tokens that register them.

#include "core/error.hpp"
#include "store/records.hpp"

namespace ca::store {

class ReplicaStore {
 public:
  virtual ~ReplicaStore() = default;

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

  // Join tokens. consume: unused -> used, recording the replica it registered (forbidden when used).
  virtual Status add_join_token(const JoinTokenRecord& token) = 0;
  virtual Result<JoinTokenRecord> find_join_token(std::string_view id) = 0;
  virtual Status consume_join_token(std::string_view id, int replica_id) = 0;
};

// Serial/request number layout shared by every instance: counter in the high bits, replica ID in
// the low 16 bits. Two instances that hold the same counter range still produce different numbers.
constexpr int kReplicaBits = 16;
inline uint64_t compose_number(uint64_t counter, int replica_id) {
  return (counter << kReplicaBits) | static_cast<uint64_t>(replica_id);
}
inline uint64_t counter_of(uint64_t number) { return number >> kReplicaBits; }
inline int replica_of(uint64_t number) { return static_cast<int>(number & ((1u << kReplicaBits) - 1)); }

}  // namespace ca::store
