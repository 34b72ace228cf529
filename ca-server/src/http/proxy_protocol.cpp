#include "http/proxy_protocol.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <charconv>

#include <fmt/format.h>

namespace ca::http {

namespace {

constexpr std::array<uint8_t, 12> kSignature = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr uint8_t kCommandLocal = 0x0;
constexpr uint8_t kCommandProxy = 0x1;
constexpr uint8_t kFamilyUnspec = 0x0;
constexpr uint8_t kFamilyInet = 0x1;
constexpr uint8_t kFamilyInet6 = 0x2;
constexpr uint8_t kFamilyUnix = 0x3;
// Source address, destination address, source port, destination port.
constexpr std::size_t kInetAddressesSize = 4 + 4 + 2 + 2;
constexpr std::size_t kInet6AddressesSize = 16 + 16 + 2 + 2;
constexpr std::size_t kUnixAddressesSize = 108 + 108;

Error malformed(std::string_view why) { return Error::bad_request(fmt::format("PROXY protocol header: {}", why)); }

uint16_t read_u16(std::span<const uint8_t> bytes, std::size_t at) {
  return static_cast<uint16_t>((bytes[at] << 8) | bytes[at + 1]);
}

// An IP address as 4 or 16 bytes; IPv4-mapped IPv6 addresses as their 4 IPv4 bytes.
std::optional<std::vector<uint8_t>> address_bytes(std::string_view text) {
  const std::string copy(text);
  std::array<uint8_t, 16> raw{};
  if (inet_pton(AF_INET, copy.c_str(), raw.data()) == 1) return std::vector<uint8_t>(raw.begin(), raw.begin() + 4);
  if (inet_pton(AF_INET6, copy.c_str(), raw.data()) != 1) return std::nullopt;
  constexpr std::array<uint8_t, 12> kMappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::equal(kMappedPrefix.begin(), kMappedPrefix.end(), raw.begin()))
    return std::vector<uint8_t>(raw.begin() + 12, raw.end());
  return std::vector<uint8_t>(raw.begin(), raw.end());
}

}  // namespace

Result<std::size_t> proxy_payload_size(std::span<const uint8_t> preamble) {
  if (preamble.size() < kProxyPreambleSize) return fail(malformed("shorter than its 16-byte preamble"));
  if (!std::equal(kSignature.begin(), kSignature.end(), preamble.begin()))
    return fail(malformed("no version 2 signature (a client that is not the load balancer, or PROXY v1)"));
  const uint8_t version = preamble[12] >> 4;
  const uint8_t command = preamble[12] & 0x0F;
  if (version != 2) return fail(malformed(fmt::format("version {} (2 is expected)", version)));
  if (command != kCommandLocal && command != kCommandProxy)
    return fail(malformed(fmt::format("unknown command {}", command)));
  const uint8_t family = preamble[13] >> 4;
  const std::size_t length = read_u16(preamble, 14);
  if (length > kMaxProxyPayload)
    return fail(
        malformed(fmt::format("{} bytes of addresses and TLVs; at most {} are accepted", length, kMaxProxyPayload)));
  if (command == kCommandLocal) return length;
  std::size_t needed = 0;
  switch (family) {
    case kFamilyUnspec:
      needed = 0;
      break;
    case kFamilyInet:
      needed = kInetAddressesSize;
      break;
    case kFamilyInet6:
      needed = kInet6AddressesSize;
      break;
    case kFamilyUnix:
      needed = kUnixAddressesSize;
      break;
    default:
      return fail(malformed(fmt::format("unknown address family {}", family)));
  }
  if (length < needed)
    return fail(malformed(fmt::format("{} bytes are too short for the addresses of family {}", length, family)));
  return length;
}

Result<ProxyHeader> parse_proxy_header(std::span<const uint8_t> header) {
  CA_TRY(const std::size_t payload, proxy_payload_size(header));
  if (header.size() != kProxyPreambleSize + payload)
    return fail(
        malformed(fmt::format("{} bytes given for a header of {}", header.size(), kProxyPreambleSize + payload)));
  ProxyHeader out;
  out.size = header.size();
  const uint8_t command = header[12] & 0x0F;
  const uint8_t family = header[13] >> 4;
  if (command == kCommandLocal) return out;
  const auto addresses = header.subspan(kProxyPreambleSize);
  char text[INET6_ADDRSTRLEN] = {};
  if (family == kFamilyInet) {
    if (!inet_ntop(AF_INET, addresses.data(), text, sizeof text)) return fail(malformed("unreadable IPv4 source"));
    out.source_address = text;
    out.source_port = read_u16(addresses, 8);
  } else if (family == kFamilyInet6) {
    if (!inet_ntop(AF_INET6, addresses.data(), text, sizeof text)) return fail(malformed("unreadable IPv6 source"));
    out.source_address = text;
    out.source_port = read_u16(addresses, 32);
  }
  return out;
}

Result<AddressRange> AddressRange::parse(std::string_view text) {
  const auto refuse = [&] {
    return fail(Error::config(
        fmt::format("'{}' is not an IP network (expected e.g. 10.0.0.0/8, ::1/128 or an address)", text)));
  };
  const auto slash = text.find('/');
  auto network = address_bytes(text.substr(0, slash));
  if (!network) return refuse();
  const unsigned max_prefix = static_cast<unsigned>(network->size() * 8);
  unsigned prefix = max_prefix;
  if (slash != std::string_view::npos) {
    const auto digits = text.substr(slash + 1);
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
    if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty()) return refuse();
    // An IPv4-mapped IPv6 network (::ffff:10.0.0.0/104) is kept as its IPv4 network.
    if (network->size() == 4 && text.find(':') != std::string_view::npos) {
      if (prefix < 96) return refuse();
      prefix -= 96;
    }
    if (prefix > max_prefix) return refuse();
  }
  AddressRange range;
  range.network_ = std::move(*network);
  range.prefix_ = prefix;
  range.text_ = std::string(text);
  return range;
}

bool AddressRange::contains(std::string_view address) const {
  const auto bytes = address_bytes(address);
  if (!bytes || bytes->size() != network_.size()) return false;
  unsigned left = prefix_;
  for (std::size_t i = 0; i < network_.size() && left > 0; ++i) {
    const unsigned bits = std::min(left, 8u);
    const auto mask = static_cast<uint8_t>(0xFF << (8 - bits));
    if (((*bytes)[i] & mask) != (network_[i] & mask)) return false;
    left -= bits;
  }
  return true;
}

bool any_contains(const std::vector<AddressRange>& ranges, std::string_view address) {
  return std::ranges::any_of(ranges, [&](const AddressRange& range) { return range.contains(address); });
}

}  // namespace ca::http
