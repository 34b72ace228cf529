// Serial numbers under load and across restarts, with a real ca-server and its slapd.
#include <csignal>
#include <mutex>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "store/ca_store.hpp"
#include "support/ca_server_fixture.hpp"

namespace ca::testing {
namespace {

std::vector<std::string> make_csrs(const TempDir& dir, int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    auto r = shell(fmt::format("openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout {0}/k{1} "
                               "-out {0}/r{1} -subj /CN=host{1}.example.com",
                               dir.path().string(), i));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    out.push_back(read_file(dir / fmt::format("r{}", i)));
  }
  return out;
}

std::string body(const std::string& csr) {
  return fmt::format(R"({{"profile_id":"testServerCert","csr":"{}"}})", json_escape(csr));
}

// Enrolls `count` certificates over `threads` keep-alive connections; returns the serials.
std::vector<std::string> enroll_concurrently(CaServer& server, const std::vector<std::string>& csrs, int count,
                                             int threads) {
  std::vector<std::string> serials;
  std::mutex m;
  std::vector<std::thread> pool;
  std::atomic<int> next{0};
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      auto c = server.client();
      int i;
      while ((i = next++) < count) {
        auto reply = c.post("/ca/rest/certrequests", body(csrs[static_cast<std::size_t>(i) % csrs.size()]));
        std::lock_guard l(m);
        EXPECT_EQ(reply.status, 201) << reply.body;
        // The counter and replica ID (high bits) must never repeat; the 64 random low bits
        // would make even a reused counter look unique, so they are dropped here.
        if (reply.status == 201) {
          std::string serial = json_field(reply.body, "serial");
          auto number = store::number_of_serial(serial.substr(2));
          EXPECT_TRUE(number) << serial;
          serials.push_back(number ? fmt::format("{:x}", *number) : serial);
        }
      }
    });
  for (auto& t : pool) t.join();
  return serials;
}

TEST(RangesTest, ThousandConcurrentEnrollmentsGiveThousandDistinctSerialsAndARestartReusesNone) {
  TempDir work("ca-ranges");
  auto csrs = make_csrs(work, 8);
  // Tiny ranges so that the run crosses many range switches and background claims.
  CaServer server({.extra_yaml = "", .external = nullptr, .instance_id = "ranges", .replica_id = 1});
  {
    std::string cfg = read_file(server.config_file());
    auto pos = cfg.find("ranges:\n");
    ASSERT_NE(pos, std::string::npos);
    cfg.insert(pos + 8, "  serial_range_size: 50\n  request_range_size: 70\n  low_water_mark: 20\n");
    write_file(server.config_file(), cfg);
  }
  auto init = server.init();
  ASSERT_EQ(init.exit_code, 0) << init.output;
  ASSERT_TRUE(server.start()) << server.log();

  auto first = enroll_concurrently(server, csrs, 1000, 16);
  ASSERT_EQ(first.size(), 1000u);
  std::set<std::string> distinct(first.begin(), first.end());
  EXPECT_EQ(distinct.size(), 1000u);
  EXPECT_EQ(server.count_entries("ou=certificateRepository,ou=ca,o=pki-ca", "(caProfileId=testServerCert)"), 1000);
  EXPECT_EQ(server.count_entries("ou=requests,ou=ca,o=pki-ca", "(caProfileId=testServerCert)"), 1000);

  // A restart continues: no serial handed out before is handed out again.
  ASSERT_EQ(server.stop(), 0) << server.log();
  ASSERT_TRUE(server.start()) << server.log();
  auto second = enroll_concurrently(server, csrs, 200, 8);
  ASSERT_EQ(second.size(), 200u);
  for (const auto& s : second) EXPECT_TRUE(distinct.insert(s).second) << s << " was issued before the restart";

  // A hard kill (no clean shutdown, no final checkpoint) is also survived.
  ::kill(server.pid(), SIGKILL);
  server.stop();
  ASSERT_TRUE(server.start()) << server.log();
  auto third = enroll_concurrently(server, csrs, 100, 4);
  ASSERT_EQ(third.size(), 100u);
  for (const auto& s : third) EXPECT_TRUE(distinct.insert(s).second) << s << " was issued before the kill";
  EXPECT_EQ(server.count_entries("ou=certificateRepository,ou=ca,o=pki-ca", "(caProfileId=testServerCert)"), 1300);
}

}  // namespace
}  // namespace ca::testing
