#include "core/scheduler.hpp"

#include <algorithm>

#include <pthread.h>

namespace ca {

Scheduler::Scheduler(std::string thread_name, Now now) : thread_name_(std::move(thread_name)), now_(std::move(now)) {}

Scheduler::~Scheduler() { stop(); }

void Scheduler::add(Job job) {
  {
    std::lock_guard lock(mutex_);
    const auto due = now_() + job.first_after;
    entries_.push_back({std::move(job), due});
  }
  wake_.notify_all();
}

Scheduler::Clock::time_point Scheduler::run_due() {
  std::unique_lock lock(mutex_);
  // By index: a job may add another (entries_ grows; references would dangle).
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    if (stopping_) break;
    if (now_() < entries_[i].due) continue;
    auto run = entries_[i].job.run;
    lock.unlock();
    run();
    lock.lock();
    entries_[i].due = now_() + entries_[i].job.every;
  }
  auto next = Clock::time_point::max();
  for (const auto& e : entries_) next = std::min(next, e.due);
  return next;
}

std::vector<std::string> Scheduler::job_names() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> names;
  names.reserve(entries_.size());
  for (const auto& e : entries_) names.push_back(e.job.name);
  return names;
}

void Scheduler::start() {
  std::lock_guard lock(mutex_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { loop(); });
  pthread_setname_np(thread_.native_handle(), thread_name_.substr(0, 15).c_str());
}

void Scheduler::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Scheduler::loop() {
  for (;;) {
    const auto next = run_due();
    std::unique_lock lock(mutex_);
    if (stopping_) return;
    // The real clock's time: the thread drives production time (tests call run_due themselves).
    const auto until = next == Clock::time_point::max() ? Clock::now() + std::chrono::hours(1) : next;
    wake_.wait_until(lock, until, [&] {
      if (stopping_) return true;
      return std::any_of(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.due < next; });
    });
    if (stopping_) return;
  }
}

}  // namespace ca
