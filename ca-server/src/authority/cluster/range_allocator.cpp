#include "authority/cluster/range_allocator.hpp"

#include <fmt/format.h>

#include "core/log.hpp"

namespace ca::authority {

using store::NumberRange;

RangeAllocator::RangeAllocator(store::CaStore& store, store::RangeKind kind, int replica_id, std::string instance_id,
                               uint64_t range_size, uint64_t low_water)
    : store_(store),
      kind_(kind),
      replica_id_(replica_id),
      instance_id_(std::move(instance_id)),
      range_size_(range_size),
      low_water_(low_water) {}

RangeAllocator::~RangeAllocator() { wait_idle(); }

void RangeAllocator::wait_idle() {
  std::thread t;
  {
    std::lock_guard lock(mutex_);
    t = std::move(claimer_);
  }
  if (t.joinable()) t.join();
}

Status RangeAllocator::restore(const RangeState& saved) {
  RangeState s = saved;
  // Numbers written after the last checkpoint are found in the directory itself.
  uint64_t used = 0;
  bool any = false;
  for (const auto& range : {s.current, s.standby}) {
    if (!range) continue;
    uint64_t from = std::max(range->begin, std::min(s.next, range->end));
    if (range == s.standby) from = range->begin;
    CA_TRY(auto highest, store_.highest_counter_used(kind_, replica_id_, from, range->end));
    if (highest) {
      used = std::max(used, *highest);
      any = true;
    }
  }
  if (any && s.standby && s.standby->contains(used)) {
    s.current = s.standby;
    s.standby.reset();
  }
  if (any) s.next = std::max(s.next, used + 1);
  if (s.current && s.next < s.current->begin) s.next = s.current->begin;
  for (const auto& range : {s.current, s.standby})
    if (range) s.high_water = std::max(s.high_water, range->end);
  {
    std::lock_guard lock(mutex_);
    state_ = s;
  }
  log::info("ranges", "{} counters of replica {}: current {}, standby {}, next {}", store::range_kind_name(kind_),
            replica_id_, s.current ? store::format_range(*s.current) : "none",
            s.standby ? store::format_range(*s.standby) : "none", s.next);
  return ok();
}

Result<NumberRange> RangeAllocator::claim() {
  std::lock_guard claim_lock(claim_mutex_);
  uint64_t floor;
  {
    std::lock_guard lock(mutex_);
    floor = state_.high_water + 1;
  }
  CA_TRY(NumberRange range, store_.claim_range(kind_, range_size_, floor, replica_id_, instance_id_));
  if (range.begin <= floor - 1)  // defensive: the store must honour the floor
    return fail(Error::internal(
        fmt::format("claimed range {} is not above the high-water mark {}", store::format_range(range), floor - 1)));
  return range;
}

void RangeAllocator::maybe_claim_standby_locked() {
  if (claiming_ || state_.standby || !state_.current) return;
  uint64_t remaining = state_.next > state_.current->end ? 0 : state_.current->end - state_.next + 1;
  if (remaining >= low_water_) return;
  claiming_ = true;
  // The previous claimer cleared claiming_ as its very last step, with our lock, so it has
  // released the lock and is returning: joining it here cannot wait on us.
  if (claimer_.joinable()) claimer_.join();
  claimer_ = std::thread([this] {
    auto range = claim();
    if (range) {
      std::lock_guard lock(mutex_);
      state_.standby = *range;
      state_.high_water = std::max(state_.high_water, range->end);
    }
    if (!range) {
      log::warn("ranges", "background claim of a standby {} range failed: {} (will retry)",
                store::range_kind_name(kind_), range.error().message);
    } else if (persist_) {
      if (auto st = persist_(); !st) log::warn("ranges", "could not persist the standby range: {}", st.error().message);
    }
    std::lock_guard lock(mutex_);
    claiming_ = false;
  });
}

Result<uint64_t> RangeAllocator::next() {
  bool changed = false;
  uint64_t value;
  {
    std::unique_lock lock(mutex_);
    if (!state_.current || state_.next > state_.current->end) {
      if (state_.standby) {
        state_.current = state_.standby;
        state_.standby.reset();
      } else {
        // No standby ready (first start, or claims are failing): claim now, without our lock.
        lock.unlock();
        CA_TRY(NumberRange range, claim());
        lock.lock();
        if (!state_.current || state_.next > state_.current->end) {
          state_.current = range;
        } else {
          state_.standby = range;  // someone else switched meanwhile: keep this one for later
        }
        state_.high_water = std::max(state_.high_water, range.end);
      }
      if (state_.next < state_.current->begin || state_.next > state_.current->end) state_.next = state_.current->begin;
      changed = true;
    }
    value = state_.next++;
    maybe_claim_standby_locked();
  }
  if (changed && persist_) {
    // The switch must be durable before numbers of the new range are relied upon after a restart;
    // restore() also scans the standby range, so a lost persist costs nothing but a search.
    if (auto st = persist_(); !st) log::warn("ranges", "could not persist the range switch: {}", st.error().message);
  }
  return value;
}

Result<uint64_t> RangeAllocator::next_number() {
  CA_TRY(uint64_t counter, next());
  if (counter >= (uint64_t{1} << (63 - store::kReplicaBits))) return fail(Error::internal("counter space exhausted"));
  return store::compose_number(counter, replica_id_);
}

RangeState RangeAllocator::state() const {
  std::lock_guard lock(mutex_);
  return state_;
}

uint64_t RangeAllocator::checkpoint() const {
  std::lock_guard lock(mutex_);
  return state_.next;
}

}  // namespace ca::authority
