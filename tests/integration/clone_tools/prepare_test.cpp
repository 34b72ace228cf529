// ca-clone prepare / p12-find end to end: a real instance made by `ca-server init` (embedded slapd),
// the real ca-clone binary, and the bundle opened by the openssl command line and by NSS's tools.
// The bundle holds the CA, OCSP and audit signing certificates and keys, never the subsystem
// certificate (every instance has its own); prepare also writes a join token whose salted hash
// only is kept in the instance's directory.
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "authority/access/one_time_secret.hpp"
#include "core/child_process.hpp"
#include "crypto/pem.hpp"
#include "store/records.hpp"
#include "support/ca_server_fixture.hpp"

namespace ca::testing {
namespace {

namespace fs = std::filesystem;

// In bundle order. The subsystem certificate (certs/subsystem.pem) is the instance's own: never exported.
const char* const kExported[] = {"ca_signing", "ocsp_signing", "audit_signing", "kra_storage", "kra_transport"};
const char* const kNicknames[] = {"caSigningCert cert-test CA", "ocspSigningCert cert-test CA",
                                  "auditSigningCert cert-test CA", "storageCert cert-test KRA",
                                  "transportCert cert-test KRA"};
constexpr std::size_t kCount = std::size(kExported);

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

// The bundle's join token file, as prepare writes it next to the bundle by default.
fs::path token_file_of(const fs::path& bundle) { return fs::path(bundle.string() + ".join-token"); }

struct JoinToken {
  std::string id, secret;
};

// The join token file: mode 0600, one line "<hex id>.<hex secret>" (the secret of at least 128 bits).
JoinToken read_join_token(const fs::path& file) {
  EXPECT_TRUE(fs::exists(file)) << file;
  EXPECT_EQ(file_mode(file), 0600) << file;
  std::string text = read_file(file);
  std::smatch m;
  if (!std::regex_match(text, m, std::regex("([0-9a-f]+)\\.([0-9a-f]{32,})\n"))) {
    ADD_FAILURE() << "not a join token (<hex>.<hex>): '" << text << "' in " << file;
    return {};
  }
  return {m[1].str(), m[2].str()};
}

// The first value of `name` in an LDIF dump read without line wrapping, "" when absent.
std::string ldif_value(const std::string& ldif, const std::string& name) {
  const std::string prefix = name + ": ";
  std::size_t at = 0;
  while (at < ldif.size()) {
    std::size_t eol = ldif.find('\n', at);
    if (eol == std::string::npos) eol = ldif.size();
    if (ldif.compare(at, prefix.size(), prefix) == 0) return ldif.substr(at + prefix.size(), eol - at - prefix.size());
    at = eol + 1;
  }
  return "";
}

// One instance for the suite (ctest runs each case in its own process, so each case gets one).
// It is initialised, not running: prepare starts and stops its embedded directory itself.
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
    // The instance's own subsystem certificate and key exist: the bundle must leave them out.
    ASSERT_TRUE(fs::exists(subsystem_cert()));
    ASSERT_TRUE(fs::exists(server_->dir() / "private" / "subsystem.key"));
  }

  fs::path password_file() const { return work_ / "bundle.pw"; }
  fs::path bundle() const { return work_ / "clone.p12"; }
  fs::path token_file() const { return token_file_of(bundle()); }
  static fs::path subsystem_cert() { return server_->dir() / "certs" / "subsystem.pem"; }
  std::string quoted(const fs::path& p) const { return fmt::format("'{}'", p.string()); }

  CommandResult prepare(std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"prepare", "--config", server_->config_file().string(), "--pkcs12-file",
                                  bundle().string(), "--pkcs12-password-file", password_file().string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return ca_clone(args);
  }
  CommandResult p12_find(const fs::path& file) {
    return ca_clone({"p12-find", "--pkcs12-file", file.string(), "--pkcs12-password-file", password_file().string()});
  }

  // The instance's directory (it must be running), read with the real ldapsearch, lines unwrapped.
  Shell ldapsearch(const std::string& base, const std::string& scope = "sub") {
    return shell(fmt::format("ldapsearch -LLL -x -o ldif-wrap=no -H '{}' -D '{}' -y {} -b '{}' -s {}", server_->ldap_url(),
                             server_->bind_dn(), quoted(server_->password_file()), base, scope));
  }
  static std::string token_dn(const std::string& id) { return fmt::format("cn={},ou=joinTokens,o=pki-ca", id); }

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

TEST_F(PrepareTest, BundleHoldsTheSigningCertificatesWithKeysAndDogtagNamesButNoSubsystemCertificate) {
  auto made = prepare();
  ASSERT_EQ(made.exit_code, 0) << made.output;
  EXPECT_EQ(file_mode(bundle()), 0600);
  EXPECT_NE(made.output.find(fmt::format("Exported {0} certificate(s) and {0} key(s) of instance 'test'", kCount)), std::string::npos)
      << made.output;
  for (const char* nickname : kNicknames)
    EXPECT_NE(made.output.find(fmt::format("  {:<36} with key ", nickname)), std::string::npos) << made.output;
  EXPECT_EQ(made.output.find("subsystemCert"), std::string::npos) << made.output;
  EXPECT_NE(made.output.find(fmt::format("Join token (one registration, 86400 s): {} (mode 0600)\n", token_file().string())),
            std::string::npos)
      << made.output;
  read_join_token(token_file());

  auto subsystem = crypto::load_certificate_file(subsystem_cert());
  ASSERT_TRUE(subsystem) << subsystem.error().message;
  const std::string subsystem_subject = crypto::name_to_string(X509_get_subject_name(subsystem->get()));
  const std::string subsystem_id = crypto::sha1_fingerprint_hex(subsystem->get());

  auto listed = p12_find(bundle());
  ASSERT_EQ(listed.exit_code, 0) << listed.output;
  EXPECT_NE(listed.output.find(fmt::format("{} entries found", kCount)), std::string::npos) << listed.output;
  for (const char* nickname : kNicknames)
    EXPECT_NE(listed.output.find(fmt::format("Friendly Name: {}\n", nickname)), std::string::npos) << nickname;
  EXPECT_EQ(count(listed.output, "Friendly Name: "), kCount) << listed.output;
  EXPECT_EQ(count(listed.output, "Has Key: true"), kCount) << listed.output;
  EXPECT_EQ(count(listed.output, "Has Key: false"), 0u) << listed.output;
  EXPECT_EQ(count(listed.output, "Trust Flags: CTu,Cu,Cu\n"), 1u) << listed.output;
  EXPECT_EQ(count(listed.output, "Trust Flags: u,u,Pu\n"), 1u) << listed.output;
  EXPECT_EQ(count(listed.output, "Trust Flags: u,u,u\n"), 3u) << "OCSP, KRA storage and transport\n" << listed.output;
  // Each instance has its own subsystem, TLS server and agent certificates: none is in the bundle.
  EXPECT_EQ(listed.output.find("subsystemCert"), std::string::npos) << listed.output;
  EXPECT_EQ(listed.output.find(subsystem_subject), std::string::npos) << subsystem_subject << "\n" << listed.output;
  EXPECT_EQ(listed.output.find(subsystem_id), std::string::npos) << listed.output;
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
  ASSERT_EQ(certs.size(), kCount) << json.output;
  for (std::size_t i = 0; i < kCount; ++i) {
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
    EXPECT_NE(entry.at("id").as_string(), subsystem_id);
    EXPECT_NE(entry.at("subject_dn").as_string(), subsystem_subject);
  }
}

TEST_F(PrepareTest, OpensslOpensTheBundleAndFindsTheInstanceKeys) {
  auto made = prepare();
  ASSERT_EQ(made.exit_code, 0) << made.output;
  auto info = shell(fmt::format("openssl pkcs12 -info -noout -in {} -passin file:{}", quoted(bundle()), quoted(password_file())));
  ASSERT_EQ(info.exit_code, 0) << info.output;
  EXPECT_NE(info.output.find("MAC: sha256, Iteration 600000"), std::string::npos) << info.output;
  EXPECT_EQ(count(info.output, "Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 600000, PRF hmacWithSHA256"), kCount)
      << info.output;
  EXPECT_EQ(count(info.output, "Keybag"), kCount) << "every key shrouded\n" << info.output;
  EXPECT_EQ(count(info.output, "Certificate bag"), kCount) << info.output;

  auto names = shell(fmt::format("openssl pkcs12 -in {} -passin file:{} -nokeys", quoted(bundle()), quoted(password_file())));
  ASSERT_EQ(names.exit_code, 0) << names.output;
  for (const char* nickname : kNicknames)
    EXPECT_NE(names.output.find(fmt::format("friendlyName: {}", nickname)), std::string::npos) << nickname;
  EXPECT_EQ(count(names.output, "BEGIN CERTIFICATE"), kCount) << names.output;
  EXPECT_EQ(names.output.find("subsystemCert"), std::string::npos) << names.output;
  // The instance's certificates, as `openssl x509` prints them: the signing ones in, the subsystem one out.
  for (const char* name : kExported) {
    auto pem = shell(fmt::format("openssl x509 -in {}", quoted(server_->dir() / "certs" / (std::string(name) + ".pem"))));
    ASSERT_EQ(pem.exit_code, 0) << pem.output;
    EXPECT_NE(names.output.find(pem.output), std::string::npos) << name;
  }
  auto subsystem_pem = shell(fmt::format("openssl x509 -in {}", quoted(subsystem_cert())));
  ASSERT_EQ(subsystem_pem.exit_code, 0) << subsystem_pem.output;
  ASSERT_NE(subsystem_pem.output.find("BEGIN CERTIFICATE"), std::string::npos) << subsystem_pem.output;
  EXPECT_EQ(names.output.find(subsystem_pem.output), std::string::npos) << "the subsystem certificate is in the bundle";

  // The keys in the bundle are the instance's keys (same PKCS#8 encoding, as `openssl pkey` prints it).
  auto bundle_keys = shell(
      fmt::format("openssl pkcs12 -in {} -passin file:{} -nocerts -nodes", quoted(bundle()), quoted(password_file())));
  ASSERT_EQ(bundle_keys.exit_code, 0) << bundle_keys.output;
  EXPECT_EQ(count(bundle_keys.output, "BEGIN PRIVATE KEY"), kCount) << "these keys, no others";
  for (const char* name : kExported) {
    auto key = shell(fmt::format("openssl pkey -in {}", quoted(server_->dir() / "private" / (std::string(name) + ".key"))));
    ASSERT_EQ(key.exit_code, 0) << key.output;
    ASSERT_NE(key.output.find("BEGIN PRIVATE KEY"), std::string::npos) << key.output;
    EXPECT_NE(bundle_keys.output.find(key.output), std::string::npos) << name;
  }
  auto subsystem_key = shell(fmt::format("openssl pkey -in {}", quoted(server_->dir() / "private" / "subsystem.key")));
  ASSERT_EQ(subsystem_key.exit_code, 0) << subsystem_key.output;
  ASSERT_NE(subsystem_key.output.find("BEGIN PRIVATE KEY"), std::string::npos) << subsystem_key.output;
  EXPECT_EQ(bundle_keys.output.find(subsystem_key.output), std::string::npos) << "the subsystem key is in the bundle";
}

TEST_F(PrepareTest, NssListsAndImportsTheBundle) {
  ASSERT_TRUE(have("pk12util") && have("certutil")) << "NSS tools missing: apt-get install libnss3-tools";
  auto made = prepare();
  ASSERT_EQ(made.exit_code, 0) << made.output;

  auto listed = shell(fmt::format("pk12util -l {} -w {}", quoted(bundle()), quoted(password_file())));
  ASSERT_EQ(listed.exit_code, 0) << listed.output;
  EXPECT_EQ(count(listed.output, "Certificate(has private key):"), kCount) << listed.output;
  EXPECT_EQ(count(listed.output, "Key(shrouded):"), kCount) << listed.output;
  for (const char* nickname : kNicknames)
    EXPECT_GE(count(listed.output, fmt::format("Friendly Name: {}\n", nickname)), 2u) << nickname;
  EXPECT_EQ(listed.output.find("subsystemCert"), std::string::npos) << listed.output;

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
  EXPECT_EQ(certs.output.find("subsystemCert"), std::string::npos) << certs.output;
  auto keys = shell(fmt::format("certutil -K -d sql:{} -f /dev/null", quoted(db)));
  ASSERT_EQ(keys.exit_code, 0) << keys.output;
  for (const char* nickname : kNicknames) EXPECT_NE(keys.output.find(nickname), std::string::npos) << keys.output;
  EXPECT_EQ(keys.output.find("subsystemCert"), std::string::npos) << keys.output;
  auto key_count = shell(fmt::format("certutil -K -d sql:{} -f /dev/null | grep -c '^<'", quoted(db)));
  EXPECT_EQ(key_count.output, fmt::format("{}\n", kCount)) << keys.output;
  auto trusted = shell(fmt::format(
      "certutil -M -d sql:{0} -n 'caSigningCert cert-test CA' -t CTu,Cu,Cu && certutil -L -d sql:{0} -n 'caSigningCert "
      "cert-test CA' | grep -A3 'Certificate Trust Flags'",
      quoted(db)));
  EXPECT_EQ(trusted.exit_code, 0) << trusted.output;
  EXPECT_NE(trusted.output.find("Trusted CA"), std::string::npos) << trusted.output;
  // An imported end-entity certificate chains to the trusted CA: the OCSP signer, as a status responder.
  auto verify = shell(fmt::format("certutil -V -d sql:{} -n 'ocspSigningCert cert-test CA' -u O", quoted(db)));
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
}

TEST_F(PrepareTest, NoKeyExportsCertificatesOnly) {
  auto made = prepare({"--no-key"});
  ASSERT_EQ(made.exit_code, 0) << made.output;
  EXPECT_NE(made.output.find(fmt::format("Exported {} certificate(s) and 0 key(s) of instance 'test'", kCount)), std::string::npos)
      << made.output;
  for (const char* nickname : kNicknames)
    EXPECT_NE(made.output.find(fmt::format("  {:<36} cert only ", nickname)), std::string::npos) << made.output;
  read_join_token(token_file());

  auto listed = p12_find(bundle());
  ASSERT_EQ(listed.exit_code, 0) << listed.output;
  EXPECT_NE(listed.output.find(fmt::format("{} entries found", kCount)), std::string::npos) << listed.output;
  EXPECT_EQ(count(listed.output, "Has Key: false"), kCount) << listed.output;
  EXPECT_EQ(count(listed.output, "Has Key: true"), 0u) << listed.output;
  // The trust flags without 'u' (no key).
  EXPECT_EQ(count(listed.output, "Trust Flags: CT,C,C\n"), 1u) << listed.output;
  EXPECT_EQ(count(listed.output, "Trust Flags: ,,P\n"), 1u) << listed.output;
  EXPECT_EQ(count(listed.output, "Trust Flags: ,,\n"), 3u) << "OCSP, KRA storage and transport\n" << listed.output;
  EXPECT_EQ(listed.output.find("subsystemCert"), std::string::npos) << listed.output;

  auto info = shell(fmt::format("openssl pkcs12 -info -noout -in {} -passin file:{}", quoted(bundle()), quoted(password_file())));
  ASSERT_EQ(info.exit_code, 0) << info.output;
  EXPECT_EQ(info.output.find("Keybag"), std::string::npos) << info.output;
  EXPECT_EQ(count(info.output, "Certificate bag"), kCount) << info.output;
  if (have("pk12util")) {
    auto nss = shell(fmt::format("pk12util -l {} -w {}", quoted(bundle()), quoted(password_file())));
    ASSERT_EQ(nss.exit_code, 0) << nss.output;
    EXPECT_EQ(nss.output.find("Key(shrouded)"), std::string::npos) << nss.output;
    EXPECT_EQ(count(nss.output, "Certificate:"), kCount) << nss.output;
    EXPECT_EQ(nss.output.find("subsystemCert"), std::string::npos) << nss.output;
  }
}

TEST_F(PrepareTest, WrongPasswordExistingFilesAndPasswordFromStandardInput) {
  // The password from standard input.
  auto made = ca_clone({"prepare", "--config", server_->config_file().string(), "--pkcs12-file", bundle().string(),
                        "--pkcs12-password-file", "-"},
                       "from stdin\n");
  ASSERT_EQ(made.exit_code, 0) << made.output;
  EXPECT_EQ(file_mode(bundle()), 0600);
  JoinToken first = read_join_token(token_file());
  auto listed = ca_clone({"p12-find", "--pkcs12-file", bundle().string(), "--pkcs12-password-file", "-"}, "from stdin\n");
  EXPECT_EQ(listed.exit_code, 0) << listed.output;
  EXPECT_NE(listed.output.find(fmt::format("{} entries found", kCount)), std::string::npos) << listed.output;

  auto wrong = p12_find(bundle());
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_NE(wrong.output.find("wrong password or damaged file"), std::string::npos) << wrong.output;

  // Existing files are kept unless --overwrite: the bundle and its token file, together.
  std::string before = read_file(bundle());
  std::string token_before = read_file(token_file());
  auto again = prepare();
  EXPECT_EQ(again.exit_code, 1) << again.output;
  EXPECT_NE(again.output.find("already exists"), std::string::npos) << again.output;
  EXPECT_NE(again.output.find("--overwrite"), std::string::npos) << again.output;
  EXPECT_EQ(read_file(bundle()), before);
  EXPECT_EQ(read_file(token_file()), token_before);

  auto replaced = prepare({"--overwrite"});
  ASSERT_EQ(replaced.exit_code, 0) << replaced.output;
  EXPECT_NE(read_file(bundle()), before);
  EXPECT_EQ(file_mode(bundle()), 0600);
  JoinToken second = read_join_token(token_file());
  EXPECT_NE(second.id, first.id);
  EXPECT_NE(second.secret, first.secret);
  auto reread = p12_find(bundle());
  EXPECT_EQ(reread.exit_code, 0) << reread.output;

  // A token file alone is refused like a bundle: nothing is written.
  fs::remove(bundle());
  token_before = read_file(token_file());
  auto token_there = prepare();
  EXPECT_EQ(token_there.exit_code, 1) << token_there.output;
  EXPECT_NE(token_there.output.find(fmt::format("'{}' already exists", token_file().string())), std::string::npos)
      << token_there.output;
  EXPECT_NE(token_there.output.find("--overwrite"), std::string::npos) << token_there.output;
  EXPECT_FALSE(fs::exists(bundle()));
  EXPECT_EQ(read_file(token_file()), token_before);

  // A bundle alone: refused, and no token is written.
  ASSERT_EQ(prepare({"--overwrite"}).exit_code, 0);
  fs::remove(token_file());
  before = read_file(bundle());
  auto bundle_there = prepare();
  EXPECT_EQ(bundle_there.exit_code, 1) << bundle_there.output;
  EXPECT_NE(bundle_there.output.find(fmt::format("'{}' already exists", bundle().string())), std::string::npos)
      << bundle_there.output;
  EXPECT_NE(bundle_there.output.find("--overwrite"), std::string::npos) << bundle_there.output;
  EXPECT_EQ(read_file(bundle()), before);
  EXPECT_FALSE(fs::exists(token_file()));

  auto restored = prepare({"--overwrite"});
  ASSERT_EQ(restored.exit_code, 0) << restored.output;
  read_join_token(token_file());

  // No temporary files next to the bundle.
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(work_.path())) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"bundle.pw", "clone.p12", "clone.p12.join-token", "wrong.pw"}));

  auto not_a_bundle = ca_clone({"p12-find", "--pkcs12-file", password_file().string(), "--pkcs12-password-file",
                                password_file().string()});
  EXPECT_EQ(not_a_bundle.exit_code, 1) << not_a_bundle.output;
}

TEST_F(PrepareTest, JoinTokenFileHoldsTheTokenAndTheDirectoryOnlyItsSaltedHash) {
  // With the instance stopped: prepare starts its directory for the token, then stops it.
  auto made = prepare();
  ASSERT_EQ(made.exit_code, 0) << made.output;
  JoinToken any_clone = read_join_token(token_file());

  // --join-token-file, --join-token-lifetime and --clone-id.
  const fs::path other_bundle = work_ / "other.p12", other_token = work_ / "tokens" / "clone-7.token";
  fs::create_directories(other_token.parent_path());
  auto scoped = ca_clone({"prepare", "--config", server_->config_file().string(), "--pkcs12-file", other_bundle.string(),
                          "--pkcs12-password-file", password_file().string(), "--join-token-file", other_token.string(),
                          "--join-token-lifetime", "600", "--clone-id", "clone-7"});
  ASSERT_EQ(scoped.exit_code, 0) << scoped.output;
  EXPECT_NE(scoped.output.find(fmt::format("Join token (one registration, 600 s, clone 'clone-7' only): {} (mode 0600)\n",
                                           other_token.string())),
            std::string::npos)
      << scoped.output;
  JoinToken for_clone7 = read_join_token(other_token);
  EXPECT_FALSE(fs::exists(token_file_of(other_bundle)));
  EXPECT_EQ(file_mode(other_bundle), 0600);

  // With the instance running: prepare uses its directory as it is.
  ASSERT_TRUE(server_->start()) << server_->log();
  const fs::path live_bundle = work_ / "live.p12";
  auto live = ca_clone({"prepare", "--config", server_->config_file().string(), "--pkcs12-file", live_bundle.string(),
                        "--pkcs12-password-file", password_file().string()});
  ASSERT_EQ(live.exit_code, 0) << live.output;
  JoinToken while_running = read_join_token(token_file_of(live_bundle));
  EXPECT_TRUE(server_->running());

  struct Expected {
    const char* what;
    JoinToken token;
    std::chrono::seconds lifetime;
    std::string clone_id;
  };
  std::vector<std::string> salts;
  for (const auto& e : {Expected{"default", any_clone, std::chrono::seconds(86400), ""},
                        Expected{"clone-7", for_clone7, std::chrono::seconds(600), "clone-7"},
                        Expected{"running", while_running, std::chrono::seconds(86400), ""}}) {
    SCOPED_TRACE(e.what);
    auto entry = ldapsearch(token_dn(e.token.id), "base");
    ASSERT_EQ(entry.exit_code, 0) << entry.output;
    EXPECT_NE(entry.output.find(fmt::format("dn: {}\n", token_dn(e.token.id))), std::string::npos) << entry.output;
    EXPECT_NE(entry.output.find("caSecretHash: sha256$"), std::string::npos) << entry.output;
    EXPECT_EQ(entry.output.find(e.token.secret), std::string::npos) << entry.output;
    const std::string hash = ldif_value(entry.output, "caSecretHash");
    std::smatch m;
    ASSERT_TRUE(std::regex_match(hash, m, std::regex("sha256\\$([0-9a-f]{32})\\$[0-9a-f]{64}"))) << hash;
    salts.push_back(m[1].str());
    // The hash is of this token's secret (and of nothing else).
    EXPECT_TRUE(authority::secret_matches(hash, e.token.secret)) << hash;
    EXPECT_FALSE(authority::secret_matches(hash, e.token.id + "." + e.token.secret)) << hash;
    EXPECT_EQ(ldif_value(entry.output, "caCodeState"), "unused") << entry.output;
    EXPECT_EQ(ldif_value(entry.output, "caInstanceId"), e.clone_id) << entry.output;
    auto created = store::from_generalized_time(ldif_value(entry.output, "caCreatedAt"));
    auto expires = store::from_generalized_time(ldif_value(entry.output, "caExpiresAt"));
    ASSERT_TRUE(created && expires) << entry.output;
    EXPECT_EQ(std::chrono::duration_cast<std::chrono::seconds>(*expires - *created), e.lifetime) << entry.output;
  }
  // Salted: no two hashes share a salt.
  std::sort(salts.begin(), salts.end());
  EXPECT_EQ(std::adjacent_find(salts.begin(), salts.end()), salts.end());

  // Nowhere under ou=joinTokens is a secret stored.
  auto all = ldapsearch("ou=joinTokens,o=pki-ca");
  ASSERT_EQ(all.exit_code, 0) << all.output;
  EXPECT_GE(count(all.output, "caSecretHash: sha256$"), 3u) << all.output;
  for (const auto& token : {any_clone, for_clone7, while_running}) {
    EXPECT_NE(all.output.find(token_dn(token.id)), std::string::npos) << all.output;
    EXPECT_EQ(all.output.find(token.secret), std::string::npos) << all.output;
  }

  // Refused runs add no token: an existing token file, an out-of-range lifetime, a bad clone ID.
  const int tokens = server_->count_entries("ou=joinTokens,o=pki-ca", "(objectClass=caJoinToken)");
  EXPECT_GE(tokens, 3);
  fs::remove(bundle());
  auto token_there = prepare();
  EXPECT_EQ(token_there.exit_code, 1) << token_there.output;
  EXPECT_FALSE(fs::exists(bundle()));
  auto too_short = ca_clone({"prepare", "--config", server_->config_file().string(), "--pkcs12-file",
                             (work_ / "short.p12").string(), "--pkcs12-password-file", password_file().string(),
                             "--join-token-lifetime", "59"});
  EXPECT_EQ(too_short.exit_code, 2) << too_short.output;
  auto bad_clone = ca_clone({"prepare", "--config", server_->config_file().string(), "--pkcs12-file",
                             (work_ / "bad.p12").string(), "--pkcs12-password-file", password_file().string(),
                             "--clone-id", "no spaces"});
  EXPECT_EQ(bad_clone.exit_code, 2) << bad_clone.output;
  for (const char* name : {"short.p12", "short.p12.join-token", "bad.p12", "bad.p12.join-token"})
    EXPECT_FALSE(fs::exists(work_ / name)) << name;
  EXPECT_EQ(server_->count_entries("ou=joinTokens,o=pki-ca", "(objectClass=caJoinToken)"), tokens);

  const int status = server_->stop();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status " << status << "\n" << server_->log();
}

TEST_F(PrepareTest, InstanceFolderNeedsItsYamlForTheJoinToken) {
  // Without a YAML, prepare cannot reach the instance's directory to store the join token:
  // a usage error, with or without --instance-id, and nothing written.
  for (bool with_id : {false, true}) {
    SCOPED_TRACE(with_id ? "with --instance-id" : "without --instance-id");
    std::vector<std::string> args{"prepare", "--instance", server_->dir().string(), "--pkcs12-file", bundle().string(),
                                  "--pkcs12-password-file", password_file().string()};
    if (with_id) args.insert(args.end(), {"--instance-id", "pki-tomcat"});
    auto no_yaml = ca_clone(args);
    EXPECT_EQ(no_yaml.exit_code, 2) << no_yaml.output;
    EXPECT_NE(no_yaml.output.find("--config YAML (or DIR/instance.yaml) is required"), std::string::npos) << no_yaml.output;
    EXPECT_FALSE(fs::exists(bundle()));
    EXPECT_FALSE(fs::exists(token_file()));
  }

  // --instance-id names the certificates in place of the YAML's instance.id.
  auto given = prepare({"--instance-id", "pki-tomcat"});
  ASSERT_EQ(given.exit_code, 0) << given.output;
  EXPECT_NE(given.output.find("caSigningCert cert-pki-tomcat CA"), std::string::npos) << given.output;
  EXPECT_EQ(given.output.find("subsystemCert"), std::string::npos) << given.output;
  read_join_token(token_file());

  // The layout quickstart uses: instance.yaml inside the instance folder (here the instance's
  // own YAML, with another ID and the folder itself as instance.dir).
  std::string yaml = read_file(server_->config_file());
  ASSERT_NE(yaml.find("  id: test\n"), std::string::npos) << yaml;
  ASSERT_NE(yaml.find("  dir: instance\n"), std::string::npos) << yaml;
  yaml.replace(yaml.find("  id: test\n"), 11, "  id: from-yaml\n");
  yaml.replace(yaml.find("  dir: instance\n"), 16, "  dir: .\n");
  write_file(server_->dir() / "instance.yaml", yaml);
  auto from_yaml = ca_clone({"prepare", "--instance", server_->dir().string(), "--pkcs12-file", bundle().string(),
                             "--pkcs12-password-file", password_file().string(), "--overwrite"});
  fs::remove(server_->dir() / "instance.yaml");
  ASSERT_EQ(from_yaml.exit_code, 0) << from_yaml.output;
  read_join_token(token_file());
  auto listed = p12_find(bundle());
  ASSERT_EQ(listed.exit_code, 0) << listed.output;
  EXPECT_NE(listed.output.find("Friendly Name: caSigningCert cert-from-yaml CA\n"), std::string::npos) << listed.output;
  EXPECT_NE(listed.output.find(fmt::format("{} entries found", kCount)), std::string::npos) << listed.output;
  EXPECT_EQ(listed.output.find("subsystemCert"), std::string::npos) << listed.output;

  // A folder that does not exist: a failure, nothing written.
  auto missing = ca_clone({"prepare", "--config", server_->config_file().string(), "--instance",
                           (work_ / "no-such-instance").string(), "--pkcs12-file", (work_ / "x.p12").string(),
                           "--pkcs12-password-file", password_file().string()});
  EXPECT_EQ(missing.exit_code, 1) << missing.output;
  EXPECT_NE(missing.output.find("is not a folder"), std::string::npos) << missing.output;
  EXPECT_FALSE(fs::exists(work_ / "x.p12"));
  EXPECT_FALSE(fs::exists(work_ / "x.p12.join-token"));
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
