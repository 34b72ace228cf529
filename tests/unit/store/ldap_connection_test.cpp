// LdapConnection without a directory: what it does against peers that are not (or no longer) slapd.
#include "store/ldap/ldap_connection.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace ca::store {
namespace {

// A TCP port on 127.0.0.1 whose kernel completes connections (listen backlog) but whose owner
// never accepts them: to a client it looks like a frozen server.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0)
      return;
    port_ = ntohs(address.sin_port);
  }
  ~SilentListener() {
    if (fd_ >= 0) ::close(fd_);
  }
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;
  unsigned short port() const { return port_; }

 private:
  int fd_ = -1;
  unsigned short port_ = 0;
};

TEST(LdapConnectionTest, AnLdapsPeerThatNeverAnswersTheTlsHandshakeIsUnreachableWithinTheTimeout) {
  SilentListener frozen;
  ASSERT_NE(frozen.port(), 0);
  auto started = std::chrono::steady_clock::now();
  auto conn =
      LdapConnection::open(LdapEndpoint{fmt::format("ldaps://127.0.0.1:{}/", frozen.port()), "cn=nobody", "x", 400});
  auto took = std::chrono::steady_clock::now() - started;
  ASSERT_FALSE(conn);
  EXPECT_TRUE(conn.error().is(ErrorCode::unavailable)) << conn.error().message;
  // Three attempts of 400 ms each, and the short pauses between them.
  EXPECT_LT(took, std::chrono::seconds(5)) << conn.error().message;
}

}  // namespace
}  // namespace ca::store
