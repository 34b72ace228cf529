#pragma once
// A real ca-server process for a test: its own instance folder, free ports, `ca-server init`,
// then `ca-server run` as a child that is stopped by PID (also when the test fails).
#include <filesystem>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "core/child_process.hpp"
#include "store/ldap/ldap_connection.hpp"
#include "support/https_client.hpp"
#include "support/temp_dir.hpp"

namespace ca::testing {

struct CaServerOptions {
  std::string extra_yaml;                         // appended to the generated config (e.g. a "ranges:" block)
  const store::LdapEndpoint* external = nullptr;  // use this directory instead of an embedded one
  std::string instance_id = "test";
  int replica_id = 1;
  std::string ranges_yaml;     // extra lines of the ranges section ("  serial_range_size: 20\n")
  std::string crl_yaml;        // extra lines of the crl section
  std::string ca_yaml;         // extra lines of the ca section ("  approval_poll_ms: 600000\n")
  std::string server_yaml;     // extra lines of the server section ("  max_connections_per_client: 8\n")
  std::string directory_yaml;  // extra lines of an embedded directory's section ("  mesh: false\n")
  // Profiles added to the built-in ones at init. Default: kTestProfiles, open profiles that
  // issue without authentication (auth: none) for tests that are not about authentication.
  std::string profiles_yaml;
  // Clone mode: init() runs `ca-clone spawn --no-start` against this master with this bundle.
  std::string clone_master_url;
  std::filesystem::path clone_bundle;
  std::filesystem::path clone_password_file;
};

std::filesystem::path ca_server_binary();

// testServerCert and testUserCert: like caServerCert and caUserCert, with `auth: none`.
extern const char* const kTestProfiles;

class CaServer {
 public:
  explicit CaServer(CaServerOptions options = {});
  // Stops a server still running; a server that does not exit cleanly (status 0) or that left a
  // sanitizer report in its log fails the test, whether or not the test looked at stop().
  ~CaServer();

  // `ca-server init` (clone mode: `ca-clone spawn --no-start`); returns its exit code and output.
  CommandResult init();
  // Starts `ca-server run` and waits until /ca/rest/info answers (false + log on failure).
  bool start();
  // SIGTERM, wait; returns the exit status.
  int stop();
  bool running() { return process_.running(); }
  pid_t pid() const { return process_.pid(); }

  HttpsClient client() const { return HttpsClient("127.0.0.1", port_, ca_file()); }
  // The agent certificate and key `ca-server init` made (a spawned clone gets none: a cluster's
  // tests use the master's, see use_credentials_of).
  std::filesystem::path agent_cert() const { return credentials_dir() / "certs" / "agent.pem"; }
  std::filesystem::path agent_key() const { return credentials_dir() / "private" / "agent.key"; }
  // The bootstrap administrator's certificate and key (same identity as the first agent).
  std::filesystem::path admin_cert() const { return credentials_dir() / "certs" / "admin.pem"; }
  std::filesystem::path admin_key() const { return credentials_dir() / "private" / "admin.key"; }
  // The people's credentials of this instance's tests are those `init` made on `first`.
  void use_credentials_of(const CaServer& first) { credentials_dir_ = first.credentials_dir(); }
  std::filesystem::path credentials_dir() const { return credentials_dir_.empty() ? dir() : credentials_dir_; }
  unsigned short port() const { return port_; }
  unsigned short http_port() const { return http_port_; }
  std::string http_url() const { return "http://127.0.0.1:" + std::to_string(http_port_); }
  std::string https_url() const { return "https://127.0.0.1:" + std::to_string(port_); }
  std::filesystem::path dir() const { return dir_.path() / "instance"; }
  // The config `ca-server run` uses (in clone mode, the one spawn writes).
  std::filesystem::path config_file() const { return run_config_; }
  std::filesystem::path spawn_config_file() const { return dir_.path() / "clone.yaml"; }
  bool is_clone() const { return !options_.clone_master_url.empty(); }
  std::filesystem::path ca_file() const { return dir() / "certs" / "ca_signing.pem"; }
  std::filesystem::path log_file() const { return dir_.path() / "ca-server.log"; }
  std::string log() const;
  // The first sanitizer report (ASan, UBSan, TSan, LeakSanitizer) in the log, or "" if none.
  std::string sanitizer_report() const;
  // The directory this instance uses, for ldapsearch/ldapadd from tests (the unix socket of an
  // embedded one).
  std::string ldap_url() const { return ldap_url_; }
  // The TCP port of the embedded directory (ldaps:// only), 0 for an external one.
  unsigned short directory_port() const { return directory_port_; }
  std::string bind_dn() const { return "cn=Directory Manager,o=pki-ca"; }
  std::filesystem::path password_file() const { return password_file_; }
  // Counts entries under `base` (one level) matching `filter`, with the real ldapsearch.
  int count_entries(const std::string& base, const std::string& filter) const;

 private:
  TempDir dir_{"ca-srv"};
  CaServerOptions options_;
  unsigned short port_;
  unsigned short http_port_;
  std::string ldap_url_;
  unsigned short directory_port_ = 0;
  std::filesystem::path password_file_;
  std::filesystem::path run_config_;
  ChildProcess process_;
  std::filesystem::path credentials_dir_;
};

// One ca-server (default options: the open test profiles) shared by the tests of a suite. ctest runs
// each test in a process of its own, so each still gets a fresh server; a whole-binary run shares it.
class SharedCaServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  static void TearDownTestSuite();
  void SetUp() override { ASSERT_NE(server_, nullptr) << "the suite's ca-server did not start"; }
  static CaServer* server_;
};

// A new P-256 key and CSR for CN=<name>.example.com made with the openssl command line in `dir`
// (<name>.key, <name>.csr); returns the CSR (PEM).
std::string openssl_csr(const std::filesystem::path& dir, const std::string& name);
// {"profile_id": PROFILE, "csr": CSR} for POST /ca/rest/certrequests.
std::string enrollment_json(const std::string& csr, const std::string& profile = "testServerCert");

}  // namespace ca::testing
