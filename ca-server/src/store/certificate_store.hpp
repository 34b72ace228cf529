#pragma once
// Certificates and requests: enrollment units, look-ups, listings, the request workflow.
#include <functional>
#include <optional>
#include <utility>

#include "core/error.hpp"
#include "store/records.hpp"

namespace ca::store {

// What a batch commit should also record about this instance (see GroupCommitWriter).
struct CounterCheckpoint {
  int replica_id = 0;
  uint64_t serial_next = 0;
  uint64_t request_next = 0;
};

class CertificateStore {
 public:
  virtual ~CertificateStore() = default;

  // Durably stores an enrollment (request + certificate) as one all-or-nothing unit; `done` runs
  // on a store thread once the directory has committed it, or with the error.
  virtual void commit_enrollment(RequestRecord request, std::optional<CertificateRecord> certificate,
                                 std::function<void(Status)> done) = 0;
  // Registers the source of the counter checkpoint written with every commit batch.
  virtual void set_checkpoint_source(std::function<CounterCheckpoint()> source) = 0;

  virtual Result<CertificateRecord> find_certificate(std::string_view serial_hex) = 0;
  virtual Result<bool> certificate_exists(std::string_view serial_hex) = 0;
  virtual Result<RequestRecord> find_request(std::string_view id_hex) = 0;
  virtual Result<CertificatePage> list_certificates(const CertificateQuery& query) = 0;

  // Compare-and-set of a request's state: succeeds only if the stored state is `expected_state`
  // (conflict otherwise, not_found for no such request). Atomic on one directory server.
  virtual Status transition_request(std::string_view id_hex, std::string_view expected_state,
                                    const RequestTransition& transition) = 0;
  // Issues an approved request as one unit: adds the certificate and moves the request from
  // approved to complete with its serial (and, when `group` is set, adds `member` to it). When the
  // request is no longer approved the unit fails with conflict and the certificate is removed again.
  virtual void commit_approved_request(const RequestRecord& request, CertificateRecord certificate,
                                       std::optional<std::pair<std::string, std::string>> group_member,
                                       std::function<void(Status)> done) = 0;
  virtual Result<RequestPage> list_requests(const RequestQuery& query) = 0;
};

}  // namespace ca::store
