#include "authority/issuance/name_syntax.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>

#include <arpa/inet.h>
#include <fmt/format.h>
#include <libpsl.h>

#include "core/caller_text.hpp"

namespace ca::authority {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Loaded once per process and never freed. psl_latest picks the newest of the distribution's
// list (Debian: /usr/share/publicsuffix/public_suffix_list.dafsa) and libpsl's built-in copy.
const psl_ctx_t* public_suffix_list() {
  static const psl_ctx_t* const list = [] {
    const psl_ctx_t* latest = psl_latest(nullptr);
    return latest ? latest : psl_builtin();
  }();
  return list;
}

}  // namespace

bool have_public_suffix_list() { return public_suffix_list() != nullptr; }

// The address in binary (4 or 16 bytes used) and its family, or 0 when `s` is not an address.
int parse_ip(std::string_view s, std::array<unsigned char, 16>& bytes) {
  bytes.fill(0);
  if (s.find('\0') != std::string_view::npos) return 0;
  std::string text(s);
  if (inet_pton(AF_INET, text.c_str(), bytes.data()) == 1) return AF_INET;
  if (inet_pton(AF_INET6, text.c_str(), bytes.data()) == 1) return AF_INET6;
  return 0;
}

std::string canonical_ip(std::string_view s) {
  std::array<unsigned char, 16> bytes{};
  const int family = parse_ip(s, bytes);
  char out[INET6_ADDRSTRLEN];
  if (family == 0 || !inet_ntop(family, bytes.data(), out, sizeof out)) return "";
  return out;
}

std::string lower_ascii(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool is_ip(std::string_view s) {
  std::array<unsigned char, 16> bytes;
  return parse_ip(s, bytes) != 0;
}

bool is_valid_dns_name(std::string_view name) {
  if (name.starts_with("*.")) name.remove_prefix(2);
  if (name.empty() || name.size() > 253) return false;
  std::size_t label = 0;
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (c == '.') {
      if (label == 0 || name[i - 1] == '-') return false;
      label = 0;
      continue;
    }
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
    if (label == 0 && c == '-') return false;
    if (++label > 63) return false;
  }
  return label > 0 && name.back() != '-';
}

bool is_public_suffix(std::string_view domain) {
  std::string d = lower(domain);
  const psl_ctx_t* list = public_suffix_list();
  // Without a list, at least a bare TLD is recognised.
  if (!list) return d.find('.') == std::string::npos;
  // PSL_TYPE_ANY: ICANN and private suffixes; the implicit "*" rule makes unknown TLDs suffixes too.
  return psl_is_public_suffix2(list, d.c_str(), PSL_TYPE_ANY) != 0;
}

bool IpRange::contains(std::string_view address) const {
  std::array<unsigned char, 16> bytes;
  if (parse_ip(address, bytes) != family || family == 0) return false;
  int full = prefix_length / 8, rest = prefix_length % 8;
  if (std::memcmp(bytes.data(), network.data(), static_cast<std::size_t>(full)) != 0) return false;
  if (rest == 0) return true;
  auto mask = static_cast<unsigned char>(0xff << (8 - rest));
  return (bytes[static_cast<std::size_t>(full)] & mask) == network[static_cast<std::size_t>(full)];
}

Result<IpRange> parse_ip_range(std::string_view cidr) {
  auto not_cidr = [&](std::string_view why) {
    return fail(Error::config(fmt::format("'{}' is not a CIDR block ({})", printable_text(cidr), why)));
  };
  auto slash = cidr.find('/');
  if (slash == std::string_view::npos) return not_cidr("expected address/prefix-length, e.g. 10.0.0.0/8 or fd00::/8");
  IpRange range;
  range.family = parse_ip(cidr.substr(0, slash), range.network);
  if (range.family == 0)
    return not_cidr(fmt::format("'{}' is not an IP address", printable_text(cidr.substr(0, slash))));
  std::string_view digits = cidr.substr(slash + 1);
  int max = range.family == AF_INET ? 32 : 128;
  bool numeric = !digits.empty() && digits.size() <= 3 && (digits.size() == 1 || digits[0] != '0') &&
                 std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
  int length = numeric ? std::stoi(std::string(digits)) : -1;
  if (length < 0 || length > max)
    return not_cidr(
        fmt::format("the prefix length of an {} block is 0 to {}", range.family == AF_INET ? "IPv4" : "IPv6", max));
  range.prefix_length = length;
  std::array<unsigned char, 16> masked{};
  for (int bit = 0; bit < length; ++bit)
    masked[static_cast<std::size_t>(bit / 8)] |=
        static_cast<unsigned char>(range.network[static_cast<std::size_t>(bit / 8)] & (0x80 >> (bit % 8)));
  if (masked != range.network) {
    char text[INET6_ADDRSTRLEN] = "";
    inet_ntop(range.family, masked.data(), text, sizeof text);
    return not_cidr(fmt::format("host bits are set; the block is {}/{}", text, length));
  }
  return range;
}

}  // namespace ca::authority
