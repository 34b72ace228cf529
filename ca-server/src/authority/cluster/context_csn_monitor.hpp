#pragma once
// How far behind each provider the directory is: the contextCSN values of the suffix entry (one
// per provider server ID, the newest change of that provider this directory holds), read on a
// thread of its own every few seconds so that a frozen directory delays these figures, never a
// /metrics scrape. The metrics read the cached values (snapshot()).
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "core/error.hpp"

namespace ca::authority {

// The time of a CSN "YYYYmmddHHMMSS.ffffffZ#counter#sid#mod" (UTC, microseconds).
[[nodiscard]] Result<std::chrono::system_clock::time_point> csn_time(std::string_view csn);

class ContextCsnMonitor {
 public:
  // contextCSN values by server ID (store::context_csns through a connection of the caller's).
  using Reader = std::function<Result<std::map<int, std::string>>()>;

  struct Snapshot {
    std::map<int, std::chrono::system_clock::time_point> csn_times;  // by provider server ID
    std::optional<std::chrono::steady_clock::time_point> read_at;    // the last successful read
  };

  ContextCsnMonitor(Reader read, std::chrono::milliseconds interval);
  ~ContextCsnMonitor();
  ContextCsnMonitor(const ContextCsnMonitor&) = delete;
  ContextCsnMonitor& operator=(const ContextCsnMonitor&) = delete;

  void start();
  void stop();
  // One read on the calling thread (start-up, tests).
  void refresh();
  Snapshot snapshot() const;

 private:
  void loop();

  Reader read_;
  std::chrono::milliseconds interval_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  Snapshot last_;
  std::thread thread_;
};

}  // namespace ca::authority
