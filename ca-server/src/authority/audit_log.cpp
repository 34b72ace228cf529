#include "authority/audit_log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>

#include <fmt/format.h>

#include "core/log.hpp"
#include "store/records.hpp"

namespace ca::authority {

namespace {

// A JSON string literal (RFC 8259): quotes, backslashes and control characters escaped.
std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      out += fmt::format("\\u{:04x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

}  // namespace

AuditLog::AuditLog(std::filesystem::path file, std::string instance_id)
    : file_(std::move(file)), instance_id_(std::move(instance_id)) {}

void AuditLog::record(std::string_view event, std::string_view who, std::string_view what, std::string_view outcome) {
  std::string text = fmt::format("{{\"time\":{},\"instance\":{},\"event\":{},\"who\":{},\"what\":{},\"outcome\":{}}}\n",
                                 json_string(store::to_generalized_time(std::chrono::system_clock::now())),
                                 json_string(instance_id_), json_string(event), json_string(who), json_string(what),
                                 json_string(outcome));
  log::info("audit", "{} by {}: {} ({})", event, who, what, outcome);
  std::lock_guard lock(mutex_);
  std::error_code ec;
  std::filesystem::create_directories(file_.parent_path(), ec);
  int fd = ::open(file_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    log::error("audit", "cannot open {}: {}", file_.string(), std::strerror(errno));
    return;
  }
  bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fdatasync(fd) == 0;
  if (!written) log::error("audit", "cannot write {}: {}", file_.string(), std::strerror(errno));
  ::close(fd);
}

}  // namespace ca::authority
