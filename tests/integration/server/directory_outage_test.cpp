// The directory goes away under a running ca-server: clients get 503 + Retry-After, nothing is
// half-written, and service resumes by itself when the directory is back.
#include <csignal>
#include <chrono>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "support/ca_server_fixture.hpp"
#include "support/directory_fixture.hpp"

namespace ca::testing {
namespace {

TEST(DirectoryOutageTest, StoppedDirectoryGives503AndServiceResumes) {
  TestDirectory directory(1, true);
  auto endpoint = directory.endpoint();
  CaServer server({.extra_yaml = "", .external = &endpoint, .instance_id = "outage", .replica_id = 1});
  auto init = server.init();
  ASSERT_EQ(init.exit_code, 0) << init.output;
  ASSERT_TRUE(server.start()) << server.log();

  TempDir work("ca-outage");
  auto gen = shell(fmt::format("openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout {0}/k -out {0}/r "
                               "-subj /CN=outage.example.com", work.path().string()));
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  std::string body = fmt::format(R"({{"profile_id":"testServerCert","csr":"{}"}})", json_escape(read_file(work / "r")));
  auto c = server.client();
  auto before = c.post("/ca/rest/certrequests", body);
  ASSERT_EQ(before.status, 201) << before.body;
  int certs = server.count_entries("ou=certificateRepository,ou=ca,o=pki-ca", "(objectClass=caCertificateRecord)");

  directory.slapd->stop();
  for (int i = 0; i < 3; ++i) {
    auto down = c.post("/ca/rest/certrequests", body);
    EXPECT_EQ(down.status, 503) << down.body;
    EXPECT_EQ(json_field(down.body, "error"), "unavailable") << down.body;
    EXPECT_EQ(down.headers["retry-after"], "5");
    auto read = c.get("/ca/rest/certs/" + json_field(before.body, "serial"));
    EXPECT_EQ(read.status, 503) << read.body;
  }

  ASSERT_TRUE(directory.slapd->start(false));
  auto after = c.post("/ca/rest/certrequests", body);
  EXPECT_EQ(after.status, 201) << after.body;
  EXPECT_NE(json_field(after.body, "serial"), json_field(before.body, "serial"));
  EXPECT_EQ(c.get("/ca/rest/certs/" + json_field(before.body, "serial")).status, 200);
  // Exactly one more certificate: the refused attempts left nothing.
  EXPECT_EQ(server.count_entries("ou=certificateRepository,ou=ca,o=pki-ca", "(objectClass=caCertificateRecord)"),
            certs + 1);
}

// A directory that is alive but does not answer (SIGSTOP): every client gets its answer (503)
// within server.request_timeout_ms (directory.timeout_ms + 1000 by default), /readyz takes the
// instance out of rotation within seconds, and both come back by themselves after SIGCONT.
TEST(DirectoryOutageTest, FrozenDirectoryAnswersWithinTheRequestTimeoutAndLeavesRotation) {
  CaServerOptions options;
  options.ca_yaml = "  approval_poll_ms: 600000\n";
  options.extra_yaml = "";
  CaServer server(options);
  auto init = server.init();
  ASSERT_EQ(init.exit_code, 0) << init.output;
  ASSERT_TRUE(server.start()) << server.log();
  TempDir work("ca-frozen");
  auto csr = [&](const std::string& name) {
    auto gen = shell(fmt::format("openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout {0}/{1}.k "
                                 "-out {0}/{1}.r -subj /CN={1}.example.com", work.path().string(), name));
    EXPECT_EQ(gen.exit_code, 0) << gen.output;
    return fmt::format(R"({{"profile_id":"testServerCert","csr":"{}"}})", json_escape(read_file(work / (name + ".r"))));
  };
  auto c = server.client();
  const std::string warm = csr("warm");
  ASSERT_EQ(c.post("/ca/rest/certrequests", warm).status, 201);
  auto wait_ready = [&](int want, std::chrono::seconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      if (c.get("/readyz").status == want) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return false;
  };
  ASSERT_TRUE(wait_ready(200, std::chrono::seconds(10)));

  const pid_t slapd = std::stoi(read_file(server.dir() / "slapd" / "slapd.pid"));
  ASSERT_GT(slapd, 0);
  ASSERT_EQ(::kill(slapd, SIGSTOP), 0);
  constexpr int kClients = 6;
  std::vector<std::string> bodies;
  for (int i = 0; i < kClients; ++i) bodies.push_back(csr(fmt::format("frozen{}", i)));
  std::vector<HttpReply> replies(kClients);
  std::vector<double> seconds(kClients);
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i)
    clients.emplace_back([&, i] {
      const auto start = std::chrono::steady_clock::now();
      replies[i] = server.client().post("/ca/rest/certrequests", bodies[i]);
      seconds[i] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    });
  for (auto& t : clients) t.join();
  // The readiness checks see the frozen directory within their stale bound (1.5 s).
  const bool left_rotation = wait_ready(503, std::chrono::seconds(8));
  auto readyz = c.get("/readyz");
  ::kill(slapd, SIGCONT);
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(replies[i].status, 503) << replies[i].body;
    EXPECT_FALSE(replies[i].headers["retry-after"].empty());
    // request_timeout_ms = 3000 + 1000; a little slack for the machine.
    EXPECT_LT(seconds[i], 5.5) << "client " << i << " waited " << seconds[i] << " s";
  }
  EXPECT_TRUE(left_rotation) << readyz.body;
  EXPECT_NE(readyz.body.find("directory"), std::string::npos) << readyz.body;

  ASSERT_TRUE(wait_ready(200, std::chrono::seconds(15))) << c.get("/readyz").body;
  auto after = c.post("/ca/rest/certrequests", csr("after"));
  EXPECT_EQ(after.status, 201) << after.body;
}

// Sends SIGCONT to a SIGSTOPped process when the test leaves, failed or not.
class ResumeOnExit {
 public:
  explicit ResumeOnExit(pid_t pid) : pid_(pid) {}
  ~ResumeOnExit() { ::kill(pid_, SIGCONT); }
  ResumeOnExit(const ResumeOnExit&) = delete;
  ResumeOnExit& operator=(const ResumeOnExit&) = delete;

 private:
  pid_t pid_;
};

// OCSP has its own answer for "not now" (RFC 6960 2.3): a relying party asking while the directory
// is frozen gets an OCSPResponse tryLater over HTTP 200, before the request deadline would have
// turned the request into a 503.
TEST(DirectoryOutageTest, FrozenDirectoryOcspAnswersTryLaterBeforeTheRequestTimeout) {
  CaServerOptions options;
  options.ca_yaml = "  approval_poll_ms: 600000\n";
  options.extra_yaml = "";
  CaServer server(options);
  auto init = server.init();
  ASSERT_EQ(init.exit_code, 0) << init.output;
  ASSERT_TRUE(server.start()) << server.log();
  TempDir work("ca-frozen-ocsp");
  auto gen = shell(fmt::format("openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout {0}/k "
                               "-out {0}/r -subj /CN=ocsp.example.com", work.path().string()));
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  auto c = server.client();
  auto issued = c.post("/ca/rest/certrequests", fmt::format(R"({{"profile_id":"testServerCert","csr":"{}"}})",
                                                            json_escape(read_file(work / "r"))));
  ASSERT_EQ(issued.status, 201) << issued.body;
  write_file(work / "cert.pem", json_field(issued.body, "certificate"));
  const std::string ca = (server.dir() / "certs" / "ca_signing.pem").string();
  const auto ocsp = [&] {
    return shell(fmt::format("openssl ocsp -issuer {0} -cert {1} -url {2}/ocsp -CAfile {0} -timeout 15 2>&1", ca,
                             (work / "cert.pem").string(), server.http_url()));
  };
  auto before = ocsp();
  ASSERT_NE(before.output.find(": good"), std::string::npos) << before.output;

  const pid_t slapd = std::stoi(read_file(server.dir() / "slapd" / "slapd.pid"));
  ASSERT_GT(slapd, 0);
  ASSERT_EQ(::kill(slapd, SIGSTOP), 0);
  {
    ResumeOnExit resume(slapd);
    const auto start = std::chrono::steady_clock::now();
    auto frozen = ocsp();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    // openssl reports an HTTP error status as a failed query; tryLater means a 200 with an OCSPResponse.
    EXPECT_NE(frozen.output.find("Responder Error: trylater"), std::string::npos) << frozen.output;
    EXPECT_EQ(frozen.output.find("Error querying OCSP responder"), std::string::npos) << frozen.output;
    // request_timeout_ms = directory.timeout_ms (3000) + 1000: tryLater comes well before it.
    EXPECT_LT(seconds, 3.5) << "openssl ocsp waited " << seconds << " s";
  }
  // Back by itself once the directory answers again.
  bool good_again = false;
  for (int i = 0; i < 50 && !good_again; ++i) {
    good_again = ocsp().output.find(": good") != std::string::npos;
    if (!good_again) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_TRUE(good_again) << ocsp().output << server.log();
}

}  // namespace
}  // namespace ca::testing
