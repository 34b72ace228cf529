// No instance acts for another: a master and two clones (real ca-server processes, real slapd,
// replicating), and the admin API called with real curl and each instance's own certificate. An
// instance's subsystem certificate authorizes operations on that instance only; retiring,
// registering or connecting another instance needs an administrator; re-registering an existing
// ID is for that instance itself, and the certificate it replaces is revoked in the same step.
// Spawned clones get no role (agent, administrator) certificate.
#include <chrono>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "support/ca_cluster_fixture.hpp"
#include "support/ca_server_fixture.hpp"

namespace ca::testing {
namespace {

struct Reply {
  int status = 0;
  std::string body;
};

int replica_id_of(const CaServer& s) {
  const std::string text = read_file(s.config_file());
  auto at = text.find("replica_id:");
  return at == std::string::npos ? -1 : std::atoi(text.c_str() + at + 11);
}

class InstanceScopeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cluster_ = new CaCluster();
    std::string error = cluster_->build(2);
    if (!error.empty()) {
      build_error_ = new std::string(error);
      return;
    }
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
    delete build_error_;
    build_error_ = nullptr;
  }
  void SetUp() override {
    if (build_error_) GTEST_FAIL() << *build_error_;
  }

  static CaServer& master() { return *cluster_->master; }
  static CaServer& clone(int i) { return *cluster_->clones[static_cast<std::size_t>(i - 1)]; }
  static std::string subsystem_cert(const CaServer& s) { return (s.dir() / "certs" / "subsystem.pem").string(); }
  static std::string subsystem_key(const CaServer& s) { return (s.dir() / "private" / "subsystem.key").string(); }

  std::string path(const std::string& name) const { return (work_.path() / name).string(); }

  // One call to `at` with curl; cert empty = no client certificate.
  Reply call(const CaServer& at, const std::string& method, const std::string& target, const std::string& body,
             const std::string& cert, const std::string& key) {
    std::string data;
    if (!body.empty()) {
      write_file(work_.path() / "body.json", body);
      data = fmt::format("-H 'Content-Type: application/json' --data-binary @{}", path("body.json"));
    }
    std::string auth = cert.empty() ? "" : fmt::format("--cert {} --key {}", cert, key);
    auto r = shell(fmt::format("curl -s --cacert {} {} -X {} {} -o {} -w '%{{http_code}}' '{}{}'",
                               at.ca_file().string(), auth, method, data, path("reply.json"), at.https_url(), target));
    Reply out;
    try {
      out.status = std::stoi(r.output);
    } catch (...) {
      out.status = -1;
    }
    out.body = read_file(work_.path() / "reply.json");
    return out;
  }
  std::string csr(const std::string& name, const std::string& subject) {
    auto r = shell(fmt::format("openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout {} -out {} "
                               "-subj '{}'",
                               path(name + ".key"), path(name + ".csr"), subject));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return read_file(work_.path() / (name + ".csr"));
  }
  std::string serial_of(const std::string& pem_file) {
    auto r = shell(fmt::format("openssl x509 -noout -serial -in {}", pem_file));
    std::string hex = r.output.substr(r.output.find('=') + 1);
    while (!hex.empty() && (hex.back() == '\n' || hex.back() == '\r')) hex.pop_back();
    for (char& c : hex) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return "0x" + hex;
  }
  bool listed_active(const std::string& topology, int replica_id) {
    const std::string entry = fmt::format("\"replica_id\":{},", replica_id);
    auto at = topology.find(entry);
    if (at == std::string::npos) return false;
    const std::string active = "\"retired\":false";
    auto retired = topology.find("\"retired\":", at);
    return retired != std::string::npos && topology.compare(retired, active.size(), active) == 0;
  }

  static CaCluster* cluster_;
  static std::string* build_error_;
  TempDir work_{"ca-scope"};
};
CaCluster* InstanceScopeTest::cluster_ = nullptr;
std::string* InstanceScopeTest::build_error_ = nullptr;

TEST_F(InstanceScopeTest, SpawnedClonesGetNoRoleCertificates) {
  for (int i : {1, 2}) {
    EXPECT_FALSE(std::filesystem::exists(clone(i).dir() / "certs" / "agent.pem")) << clone(i).dir();
    EXPECT_FALSE(std::filesystem::exists(clone(i).dir() / "private" / "agent.key")) << clone(i).dir();
    EXPECT_FALSE(std::filesystem::exists(clone(i).dir() / "certs" / "admin.pem")) << clone(i).dir();
  }
  // One agent and one administrator in the whole cluster: the bootstrap person of the master.
  EXPECT_EQ(master().count_entries("ou=groups,o=pki-ca", "(&(cn=Certificate Manager Agents)(caGroupMember=*))"), 1);
  auto agents = shell(fmt::format("{} agent list --config {}", ca_server_binary().string(), clone(1).config_file().string()));
  ASSERT_EQ(agents.exit_code, 0) << agents.output;
  EXPECT_EQ(std::count(agents.output.begin(), agents.output.end(), '\n'), 1) << agents.output;
  auto admins = shell(fmt::format("{} admin list --config {}", ca_server_binary().string(), clone(2).config_file().string()));
  ASSERT_EQ(admins.exit_code, 0) << admins.output;
  EXPECT_EQ(std::count(admins.output.begin(), admins.output.end(), '\n'), 1) << admins.output;
  EXPECT_NE(admins.output.find("CN=CA Administrator"), std::string::npos) << admins.output;
}

// With clone1's subsystem certificate, retiring the master retired it (its certificates revoked,
// it could not start again). Now: refused, and the master serves on.
// The replication account ca-server holds (secrets/replication.pass, handed out at registration)
// read every password, code and token hash in every directory. Now it reads the entries but no
// hash; the directories replicate the hashes by their own certificates (SASL EXTERNAL), and a
// certificate of this CA that is not a directory's reads nothing.
TEST_F(InstanceScopeTest, TheReplicationAccountCannotReadHashesYetTheDirectoriesReplicateThem) {
  const std::string master_directory = fmt::format("ldaps://127.0.0.1:{}/", master().directory_port());
  // Entries with a hash (join tokens, the replication accounts, ...) as the master's root sees them.
  const auto count_as_root = [](const CaServer& s, const std::string& filter) {
    auto r = shell(fmt::format("ldapsearch -LLL -x -H '{}' -D '{}' -y '{}' -b o=pki-ca '{}' 1.1 | grep -c '^dn:'",
                               s.ldap_url(), s.bind_dn(), s.password_file().string(), filter));
    return std::atoi(r.output.c_str());
  };
  const int with_secret = count_as_root(master(), "(caSecretHash=*)");
  const int with_password = count_as_root(master(), "(userPassword=*)");
  ASSERT_GT(with_secret, 0) << "no join token in the master's directory";
  ASSERT_GE(with_password, 3) << "the three instances' replication accounts";

  const std::string account = fmt::format("cn=replica-{},ou=replicators,o=pki-ca", replica_id_of(clone(1)));
  const std::string password_file = (clone(1).dir() / "secrets" / "replication.pass").string();
  const auto as_account = [&](const std::string& filter, const std::string& attributes) {
    return shell(fmt::format("LDAPTLS_CACERT={} ldapsearch -LLL -o ldif-wrap=no -x -H {} -D '{}' -y {} -b o=pki-ca '{}' {} 2>&1",
                             master().ca_file().string(), master_directory, account, password_file, filter, attributes));
  };
  // It reads the entries (its claims, lag checks and `ca-clone status` need them) ...
  auto tokens = as_account("(objectClass=caJoinToken)", "'*'");
  EXPECT_NE(tokens.output.find("caCodeState:"), std::string::npos) << tokens.output;
  // ... but no hash, asked by name or tested with a filter.
  EXPECT_EQ(tokens.output.find("caSecretHash"), std::string::npos) << tokens.output;
  auto hashes = as_account("(objectClass=*)", "caSecretHash userPassword caWrappedPrivateKey");
  EXPECT_EQ(hashes.output.find("caSecretHash:"), std::string::npos) << hashes.output;
  EXPECT_EQ(hashes.output.find("userPassword:"), std::string::npos) << hashes.output;
  EXPECT_EQ(hashes.output.find("caWrappedPrivateKey:"), std::string::npos) << hashes.output;
  auto probe = as_account("(|(caSecretHash=*)(userPassword=*))", "1.1");
  EXPECT_EQ(probe.output.find("dn:"), std::string::npos) << probe.output;

  // The clone's directory, by its certificate, reads them all (that is how they replicate) ...
  const auto as_certificate = [&](const std::string& cert, const std::string& key) {
    return shell(fmt::format("LDAPTLS_CACERT={} LDAPTLS_CERT={} LDAPTLS_KEY={} ldapsearch -Q -Y EXTERNAL -LLL -H {} "
                             "-b o=pki-ca '(caSecretHash=*)' caSecretHash 2>&1",
                             master().ca_file().string(), cert, key, master_directory));
  };
  auto as_directory = as_certificate((clone(1).dir() / "certs" / "directory.pem").string(),
                                     (clone(1).dir() / "private" / "directory.key").string());
  int read_by_directory = 0;
  for (const auto& line : lines_of(as_directory.output)) read_by_directory += line.starts_with("caSecretHash: ");
  EXPECT_EQ(read_by_directory, with_secret) << as_directory.output;
  // ... and another certificate of this CA (the administrator's) reads nothing.
  auto as_person = as_certificate(master().admin_cert().string(), master().admin_key().string());
  EXPECT_EQ(as_person.output.find("dn:"), std::string::npos) << as_person.output;

  // The hashes did replicate: the clone's own directory holds every one the master's does.
  int replicated_secret = 0, replicated_password = 0;
  for (int i = 0; i < 100; ++i) {
    replicated_secret = count_as_root(clone(1), "(caSecretHash=*)");
    replicated_password = count_as_root(clone(1), "(userPassword=*)");
    if (replicated_secret >= with_secret && replicated_password >= with_password) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_GE(replicated_secret, with_secret);
  EXPECT_GE(replicated_password, with_password);
}

TEST_F(InstanceScopeTest, AnInstanceCannotRetireAnotherAndTheMasterSurvives) {
  const int master_id = replica_id_of(master());
  for (int target : {master_id, replica_id_of(clone(2))}) {
    auto retire = call(master(), "DELETE", fmt::format("/ca/rest/admin/clones/{}", target), "", subsystem_cert(clone(1)),
                       subsystem_key(clone(1)));
    EXPECT_EQ(retire.status, 403) << retire.body;
    EXPECT_NE(retire.body.find("administrator"), std::string::npos) << retire.body;
  }
  // Not even itself: retiring is an administrator's act.
  auto itself = call(master(), "DELETE", fmt::format("/ca/rest/admin/clones/{}", replica_id_of(clone(1))), "",
                     subsystem_cert(clone(1)), subsystem_key(clone(1)));
  EXPECT_EQ(itself.status, 403) << itself.body;
  auto topology = call(master(), "GET", "/ca/rest/admin/topology", "", subsystem_cert(master()), subsystem_key(master()));
  ASSERT_EQ(topology.status, 200) << topology.body;
  EXPECT_TRUE(listed_active(topology.body, master_id)) << topology.body;
  EXPECT_TRUE(listed_active(topology.body, replica_id_of(clone(1)))) << topology.body;
  EXPECT_TRUE(listed_active(topology.body, replica_id_of(clone(2)))) << topology.body;
  auto status = master().client().get("/ca/rest/certs/" + serial_of(subsystem_cert(master())));
  EXPECT_EQ(json_field(status.body, "status"), "VALID") << status.body;
  EXPECT_EQ(master().client().get("/ca/rest/info").status, 200);
}

// With clone1's certificate, registering `clone2` with a fresh CSR took clone2 over. Now: refused,
// as is connecting another instance's directory; clone2 keeps working.
TEST_F(InstanceScopeTest, AnInstanceCannotRegisterOrConnectAnother) {
  const std::string request = fmt::format(R"({{"instance_id":"clone2","url":"https://127.0.0.1:1","subsystem_csr":"{}"}})",
                                          json_escape(csr("impostor", "/CN=clone2")));
  auto taken = call(master(), "POST", "/ca/rest/admin/clones", request, subsystem_cert(clone(1)), subsystem_key(clone(1)));
  EXPECT_EQ(taken.status, 403) << taken.body;
  EXPECT_EQ(taken.body.find("replication_password"), std::string::npos) << taken.body;
  const std::string fresh = fmt::format(R"({{"instance_id":"clone9","url":"https://127.0.0.1:1","subsystem_csr":"{}"}})",
                                        json_escape(csr("fresh", "/CN=clone9")));
  auto made = call(master(), "POST", "/ca/rest/admin/clones", fresh, subsystem_cert(clone(1)), subsystem_key(clone(1)));
  EXPECT_EQ(made.status, 403) << made.body;
  auto connect = call(master(), "POST", fmt::format("/ca/rest/admin/clones/{}/replication", replica_id_of(clone(2))),
                      R"({"directory_url":"ldaps://127.0.0.1:1/"})", subsystem_cert(clone(1)), subsystem_key(clone(1)));
  EXPECT_EQ(connect.status, 403) << connect.body;
  // clone2 is still itself.
  auto as_clone2 = call(master(), "GET", "/ca/rest/admin/topology", "", subsystem_cert(clone(2)), subsystem_key(clone(2)));
  EXPECT_EQ(as_clone2.status, 200) << as_clone2.body;
}

// Without a valid join token nobody learns which instance IDs or replica numbers exist.
TEST_F(InstanceScopeTest, ABadJoinTokenLearnsNothingAboutInstances) {
  for (const char* id : {"clone1", "master", "nosuchinstance"}) {
    const std::string body =
        fmt::format(R"({{"instance_id":"{}","url":"https://127.0.0.1:1","join_token":"abcd.0123","subsystem_csr":"{}"}})",
                    id, json_escape(csr("token", "/CN=x")));
    auto r = call(master(), "POST", "/ca/rest/admin/clones", body, "", "");
    EXPECT_EQ(r.status, 403) << id << ": " << r.body;
    EXPECT_NE(r.body.find("join token is not valid"), std::string::npos) << r.body;
    EXPECT_EQ(r.body.find("registered"), std::string::npos) << r.body;
    EXPECT_EQ(r.body.find("replica"), std::string::npos) << r.body;
  }
}

// An auditor fetches a clone's audit trail from the clone (only auditors may), and verifies it on
// the master against the clone's checkpoints, which reached the master's directory by replication:
// intact as fetched, and a copy cut short names the first missing sequence number.
TEST_F(InstanceScopeTest, AnAuditorVerifiesAClonesTrailFromTheMaster) {
  auto added = shell(fmt::format("{} auditor add --config {} --subject 'CN=Auditor,O=Example' --out {}",
                                 ca_server_binary().string(), master().config_file().string(), path("auditor")));
  ASSERT_EQ(added.exit_code, 0) << added.output;
  std::string cert, key;
  for (const auto& e : std::filesystem::directory_iterator(work_.path() / "auditor")) {
    if (e.path().extension() == ".pem") cert = e.path().string();
    if (e.path().extension() == ".key") key = e.path().string();
  }
  EXPECT_EQ(call(clone(1), "GET", "/ca/rest/audit/log", "", "", "").status, 401);
  EXPECT_EQ(call(clone(1), "GET", "/ca/rest/audit/log", "", master().agent_cert().string(),
                 master().agent_key().string()).status,
            403);
  EXPECT_EQ(call(clone(1), "GET", "/ca/rest/audit/log", "", subsystem_cert(clone(1)), subsystem_key(clone(1))).status,
            403);
  auto fetched = call(clone(1), "GET", "/ca/rest/audit/log", "", cert, key);
  ASSERT_EQ(fetched.status, 200) << fetched.body;
  write_file(work_.path() / "clone1-audit.log", fetched.body);
  const std::string verify = fmt::format("{} audit verify --config {} --instance clone1 --file {{}} 2>&1",
                                         ca_server_binary().string(), master().config_file().string());
  auto intact = shell(fmt::format(fmt::runtime(verify), path("clone1-audit.log")));
  EXPECT_EQ(intact.exit_code, 0) << intact.output;

  // The same trail cut to its first half.
  std::vector<std::string> lines;
  std::istringstream in(fetched.body);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_GT(lines.size(), 2u);
  std::string half;
  for (std::size_t i = 0; i < lines.size() / 2; ++i) half += lines[i] + "\n";
  write_file(work_.path() / "clone1-cut.log", half);
  Shell cut{-1, ""};
  for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30); std::chrono::steady_clock::now() < until;
       std::this_thread::sleep_for(std::chrono::milliseconds(500))) {
    cut = shell(fmt::format(fmt::runtime(verify), path("clone1-cut.log")));
    if (cut.exit_code == 1 && cut.output.find("first missing seq") != std::string::npos) break;
  }
  EXPECT_EQ(cut.exit_code, 1) << cut.output;
  EXPECT_NE(cut.output.find(fmt::format("first missing seq {}", lines.size() / 2 + 1)), std::string::npos) << cut.output;

  // An auditor taken out of the group and revoked reads nothing, on every instance the change reaches.
  const std::string stem = std::filesystem::path(cert).stem().string();  // auditor-<serial>
  auto removed = shell(fmt::format("{} auditor remove --config {} --serial {} --revoke", ca_server_binary().string(),
                                   master().config_file().string(), stem.substr(stem.find('-') + 1)));
  ASSERT_EQ(removed.exit_code, 0) << removed.output;
  int status = 0;
  for (int i = 0; i < 100 && (status = call(clone(1), "GET", "/ca/rest/audit/log", "", cert, key).status) != 403; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(status, 403);
}

// The instance itself may register again with a new key: the certificate it replaces is revoked
// at once and refused from then on. Last in this file: clone2 ends with a new certificate.
TEST_F(InstanceScopeTest, OnlyTheInstanceItselfRegistersAgainAndItsReplacedCertificateIsRevoked) {
  const std::string old_cert = subsystem_cert(clone(2)), old_key = subsystem_key(clone(2));
  const std::string old_serial = serial_of(old_cert);
  const std::string request = fmt::format(R"({{"instance_id":"clone2","url":"{}","subsystem_csr":"{}"}})",
                                          clone(2).https_url(), json_escape(csr("rekey", "/CN=clone2")));
  // An administrator cannot re-register an existing ID either.
  auto by_admin = call(master(), "POST", "/ca/rest/admin/clones", request, master().admin_cert().string(),
                       master().admin_key().string());
  EXPECT_EQ(by_admin.status, 409) << by_admin.body;
  auto again = call(master(), "POST", "/ca/rest/admin/clones", request, old_cert, old_key);
  ASSERT_EQ(again.status, 201) << again.body;
  write_file(work_.path() / "rekey.pem", json_field(again.body, "subsystem_certificate"));
  auto record = master().client().get("/ca/rest/certs/" + old_serial);
  EXPECT_EQ(json_field(record.body, "status"), "REVOKED") << record.body;
  auto with_old = call(master(), "GET", "/ca/rest/admin/topology", "", old_cert, old_key);
  EXPECT_EQ(with_old.status, 403) << with_old.body;
  auto with_new = call(master(), "GET", "/ca/rest/admin/topology", "", path("rekey.pem"), path("rekey.key"));
  EXPECT_EQ(with_new.status, 200) << with_new.body;
  // An administrator retires it.
  auto retired = call(master(), "DELETE", fmt::format("/ca/rest/admin/clones/{}", replica_id_of(clone(2))), "",
                      master().admin_cert().string(), master().admin_key().string());
  EXPECT_EQ(retired.status, 200) << retired.body;
}

}  // namespace
}  // namespace ca::testing
