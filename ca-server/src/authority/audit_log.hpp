#pragma once
// The audit trail of sensitive operations (key archival and recovery): one JSON object per line
// in <instance>/logs/audit.log (mode 0600), appended and flushed to disk before the operation is
// answered, and echoed to the service log. Each line: time, instance, event, who, what, outcome.
#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>

namespace ca::authority {

class AuditLog {
 public:
  AuditLog(std::filesystem::path file, std::string instance_id);
  // Never fails the operation it records: a write error is logged loudly instead.
  void record(std::string_view event, std::string_view who, std::string_view what, std::string_view outcome);
  const std::filesystem::path& file() const { return file_; }

 private:
  std::filesystem::path file_;
  std::string instance_id_;
  std::mutex mutex_;
};

}  // namespace ca::authority
