#pragma once
// Applies a profile to a parsed CSR: decides what the certificate will say, or why not.
#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "authority/profile.hpp"
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

// Host name syntax (LDH labels, '_' tolerated, an optional "*." in front); says nothing of policy.
bool is_valid_dns_name(std::string_view name);

// True for a public suffix or a top-level domain ("com", "co.uk", "github.io", and any unknown
// TLD such as "internal"), by the Public Suffix List that libpsl loads once per process. `domain`
// is compared in lower case.
bool is_public_suffix(std::string_view domain);

// A CIDR block: the network address with no host bits set, and its prefix length.
struct IpRange {
  int family = 0;                            // AF_INET or AF_INET6
  std::array<unsigned char, 16> network{};   // the first 4 bytes for IPv4
  int prefix_length = 0;

  // `address` in textual form; an IPv4 address never falls in an IPv6 block (nor IPv4-mapped
  // IPv6 addresses in an IPv4 block).
  bool contains(std::string_view address) const;
};
// "10.0.0.0/8", "fd00::/8", "192.0.2.7/32". Fails (Error::config) with "'<text>' is not a CIDR block..."
[[nodiscard]] Result<IpRange> parse_ip_range(std::string_view cidr);

}  // namespace ca::authority
