#include "authority/replication_lag.hpp"

#include <algorithm>
#include <cstdlib>

#include <fmt/format.h>

#include "authority/context_csn_monitor.hpp"
#include "authority/instance_setup.hpp"
#include "core/log.hpp"
#include "store/ldap_ca_store.hpp"
#include "store/replication.hpp"

namespace ca::authority {

namespace {
constexpr std::string_view kLog = "replication";
}

Status ReplicationLagJudge::judge(const std::map<int, std::chrono::system_clock::time_point>& local_csns,
                                  const std::map<int, PeerCsnSample>& peers, std::chrono::steady_clock::time_point now) {
  std::lock_guard lock(mutex_);
  for (const auto& [replica_id, sample] : peers) {
    if (now - sample.read_at > fresh_within_) continue;  // not read lately: not judged
    auto found = local_csns.find(replica_id);
    std::optional<std::chrono::system_clock::time_point> local;
    if (found != local_csns.end()) local = found->second;
    CA_CHECK(judge_peer(replica_id, sample, local, history_[replica_id], now));
  }
  return ok();
}

Status ReplicationLagJudge::judge_peer(int replica_id, const PeerCsnSample& sample,
                                       std::optional<std::chrono::system_clock::time_point> local,
                                       PeerHistory& history, std::chrono::steady_clock::time_point now) const {
  auto& missing = history.missing;
  const bool here = local && sample.own_csn <= *local;
  if (!here && (missing.empty() || missing.back().csn < sample.own_csn) && missing.size() < kMaxRemembered)
    missing.push_back({sample.own_csn, now});
  while (!missing.empty() && local && missing.front().csn <= *local) missing.pop_front();
  if (missing.empty()) {
    history.caught_up_once = true;
    return ok();
  }
  std::chrono::system_clock::duration behind{};
  if (history.caught_up_once) {
    // Everything seen before the oldest missing CSN is here: what is missing was made after the
    // sample that showed this directory caught up, so at most about one sample interval before
    // it was first seen.
    behind = now - missing.front().first_seen;
  } else if (local) {
    behind = sample.own_csn - *local;
  } else {
    // No change of this replica here at all: a new instance (a clone just added writes its first
    // change before it reaches us), whose changes are all recent; measured by time as well.
    const auto waited = now - missing.front().first_seen;
    if (waited > max_lag_)
      return fail(Error::unavailable(fmt::format("this directory holds no change of replica {} yet ({} has had some for {} ms)",
                                                 replica_id, sample.url,
                                                 std::chrono::duration_cast<std::chrono::milliseconds>(waited).count())));
    return ok();
  }
  if (behind > max_lag_)
    return fail(Error::unavailable(
        fmt::format("this directory is {} ms behind replica {} ({}): still receiving its changes",
                    std::chrono::duration_cast<std::chrono::milliseconds>(behind).count(), replica_id, sample.url)));
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

PeerCsnMonitor::PeerCsnMonitor(const InstanceConfig& config, store::CaStore& store, Options options)
    : config_(config), store_(store), options_(options) {}

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
  auto password = read_secret_file(config_.dir / "secrets" / "replication.pass");
  if (!password) return;  // no replication account yet: nobody to compare with
  for (const auto& r : *replicas) {
    if (r.retired || r.replica_id == config_.ranges.replica_id || r.directory_url.empty()) continue;
    auto& pool = pools_[r.directory_url];
    if (!pool)
      pool = std::make_shared<store::LdapPool>(
          store::LdapEndpoint{r.directory_url,
                              store::replication_account_dn(config_.directory.suffix, config_.ranges.replica_id),
                              *password, options_.timeout_ms, config_.cert_file("ca_signing").string()},
          1);
    PeerCsnSample sample;
    sample.url = r.directory_url;
    Status read = pool->with_connection([&](store::LdapConnection& c) -> Status {
      CA_TRY(auto csns, store::context_csns(c, config_.directory.suffix));
      auto own = csns.find(r.replica_id);
      if (own == csns.end()) return fail(Error::not_found("no change of its own yet"));
      CA_TRY(sample.own_csn, csn_time(own->second));
      CA_TRY(auto crl, c.read(store::DirectoryLayout{config_.directory.suffix}.crl_dn("MasterCRL"),
                              {"caCrlNumber", "caDeltaCrlNumber", "caCrlServeFrom"}));
      if (crl) {
        auto number = [&](const char* a) { return std::strtoull(crl->first_or(a, "0").c_str(), nullptr, 10); };
        sample.crl_number = std::max(number("caCrlNumber"), number("caDeltaCrlNumber"));
        sample.crl_serve_from = std::chrono::system_clock::time_point(std::chrono::milliseconds(number("caCrlServeFrom")));
      }
      return ok();
    });
    if (!read) {
      log::debug(kLog, "cannot read replica {}'s directory: {}", r.replica_id, read.error().message);
      continue;
    }
    sample.read_at = std::chrono::steady_clock::now();
    std::lock_guard lock(mutex_);
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
