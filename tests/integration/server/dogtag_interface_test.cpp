// Dogtag's end-entity and agent interface against the real, unmodified clients Debian ships:
// certmonger's dogtag-submit helper run standalone, and the certmonger daemon run privately
// (no system D-Bus) driven by getcert. Certificates are checked with the openssl command line;
// refusals are checked to leave no record in the directory.
#include <gtest/gtest.h>

#include <thread>

#include <fmt/format.h>

#include "support/bad_csr.hpp"
#include "support/ca_server_fixture.hpp"

namespace ca::testing {
namespace {

const std::string kCerts = "ou=certificateRepository,ou=ca,o=pki-ca";
const std::string kRequests = "ou=requests,ou=ca,o=pki-ca";
const std::string kDogtagSubmit = "/usr/lib/certmonger/dogtag-submit";

// Besides the open test profiles: one an agent must approve (or a code / the holder's
// certificate authorizes), and one only an enrollment code opens.
const std::string kProfiles = std::string(kTestProfiles) + R"(
approvalServerCert:
  name: Server certificate, approved by an agent
  auth: [agent_approval, enrollment_code, client_certificate]
  validity_days: 90
codeServerCert:
  name: Server certificate for the holder of an enrollment code
  auth: [enrollment_code]
  validity_days: 90
)";

class DogtagInterfaceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    CaServerOptions o;
    o.profiles_yaml = kProfiles;
    o.ca_yaml = "  approval_poll_ms: 200\n";
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
  std::string ee_url() const { return server_->https_url() + "/ca/ee/ca"; }

  // NAME.key and NAME.csr in the work folder, made by the openssl command line.
  void make_csr(const std::string& name, const std::string& subject) {
    auto r = shell(fmt::format("openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout {} -out {} "
                               "-subj '{}'",
                               path(name + ".key"), path(name + ".csr"), subject));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }

  // dogtag-submit as certmonger runs it; `env` are extra VAR=value words. Output: stdout only.
  Shell dogtag_submit(const std::string& args, const std::string& env = "") {
    auto r = shell(fmt::format("env {} {} -E {} -i {} {} 2>{}", env, kDogtagSubmit, ee_url(),
                               server_->ca_file().string(), args, path("dogtag-submit.err")));
    return r;
  }
  std::string submit_log() const { return read_file(work_ / "dogtag-submit.err"); }

  Shell curl(const std::string& args, bool as_agent = false) {
    std::string auth = as_agent ? fmt::format("--cert {} --key {}", server_->agent_cert().string(),
                                              server_->agent_key().string())
                                : "";
    return shell(fmt::format("curl -s --cacert {} {} {}", server_->ca_file().string(), auth, args));
  }
  // HTTP status and body of one call, as "STATUS\nBODY".
  std::pair<int, std::string> call(const std::string& args, bool as_agent = false) {
    auto r = curl(fmt::format("-o {} -w '%{{http_code}}' {}", path("reply.xml"), args), as_agent);
    int status = -1;
    try {
      status = std::stoi(r.output);
    } catch (...) {
    }
    return {status, read_file(work_ / "reply.xml")};
  }

  void expect_verifies(const std::string& pem_file) {
    auto v = shell(fmt::format("openssl verify -CAfile {} {}", server_->ca_file().string(), pem_file));
    EXPECT_EQ(v.exit_code, 0) << v.output;
  }
  std::string x509(const std::string& pem_file, const std::string& what) {
    return shell(fmt::format("openssl x509 -noout {} -in {}", what, pem_file)).output;
  }
  int records() {
    return server_->count_entries(kCerts, "(objectClass=caCertificateRecord)") +
           server_->count_entries(kRequests, "(objectClass=caRequestRecord)");
  }
  std::string new_code(const std::string& profile, const std::string& dns) {
    auto r = call(fmt::format("-H 'Content-Type: application/json' -d '{{\"profile_id\":\"{}\",\"dns_names\":[\"{}\"]}}' "
                              "{}/ca/rest/agent/enrollment-codes",
                              profile, dns, server_->https_url()),
                  true);
    EXPECT_EQ(r.first, 201) << r.second;
    return json_field(r.second, "enrollment_code");
  }

  static CaServer* server_;
  TempDir work_{"ca-dogtag"};
};
CaServer* DogtagInterfaceTest::server_ = nullptr;

TEST_F(DogtagInterfaceTest, DogtagSubmitEnrollsAndTheCertificateVerifies) {
  make_csr("host1", "/CN=host1.example.com");
  auto r = dogtag_submit(fmt::format("-T testServerCert {}", path("host1.csr")));
  ASSERT_EQ(r.exit_code, 0) << r.output << submit_log();
  write_file(work_ / "host1.pem", r.output);
  expect_verifies(path("host1.pem"));
  EXPECT_NE(x509(path("host1.pem"), "-subject").find("CN = host1.example.com"), std::string::npos);
  // The certificate holds the key of the request.
  EXPECT_EQ(shell(fmt::format("openssl x509 -noout -pubkey -in {}", path("host1.pem"))).output,
            shell(fmt::format("openssl pkey -pubout -in {}", path("host1.key"))).output);
}

TEST_F(DogtagInterfaceTest, DogtagSubmitWaitsForAnAgentAndIsIssuedAfterApproval) {
  make_csr("waiting", "/CN=waiting.example.com");
  auto first = dogtag_submit(fmt::format("-T approvalServerCert {}", path("waiting.csr")));
  ASSERT_EQ(first.exit_code, 1) << first.output << submit_log();  // 1: waiting, with a cookie
  auto id_at = first.output.find("requestId=");
  ASSERT_NE(id_at, std::string::npos) << first.output;
  std::string cookie = first.output.substr(0, first.output.find_first_of("\r\n"));
  std::string request_id = cookie.substr(cookie.find("requestId=") + 10);

  // Polling before the approval: still waiting.
  auto poll = dogtag_submit("-T approvalServerCert",
                            fmt::format("CERTMONGER_OPERATION=POLL 'CERTMONGER_CA_COOKIE={}'", cookie));
  EXPECT_EQ(poll.exit_code, 1) << poll.output << submit_log();

  // The agent reviews it and approves it through Dogtag's agent interface.
  auto review = call(fmt::format("'{}/ca/agent/ca/profileReview?requestId={}&xml=true'", server_->https_url(), request_id),
                     true);
  ASSERT_EQ(review.first, 200) << review.second;
  EXPECT_NE(review.second.find("<requestStatus>pending</requestStatus>"), std::string::npos) << review.second;
  EXPECT_NE(review.second.find("CN=waiting.example.com"), std::string::npos) << review.second;
  auto approve = call(fmt::format("-d 'requestId={}&op=approve&xml=true' {}/ca/agent/ca/profileProcess", request_id,
                                  server_->https_url()),
                      true);
  ASSERT_EQ(approve.first, 200) << approve.second;
  EXPECT_NE(approve.second.find("<Status>0</Status>"), std::string::npos) << approve.second;

  // certmonger polls with its cookie until it has the certificate (5 = ask again at once).
  Shell result{};
  for (int i = 0; i < 5; ++i) {
    result = dogtag_submit("-T approvalServerCert",
                           fmt::format("CERTMONGER_OPERATION=POLL 'CERTMONGER_CA_COOKIE={}'", cookie));
    if (result.exit_code == 0) break;
    ASSERT_TRUE(result.exit_code == 5 || result.exit_code == 1) << result.exit_code << result.output << submit_log();
    cookie = result.output.substr(result.output.find('\n') + 1);
    cookie = cookie.substr(0, cookie.find_first_of("\r\n"));
  }
  ASSERT_EQ(result.exit_code, 0) << result.output << submit_log();
  write_file(work_ / "waiting.pem", result.output);
  expect_verifies(path("waiting.pem"));
  EXPECT_NE(x509(path("waiting.pem"), "-subject").find("CN = waiting.example.com"), std::string::npos);
}

TEST_F(DogtagInterfaceTest, AnAgentRejectionEndsTheWaitWithExitTwo) {
  make_csr("refused", "/CN=refused.example.com");
  auto first = dogtag_submit(fmt::format("-T approvalServerCert {}", path("refused.csr")));
  ASSERT_EQ(first.exit_code, 1) << first.output << submit_log();
  std::string cookie = first.output.substr(0, first.output.find_first_of("\r\n"));
  std::string request_id = cookie.substr(cookie.find("requestId=") + 10);
  auto reject = call(fmt::format("-d 'requestId={}&op=reject&xml=true' {}/ca/agent/ca/profileProcess", request_id,
                                 server_->https_url()),
                     true);
  ASSERT_EQ(reject.first, 200) << reject.second;
  auto poll = dogtag_submit("-T approvalServerCert",
                            fmt::format("CERTMONGER_OPERATION=POLL 'CERTMONGER_CA_COOKIE={}'", cookie));
  EXPECT_EQ(poll.exit_code, 2) << poll.output << submit_log();
  // A second decision on the same request is a conflict, in Dogtag's error form.
  auto again = call(fmt::format("-d 'requestId={}&op=approve' {}/ca/agent/ca/profileProcess", request_id,
                                server_->https_url()),
                    true);
  EXPECT_EQ(again.first, 409) << again.second;
  EXPECT_NE(again.second.find("<Status>1</Status>"), std::string::npos) << again.second;
}

TEST_F(DogtagInterfaceTest, DogtagSubmitRenewsBySerialWithTheSameKeyAndNames) {
  make_csr("renew", "/CN=renew.example.com");
  auto first = dogtag_submit(fmt::format("-T testServerCert {}", path("renew.csr")));
  ASSERT_EQ(first.exit_code, 0) << first.output << submit_log();
  write_file(work_ / "renew-old.pem", first.output);
  std::string hex = x509(path("renew-old.pem"), "-serial");
  hex = hex.substr(hex.find('=') + 1);
  hex = hex.substr(0, hex.find_first_of("\r\n"));
  std::string decimal = shell(fmt::format("python3 -c 'print(int(\"{}\", 16))'", hex)).output;
  decimal = decimal.substr(0, decimal.find_first_of("\r\n"));

  auto renewed = dogtag_submit(fmt::format("-T testServerCert -D {}", decimal));
  ASSERT_EQ(renewed.exit_code, 0) << renewed.output << submit_log();
  write_file(work_ / "renew-new.pem", renewed.output);
  expect_verifies(path("renew-new.pem"));
  EXPECT_NE(x509(path("renew-new.pem"), "-serial"), x509(path("renew-old.pem"), "-serial"));
  EXPECT_EQ(x509(path("renew-new.pem"), "-subject -ext subjectAltName"),
            x509(path("renew-old.pem"), "-subject -ext subjectAltName"));
  EXPECT_EQ(x509(path("renew-new.pem"), "-pubkey"), x509(path("renew-old.pem"), "-pubkey"));
  // The directory records it as a renewal.
  EXPECT_GE(server_->count_entries(kRequests, "(&(objectClass=caRequestRecord)(caRequestType=renewal))"), 1);
}

TEST_F(DogtagInterfaceTest, ARenewalRespectsTheProfilesAuthenticators) {
  // A certificate under the approval profile, issued with a code; its renewal by serial, with
  // no credential, waits for an agent; with a fresh code (as certmonger's pin) it is issued.
  make_csr("guarded", "/CN=guarded.example.com");
  auto code = new_code("approvalServerCert", "guarded.example.com");
  auto first = dogtag_submit(fmt::format("-T approvalServerCert -Y {} {}", code, path("guarded.csr")));
  ASSERT_EQ(first.exit_code, 0) << first.output << submit_log();
  write_file(work_ / "guarded.pem", first.output);
  std::string hex = x509(path("guarded.pem"), "-serial");
  hex = "0x" + hex.substr(hex.find('=') + 1, hex.find_first_of("\r\n") - hex.find('=') - 1);
  auto waits = dogtag_submit(fmt::format("-T approvalServerCert -s {}", hex.substr(2)));
  EXPECT_EQ(waits.exit_code, 1) << waits.output << submit_log();
  auto code2 = new_code("approvalServerCert", "guarded.example.com");
  auto issued = dogtag_submit(fmt::format("-T approvalServerCert -s {} -Y {}", hex.substr(2), code2));
  ASSERT_EQ(issued.exit_code, 0) << issued.output << submit_log();
  write_file(work_ / "guarded-new.pem", issued.output);
  EXPECT_EQ(x509(path("guarded-new.pem"), "-pubkey"), x509(path("guarded.pem"), "-pubkey"));
}

TEST_F(DogtagInterfaceTest, AnEnrollmentCodeIsThePinAndAWrongOneIsRejectedWithNothingStored) {
  make_csr("coded", "/CN=coded.example.com");
  const int before = records();
  auto wrong = dogtag_submit(fmt::format("-T codeServerCert -Y 0123456789abcdef.00000000000000000000000000000000 {}",
                                         path("coded.csr")));
  EXPECT_EQ(wrong.exit_code, 2) << wrong.output << submit_log();
  auto none = dogtag_submit(fmt::format("-T codeServerCert {}", path("coded.csr")));
  EXPECT_EQ(none.exit_code, 2) << none.output << submit_log();
  EXPECT_EQ(records(), before);

  auto code = new_code("codeServerCert", "coded.example.com");
  auto right = dogtag_submit(fmt::format("-T codeServerCert -Y {} {}", code, path("coded.csr")));
  ASSERT_EQ(right.exit_code, 0) << right.output << submit_log();
  write_file(work_ / "coded.pem", right.output);
  expect_verifies(path("coded.pem"));
  // The code is spent: a second use is rejected and stores nothing.
  const int after = records();
  auto reused = dogtag_submit(fmt::format("-T codeServerCert -Y {} {}", code, path("coded.csr")));
  EXPECT_EQ(reused.exit_code, 2) << reused.output << submit_log();
  EXPECT_EQ(records(), after);
}

TEST_F(DogtagInterfaceTest, ProfileListShowsTheEnabledProfiles) {
  auto r = dogtag_submit("-t");
  ASSERT_EQ(r.exit_code, 0) << r.output << submit_log();
  EXPECT_NE(r.output.find("testServerCert"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("caServerCert"), std::string::npos) << r.output;
  // Agent certificates are not for end entities: listed as not visible, and certmonger omits them.
  EXPECT_EQ(r.output.find("caAgentCert"), std::string::npos) << r.output;
}

TEST_F(DogtagInterfaceTest, ChainAndCertificateBySerialAreDogtagXml) {
  auto chain = call(fmt::format("{}/ca/ee/ca/getCertChain", server_->https_url()));
  ASSERT_EQ(chain.first, 200) << chain.second;
  auto b64_at = chain.second.find("<ChainBase64>");
  ASSERT_NE(b64_at, std::string::npos) << chain.second;
  std::string b64 = chain.second.substr(b64_at + 13, chain.second.find("</ChainBase64>") - b64_at - 13);
  write_file(work_ / "chain.b64", b64);
  auto certs = shell(fmt::format("base64 -d {} | openssl pkcs7 -inform DER -print_certs", path("chain.b64")));
  ASSERT_EQ(certs.exit_code, 0) << certs.output;
  EXPECT_NE(certs.output.find("subject=O = Example, CN = Test CA"), std::string::npos) << certs.output;

  make_csr("byserial", "/CN=byserial.example.com");
  auto issued = dogtag_submit(fmt::format("-T testServerCert {}", path("byserial.csr")));
  ASSERT_EQ(issued.exit_code, 0) << issued.output << submit_log();
  write_file(work_ / "byserial.pem", issued.output);
  std::string hex = x509(path("byserial.pem"), "-serial");
  hex = hex.substr(hex.find('=') + 1, hex.find_first_of("\r\n") - hex.find('=') - 1);
  auto shown = call(fmt::format("'{}/ca/ee/ca/displayBySerial?serialNumber=0x{}'", server_->https_url(), hex));
  ASSERT_EQ(shown.first, 200) << shown.second;
  EXPECT_NE(shown.second.find("<certStatus>VALID</certStatus>"), std::string::npos) << shown.second;
  EXPECT_NE(shown.second.find("<subjectDN>CN=byserial.example.com</subjectDN>"), std::string::npos) << shown.second;
}

TEST_F(DogtagInterfaceTest, BadInputGetsDogtagErrorsAndLeavesNothingBehind) {
  const int before = records();
  const std::string submit = server_->https_url() + "/ca/ee/ca/profileSubmit";
  struct Case {
    const char* what;
    std::string args;
    int status;
    const char* message;
  };
  make_csr("bad", "/CN=bad.example.com");
  std::string csr = read_file(work_ / "bad.csr");
  write_file(work_ / "garbage.txt", "-----BEGIN CERTIFICATE REQUEST-----\nnot base64 at all\n-----END CERTIFICATE REQUEST-----\n");
  write_file(work_ / "tampered.csr", csr_ecdsa_signed_labelled_rsa("tampered.example.com"));
  const std::vector<Case> cases{
      {"malformed CSR", fmt::format("--data-urlencode profileId=testServerCert --data-urlencode cert_request@{} {}",
                                    path("garbage.txt"), submit),
       400, "CSR"},
      {"signature algorithm of another key type",
       fmt::format("--data-urlencode profileId=testServerCert --data-urlencode cert_request@{} {}", path("tampered.csr"),
                   submit),
       400, "CSR"},
      {"unknown profile", fmt::format("--data-urlencode profileId=noSuchProfile --data-urlencode cert_request@{} {}",
                                      path("bad.csr"), submit),
       400, "noSuchProfile"},
      {"no CSR", fmt::format("-d profileId=testServerCert {}", submit), 400, "cert_request"},
      {"no profile", fmt::format("--data-urlencode cert_request@{} {}", path("bad.csr"), submit), 400, "profileId"},
      {"CRMF", fmt::format("-d profileId=testServerCert -d cert_request_type=crmf -d cert_request=AAAA {}", submit), 400,
       "pkcs10"},
      {"JSON instead of a form", fmt::format("-H 'Content-Type: application/json' -d '{{}}' {}", submit), 415,
       "x-www-form-urlencoded"},
      {"broken percent-encoding", fmt::format("-d 'profileId=test%zz' {}", submit), 400, "percent"},
      {"renewal of an unknown serial", fmt::format("-d 'renewal=true&serial_num=123456789&profileId=testServerCert' {}", submit),
       404, "serial"},
      {"renewal without serial", fmt::format("-d 'renewal=true&profileId=testServerCert' {}", submit), 400, "serial_num"},
      {"unsupported operation", fmt::format("{}/ca/ee/ca/profileSubmitCMCFull", server_->https_url()), 404,
       "not supported"},
      {"client-certificate submit without one",
       fmt::format("--data-urlencode profileId=testServerCert --data-urlencode cert_request@{} {}/ca/ee/ca/profileSubmitSSLClient",
                   path("bad.csr"), server_->https_url()),
       401, "client certificate"},
  };
  for (const auto& c : cases) {
    auto r = call(c.args);
    EXPECT_EQ(r.first, c.status) << c.what << ": " << r.second;
    EXPECT_NE(r.second.find("<XMLResponse><Status>1</Status><Error>"), std::string::npos) << c.what << ": " << r.second;
    EXPECT_NE(r.second.find(c.message), std::string::npos) << c.what << ": " << r.second;
  }
  // The page-style operations answer in their own form.
  auto check = call(fmt::format("'{}/ca/ee/ca/checkRequest?requestId=banana'", server_->https_url()));
  EXPECT_EQ(check.first, 400) << check.second;
  EXPECT_NE(check.second.find("<errorDetails>"), std::string::npos) << check.second;
  auto missing = call(fmt::format("'{}/ca/ee/ca/checkRequest?requestId=999999999'", server_->https_url()));
  EXPECT_EQ(missing.first, 404) << missing.second;
  EXPECT_EQ(records(), before);
}

TEST_F(DogtagInterfaceTest, OnlyAgentsReviewAndProcessRequestsAndARevokedCertificateIsNotRenewed) {
  make_csr("queued", "/CN=queued.example.com");
  auto first = dogtag_submit(fmt::format("-T approvalServerCert {}", path("queued.csr")));
  ASSERT_EQ(first.exit_code, 1) << first.output << submit_log();
  std::string cookie = first.output.substr(0, first.output.find_first_of("\r\n"));
  std::string request_id = cookie.substr(cookie.find("requestId=") + 10);
  const std::string process = fmt::format("-d 'requestId={}&op=approve' {}/ca/agent/ca/profileProcess", request_id,
                                          server_->https_url());
  auto anonymous = call(process);
  EXPECT_EQ(anonymous.first, 401) << anonymous.second;
  EXPECT_NE(anonymous.second.find("<Status>1</Status>"), std::string::npos) << anonymous.second;
  // A certificate of this CA that is not an agent's.
  make_csr("user", "/CN=user.example.com");
  auto user = dogtag_submit(fmt::format("-T testServerCert {}", path("user.csr")));
  ASSERT_EQ(user.exit_code, 0) << user.output << submit_log();
  write_file(work_ / "user.pem", user.output);
  auto stranger = call(fmt::format("--cert {} --key {} {}", path("user.pem"), path("user.key"), process));
  EXPECT_EQ(stranger.first, 403) << stranger.second;
  auto review = call(fmt::format("--cert {} --key {} '{}/ca/agent/ca/profileReview?requestId={}'", path("user.pem"),
                                 path("user.key"), server_->https_url(), request_id));
  EXPECT_EQ(review.first, 403) << review.second;
  auto still = call(fmt::format("'{}/ca/ee/ca/checkRequest?requestId={}'", server_->https_url(), request_id));
  EXPECT_NE(still.second.find("<status>pending</status>"), std::string::npos) << still.second;

  // Revoked: no renewal by serial, and nothing stored for the attempt.
  std::string hex = x509(path("user.pem"), "-serial");
  hex = hex.substr(hex.find('=') + 1, hex.find_first_of("\r\n") - hex.find('=') - 1);
  auto revoke = call(fmt::format("-H 'Content-Type: application/json' -d '{{\"reason\":\"keyCompromise\"}}' "
                                 "{}/ca/rest/agent/certs/0x{}/revoke",
                                 server_->https_url(), hex),
                     true);
  ASSERT_EQ(revoke.first, 200) << revoke.second;
  const int before = records();
  auto renewal = dogtag_submit(fmt::format("-T testServerCert -s {}", hex));
  EXPECT_EQ(renewal.exit_code, 2) << renewal.output << submit_log();
  EXPECT_EQ(records(), before);
}

// The certmonger daemon itself, on a private socket (no system D-Bus), tracking a certificate it
// requests from us and resubmitting it.
TEST_F(DogtagInterfaceTest, TheCertmongerDaemonRequestsTracksAndResubmits) {
  TempDir cm("ca-cm");
  for (const char* d : {"requests", "cas", "tmp", "local"}) std::filesystem::create_directories(cm.path() / d);
  const std::string socket = (cm.path() / "sock").string();
  const std::string env = fmt::format(
      "CERTMONGER_REQUESTS_DIR={0}/requests CERTMONGER_CAS_DIR={0}/cas CERTMONGER_TMPDIR={0}/tmp "
      "CERTMONGER_LOCAL_CA_DIR={0}/local CERTMONGER_PVT_ADDRESS=unix:path={1}",
      cm.path().string(), socket);
  auto daemon = ChildProcess::spawn(
      {"/usr/bin/env", fmt::format("CERTMONGER_REQUESTS_DIR={}/requests", cm.path().string()),
       fmt::format("CERTMONGER_CAS_DIR={}/cas", cm.path().string()),
       fmt::format("CERTMONGER_TMPDIR={}/tmp", cm.path().string()),
       fmt::format("CERTMONGER_LOCAL_CA_DIR={}/local", cm.path().string()), "/usr/sbin/certmonger", "-n", "-L", "-P",
       socket, "-d", "1"},
      cm.path() / "certmonger.log", true);
  ASSERT_TRUE(daemon) << daemon.error().message;
  for (int i = 0; i < 50 && !std::filesystem::exists(socket); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(std::filesystem::exists(socket)) << read_file(cm.path() / "certmonger.log");
  auto getcert = [&](const std::string& args) { return shell(fmt::format("env {} getcert {} 2>&1", env, args)); };

  auto add = getcert(fmt::format("add-ca -c TestCA -e '{} -E {} -i {} -T testServerCert'", kDogtagSubmit, ee_url(),
                                 server_->ca_file().string()));
  ASSERT_EQ(add.exit_code, 0) << add.output;
  const std::string cert = (cm.path() / "tracked.pem").string();
  auto request = getcert(fmt::format("request -c TestCA -I tracked -f {} -k {} -N CN=tracked.example.com "
                                     "-D tracked.example.com",
                                     cert, (cm.path() / "tracked.key").string()));
  ASSERT_EQ(request.exit_code, 0) << request.output;
  auto wait_monitoring = [&]() {
    std::string listing;
    for (int i = 0; i < 100; ++i) {
      listing = getcert("list -i tracked").output;
      if (listing.find("status: MONITORING") != std::string::npos) return listing;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return listing;
  };
  auto listing = wait_monitoring();
  ASSERT_NE(listing.find("status: MONITORING"), std::string::npos) << listing << read_file(cm.path() / "certmonger.log");
  EXPECT_NE(listing.find("issuer: CN=Test CA,O=Example"), std::string::npos) << listing;
  expect_verifies(cert);
  const std::string first_serial = x509(cert, "-serial");
  const std::string key = x509(cert, "-pubkey");

  auto resubmit = getcert("resubmit -i tracked");
  ASSERT_EQ(resubmit.exit_code, 0) << resubmit.output;
  std::string second_serial = first_serial;
  for (int i = 0; i < 100 && second_serial == first_serial; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    second_serial = x509(cert, "-serial");
  }
  EXPECT_NE(second_serial, first_serial) << getcert("list -i tracked").output;
  listing = wait_monitoring();
  EXPECT_NE(listing.find("status: MONITORING"), std::string::npos) << listing;
  expect_verifies(cert);
  EXPECT_EQ(x509(cert, "-pubkey"), key);  // certmonger keeps its key unless told to rekey
  EXPECT_EQ(getcert("stop-tracking -i tracked").exit_code, 0);
  daemon->terminate(std::chrono::seconds(5));
}

}  // namespace
}  // namespace ca::testing
