#pragma once
// Archived keys and their M-of-N recoveries.
#include <functional>

#include "core/error.hpp"
#include "store/records.hpp"

namespace ca::store {

class KeyArchiveStore {
 public:
  virtual ~KeyArchiveStore() = default;

  // Key archival: the request, certificate and archived key written as one unit.
  virtual void commit_enrollment_with_key(RequestRecord request, CertificateRecord certificate, KeyRecord key,
                                          std::function<void(Status)> done) = 0;
  virtual Result<KeyRecord> find_key_by_serial(std::string_view serial_hex) = 0;
  virtual Result<KeyRecord> find_key(std::string_view key_id) = 0;
  virtual Status add_recovery(const RecoveryRecord& recovery) = 0;
  virtual Result<RecoveryRecord> find_recovery(std::string_view id) = 0;
  virtual Result<std::vector<RecoveryRecord>> list_recoveries(std::string_view state) = 0;
  // One approval, as a compare-and-set on the approval count (`seen` approvals before this one):
  // conflict when another approval came first (re-read and try again) or when this approver has
  // approved already (the message says which). `complete`: the state moves pending -> approved.
  virtual Status approve_recovery(std::string_view id, std::string_view approver, int seen, bool complete) = 0;
  // pending|approved -> `to` as a compare-and-set on `from`; conflict when the state was not `from`.
  virtual Status transition_recovery(std::string_view id, std::string_view from, std::string_view to,
                                     std::string_view result) = 0;
};

}  // namespace ca::store
