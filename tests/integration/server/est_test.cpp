// EST (RFC 7030) against real, unmodified clients: strongSwan's `pki --estca` / `pki --est`
// (enrollment code, re-enrollment with the current certificate, waiting for an agent) and the
// RFC's curl + openssl recipe, each directly and through a real haproxy that passes TLS through.
// Results are checked with the openssl command line; refusals leave no record behind.
#include <gtest/gtest.h>

#include <thread>

#include <fmt/format.h>

#include "support/ca_server_fixture.hpp"
#include "support/tls_proxy.hpp"

namespace ca::testing {
namespace {

const std::string kCerts = "ou=certificateRepository,ou=ca,o=pki-ca";
const std::string kRequests = "ou=requests,ou=ca,o=pki-ca";

const std::string kProfiles = std::string(kTestProfiles) + R"(
codeServerCert:
  name: Server certificate for the holder of an enrollment code
  auth: [enrollment_code, client_certificate]
  validity_days: 90
  key: {ec_curves: [P-384, P-256]}
  archival: {server_keygen: true, key_type: ec-p384}
)";

class EstTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    CaServerOptions o;
    o.profiles_yaml = kProfiles;
    // EST requests without a label: caServerCert. Clients waiting for an agent ask again each second.
    o.ca_yaml = "  approval_poll_ms: 200\n  retry_after_seconds: 1\n";
    server_ = new CaServer(o);
    auto init = server_->init();
    ASSERT_EQ(init.exit_code, 0) << init.output;
    ASSERT_TRUE(server_->start()) << server_->log();
    proxy_dir_ = new TempDir("ca-est-lb");
    proxy_ = new TlsPassthroughProxy(proxy_dir_->path(), {server_->port()});
    ASSERT_TRUE(proxy_->start()) << proxy_->log();
  }
  static void TearDownTestSuite() {
    delete proxy_;
    delete proxy_dir_;
    delete server_;
    proxy_ = nullptr;
    server_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(proxy_, nullptr);
  }

  std::string path(const std::string& name) const { return (work_ / name).string(); }
  std::string ca() const { return server_->ca_file().string(); }

  // strongSwan's pki; its plugin-loading chatter on stderr is dropped, its verdicts kept.
  Shell pki_status(const std::string& args) {
    return shell(fmt::format("(pki {} 2>{}); rc=$?; grep -v '^plugin\\|TPM 2.0' {}; exit $rc", args, path("pki.log"),
                             path("pki.log")));
  }
  // NAME.der (strongSwan key) and NAME.csr (PKCS#10, DER) made by strongSwan itself.
  void strongswan_request(const std::string& name, const std::string& cn) {
    // (shell() appends 2>&1: the subshells keep strongSwan's stderr out of the files.)
    auto key = shell(fmt::format("(pki --gen --type ecdsa --size 256 2>/dev/null) > {}", path(name + ".der")));
    ASSERT_EQ(key.exit_code, 0) << key.output;
    auto req = shell(fmt::format("(pki --req --in {} --dn 'CN={}' --san {} 2>/dev/null) > {}", path(name + ".der"), cn, cn,
                                 path(name + ".csr")));
    ASSERT_EQ(req.exit_code, 0) << req.output;
  }
  Shell curl(const std::string& args, bool as_agent = false) {
    std::string auth = as_agent ? fmt::format("--cert {} --key {}", server_->agent_cert().string(),
                                              server_->agent_key().string())
                                : "";
    return shell(fmt::format("curl -s --cacert {} {} {}", ca(), auth, args));
  }
  // Status code of one call; the body in reply.txt, the headers in headers.txt.
  int call(const std::string& args, bool as_agent = false) {
    auto r = curl(fmt::format("-D {} -o {} -w '%{{http_code}}' {}", path("headers.txt"), path("reply.txt"), args), as_agent);
    try {
      return std::stoi(r.output);
    } catch (...) {
      return -1;
    }
  }
  std::string reply() const { return read_file(work_ / "reply.txt"); }
  std::string headers() const { return read_file(work_ / "headers.txt"); }
  std::string new_code(const std::string& profile, const std::string& dns) {
    auto status = call(fmt::format("-H 'Content-Type: application/json' -d '{{\"profile_id\":\"{}\",\"dns_names\":[\"{}\"]}}' "
                                   "{}/ca/rest/agent/enrollment-codes",
                                   profile, dns, server_->https_url()),
                       true);
    EXPECT_EQ(status, 201) << reply();
    return json_field(reply(), "enrollment_code");
  }
  void expect_verifies(const std::string& pem_file) {
    auto v = shell(fmt::format("openssl verify -CAfile {} {}", ca(), pem_file));
    EXPECT_EQ(v.exit_code, 0) << v.output;
  }
  std::string x509(const std::string& pem_file, const std::string& what) {
    return shell(fmt::format("openssl x509 -noout {} -in {}", what, pem_file)).output;
  }
  int records() {
    return server_->count_entries(kCerts, "(objectClass=caCertificateRecord)") +
           server_->count_entries(kRequests, "(objectClass=caRequestRecord)");
  }

  static CaServer* server_;
  static TempDir* proxy_dir_;
  static TlsPassthroughProxy* proxy_;
  TempDir work_{"ca-est"};
};
CaServer* EstTest::server_ = nullptr;
TempDir* EstTest::proxy_dir_ = nullptr;
TlsPassthroughProxy* EstTest::proxy_ = nullptr;

TEST_F(EstTest, StrongswanFetchesTheCaCertificateDirectlyAndThroughTheBalancer) {
  for (const std::string& base : {server_->https_url(), proxy_->url()}) {
    std::filesystem::remove(work_ / "est-ca.pem");
    auto r = pki_status(fmt::format("--estca --url {} --cacert {} --caout {} --outform pem", base, ca(), path("est-ca.pem")));
    ASSERT_EQ(r.exit_code, 0) << base << ": " << r.output;
    EXPECT_EQ(x509(path("est-ca.pem"), "-fingerprint -sha256"), x509(ca(), "-fingerprint -sha256")) << base;
  }
}

TEST_F(EstTest, StrongswanEnrollsWithAnEnrollmentCodeAndTheCodeIsSpent) {
  for (const std::string& base : {server_->https_url(), proxy_->url()}) {
    const std::string name = base == proxy_->url() ? "lb" : "direct";
    strongswan_request(name, name + ".example.com");
    auto code = new_code("caServerCert", name + ".example.com");
    auto r = pki_status(fmt::format("--est --url {} --cacert {} --in {} --userpass 'device:{}' --outform pem > {}", base,
                                    ca(), path(name + ".csr"), code, path(name + ".pem")));
    ASSERT_EQ(r.exit_code, 0) << base << ": " << r.output << read_file(work_ / "pki.log");
    expect_verifies(path(name + ".pem"));
    EXPECT_NE(x509(path(name + ".pem"), "-subject").find("CN = " + name + ".example.com"), std::string::npos);

    const int before = records();
    auto again = pki_status(fmt::format("--est --url {} --cacert {} --in {} --userpass 'device:{}' --maxpolltime 1", base,
                                        ca(), path(name + ".csr"), code));
    EXPECT_NE(again.exit_code, 0) << again.output;
    EXPECT_NE(read_file(work_ / "pki.log").find("HTTP 403"), std::string::npos) << read_file(work_ / "pki.log");
    EXPECT_EQ(records(), before);
  }
}

TEST_F(EstTest, StrongswanReenrollsWithItsCurrentCertificate) {
  strongswan_request("device", "device.example.com");
  auto code = new_code("caServerCert", "device.example.com");
  auto first = pki_status(fmt::format("--est --url {} --cacert {} --in {} --userpass 'd:{}' --outform pem > {}",
                                      server_->https_url(), ca(), path("device.csr"), code, path("device.pem")));
  ASSERT_EQ(first.exit_code, 0) << first.output;
  // A new key, the same names; the old certificate and key authenticate over TLS (through the
  // balancer: TLS client authentication reaches the CA because TLS is not terminated there).
  strongswan_request("device2", "device.example.com");
  auto second = pki_status(fmt::format("--est --url {} --cacert {} --in {} --cert {} --key {} --outform pem > {}",
                                       proxy_->url(), ca(), path("device2.csr"), path("device.pem"), path("device.der"),
                                       path("device2.pem")));
  ASSERT_EQ(second.exit_code, 0) << second.output << read_file(work_ / "pki.log");
  expect_verifies(path("device2.pem"));
  EXPECT_EQ(x509(path("device2.pem"), "-subject"), x509(path("device.pem"), "-subject"));
  EXPECT_NE(x509(path("device2.pem"), "-pubkey"), x509(path("device.pem"), "-pubkey"));
  EXPECT_NE(server_->log().find("simplereenroll"), std::string::npos);
}

TEST_F(EstTest, ReenrollmentWithARevokedOrForeignCertificateIsRefusedAndStoresNothing) {
  strongswan_request("revoked", "revoked.example.com");
  auto code = new_code("caServerCert", "revoked.example.com");
  auto first = pki_status(fmt::format("--est --url {} --cacert {} --in {} --userpass 'd:{}' --outform pem > {}",
                                      server_->https_url(), ca(), path("revoked.csr"), code, path("revoked.pem")));
  ASSERT_EQ(first.exit_code, 0) << first.output;
  std::string hex = x509(path("revoked.pem"), "-serial");
  hex = hex.substr(hex.find('=') + 1, hex.find_first_of("\r\n") - hex.find('=') - 1);
  ASSERT_EQ(call(fmt::format("-H 'Content-Type: application/json' -d '{{\"reason\":\"keyCompromise\"}}' "
                             "{}/ca/rest/agent/certs/0x{}/revoke",
                             server_->https_url(), hex),
                 true),
            200)
      << reply();
  // The RFC recipe with curl: the revoked certificate as TLS client certificate.
  shell(fmt::format("openssl pkey -inform DER -in {} -out {}", path("revoked.der"), path("revoked.key")));
  shell(fmt::format("openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout {} -subj "
                    "/CN=revoked.example.com -outform DER | base64 > {}",
                    path("next.key"), path("next.b64")));
  const int before = records();
  int status = call(fmt::format("--cert {} --key {} -H 'Content-Type: application/pkcs10' --data-binary @{} "
                                "{}/.well-known/est/simplereenroll",
                                path("revoked.pem"), path("revoked.key"), path("next.b64"), server_->https_url()));
  EXPECT_EQ(status, 403) << reply();
  EXPECT_NE(reply().find("REVOKED"), std::string::npos) << reply();

  // A certificate of another CA: TLS does not accept it as ours, so it is no credential at all.
  shell(fmt::format("openssl req -x509 -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout {} -out {} -days 2 "
                    "-subj /CN=revoked.example.com",
                    path("foreign.key"), path("foreign.pem")));
  status = call(fmt::format("--cert {} --key {} -H 'Content-Type: application/pkcs10' --data-binary @{} "
                            "{}/.well-known/est/simplereenroll",
                            path("foreign.pem"), path("foreign.key"), path("next.b64"), server_->https_url()));
  EXPECT_TRUE(status == 401 || status == 0 || status == -1) << status << " " << reply();
  // No client certificate at all.
  status = call(fmt::format("-H 'Content-Type: application/pkcs10' --data-binary @{} {}/.well-known/est/simplereenroll",
                            path("next.b64"), server_->https_url()));
  EXPECT_EQ(status, 401) << reply();
  EXPECT_EQ(records(), before);
}

TEST_F(EstTest, StrongswanWaitsForAnAgentAndGetsTheCertificateWithoutQueueingTwice) {
  strongswan_request("waiting", "waiting.example.com");
  const std::string log = path("waiting.log");
  // No credential: the request waits for an agent; strongSwan sends it again after Retry-After.
  auto client = ChildProcess::spawn(
      {"/bin/sh", "-c",
       fmt::format("pki --est --url {} --cacert {} --in {} --interval 1 --maxpolltime 90 --outform pem > {}",
                   proxy_->url(), ca(), path("waiting.csr"), path("waiting.pem"))},
      log, true);
  ASSERT_TRUE(client) << client.error().message;
  std::string id;
  for (int i = 0; i < 100 && id.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (call(fmt::format("'{}/ca/rest/agent/certrequests?status=pending&size=1000'", server_->https_url()), true) != 200)
      continue;
    auto body = reply();
    auto at = body.find("CN=waiting.example.com");
    if (at == std::string::npos) continue;
    auto id_at = body.rfind("\"request_id\":\"", at);
    id = body.substr(id_at + 14, body.find('"', id_at + 14) - id_at - 14);
  }
  ASSERT_FALSE(id.empty()) << read_file(log);
  // Let it poll a few more times before the approval: a repeat must not queue a second request.
  std::this_thread::sleep_for(std::chrono::milliseconds(3500));
  ASSERT_EQ(call(fmt::format("-X POST {}/ca/rest/agent/certrequests/{}/approve", server_->https_url(), id), true), 200)
      << reply();
  std::optional<int> exited;
  for (int i = 0; i < 300 && !exited; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    exited = client->try_wait();
  }
  ASSERT_TRUE(exited) << read_file(log);
  EXPECT_EQ(*exited, 0) << read_file(log);
  EXPECT_NE(read_file(log).find("EST request pending"), std::string::npos) << read_file(log);
  expect_verifies(path("waiting.pem"));
  EXPECT_EQ(server_->count_entries(kRequests, "(&(objectClass=caRequestRecord)(caSubjectDN=CN=waiting.example.com))"), 1);
}

TEST_F(EstTest, TheRfcCurlAndOpensslRecipeWorksDirectlyAndThroughTheBalancer) {
  for (const std::string& base : {server_->https_url(), proxy_->url()}) {
    // cacerts: base64 on one line, PKCS#7 certs-only, Content-Length.
    ASSERT_EQ(call(base + "/.well-known/est/cacerts"), 200) << reply();
    EXPECT_EQ(reply().find('\n'), std::string::npos) << "base64 must be one line for strongSwan";
    EXPECT_NE(headers().find("application/pkcs7-mime; smime-type=certs-only"), std::string::npos) << headers();
    EXPECT_NE(headers().find("Content-Length: "), std::string::npos) << headers();
    auto chain = shell(fmt::format("base64 -d {} | openssl pkcs7 -inform DER -print_certs -out {}", path("reply.txt"),
                                   path("cacerts.pem")));
    ASSERT_EQ(chain.exit_code, 0) << chain.output;
    EXPECT_EQ(x509(path("cacerts.pem"), "-fingerprint -sha256"), x509(ca(), "-fingerprint -sha256"));

    // csrattrs: what the profile wants (here caServerCert: EC P-256, ECDSA with SHA-256).
    ASSERT_EQ(call(base + "/.well-known/est/csrattrs"), 200) << reply();
    auto attrs = shell(fmt::format("base64 -d {} | openssl asn1parse -inform DER", path("reply.txt")));
    EXPECT_NE(attrs.output.find("prime256v1"), std::string::npos) << attrs.output;
    EXPECT_NE(attrs.output.find("ecdsa-with-SHA256"), std::string::npos) << attrs.output;

    // simpleenroll with an enrollment code as HTTP Basic password, the request as base64 DER.
    auto code = new_code("caServerCert", "recipe.example.com");
    auto csr = shell(fmt::format("openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout {} -subj "
                                 "/CN=recipe.example.com -outform DER | base64 > {}",
                                 path("recipe.key"), path("recipe.b64")));
    ASSERT_EQ(csr.exit_code, 0) << csr.output;
    ASSERT_EQ(call(fmt::format("--user 'device:{}' -H 'Content-Type: application/pkcs10' --data-binary @{} "
                               "{}/.well-known/est/simpleenroll",
                               code, path("recipe.b64"), base)),
              200)
        << reply();
    auto cert = shell(fmt::format("base64 -d {} | openssl pkcs7 -inform DER -print_certs -out {}", path("reply.txt"),
                                  path("recipe.pem")));
    ASSERT_EQ(cert.exit_code, 0) << cert.output;
    expect_verifies(path("recipe.pem"));
    EXPECT_EQ(shell(fmt::format("openssl x509 -noout -pubkey -in {}", path("recipe.pem"))).output,
              shell(fmt::format("openssl pkey -pubout -in {}", path("recipe.key"))).output);
  }
}

TEST_F(EstTest, ALabelSelectsTheProfileInBothUrlForms) {
  // RFC 7030 form: /.well-known/est/<label>/...; the csrattrs follow that profile (P-384 first).
  ASSERT_EQ(call(server_->https_url() + "/.well-known/est/codeServerCert/csrattrs"), 200) << reply();
  auto attrs = shell(fmt::format("base64 -d {} | openssl asn1parse -inform DER", path("reply.txt")));
  EXPECT_NE(attrs.output.find("secp384r1"), std::string::npos) << attrs.output;
  // strongSwan appends /.well-known/est/... to its URL: https://host:port/<label> reaches the label.
  strongswan_request("labelled", "labelled.example.com");
  auto code = new_code("codeServerCert", "labelled.example.com");
  auto r = pki_status(fmt::format("--est --url {}/codeServerCert --cacert {} --in {} --userpass 'd:{}' --outform pem > {}",
                                  server_->https_url(), ca(), path("labelled.csr"), code, path("labelled.pem")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_verifies(path("labelled.pem"));
  auto listing = curl(fmt::format("'{}/ca/rest/certs?profile=codeServerCert'", server_->https_url()));
  EXPECT_NE(listing.output.find("CN=labelled.example.com"), std::string::npos) << listing.output;
  // A code for one profile does not open another.
  auto other = new_code("codeServerCert", "other.example.com");
  strongswan_request("other", "other.example.com");
  auto wrong = pki_status(fmt::format("--est --url {} --cacert {} --in {} --userpass 'd:{}' --maxpolltime 1",
                                      server_->https_url(), ca(), path("other.csr"), other));
  EXPECT_NE(wrong.exit_code, 0) << wrong.output;
}

TEST_F(EstTest, BadInputGetsEstErrorsAndLeavesNothingBehind) {
  auto csr = shell(fmt::format("openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout {} -subj "
                               "/CN=bad.example.com -outform DER -out {} && base64 {} > {}",
                               path("bad.key"), path("bad.der"), path("bad.der"), path("bad.b64")));
  ASSERT_EQ(csr.exit_code, 0) << csr.output;
  write_file(work_ / "garbage.b64", "this is not base64!\n");
  write_file(work_ / "notcsr.b64", "AAECAwQFBgc=\n");
  const std::string enroll = server_->https_url() + "/.well-known/est/simpleenroll";
  const int before = records();
  struct Case {
    const char* what;
    std::string args;
    int status;
    const char* message;
  };
  const std::vector<Case> cases{
      {"wrong content type", fmt::format("-H 'Content-Type: application/json' --data-binary @{} {}", path("bad.b64"), enroll),
       415, "application/pkcs10"},
      {"not base64", fmt::format("-H 'Content-Type: application/pkcs10' --data-binary @{} {}", path("garbage.b64"), enroll),
       400, "base64"},
      {"not a request", fmt::format("-H 'Content-Type: application/pkcs10' --data-binary @{} {}", path("notcsr.b64"), enroll),
       400, "PKCS#10"},
      {"wrong enrollment code",
       fmt::format("--user 'd:0123456789abcdef.0123456789abcdef0123456789abcdef' -H 'Content-Type: application/pkcs10' "
                   "--data-binary @{} {}",
                   path("bad.b64"), enroll),
       403, "enrollment code"},
      {"bearer instead of Basic",
       fmt::format("-H 'Authorization: Bearer x' -H 'Content-Type: application/pkcs10' --data-binary @{} {}", path("bad.b64"),
                   enroll),
       401, "Basic"},
      {"unknown label", fmt::format("-H 'Content-Type: application/pkcs10' --data-binary @{} "
                                    "{}/.well-known/est/noSuchProfile/simpleenroll",
                                    path("bad.b64"), server_->https_url()),
       404, "noSuchProfile"},
      {"fullcmc", fmt::format("-H 'Content-Type: application/pkcs10' --data-binary @{} {}/.well-known/est/fullcmc",
                              path("bad.b64"), server_->https_url()),
       501, "fullcmc"},
      {"serverkeygen where the profile has none",
       fmt::format("--user 'd:0123456789abcdef.0123456789abcdef0123456789abcdef' -H 'Content-Type: application/pkcs10' "
                   "--data-binary @{} {}/.well-known/est/serverkeygen",
                   path("bad.b64"), server_->https_url()),
       403, "server-side key generation"},
      {"serverkeygen without credentials", fmt::format("-H 'Content-Type: application/pkcs10' --data-binary @{} "
                                                       "{}/.well-known/est/codeServerCert/serverkeygen",
                                                       path("bad.b64"), server_->https_url()),
       401, "enrollment code"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(call(c.args), c.status) << c.what << ": " << reply();
    EXPECT_NE(reply().find(c.message), std::string::npos) << c.what << ": " << reply();
    EXPECT_NE(headers().find("text/plain"), std::string::npos) << c.what << ": " << headers();
    if (c.status == 401) {
      EXPECT_NE(headers().find("WWW-Authenticate: Basic"), std::string::npos) << headers();
    }
  }
  EXPECT_EQ(records(), before);
  // EST is not on the plain-HTTP port.
  auto plain = shell(fmt::format("curl -s -o /dev/null -w '%{{http_code}}' {}/.well-known/est/cacerts", server_->http_url()));
  EXPECT_EQ(plain.output, "404");
}

TEST_F(EstTest, ServerKeygenReturnsTheKeyAndCertificateAndArchivesTheKey) {
  // The request names the subject and names; its own key is not used (RFC 7030 section 4.4).
  auto csr = shell(fmt::format("openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout {} -subj "
                               "/CN=keygen.example.com -addext subjectAltName=DNS:keygen.example.com -outform DER | base64 > {}",
                               path("throwaway.key"), path("keygen.b64")));
  ASSERT_EQ(csr.exit_code, 0) << csr.output;
  const int keys_before = server_->count_entries("ou=keyRepository,ou=kra,o=pki-ca", "(objectClass=caKeyRecord)");
  auto code = new_code("codeServerCert", "keygen.example.com");
  ASSERT_EQ(call(fmt::format("--user 'device:{}' -H 'Content-Type: application/pkcs10' --data-binary @{} "
                             "{}/.well-known/est/codeServerCert/serverkeygen",
                             code, path("keygen.b64"), proxy_->url())),
            200)
      << reply();
  EXPECT_NE(headers().find("multipart/mixed; boundary="), std::string::npos) << headers();
  // Split the parts as a client would, with python's email parser (stdlib).
  write_file(work_ / "split.py",
             "import email, sys, base64\n"
             "raw = open(sys.argv[1], 'rb').read()\n"
             "ctype = [l.split(':', 1)[1].strip() for l in open(sys.argv[2]) if l.lower().startswith('content-type:')][-1]\n"
             "msg = email.message_from_bytes(b'Content-Type: ' + ctype.encode() + b'\\r\\n\\r\\n' + raw)\n"
             "for part in msg.get_payload():\n"
             "    name = 'key.der' if part.get_content_type() == 'application/pkcs8' else 'cert.p7'\n"
             "    open(sys.argv[3] + '/' + name, 'wb').write(base64.b64decode(part.get_payload()))\n");
  auto split = shell(fmt::format("python3 {} {} {} {}", path("split.py"), path("reply.txt"), path("headers.txt"),
                                 work_.path().string()));
  ASSERT_EQ(split.exit_code, 0) << split.output;
  auto key = shell(fmt::format("openssl pkey -inform DER -in {} -pubout", path("key.der")));
  ASSERT_EQ(key.exit_code, 0) << key.output;
  auto cert = shell(fmt::format("openssl pkcs7 -inform DER -in {} -print_certs -out {} && openssl x509 -in {} -noout -pubkey",
                                path("cert.p7"), path("keygen.pem"), path("keygen.pem")));
  ASSERT_EQ(cert.exit_code, 0) << cert.output;
  EXPECT_EQ(key.output, cert.output);
  expect_verifies(path("keygen.pem"));
  EXPECT_NE(shell(fmt::format("openssl pkey -inform DER -in {} -noout -text", path("key.der"))).output.find("P-384"),
            std::string::npos);  // the profile's key type, not the request's
  EXPECT_NE(cert.output, shell(fmt::format("openssl pkey -in {} -pubout", path("throwaway.key"))).output);
  EXPECT_EQ(server_->count_entries("ou=keyRepository,ou=kra,o=pki-ca", "(objectClass=caKeyRecord)"), keys_before + 1);
}

}  // namespace
}  // namespace ca::testing
