#pragma once
// The instance configuration (instance.yaml), validated at load time: an unknown key,
// a wrong type or a missing file is an Error naming the file, the key and what was expected.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace ca {

enum class KeyType { ec_p256, ec_p384, rsa_2048, rsa_3072, ed25519 };
std::string_view key_type_name(KeyType t);
Result<KeyType> parse_key_type(std::string_view text);

enum class SerialGenerator { ranges, random };
enum class DirectoryMode { embedded, external };

struct CaSection {
  std::string subject = "CN=Certificate Authority,O=Example";
  KeyType key_type = KeyType::ec_p256;
  int validity_days = 3650;
  SerialGenerator serial_generator = SerialGenerator::ranges;
  std::string public_url;                    // base URL relying parties use (load balancer); empty = server URL
  std::filesystem::path key_blocklist_file;  // SHA-256 of refused SubjectPublicKeyInfos, one a line; empty = none
  int approval_poll_ms = 2000;               // how often this instance issues the approved requests it received
  std::string est_profile = "caServerCert";  // EST requests without a label (/.well-known/est/simpleenroll)
  int retry_after_seconds = 10;              // Retry-After of a request that waits for an agent (EST and JSON 202s)
  // Refusals of unauthenticated callers are audited as one requests_refused record per this long.
  int refusal_summary_ms = 60000;
};

struct ServerSection {
  std::string address = "127.0.0.1";
  uint16_t port = 8443;
  uint16_t http_port = 0;  // plain HTTP for CRLs and OCSP (relying parties); 0 = off
  int io_threads = 0;      // 0 = one per core
  int worker_threads = 0;  // 0 = 4 per core (workers block on the directory)
  std::size_t body_limit = std::size_t{64} * 1024;
  int idle_timeout_seconds = 30;
  int max_connections = 1024;     // open connections at once; more are closed at accept
  int max_queued_requests = 512;  // requests waiting for a worker; more are answered 503
  // Per client address (the PROXY header's client behind a balancer): open connections (more are
  // closed at accept), and a token bucket of requests (429 + Retry-After beyond it; 0 = no limit;
  // health checks are exempt).
  int max_connections_per_client = 256;
  int client_requests_per_second = 2000;
  int client_request_burst = 4000;
  // A new connection's PROXY header, TLS handshake and first request header are due within this.
  int handshake_timeout_seconds = 10;
  // PROXY protocol v2 on the HTTPS port (proxy_protocol) and on the plain-HTTP port
  // (http_proxy_protocol): connections from proxy_protocol_trusted must send it; others are refused.
  bool proxy_protocol = false;
  bool http_proxy_protocol = false;
  std::vector<std::string> proxy_protocol_trusted;
  // Longest a client waits for an answer: past it the request gets 503 + Retry-After (a frozen
  // directory must not hold clients). 0 = directory.timeout_ms + 1000.
  int request_timeout_ms = 0;
  // SIGTERM: stop accepting, report not ready, and give in-flight requests this long to finish.
  int shutdown_grace_ms = 5000;
};

// When a write is durable. group: the embedded slapd does not fsync; ca-server fdatasyncs its
// data file once per batch before answering (many records, one fsync). per_write: slapd fsyncs
// every write. none: nobody syncs (benchmarks, tests): a power loss loses recent records.
enum class Durability { group, per_write, none };

struct GroupCommitSection {
  int max_batch = 64;
  int writers = 4;       // overlap one batch's fdatasync with the next batch's writes
  int max_queue = 4096;  // record units waiting to be written; more are refused (503)
};

struct DirectorySection {
  DirectoryMode mode = DirectoryMode::embedded;
  std::string url;                           // external: ldap://host:port/ ; embedded: derived
  uint16_t port = 0;                         // embedded: also listen on this TCP port (0 = socket only); clones need it
  std::string listen_address = "127.0.0.1";  // embedded: where other instances' directories reach this one
  std::string suffix = "o=pki-ca";
  std::string bind_dn;                       // empty: the directory's root (store/ldap/directory_account.hpp)
  std::filesystem::path bind_password_file;  // default: <dir>/secrets/directory.pass
  int pool_size = 4;
  int timeout_ms = 3000;
  // Embedded directory: keep a replication agreement with every registered instance's directory
  // (the self-healing mesh). false: the agreements are the operator's, as spawn left them.
  bool mesh = true;
  // /readyz: not ready while this directory is more than this far behind a peer it can read
  // (a directory back from a freeze or a partition, still receiving the backlog).
  int max_lag_ms = 10000;
  Durability durability = Durability::group;  // external directories: per_write
  std::string slapd_path = "/usr/sbin/slapd";
  std::string slapadd_path = "/usr/sbin/slapadd";
  GroupCommitSection group_commit;
};

struct CrlSection {
  int update_interval_seconds = 3600;  // a new full CRL at least this often
  int validity_seconds = 86400;        // nextUpdate - thisUpdate
  int debounce_ms = 500;               // after a revocation, wait this long for more (<= 5000)
  bool generate = true;                // this instance may be elected CRL master (generates CRLs)
  int lease_seconds = 30;              // CRL master lease: another instance takes over after this
  int poll_ms = 2000;                  // master: look for other instances' revocations; others: for a new CRL
  int activation_delay_ms = 1000;      // a new CRL is served by every instance from this long after publication
  int partitions = 1;                  // CRL partitions besides the complete CRL (1 = none); fixed for the CA's life
  int full_after_changes = 1000;       // a full CRL instead of a delta past max(this, full_after_percent % of entries)
  int full_after_percent = 10;
};

struct RangesSection {
  int replica_id = 1;
  uint64_t serial_range_size = 100000;
  uint64_t request_range_size = 100000;
  uint64_t low_water_mark = 20000;  // claim the standby range when fewer remain
};

struct InstanceConfig {
  std::filesystem::path source_file;
  std::string instance_id = "ca";
  std::filesystem::path dir;  // instance folder (keys, certs, embedded directory)
  CaSection ca;
  ServerSection server;
  DirectorySection directory;
  RangesSection ranges;
  CrlSection crl;
  std::filesystem::path profiles_file;  // default: <dir>/profiles.yaml
  std::string log_level = "info";

  // Derived locations inside the instance folder.
  std::filesystem::path certs_dir() const { return dir / "certs"; }
  std::filesystem::path private_dir() const { return dir / "private"; }
  std::filesystem::path slapd_dir() const { return dir / "slapd"; }
  std::filesystem::path cert_file(std::string_view name) const;
  std::filesystem::path key_file(std::string_view name) const;
  // The key store name of the same key, what crypto::open_signing_key takes: "file:" and the
  // absolute path of key_file(name) (RFC 8089). A hardware key store would answer "pkcs11:..." here.
  std::string key_uri(std::string_view name) const;
  // Base URL for the CRL distribution point and OCSP URL in issued certificates.
  std::string public_base_url() const;
};

// Reads and validates. Relative paths are resolved against the folder of the YAML file.
Result<InstanceConfig> load_instance_config(const std::filesystem::path& file);
// Parses YAML text as if it came from `file` (used by tests and load_instance_config).
Result<InstanceConfig> parse_instance_config(const std::string& yaml_text, const std::filesystem::path& file);

}  // namespace ca
