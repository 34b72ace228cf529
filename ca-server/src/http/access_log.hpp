#pragma once
// The access log: one JSON object per answered request in <instance>/logs/access.log
// (appended, mode 0640). Lines are buffered and written at least once a second, when the buffer
// grows past 64 KiB, and when the log is closed. Fields: time (RFC 3339 UTC, milliseconds), peer,
// method, path (no query string), status, latency_ms, request_id, and when known serial, agent,
// tls_client. Every string is JSON-escaped: a hostile path cannot break a line or forge a field.
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "core/error.hpp"
#include "http/types.hpp"

namespace ca::http {

// An X-Request-Id worth keeping: 1 to 64 characters of [A-Za-z0-9._-].
bool is_sane_request_id(std::string_view id);
// 16 random bytes, hex (32 characters).
std::string new_request_id();
// The client's X-Request-Id if it is sane, else a new one.
std::string choose_request_id(std::string_view from_client);

// One line of the log, newline included.
std::string access_log_line(const CompletedRequest& request);

class AccessLog {
 public:
  // Creates the folder if needed; io error naming the file if it cannot be opened.
  [[nodiscard]] static Result<std::unique_ptr<AccessLog>> open(const std::filesystem::path& file);
  // Writes what is buffered.
  ~AccessLog();
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  // Thread-safe; never blocks on the disk unless the buffer is full.
  void write(const CompletedRequest& request);
  // Writes what is buffered now.
  void flush();
  const std::filesystem::path& file() const { return file_; }

 private:
  AccessLog(std::filesystem::path file, int fd);
  void flush_loop();
  // Writes `text` to the file; logs (at most once a minute) when it cannot.
  void write_out(const std::string& text);

  std::filesystem::path file_;
  int fd_;
  std::mutex write_mutex_;  // one writer of the file at a time, in buffer order
  std::mutex mutex_;
  std::condition_variable wake_;
  std::string buffer_;
  bool stopping_ = false;
  std::chrono::steady_clock::time_point last_error_log_{};
  std::thread flusher_;
};

}  // namespace ca::http
