#include "http/access_log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstring>

#include <fmt/format.h>
#include <openssl/rand.h>

#include "core/json_text.hpp"
#include "core/log.hpp"

namespace ca::http {

namespace {

constexpr std::string_view kLog = "access-log";
constexpr std::size_t kFlushAt = std::size_t{64} * 1024;
// A disk slower than the requests: past this, the request that overflows writes itself.
constexpr std::size_t kWriteInlineAt = std::size_t{8} * 1024 * 1024;
constexpr auto kFlushInterval = std::chrono::seconds(1);

void add_field(std::string& line, std::string_view name, std::string_view value) {
  line += ",\"";
  line += name;
  line += "\":";
  append_json_string(line, value);
}

}  // namespace

bool is_sane_request_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  return std::ranges::all_of(id, [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
  });
}

std::string new_request_id() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    // The CSPRNG failing is not a reason to drop a request: an id only has to be unlikely to repeat.
    static std::atomic<uint64_t> fallback{0};
    return fmt::format("{:016x}{:016x}",
                       static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()), ++fallback);
  }
  std::string out;
  out.reserve(2 * sizeof bytes);
  for (unsigned char b : bytes) out += fmt::format("{:02x}", b);
  return out;
}

std::string choose_request_id(std::string_view from_client) {
  return is_sane_request_id(from_client) ? std::string(from_client) : new_request_id();
}

std::string access_log_line(const CompletedRequest& r) {
  std::string line = "{\"time\":";
  append_json_string(line, log::rfc3339_milliseconds(r.received));
  add_field(line, "peer", r.peer);
  add_field(line, "method", r.method);
  add_field(line, "path", r.path);
  line += fmt::format(",\"status\":{},\"latency_ms\":{:.3f}", r.status,
                      std::chrono::duration<double, std::milli>(r.latency).count());
  add_field(line, "request_id", r.request_id);
  if (!r.serial.empty()) add_field(line, "serial", r.serial);
  if (!r.agent.empty()) add_field(line, "agent", r.agent);
  if (!r.tls_client.empty()) add_field(line, "tls_client", r.tls_client);
  line += "}\n";
  return line;
}

Result<std::unique_ptr<AccessLog>> AccessLog::open(const std::filesystem::path& file) {
  std::error_code ec;
  std::filesystem::create_directories(file.parent_path(), ec);
  if (ec) return fail(Error::io(fmt::format("cannot create {}: {}", file.parent_path().string(), ec.message())));
  const int fd = ::open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return fail(Error::io(fmt::format("cannot open {}: {}", file.string(), std::strerror(errno))));
  return std::unique_ptr<AccessLog>(new AccessLog(file, fd));
}

AccessLog::AccessLog(std::filesystem::path file, int fd) : file_(std::move(file)), fd_(fd) {
  flusher_ = std::thread([this] { flush_loop(); });
}

AccessLog::~AccessLog() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  flusher_.join();
  flush();
  ::close(fd_);
}

void AccessLog::write(const CompletedRequest& request) {
  std::string line = access_log_line(request);
  bool inline_write = false;
  {
    std::lock_guard lock(mutex_);
    buffer_ += line;
    if (buffer_.size() >= kWriteInlineAt)
      inline_write = true;
    else if (buffer_.size() >= kFlushAt)
      wake_.notify_one();
  }
  if (inline_write) flush();
}

void AccessLog::flush() {
  // The write lock is taken first so that two flushes write their buffers in order.
  std::lock_guard writing(write_mutex_);
  std::string text;
  {
    std::lock_guard lock(mutex_);
    text.swap(buffer_);
  }
  if (!text.empty()) write_out(text);
}

void AccessLog::write_out(const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd_, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const auto now = std::chrono::steady_clock::now();
      if (now - last_error_log_ > std::chrono::minutes(1)) {
        last_error_log_ = now;
        log::error(kLog, "cannot write {}: {} ({} bytes of access log lost)", file_.string(), std::strerror(errno),
                   text.size() - done);
      }
      return;
    }
    done += static_cast<std::size_t>(n);
  }
}

void AccessLog::flush_loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, kFlushInterval, [this] { return stopping_ || buffer_.size() >= kFlushAt; });
    lock.unlock();
    flush();
    lock.lock();
  }
}

}  // namespace ca::http
