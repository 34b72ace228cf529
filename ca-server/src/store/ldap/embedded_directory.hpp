#pragma once
// The embedded directory: a private slapd whose configuration and data live in the instance
// folder (<instance>/slapd), started and supervised by the process that owns this object.
// Tests use the same class to run a real slapd in a temporary folder.
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>

#include "core/child_process.hpp"
#include "core/error.hpp"
#include "store/ldap/ldap_connection.hpp"

namespace ca::store {

struct EmbeddedDirectoryOptions {
  std::filesystem::path dir;  // holds slapd.d/, data/, ldapi socket, slapd.log
  std::string suffix = "o=pki-ca";
  std::string root_dn;                       // default cn=Directory Manager,<suffix>
  std::string root_password;                 // stored hashed ({SSHA}) in cn=config
  uint16_t port = 0;                         // also listen on ldap://listen_address:port/ (0 = unix socket only)
  std::string listen_address = "127.0.0.1";  // where peers' directories reach this one
  int server_id = 1;                         // olcServerID: the replica ID in a multi-provider set
  bool fsync = true;                         // false: olcDbNoSync (faster, loses the last writes on power loss)
  std::string slapd_path = "/usr/sbin/slapd";
  std::string slapadd_path = "/usr/sbin/slapadd";
  std::filesystem::path schema_dir;  // folder with ca-schema.ldif and base-dit.ldif
  // TLS for the TCP listener: with these set, the port speaks ldaps:// only (a plain LDAP bind
  // there fails), and this slapd's replication agreements demand a peer certificate from this CA.
  std::filesystem::path tls_cert_file;  // PEM, names listen_address (IP or DNS SAN)
  std::filesystem::path tls_key_file;
  std::filesystem::path tls_ca_file;  // the CA certificate: peers' certificates must chain to it
  bool tcp = true;                    // false: this start listens on the unix socket only
  bool tls() const { return !tls_cert_file.empty(); }
};

class EmbeddedDirectory {
 public:
  explicit EmbeddedDirectory(EmbeddedDirectoryOptions options);
  ~EmbeddedDirectory();  // stops the slapd it started
  EmbeddedDirectory(const EmbeddedDirectory&) = delete;
  EmbeddedDirectory& operator=(const EmbeddedDirectory&) = delete;

  bool initialized() const;
  // Creates cn=config (slapadd -n0) and an empty database. Fails if it already exists.
  Status initialize();
  // Starts slapd and waits until it answers a bind; with `supervise`, a crashed slapd is restarted.
  Status start(bool supervise = true);
  // Adds the base DIT (schema/base-dit.ldif) if the suffix entry is missing.
  Status load_base_dit();
  // SIGTERM to our slapd (by PID), waits for it.
  void stop();
  bool running() const;
  pid_t pid() const;

  // Where clients connect: ldap://127.0.0.1:port/ when a plain port is set, else the ldapi
  // socket (local clients never need TLS). tcp_url(): what peers use (ldaps:// with TLS).
  std::string url() const;
  std::string tcp_url() const;
  std::string ldapi_url() const;
  LdapEndpoint endpoint(int timeout_ms = 3000) const;
  // cn=config of this slapd (cn=admin,cn=config over the unix socket): replication agreements.
  LdapEndpoint config_endpoint(int timeout_ms = 20000) const;
  const EmbeddedDirectoryOptions& options() const { return options_; }
  // The olcAccess rules of the database (store/directory_access.hpp), set at creation and at
  // every start.
  std::vector<std::string> access_rules() const;

 private:
  Status launch();
  Status apply_sync_mode();
  Status apply_tls();
  Status apply_access_rules();
  bool tls_configured() const;
  void wait_for_previous_slapd();
  Status wait_ready(std::chrono::milliseconds timeout);
  void supervise_loop();
  std::string config_ldif() const;

  EmbeddedDirectoryOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  ChildProcess slapd_;
  std::thread supervisor_;
  bool stopping_ = false;
};

// {SSHA} userPassword value (RFC 2307 style) for cn=config's olcRootPW.
std::string ssha_password_hash(const std::string& password);
// A random password of printable characters from the CSPRNG.
std::string random_password(std::size_t length = 32);
// Percent-encodes a socket path for an ldapi:// URL.
std::string ldapi_url_for(const std::filesystem::path& socket);

}  // namespace ca::store
