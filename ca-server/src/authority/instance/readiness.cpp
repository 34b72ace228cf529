#include "authority/instance/readiness.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "core/log.hpp"

namespace ca::authority {

ReadinessMonitor::ReadinessMonitor(std::vector<Check> checks, Options options)
    : checks_(std::move(checks)), options_(options) {}

ReadinessMonitor::~ReadinessMonitor() { stop(); }

void ReadinessMonitor::start() {
  std::lock_guard lock(mutex_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { loop(); });
}

void ReadinessMonitor::stop() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ReadinessMonitor::run_once() {
  ReadinessReport report;
  report.ready = true;
  for (const auto& check : checks_) {
    auto began = std::chrono::steady_clock::now();
    Status st = check.run();
    ReadinessCheck result{check.name, static_cast<bool>(st), st ? "ok" : st.error().message,
                          std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count(),
                          check.advisory};
    if (!result.ok && !result.advisory) report.ready = false;
    report.checks.push_back(std::move(result));
  }
  report.checked_at = std::chrono::system_clock::now();
  std::lock_guard lock(mutex_);
  for (const auto& c : report.checks) {
    if (!c.advisory) continue;
    const bool was_ok = !last_ || std::none_of(last_->checks.begin(), last_->checks.end(),
                                               [&](const ReadinessCheck& p) { return p.name == c.name && !p.ok; });
    if (!c.ok && was_ok) log::warn("readiness", "{} (advisory, still ready): {}", c.name, c.detail);
  }
  if (last_ && last_->ready != report.ready) {
    std::string failing;
    for (const auto& c : report.checks)
      if (!c.ok) failing += fmt::format("{}{}: {}", failing.empty() ? "" : "; ", c.name, c.detail);
    if (report.ready)
      log::info("readiness", "ready again");
    else
      log::warn("readiness", "not ready: {}", failing);
  }
  last_ = std::move(report);
  last_at_ = std::chrono::steady_clock::now();
}

void ReadinessMonitor::loop() {
  while (true) {
    run_once();
    std::unique_lock lock(mutex_);
    if (wake_.wait_for(lock, options_.interval, [this] { return stop_; })) return;
  }
}

ReadinessReport ReadinessMonitor::report() const {
  std::lock_guard lock(mutex_);
  ReadinessReport out;
  if (last_) out = *last_;
  auto age = std::chrono::steady_clock::now() - last_at_;
  if (!last_) {
    out.ready = false;
    out.checks.push_back({"checks", false, "not run yet", 0});
  } else if (age > options_.stale_after) {
    out.ready = false;
    out.checks.push_back({"checks", false,
                          fmt::format("the last complete run is {:.1f} s old: a check is stuck (a frozen directory?)",
                                      std::chrono::duration<double>(age).count()),
                          0});
  }
  if (draining_) {
    out.ready = false;
    out.checks.push_back({"shutdown", false, "shutting down: finishing the requests in flight", 0});
  }
  return out;
}

}  // namespace ca::authority
