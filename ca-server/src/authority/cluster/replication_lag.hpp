#pragma once
// Is this instance's directory caught up with its peers? An instance whose directory missed the
// others' changes (it was frozen, cut off, or is still receiving the backlog) must not take traffic:
// it would serve an old CRL, miss revocations in OCSP, or take the CRL lease on stale data.
//
// Every running instance writes its heartbeat twice a second, so each provider's own contextCSN
// (the newest change it made, as its own directory holds it) keeps moving. The lag of this
// directory behind peer P: how long a change that P's own contextCSN, read from P's directory,
// showed has been missing from the contextCSN for P that this directory holds. The peers are
// read on a thread of their own (a peer that hangs never delays /readyz), with this instance's
// replication account; a peer that cannot be read is not judged (a partition is `ca-clone
// status`'s to report), and the time it could not be read does not count.
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "core/config.hpp"
#include "store/peer_directory.hpp"
#include "store/replica_store.hpp"

namespace ca::authority {

// One of a peer's CSNs as this instance saw it appear in the peer's directory.
struct ObservedCsn {
  std::chrono::system_clock::time_point csn;
  std::chrono::steady_clock::time_point first_seen;
};

struct PeerCsnSample {
  std::chrono::system_clock::time_point own_csn;  // the peer's newest change, from its own directory
  std::chrono::steady_clock::time_point read_at;
  std::string url;
  // The CRL stored in the peer's directory: its number (full or delta, the higher) and from when
  // it is served. A directory that missed it makes its instance serve an older CRL.
  uint64_t crl_number = 0;
  std::chrono::system_clock::time_point crl_serve_from{};
  // The lag judgement's history, kept by the monitor across reads (continue_history): the peer's
  // CSNs in the order they appeared (bounded), and since when the peer has been read without a
  // break. After a break (the peer was stopped or cut off) the clock of what was seen before
  // restarts at the first read: while it could not be read it was not judged, and a change that
  // died with a stopped peer before it replicated arrives when the peer is back.
  std::deque<ObservedCsn> seen;
  std::chrono::steady_clock::time_point readable_since{};
};

// Carries `previous` (the last sample of the same peer, or null) into `next` and records next's
// own CSN: a gap of more than `break_after` between the two reads is a break.
void continue_history(const PeerCsnSample* previous, PeerCsnSample& next, std::chrono::milliseconds break_after);

// The newest CRL number that any peer read lately (within `fresh_within`) holds and that is
// served by now (its serve_from has passed): what relying parties get from those peers.
uint64_t newest_peer_crl(const std::map<int, PeerCsnSample>& peers, std::chrono::steady_clock::time_point now,
                         std::chrono::system_clock::time_point wall_now, std::chrono::milliseconds fresh_within);

// The judgement, from the samples and this directory's contextCSN times by server ID: fails naming
// the peer whose changes this directory has lacked for more than `max_lag`. Samples older than
// `fresh_within` are not judged.
//
// "Behind" is how long the oldest change seen in the peer's directory and not yet here has been
// seen (the monotonic clock, from the sample's history): the CSN difference alone would call a
// peer that was stopped for 20 s and just wrote its first change "20 s ahead" although this
// directory lacks only that change, a few ms old. A directory that was frozen or stopped receiving
// lacks changes first seen long ago: a lag. Until this directory has once held everything a peer
// was seen to have (this instance just started: it may itself be the one that missed 20 s of
// changes), the CSN difference is what is used. A replica of which this directory holds no change
// at all (a clone just added) is judged by time.
class ReplicationLagJudge {
 public:
  ReplicationLagJudge(std::chrono::milliseconds max_lag, std::chrono::milliseconds fresh_within)
      : max_lag_(max_lag), fresh_within_(fresh_within) {}

  Status judge(const std::map<int, std::chrono::system_clock::time_point>& local_csns,
               const std::map<int, PeerCsnSample>& peers, std::chrono::steady_clock::time_point now);

 private:
  const std::chrono::milliseconds max_lag_;
  const std::chrono::milliseconds fresh_within_;
  std::mutex mutex_;
  std::set<int> caught_up_once_;  // replica IDs
};

class PeerCsnMonitor {
 public:
  struct Options {
    std::chrono::milliseconds interval{1000};
    int timeout_ms = 1000;
  };
  // `registry`: the instances to read; `open`: reaches the directory of one of them.
  PeerCsnMonitor(const InstanceConfig& config, store::ReplicaStore& registry, store::PeerDirectoryOpener open,
                 Options options);
  ~PeerCsnMonitor();
  PeerCsnMonitor(const PeerCsnMonitor&) = delete;
  PeerCsnMonitor& operator=(const PeerCsnMonitor&) = delete;

  void start();
  void stop();
  std::map<int, PeerCsnSample> samples() const;

 private:
  void loop();
  void read_peers();

  const InstanceConfig& config_;
  store::ReplicaStore& store_;
  store::PeerDirectoryOpener open_;
  Options options_;
  std::map<std::string, std::shared_ptr<store::PeerDirectory>> peers_;  // by URL; only the monitor thread
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::map<int, PeerCsnSample> samples_;
  std::thread thread_;
};

}  // namespace ca::authority
