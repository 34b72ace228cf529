// ca-server end to end: a real server process, its embedded slapd, curl/openssl/ldapsearch as clients.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "support/ca_server_fixture.hpp"

namespace ca::testing {
namespace {

const std::string kCerts = "ou=certificateRepository,ou=ca,o=pki-ca";
const std::string kRequests = "ou=requests,ou=ca,o=pki-ca";

std::string make_csr(const TempDir& dir, const std::string& name, const std::string& openssl_args) {
  auto r = shell(fmt::format("openssl req -new -nodes -keyout {0}/{1}.key -out {0}/{1}.csr {2}", dir.path().string(),
                             name, openssl_args));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return read_file(dir / (name + ".csr"));
}

std::string enrollment_body(const std::string& profile, const std::string& csr) {
  return fmt::format(R"({{"profile_id":"{}","csr":"{}"}})", profile, json_escape(csr));
}

class EnrollmentTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new CaServer();
    auto init = server_->init();
    ASSERT_EQ(init.exit_code, 0) << init.output;
    ASSERT_TRUE(server_->start()) << server_->log();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(server_, nullptr); }
  int certificates() { return server_->count_entries(kCerts, "(objectClass=caCertificateRecord)"); }
  int requests() { return server_->count_entries(kRequests, "(objectClass=caRequestRecord)"); }

  static CaServer* server_;
  TempDir work_{"ca-enroll"};
};
CaServer* EnrollmentTest::server_ = nullptr;

TEST_F(EnrollmentTest, IssuedCertificateVerifiesWithOpensslAndIsInTheDirectory) {
  std::string csr = make_csr(work_, "web", "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj /O=Example/CN=web.example.com "
                                           "-addext subjectAltName=DNS:web.example.com,DNS:alt.example.com,IP:10.0.0.1");
  auto c = server_->client();
  auto reply = c.post("/ca/rest/certrequests", enrollment_body("testServerCert", csr));
  ASSERT_EQ(reply.status, 201) << reply.body;
  std::string serial = json_field(reply.body, "serial");
  std::string request_id = json_field(reply.body, "request_id");
  EXPECT_EQ(json_field(reply.body, "status"), "complete");
  ASSERT_TRUE(serial.starts_with("0x")) << reply.body;
  write_file(work_ / "web.pem", json_field(reply.body, "certificate"));

  auto verify = shell(fmt::format("openssl verify -CAfile {} {}", server_->ca_file().string(), (work_ / "web.pem").string()));
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  EXPECT_NE(verify.output.find(": OK"), std::string::npos) << verify.output;
  auto text = shell(fmt::format("openssl x509 -noout -text -in {}", (work_ / "web.pem").string()));
  EXPECT_NE(text.output.find("DNS:web.example.com"), std::string::npos) << text.output;
  EXPECT_NE(text.output.find("IP Address:10.0.0.1"), std::string::npos) << text.output;
  EXPECT_NE(text.output.find("TLS Web Server Authentication"), std::string::npos) << text.output;
  auto serial_line = shell(fmt::format("openssl x509 -noout -serial -in {}", (work_ / "web.pem").string()));
  std::string hex = serial.substr(2);
  std::string upper;
  for (char ch : hex) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  EXPECT_NE(serial_line.output.find(upper), std::string::npos) << serial_line.output << " vs " << serial;

  // The records, read back with the real ldapsearch.
  auto ldap = shell(fmt::format("ldapsearch -LLL -x -H '{}' -D '{}' -y '{}' -b 'cn={},{}' -s base caCertStatus caSubjectDN caRequestId",
                                server_->ldap_url(), server_->bind_dn(), server_->password_file().string(), hex, kCerts));
  EXPECT_EQ(ldap.exit_code, 0) << ldap.output;
  EXPECT_NE(ldap.output.find("caCertStatus: VALID"), std::string::npos) << ldap.output;
  EXPECT_NE(ldap.output.find("caSubjectDN: CN=web.example.com,O=Example"), std::string::npos) << ldap.output;

  auto cert = c.get("/ca/rest/certs/" + serial);
  ASSERT_EQ(cert.status, 200) << cert.body;
  EXPECT_EQ(json_field(cert.body, "status"), "VALID");
  EXPECT_EQ(json_field(cert.body, "certificate"), read_file(work_ / "web.pem"));
  // The request record is the requester's (with the secret from the answer) and the agents'.
  EXPECT_EQ(c.get("/ca/rest/certrequests/" + request_id).status, 401);
  EXPECT_EQ(c.get("/ca/rest/certrequests/" + request_id + "?secret=00112233").status, 403);
  auto req = c.get("/ca/rest/certrequests/" + request_id + "?secret=" + json_field(reply.body, "request_secret"));
  ASSERT_EQ(req.status, 200) << req.body;
  EXPECT_EQ(json_field(req.body, "serial"), serial);
  EXPECT_EQ(json_field(req.body, "status"), "complete");
}

TEST_F(EnrollmentTest, EveryKeyTypeTheProfileAllowsIsIssued) {
  struct Case {
    const char* name;
    const char* args;
  } cases[] = {{"rsa2048", "-newkey rsa:2048"},
               {"p384", "-newkey ec -pkeyopt ec_paramgen_curve:P-384"},
               {"ed25519", "-newkey ed25519"}};
  auto c = server_->client();
  for (const auto& k : cases) {
    SCOPED_TRACE(k.name);
    std::string csr = make_csr(work_, k.name, std::string(k.args) + " -subj /CN=" + k.name + ".example.com");
    auto reply = c.post("/ca/rest/certrequests", enrollment_body("testServerCert", csr));
    ASSERT_EQ(reply.status, 201) << reply.body;
    write_file(work_ / "leaf.pem", json_field(reply.body, "certificate"));
    auto verify = shell(fmt::format("openssl verify -CAfile {} {}", server_->ca_file().string(), (work_ / "leaf.pem").string()));
    EXPECT_EQ(verify.exit_code, 0) << verify.output;
  }
}

TEST_F(EnrollmentTest, BadInputsGetPreciseErrorsAndLeaveNothingBehind) {
  std::string good = make_csr(work_, "good", "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj /CN=good.example.com");
  std::string sha1 = make_csr(work_, "sha1", "-newkey rsa:2048 -sha1 -subj /CN=sha1.example.com");
  std::string small_rsa = make_csr(work_, "rsa1024", "-newkey rsa:1024 -subj /CN=small.example.com");
  std::string no_cn = make_csr(work_, "nocn", "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj /O=NoName");
  std::string tampered = good;
  tampered[tampered.size() / 2] = tampered[tampered.size() / 2] == 'A' ? 'B' : 'A';
  struct Case {
    const char* name;
    std::string body;
    std::string content_type;
    int status;
    const char* error;
    const char* message_part;
  } cases[] = {
      {"malformed json", "{\"profile_id\": ", "application/json", 400, "bad_request", ""},
      {"not json", "profile=x", "application/x-www-form-urlencoded", 415, "unsupported_media_type", ""},
      {"missing csr", R"({"profile_id":"testServerCert"})", "application/json", 400, "bad_request", "csr"},
      {"unknown profile", enrollment_body("noSuchProfile", good), "application/json", 400, "bad_request", "noSuchProfile"},
      {"garbage csr", enrollment_body("testServerCert", "hello"), "application/json", 400, "bad_request", ""},
      {"tampered csr", enrollment_body("testServerCert", tampered), "application/json", 400, "bad_request", ""},
      {"sha1 csr", enrollment_body("testServerCert", sha1), "application/json", 400, "bad_request", "SHA-1"},
      {"rsa 1024", enrollment_body("testServerCert", small_rsa), "application/json", 400, "policy_violation", "1024"},
      {"no cn", enrollment_body("testServerCert", no_cn), "application/json", 400, "policy_violation", "CN"},
      {"too large", enrollment_body("testServerCert", std::string(200000, 'A')), "application/json", 413,
       "payload_too_large", ""},
  };
  int certs_before = certificates(), requests_before = requests();
  ASSERT_GE(certs_before, 0);
  auto c = server_->client();
  for (const auto& k : cases) {
    SCOPED_TRACE(k.name);
    auto reply = c.post("/ca/rest/certrequests", k.body, k.content_type);
    EXPECT_EQ(reply.status, k.status) << reply.body;
    EXPECT_EQ(json_field(reply.body, "error"), k.error) << reply.body;
    EXPECT_FALSE(json_field(reply.body, "message").empty()) << reply.body;
    EXPECT_NE(json_field(reply.body, "message").find(k.message_part), std::string::npos) << reply.body;
  }
  EXPECT_EQ(certificates(), certs_before);
  EXPECT_EQ(requests(), requests_before);
  EXPECT_EQ(c.get("/ca/rest/certs/0x7fffffffff").status, 404);
  EXPECT_EQ(c.get("/ca/rest/certs/not-a-serial").status, 400);
  EXPECT_EQ(c.get("/ca/rest/certrequests/0x7fffffffff?secret=00").status, 404);
}

TEST_F(EnrollmentTest, InfoProfilesAndListing) {
  auto c = server_->client();
  auto info = c.get("/ca/rest/info");
  ASSERT_EQ(info.status, 200);
  EXPECT_NE(info.body.find("CN=Test CA,O=Example"), std::string::npos) << info.body;
  EXPECT_NE(json_field(info.body, "certificate_chain").find("BEGIN CERTIFICATE"), std::string::npos) << info.body;
  auto profiles = c.get("/ca/rest/profiles");
  ASSERT_EQ(profiles.status, 200);
  EXPECT_NE(profiles.body.find("testServerCert"), std::string::npos);
  EXPECT_NE(profiles.body.find("testUserCert"), std::string::npos);
  auto list = c.get("/ca/rest/certs?profile=testServerCert&size=2");
  ASSERT_EQ(list.status, 200) << list.body;
  EXPECT_NE(list.body.find("\"entries\""), std::string::npos);
  EXPECT_EQ(c.get("/ca/rest/certs?size=0").status, 400);
  EXPECT_EQ(c.get("/ca/rest/nothing").status, 404);
}

TEST_F(EnrollmentTest, UserProfileTakesEmailAndRefusesDnsNames) {
  auto c = server_->client();
  std::string ok_csr = make_csr(work_, "user", "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj '/CN=Alice Example/emailAddress=alice@example.com' "
                                               "-addext subjectAltName=email:alice@example.com");
  auto reply = c.post("/ca/rest/certrequests", enrollment_body("testUserCert", ok_csr));
  ASSERT_EQ(reply.status, 201) << reply.body;
  write_file(work_ / "user.pem", json_field(reply.body, "certificate"));
  auto text = shell(fmt::format("openssl x509 -noout -text -in {}", (work_ / "user.pem").string()));
  EXPECT_NE(text.output.find("email:alice@example.com"), std::string::npos) << text.output;
  EXPECT_NE(text.output.find("TLS Web Client Authentication"), std::string::npos) << text.output;
  std::string dns_csr = make_csr(work_, "user2", "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj /CN=Bob -addext subjectAltName=DNS:bob.example.com");
  auto refused = c.post("/ca/rest/certrequests", enrollment_body("testUserCert", dns_csr));
  EXPECT_EQ(refused.status, 400) << refused.body;
  EXPECT_EQ(json_field(refused.body, "error"), "policy_violation");
}

}  // namespace
}  // namespace ca::testing
