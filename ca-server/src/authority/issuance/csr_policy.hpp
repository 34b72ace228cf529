#pragma once
// Applies a profile to a parsed CSR: decides what the certificate will say, or why not.
#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "authority/issuance/name_syntax.hpp"
#include "authority/issuance/profile.hpp"
#include "core/openssl_owners.hpp"
#include "crypto/csr.hpp"

namespace ca::authority {

struct IssuancePlan {
  ossl::UniquePtr<X509_NAME> subject;  // rebuilt in the order of the profile's allowed_attributes
  std::string subject_text;
  std::vector<std::string> dns_names, ip_addresses, emails;
  std::vector<std::string> key_usage, extended_key_usage;
  std::chrono::system_clock::time_point not_before, not_after;
};

// What an approving agent may change. Each value still passes the profile's policy.
struct IssuanceOverrides {
  std::optional<int> validity_days;  // 1..profile.validity_days
  // Each replaces the CSR's subjectAltNames of that kind.
  std::optional<std::vector<std::string>> dns_names, ip_addresses, emails;
};

// Every refusal is Error::policy with a message that names the profile and the offending value.
[[nodiscard]] Result<IssuancePlan> apply_profile(const Profile& profile, const crypto::ParsedCsr& csr,
                                                 std::chrono::system_clock::time_point now,
                                                 const IssuanceOverrides& overrides = {});

}  // namespace ca::authority
