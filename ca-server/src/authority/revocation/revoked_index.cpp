#include "authority/revocation/revoked_index.hpp"

#include <algorithm>

#include "core/log.hpp"

namespace ca::authority {

using crypto::CrlEntry;

namespace {
constexpr auto kSkewMargin = std::chrono::seconds(5);

std::optional<CrlEntry> to_entry(const store::RevocationChange& c) {
  auto secs = [](store::TimePoint t) { return static_cast<int64_t>(std::chrono::system_clock::to_time_t(t)); };
  return CrlEntry::from_hex(c.serial_hex, secs(c.revoked_on), c.reason,
                            c.invalidity_date ? secs(*c.invalidity_date) : 0);
}

bool same_content(const CrlEntry& a, const CrlEntry& b) {
  return a.same_serial(b) && a.reason == b.reason && a.revoked_at == b.revoked_at &&
         a.invalidity_date == b.invalidity_date;
}

}  // namespace

Status RevokedIndex::load() {
  auto started = std::chrono::system_clock::now();
  std::vector<CrlEntry> loaded;
  CA_CHECK(store_.each_revocation_change(std::nullopt, [&](const store::RevocationChange& c) {
    if (auto e = to_entry(c)) loaded.push_back(*e);
  }));
  std::sort(loaded.begin(), loaded.end());
  loaded.erase(
      std::unique(loaded.begin(), loaded.end(), [](const CrlEntry& a, const CrlEntry& b) { return a.same_serial(b); }),
      loaded.end());
  std::lock_guard lock(mutex_);
  entries_ = std::move(loaded);
  pending_.clear();
  pending_index_.clear();
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
  const bool remove = !c.revoked;
  // A change seen before (the watch's copy of our own revocation, a refresh's overlap) changes
  // nothing. The newest state of a serial is its pending change if it has one, else entries_.
  std::string key(reinterpret_cast<const char*>(e->serial.data()), e->serial_length);
  if (auto p = pending_index_.find(key); p != pending_index_.end()) {
    const auto& [prior, prior_removed] = pending_[p->second];
    if (prior_removed == remove && (remove || same_content(prior, *e))) return false;
  } else {
    auto it = std::lower_bound(entries_.begin(), entries_.end(), *e);
    const bool found = it != entries_.end() && it->same_serial(*e);
    if (remove ? !found : (found && same_content(*it, *e))) return false;
  }
  // Inserting into a sorted vector of a million entries moves megabytes: changes wait here and
  // are merged in one pass (a mass revocation of 100,000 costs a few merges, not 100,000 moves).
  pending_index_[std::move(key)] = pending_.size();
  pending_.emplace_back(*e, remove);
  if (pending_.size() >= kMergeEvery) merge_pending_locked();
  return true;
}

void RevokedIndex::merge_pending_locked() const {
  if (pending_.empty()) return;
  // The last change of each serial wins.
  std::vector<std::pair<CrlEntry, bool>> changes;
  changes.reserve(pending_index_.size());
  for (const auto& [key, at] : pending_index_) changes.push_back(pending_[at]);
  pending_.clear();
  pending_index_.clear();
  std::sort(changes.begin(), changes.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  auto merge = [&](const std::vector<CrlEntry>& from, bool as_delta) {
    std::vector<CrlEntry> out;
    out.reserve(from.size() + changes.size());
    auto it = from.begin();
    for (const auto& [entry, removed] : changes) {
      while (it != from.end() && *it < entry) out.push_back(*it++);
      const bool same = it != from.end() && it->same_serial(entry);
      if (same) ++it;
      if (as_delta) {
        CrlEntry d = entry;
        if (removed) d.reason = 8;  // removeFromCRL
        out.push_back(d);
      } else if (!removed) {
        out.push_back(entry);
      }
    }
    out.insert(out.end(), it, from.end());
    return out;
  };
  entries_ = merge(entries_, false);
  delta_ = merge(delta_, true);
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
  loaded.erase(
      std::unique(loaded.begin(), loaded.end(), [](const CrlEntry& a, const CrlEntry& b) { return a.same_serial(b); }),
      loaded.end());
  entries_ = std::move(loaded);
  pending_.clear();
  pending_index_.clear();
  // What changed while the refresh ran is newer than (or the same as) what it delivered.
  for (const auto& c : applied_during_reload_) apply_locked(c);
  applied_during_reload_.clear();
  merge_pending_locked();
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
  merge_pending_locked();
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
  merge_pending_locked();
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
  CA_CHECK(store_.each_revocation_change(*since - kSkewMargin,
                                         [&](const store::RevocationChange& c) { changes.push_back(c); }));
  std::lock_guard lock(mutex_);
  std::size_t applied = 0;
  for (const auto& c : changes) applied += apply_locked(c) ? 1 : 0;
  last_refresh_ = started;
  return applied;
}

std::vector<CrlEntry> RevokedIndex::delta_since_base() const {
  std::lock_guard lock(mutex_);
  merge_pending_locked();
  return delta_;
}

void RevokedIndex::restore_delta() {
  std::lock_guard lock(mutex_);
  merge_pending_locked();
  // Changes made since the take keep priority: they are newer. One merge of two sorted vectors.
  std::vector<CrlEntry> merged;
  merged.reserve(delta_.size() + taken_delta_.size());
  auto newer = delta_.begin();
  for (const auto& older : taken_delta_) {
    while (newer != delta_.end() && *newer < older) merged.push_back(*newer++);
    if (newer != delta_.end() && newer->same_serial(older))
      merged.push_back(*newer++);
    else
      merged.push_back(older);
  }
  merged.insert(merged.end(), newer, delta_.end());
  delta_ = std::move(merged);
  taken_delta_.clear();
  delta_complete_ = delta_complete_ && taken_complete_;
}

std::size_t RevokedIndex::size() const {
  std::lock_guard lock(mutex_);
  merge_pending_locked();
  return entries_.size();
}

}  // namespace ca::authority
