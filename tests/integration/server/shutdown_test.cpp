// ca-server stopping while enrollments wait for a frozen directory: the group-commit writer still
// holds their record units, whose callbacks answer through the HTTP server and call back into the
// authority. The shutdown must let them finish while both are alive, exit 0 and leave no
// half-written enrollment. Under the ASan build, the old order (server and authority destroyed
// before the writer stopped) shows here as a heap-use-after-free in the server's log.
#include <gtest/gtest.h>

#include <csignal>
#include <set>
#include <thread>

#include <sys/wait.h>

#include <fmt/format.h>

#include "support/ca_server_fixture.hpp"

namespace ca::testing {
namespace {

const std::string kCerts = "ou=certificateRepository,ou=ca,o=pki-ca";
const std::string kRequests = "ou=requests,ou=ca,o=pki-ca";

std::string make_csr(const TempDir& dir, const std::string& name) {
  auto r = shell(fmt::format("openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout {0}/{1}.key "
                             "-out {0}/{1}.csr -subj /O=Example/CN={1}.example.com",
                             dir.path().string(), name));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return read_file(dir / (name + ".csr"));
}

std::string enrollment_body(const std::string& csr) {
  return fmt::format(R"({{"profile_id":"testServerCert","csr":"{}"}})", json_escape(csr));
}

// The caRequestId values of the records under `base`, read with the real ldapsearch.
std::multiset<std::string> request_ids(const CaServer& server, const std::string& base, const std::string& filter) {
  auto r = shell(fmt::format("ldapsearch -LLL -x -H '{}' -D '{}' -y '{}' -b '{}' -s one '{}' caRequestId",
                             server.ldap_url(), server.bind_dn(), server.password_file().string(), base, filter));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  std::multiset<std::string> ids;
  std::size_t pos = 0;
  while ((pos = r.output.find("caRequestId: ", pos)) != std::string::npos) {
    pos += 13;
    ids.insert(r.output.substr(pos, r.output.find('\n', pos) - pos));
  }
  return ids;
}

bool wait_for_log(const CaServer& server, const std::string& text, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (server.log().find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

TEST(ShutdownTest, EnrollmentsWaitingForAFrozenDirectoryFinishBeforeTheServerGoes) {
  // The approval poller stays idle: it would block on the frozen directory too and blur the order.
  CaServerOptions options;
  options.ca_yaml = "  approval_poll_ms: 600000\n";
  CaServer server(options);
  auto init = server.init();
  ASSERT_EQ(init.exit_code, 0) << init.output;
  ASSERT_TRUE(server.start()) << server.log();
  TempDir work("ca-shutdown");
  {
    auto warm = server.client().post("/ca/rest/certrequests", enrollment_body(make_csr(work, "warm")));
    ASSERT_EQ(warm.status, 201) << warm.body;  // the writers hold open connections now
  }
  constexpr int kClients = 6;
  std::vector<std::string> bodies;
  for (int i = 0; i < kClients; ++i) bodies.push_back(enrollment_body(make_csr(work, fmt::format("host{}", i))));

  const pid_t slapd = std::stoi(read_file(server.dir() / "slapd" / "slapd.pid"));
  ASSERT_GT(slapd, 0);
  ASSERT_EQ(::kill(slapd, SIGSTOP), 0);
  std::vector<HttpReply> replies(kClients);
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i)
    clients.emplace_back([&, i] { replies[i] = server.client().post("/ca/rest/certrequests", bodies[i]); });
  // Signed and queued for the directory by now (no directory read on the way for an open profile).
  std::this_thread::sleep_for(std::chrono::seconds(1));
  ASSERT_EQ(::kill(server.pid(), SIGTERM), 0);
  // Draining: nothing new is accepted (a balancer's next connection goes elsewhere) while the
  // requests in flight are still being finished.
  bool refused = false;
  for (int i = 0; i < 40 && !refused; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    refused = server.client().get("/healthz").status == 0;
  }
  EXPECT_TRUE(refused) << "a new connection was still served after SIGTERM";
  // The HTTP server gives up on the waiting requests after its grace period (server.shutdown_grace_ms, 5 s); the old
  // shutdown destroyed it right after that, with the writer's units still out. The directory
  // comes back well before the writer's own timeout (10 s), so every unit completes.
  const bool http_stopped = wait_for_log(server, "http: stopped", std::chrono::seconds(20));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ::kill(slapd, SIGCONT);
  for (auto& t : clients) t.join();
  ASSERT_TRUE(http_stopped) << server.log();

  const int status = server.stop();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status " << status << "\n" << server.log();
  const std::string report = server.sanitizer_report();
  ASSERT_TRUE(report.empty()) << report;
  std::set<std::string> answered_serials;
  for (const auto& r : replies) {
    // An answer (issued, or refused as unavailable), or a connection closed without one.
    EXPECT_TRUE(r.status == 0 || r.status == 201 || r.status == 503) << r.status << " " << r.body;
    if (r.status == 201) answered_serials.insert(json_field(r.body, "serial"));
  }

  // Nothing half-written: every certificate record has its request record, and every certificate
  // a client was given is recorded.
  ASSERT_TRUE(server.start()) << server.log();
  auto certificates = request_ids(server, kCerts, "(objectClass=caCertificateRecord)");
  auto requests = request_ids(server, kRequests, "(objectClass=caRequestRecord)");
  EXPECT_GE(certificates.size(), 1u + answered_serials.size());
  for (const auto& id : certificates) EXPECT_TRUE(requests.contains(id)) << "certificate of request " << id << " has no request record";
  for (const auto& serial : answered_serials) {
    auto c = server.client().get("/ca/rest/certs/" + serial);
    EXPECT_EQ(c.status, 200) << serial << " was issued to a client but is not recorded: " << c.body;
  }
}

}  // namespace
}  // namespace ca::testing
