#pragma once
// Electing the one instance that generates CRLs (the CRL master) through the directory.
//
// The lease lives on the issuing point entry (cn=MasterCRL: caCrlMaster = instance ID,
// caLeaseExpires). Every `lease / 3` each eligible instance runs a round:
// - the holder renews its lease with a compare-and-set (delete its own value, add it again);
// - anybody else takes over only when the lease has expired (no renewal seen for a whole lease
//   period) and still reads exactly the same in a later round at least `settle` on (a directory
//   just back from a freeze shows a stale lease until replication catches up), with a
//   compare-and-set from the expired holder to itself, then waits `settle` for
//   replication and reads the lease again: only if it is still the holder does it act as master.
//
// On one directory server the compare-and-set makes the takeover exclusive. Between replicating
// servers the last writer wins; after `settle` every instance reads the same winner, and a loser
// that briefly believed it held the lease finds its renewal refused at the next round and steps
// down. During a network partition each side may elect its own master (so CRLs stay fresh on both
// sides); when it heals, one lease survives and the other master steps down. See docs/cloning.md.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <utility>
#include <string>
#include <thread>

#include "store/ca_store.hpp"

namespace ca::authority {

struct ElectionOptions {
  std::chrono::milliseconds lease{30000};
  std::chrono::milliseconds settle{1500};  // wait after a takeover before believing it
  bool eligible = true;                    // false: never become master (serve CRLs only)
  std::string issuing_point = "MasterCRL";
};

class CrlMasterElection {
 public:
  CrlMasterElection(store::CaStore& store, std::string instance_id, ElectionOptions options);
  ~CrlMasterElection();

  // Runs the first round now (so a single instance is master when start returns), then a thread.
  void start();
  void stop();

  // One round; returns whether this instance is master after it. Public for tests.
  bool run_round();
  bool is_master() const;
  store::CrlLease last_seen() const;
  // Called from the election thread when mastership changes (true = became master).
  void on_change(std::function<void(bool)> callback) { on_change_ = std::move(callback); }

 private:
  void set_master(bool master);
  void loop();

  store::CaStore& store_;
  std::string instance_id_;
  ElectionOptions options_;
  std::function<void(bool)> on_change_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool master_ = false;
  store::CrlLease seen_;
  // An expired lease seen once, and when: it is taken only if a later round, at least `settle`
  // on, still reads the very same lease. A directory that was frozen or cut off shows a stale,
  // expired lease until replication catches up; taking it at first sight would depose a live
  // master (and make relying parties see CRL numbers go back and forth).
  std::optional<std::pair<store::CrlLease, std::chrono::steady_clock::time_point>> expired_seen_;
  std::thread thread_;
};

}  // namespace ca::authority
