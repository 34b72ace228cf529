#pragma once
// The PROXY protocol version 2 header (haproxy's proxy-protocol.txt, section 2.2) that a load
// balancer sends before anything else on a connection, so that this server sees the client behind
// it: a 16-byte preamble (12-byte signature, version/command, family/transport, length) and
// `length` bytes of addresses and TLVs. Only the binary version 2 is accepted; the text version 1
// is refused like any other malformed header. Pure parsing: the transport reads the bytes.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace ca::http {

inline constexpr std::size_t kProxyPreambleSize = 16;
// The addresses of an IPv6 connection take 36 bytes; haproxy's optional TLVs (unique id, SSL
// details, authority) fit in a few hundred. Anything longer is refused before it is read.
inline constexpr std::size_t kMaxProxyPayload = 2048;

struct ProxyHeader {
  // PROXY command: the connection relays the client at source_address:source_port. LOCAL command
  // (the balancer's own health checks) or an UNSPEC/UNIX family: no client, use the peer address.
  std::optional<std::string> source_address;  // IP text ("192.0.2.7", "2001:db8::1")
  uint16_t source_port = 0;
  std::size_t size = 0;  // preamble + payload: the bytes that belong to the header
};

// From the first kProxyPreambleSize bytes: how many more bytes the header has (its payload).
// bad_request for a wrong signature, version, command or family, or a payload over
// kMaxProxyPayload or too short for its address family.
[[nodiscard]] Result<std::size_t> proxy_payload_size(std::span<const uint8_t> preamble);

// The whole header (preamble + payload, exactly ProxyHeader::size bytes): bad_request for anything
// proxy_payload_size refuses, or a length that does not match the bytes given.
[[nodiscard]] Result<ProxyHeader> parse_proxy_header(std::span<const uint8_t> header);

// An IPv4 or IPv6 network: "10.0.0.0/8", "::1/128", or a bare address (a /32 or /128).
class AddressRange {
 public:
  // config error naming the text when it is not a network.
  [[nodiscard]] static Result<AddressRange> parse(std::string_view text);
  // Whether `address` (IP text; an IPv4-mapped IPv6 address counts as IPv4) is inside.
  bool contains(std::string_view address) const;
  const std::string& text() const { return text_; }

 private:
  std::vector<uint8_t> network_;  // 4 or 16 bytes
  unsigned prefix_ = 0;
  std::string text_;
};

// Whether any of `ranges` contains `address`.
bool any_contains(const std::vector<AddressRange>& ranges, std::string_view address);

}  // namespace ca::http
