#include "store/ldap/embedded_directory.hpp"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <csignal>
#include <iterator>

#include <sys/wait.h>

#include <fmt/format.h>

#include "core/files.hpp"
#include "core/log.hpp"
#include "crypto/encoding.hpp"
#include "store/ldap/base_dit.hpp"
#include "store/ldap/directory_access.hpp"

namespace ca::store {

namespace {
constexpr std::string_view kLog = "directory";
}  // namespace

std::string ssha_password_hash(const std::string& password) {
  unsigned char salt[8];
  RAND_bytes(salt, sizeof salt);
  unsigned char buf[20 + sizeof salt];
  // {SSHA}: base64 of SHA-1(password || salt) || salt (one-shot digest: no context to own).
  std::string salted = password;
  salted.append(reinterpret_cast<const char*>(salt), sizeof salt);
  unsigned int len = 0;
  EVP_Digest(salted.data(), salted.size(), buf, &len, EVP_sha1(), nullptr);
  OPENSSL_cleanse(salted.data(), salted.size());
  std::copy(salt, salt + sizeof salt, buf + 20);
  return "{SSHA}" + crypto::base64_encode(std::span<const uint8_t>(buf, sizeof buf));
}

std::string random_password(std::size_t length) {
  static constexpr char kAlphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
  std::string out;
  unsigned char b;
  while (out.size() < length) {
    RAND_bytes(&b, 1);
    if (b < 256 - (256 % (sizeof kAlphabet - 1))) out += kAlphabet[b % (sizeof kAlphabet - 1)];
  }
  return out;
}

namespace {
// This OS user over the unix socket (SASL EXTERNAL): manages the directory besides the root DN.
std::string local_admin_dn() {
  return fmt::format("gidNumber={}+uidNumber={},cn=peercred,cn=external,cn=auth", ::getgid(), ::getuid());
}
}  // namespace

std::string ldapi_url_for(const std::filesystem::path& socket) {
  std::string out = "ldapi://";
  for (unsigned char c : socket.string()) {
    if (std::isalnum(c) || c == '.' || c == '-' || c == '_')
      out += static_cast<char>(c);
    else
      out += fmt::format("%{:02X}", c);
  }
  return out;
}

EmbeddedDirectory::EmbeddedDirectory(EmbeddedDirectoryOptions options) : options_(std::move(options)) {
  if (options_.root_dn.empty()) options_.root_dn = "cn=Directory Manager," + options_.suffix;
}

EmbeddedDirectory::~EmbeddedDirectory() { stop(); }

bool EmbeddedDirectory::initialized() const {
  return std::filesystem::exists(options_.dir / "slapd.d" / "cn=config.ldif");
}

std::string EmbeddedDirectory::ldapi_url() const { return ldapi_url_for(options_.dir / "ldapi"); }

std::string EmbeddedDirectory::url() const {
  if (options_.port && options_.tcp && !options_.tls()) return fmt::format("ldap://127.0.0.1:{}/", options_.port);
  return ldapi_url();
}

std::string EmbeddedDirectory::tcp_url() const {
  if (!options_.port) return {};
  return fmt::format("{}://{}:{}/", options_.tls() ? "ldaps" : "ldap", options_.listen_address, options_.port);
}

LdapEndpoint EmbeddedDirectory::config_endpoint(int timeout_ms) const {
  return LdapEndpoint{ldapi_url(), "cn=admin,cn=config", options_.root_password, timeout_ms};
}

LdapEndpoint EmbeddedDirectory::endpoint(int timeout_ms) const {
  return LdapEndpoint{url(), options_.root_dn, options_.root_password, timeout_ms};
}

// cn=config of the embedded slapd, for slapadd -n0 (fmt placeholders: see config_ldif).
constexpr const char* kConfigTemplate = R"(dn: cn=config
objectClass: olcGlobal
cn: config
olcServerID: {server_id}
olcPidFile: {dir}/slapd.pid
olcArgsFile: {dir}/slapd.args
olcLogLevel: {log_level}
olcToolThreads: 2
olcSockbufMaxIncomingAuth: 268435455

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb
olcModuleLoad: syncprov

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif

include: file://{schema}/ca-schema.ldif

dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend
olcSizeLimit: 500

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcRootDN: cn=admin,cn=config
olcRootPW: {hash}
olcAccess: {{0}}to * by dn.exact=gidNumber={gid}+uidNumber={uid},cn=peercred,cn=external,cn=auth manage by * break

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcSuffix: {suffix}
olcDbDirectory: {dir}/data
olcRootDN: {root_dn}
olcRootPW: {hash}
olcDbMaxSize: 17179869184
olcDbNoSync: {nosync}
olcDbCheckpoint: 1024 1
{access}olcDbIndex: objectClass eq
olcDbIndex: cn eq
olcDbIndex: entryCSN eq
olcDbIndex: entryUUID eq
olcDbIndex: caSerialNumber eq
olcDbIndex: caRequestId eq
olcDbIndex: caCertStatus eq
olcDbIndex: caProfileId eq
olcDbIndex: caSubjectDN eq,sub
olcDbIndex: caIssuedBy eq
olcDbIndex: caReplicaId eq
olcDbIndex: caNotAfter eq
olcDbIndex: caRevokedOn eq
olcDbIndex: caModifiedAt eq
olcDbIndex: caRequestState eq
olcDbIndex: caKeyId eq
olcDbIndex: caKeyOwner eq
olcDbIndex: caGroupMember eq

dn: olcOverlay={{0}}syncprov,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcSyncProvConfig
olcOverlay: {{0}}syncprov
olcSpCheckpoint: 100 10
olcSpSessionLog: 10000
)";

std::string EmbeddedDirectory::config_ldif() const {
  auto dir = std::filesystem::absolute(options_.dir);
  std::string hash = ssha_password_hash(options_.root_password);
  std::string access;
  const auto rules = access_rules();
  for (std::size_t i = 0; i < rules.size(); ++i) access += fmt::format("olcAccess: {{{}}}{}\n", i, rules[i]);
  const auto limits = directory_limits(options_.suffix, options_.root_dn);
  for (std::size_t i = 0; i < limits.size(); ++i) access += fmt::format("olcLimits: {{{}}}{}\n", i, limits[i]);
  std::string ldif =
      fmt::format(kConfigTemplate, fmt::arg("server_id", options_.server_id), fmt::arg("dir", dir.string()),
                  fmt::arg("log_level", std::getenv("CA_SLAPD_LOGLEVEL") ? std::getenv("CA_SLAPD_LOGLEVEL") : "none"),
                  fmt::arg("schema", std::filesystem::absolute(options_.schema_dir).string()), fmt::arg("hash", hash),
                  fmt::arg("suffix", options_.suffix), fmt::arg("root_dn", options_.root_dn),
                  fmt::arg("nosync", options_.fsync ? "FALSE" : "TRUE"), fmt::arg("uid", ::getuid()),
                  fmt::arg("gid", ::getgid()), fmt::arg("access", access));
  return ldif;
}

Status EmbeddedDirectory::initialize() {
  namespace fs = std::filesystem;
  if (initialized())
    return fail(Error::conflict(fmt::format("a directory already exists in {}", options_.dir.string())));
  if (!fs::exists(options_.schema_dir / "ca-schema.ldif"))
    return fail(Error::config(fmt::format("schema not found: {}", (options_.schema_dir / "ca-schema.ldif").string())));
  std::error_code ec;
  fs::create_directories(options_.dir / "slapd.d", ec);
  fs::create_directories(options_.dir / "data", ec);
  if (ec) return fail(Error::io(fmt::format("cannot create {}: {}", options_.dir.string(), ec.message())));
  fs::permissions(options_.dir, fs::perms::owner_all, ec);
  auto ldif_path = options_.dir / "config.ldif";
  {
    std::ofstream out(ldif_path, std::ios::trunc);
    out << config_ldif();
    if (!out) return fail(Error::io(fmt::format("cannot write {}", ldif_path.string())));
  }
  fs::permissions(ldif_path, fs::perms::owner_read | fs::perms::owner_write, ec);
  CA_TRY(auto res, run_command({options_.slapadd_path, "-n0", "-F", (options_.dir / "slapd.d").string(), "-l",
                                ldif_path.string()}));
  fs::remove(ldif_path, ec);  // it holds the password hash; cn=config keeps its own copy
  if (res.exit_code != 0) {
    fs::remove_all(options_.dir / "slapd.d", ec);
    return fail(Error::directory(fmt::format("slapadd of cn=config failed (exit {}): {}", res.exit_code, res.output)));
  }
  log::info(kLog, "created directory configuration in {} (suffix {}, server ID {})", options_.dir.string(),
            options_.suffix, options_.server_id);
  return ok();
}

// A slapd of this instance left from a ca-server that was killed (it got SIGTERM through
// PR_SET_PDEATHSIG and may still be shutting down) holds the socket and the database: wait for it.
// It is identified by this instance's own pid file and its slapd.d path on the command line.
void EmbeddedDirectory::wait_for_previous_slapd() {
  std::ifstream pid_in(options_.dir / "slapd.pid");
  pid_t pid = 0;
  if (!(pid_in >> pid) || pid <= 0) return;
  auto ours = [&] {
    std::ifstream cmd(fmt::format("/proc/{}/cmdline", pid), std::ios::binary);
    std::string cmdline((std::istreambuf_iterator<char>(cmd)), std::istreambuf_iterator<char>());
    return cmdline.find((options_.dir / "slapd.d").string()) != std::string::npos;
  };
  for (int i = 0; i < 300 && ours(); ++i) {
    if (i == 100) {
      log::warn(kLog, "slapd (pid {}) of an earlier run is still up; sending SIGTERM", pid);
      ::kill(pid, SIGTERM);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

Status EmbeddedDirectory::launch() {
  wait_for_previous_slapd();
  std::string urls = ldapi_url();
  if (options_.port && options_.tcp) {
    urls.push_back(' ');
    urls.append(tcp_url());
  }
  std::filesystem::remove(options_.dir / "ldapi");
  CA_TRY(slapd_, ChildProcess::spawn({options_.slapd_path, "-F", (options_.dir / "slapd.d").string(), "-h", urls, "-d",
                                      std::getenv("CA_SLAPD_LOGLEVEL") ? std::getenv("CA_SLAPD_LOGLEVEL") : "0"},
                                     options_.dir / "slapd.log", true));
  return ok();
}

Status EmbeddedDirectory::wait_ready(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  Error last = Error::unavailable("not started");
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto st = slapd_.try_wait()) {
      std::string tail;
      if (auto text = read_file(options_.dir / "slapd.log"))
        tail = text->size() > 2000 ? text->substr(text->size() - 2000) : *text;
      return fail(Error::directory(fmt::format("slapd exited during start-up (status {}); {}/slapd.log ends with:\n{}",
                                               *st, options_.dir.string(), tail)));
    }
    auto conn = LdapConnection::open(endpoint(1000));
    if (conn) return ok();
    last = conn.error();
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return fail(Error::unavailable(fmt::format("slapd did not answer within {} ms: {}", timeout.count(), last.message)));
}

bool EmbeddedDirectory::tls_configured() const {
  auto raw = read_file(options_.dir / "slapd.d" / "cn=config.ldif");
  if (!raw) return false;
  // LDIF folds long lines: a line break followed by one space continues the line.
  std::string text;
  text.reserve(raw->size());
  for (std::size_t i = 0; i < raw->size(); ++i) {
    if ((*raw)[i] == '\n' && i + 1 < raw->size() && (*raw)[i + 1] == ' ') {
      ++i;
      continue;
    }
    text.push_back((*raw)[i]);
  }
  auto has = [&](std::string_view attribute, const std::filesystem::path& value) {
    return text.find(fmt::format("{}: {}\n", attribute, value.string())) != std::string::npos;
  };
  return has("olcTLSCertificateFile", options_.tls_cert_file) &&
         has("olcTLSCertificateKeyFile", options_.tls_key_file) &&
         has("olcTLSCACertificateFile", options_.tls_ca_file) && has("olcTLSVerifyClient", "try");
}

Status EmbeddedDirectory::start(bool supervise) {
  if (!initialized())
    return fail(Error::config(fmt::format("no directory in {}; run init first", options_.dir.string())));
  if (options_.tls() && options_.tcp && options_.port && !tls_configured()) {
    // The TCP port must never come up without TLS: set TLS up over the unix socket first.
    options_.tcp = false;
    Status prepared = launch();
    if (prepared) prepared = wait_ready(std::chrono::seconds(20));
    if (prepared) prepared = apply_tls();
    slapd_.terminate();
    options_.tcp = true;
    if (!prepared) return fail(prepared.error().context("setting up TLS for the directory"));
    log::info(kLog, "TLS set up for {} (certificate {})", tcp_url(), options_.tls_cert_file.string());
  }
  if (supervise) {
    // The supervisor thread forks slapd itself so that PR_SET_PDEATHSIG ties slapd to that thread.
    std::unique_lock lock(mutex_);
    stopping_ = false;
    Status started = fail(Error::internal("supervisor did not report"));
    bool reported = false;
    supervisor_ = std::thread([this, &started, &reported] {
      Status st = launch();
      if (st) st = wait_ready(std::chrono::seconds(20));
      {
        std::lock_guard l(mutex_);
        started = st;
        reported = true;
      }
      cv_.notify_all();
      if (st) supervise_loop();
    });
    cv_.wait(lock, [&] { return reported; });
    if (!started) {
      lock.unlock();
      supervisor_.join();
      slapd_.terminate();
      return started;
    }
  } else {
    CA_CHECK(launch());
    CA_CHECK(wait_ready(std::chrono::seconds(20)));
  }
  log::info(kLog, "slapd running (pid {}) at {}", slapd_.pid(), url());
  CA_CHECK(apply_access_rules());
  return apply_sync_mode();
}

std::vector<std::string> EmbeddedDirectory::access_rules() const {
  return directory_access_rules(options_.suffix, local_admin_dn());
}

// A directory made by an earlier version has other rules: they are replaced by this version's.
Status EmbeddedDirectory::apply_access_rules() {
  CA_TRY(auto conn, LdapConnection::open(config_endpoint()));
  auto changed = apply_directory_access(*conn, "olcDatabase={1}mdb,cn=config", access_rules());
  if (!changed) return fail(changed.error().context("setting the access rules of the directory"));
  auto limited = apply_directory_limits(*conn, "olcDatabase={1}mdb,cn=config",
                                        directory_limits(options_.suffix, options_.root_dn));
  if (!limited) return fail(limited.error().context("setting the limits of the directory"));
  return ok();
}

// olcDbNoSync follows the configured durability at every start, not only at init: an instance
// switched from `group` (slapd does not sync; ca-server does) to `per_write` must not be left
// with no sync at all.
// TLS of the TCP listener, in cn=config. slapd reads it when it starts, so a start that needs it
// and does not find it (a new instance, a moved certificate) first sets it over the unix socket.
Status EmbeddedDirectory::apply_tls() {
  CA_TRY(auto conn, LdapConnection::open(config_endpoint()));
  using Op = LdapModification::Op;
  return conn->modify("cn=config", {{Op::replace, "olcTLSCACertificateFile", {options_.tls_ca_file.string()}},
                                    {Op::replace, "olcTLSCertificateFile", {options_.tls_cert_file.string()}},
                                    {Op::replace, "olcTLSCertificateKeyFile", {options_.tls_key_file.string()}},
                                    {Op::replace, "olcTLSProtocolMin", {"3.3"}},
                                    // Asks a client for its certificate: a peer directory binds
                                    // with it (SASL EXTERNAL); a client without one is served too.
                                    {Op::replace, "olcTLSVerifyClient", {"try"}}});
}

Status EmbeddedDirectory::apply_sync_mode() {
  CA_TRY(auto conn, LdapConnection::open(config_endpoint()));
  return conn->modify(
      "olcDatabase={1}mdb,cn=config",
      {LdapModification{LdapModification::Op::replace, "olcDbNoSync", {options_.fsync ? "FALSE" : "TRUE"}}});
}

void EmbeddedDirectory::supervise_loop() {
  int backoff_ms = 500;
  while (true) {
    {
      std::unique_lock lock(mutex_);
      if (cv_.wait_for(lock, std::chrono::milliseconds(100), [&] { return stopping_; })) return;
    }
    std::optional<int> status;
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      status = slapd_.try_wait();
    }
    if (!status) continue;
    log::error(kLog, "slapd exited unexpectedly (status {}); restarting in {} ms", *status, backoff_ms);
    {
      std::unique_lock lock(mutex_);
      if (cv_.wait_for(lock, std::chrono::milliseconds(backoff_ms), [&] { return stopping_; })) return;
      Status st = launch();
      if (st) {
        lock.unlock();
        st = wait_ready(std::chrono::seconds(20));
      }
      if (st) {
        log::info(kLog, "slapd restarted (pid {})", slapd_.pid());
        backoff_ms = 500;
      } else {
        log::error(kLog, "slapd restart failed: {}", st.error().message);
        backoff_ms = std::min(backoff_ms * 2, 30000);
      }
    }
  }
}

void EmbeddedDirectory::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  // The supervisor leaves its loop within one tick; after the join only this thread touches slapd_.
  if (supervisor_.joinable()) supervisor_.join();
  if (slapd_.running()) {
    pid_t pid = slapd_.pid();
    slapd_.terminate();
    log::info(kLog, "slapd (pid {}) stopped", pid);
  }
}

bool EmbeddedDirectory::running() const {
  std::lock_guard lock(mutex_);
  return slapd_.running();
}

pid_t EmbeddedDirectory::pid() const {
  std::lock_guard lock(mutex_);
  return slapd_.pid();
}

Status EmbeddedDirectory::load_base_dit() {
  return store::load_base_dit(endpoint(), options_.suffix, options_.schema_dir);
}

}  // namespace ca::store
