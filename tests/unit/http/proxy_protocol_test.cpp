#include "http/proxy_protocol.hpp"

#include <arpa/inet.h>

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "http/client_limits.hpp"

namespace ca::http {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes preamble(uint8_t version_command, uint8_t family, uint16_t length) {
  Bytes b = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
  b.push_back(version_command);
  b.push_back(family);
  b.push_back(static_cast<uint8_t>(length >> 8));
  b.push_back(static_cast<uint8_t>(length & 0xFF));
  return b;
}

void append_address(Bytes& b, int af, const char* text) {
  uint8_t raw[16];
  ASSERT_EQ(inet_pton(af, text, raw), 1);
  b.insert(b.end(), raw, raw + (af == AF_INET ? 4 : 16));
}

void append_port(Bytes& b, uint16_t port) {
  b.push_back(static_cast<uint8_t>(port >> 8));
  b.push_back(static_cast<uint8_t>(port & 0xFF));
}

Result<ProxyHeader> parse(const Bytes& b) { return parse_proxy_header(b); }

TEST(ProxyProtocol, ParsesAnIpv4Client) {
  auto b = preamble(0x21, 0x11, 12);
  append_address(b, AF_INET, "203.0.113.7");
  append_address(b, AF_INET, "10.0.0.1");
  append_port(b, 40000);
  append_port(b, 8443);
  ASSERT_EQ(proxy_payload_size(b).value_or(0), 12u);
  auto h = parse(b);
  ASSERT_TRUE(h) << h.error().message;
  EXPECT_EQ(h->source_address.value_or(""), "203.0.113.7");
  EXPECT_EQ(h->source_port, 40000);
  EXPECT_EQ(h->size, 28u);
}

TEST(ProxyProtocol, ParsesAnIpv6ClientWithTlvsAfterTheAddresses) {
  auto b = preamble(0x21, 0x21, 36 + 7);
  append_address(b, AF_INET6, "2001:db8::1");
  append_address(b, AF_INET6, "2001:db8::2");
  append_port(b, 5555);
  append_port(b, 443);
  b.insert(b.end(), {0x04, 0x00, 0x04, 'a', 'b', 'c', 'd'});  // a TLV (PP2_TYPE_NOOP), ignored
  auto h = parse(b);
  ASSERT_TRUE(h) << h.error().message;
  EXPECT_EQ(h->source_address.value_or(""), "2001:db8::1");
  EXPECT_EQ(h->source_port, 5555);
}

TEST(ProxyProtocol, TheLocalCommandNamesNoClient) {
  auto h = parse(preamble(0x20, 0x00, 0));
  ASSERT_TRUE(h) << h.error().message;
  EXPECT_FALSE(h->source_address);
  EXPECT_EQ(h->size, 16u);
}

TEST(ProxyProtocol, MalformedHeadersAreRefused) {
  struct Case {
    const char* name;
    Bytes bytes;
  };
  Bytes wrong_signature = preamble(0x21, 0x11, 12);
  wrong_signature[3] = 'X';
  wrong_signature.resize(28);
  const std::string v1 = "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n";
  Bytes text_v1(v1.begin(), v1.end());
  Bytes truncated = preamble(0x21, 0x11, 12);
  truncated.resize(20);
  Bytes short_for_family = preamble(0x21, 0x21, 12);
  short_for_family.resize(28);
  Bytes version_one = preamble(0x11, 0x11, 12);
  version_one.resize(28);
  Bytes unknown_command = preamble(0x23, 0x11, 12);
  unknown_command.resize(28);
  Bytes too_long = preamble(0x21, 0x11, 0xFFFF);
  const Case cases[] = {{"wrong signature", wrong_signature}, {"PROXY v1 text", text_v1},
                        {"truncated", truncated},             {"too short for IPv6", short_for_family},
                        {"version 1 in binary", version_one}, {"unknown command", unknown_command},
                        {"longer than accepted", too_long},   {"preamble only", Bytes(10, 0)}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto h = parse(c.bytes);
    ASSERT_FALSE(h);
    EXPECT_EQ(h.error().code, ErrorCode::bad_request);
  }
}

TEST(ProxyProtocol, TrustedNetworksDecideWhoMaySendTheHeader) {
  auto v4 = AddressRange::parse("10.1.0.0/16");
  auto v6 = AddressRange::parse("2001:db8::/32");
  auto one = AddressRange::parse("127.0.0.1");
  ASSERT_TRUE(v4 && v6 && one);
  const std::vector<AddressRange> trusted = {*v4, *v6, *one};
  EXPECT_TRUE(any_contains(trusted, "10.1.200.3"));
  EXPECT_TRUE(any_contains(trusted, "::ffff:10.1.0.9"));  // IPv4-mapped, as a dual-stack socket shows it
  EXPECT_TRUE(any_contains(trusted, "2001:db8:5::1"));
  EXPECT_TRUE(any_contains(trusted, "127.0.0.1"));
  EXPECT_FALSE(any_contains(trusted, "127.0.0.2"));  // an untrusted peer: refused at accept
  EXPECT_FALSE(any_contains(trusted, "10.2.0.1"));
  EXPECT_FALSE(any_contains(trusted, "2001:db9::1"));
  EXPECT_FALSE(any_contains(trusted, "not an address"));
  for (const char* bad : {"10.0.0.0/33", "::/129", "10.0.0.0/", "example.com", "10.0.0.0/8x", ""}) {
    SCOPED_TRACE(bad);
    auto r = AddressRange::parse(bad);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::config);
  }
}

TEST(ConnectionsPerClient, CapsEachAddressAndFreesSlotsWhenConnectionsClose) {
  ConnectionsPerClient limits(2);
  auto a1 = limits.try_open("192.0.2.1"), a2 = limits.try_open("192.0.2.1");
  EXPECT_TRUE(a1 && a2);
  EXPECT_FALSE(limits.try_open("192.0.2.1"));
  EXPECT_TRUE(limits.try_open("192.0.2.2"));  // another address is not affected
  a1 = ClientConnectionSlot();
  EXPECT_EQ(limits.open("192.0.2.1"), 1);
  EXPECT_TRUE(limits.try_open("192.0.2.1"));
}

TEST(RequestRateLimiter, ATokenBucketPerAddress) {
  RequestRateLimiter limiter({.per_second = 10, .burst = 3});
  const auto t0 = RequestRateLimiter::Clock::time_point{} + std::chrono::hours(1);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(limiter.acquire("192.0.2.1", t0).count(), 0) << i;
  const auto wait = limiter.acquire("192.0.2.1", t0);
  EXPECT_GT(wait.count(), 0);
  EXPECT_LE(wait.count(), 100);
  EXPECT_EQ(limiter.acquire("192.0.2.2", t0).count(), 0);  // its own bucket
  EXPECT_EQ(limiter.acquire("192.0.2.1", t0 + std::chrono::milliseconds(100)).count(), 0);  // one token back
  EXPECT_GT(limiter.acquire("192.0.2.1", t0 + std::chrono::milliseconds(100)).count(), 0);
  RequestRateLimiter off({.per_second = 0});
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(off.acquire("192.0.2.1", t0).count(), 0);
}

TEST(RequestRateLimiter, MemoryStaysBoundedUnderManyAddresses) {
  RequestRateLimiter limiter({.per_second = 1, .burst = 1, .max_clients = 100});
  const auto t0 = RequestRateLimiter::Clock::time_point{} + std::chrono::hours(1);
  for (int i = 0; i < 10000; ++i) (void)limiter.acquire("10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256), t0);
  // Still limits a client seen just now.
  (void)limiter.acquire("192.0.2.9", t0);
  EXPECT_GT(limiter.acquire("192.0.2.9", t0).count(), 0);
}

}  // namespace
}  // namespace ca::http
