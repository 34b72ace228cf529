#pragma once
// What this instance reads of another instance's directory to judge replication
// (authority/cluster/replication_lag.hpp): the newest change it holds of each server, and the
// numbers of the CRLs stored there.
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "core/error.hpp"
#include "store/records.hpp"

namespace ca::store {

struct PeerCrlNumbers {
  uint64_t crl_number = 0;    // of the latest full CRL
  uint64_t delta_number = 0;  // of the latest delta CRL (0 = none)
  TimePoint serve_from{};     // of the latest publication
  bool operator==(const PeerCrlNumbers&) const = default;
};

class PeerDirectory {
 public:
  virtual ~PeerDirectory() = default;
  // The change sequence number (CSN text) of the newest change it holds, by server ID.
  [[nodiscard]] virtual Result<std::map<int, std::string>> change_stamps() = 0;
  // The numbers of the master CRLs it holds; nullopt when it holds none.
  [[nodiscard]] virtual Result<std::optional<PeerCrlNumbers>> crl_numbers() = 0;
};

// Opens another instance's directory by its URL; null when this instance cannot (yet).
using PeerDirectoryOpener = std::function<std::shared_ptr<PeerDirectory>(const std::string& url)>;

}  // namespace ca::store
