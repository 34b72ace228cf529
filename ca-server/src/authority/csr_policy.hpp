#pragma once
// Applies a profile to a parsed CSR: decides what the certificate will say, or why not.
#include <chrono>
#include <string>
#include <vector>

#include "authority/profile.hpp"
#include "core/openssl_owners.hpp"
#include "crypto/csr.hpp"

namespace ca::authority {

struct IssuancePlan {
  ossl::UniquePtr<X509_NAME> subject;
  std::string subject_text;
  std::vector<std::string> dns_names, ip_addresses, emails;
  std::vector<std::string> key_usage, extended_key_usage;
  std::chrono::system_clock::time_point not_before, not_after;
};

// Every refusal is Error::policy with a message that names the profile and the offending value.
Result<IssuancePlan> apply_profile(const Profile& profile, const crypto::ParsedCsr& csr,
                                   std::chrono::system_clock::time_point now);

bool is_valid_dns_name(std::string_view name);

}  // namespace ca::authority
