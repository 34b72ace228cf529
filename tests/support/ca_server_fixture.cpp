#include "support/ca_server_fixture.hpp"

#include <thread>

#include <sys/wait.h>

#include <fmt/format.h>

#include <gtest/gtest.h>
#include "store/ldap/embedded_directory.hpp"

namespace ca::testing {

std::filesystem::path ca_server_binary() { return std::filesystem::path(CA_BIN_DIR) / "ca-server"; }

const char* const kTestProfiles = R"(# Open profiles for tests that are not about authentication.
testServerCert:
  name: Test server certificate (no authentication)
  description: Tests and benchmarks only.
  auth: none
  validity_days: 398
  key: {rsa_min_bits: 2048, rsa_max_bits: 8192, ec_curves: [P-256, P-384, P-521], ed25519: true}
  subject: {require_cn: true, allowed_attributes: [C, ST, L, O, OU, CN]}
  san: {dns: true, ip: true, email: false, max: 100, copy_cn_to_dns: true}
  key_usage: [digitalSignature, keyEncipherment]
  extended_key_usage: [serverAuth]
testUserCert:
  name: Test user certificate (no authentication)
  description: Tests only.
  auth: none
  validity_days: 365
  key: {rsa_min_bits: 2048, rsa_max_bits: 8192, ec_curves: [P-256, P-384, P-521], ed25519: true}
  subject: {require_cn: true, allowed_attributes: [C, ST, L, O, OU, UID, emailAddress, CN]}
  san: {dns: false, ip: false, email: true, max: 10, copy_cn_to_dns: false}
  key_usage: [digitalSignature, nonRepudiation, keyEncipherment]
  extended_key_usage: [clientAuth, emailProtection]
)";

CaServer::CaServer(CaServerOptions options)
    : options_(std::move(options)), port_(free_port()), http_port_(free_port()) {
  std::string directory;
  if (options_.external) {
    password_file_ = write_file(dir_.path() / "directory.pass", options_.external->password);
    ldap_url_ = options_.external->url;
    directory = fmt::format(
        "directory:\n  mode: external\n  url: {}\n  bind_dn: \"{}\"\n  bind_password_file: {}\n  timeout_ms: 2000\n",
        options_.external->url, options_.external->bind_dn, password_file_.string());
  } else {
    unsigned short ldap_port = free_port();
    // Tests read the directory as the local server does, over its unix socket: the TCP port is
    // for other instances' directories and speaks ldaps:// only.
    ldap_url_ = store::ldapi_url_for(dir() / "slapd" / "ldapi");
    directory_port_ = ldap_port;
    password_file_ = dir() / "secrets" / "directory.pass";
    directory = fmt::format("directory:\n  port: {}\n{}", ldap_port, options_.directory_yaml);
  }
  std::string crl = "crl:\n  debounce_ms: 100\n" + options_.crl_yaml;
  const auto profiles_file = dir_.path() / "profiles.yaml";
  write_file(profiles_file, options_.profiles_yaml.empty() ? std::string(kTestProfiles) : options_.profiles_yaml);
  crl += fmt::format("profiles:\n  file: {}\n", profiles_file.string());
  if (is_clone()) {
    std::string yaml = fmt::format(
        "clone:\n  master_url: {}\n  pkcs12_file: {}\n  pkcs12_password_file: {}\n  sync_timeout_seconds: 60\n"
        "instance:\n  id: {}\n  dir: instance\nserver:\n  port: {}\n  http_port: {}\n{}{}{}{}log:\n  level: info\n{}",
        options_.clone_master_url, options_.clone_bundle.string(), options_.clone_password_file.string(),
        options_.instance_id, port_, http_port_, options_.server_yaml, directory, crl,
        options_.ranges_yaml.empty() ? std::string() : "ranges:\n" + options_.ranges_yaml, options_.extra_yaml);
    write_file(spawn_config_file(), yaml);
    run_config_ = dir() / "instance.yaml";
    return;
  }
  std::string yaml = fmt::format(
      "instance:\n  id: {}\n  dir: instance\nca:\n  subject: \"CN=Test CA,O=Example\"\n{}server:\n  port: {}\n  "
      "http_port: {}\n{}{}"
      "{}ranges:\n  replica_id: {}\n{}log:\n  level: info\n{}",
      options_.instance_id, options_.ca_yaml, port_, http_port_, options_.server_yaml, directory, crl,
      options_.replica_id, options_.ranges_yaml, options_.extra_yaml);
  run_config_ = dir_.path() / "instance.yaml";
  write_file(run_config_, yaml);
}

CaServer::~CaServer() {
  if (process_.running()) {
    const int status = stop();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "ca-server did not exit cleanly at SIGTERM (wait status " << status << ")\n"
        << log();
  }
  const std::string report = sanitizer_report();
  EXPECT_TRUE(report.empty()) << "sanitizer report in the ca-server log " << log_file().string() << ":\n" << report;
}

CommandResult CaServer::init() {
  auto r = is_clone() ? run_command({(std::filesystem::path(CA_BIN_DIR) / "ca-clone").string(), "spawn", "--config",
                                     spawn_config_file().string(), "--no-start"})
                      : run_command({ca_server_binary().string(), "init", "--config", config_file().string()});
  return r ? *r : CommandResult{-1, r.error().message};
}

bool CaServer::start() {
  auto child =
      ChildProcess::spawn({ca_server_binary().string(), "run", "--config", config_file().string()}, log_file(), true);
  if (!child) return false;
  process_ = std::move(*child);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    if (process_.try_wait()) return false;
    if (std::filesystem::exists(ca_file())) {
      auto c = client();
      if (c.get("/ca/rest/info").status == 200) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

int CaServer::stop() { return process_.terminate(std::chrono::seconds(20)); }

std::string CaServer::log() const { return read_file(log_file()); }

std::string CaServer::sanitizer_report() const {
  const std::string text = log();
  std::size_t start = std::string::npos;
  for (const char* marker : {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "WARNING: ThreadSanitizer",
                             "ThreadSanitizer: ", ": runtime error: "})
    start = std::min(start, text.find(marker));
  if (start == std::string::npos) return {};
  start = text.rfind('\n', start);
  start = start == std::string::npos ? 0 : start + 1;
  return text.substr(start, 16 * 1024);
}

int CaServer::count_entries(const std::string& base, const std::string& filter) const {
  auto r = shell(fmt::format("ldapsearch -LLL -x -H '{}' -D '{}' -y '{}' -b '{}' -s one '{}' dn | grep -c '^dn:'",
                             ldap_url_, bind_dn(), password_file_.string(), base, filter));
  try {
    return std::stoi(r.output);
  } catch (...) {
    return -1;
  }
}

CaServer* SharedCaServerTest::server_ = nullptr;

void SharedCaServerTest::SetUpTestSuite() {
  server_ = new CaServer();
  auto init = server_->init();
  ASSERT_EQ(init.exit_code, 0) << init.output;
  ASSERT_TRUE(server_->start()) << server_->log();
}

void SharedCaServerTest::TearDownTestSuite() {
  delete server_;
  server_ = nullptr;
}

std::string openssl_csr(const std::filesystem::path& dir, const std::string& name) {
  auto r =
      shell(fmt::format("openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout {0}/{1}.key "
                        "-out {0}/{1}.csr -subj /CN={1}.example.com",
                        dir.string(), name));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return read_file(dir / (name + ".csr"));
}

std::string enrollment_json(const std::string& csr, const std::string& profile) {
  return fmt::format(R"({{"profile_id":"{}","csr":"{}"}})", profile, json_escape(csr));
}

}  // namespace ca::testing
