// Revocation, CRLs and OCSP with real clients: curl (with and without an agent certificate),
// openssl crl / verify -crl_check / verify -crl_download / ocsp.
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "support/crl_text.hpp"
#include "support/ca_server_fixture.hpp"

namespace ca::testing {
namespace {

class RevocationTest : public ::testing::Test {
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

  std::string path(const std::string& name) const { return (work_ / name).string(); }
  std::string ca() const { return server_->ca_file().string(); }

  // Enrolls a server certificate for `name`; leaves NAME.pem and NAME.key in the work folder.
  std::string enroll(const std::string& name, const std::string& profile = "testServerCert",
                     const std::string& subject = "") {
    auto r = shell(fmt::format("openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout {} -out {} -subj '{}'",
                               path(name + ".key"), path(name + ".csr"), subject.empty() ? "/CN=" + name + ".example.com" : subject));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    auto reply = server_->client().post(
        "/ca/rest/certrequests",
        fmt::format(R"({{"profile_id":"{}","csr":"{}"}})", profile, json_escape(read_file(work_ / (name + ".csr")))));
    EXPECT_EQ(reply.status, 201) << reply.body;
    write_file(work_ / (name + ".pem"), json_field(reply.body, "certificate"));
    return json_field(reply.body, "serial");
  }

  // POST to an agent endpoint with curl; `cert` empty = no client certificate. Returns "CODE BODY".
  Shell agent_post(const std::string& serial, const std::string& action, const std::string& body,
                   const std::string& cert, const std::string& key) {
    std::string auth = cert.empty() ? "" : fmt::format("--cert {} --key {}", cert, key);
    return shell(fmt::format("curl -s --cacert {} {} -H 'Content-Type: application/json' -d '{}' -w ' %{{http_code}}' "
                             "{}/ca/rest/agent/certs/{}/{}",
                             ca(), auth, body, server_->https_url(), serial, action));
  }
  Shell as_agent(const std::string& serial, const std::string& action, const std::string& body = "{}") {
    return agent_post(serial, action, body, (server_->dir() / "certs/agent.pem").string(),
                      (server_->dir() / "private/agent.key").string());
  }

  // Fetches the full and the delta CRL over plain HTTP until together they list (or no longer list)
  // `serial`: revocations between full CRLs are published in delta CRLs.
  bool wait_for_crl(const std::string& serial, bool listed) {
    for (int i = 0; i < 100; ++i) {
      shell(fmt::format("curl -s -o {} {}/crl/MasterCRL.crl", path("crl.der"), server_->http_url()));
      shell(fmt::format("curl -s -o {} {}/crl/MasterCRL-delta.crl", path("delta.der"), server_->http_url()));
      auto full = shell(fmt::format("openssl crl -inform DER -in {} -noout -text", path("crl.der"))).output;
      auto delta = shell(fmt::format("openssl crl -inform DER -in {} -noout -text", path("delta.der"))).output;
      if (listed_by_full_and_delta(full, delta, serial) == listed) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  std::string ocsp_status(const std::string& name) {
    return shell(fmt::format("openssl ocsp -issuer {0} -cert {1} -url {2}/ocsp -CAfile {0} -no_nonce 2>&1 | grep '^{1}'",
                             ca(), path(name + ".pem"), server_->http_url()))
        .output;
  }

  static CaServer* server_;
  TempDir work_{"ca-revoke"};
};
CaServer* RevocationTest::server_ = nullptr;

TEST_F(RevocationTest, AgentRevokesAndRelyingPartiesSeeItInTheCrlAndOcsp) {
  std::string good = enroll("good");
  std::string bad = enroll("bad");
  EXPECT_NE(ocsp_status("bad").find(": good"), std::string::npos) << ocsp_status("bad");

  auto revoked = as_agent(bad, "revoke", R"({"reason":"keyCompromise","invalidity_date":"2026-01-01T00:00:00Z"})");
  EXPECT_NE(revoked.output.find(" 200"), std::string::npos) << revoked.output;
  EXPECT_NE(revoked.output.find("\"status\":\"REVOKED\""), std::string::npos) << revoked.output;
  ASSERT_TRUE(wait_for_crl(bad, true)) << server_->log();

  // Between full CRLs the revocation is in the delta CRL: it verifies against the CA and says why.
  auto crl = shell(fmt::format("openssl crl -inform DER -in {} -CAfile {} -noout -verify -text", path("delta.der"), ca()));
  EXPECT_NE(crl.output.find("verify OK"), std::string::npos) << crl.output;
  EXPECT_NE(crl.output.find("Delta CRL Indicator"), std::string::npos) << crl.output;
  EXPECT_NE(crl.output.find("Key Compromise"), std::string::npos) << crl.output;
  EXPECT_NE(crl.output.find("Invalidity Date"), std::string::npos) << crl.output;
  auto full = shell(fmt::format("openssl crl -inform DER -in {} -noout -text", path("crl.der"))).output;
  EXPECT_NE(full.find("X509v3 Freshest CRL"), std::string::npos) << full;
  shell(fmt::format("openssl crl -inform DER -in {} -out {}", path("crl.der"), path("crl.pem")));
  shell(fmt::format("openssl crl -inform DER -in {} -out {}", path("delta.der"), path("delta.pem")));
  // A delta-aware relying party (openssl -use_deltas) sees it with the full CRL completed by the delta.
  auto check_revoked = shell(fmt::format("openssl verify -crl_check -use_deltas -CAfile {} -CRLfile {} -CRLfile {} {}", ca(),
                                         path("crl.pem"), path("delta.pem"), path("bad.pem")));
  EXPECT_NE(check_revoked.exit_code, 0) << check_revoked.output;
  EXPECT_NE(check_revoked.output.find("certificate revoked"), std::string::npos) << check_revoked.output;
  auto check_good = shell(fmt::format("openssl verify -crl_check -use_deltas -CAfile {} -CRLfile {} -CRLfile {} {}", ca(),
                                      path("crl.pem"), path("delta.pem"), path("good.pem")));
  EXPECT_EQ(check_good.exit_code, 0) << check_good.output;
  // The certificate's distribution point and Freshest CRL lead to the same answer: openssl downloads both.
  auto download = shell(fmt::format("openssl verify -crl_check -crl_download -use_deltas -CAfile {} {}", ca(), path("bad.pem")));
  EXPECT_NE(download.exit_code, 0) << download.output;
  EXPECT_NE(download.output.find("certificate revoked"), std::string::npos) << download.output;
  EXPECT_EQ(shell(fmt::format("openssl verify -crl_check -crl_download -use_deltas -CAfile {} {}", ca(), path("good.pem"))).exit_code, 0);

  EXPECT_NE(ocsp_status("bad").find(": revoked"), std::string::npos) << ocsp_status("bad");
  EXPECT_NE(ocsp_status("good").find(": good"), std::string::npos) << ocsp_status("good");
}

TEST_F(RevocationTest, UnauthorizedAndInvalidRequestsChangeNothing) {
  std::string serial = enroll("victim");
  auto user_serial = enroll("user", "testUserCert", "/CN=Mallory");
  auto none = agent_post(serial, "revoke", "{}", "", "");
  EXPECT_NE(none.output.find(" 401"), std::string::npos) << none.output;
  EXPECT_NE(none.output.find("\"error\":\"unauthorized\""), std::string::npos) << none.output;
  auto not_agent = agent_post(serial, "revoke", "{}", path("user.pem"), path("user.key"));
  EXPECT_NE(not_agent.output.find(" 403"), std::string::npos) << not_agent.output;
  EXPECT_NE(as_agent(serial, "revoke", R"({"reason":"becauseISaidSo"})").output.find(" 400"), std::string::npos);
  EXPECT_NE(as_agent("0x7ffffffffff1", "revoke").output.find(" 404"), std::string::npos);
  EXPECT_NE(as_agent("zzz", "revoke").output.find(" 400"), std::string::npos);
  auto c = server_->client();
  EXPECT_EQ(json_field(c.get("/ca/rest/certs/" + serial).body, "status"), "VALID");
  // Revoking twice: 409, and unrevoking something not on hold: 409.
  EXPECT_NE(as_agent(serial, "revoke", R"({"reason":"superseded"})").output.find(" 200"), std::string::npos);
  EXPECT_NE(as_agent(serial, "revoke", R"({"reason":"superseded"})").output.find(" 409"), std::string::npos);
  EXPECT_NE(as_agent(serial, "unrevoke").output.find(" 409"), std::string::npos);
  EXPECT_EQ(json_field(c.get("/ca/rest/certs/" + serial).body, "status"), "REVOKED");
  (void)user_serial;
}

TEST_F(RevocationTest, UnrevokingAHoldTakesTheEntryOffTheNextCrl) {
  std::string serial = enroll("held");
  EXPECT_NE(as_agent(serial, "revoke", R"({"reason":"certificateHold"})").output.find(" 200"), std::string::npos);
  ASSERT_TRUE(wait_for_crl(serial, true));
  EXPECT_NE(ocsp_status("held").find(": revoked"), std::string::npos);
  auto undo = as_agent(serial, "unrevoke");
  EXPECT_NE(undo.output.find(" 200"), std::string::npos) << undo.output;
  ASSERT_TRUE(wait_for_crl(serial, false));
  EXPECT_NE(ocsp_status("held").find(": good"), std::string::npos);
  // The delta CRL says removeFromCRL.
  shell(fmt::format("curl -s -o {} '{}/ca/ee/ca/getCRL?op=getDeltaCRL&crlIssuingPoint=MasterCRL'", path("delta.der"),
                    server_->http_url()));
  auto delta = shell(fmt::format("openssl crl -inform DER -in {} -CAfile {} -noout -verify -text", path("delta.der"), ca()));
  EXPECT_NE(delta.output.find("verify OK"), std::string::npos) << delta.output;
  EXPECT_NE(delta.output.find("Delta CRL Indicator"), std::string::npos) << delta.output;
  EXPECT_EQ(crl_listing(delta.output, serial), CrlListing::removed_from_crl) << delta.output;
}

TEST_F(RevocationTest, CrlCachingHeadersAndConditionalGet) {
  auto first = shell(fmt::format("curl -s -D - -o /dev/null {}/crl/MasterCRL.crl", server_->http_url())).output;
  EXPECT_NE(first.find("200 OK"), std::string::npos) << first;
  EXPECT_NE(first.find("application/pkix-crl"), std::string::npos) << first;
  EXPECT_NE(first.find("Cache-Control: public, max-age="), std::string::npos) << first;
  auto etag_pos = first.find("ETag: ");
  ASSERT_NE(etag_pos, std::string::npos) << first;
  std::string etag = first.substr(etag_pos + 6, first.find('\r', etag_pos) - etag_pos - 6);
  auto again = shell(fmt::format("curl -s -o /dev/null -w '%{{http_code}}' -H 'If-None-Match: {}' {}/crl/MasterCRL.crl", etag,
                                 server_->http_url())).output;
  EXPECT_EQ(again, "304");
  auto dogtag = shell(fmt::format("curl -s -o /dev/null -w '%{{http_code}}' '{}/ca/ee/ca/getCRL?op=getCRL&crlIssuingPoint=MasterCRL'",
                                  server_->http_url())).output;
  EXPECT_EQ(dogtag, "200");
  EXPECT_EQ(shell(fmt::format("curl -s -o /dev/null -w '%{{http_code}}' '{}/ca/ee/ca/getCRL?crlIssuingPoint=Other'",
                              server_->http_url())).output, "404");
}

TEST_F(RevocationTest, MalformedOcspGetsMalformedRequestNotACrash) {
  write_file(work_ / "junk.bin", "this is not DER");
  shell(fmt::format("curl -s -o {} -H 'Content-Type: application/ocsp-request' --data-binary @{} {}/ocsp", path("resp.der"),
                    path("junk.bin"), server_->http_url()));
  std::string resp = read_file(work_ / "resp.der");
  // OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED malformedRequest(1) }
  EXPECT_EQ(resp, std::string("\x30\x03\x0a\x01\x01", 5));
  EXPECT_EQ(server_->client().get("/ca/rest/info").status, 200);  // still serving
}

TEST_F(RevocationTest, CrlNumbersStrictlyIncreaseAcrossARestart) {
  auto number = [&] {
    shell(fmt::format("curl -s -o {} {}/crl/MasterCRL.crl", path("n.der"), server_->http_url()));
    auto out = shell(fmt::format("openssl crl -inform DER -in {} -noout -crlnumber", path("n.der"))).output;
    auto eq = out.find('=');
    return eq == std::string::npos ? -1L : std::stol(out.substr(eq + 1), nullptr, 16);
  };
  long before = number();
  ASSERT_GT(before, 0);
  ASSERT_EQ(server_->stop(), 0);
  ASSERT_TRUE(server_->start()) << server_->log();
  // At once the restarted server serves the stored CRL (never an older one); the CRL it publishes
  // on start is served from its activation time on (crl.activation_delay_ms, 1 s).
  long after = number();
  EXPECT_GE(after, before);
  for (int i = 0; i < 50 && after <= before; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    after = number();
  }
  EXPECT_GT(after, before);
}

}  // namespace
}  // namespace ca::testing
