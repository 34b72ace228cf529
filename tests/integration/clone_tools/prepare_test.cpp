// ca-clone prepare / p12-find end to end: a real instance made by `ca-server init` (embedded slapd),
// the real ca-clone binary, and the bundle opened by the openssl command line and by NSS's tools.
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "core/child_process.hpp"
#include "crypto/pem.hpp"
#include "support/ca_server_fixture.hpp"

namespace ca::testing {
namespace {

namespace fs = std::filesystem;

const char* const kExported[] = {"ca_signing", "ocsp_signing", "subsystem", "audit_signing"};
const char* const kNicknames[] = {"caSigningCert cert-test CA", "ocspSigningCert cert-test CA", "subsystemCert cert-test",
                                  "auditSigningCert cert-test CA"};

fs::path ca_clone_binary() { return fs::path(CA_BIN_DIR) / "ca-clone"; }

CommandResult ca_clone(std::vector<std::string> args, const std::string& stdin_text = "") {
  args.insert(args.begin(), ca_clone_binary().string());
  auto r = run_command(args, stdin_text);
  return r ? *r : CommandResult{-1, r.error().message};
}

mode_t file_mode(const fs::path& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0;
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

bool have(const char* tool) { return shell(fmt::format("command -v {}", tool)).exit_code == 0; }

// One instance for the suite (ctest runs each case in its own process, so each case gets one).
class PrepareTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new CaServer();
    auto init = server_->init();
    ASSERT_EQ(init.exit_code, 0) << init.output;
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    write_file(password_file(), "clone bundle password\n");
    write_file(work_ / "wrong.pw", "not the password\n");
  }

  fs::path password_file() const { return work_ / "bundle.pw"; }
  fs::path bundle() const { return work_ / "clone.p12"; }
  std::string quoted(const fs::path& p) const { return fmt::format("'{}'", p.string()); }

  CommandResult prepare(std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"prepare", "--config", server_->config_file().string(), "--pkcs12-file",
                                  bundle().string(), "--pkcs12-password-file", password_file().string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return ca_clone(args);
  }

  // A fresh NSS database with an empty password.
  fs::path nss_database(const std::string& name) {
    fs::path db = work_ / name;
    fs::create_directories(db);
    auto made = shell(fmt::format("certutil -N -d sql:{} --empty-password", quoted(db)));
    EXPECT_EQ(made.exit_code, 0) << made.output;
    return db;
  }

  static CaServer* server_;
  TempDir work_{"ca-clone"};
};
CaServer* PrepareTest::server_ = nullptr;

TEST_F(PrepareTest, BundleHoldsTheSubsystemCertificatesWithKeysAndDogtagNames) {
  auto made = prepare();
  ASSERT_EQ(made.exit_code, 0) << made.output;
  EXPECT_EQ(file_mode(bundle()), 0600);
  EXPECT_NE(made.output.find("4 certificate(s) and 4 key(s)"), std::string::npos) << made.output;

  auto listed = ca_clone({"p12-find", "--pkcs12-file", bundle().string(), "--pkcs12-password-file", password_file().string()});
  ASSERT_EQ(listed.exit_code, 0) << listed.output;
  EXPECT_NE(listed.output.find("4 entries found"), std::string::npos) << listed.output;
  for (const char* nickname : kNicknames)
    EXPECT_NE(listed.output.find(fmt::format("Friendly Name: {}\n", nickname)), std::string::npos) << nickname;
  EXPECT_EQ(count(listed.output, "Has Key: true"), 4u) << listed.output;
  EXPECT_EQ(count(listed.output, "Trust Flags: CTu,Cu,Cu"), 1u);
  EXPECT_EQ(count(listed.output, "Trust Flags: u,u,Pu"), 1u);
  EXPECT_EQ(count(listed.output, "Trust Flags: u,u,u"), 2u);
  // Each clone makes its own TLS server and agent certificates.
  EXPECT_EQ(listed.output.find("CN=localhost"), std::string::npos) << listed.output;
  EXPECT_EQ(listed.output.find("CA Administrator"), std::string::npos) << listed.output;

  // --json: the same facts, checked against the instance's own files.
  auto json = ca_clone(
      {"p12-find", "--pkcs12-file", bundle().string(), "--pkcs12-password-file", password_file().string(), "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.output;
  boost::system::error_code ec;
  auto doc = boost::json::parse(json.output, ec);
  ASSERT_FALSE(ec) << json.output;
  const auto& certs = doc.at("certificates").as_array();
  ASSERT_EQ(certs.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) {
    SCOPED_TRACE(kExported[i]);
    auto cert = crypto::load_certificate_file(server_->dir() / "certs" / (std::string(kExported[i]) + ".pem"));
    ASSERT_TRUE(cert) << cert.error().message;
    const auto& entry = certs[i].as_object();
    EXPECT_EQ(entry.at("friendly_name").as_string(), kNicknames[i]);
    EXPECT_EQ(entry.at("id").as_string(), crypto::sha1_fingerprint_hex(cert->get()));
    EXPECT_EQ(entry.at("serial_number").as_string(), "0x" + crypto::serial_to_hex(X509_get0_serialNumber(cert->get())));
    EXPECT_EQ(entry.at("subject_dn").as_string(), crypto::name_to_string(X509_get_subject_name(cert->get())));
    EXPECT_EQ(entry.at("issuer_dn").as_string(), "CN=Test CA,O=Example");
    EXPECT_TRUE(entry.at("has_key").as_bool());
  }
}

TEST_F(PrepareTest, OpensslOpensTheBundleAndFindsTheInstanceKeys) {
  auto made = prepare();
  ASSERT_EQ(made.exit_code, 0) << made.output;
  auto info = shell(fmt::format("openssl pkcs12 -info -noout -in {} -passin file:{}", quoted(bundle()), quoted(password_file())));
  ASSERT_EQ(info.exit_code, 0) << info.output;
  EXPECT_NE(info.output.find("MAC: sha256, Iteration 600000"), std::string::npos) << info.output;
  EXPECT_EQ(count(info.output, "Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 600000, PRF hmacWithSHA256"), 4u)
      << info.output;
  EXPECT_EQ(count(info.output, "Certificate bag"), 4u);

  auto names = shell(fmt::format("openssl pkcs12 -in {} -passin file:{} -nokeys", quoted(bundle()), quoted(password_file())));
  ASSERT_EQ(names.exit_code, 0) << names.output;
  for (const char* nickname : kNicknames)
    EXPECT_NE(names.output.find(fmt::format("friendlyName: {}", nickname)), std::string::npos) << nickname;

  // The keys in the bundle are the instance's keys (same PKCS#8 encoding, as `openssl pkey` prints it).
  auto bundle_keys = shell(
      fmt::format("openssl pkcs12 -in {} -passin file:{} -nocerts -nodes", quoted(bundle()), quoted(password_file())));
  ASSERT_EQ(bundle_keys.exit_code, 0) << bundle_keys.output;
  EXPECT_EQ(count(bundle_keys.output, "BEGIN PRIVATE KEY"), 4u) << "four keys, no others";
  for (const char* name : kExported) {
    auto key = shell(fmt::format("openssl pkey -in {}", quoted(server_->dir() / "private" / (std::string(name) + ".key"))));
    ASSERT_EQ(key.exit_code, 0) << key.output;
    ASSERT_NE(key.output.find("BEGIN PRIVATE KEY"), std::string::npos) << key.output;
    EXPECT_NE(bundle_keys.output.find(key.output), std::string::npos) << name;
  }
}

TEST_F(PrepareTest, NssListsAndImportsTheBundle) {
  ASSERT_TRUE(have("pk12util") && have("certutil")) << "NSS tools missing: apt-get install libnss3-tools";
  auto made = prepare();
  ASSERT_EQ(made.exit_code, 0) << made.output;

  auto listed = shell(fmt::format("pk12util -l {} -w {}", quoted(bundle()), quoted(password_file())));
  ASSERT_EQ(listed.exit_code, 0) << listed.output;
  EXPECT_EQ(count(listed.output, "Certificate(has private key):"), 4u) << listed.output;
  EXPECT_EQ(count(listed.output, "Key(shrouded):"), 4u) << listed.output;
  for (const char* nickname : kNicknames)
    EXPECT_GE(count(listed.output, fmt::format("Friendly Name: {}\n", nickname)), 2u) << nickname;

  auto wrong = shell(fmt::format("pk12util -l {} -w {}", quoted(bundle()), quoted(work_ / "wrong.pw")));
  EXPECT_NE(wrong.exit_code, 0) << wrong.output;

  // Imported into a database: the certificates under their nicknames, each with its key; the CA is
  // then trusted as the help text says (pk12util itself ignores trust in PKCS#12).
  fs::path db = nss_database("nssdb");
  auto imported = shell(fmt::format("pk12util -i {} -w {} -d sql:{} -k /dev/null", quoted(bundle()),
                                    quoted(password_file()), quoted(db)));
  ASSERT_EQ(imported.exit_code, 0) << imported.output;
  auto certs = shell(fmt::format("certutil -L -d sql:{}", quoted(db)));
  ASSERT_EQ(certs.exit_code, 0) << certs.output;
  for (const char* nickname : kNicknames) EXPECT_NE(certs.output.find(nickname), std::string::npos) << certs.output;
  auto keys = shell(fmt::format("certutil -K -d sql:{} -f /dev/null", quoted(db)));
  ASSERT_EQ(keys.exit_code, 0) << keys.output;
  for (const char* nickname : kNicknames) EXPECT_NE(keys.output.find(nickname), std::string::npos) << keys.output;
  auto trusted = shell(fmt::format(
      "certutil -M -d sql:{0} -n 'caSigningCert cert-test CA' -t CTu,Cu,Cu && certutil -L -d sql:{0} -n 'caSigningCert "
      "cert-test CA' | grep -A3 'Certificate Trust Flags'",
      quoted(db)));
  EXPECT_EQ(trusted.exit_code, 0) << trusted.output;
  EXPECT_NE(trusted.output.find("Trusted CA"), std::string::npos) << trusted.output;
  auto verify = shell(fmt::format("certutil -V -d sql:{} -n 'subsystemCert cert-test' -u C", quoted(db)));
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
}

TEST_F(PrepareTest, NoKeyExportsCertificatesOnly) {
  auto made = prepare({"--no-key"});
  ASSERT_EQ(made.exit_code, 0) << made.output;
  auto listed = ca_clone({"p12-find", "--pkcs12-file", bundle().string(), "--pkcs12-password-file", password_file().string()});
  ASSERT_EQ(listed.exit_code, 0) << listed.output;
  EXPECT_EQ(count(listed.output, "Has Key: false"), 4u) << listed.output;
  EXPECT_NE(listed.output.find("Trust Flags: CT,C,C"), std::string::npos) << listed.output;

  auto info = shell(fmt::format("openssl pkcs12 -info -noout -in {} -passin file:{}", quoted(bundle()), quoted(password_file())));
  ASSERT_EQ(info.exit_code, 0) << info.output;
  EXPECT_EQ(info.output.find("Keybag"), std::string::npos) << info.output;
  if (have("pk12util")) {
    auto nss = shell(fmt::format("pk12util -l {} -w {}", quoted(bundle()), quoted(password_file())));
    ASSERT_EQ(nss.exit_code, 0) << nss.output;
    EXPECT_EQ(nss.output.find("Key(shrouded)"), std::string::npos) << nss.output;
    EXPECT_EQ(count(nss.output, "Certificate:"), 4u) << nss.output;
  }
}

TEST_F(PrepareTest, WrongPasswordExistingFileAndPasswordFromStandardInput) {
  // The password from standard input.
  auto made = ca_clone({"prepare", "--config", server_->config_file().string(), "--pkcs12-file", bundle().string(),
                        "--pkcs12-password-file", "-"},
                       "from stdin\n");
  ASSERT_EQ(made.exit_code, 0) << made.output;
  auto listed = ca_clone({"p12-find", "--pkcs12-file", bundle().string(), "--pkcs12-password-file", "-"}, "from stdin\n");
  EXPECT_EQ(listed.exit_code, 0) << listed.output;

  auto wrong = ca_clone({"p12-find", "--pkcs12-file", bundle().string(), "--pkcs12-password-file", password_file().string()});
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_NE(wrong.output.find("wrong password or damaged file"), std::string::npos) << wrong.output;

  // An existing file is kept unless --overwrite.
  std::string before = read_file(bundle());
  auto again = prepare();
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.output.find("already exists"), std::string::npos) << again.output;
  EXPECT_NE(again.output.find("--overwrite"), std::string::npos) << again.output;
  EXPECT_EQ(read_file(bundle()), before);
  auto replaced = prepare({"--overwrite"});
  ASSERT_EQ(replaced.exit_code, 0) << replaced.output;
  EXPECT_NE(read_file(bundle()), before);
  EXPECT_EQ(file_mode(bundle()), 0600);
  auto reread = ca_clone({"p12-find", "--pkcs12-file", bundle().string(), "--pkcs12-password-file", password_file().string()});
  EXPECT_EQ(reread.exit_code, 0) << reread.output;

  // No temporary files next to the bundle.
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(work_.path())) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"bundle.pw", "clone.p12", "wrong.pw"}));

  auto not_a_bundle = ca_clone({"p12-find", "--pkcs12-file", password_file().string(), "--pkcs12-password-file",
                                password_file().string()});
  EXPECT_EQ(not_a_bundle.exit_code, 1) << not_a_bundle.output;
}

TEST_F(PrepareTest, InstanceFolderNamesItsInstanceId) {
  // Without a YAML in the folder, the ID must be given.
  auto no_id = ca_clone({"prepare", "--instance", server_->dir().string(), "--pkcs12-file", bundle().string(),
                         "--pkcs12-password-file", password_file().string()});
  EXPECT_EQ(no_id.exit_code, 2) << no_id.output;
  EXPECT_NE(no_id.output.find("--instance-id"), std::string::npos) << no_id.output;
  EXPECT_FALSE(fs::exists(bundle()));

  auto given = ca_clone({"prepare", "--instance", server_->dir().string(), "--instance-id", "pki-tomcat", "--pkcs12-file",
                         bundle().string(), "--pkcs12-password-file", password_file().string()});
  ASSERT_EQ(given.exit_code, 0) << given.output;
  EXPECT_NE(given.output.find("caSigningCert cert-pki-tomcat CA"), std::string::npos) << given.output;

  // The layout quickstart uses: instance.yaml inside the instance folder.
  write_file(server_->dir() / "instance.yaml", "instance:\n  id: from-yaml\n  dir: .\n");
  auto from_yaml = ca_clone({"prepare", "--instance", server_->dir().string(), "--pkcs12-file", bundle().string(),
                             "--pkcs12-password-file", password_file().string(), "--overwrite"});
  fs::remove(server_->dir() / "instance.yaml");
  ASSERT_EQ(from_yaml.exit_code, 0) << from_yaml.output;
  auto listed = ca_clone({"p12-find", "--pkcs12-file", bundle().string(), "--pkcs12-password-file", password_file().string()});
  ASSERT_EQ(listed.exit_code, 0) << listed.output;
  EXPECT_NE(listed.output.find("Friendly Name: subsystemCert cert-from-yaml\n"), std::string::npos) << listed.output;

  auto missing = ca_clone({"prepare", "--instance", (work_ / "no-such-instance").string(), "--instance-id", "x",
                           "--pkcs12-file", (work_ / "x.p12").string(), "--pkcs12-password-file", password_file().string()});
  EXPECT_EQ(missing.exit_code, 1) << missing.output;
  EXPECT_FALSE(fs::exists(work_ / "x.p12"));
}

TEST(CaCloneCommandLine, HelpEverywhereUsageErrorsExitTwo) {
  auto help = ca_clone({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  for (const char* command : {"prepare", "p12-find", "spawn", "status", "remove"})
    EXPECT_NE(help.output.find(command), std::string::npos) << help.output;
  for (const char* command : {"prepare", "p12-find"}) {
    SCOPED_TRACE(command);
    for (const char* flag : {"--help", "-h"}) {
      auto r = ca_clone({command, flag});
      EXPECT_EQ(r.exit_code, 0) << r.output;
      EXPECT_NE(r.output.find(fmt::format("usage: ca-clone {}", command)), std::string::npos) << r.output;
      EXPECT_NE(r.output.find("--pkcs12-password-file"), std::string::npos);
    }
    auto bare = ca_clone({command});
    EXPECT_EQ(bare.exit_code, 2) << bare.output;
    auto unknown = ca_clone({command, "--frobnicate"});
    EXPECT_EQ(unknown.exit_code, 2) << unknown.output;
    // A password on the command line is refused, with the way to do it instead.
    auto argv_password = ca_clone({command, "--pkcs12-file", "x.p12", "--pkcs12-password", "secret"});
    EXPECT_EQ(argv_password.exit_code, 2) << argv_password.output;
    EXPECT_NE(argv_password.output.find("never taken from the command line"), std::string::npos) << argv_password.output;
  }
  EXPECT_EQ(ca_clone({}).exit_code, 2);
  EXPECT_EQ(ca_clone({"no-such-command"}).exit_code, 2);
  EXPECT_EQ(ca_clone({"spawn"}).exit_code, 2);
}

}  // namespace
}  // namespace ca::testing
