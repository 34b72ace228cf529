// Who may get which certificate, and who is an agent: every attack is tried against a real
// ca-server (and its slapd) with real clients (curl, openssl s_client), and each refusal is
// checked to have changed nothing in the directory.
#include <gtest/gtest.h>

#include <thread>

#include <fmt/format.h>

#include "support/bad_csr.hpp"
#include "support/ca_server_fixture.hpp"

namespace ca::testing {
namespace {

const std::string kCerts = "ou=certificateRepository,ou=ca,o=pki-ca";
const std::string kRequests = "ou=requests,ou=ca,o=pki-ca";

// A profile with a name policy, open (auth: none) so that only the policy decides.
const std::string kPolicyProfiles = std::string(kTestProfiles) + R"(
policyServerCert:
  name: Names below example.com only
  auth: none
  validity_days: 90
  subject: {require_cn: true, allowed_attributes: [C, O, OU, CN]}
  san: {dns: true, ip: true, email: false, max: 10, copy_cn_to_dns: true,
        dns_names: [.example.com], wildcards: true, ip_ranges: [10.0.0.0/8]}
  key_usage: [digitalSignature]
  extended_key_usage: [serverAuth]
)";

struct Reply {
  int status = 0;
  std::string body;
};

class AuthorizationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    CaServerOptions o;
    o.profiles_yaml = kPolicyProfiles;
    o.extra_yaml = "";
    server_ = new CaServer(o);
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
  std::string agent_cert() const { return server_->agent_cert().string(); }
  std::string agent_key() const { return server_->agent_key().string(); }

  // One HTTPS call with curl; cert/key empty = anonymous. base empty = the server's HTTPS URL.
  Reply call(const std::string& method, const std::string& target, const std::string& body = "",
             const std::string& cert = "", const std::string& key = "", const std::string& base = "") {
    std::string auth = cert.empty() ? "" : fmt::format("--cert {} --key {}", cert, key);
    std::string data;
    if (!body.empty()) {
      write_file(work_ / "body.json", body);
      data = fmt::format("-H 'Content-Type: application/json' --data-binary @{}", path("body.json"));
    }
    auto r = shell(fmt::format("curl -s --cacert {} {} -X {} {} -o {} -w '%{{http_code}}' '{}{}'",
                               server_->ca_file().string(), auth, method, data, path("reply.json"),
                               base.empty() ? server_->https_url() : base, target));
    Reply out;
    try {
      out.status = std::stoi(r.output);
    } catch (...) {
      out.status = -1;
    }
    out.body = read_file(work_ / "reply.json");
    return out;
  }
  Reply as_agent(const std::string& method, const std::string& target, const std::string& body = "") {
    return call(method, target, body, agent_cert(), agent_key());
  }

  // A CSR made by the openssl command line; NAME.key and NAME.csr stay in the work folder.
  std::string csr(const std::string& name, const std::string& subject, const std::string& sans = "") {
    auto r = shell(fmt::format("openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout {} -out {} "
                               "-subj '{}' {}",
                               path(name + ".key"), path(name + ".csr"), subject,
                               sans.empty() ? "" : "-addext subjectAltName=" + sans));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return read_file(work_ / (name + ".csr"));
  }
  static std::string body(const std::string& profile, const std::string& csr, const std::string& code = "") {
    if (code.empty()) return fmt::format(R"({{"profile_id":"{}","csr":"{}"}})", profile, json_escape(csr));
    return fmt::format(R"({{"profile_id":"{}","csr":"{}","enrollment_code":"{}"}})", profile, json_escape(csr), code);
  }
  // Enrolls through an open test profile; NAME.pem (and NAME.key) in the work folder.
  std::string enroll_open(const std::string& name, const std::string& subject, const std::string& profile) {
    auto reply = call("POST", "/ca/rest/certrequests", body(profile, csr(name, subject)));
    EXPECT_EQ(reply.status, 201) << reply.body;
    write_file(work_ / (name + ".pem"), json_field(reply.body, "certificate"));
    return json_field(reply.body, "serial");
  }
  std::string status_of(const std::string& serial) {
    return json_field(server_->client().get("/ca/rest/certs/" + serial).body, "status");
  }
  int records() {
    return server_->count_entries(kCerts, "(objectClass=caCertificateRecord)") +
           server_->count_entries(kRequests, "(objectClass=caRequestRecord)");
  }
  std::string new_code(const std::string& json) {
    auto r = as_agent("POST", "/ca/rest/agent/enrollment-codes", json);
    EXPECT_EQ(r.status, 201) << r.body;
    return json_field(r.body, "enrollment_code");
  }

  static CaServer* server_;
  TempDir work_{"ca-authz"};
};
CaServer* AuthorizationTest::server_ = nullptr;

TEST_F(AuthorizationTest, ACertificateWithAnAgentsNameIsNotAnAgent) {
  // The attack: a certificate whose subject copies the agent's (visible in the listing).
  std::string victim = enroll_open("victim", "/CN=victim.example.com", "testServerCert");
  std::string borrowed = enroll_open("borrowed", "/O=Example/CN=CA Administrator", "testUserCert");
  auto text = shell(fmt::format("openssl x509 -noout -subject -in {}", path("borrowed.pem")));
  ASSERT_NE(text.output.find("CN = CA Administrator"), std::string::npos) << text.output;
  auto r = call("POST", "/ca/rest/agent/certs/" + victim + "/revoke", "{}", path("borrowed.pem"), path("borrowed.key"));
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_NE(r.body.find("is not in the group"), std::string::npos) << r.body;
  EXPECT_EQ(status_of(victim), "VALID");
  // Nor can it approve, list the queue or make enrollment codes.
  EXPECT_EQ(call("GET", "/ca/rest/agent/certrequests?status=pending", "", path("borrowed.pem"), path("borrowed.key")).status, 403);
  EXPECT_EQ(call("POST", "/ca/rest/agent/enrollment-codes", R"({"profile_id":"caServerCert"})", path("borrowed.pem"),
                 path("borrowed.key")).status, 403);
  // Anonymous: 401 everywhere an agent is needed.
  EXPECT_EQ(call("POST", "/ca/rest/agent/certs/" + victim + "/revoke", "{}").status, 401);
  EXPECT_EQ(call("GET", "/ca/rest/agent/certrequests").status, 401);
  EXPECT_EQ(call("POST", "/ca/rest/agent/certrequests/1/approve", "{}").status, 401);
  EXPECT_EQ(call("POST", "/ca/rest/agent/enrollment-codes", R"({"profile_id":"caServerCert"})").status, 401);
  EXPECT_EQ(status_of(victim), "VALID");
}

TEST_F(AuthorizationTest, ARevokedAgentIsRefusedOnItsNextRequestAlsoOverAResumedTlsSession) {
  // A second agent, made by the operator's tool against the running instance.
  auto add = shell(fmt::format("{} agent add --config {} --subject 'CN=Second Agent,O=Example' --out {}",
                               ca_server_binary().string(), server_->config_file().string(), path("agent2")));
  ASSERT_EQ(add.exit_code, 0) << add.output;
  auto list = shell(fmt::format("{} agent list --config {}", ca_server_binary().string(), server_->config_file().string()));
  ASSERT_NE(list.output.find("CN=Second Agent,O=Example"), std::string::npos) << list.output;
  // The serial of the new agent certificate, from its own line (log lines may hold hex too).
  auto serial_start = add.output.find("0x", add.output.find("added agent: "));
  ASSERT_NE(serial_start, std::string::npos) << add.output;
  std::string agent2_serial = add.output.substr(serial_start, add.output.find(' ', serial_start) - serial_start);
  std::string cert2 = path("agent2/agent-" + agent2_serial.substr(2) + ".pem");
  std::string key2 = path("agent2/agent-" + agent2_serial.substr(2) + ".key");

  std::string target = enroll_open("target", "/CN=target.example.com", "testServerCert");
  // First request over s_client, saving the TLS session; the agent may list the queue.
  auto request = [&](const std::string& session_flag) {
    write_file(work_ / "http.txt", fmt::format("GET /ca/rest/agent/certrequests HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                              "Connection: close\r\n\r\n"));
    return shell(fmt::format("openssl s_client -connect 127.0.0.1:{} -CAfile {} -cert {} -key {} -tls1_2 {} "
                             "-ign_eof < {} 2>&1",
                             server_->port(), server_->ca_file().string(), cert2, key2, session_flag, path("http.txt")));
  };
  auto first = request("-sess_out " + path("session.pem"));
  EXPECT_NE(first.output.find("HTTP/1.1 200"), std::string::npos) << first.output;
  // The first agent revokes the second one's certificate.
  auto revoke = as_agent("POST", "/ca/rest/agent/certs/" + agent2_serial + "/revoke", R"({"reason":"keyCompromise"})");
  ASSERT_EQ(revoke.status, 200) << revoke.body;
  // The same TLS session resumed (no new handshake, no certificate check by TLS): still refused.
  auto resumed = request("-sess_in " + path("session.pem"));
  EXPECT_NE(resumed.output.find("Reused, TLSv1.2"), std::string::npos) << resumed.output;
  EXPECT_NE(resumed.output.find("HTTP/1.1 403"), std::string::npos) << resumed.output;
  EXPECT_NE(resumed.output.find("is REVOKED"), std::string::npos) << resumed.output;
  auto again = call("POST", "/ca/rest/agent/certs/" + target + "/revoke", "{}", cert2, key2);
  EXPECT_TRUE(again.status == 403 || again.status == 0 || again.status == -1) << again.status << " " << again.body;
  EXPECT_EQ(status_of(target), "VALID");

  // The operator removes it from the agents; the list no longer shows it.
  auto removed = shell(fmt::format("{} agent remove --config {} --serial {}", ca_server_binary().string(),
                                   server_->config_file().string(), agent2_serial));
  EXPECT_EQ(removed.exit_code, 0) << removed.output;
  list = shell(fmt::format("{} agent list --config {}", ca_server_binary().string(), server_->config_file().string()));
  EXPECT_EQ(list.output.find("CN=Second Agent"), std::string::npos) << list.output;
  EXPECT_NE(list.output.find("CN=CA Administrator"), std::string::npos) << list.output;
}

TEST_F(AuthorizationTest, NamesOutsideTheProfileArePolicyErrorsAndLeaveNothingBehind) {
  const int before = records();
  struct Case {
    const char* name;
    std::string profile, subject, sans;
    const char* message;
  };
  const std::vector<Case> cases{
      {"wildcard over a TLD", "policyServerCert", "/CN=*.com", "", "public suffix"},
      {"wildcard over a public suffix", "policyServerCert", "/CN=x.example.com", "DNS:*.co.uk", "public suffix"},
      {"wildcard where the profile allows none", "testServerCert", "/CN=*.example.com", "", "wildcard"},
      {"name outside the patterns", "policyServerCert", "/CN=host.example.org", "", "host.example.org"},
      {"bare TLD", "testServerCert", "/CN=com", "", "public suffix"},
      {"IP outside the ranges", "policyServerCert", "/CN=a.example.com", "IP:192.168.1.1", "192.168.1.1"},
      {"two CNs", "testServerCert", "/CN=a.example.com/CN=b.example.com", "", "one CN"},
      {"attribute not listed", "policyServerCert", "/CN=a.example.com/L=Paris", "", "L"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = call("POST", "/ca/rest/certrequests", body(c.profile, csr("n", c.subject, c.sans)));
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(json_field(r.body, "error"), "policy_violation") << r.body;
    EXPECT_NE(json_field(r.body, "message").find(c.message), std::string::npos) << r.body;
  }
  // Under the same profile, names inside the policy pass; an IP CN becomes an IP SAN.
  auto ok = call("POST", "/ca/rest/certrequests", body("policyServerCert", csr("ok", "/CN=*.example.com", "DNS:www.example.com")));
  ASSERT_EQ(ok.status, 201) << ok.body;
  auto ip = call("POST", "/ca/rest/certrequests", body("policyServerCert", csr("ip", "/CN=10.1.2.3")));
  ASSERT_EQ(ip.status, 201) << ip.body;
  write_file(work_ / "ip.pem", json_field(ip.body, "certificate"));
  auto text = shell(fmt::format("openssl x509 -noout -ext subjectAltName -in {}", path("ip.pem")));
  EXPECT_NE(text.output.find("IP Address:10.1.2.3"), std::string::npos) << text.output;
  EXPECT_EQ(text.output.find("DNS:10.1.2.3"), std::string::npos) << text.output;
  EXPECT_EQ(records(), before + 4);
}

TEST_F(AuthorizationTest, BrokenPublicKeysAreRefusedBeforeAnythingIsStored) {
  const int before = records();
  struct Case {
    const char* name;
    std::string pem;
    const char* message;
  };
  const std::vector<Case> cases{
      {"EC point at infinity", csr_ec_point_at_infinity("k1.example.com"), "infinity"},
      {"explicit EC parameters", csr_ec_explicit_parameters("k2.example.com"), "named curve"},
      {"RSA exponent 1", csr_rsa_exponent_one("k3.example.com"), "exponent"},
      {"even RSA modulus", csr_rsa_even_modulus("k4.example.com"), ""},
      {"small prime factor", csr_rsa_small_factor("k5.example.com"), "small prime factor"},
      {"close primes", csr_rsa_close_primes("k6.example.com"), "close primes"},
      {"ECDSA signature labelled RSA", csr_ecdsa_signed_labelled_rsa("k7.example.com"), ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    for (const char* profile : {"testServerCert", "caServerCert"}) {
      SCOPED_TRACE(profile);
      auto r = call("POST", "/ca/rest/certrequests", body(profile, c.pem));
      EXPECT_EQ(r.status, 400) << r.body;
      EXPECT_NE(json_field(r.body, "message").find(c.message), std::string::npos) << r.body;
    }
  }
  EXPECT_EQ(records(), before);
  // A sound key passes the same way.
  EXPECT_EQ(call("POST", "/ca/rest/certrequests", body("testServerCert", csr_good_rsa("good.example.com"))).status, 201);
}

TEST_F(AuthorizationTest, PlainHttpServesOnlyWhatRelyingPartiesNeed) {
  const std::string http = server_->http_url();
  const int before = records();
  auto enroll = call("POST", "/ca/rest/certrequests", body("testServerCert", csr("plain", "/CN=plain.example.com")), "", "", http);
  EXPECT_EQ(enroll.status, 404) << enroll.body;
  EXPECT_EQ(records(), before);
  EXPECT_EQ(call("GET", "/ca/rest/certs", "", "", "", http).status, 404);
  EXPECT_EQ(call("GET", "/ca/rest/certrequests/1?secret=x", "", "", "", http).status, 404);
  EXPECT_EQ(call("GET", "/ca/rest/info", "", "", "", http).status, 404);
  EXPECT_EQ(call("POST", "/ca/rest/agent/enrollment-codes", "{}", "", "", http).status, 404);
  // What relying parties fetch is there.
  auto cacert = call("GET", "/ca/cacert.pem", "", "", "", http);
  EXPECT_EQ(cacert.status, 200);
  EXPECT_EQ(cacert.body, read_file(server_->ca_file()));
  EXPECT_EQ(call("GET", "/crl/MasterCRL.crl", "", "", "", http).status, 200);
  EXPECT_EQ(call("GET", "/crl/MasterCRL-delta.crl", "", "", "", http).status, 200);
  // Only CRL names: no partitions on this CA, and nothing else under /crl/ (no path games).
  EXPECT_EQ(call("GET", "/crl/MasterCRL-0.crl", "", "", "", http).status, 404);
  EXPECT_EQ(call("GET", "/crl/..%2Fca%2Frest%2Finfo", "", "", "", http).status, 404);
  EXPECT_EQ(call("GET", "/crl/MasterCRL-99999999999999999999.crl", "", "", "", http).status, 404);
  EXPECT_EQ(call("GET", "/ca/ee/ca/getCRL?crlIssuingPoint=MasterCRL-1%27)(cn=*", "", "", "", http).status, 404);
  EXPECT_EQ(call("POST", "/crl/MasterCRL-delta.crl", "x", "", "", http).status, 405);
}

TEST_F(AuthorizationTest, AnEnrollmentCodeWorksOnceAndOnlyForItsProfileAndNames) {
  std::string code = new_code(
      R"({"profile_id":"caServerCert","subject":"CN=coded.example.com","dns_names":["coded.example.com"],"expires_in_seconds":600})");
  ASSERT_FALSE(code.empty());
  // The directory holds a salted hash, never the code.
  auto dump = shell(fmt::format("ldapsearch -LLL -x -H '{}' -D '{}' -y '{}' -b 'ou=enrollmentCodes,ou=ca,o=pki-ca'",
                                server_->ldap_url(), server_->bind_dn(), server_->password_file().string()));
  EXPECT_EQ(dump.output.find(code.substr(code.find('.') + 1)), std::string::npos) << dump.output;
  EXPECT_NE(dump.output.find("caSecretHash: sha256$"), std::string::npos) << dump.output;

  const int before = records();
  std::string good = csr("coded", "/CN=coded.example.com");
  // Another profile, other names, another subject, a wrong secret: refused, and the code stays usable.
  EXPECT_EQ(call("POST", "/ca/rest/certrequests", body("caUserCert", csr("u", "/CN=coded.example.com"), code)).status, 403);
  auto other = call("POST", "/ca/rest/certrequests", body("caServerCert", csr("o", "/CN=coded.example.com", "DNS:evil.example.com"), code));
  EXPECT_EQ(other.status, 403) << other.body;
  EXPECT_NE(other.body.find("evil.example.com"), std::string::npos) << other.body;
  EXPECT_EQ(call("POST", "/ca/rest/certrequests", body("caServerCert", csr("s", "/CN=other.example.com"), code)).status, 403);
  std::string wrong = code.substr(0, code.find('.') + 1) + std::string(32, '0');
  EXPECT_EQ(call("POST", "/ca/rest/certrequests", body("caServerCert", good, wrong)).status, 403);
  EXPECT_EQ(records(), before);

  auto issued = call("POST", "/ca/rest/certrequests", body("caServerCert", good, code));
  ASSERT_EQ(issued.status, 201) << issued.body;
  EXPECT_EQ(json_field(issued.body, "authenticated_by"), "enrollment_code");
  write_file(work_ / "coded.pem", json_field(issued.body, "certificate"));
  auto verify = shell(fmt::format("openssl verify -CAfile {} {}", server_->ca_file().string(), path("coded.pem")));
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  // Used: a second enrollment with it is refused.
  auto twice = call("POST", "/ca/rest/certrequests", body("caServerCert", csr("again", "/CN=coded.example.com"), code));
  EXPECT_EQ(twice.status, 403) << twice.body;
  EXPECT_NE(twice.body.find("already used"), std::string::npos) << twice.body;

  // An expired code is refused (its expiry moved into the past in the directory).
  std::string old = new_code(R"({"profile_id":"caServerCert","dns_names":["late.example.com"]})");
  std::string id = old.substr(0, old.find('.'));
  write_file(work_ / "expire.ldif", fmt::format("dn: cn={},ou=enrollmentCodes,ou=ca,o=pki-ca\nchangetype: modify\n"
                                                "replace: caExpiresAt\ncaExpiresAt: 20200101000000Z\n",
                                                id));
  auto modify = shell(fmt::format("ldapmodify -x -H '{}' -D '{}' -y '{}' -f {}", server_->ldap_url(), server_->bind_dn(),
                                  server_->password_file().string(), path("expire.ldif")));
  ASSERT_EQ(modify.exit_code, 0) << modify.output;
  auto expired = call("POST", "/ca/rest/certrequests", body("caServerCert", csr("late", "/CN=late.example.com"), old));
  EXPECT_EQ(expired.status, 403) << expired.body;
  EXPECT_NE(expired.body.find("expired"), std::string::npos) << expired.body;
  // Codes for a profile that does not take them, or with nonsense names, are not made.
  EXPECT_EQ(as_agent("POST", "/ca/rest/agent/enrollment-codes", R"({"profile_id":"caAgentCert"})").status, 400);
  EXPECT_EQ(as_agent("POST", "/ca/rest/agent/enrollment-codes", R"({"profile_id":"caServerCert","dns_names":["a b"]})").status, 400);
}

TEST_F(AuthorizationTest, AnonymousRequestsWaitForAnAgentAndOnlyTheRequesterOrAnAgentReadsThem) {
  auto submitted = call("POST", "/ca/rest/certrequests", body("caServerCert", csr("pending", "/CN=pending.example.com")));
  ASSERT_EQ(submitted.status, 202) << submitted.body;
  EXPECT_EQ(json_field(submitted.body, "status"), "pending");
  std::string id = json_field(submitted.body, "request_id");
  std::string secret = json_field(submitted.body, "request_secret");
  ASSERT_FALSE(secret.empty());
  EXPECT_EQ(call("GET", "/ca/rest/certrequests/" + id).status, 401);
  EXPECT_EQ(call("GET", "/ca/rest/certrequests/" + id + "?secret=" + std::string(32, 'a')).status, 403);
  auto mine = call("GET", "/ca/rest/certrequests/" + id + "?secret=" + secret);
  ASSERT_EQ(mine.status, 200) << mine.body;
  EXPECT_EQ(json_field(mine.body, "status"), "pending");

  auto queue = as_agent("GET", "/ca/rest/agent/certrequests?status=pending&size=1000");
  ASSERT_EQ(queue.status, 200) << queue.body;
  EXPECT_NE(queue.body.find("\"request_id\":\"" + id + "\""), std::string::npos) << queue.body;

  // Approval with a change the profile allows (a shorter validity and one more name).
  auto approved = as_agent("POST", "/ca/rest/agent/certrequests/" + id + "/approve",
                           R"({"validity_days":30,"dns_names":["pending.example.com","alias.example.com"]})");
  ASSERT_EQ(approved.status, 200) << approved.body;
  EXPECT_EQ(json_field(approved.body, "status"), "complete");
  auto fetched = call("GET", "/ca/rest/certrequests/" + id + "?secret=" + secret);
  ASSERT_EQ(fetched.status, 200) << fetched.body;
  write_file(work_ / "approved.pem", json_field(fetched.body, "certificate"));
  auto text = shell(fmt::format("openssl x509 -noout -text -in {}", path("approved.pem")));
  EXPECT_NE(text.output.find("DNS:alias.example.com"), std::string::npos) << text.output;
  auto days = shell(fmt::format("openssl x509 -noout -checkend {} -in {}", 31 * 86400, path("approved.pem")));
  EXPECT_NE(days.exit_code, 0) << "valid beyond 31 days: " << days.output;
  // Approving again, or rejecting it now, is a conflict.
  EXPECT_EQ(as_agent("POST", "/ca/rest/agent/certrequests/" + id + "/approve", "{}").status, 409);
  EXPECT_EQ(as_agent("POST", "/ca/rest/agent/certrequests/" + id + "/reject", "{}").status, 409);

  // A change the profile does not allow is refused and the request stays pending.
  auto second = call("POST", "/ca/rest/certrequests", body("caServerCert", csr("p2", "/CN=p2.example.com")));
  ASSERT_EQ(second.status, 202);
  std::string id2 = json_field(second.body, "request_id");
  EXPECT_EQ(as_agent("POST", "/ca/rest/agent/certrequests/" + id2 + "/approve", R"({"validity_days":5000})").status, 400);
  EXPECT_EQ(as_agent("POST", "/ca/rest/agent/certrequests/" + id2 + "/approve", R"({"dns_names":["*.com"]})").status, 400);
  auto rejected = as_agent("POST", "/ca/rest/agent/certrequests/" + id2 + "/reject", R"({"reason":"unknown host"})");
  ASSERT_EQ(rejected.status, 200) << rejected.body;
  EXPECT_EQ(json_field(rejected.body, "status"), "rejected");
  EXPECT_EQ(as_agent("POST", "/ca/rest/agent/certrequests/" + id2 + "/approve", "{}").status, 409);
}

TEST_F(AuthorizationTest, AHolderRenewsItsOwnNamesWithItsCertificateAndNothingElse) {
  // First certificate through an enrollment code, then renewal with it as TLS client certificate.
  std::string code = new_code(R"({"profile_id":"caUserCert","subject":"CN=Renee,O=Example","emails":["renee@example.com"]})");
  auto first = call("POST", "/ca/rest/certrequests",
                    body("caUserCert", csr("renee", "/O=Example/CN=Renee", "email:renee@example.com"), code));
  ASSERT_EQ(first.status, 201) << first.body;
  write_file(work_ / "renee.pem", json_field(first.body, "certificate"));
  auto renewed = call("POST", "/ca/rest/certrequests", body("caUserCert", csr("renee2", "/O=Example/CN=Renee", "email:renee@example.com")),
                      path("renee.pem"), path("renee.key"));
  ASSERT_EQ(renewed.status, 201) << renewed.body;
  EXPECT_EQ(json_field(renewed.body, "authenticated_by"), "client_certificate");
  // Another name with the same certificate is not a renewal: it waits for an agent.
  auto other = call("POST", "/ca/rest/certrequests", body("caUserCert", csr("mallory", "/O=Example/CN=Mallory")),
                    path("renee.pem"), path("renee.key"));
  EXPECT_EQ(other.status, 202) << other.body;
}

// Separation of duties: a role certificate (agent, administrator, auditor) is issued only after an
// administrator approves it who is neither its subject nor its requester, never for the approver's
// own key, and never by an agent. The attack it stops: an agent asks for a second agent certificate
// for a key it holds, approves it itself, and then counts twice in an M-of-N approval.
TEST_F(AuthorizationTest, ASelfMadeSecondAgentIsNeverApprovedByItsMaker) {
  const int before = records();
  // The agent asks for a second agent certificate, with another name, for a key it holds.
  std::string request = csr("second", "/O=Example/CN=Second Self");
  auto submitted = call("POST", "/ca/rest/certrequests", body("caAgentCert", request), agent_cert(), agent_key());
  ASSERT_EQ(submitted.status, 202) << submitted.body;
  std::string id = json_field(submitted.body, "request_id");
  // An agent decides no role certificate, its own request least of all.
  auto by_agent = as_agent("POST", "/ca/rest/agent/certrequests/" + id + "/approve", "{}");
  EXPECT_EQ(by_agent.status, 403) << by_agent.body;
  EXPECT_NE(by_agent.body.find("administrator"), std::string::npos) << by_agent.body;
  // The bootstrap administrator is the same person (one subject) as the agent that asked.
  auto by_same_person = call("POST", "/ca/rest/agent/certrequests/" + id + "/approve", "{}",
                             server_->admin_cert().string(), server_->admin_key().string());
  EXPECT_EQ(by_same_person.status, 403) << by_same_person.body;
  EXPECT_NE(by_same_person.body.find("asked for request"), std::string::npos) << by_same_person.body;
  // Nothing was issued: the request is still pending.
  auto queue = as_agent("GET", "/ca/rest/agent/certrequests?status=pending&size=1000");
  EXPECT_NE(queue.body.find("\"request_id\":\"" + id + "\""), std::string::npos) << queue.body;
  EXPECT_EQ(records(), before + 1);  // the pending request only

  // Submitted anonymously instead, an administrator may not approve a role for their own identity...
  auto own_identity = call("POST", "/ca/rest/certrequests",
                           body("caAuditorCert", csr("self-auditor", "/O=Example/CN=CA Administrator")));
  ASSERT_EQ(own_identity.status, 202) << own_identity.body;
  auto refused = call("POST", "/ca/rest/agent/certrequests/" + json_field(own_identity.body, "request_id") + "/approve",
                      "{}", server_->admin_cert().string(), server_->admin_key().string());
  EXPECT_EQ(refused.status, 403) << refused.body;
  EXPECT_NE(refused.body.find("own identity"), std::string::npos) << refused.body;
  // ...nor for their own key under another name.
  auto own_key = shell(fmt::format("openssl req -new -key {} -subj '/O=Example/CN=Someone Else' -out {}",
                                   server_->admin_key().string(), path("own-key.csr")));
  ASSERT_EQ(own_key.exit_code, 0) << own_key.output;
  auto with_own_key = call("POST", "/ca/rest/certrequests", body("caAgentCert", read_file(work_ / "own-key.csr")));
  ASSERT_EQ(with_own_key.status, 202) << with_own_key.body;
  auto refused_key = call("POST", "/ca/rest/agent/certrequests/" + json_field(with_own_key.body, "request_id") + "/approve",
                          "{}", server_->admin_cert().string(), server_->admin_key().string());
  EXPECT_EQ(refused_key.status, 403) << refused_key.body;
  EXPECT_NE(refused_key.body.find("own certificate"), std::string::npos) << refused_key.body;

  // An administrator who is another person approves the agent's request: then it is an agent.
  auto added = shell(fmt::format("{} admin add --config {} --subject 'CN=Second Admin,O=Example' --out {}",
                                 ca_server_binary().string(), server_->config_file().string(), path("admin2")));
  ASSERT_EQ(added.exit_code, 0) << added.output;
  std::string serial = added.output.substr(added.output.find("0x") + 2);
  serial = serial.substr(0, serial.find(' '));
  const std::string admin2_cert = path("admin2/admin-" + serial + ".pem");
  const std::string admin2_key = path("admin2/admin-" + serial + ".key");
  // An administrator is not an agent: it cannot approve ordinary requests or revoke.
  auto ordinary = call("POST", "/ca/rest/certrequests", body("caServerCert", csr("ordinary", "/CN=ordinary.example.com")));
  ASSERT_EQ(ordinary.status, 202) << ordinary.body;
  auto admin_on_ordinary = call("POST", "/ca/rest/agent/certrequests/" + json_field(ordinary.body, "request_id") +
                                "/approve", "{}", admin2_cert, admin2_key);
  EXPECT_EQ(admin_on_ordinary.status, 403) << admin_on_ordinary.body;
  auto approved = call("POST", "/ca/rest/agent/certrequests/" + id + "/approve", "{}", admin2_cert, admin2_key);
  ASSERT_EQ(approved.status, 200) << approved.body;
  write_file(work_ / "second.pem", json_field(approved.body, "certificate"));
  EXPECT_EQ(call("GET", "/ca/rest/agent/certrequests", "", path("second.pem"), path("second.key")).status, 200);
}

TEST_F(AuthorizationTest, AgentCertificatesComeOnlyFromAnAdministratorsApproval) {
  // The future agent sends its own CSR; it waits for an administrator.
  std::string request = csr("newagent", "/O=Example/CN=New Agent");
  auto submitted = call("POST", "/ca/rest/certrequests", body("caAgentCert", request));
  ASSERT_EQ(submitted.status, 202) << submitted.body;
  std::string id = json_field(submitted.body, "request_id");
  // A certificate holder that is neither agent nor administrator decides nothing.
  enroll_open("nobody", "/O=Example/CN=Nobody", "testUserCert");
  EXPECT_EQ(call("POST", "/ca/rest/agent/certrequests/" + id + "/approve", "{}", path("nobody.pem"), path("nobody.key"))
                .status,
            403);
  // Role profiles take no enrollment code and no renewal by the holder: only an approval.
  EXPECT_EQ(as_agent("POST", "/ca/rest/agent/enrollment-codes", R"({"profile_id":"caAdminCert"})").status, 400);
  auto approved = call("POST", "/ca/rest/agent/certrequests/" + id + "/approve", "{}", server_->admin_cert().string(),
                       server_->admin_key().string());
  ASSERT_EQ(approved.status, 200) << approved.body;
  write_file(work_ / "newagent.pem", json_field(approved.body, "certificate"));
  // The new certificate is an agent: it may list the queue.
  EXPECT_EQ(call("GET", "/ca/rest/agent/certrequests", "", path("newagent.pem"), path("newagent.key")).status, 200);
}

// An enrollment code bound to names and no subject binds the subject to one of its names: a CSR
// with the code's SAN but an organisation the agent never saw is refused.
TEST_F(AuthorizationTest, AnEnrollmentCodeBoundToNamesBindsTheSubjectToo) {
  std::string code = new_code(R"({"profile_id":"caServerCert","dns_names":["bound.example.com"]})");
  const int before = records();
  auto borrowed = call("POST", "/ca/rest/certrequests",
                       body("caServerCert", csr("borrowed", "/O=Google LLC/CN=CA Administrator", "DNS:bound.example.com"),
                            code));
  EXPECT_EQ(borrowed.status, 403) << borrowed.body;
  auto extra_o = call("POST", "/ca/rest/certrequests",
                      body("caServerCert", csr("extra-o", "/O=Google LLC/CN=bound.example.com"), code));
  EXPECT_EQ(extra_o.status, 403) << extra_o.body;
  EXPECT_EQ(records(), before);
  // The code still works for the subject it implies.
  auto issued = call("POST", "/ca/rest/certrequests", body("caServerCert", csr("bound", "/CN=bound.example.com"), code));
  EXPECT_EQ(issued.status, 201) << issued.body;
}

// Anyone may ask about a request by its number (Dogtag's checkRequest), but who rejected it and why
// stays with the requester and the agents.
TEST_F(AuthorizationTest, AnonymousCheckRequestDoesNotShowWhoRejectedOrWhy) {
  auto submitted = call("POST", "/ca/rest/certrequests", body("caServerCert", csr("rejected", "/CN=rejected.example.com")));
  ASSERT_EQ(submitted.status, 202) << submitted.body;
  std::string id = json_field(submitted.body, "request_id");
  auto rejected = as_agent("POST", "/ca/rest/agent/certrequests/" + id + "/reject", R"({"reason":"secret internal reason"})");
  ASSERT_EQ(rejected.status, 200) << rejected.body;
  auto check = call("GET", "/ca/ee/ca/checkRequest?requestId=" + id);
  ASSERT_EQ(check.status, 200) << check.body;
  EXPECT_NE(check.body.find("rejected"), std::string::npos) << check.body;
  EXPECT_EQ(check.body.find("secret internal reason"), std::string::npos) << check.body;
  EXPECT_EQ(check.body.find("CA Administrator"), std::string::npos) << check.body;
}

TEST_F(AuthorizationTest, SerialsCarry64RandomBitsAboveNothingPredictable) {
  std::vector<std::string> serials;
  for (int i = 0; i < 3; ++i) serials.push_back(enroll_open(fmt::format("s{}", i), fmt::format("/CN=s{}.example.com", i), "testServerCert"));
  for (std::size_t i = 0; i < serials.size(); ++i) {
    SCOPED_TRACE(serials[i]);
    std::string hex = serials[i].substr(2);
    // The number (counter << 16 | replica 1) in the high bits, 64 random bits below: 17+ hex digits.
    ASSERT_GT(hex.size(), 16u);
    std::string number = hex.substr(0, hex.size() - 16);
    EXPECT_EQ(std::stoull(number, nullptr, 16) & 0xffff, 1u);
    if (i > 0) {
      std::string prev = serials[i - 1].substr(2);
      EXPECT_NE(prev.substr(prev.size() - 16), hex.substr(hex.size() - 16));
    }
    // openssl agrees with the serial the API reported.
    auto out = shell(fmt::format("openssl x509 -noout -serial -in {}", path(fmt::format("s{}.pem", i))));
    std::string upper;
    for (char c : hex) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    EXPECT_NE(out.output.find(upper), std::string::npos) << out.output;
  }
}

}  // namespace
}  // namespace ca::testing
