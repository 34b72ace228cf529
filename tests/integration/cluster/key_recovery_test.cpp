// Key archival and recovery across two instances, each with its own directory (master A and a
// clone B spawned from A's bundle, replicating over TLS): keys archived through A both ways
// (server-side generation, a client envelope made by `openssl cms`), recovered through B with the
// approvals of two agents, one given on A and one on B; the package opens with `openssl pkcs12`.
// A record altered with ldapmodify is refused, and ldapsearch shows no key material in clear.
#include <gtest/gtest.h>

#include <thread>
#include <tuple>

#include <fmt/format.h>

#include "support/ca_server_fixture.hpp"

namespace ca::testing {
namespace {

const std::string kKeys = "ou=keyRepository,ou=kra,o=pki-ca";
const std::string kCerts = "ou=certificateRepository,ou=ca,o=pki-ca";
const std::string kRequests = "ou=requests,ou=ca,o=pki-ca";
const std::string kRecoveries = "ou=recoveryRequests,ou=kra,o=pki-ca";

const std::string kProfiles = std::string(kTestProfiles) + R"(
archivedUserCert:
  name: Encryption certificate with its key archived
  auth: none
  validity_days: 365
  subject: {require_cn: true, allowed_attributes: [O, CN]}
  san: {dns: false, ip: false, email: true, copy_cn_to_dns: false}
  key_usage: [keyEncipherment, digitalSignature]
  extended_key_usage: [emailProtection]
  archival: {server_keygen: true, client_keys: true, key_type: ec-p256, recovery_approvals: 2}
)";

std::string ca_clone() { return (std::filesystem::path(CA_BIN_DIR) / "ca-clone").string(); }

constexpr std::string_view kSlowRetrieval = "  request_timeout_ms: 20000\n";

class KeyRecoveryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    work_ = new TempDir("ca-kra");
    error_ = new std::string();
    // A retrieval's PKCS#12 costs 600,000 PBKDF2 rounds: seconds under an unoptimised sanitizer
    // build, past the default request time bound (4 s) on a loaded machine.
    a_ = new CaServer(CaServerOptions{.instance_id = "alpha",
                                      .replica_id = 1,
                                      .server_yaml = std::string(kSlowRetrieval),
                                      .profiles_yaml = kProfiles});
    auto init = a_->init();
    if (init.exit_code != 0) return void(*error_ = "init A: " + init.output);
    if (!a_->start()) return void(*error_ = "start A: " + a_->log());
    auto password = write_file(work_->path() / "bundle.pass", "bundle-secret\n");
    auto bundle = work_->path() / "bundle.p12";
    auto prepared = shell(fmt::format("{} prepare --config {} --pkcs12-file {} --pkcs12-password-file {}", ca_clone(),
                                      a_->config_file().string(), bundle.string(), password.string()));
    if (prepared.exit_code != 0) return void(*error_ = "prepare: " + prepared.output);
    b_ = new CaServer(CaServerOptions{.instance_id = "beta",
                                      .server_yaml = std::string(kSlowRetrieval),
                                      .clone_master_url = a_->https_url(),
                                      .clone_bundle = bundle,
                                      .clone_password_file = password});
    b_->use_credentials_of(*a_);
    auto spawned = b_->init();
    if (spawned.exit_code != 0) return void(*error_ = "spawn B: " + spawned.output);
    if (!b_->start()) return void(*error_ = "start B: " + b_->log());
    // More agents (the first is the one `init` made on A; agents are valid on every instance): a
    // second and a third person, and a second certificate of the second person (same subject).
    for (const auto& [folder, subject, cert, key] :
         {std::tuple{"agent2", "CN=Second Agent,O=Example", &agent2_cert_, &agent2_key_},
          std::tuple{"agent3", "CN=Third Agent,O=Example", &agent3_cert_, &agent3_key_},
          std::tuple{"agent2b", "CN=Second Agent,O=Example", &agent2b_cert_, &agent2b_key_}}) {
      auto added = shell(fmt::format("{} agent add --config {} --subject '{}' --out {}", ca_server_binary().string(),
                                     a_->config_file().string(), subject, (work_->path() / folder).string()));
      if (added.exit_code != 0) return void(*error_ = "agent add: " + added.output);
      for (const auto& e : std::filesystem::directory_iterator(work_->path() / folder)) {
        if (e.path().extension() == ".pem") *cert = e.path().string();
        if (e.path().extension() == ".key") *key = e.path().string();
      }
    }
  }
  static void TearDownTestSuite() {
    delete b_;
    delete a_;
    delete work_;
    delete error_;
  }
  void SetUp() override { ASSERT_TRUE(error_->empty()) << *error_; }

  std::string path(const std::string& name) const { return (work_->path() / name).string(); }
  std::string ca() const { return a_->ca_file().string(); }
  std::string agent1() const {
    return fmt::format("--cert {} --key {}", a_->agent_cert().string(), a_->agent_key().string());
  }
  std::string agent2() const { return fmt::format("--cert {} --key {}", agent2_cert_, agent2_key_); }
  std::string agent3() const { return fmt::format("--cert {} --key {}", agent3_cert_, agent3_key_); }
  std::string agent2b() const { return fmt::format("--cert {} --key {}", agent2b_cert_, agent2b_key_); }

  int post(const CaServer& s, const std::string& target, const std::string& json, const std::string& auth = "",
           const std::string& out = "reply.json") {
    write_file(work_->path() / "body.json", json);
    auto r = shell(fmt::format("curl -s --cacert {} {} -H 'Content-Type: application/json' --data-binary @{} -o {} "
                               "-w '%{{http_code}}' '{}{}'",
                               ca(), auth, path("body.json"), path(out), s.https_url(), target));
    try {
      return std::stoi(r.output);
    } catch (...) {
      return -1;
    }
  }
  std::string reply(const std::string& name = "reply.json") const { return read_file(work_->path() / name); }
  // Waits until `s`'s directory has `count` entries matching `filter` under `base`.
  bool wait_for(const CaServer& s, const std::string& base, const std::string& filter, int count = 1) {
    for (int i = 0; i < 240; ++i) {
      if (s.count_entries(base, filter) == count) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    return false;
  }
  // Records about one subject (other instances' own records may still be replicating in).
  int records(const CaServer& s, const std::string& cn) {
    return s.count_entries(kCerts, fmt::format("(caSubjectDN=*CN={},*)", cn)) +
           s.count_entries(kRequests, fmt::format("(caSubjectDN=*CN={},*)", cn)) +
           s.count_entries(kKeys, fmt::format("(caKeyOwner=*CN={},*)", cn));
  }
  // Archives through A with server-side key generation; returns the serial.
  std::string archive_generated(const std::string& cn) {
    int status = post(*a_, "/ca/rest/certrequests",
                      fmt::format(R"({{"profile_id":"archivedUserCert","server_keygen":true,"subject":"CN={},O=Example",)"
                                  R"("emails":["{}@example.com"],"pkcs12_password":"generated-pass"}})",
                                  cn, cn));
    EXPECT_EQ(status, 201) << reply();
    return json_field(reply(), "serial");
  }
  // Asks for a recovery on `s` as agent 1 and approves it with two other people (agent 2 on A,
  // agent 3 on B); returns the recovery id, or "" with a test failure.
  std::string recover_with_two_approvals(const CaServer& s, const std::string& serial) {
    if (!wait_for(s, kKeys, fmt::format("(caSerialNumber=*{})", serial.substr(2)))) {
      ADD_FAILURE() << "the key record did not reach " << s.https_url();
      return "";
    }
    int asked = post(s, "/kra/rest/agent/recoveries", fmt::format(R"({{"serial":"{}"}})", serial), agent1());
    EXPECT_EQ(asked, 201) << reply();
    std::string id = json_field(reply(), "recovery_id");
    EXPECT_EQ(json_field(reply(), "status"), "pending");
    EXPECT_TRUE(wait_for(*a_, kRecoveries, fmt::format("(cn={})", id)));
    EXPECT_EQ(post(*a_, "/kra/rest/agent/recoveries/" + id + "/approve", "", agent2()), 200) << reply();
    EXPECT_TRUE(wait_for(*b_, kRecoveries, fmt::format("(&(cn={})(caApprovalCount=1))", id)));
    EXPECT_EQ(post(*b_, "/kra/rest/agent/recoveries/" + id + "/approve", "", agent3()), 200) << reply();
    EXPECT_EQ(json_field(reply(), "status"), "approved") << reply();
    return id;
  }

  // The scenarios (each a test of its own; two cluster set-ups run them all, see below).
  void BothInstancesHoldTheSameStorageAndTransportKeys();
  void AServerGeneratedKeyIsArchivedOnARecoveredOnBWithTwoAgentsAndOpensWithOpenssl();
  void AClientKeyInAnEnvelopeToTheTransportCertificateIsArchivedAndRecovered();
  void BadArchivalInputIsRefusedAndStoresNothing();
  void ARecordAlteredInTheDirectoryIsRefusedAndNothingIsRecovered();
  void AnAgentCountsOnceAndOnlyTheAskingAgentRetrieves();

  static TempDir* work_;
  static std::string* error_;
  static CaServer* a_;
  static CaServer* b_;
  static inline std::string agent2_cert_, agent2_key_, agent3_cert_, agent3_key_, agent2b_cert_, agent2b_key_;
};
TempDir* KeyRecoveryTest::work_ = nullptr;
std::string* KeyRecoveryTest::error_ = nullptr;
CaServer* KeyRecoveryTest::a_ = nullptr;
CaServer* KeyRecoveryTest::b_ = nullptr;

void KeyRecoveryTest::BothInstancesHoldTheSameStorageAndTransportKeys() {
  for (const char* name : {"kra_storage", "kra_transport"}) {
    auto a = shell(fmt::format("openssl x509 -noout -fingerprint -sha256 -in {}/certs/{}.pem", a_->dir().string(), name));
    auto b = shell(fmt::format("openssl x509 -noout -fingerprint -sha256 -in {}/certs/{}.pem", b_->dir().string(), name));
    ASSERT_EQ(a.exit_code, 0) << a.output;
    EXPECT_EQ(a.output, b.output) << name;
  }
  auto key = shell(fmt::format("openssl pkey -in {}/private/kra_storage.key -noout -text | head -1", a_->dir().string()));
  EXPECT_NE(key.output.find("3072 bit"), std::string::npos) << key.output;
  auto bundle = shell(fmt::format("{} p12-find --pkcs12-file {} --pkcs12-password-file {}", ca_clone(),
                                  path("bundle.p12"), path("bundle.pass")));
  EXPECT_NE(bundle.output.find("storageCert cert-alpha KRA"), std::string::npos) << bundle.output;
  EXPECT_NE(bundle.output.find("transportCert cert-alpha KRA"), std::string::npos) << bundle.output;
}

void KeyRecoveryTest::AServerGeneratedKeyIsArchivedOnARecoveredOnBWithTwoAgentsAndOpensWithOpenssl() {
  std::string serial = archive_generated("alice");
  ASSERT_FALSE(serial.empty());
  // The answer's PKCS#12 holds the key of the certificate.
  auto p12 = json_field(reply(), "pkcs12");
  write_file(work_->path() / "alice.b64", p12);
  write_file(work_->path() / "alice.pem", json_field(reply(), "certificate"));
  auto issued = shell(fmt::format("base64 -d {} > {} && openssl pkcs12 -in {} -passin pass:generated-pass -nodes -nocerts "
                                  "| openssl pkey -pubout",
                                  path("alice.b64"), path("alice.p12"), path("alice.p12")));
  ASSERT_EQ(issued.exit_code, 0) << issued.output;
  auto cert_key = shell(fmt::format("openssl x509 -noout -pubkey -in {}", path("alice.pem")));
  EXPECT_EQ(issued.output, cert_key.output);

  std::string id = recover_with_two_approvals(*b_, serial);
  ASSERT_FALSE(id.empty());
  // The agent who asked retrieves it, here on A (the approved state has to reach A first).
  ASSERT_TRUE(wait_for(*a_, kRecoveries, fmt::format("(&(cn={})(caRequestState=approved))", id)));
  ASSERT_EQ(post(*a_, "/kra/rest/agent/recoveries/" + id + "/retrieve", R"({"password":"recovered-pass"})", agent1(),
                 "recovered.p12"),
            200)
      << reply("recovered.p12");
  auto recovered = shell(fmt::format("openssl pkcs12 -in {} -passin pass:recovered-pass -nodes -nocerts | openssl pkey -pubout",
                                     path("recovered.p12")));
  ASSERT_EQ(recovered.exit_code, 0) << recovered.output;
  EXPECT_EQ(recovered.output, cert_key.output);
  // Once: a second retrieval, here or on B once the state got there, is refused.
  EXPECT_EQ(post(*a_, "/kra/rest/agent/recoveries/" + id + "/retrieve", R"({"password":"recovered-pass"})", agent1()), 409);
  ASSERT_TRUE(wait_for(*b_, kRecoveries, fmt::format("(&(cn={})(caRequestState=retrieved))", id)));
  EXPECT_EQ(post(*b_, "/kra/rest/agent/recoveries/" + id + "/retrieve", R"({"password":"recovered-pass"})", agent1()), 409);
  // Every step is in the audit logs of the instances where it happened.
  auto audit_a = read_file(a_->dir() / "logs" / "audit.log");
  auto audit_b = read_file(b_->dir() / "logs" / "audit.log");
  EXPECT_NE(audit_a.find("\"event\":\"key_archived\""), std::string::npos) << audit_a;
  EXPECT_NE(audit_b.find("\"event\":\"key_recovery_requested\""), std::string::npos) << audit_b;
  EXPECT_NE(audit_a.find("\"event\":\"key_recovery_approved\""), std::string::npos) << audit_a;
  EXPECT_NE(audit_b.find("\"event\":\"key_recovery_approved\""), std::string::npos) << audit_b;
  EXPECT_NE(audit_a.find("\"event\":\"key_retrieved\""), std::string::npos) << audit_a;
}

void KeyRecoveryTest::AClientKeyInAnEnvelopeToTheTransportCertificateIsArchivedAndRecovered() {
  ASSERT_EQ(shell(fmt::format("curl -s --cacert {} -o {} {}/kra/rest/transport-cert", ca(), path("transport.pem"),
                              a_->https_url())).exit_code, 0);
  auto made = shell(fmt::format(
      "openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout {0} -out {1} -subj '/O=Example/CN=bob' "
      "-addext subjectAltName=email:bob@example.com && "
      "openssl cms -encrypt -recip {2} -keyopt rsa_padding_mode:oaep -aes-256-cbc -in {0} -outform PEM -out {3}",
      path("bob.key"), path("bob.csr"), path("transport.pem"), path("bob.env")));
  ASSERT_EQ(made.exit_code, 0) << made.output;
  auto body = [&](const std::string& csr, const std::string& envelope) {
    return fmt::format(R"({{"profile_id":"archivedUserCert","csr":"{}","key_envelope":"{}"}})", json_escape(csr),
                       json_escape(envelope));
  };
  ASSERT_EQ(post(*a_, "/ca/rest/certrequests", body(read_file(work_->path() / "bob.csr"), read_file(work_->path() / "bob.env"))),
            201)
      << reply();
  std::string serial = json_field(reply(), "serial");
  EXPECT_FALSE(json_field(reply(), "archived_key_id").empty()) << reply();
  EXPECT_EQ(reply().find("pkcs12"), std::string::npos) << "a client's own key is not sent back";

  // No key material in clear in the directory: not the PEM, not the DER of the key.
  auto der = shell(fmt::format("openssl pkey -in {} -outform DER | base64 -w0", path("bob.key")));
  auto dump = shell(fmt::format("ldapsearch -LLL -o ldif-wrap=no -x -H '{}' -D '{}' -y '{}' -b '{}' -s one",
                                a_->ldap_url(), a_->bind_dn(), a_->password_file().string(), kKeys));
  ASSERT_NE(dump.output.find("caWrappedPrivateKey:: "), std::string::npos) << dump.output;
  EXPECT_EQ(dump.output.find("PRIVATE KEY"), std::string::npos);
  write_file(work_->path() / "dump.ldif", dump.output);
  auto scan = shell(fmt::format(
      "python3 -c \"import base64,sys; key=base64.b64decode(sys.argv[2]); "
      "vals=[base64.b64decode(l.split(':: ',1)[1]) for l in open(sys.argv[1]) if l.startswith('caWrappedPrivateKey:: ')]; "
      "secret=key[-40:]; print(len(vals), any(secret in v or key in v for v in vals))\" {} {}",
      path("dump.ldif"), der.output));
  EXPECT_NE(scan.output.find(" False"), std::string::npos) << scan.output;

  std::string id = recover_with_two_approvals(*b_, serial);
  ASSERT_FALSE(id.empty());
  ASSERT_EQ(post(*b_, "/kra/rest/agent/recoveries/" + id + "/retrieve", R"({"password":"bob-recovered"})", agent1(),
                 "bob.p12"),
            200)
      << reply("bob.p12");
  auto recovered = shell(fmt::format("openssl pkcs12 -in {} -passin pass:bob-recovered -nodes -nocerts | openssl pkey -pubout",
                                     path("bob.p12")));
  auto original = shell(fmt::format("openssl pkey -in {} -pubout", path("bob.key")));
  EXPECT_EQ(recovered.output, original.output);
}

void KeyRecoveryTest::BadArchivalInputIsRefusedAndStoresNothing() {
  auto made = shell(fmt::format(
      "curl -s --cacert {5} -o {2} {6}/kra/rest/transport-cert && "
      "openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout {0} -out {1} -subj '/O=Example/CN=eve' && "
      "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out {3} && "
      "openssl cms -encrypt -recip {2} -aes-256-cbc -in {3} -outform PEM -out {4}",
      path("eve.key"), path("eve.csr"), path("transport2.pem"), path("other.key"), path("mismatch.env"), ca(),
      a_->https_url()));
  ASSERT_EQ(made.exit_code, 0) << made.output;
  // An envelope for another transport certificate (a self-made one).
  auto foreign = shell(fmt::format(
      "openssl req -x509 -nodes -newkey rsa:2048 -keyout {0} -out {1} -days 2 -subj /CN=not-the-transport && "
      "openssl cms -encrypt -recip {1} -aes-256-cbc -in {2} -outform PEM -out {3}",
      path("foreign.key"), path("foreign.pem"), path("eve.key"), path("foreign.env")));
  ASSERT_EQ(foreign.exit_code, 0) << foreign.output;
  write_file(work_->path() / "garbage.env", "-----BEGIN CMS-----\nAAAA\n-----END CMS-----\n");
  const int before = records(*a_, "eve");
  auto enroll = [&](const std::string& envelope_file, const std::string& profile = "archivedUserCert") {
    return post(*a_, "/ca/rest/certrequests",
                fmt::format(R"({{"profile_id":"{}","csr":"{}","key_envelope":"{}"}})", profile,
                            json_escape(read_file(work_->path() / "eve.csr")),
                            json_escape(read_file(work_->path() / envelope_file))));
  };
  EXPECT_EQ(enroll("mismatch.env"), 400) << reply();
  EXPECT_NE(reply().find("not the key of the CSR"), std::string::npos) << reply();
  EXPECT_EQ(enroll("foreign.env"), 400) << reply();
  EXPECT_NE(reply().find("transport certificate"), std::string::npos) << reply();
  EXPECT_EQ(enroll("garbage.env"), 400) << reply();
  EXPECT_EQ(enroll("foreign.env", "testUserCert"), 403) << reply();  // a profile that archives nothing
  // Server-side generation: a short password, a CSR alongside, a profile without it.
  EXPECT_EQ(post(*a_, "/ca/rest/certrequests",
                 R"({"profile_id":"archivedUserCert","server_keygen":true,"subject":"CN=eve,O=Example","pkcs12_password":"short"})"),
            400)
      << reply();
  EXPECT_EQ(post(*a_, "/ca/rest/certrequests",
                 R"({"profile_id":"testUserCert","server_keygen":true,"subject":"CN=eve,O=Example","pkcs12_password":"long-enough"})"),
            403)
      << reply();
  EXPECT_EQ(records(*a_, "eve"), before);

  // Recovery: of a certificate whose key was never archived; by a non-agent; anonymously.
  ASSERT_EQ(post(*a_, "/ca/rest/certrequests",
                 fmt::format(R"({{"profile_id":"testUserCert","csr":"{}"}})", json_escape(read_file(work_->path() / "eve.csr")))),
            201)
      << reply();
  std::string plain_serial = json_field(reply(), "serial");
  write_file(work_->path() / "eve.pem", json_field(reply(), "certificate"));
  EXPECT_EQ(post(*a_, "/kra/rest/agent/recoveries", fmt::format(R"({{"serial":"{}"}})", plain_serial), agent1()), 404)
      << reply();
  EXPECT_EQ(post(*a_, "/kra/rest/agent/recoveries", fmt::format(R"({{"serial":"{}"}})", plain_serial)), 401) << reply();
  EXPECT_EQ(post(*a_, "/kra/rest/agent/recoveries", fmt::format(R"({{"serial":"{}"}})", plain_serial),
                 fmt::format("--cert {} --key {}", path("eve.pem"), path("eve.key"))),
            403)
      << reply();
}

void KeyRecoveryTest::ARecordAlteredInTheDirectoryIsRefusedAndNothingIsRecovered() {
  std::string serial = archive_generated("mallory");
  ASSERT_FALSE(serial.empty());
  std::string key_id = json_field(reply(), "archived_key_id");
  // Someone with write access to A's directory flips a byte of the sealed key.
  auto dn = fmt::format("cn={},{}", key_id, kKeys);
  auto read = shell(fmt::format("ldapsearch -LLL -o ldif-wrap=no -x -H '{}' -D '{}' -y '{}' -b '{}' -s base caWrappedPrivateKey "
                                "| sed -n 's/^caWrappedPrivateKey:: //p'",
                                a_->ldap_url(), a_->bind_dn(), a_->password_file().string(), dn));
  std::string b64 = read.output.substr(0, read.output.find_first_of("\r\n"));
  ASSERT_FALSE(b64.empty()) << read.output;
  auto altered = shell(fmt::format("python3 -c \"import base64,sys; b=bytearray(base64.b64decode(sys.argv[1])); "
                                   "b[-20]^=1; print(base64.b64encode(bytes(b)).decode())\" {}",
                                   b64));
  write_file(work_->path() / "tamper.ldif",
             fmt::format("dn: {}\nchangetype: modify\nreplace: caWrappedPrivateKey\ncaWrappedPrivateKey:: {}\n", dn,
                         altered.output.substr(0, altered.output.find_first_of("\r\n"))));
  auto modified = shell(fmt::format("ldapmodify -x -H '{}' -D '{}' -y '{}' -f {}", a_->ldap_url(), a_->bind_dn(),
                                    a_->password_file().string(), path("tamper.ldif")));
  ASSERT_EQ(modified.exit_code, 0) << modified.output;

  std::string id = recover_with_two_approvals(*a_, serial);
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(wait_for(*a_, kRecoveries, fmt::format("(&(cn={})(caRequestState=approved))", id)));
  EXPECT_EQ(post(*a_, "/kra/rest/agent/recoveries/" + id + "/retrieve", R"({"password":"will-not-open"})", agent1()), 400)
      << reply();
  EXPECT_NE(reply().find("integrity"), std::string::npos) << reply();
  // Nothing changed: still approved, and the refusal is audited.
  EXPECT_EQ(a_->count_entries(kRecoveries, fmt::format("(&(cn={})(caRequestState=approved))", id)), 1);
  auto audit = read_file(a_->dir() / "logs" / "audit.log");
  EXPECT_NE(audit.find("\"event\":\"key_retrieval_refused\""), std::string::npos) << audit;

  // Approvals are over for it, and an agent can still reject it.
  EXPECT_EQ(post(*a_, "/kra/rest/agent/recoveries/" + id + "/approve", "", agent1()), 409) << reply();
  EXPECT_EQ(post(*a_, "/kra/rest/agent/recoveries/" + id + "/reject", R"({"reason":"record altered"})", agent2()), 200)
      << reply();
  EXPECT_EQ(json_field(reply(), "status"), "rejected");
}

void KeyRecoveryTest::AnAgentCountsOnceAndOnlyTheAskingAgentRetrieves() {
  std::string serial = archive_generated("carol");
  ASSERT_FALSE(serial.empty());
  ASSERT_EQ(post(*a_, "/kra/rest/agent/recoveries", fmt::format(R"({{"serial":"{}"}})", serial), agent1()), 201) << reply();
  std::string id = json_field(reply(), "recovery_id");
  // The agent who asked approves nothing of it.
  EXPECT_EQ(post(*a_, "/kra/rest/agent/recoveries/" + id + "/approve", "", agent1()), 403) << reply();
  EXPECT_EQ(post(*a_, "/kra/rest/agent/recoveries/" + id + "/approve", "", agent2()), 200) << reply();
  EXPECT_EQ(post(*a_, "/kra/rest/agent/recoveries/" + id + "/approve", "", agent2()), 409) << reply();
  EXPECT_NE(reply().find("counts once"), std::string::npos) << reply();
  // A second certificate of the same person is the same person: M-of-N counts identities.
  EXPECT_EQ(post(*a_, "/kra/rest/agent/recoveries/" + id + "/approve", "", agent2b()), 409) << reply();
  EXPECT_NE(reply().find("each person counts once"), std::string::npos) << reply();
  EXPECT_EQ(post(*a_, "/kra/rest/agent/recoveries/" + id + "/retrieve", R"({"password":"too-early-pass"})", agent1()), 409)
      << reply();
  EXPECT_EQ(post(*a_, "/kra/rest/agent/recoveries/" + id + "/approve", "", agent3()), 200) << reply();
  EXPECT_EQ(json_field(reply(), "status"), "approved");
  EXPECT_EQ(post(*a_, "/kra/rest/agent/recoveries/" + id + "/retrieve", R"({"password":"not-my-request"})", agent2()), 403)
      << reply();
  EXPECT_EQ(post(*a_, "/kra/rest/agent/recoveries/" + id + "/retrieve", R"({"password":"short"})", agent1()), 400) << reply();
  EXPECT_EQ(post(*a_, "/kra/rest/agent/recoveries/" + id + "/retrieve", R"({"password":"carol-recovered"})", agent1(),
                 "carol.p12"),
            200);
}

// Two instances take ~10 s to set up (~25 s under ASan), once per test process: the scenarios
// share two set-ups. A scenario stops at its first fatal failure; the next one still runs.
TEST_F(KeyRecoveryTest, KeysArchivedThroughAAreRecoveredThroughBBothWays) {
  BothInstancesHoldTheSameStorageAndTransportKeys();
  AServerGeneratedKeyIsArchivedOnARecoveredOnBWithTwoAgentsAndOpensWithOpenssl();
  AClientKeyInAnEnvelopeToTheTransportCertificateIsArchivedAndRecovered();
}

TEST_F(KeyRecoveryTest, RefusalsRecoverNothingAndChangeNothing) {
  BadArchivalInputIsRefusedAndStoresNothing();
  ARecordAlteredInTheDirectoryIsRefusedAndNothingIsRecovered();
  AnAgentCountsOnceAndOnlyTheAskingAgentRetrieves();
}

}  // namespace
}  // namespace ca::testing
