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
  ready_ = true;
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
  if (reloading_) applied_during_reload_.push_back(c);
  apply_locked(c);
}

void RevokedIndex::begin_reload() {
  std::lock_guard lock(mutex_);
  reloading_.emplace();
  applied_during_reload_.clear();
}

void RevokedIndex::reload_entry(const store::RevocationChange& c) {
  if (!c.revoked) return;
  auto e = to_entry(c);
  if (!e) return;
  std::lock_guard lock(mutex_);
  if (reloading_) reloading_->push_back(*e);
}

void RevokedIndex::end_reload() {
  std::lock_guard lock(mutex_);
  if (!reloading_) return;
  auto loaded = std::move(*reloading_);
  reloading_.reset();
  std::sort(loaded.begin(), loaded.end());
  loaded.erase(std::unique(loaded.begin(), loaded.end(), [](const CrlEntry& a, const CrlEntry& b) { return a.same_serial(b); }),
               loaded.end());
  entries_ = std::move(loaded);
  // What changed while the refresh ran is newer than (or the same as) what it delivered.
  for (const auto& c : applied_during_reload_) {
    if (auto e = to_entry(c)) upsert(entries_, *e, !c.revoked);
  }
  applied_during_reload_.clear();
  // The recorded changes no longer say what changed since the last published CRL.
  delta_.clear();
  delta_complete_ = false;
  ready_ = true;
  log::info("crl", "revoked index loaded from the directory: {} entries", entries_.size());
}

bool RevokedIndex::ready() const {
  std::lock_guard lock(mutex_);
  return ready_;
}

std::size_t RevokedIndex::delta_size() const {
  std::lock_guard lock(mutex_);
  return delta_.size();
}

bool RevokedIndex::delta_complete() const {
  std::lock_guard lock(mutex_);
  return delta_complete_;
}

void RevokedIndex::mark_delta_incomplete() {
  std::lock_guard lock(mutex_);
  delta_complete_ = false;
}

bool RevokedIndex::contains(const CrlEntry& serial) const {
  std::lock_guard lock(mutex_);
  auto it = std::lower_bound(entries_.begin(), entries_.end(), serial);
  return it != entries_.end() && it->same_serial(serial);
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
