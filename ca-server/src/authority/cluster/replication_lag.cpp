#include "authority/cluster/replication_lag.hpp"

#include <algorithm>
#include <cstdlib>

#include <fmt/format.h>

#include "authority/cluster/context_csn_monitor.hpp"
#include "core/log.hpp"

namespace ca::authority {

namespace {
constexpr std::string_view kLog = "replication";
}

void continue_history(const PeerCsnSample* previous, PeerCsnSample& next, std::chrono::milliseconds break_after) {
  // At one read a second: far more than any lag bound worth having; the oldest go first.
  constexpr std::size_t kMaxSeen = 1024;
  if (previous) next.seen = previous->seen;
  if (previous && next.read_at - previous->read_at <= break_after) {
    next.readable_since = previous->readable_since;
  } else {
    next.readable_since = next.read_at;
    for (auto& observed : next.seen) observed.first_seen = next.read_at;
  }
  if (next.seen.empty() || next.seen.back().csn < next.own_csn) next.seen.push_back({next.own_csn, next.read_at});
  while (next.seen.size() > kMaxSeen) next.seen.pop_front();
}

Status ReplicationLagJudge::judge(const std::map<int, std::chrono::system_clock::time_point>& local_csns,
                                  const std::map<int, PeerCsnSample>& peers,
                                  std::chrono::steady_clock::time_point now) {
  std::lock_guard lock(mutex_);
  for (const auto& [replica_id, sample] : peers) {
    if (now - sample.read_at > fresh_within_) continue;  // not read lately: not judged
    auto found = local_csns.find(replica_id);
    std::optional<std::chrono::system_clock::time_point> local;
    if (found != local_csns.end()) local = found->second;
    if (local && sample.own_csn <= *local) {
      caught_up_once_.insert(replica_id);
      continue;
    }
    // The oldest change seen in the peer's directory that is not here.
    auto missing = std::find_if(sample.seen.begin(), sample.seen.end(),
                                [&](const ObservedCsn& o) { return !local || o.csn > *local; });
    const auto since_seen =
        missing != sample.seen.end() ? now - missing->first_seen : std::chrono::steady_clock::duration{};
    if (!local) {
      if (since_seen > max_lag_)
        return fail(Error::unavailable(
            fmt::format("this directory holds no change of replica {} yet ({} has had some for {} ms)", replica_id,
                        sample.url, std::chrono::duration_cast<std::chrono::milliseconds>(since_seen).count())));
      continue;
    }
    const std::chrono::system_clock::duration behind =
        caught_up_once_.contains(replica_id)
            ? std::chrono::duration_cast<std::chrono::system_clock::duration>(since_seen)
            : sample.own_csn - *local;
    if (behind > max_lag_)
      return fail(Error::unavailable(
          fmt::format("this directory is {} ms behind replica {} ({}): still receiving its changes",
                      std::chrono::duration_cast<std::chrono::milliseconds>(behind).count(), replica_id, sample.url)));
  }
  return ok();
}

uint64_t newest_peer_crl(const std::map<int, PeerCsnSample>& peers, std::chrono::steady_clock::time_point now,
                         std::chrono::system_clock::time_point wall_now, std::chrono::milliseconds fresh_within) {
  uint64_t newest = 0;
  for (const auto& [id, sample] : peers)
    if (now - sample.read_at <= fresh_within && sample.crl_serve_from <= wall_now)
      newest = std::max(newest, sample.crl_number);
  return newest;
}

PeerCsnMonitor::PeerCsnMonitor(const InstanceConfig& config, store::ReplicaStore& registry,
                               store::PeerDirectoryOpener open, Options options)
    : config_(config), store_(registry), open_(std::move(open)), options_(options) {}

PeerCsnMonitor::~PeerCsnMonitor() { stop(); }

void PeerCsnMonitor::start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { loop(); });
}

void PeerCsnMonitor::stop() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::map<int, PeerCsnSample> PeerCsnMonitor::samples() const {
  std::lock_guard lock(mutex_);
  return samples_;
}

void PeerCsnMonitor::read_peers() {
  auto replicas = store_.list_replicas();
  if (!replicas) return;
  for (const auto& r : *replicas) {
    if (r.retired || r.replica_id == config_.ranges.replica_id || r.directory_url.empty()) continue;
    auto& peer = peers_[r.directory_url];
    if (!peer) peer = open_(r.directory_url);
    if (!peer) return;  // no replication account yet: nobody to compare with
    PeerCsnSample sample;
    sample.url = r.directory_url;
    Status read = [&]() -> Status {
      CA_TRY(auto csns, peer->change_stamps());
      auto own = csns.find(r.replica_id);
      if (own == csns.end()) return fail(Error::not_found("no change of its own yet"));
      CA_TRY(sample.own_csn, csn_time(own->second));
      CA_TRY(auto crl, peer->crl_numbers());
      if (crl) {
        sample.crl_number = std::max(crl->crl_number, crl->delta_number);
        sample.crl_serve_from = crl->serve_from;
      }
      return ok();
    }();
    if (!read) {
      log::debug(kLog, "cannot read replica {}'s directory: {}", r.replica_id, read.error().message);
      continue;
    }
    sample.read_at = std::chrono::steady_clock::now();
    std::lock_guard lock(mutex_);
    auto previous = samples_.find(r.replica_id);
    // A read or two that failed or took long is not a break; a peer down for seconds is.
    continue_history(previous != samples_.end() ? &previous->second : nullptr, sample,
                     3 * options_.interval + std::chrono::milliseconds(2 * options_.timeout_ms));
    samples_[r.replica_id] = std::move(sample);
  }
}

void PeerCsnMonitor::loop() {
  while (true) {
    read_peers();
    std::unique_lock lock(mutex_);
    if (wake_.wait_for(lock, options_.interval, [this] { return stop_; })) return;
  }
}

}  // namespace ca::authority
