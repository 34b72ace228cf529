#pragma once
// Periodic work of an instance, by name: each job has its own cadence, one thread runs them all.
// Time comes from an injected clock, so a test moves it by hand and calls run_due() instead of
// sleeping; the thread (start/stop) is only the production driver of run_due().
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ca {

class Scheduler {
 public:
  using Clock = std::chrono::steady_clock;
  using Now = std::function<Clock::time_point()>;

  struct Job {
    std::string name;                          // in logs and in job_names()
    std::chrono::milliseconds every;           // the cadence, from the end of one run to the next
    std::chrono::milliseconds first_after{0};  // the first run, counted from add()
    std::function<void()> run;                 // reports its own failures (a job never stops the others)
  };

  // `thread_name` names the thread start() makes (at most 15 characters are shown by ps/top).
  explicit Scheduler(
      std::string thread_name, Now now = [] { return Clock::now(); });
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Adds a job, due first_after from now. Jobs added while the thread runs are picked up.
  void add(Job job);
  // Runs, on the calling thread and in the order they were added, every job due now; returns
  // when the next one is due (Clock::time_point::max() without jobs).
  Clock::time_point run_due();
  [[nodiscard]] std::vector<std::string> job_names() const;

  // The production driver: a thread that sleeps until the next job is due, until stop().
  void start();
  // Wakes the thread and joins it; a job running now finishes first. Idempotent.
  void stop();

 private:
  struct Entry {
    Job job;
    Clock::time_point due;
  };
  void loop();

  const std::string thread_name_;
  const Now now_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<Entry> entries_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace ca
