#pragma once
// Hands out serial or request counters from ranges claimed in the directory (Dogtag's model):
// a current range, a standby range claimed in the background once fewer than `low_water` numbers
// remain, and a high-water mark so that this instance never takes a range at or below one it
// already used, even when a replicated counter goes backwards.
//
// A number is compose_number(counter, replica_id): the replica ID in the low bits makes numbers of
// different instances distinct even if they were handed the same range (see docs/ranges.md).
#include <atomic>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "store/ca_store.hpp"

namespace ca::authority {

struct RangeState {
  std::optional<store::NumberRange> current, standby;
  uint64_t next = 0;        // next counter to hand out
  uint64_t high_water = 0;  // highest counter of any range this instance claimed
};

class RangeAllocator {
 public:
  RangeAllocator(store::CaStore& store, store::RangeKind kind, int replica_id, std::string instance_id,
                 uint64_t range_size, uint64_t low_water);
  ~RangeAllocator();

  // Restores the state saved in the replica entry, then skips every counter that the directory
  // shows as used after the last checkpoint (writes that landed after it).
  Status restore(const RangeState& saved);
  // Called (under no lock of ours) whenever ranges change, to persist them in the replica entry.
  void on_change(std::function<Status()> persist) { persist_ = std::move(persist); }

  // The next counter; claims a range synchronously only if no standby is ready.
  Result<uint64_t> next();
  // Next number (counter composed with the replica ID).
  Result<uint64_t> next_number();
  RangeState state() const;
  uint64_t checkpoint() const;  // every counter below it is used or abandoned
  // Blocks until a background claim (if any) has finished. For tests and shutdown.
  void wait_idle();

 private:
  Result<store::NumberRange> claim();
  void maybe_claim_standby_locked();

  store::CaStore& store_;
  store::RangeKind kind_;
  int replica_id_;
  std::string instance_id_;
  uint64_t range_size_;
  uint64_t low_water_;
  std::function<Status()> persist_;

  mutable std::mutex mutex_;
  std::mutex claim_mutex_;  // one claim at a time
  RangeState state_;
  bool claiming_ = false;
  std::thread claimer_;
};

}  // namespace ca::authority
