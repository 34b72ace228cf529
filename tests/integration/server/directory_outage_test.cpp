// The directory goes away under a running ca-server: clients get 503 + Retry-After, nothing is
// half-written, and service resumes by itself when the directory is back.
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

}  // namespace
}  // namespace ca::testing
