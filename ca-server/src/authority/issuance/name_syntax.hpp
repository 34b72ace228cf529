#pragma once
// The syntax of the names a certificate may carry (host names, IP addresses and blocks) and the
// Public Suffix List: facts about names, no policy. Profiles check their patterns with these when
// they are loaded, and the CSR policy checks each requested name.
#include <array>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace ca::authority {

// Host name syntax (LDH labels, '_' tolerated, an optional "*." in front); says nothing of policy.
bool is_valid_dns_name(std::string_view name);

// True for a public suffix or a top-level domain ("com", "co.uk", "github.io", and any unknown
// TLD such as "internal"), by the Public Suffix List that libpsl loads once per process. `domain`
// is compared in lower case.
bool is_public_suffix(std::string_view domain);
// Whether a list was loaded (without one only a bare TLD counts as a public suffix).
bool have_public_suffix_list();

// The address in binary (4 or 16 bytes used) and its family (AF_INET, AF_INET6), or 0 when `s`
// is not an address.
int parse_ip(std::string_view s, std::array<unsigned char, 16>& bytes);
bool is_ip(std::string_view s);
// The canonical text of an address (inet_ntop's form: "::1", "10.0.0.1"), or "" when `s` is not one.
std::string canonical_ip(std::string_view s);
// ASCII letters in lower case, everything else as it is (names compare case-insensitively).
std::string lower_ascii(std::string_view s);

// A CIDR block: the network address with no host bits set, and its prefix length.
struct IpRange {
  int family = 0;                           // AF_INET or AF_INET6
  std::array<unsigned char, 16> network{};  // the first 4 bytes for IPv4
  int prefix_length = 0;

  // `address` in textual form; an IPv4 address never falls in an IPv6 block (nor IPv4-mapped
  // IPv6 addresses in an IPv4 block).
  bool contains(std::string_view address) const;
};
// "10.0.0.0/8", "fd00::/8", "192.0.2.7/32". Fails (Error::config) with "'<text>' is not a CIDR block..."
[[nodiscard]] Result<IpRange> parse_ip_range(std::string_view cidr);

}  // namespace ca::authority
