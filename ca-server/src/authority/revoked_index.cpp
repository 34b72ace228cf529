#include "authority/revoked_index.hpp"

#include <algorithm>

#include "core/log.hpp"

namespace ca::authority {

using crypto::CrlEntry;

namespace {
constexpr auto kSkewMargin = std::chrono::seconds(5);

std::optional<CrlEntry> to_entry(const store::RevocationChange& c) {
  auto secs = [](store::TimePoint t) { return static_cast<int64_t>(std::chrono::system_clock::to_time_t(t)); };
  return CrlEntry::from_hex(c.serial_hex, secs(c.revoked_on), c.reason, c.invalidity_date ? secs(*c.invalidity_date) : 0);
}

bool same_content(const CrlEntry& a, const CrlEntry& b) {
  return a.same_serial(b) && a.reason == b.reason && a.revoked_at == b.revoked_at && a.invalidity_date == b.invalidity_date;
}

// Insert or replace `e` in the sorted vector `v`; or erase when `remove`. Returns whether `v` changed.
bool upsert(std::vector<CrlEntry>& v, const CrlEntry& e, bool remove) {
  auto it = std::lower_bound(v.begin(), v.end(), e);
  bool found = it != v.end() && it->same_serial(e);
  if (remove) {
    if (!found) return false;
    v.erase(it);
    return true;
  }
  if (found) {
    if (same_content(*it, e)) return false;
    *it = e;
    return true;
  }
  v.insert(it, e);
  return true;
}
}  // namespace

Status RevokedIndex::load() {
  auto started = std::chrono::system_clock::now();
  std::vector<CrlEntry> loaded;
  CA_CHECK(store_.each_revocation_change(std::nullopt, [&](const store::RevocationChange& c) {
    if (auto e = to_entry(c)) loaded.push_back(*e);
  }));
  std::sort(loaded.begin(), loaded.end());
  loaded.erase(std::unique(loaded.begin(), loaded.end(), [](const CrlEntry& a, const CrlEntry& b) { return a.same_serial(b); }),
               loaded.end());
  std::lock_guard lock(mutex_);
  entries_ = std::move(loaded);
  delta_.clear();
  delta_complete_ = false;
  last_refresh_ = started;
  log::info("crl", "revoked index loaded: {} entries", entries_.size());
  return ok();
}

bool RevokedIndex::apply_locked(const store::RevocationChange& c) {
  auto e = to_entry(c);
  if (!e) return false;
  if (!upsert(entries_, *e, !c.revoked)) return false;  // seen before (refresh overlaps a margin)
  CrlEntry d = *e;
  if (!c.revoked) d.reason = 8;  // removeFromCRL
  upsert(delta_, d, false);
  return true;
}

void RevokedIndex::apply(const store::RevocationChange& c) {
  std::lock_guard lock(mutex_);
  apply_locked(c);
}

Result<std::size_t> RevokedIndex::refresh() {
  std::optional<store::TimePoint> since;
  {
    std::lock_guard lock(mutex_);
    since = last_refresh_;
  }
  if (!since) {
    CA_CHECK(load());
    return size();
  }
  auto started = std::chrono::system_clock::now();
  std::vector<store::RevocationChange> changes;
  CA_CHECK(store_.each_revocation_change(*since - kSkewMargin, [&](const store::RevocationChange& c) { changes.push_back(c); }));
  std::lock_guard lock(mutex_);
  std::size_t applied = 0;
  for (const auto& c : changes) applied += apply_locked(c) ? 1 : 0;
  last_refresh_ = started;
  return applied;
}

std::vector<CrlEntry> RevokedIndex::delta_since_base() const {
  std::lock_guard lock(mutex_);
  return delta_;
}

void RevokedIndex::restore_delta() {
  std::lock_guard lock(mutex_);
  // Changes made since take keep priority: they are newer.
  for (const auto& e : taken_delta_) {
    auto it = std::lower_bound(delta_.begin(), delta_.end(), e);
    if (it == delta_.end() || !it->same_serial(e)) delta_.insert(it, e);
  }
  taken_delta_.clear();
  delta_complete_ = delta_complete_ && taken_complete_;
}

std::size_t RevokedIndex::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

}  // namespace ca::authority
