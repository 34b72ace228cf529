#pragma once
// Whether this instance should receive traffic (/readyz). The checks run on their own thread,
// once a second: a frozen directory blocks that thread, never a client, and a report whose last
// run is too old is itself "not ready" — so a stuck instance leaves the balancer's rotation
// within the directory timeout plus a second or two.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/error.hpp"

namespace ca::authority {

struct ReadinessCheck {
  std::string name;
  bool ok = false;
  std::string detail;
  double seconds = 0;  // how long the check took
  // An advisory check is shown (and its failure logged) but never makes the instance not ready: a
  // condition of the cluster that every instance sees alike, where leaving the balancer would help
  // nobody (two CRL epochs publishing, a lease epoch that went down).
  bool advisory = false;
};

struct ReadinessReport {
  bool ready = false;
  std::vector<ReadinessCheck> checks;
  std::chrono::system_clock::time_point checked_at{};
};

class ReadinessMonitor {
 public:
  // Each check returns ok() or why not (the message ends up in /readyz).
  struct Check {
    std::string name;
    std::function<Status()> run;
    bool advisory = false;  // see ReadinessCheck::advisory
  };
  struct Options {
    std::chrono::milliseconds interval{500};
    // A report older than this is not trusted: the checks themselves are stuck.
    std::chrono::milliseconds stale_after{1500};
  };

  ReadinessMonitor(std::vector<Check> checks, Options options);
  ~ReadinessMonitor();
  ReadinessMonitor(const ReadinessMonitor&) = delete;
  ReadinessMonitor& operator=(const ReadinessMonitor&) = delete;

  void start();
  void stop();
  // Runs every check once on the calling thread (start-up, tests).
  void run_once();
  // The last complete run, judged now: stale, draining or never run are "not ready".
  ReadinessReport report() const;
  // Shutting down: not ready from now on, whatever the checks say.
  void set_draining() { draining_ = true; }

 private:
  void loop();

  std::vector<Check> checks_;
  Options options_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::atomic<bool> draining_{false};
  std::optional<ReadinessReport> last_;
  std::chrono::steady_clock::time_point last_at_{};
  std::thread thread_;
};

}  // namespace ca::authority
