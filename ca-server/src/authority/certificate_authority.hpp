#pragma once
// The authority: turns an enrollment request into a signed certificate that is durably recorded.
// Linear flow: parse CSR -> apply profile -> number -> sign -> commit (request + certificate) -> answer.
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include "authority/profile.hpp"
#include "authority/range_allocator.hpp"
#include "core/config.hpp"
#include "core/openssl_owners.hpp"
#include "crypto/certificate_builder.hpp"
#include "store/ca_store.hpp"

namespace ca::authority {

struct EnrollmentResult {
  std::string request_id_hex;
  std::string request_status;  // "complete"
  std::string serial_hex;
  std::string certificate_pem;
  std::string subject_dn;
  std::string profile_id;
};

struct CaInfo {
  std::string subject_dn;
  std::string serial_hex;
  std::string certificate_pem;  // the chain: our CA certificate (self-signed root)
  std::string not_after;
  std::string key_type;
  std::string version;
  std::string instance_id;
  int replica_id = 0;
  std::string serial_generator;
};

struct CounterStatus {
  RangeState serials, requests;
};

class CertificateAuthority {
 public:
  // Loads the CA signing certificate and key from the instance folder, the profiles from the
  // directory and the counter ranges from this instance's replica entry.
  static Result<std::unique_ptr<CertificateAuthority>> open(const InstanceConfig& config, store::CaStore& store);
  ~CertificateAuthority();

  using EnrollmentCallback = std::function<void(Result<EnrollmentResult>)>;
  // Validation and signing happen on the calling thread; `done` runs once the records are
  // durable (on a store thread) or at once on error. Nothing is written for a rejected request.
  void enroll(const std::string& profile_id, const std::string& csr_pem, EnrollmentCallback done);

  Result<store::RequestRecord> find_request(std::string_view id_hex);
  Result<store::CertificateRecord> find_certificate(std::string_view serial_hex);
  Result<store::CertificatePage> list_certificates(const store::CertificateQuery& query);
  std::vector<Profile> profiles() const;
  // Re-reads the profiles from the directory (a profile added on one instance reaches all).
  Status reload_profiles();
  CaInfo info() const;
  CounterStatus counters() const;
  // For the CRL and OCSP signers of this instance (borrowed, alive as long as the authority).
  X509* ca_certificate() const { return ca_cert_.get(); }
  EVP_PKEY* ca_private_key() const { return ca_key_.get(); }

 private:
  CertificateAuthority(const InstanceConfig& config, store::CaStore& store);
  Result<std::string> next_serial_hex();

  InstanceConfig config_;
  store::CaStore& store_;
  ossl::UniquePtr<X509> ca_cert_;
  ossl::UniquePtr<EVP_PKEY> ca_key_;
  std::optional<crypto::CertificateSigner> signer_;  // caches what every signature needs
  std::string ca_cert_pem_;
  std::string ca_subject_;
  std::chrono::system_clock::time_point ca_not_after_ = std::chrono::system_clock::time_point::max();
  std::unique_ptr<RangeAllocator> serials_;
  std::unique_ptr<RangeAllocator> requests_;
  mutable std::shared_mutex profiles_mutex_;
  std::map<std::string, Profile> profiles_;
  std::atomic<std::chrono::steady_clock::rep> last_profile_reload_{0};
};

// Persists both allocators' ranges in the replica entry of this instance.
Status persist_counters(store::CaStore& store, const InstanceConfig& config, const RangeAllocator* serials,
                        const RangeAllocator& requests);

}  // namespace ca::authority
