// ca-clone spawn: a clone from a bundle and a YAML file (Dogtag's pkispawn for clones).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "api/admin_messages.hpp"
#include "api/instance_messages.hpp"
#include "authority/instance/instance_setup.hpp"
#include "commands.hpp"
#include "core/config.hpp"
#include "core/log.hpp"
#include "crypto/keys.hpp"
#include "crypto/pem.hpp"
#include "crypto/pkcs12_bundle.hpp"
#include "crypto/signing_key.hpp"
#include "master_client.hpp"
#include "store/ldap/directory_census.hpp"
#include "store/ldap/embedded_directory.hpp"
#include "store/ldap/replication.hpp"

namespace ca::clone_tools {

namespace {

namespace fs = std::filesystem;

constexpr std::string_view kUsage =
    R"(usage: ca-clone spawn --config CLONE.yaml [--dry-run] [--no-start] [--ca-server PATH]

Creates a clone of a running CA instance (the master) from a clone bundle (`ca-clone prepare`):
  1. checks the bundle: it opens, holds the CA signing key, and its CA is the master's CA
  2. registers with the master over TLS (the master's certificate must name the host of
     master_url) with the join token of the bundle: the clone makes its own subsystem key and
     CSR, and gets its subsystem certificate, a replica ID of its own and a replication account
     with a fresh password (the master's directory password is never handed over). A re-run
     authenticates with the clone's own subsystem certificate instead
  3. writes the instance folder: certificates and keys from the bundle, the clone's subsystem
     certificate and key, its directory's TLS certificate, secrets, instance.yaml
  4. creates the clone's directory (slapd; server ID = replica ID; its TCP port speaks ldaps://
     only) and its agreement to consume from the master's directory (TLS, the CA's certificate
     demanded)
  5. waits for the initial data, showing entries and bytes
  6. asks the master's directory to consume from the clone's (multi-provider, both directions)
  7. claims the clone's serial and request ranges, issues its own TLS server certificate, and
     starts `ca-server run` in the background (unless --no-start)
Every step is idempotent: after a failure, fix the cause and run the same command again.

CLONE.yaml: an instance configuration (see `ca-server sample-config`; ca.subject, ca.key_type
and ranges.replica_id come from the bundle and the master) plus a `clone` section:
  clone:
    master_url: https://master.example.com:8443   # required
    pkcs12_file: ca-clone.p12                     # required
    pkcs12_password_file: ca-clone.pass           # required ("-": standard input)
    join_token_file: ca-clone.p12.join-token      # default: <pkcs12_file>.join-token
    setup_replication: true                       # false: you set up the agreements yourself
    sync_timeout_seconds: 600                     # step 5 gives up after this (re-run to go on)
  instance: {id: clone1, dir: /var/lib/ca/clone1}
  server: {address: 127.0.0.1, port: 8444, http_port: 8081}
  directory: {port: 3891, listen_address: 127.0.0.1}  # the master's directory connects here

Options:
  --config FILE     the clone's YAML (relative paths in it are relative to its folder)
  --dry-run         validate everything that can be checked without changing anything
                    (the YAML, the bundle, the master's CA) and print the plan
  --no-start        do everything but start ca-server
  --ca-server PATH  the ca-server binary (default: next to ca-clone)
  -h, --help        show this help

Exit status: 0 done, 1 failed (re-run to continue), 2 usage or configuration error.
)";

struct SpawnPlan {
  fs::path clone_yaml;
  std::string master_url;
  fs::path pkcs12_file;
  std::string pkcs12_password_file;
  fs::path join_token_file;
  bool setup_replication = true;
  int sync_timeout_seconds = 600;
  YAML::Node instance_yaml;  // the instance part, paths made absolute
};

void step(int n, std::string_view what) {
  std::printf("[%d/7] %.*s\n", n, static_cast<int>(what.size()), what.data());
  std::fflush(stdout);
}
void detail(const std::string& text) {
  std::printf("      %s\n", text.c_str());
  std::fflush(stdout);
}

Result<SpawnPlan> load_plan(const fs::path& file) {
  SpawnPlan plan;
  plan.clone_yaml = fs::absolute(file);
  YAML::Node root;
  try {
    root = YAML::LoadFile(file.string());
  } catch (const std::exception& e) {
    return fail(Error::config(fmt::format("{}: {}", file.string(), e.what())));
  }
  if (!root.IsMap()) return fail(Error::config(fmt::format("{}: expected a mapping at the top", file.string())));
  auto clone = root["clone"];
  if (!clone || !clone.IsMap())
    return fail(Error::config(fmt::format("{}: the 'clone' section is missing", file.string())));
  const fs::path base = plan.clone_yaml.parent_path();
  auto text = [&](const char* key, bool required) -> Result<std::string> {
    auto n = clone[key];
    if (!n) {
      if (required) return fail(Error::config(fmt::format("{}: clone.{} is required", file.string(), key)));
      return std::string();
    }
    if (!n.IsScalar()) return fail(Error::config(fmt::format("{}: clone.{}: expected a string", file.string(), key)));
    return n.as<std::string>();
  };
  for (auto it = clone.begin(); it != clone.end(); ++it) {
    auto key = it->first.as<std::string>();
    if (key != "master_url" && key != "pkcs12_file" && key != "pkcs12_password_file" && key != "setup_replication" &&
        key != "sync_timeout_seconds" && key != "join_token_file")
      return fail(Error::config(fmt::format(
          "{}: clone.{}: unknown key (expected master_url, pkcs12_file, pkcs12_password_file, join_token_file, "
          "setup_replication, sync_timeout_seconds)",
          file.string(), key)));
  }
  CA_TRY(plan.master_url, text("master_url", true));
  CA_TRY(auto master, parse_https_url(plan.master_url));
  (void)master;
  CA_TRY(std::string p12, text("pkcs12_file", true));
  plan.pkcs12_file = fs::absolute(base / p12);
  CA_TRY(std::string token_file, text("join_token_file", false));
  plan.join_token_file =
      token_file.empty() ? fs::path(plan.pkcs12_file.string() + ".join-token") : fs::absolute(base / token_file);
  CA_TRY(plan.pkcs12_password_file, text("pkcs12_password_file", true));
  if (plan.pkcs12_password_file != "-")
    plan.pkcs12_password_file = fs::absolute(base / plan.pkcs12_password_file).string();
  try {
    if (clone["setup_replication"]) plan.setup_replication = clone["setup_replication"].as<bool>();
    if (clone["sync_timeout_seconds"]) plan.sync_timeout_seconds = clone["sync_timeout_seconds"].as<int>();
  } catch (const std::exception&) {
    return fail(Error::config(fmt::format(
        "{}: clone.setup_replication must be true or false and clone.sync_timeout_seconds a number", file.string())));
  }
  root.remove("clone");
  if (!root["instance"] || !root["instance"]["id"] || !root["instance"]["dir"])
    return fail(Error::config(fmt::format("{}: instance.id and instance.dir are required for a clone", file.string())));
  root["instance"]["dir"] = fs::absolute(base / root["instance"]["dir"].as<std::string>()).lexically_normal().string();
  plan.instance_yaml = root;
  return plan;
}

struct BundleContents {
  std::vector<crypto::Pkcs12Certificate> all;
  crypto::Pkcs12Certificate* ca = nullptr;
  crypto::Pkcs12Certificate* ocsp = nullptr;
  crypto::Pkcs12Certificate* audit = nullptr;
  crypto::Pkcs12Certificate* storage = nullptr;  // key archival; absent in bundles of older masters
  crypto::Pkcs12Certificate* transport = nullptr;
};

Result<BundleContents> open_bundle(const SpawnPlan& plan) {
  CA_TRY(auto password, crypto::read_password(plan.pkcs12_password_file));
  BundleContents b;
  CA_TRY(b.all, crypto::read_pkcs12_file(plan.pkcs12_file, password.view()));
  for (auto& c : b.all) {
    auto starts = [&](std::string_view p) { return c.friendly_name.rfind(p, 0) == 0; };
    if (starts("caSigningCert "))
      b.ca = &c;
    else if (starts("ocspSigningCert "))
      b.ocsp = &c;
    else if (starts("auditSigningCert "))
      b.audit = &c;
    else if (starts("storageCert ") && c.has_key)
      b.storage = &c;
    else if (starts("transportCert ") && c.has_key)
      b.transport = &c;
  }
  std::string file = plan.pkcs12_file.string();
  if (!b.ca)
    return fail(
        Error::bad_request(fmt::format("{}: no CA signing certificate (caSigningCert ...) in the bundle", file)));
  if (!b.ca->has_key)
    return fail(Error::bad_request(fmt::format(
        "{}: the bundle holds no CA signing key (made with --no-key?); a clone must be able to sign", file)));
  for (auto* c : {b.ocsp, b.audit})
    if (!c || !c->has_key)
      return fail(Error::bad_request(
          fmt::format("{}: the bundle lacks the OCSP signing or audit signing certificate or its key", file)));
  return b;
}

Status write_cert_and_key(const InstanceConfig& c, std::string_view name, const crypto::Pkcs12Certificate& item) {
  CA_CHECK(crypto::write_private_key_file(c.key_file(name), item.key.get()));
  CA_CHECK(crypto::write_certificate_file(c.cert_file(name), item.cert.get()));
  return ok();
}

// Waits until the clone's directory has everything the master's had when we started.
Status wait_for_initial_data(const InstanceConfig& c, const store::EmbeddedDirectory& slapd, const SpawnPlan& plan,
                             const std::string& master_directory_url, int master_replica_id, const std::string& bind_dn,
                             const std::string& password) {
  CA_TRY(auto master, store::LdapConnection::open(store::LdapEndpoint{master_directory_url, bind_dn, password, 5000,
                                                                      c.cert_file("ca_signing").string()}));
  CA_TRY(auto target, store::context_csns(*master, c.directory.suffix));
  std::string goal = target.count(master_replica_id) ? target[master_replica_id] : std::string();
  CA_TRY(std::size_t master_entries, store::count_entries(*master, c.directory.suffix));
  detail(fmt::format("the master's directory holds {} entries (contextCSN {})", master_entries,
                     goal.empty() ? "none" : goal));
  CA_TRY(auto local, store::LdapConnection::open(slapd.endpoint(10000)));
  auto started = std::chrono::steady_clock::now();
  auto data_file = c.slapd_dir() / "data" / "data.mdb";
  std::size_t last_count = static_cast<std::size_t>(-1);
  while (true) {
    CA_TRY(auto csns, store::context_csns(*local, c.directory.suffix));
    std::size_t entries = 0;
    if (!csns.empty()) {
      CA_TRY(std::size_t counted, store::count_entries(*local, c.directory.suffix));
      entries = counted;
    }
    std::error_code ec;
    auto bytes = fs::exists(data_file, ec) ? fs::file_size(data_file, ec) : 0;
    bool caught_up =
        !csns.empty() && (goal.empty() || (csns.count(master_replica_id) && csns[master_replica_id] >= goal));
    if (entries != last_count || caught_up) {
      detail(fmt::format("{} of {} entries, {:.1f} MB in {}", entries, master_entries, static_cast<double>(bytes) / 1e6,
                         data_file.filename().string()));
      last_count = entries;
    }
    if (caught_up) return ok();
    if (std::chrono::steady_clock::now() - started > std::chrono::seconds(plan.sync_timeout_seconds))
      return fail(Error::unavailable(fmt::format(
          "the initial data did not arrive within {} s ({} of {} entries); check that the master's directory at {} "
          "is reachable from here, then run the same command again to go on waiting",
          plan.sync_timeout_seconds, entries, master_entries, master_directory_url)));
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

Result<pid_t> start_server(const fs::path& binary, const fs::path& config, const fs::path& log_file) {
  // Opened here, so that a log that cannot be written is an error rather than lost output.
  int fd = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) return fail(Error::io(fmt::format("cannot open {}: {}", log_file.string(), std::strerror(errno))));
  pid_t pid = ::fork();
  if (pid < 0) ::close(fd);
  if (pid < 0) return fail(Error::io(fmt::format("fork failed: {}", std::strerror(errno))));
  if (pid == 0) {
    ::setsid();                  // detached: the server outlives ca-clone and its terminal
    ::signal(SIGPIPE, SIG_DFL);  // ca-clone ignores it; ca-server sets its own dispositions
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    int null = ::open("/dev/null", O_RDONLY);
    if (null >= 0) ::dup2(null, 0);
    ::execl(binary.c_str(), binary.c_str(), "run", "--config", config.c_str(), static_cast<char*>(nullptr));
    std::fprintf(stderr, "cannot run %s: %s\n", binary.c_str(), std::strerror(errno));
    ::_exit(127);
  }
  ::close(fd);
  return pid;
}

fs::path default_ca_server() {
  std::error_code ec;
  auto self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) return self.parent_path() / "ca-server";
  return "ca-server";
}

// Step 1 after the bundle opened: the master answers over TLS with a certificate of the bundle's
// CA, and serves that CA certificate (not another CA's of the same name).
Status check_master_serves_bundle_ca(const SpawnPlan& plan, const BundleContents& bundle) {
  CA_TRY(auto anonymous, MasterClient::create(plan.master_url, bundle.ca->cert.get(), nullptr, nullptr));
  auto answer = anonymous->get("/ca/rest/info");
  if (!answer && answer.error().is(ErrorCode::forbidden))
    return fail(Error::forbidden(fmt::format(
        "the master at {} does not present a TLS certificate of the bundle's CA: the bundle is from another CA ({})",
        plan.master_url, answer.error().message)));
  if (!answer) return fail(answer.error());
  // An answer without the CA certificate cannot show the same CA either.
  auto info = api::decode_message<api::CaInfoAnswer>(*answer);
  auto master_ca = crypto::parse_certificate_pem(info ? info->certificate_chain : std::string());
  if (!master_ca || crypto::certificate_to_der(master_ca->get()) != crypto::certificate_to_der(bundle.ca->cert.get()))
    return fail(Error::forbidden(fmt::format(
        "the bundle's CA certificate is not the CA certificate the master at {} serves: the bundle is from another CA",
        plan.master_url)));
  detail(fmt::format("the master at {} serves the same CA", plan.master_url));
  return ok();
}

int print_dry_run(const OptionParser& options, const SpawnPlan& plan, const InstanceConfig& c, bool no_start,
                  const fs::path& ca_server) {
  std::printf("\nDry run: nothing was changed. The plan:\n");
  const bool rerun = fs::exists(c.cert_file("subsystem"));
  if (!rerun && !fs::exists(plan.join_token_file))
    return options.failure(Error::not_found(
        fmt::format("{}: no join token (`ca-clone prepare` writes it beside the bundle; set clone.join_token_file)",
                    plan.join_token_file.string())));
  std::printf("  register instance '%s' with %s (%s)\n", c.instance_id.c_str(), plan.master_url.c_str(),
              rerun ? "again, with its own subsystem certificate"
                    : ("join token " + plan.join_token_file.string() + ", a subsystem key made here").c_str());
  std::printf("  instance folder %s, HTTPS on %s:%u\n", c.dir.c_str(), c.server.address.c_str(), c.server.port);
  std::printf("  directory: embedded slapd in %s, peers reach it at ldaps://%s:%u/\n", c.slapd_dir().c_str(),
              c.directory.listen_address.c_str(), c.directory.port);
  std::printf("  replication: %s\n", plan.setup_replication ? "both directions with the master's directory"
                                                            : "not set up (setup_replication: false)");
  std::printf("  then %s\n",
              no_start ? "leave ca-server stopped (--no-start)" : ("start " + ca_server.string()).c_str());
  return kExitOk;
}

// Who the clone is when it registers: a first run has a join token and a subsystem key made here
// (the key never leaves this machine; the master certifies its CSR), a re-run its own subsystem
// certificate and key.
struct CloneIdentity {
  bool rerun = false;
  ossl::UniquePtr<X509> cert;  // null until the master certifies a first run's key
  ossl::UniquePtr<EVP_PKEY> key;
  std::string join_token, csr_pem;  // first run only
};

Result<CloneIdentity> clone_identity(const InstanceConfig& c, const SpawnPlan& plan) {
  CloneIdentity id;
  id.rerun = fs::exists(c.cert_file("subsystem")) && fs::exists(c.key_file("subsystem"));
  if (id.rerun) {
    CA_TRY(id.cert, crypto::load_certificate_file(c.cert_file("subsystem")));
    CA_TRY(id.key, crypto::open_private_key(c.key_uri("subsystem")));
    detail("registering again with this clone's own subsystem certificate");
    return id;
  }
  auto token = read_secret_file(plan.join_token_file);
  if (!token)
    return fail(Error::not_found(
        fmt::format("{}: no join token (`ca-clone prepare` writes it beside the bundle; set clone.join_token_file): {}",
                    plan.join_token_file.string(), token.error().message)));
  id.join_token = *token;
  CA_TRY(id.key, crypto::generate_key(KeyType::ec_p256));
  CA_TRY(id.csr_pem, crypto::make_csr_pem(id.key.get(), fmt::format("CN={}", c.instance_id)));
  return id;
}

// A re-run into a folder: refuse before registering if that folder's replica was retired, or the
// master would hand out (and keep) a new replica ID for a folder that cannot use it.
Status refuse_retired_folder(MasterClient& admin, const InstanceConfig& c, const fs::path& instance_yaml_path) {
  auto previous = load_instance_config(instance_yaml_path);
  auto topology = admin.get_message<api::TopologyAnswer>("/ca/rest/admin/topology");
  if (!topology && topology.error().is(ErrorCode::forbidden))
    return fail(Error::conflict(fmt::format(
        "{} belongs to an instance the master no longer accepts ({}); if it was removed, spawn into a new folder",
        c.dir.string(), topology.error().message)));
  if (!topology) return fail(topology.error());
  if (previous && topology->lists_as_retired(previous->ranges.replica_id))
    return fail(Error::conflict(fmt::format("{} belongs to replica {}, which was retired; spawn into a new folder",
                                            c.dir.string(), previous->ranges.replica_id)));
  return ok();
}

// Step 2: registers, and for a first run takes the subsystem certificate the master issued for
// the clone's key (`admin` then authenticates with it).
Result<api::CloneRegistrationAnswer> register_with_master(const SpawnPlan& plan, const InstanceConfig& c,
                                                          const BundleContents& bundle, CloneIdentity& id,
                                                          std::unique_ptr<MasterClient>& admin) {
  api::CloneRegistrationRequest request{c.instance_id, fmt::format("https://{}:{}", c.server.address, c.server.port),
                                        std::nullopt, std::nullopt};
  if (!id.rerun) {
    request.join_token = id.join_token;
    request.subsystem_csr = id.csr_pem;
  }
  CA_TRY(auto registered, admin->post_message<api::CloneRegistrationAnswer>("/ca/rest/admin/clones", request));
  if (id.rerun) return registered;
  auto cert = registered.subsystem_certificate ? crypto::parse_certificate_pem(*registered.subsystem_certificate)
                                               : Result<ossl::UniquePtr<X509>>(fail(Error::internal("none")));
  if (!cert || X509_check_private_key(cert->get(), id.key.get()) != 1)
    return fail(Error::internal("the master did not return a subsystem certificate for this clone's key"));
  id.cert = std::move(*cert);
  CA_TRY(admin, MasterClient::create(plan.master_url, bundle.ca->cert.get(), id.cert.get(), id.key.get()));
  detail(fmt::format("subsystem certificate '{}' (serial 0x{})",
                     crypto::name_to_string(X509_get_subject_name(id.cert.get())),
                     crypto::serial_to_hex(X509_get0_serialNumber(id.cert.get()))));
  return registered;
}

// A re-run continues where the last one stopped, but only for the same replica: a folder of a
// retired clone must not be reused under a new replica ID (its directory has the old server ID).
Status check_folder_is_of_replica(const InstanceConfig& c, const fs::path& instance_yaml_path, int replica_id) {
  if (!fs::exists(instance_yaml_path)) return ok();
  auto previous = load_instance_config(instance_yaml_path);
  if (previous && previous->ranges.replica_id != replica_id)
    return fail(Error::conflict(
        fmt::format("{} belongs to replica {}, but the master gave this clone replica ID {} (was replica {} retired?); "
                    "spawn into a new folder",
                    c.dir.string(), previous->ranges.replica_id, replica_id, previous->ranges.replica_id)));
  detail("continuing in the existing folder (same replica)");
  return ok();
}

// Step 3: certificates and keys from the bundle, the clone's own, secrets, instance.yaml.
Status write_instance_folder(const SpawnPlan& plan, const InstanceConfig& c, const BundleContents& bundle,
                             const CloneIdentity& id, const std::string& replication_password,
                             const fs::path& instance_yaml_path, const std::string& final_yaml) {
  for (const auto& [dir, perms] :
       {std::pair{c.dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec},
        std::pair{c.certs_dir(), fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                     fs::perms::others_read | fs::perms::others_exec},
        std::pair{c.private_dir(), fs::perms::owner_all}, std::pair{c.dir / "secrets", fs::perms::owner_all}})
    CA_CHECK(authority::ensure_dir(dir, perms));
  for (auto [name, item] : {std::pair{"ca_signing", bundle.ca}, std::pair{"ocsp_signing", bundle.ocsp},
                            std::pair{"audit_signing", bundle.audit}})
    CA_CHECK(write_cert_and_key(c, name, *item));
  // The key archive's keys: every instance must open every archived key.
  if (bundle.storage && bundle.transport)
    for (auto [name, item] : {std::pair{"kra_storage", bundle.storage}, std::pair{"kra_transport", bundle.transport}})
      CA_CHECK(write_cert_and_key(c, name, *item));
  if (!id.rerun) {
    CA_CHECK(crypto::write_private_key_file(c.key_file("subsystem"), id.key.get()));
    CA_CHECK(crypto::write_certificate_file(c.cert_file("subsystem"), id.cert.get()));
  }
  // The TLS certificate of the clone's directory port, signed here with the CA key of the bundle
  // (the directory that will record it does not exist yet; step 7 records it).
  if (!fs::exists(c.cert_file("directory")) || !fs::exists(c.key_file("directory")))
    CA_CHECK(authority::issue_local_certificate(c, "directory"));
  CA_CHECK(authority::ensure_password_file(c.directory.bind_password_file));
  CA_CHECK(crypto::write_text_file_atomic(c.dir / "secrets" / "replication.pass", replication_password, 0600));
  std::string yaml_text =
      std::string("# Written by ca-clone spawn from ") + plan.clone_yaml.string() + "\n" + final_yaml + "\n";
  CA_CHECK(crypto::write_text_file_atomic(instance_yaml_path, yaml_text, 0640));
  detail(fmt::format("{} (certificates, keys 0600, secrets, instance.yaml)", c.dir.string()));
  return ok();
}

// Steps 4 to 6: the clone's directory, consuming from the master's until it has the initial data,
// then the master's consuming from it.
Status replicate_directory(const SpawnPlan& plan, const InstanceConfig& c, const api::CloneRegistrationAnswer& reg,
                           MasterClient& admin) {
  step(4, "creating the clone's directory");
  CA_TRY(auto directory_password, read_secret_file(c.directory.bind_password_file));
  store::EmbeddedDirectory slapd(authority::embedded_directory_options(c, directory_password));
  if (!slapd.initialized()) CA_CHECK(slapd.initialize());
  CA_CHECK(slapd.start(false));
  detail(fmt::format("slapd (server ID {}) at {}", reg.replica_id, slapd.url()));
  if (plan.setup_replication) {
    // Bound with the clone's directory certificate (SASL EXTERNAL): registration made its subject a
    // directory peer, which reads everything, hashes included. The account (bind_dn) does not.
    store::ReplicationPeer master_peer{reg.master_replica_id,
                                       reg.master_directory_url,
                                       {},
                                       {},
                                       c.cert_file("ca_signing").string(),
                                       c.cert_file("directory").string(),
                                       c.key_file("directory").string()};
    CA_CHECK(store::put_replication_peer(slapd.config_endpoint(), master_peer, c.directory.suffix));
    detail(fmt::format("consuming from the master's directory {}", reg.master_directory_url));
  }

  step(5, "waiting for the initial data");
  CA_CHECK(wait_for_initial_data(c, slapd, plan, reg.master_directory_url, reg.master_replica_id,
                                 reg.replication_bind_dn, reg.replication_password));

  step(6, "connecting the master's directory to the clone's");
  if (plan.setup_replication) {
    CA_TRY(auto connected, admin.post_message<api::ReplicationConnectAnswer>(
                               fmt::format("/ca/rest/admin/clones/{}/replication", reg.replica_id),
                               api::ReplicationConnectRequest{slapd.tcp_url()}));
    detail(fmt::format("the master consumes from {}", connected.directory_url));
  } else {
    detail("skipped (setup_replication: false)");
  }
  slapd.stop();
  return ok();
}

// Step 7, after the ranges and the TLS certificate: ca-server in the background, waited for until
// it answers over HTTPS.
int start_and_wait(const OptionParser& options, const InstanceConfig& c, const BundleContents& bundle,
                   const fs::path& ca_server, const fs::path& instance_yaml_path, int replica_id) {
  auto pid = start_server(ca_server, instance_yaml_path, c.dir / "ca-server.log");
  if (!pid) return options.failure(pid.error());
  auto tls_client = MasterClient::create(fmt::format("https://{}:{}", c.server.address, c.server.port),
                                         bundle.ca->cert.get(), nullptr, nullptr);
  for (int i = 0; i < 120; ++i) {
    int status = 0;
    if (::waitpid(*pid, &status, WNOHANG) == *pid)
      return options.failure(
          Error::internal(fmt::format("ca-server exited at start; see {}", (c.dir / "ca-server.log").string())));
    if (tls_client && (*tls_client)->get("/ca/rest/info")) {
      std::printf("\nClone '%s' (replica %d) serves https://%s:%u/ (ca-server pid %d, log %s)\n", c.instance_id.c_str(),
                  replica_id, c.server.address.c_str(), c.server.port, *pid, (c.dir / "ca-server.log").c_str());
      return kExitOk;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  return options.failure(Error::unavailable(
      fmt::format("ca-server (pid {}) did not answer within 60 s; see {}", *pid, (c.dir / "ca-server.log").string())));
}

// Steps 2 to 7 (step 1 checked the bundle and the master).
int spawn_from_checked(const OptionParser& options, const SpawnPlan& plan, InstanceConfig c,
                       const BundleContents& bundle, bool no_start, const fs::path& ca_server,
                       const fs::path& instance_yaml_path) {
  step(2, "registering with the master");
  auto id = clone_identity(c, plan);
  if (!id) return options.failure(id.error());
  auto admin = MasterClient::create(plan.master_url, bundle.ca->cert.get(), id->cert.get(), id->key.get());
  if (!admin) return options.failure(admin.error());
  if (id->rerun && fs::exists(instance_yaml_path))
    if (auto st = refuse_retired_folder(**admin, c, instance_yaml_path); !st) return options.failure(st.error());
  auto reg = register_with_master(plan, c, bundle, *id, *admin);
  if (!reg) return options.failure(reg.error());
  detail(fmt::format("replica ID {} (the master is replica {}), replication account {}", reg->replica_id,
                     reg->master_replica_id, reg->replication_bind_dn));
  // What the instance config cannot know by itself.
  YAML::Node yaml = plan.instance_yaml;
  yaml["ca"]["subject"] = crypto::name_to_string(X509_get_subject_name(bundle.ca->cert.get()));
  yaml["ranges"]["replica_id"] = reg->replica_id;
  YAML::Emitter final_yaml;
  final_yaml << yaml;
  auto final_config = parse_instance_config(final_yaml.c_str(), instance_yaml_path);
  if (!final_config) return options.failure(final_config.error());
  c = *final_config;

  step(3, "writing the instance folder");
  if (auto st = check_folder_is_of_replica(c, instance_yaml_path, reg->replica_id); !st)
    return options.failure(st.error());
  if (auto st = write_instance_folder(plan, c, bundle, *id, reg->replication_password, instance_yaml_path,
                                      final_yaml.c_str());
      !st)
    return options.failure(st.error());
  if (auto st = replicate_directory(plan, c, *reg, **admin); !st) return options.failure(st.error());

  step(7, "claiming ranges, issuing the clone's TLS certificate, starting ca-server");
  if (auto st = authority::initialize_instance(c); !st) return options.failure(st.error());
  if (no_start) {
    detail(
        fmt::format("not started (--no-start): {} run --config {}", ca_server.string(), instance_yaml_path.string()));
    return kExitOk;
  }
  return start_and_wait(options, c, bundle, ca_server, instance_yaml_path, reg->replica_id);
}

int spawn(const OptionParser& options, const SpawnPlan& plan, bool dry_run, bool no_start, const fs::path& ca_server) {
  YAML::Emitter out;
  out << plan.instance_yaml;
  // Checked now, before anything is done: the instance part must be a valid instance config.
  auto instance_yaml_path = fs::path(plan.instance_yaml["instance"]["dir"].as<std::string>()) / "instance.yaml";
  auto checked = parse_instance_config(out.c_str(), instance_yaml_path);
  if (!checked) return std::fprintf(stderr, "ca-clone spawn: %s\n", checked.error().message.c_str()), kExitUsage;
  const InstanceConfig& c = *checked;
  if (c.directory.mode != DirectoryMode::embedded)
    return options.usage_error("spawn sets up an embedded directory; directory.mode must be embedded");
  if (plan.setup_replication && c.directory.port == 0)
    return options.usage_error(
        "directory.port is required: the master's directory replicates from the clone's through it");

  step(1, "checking the bundle and the master");
  auto bundle = open_bundle(plan);
  if (!bundle) return options.failure(bundle.error());
  detail(fmt::format("{}: CA '{}', {} certificates", plan.pkcs12_file.string(),
                     crypto::name_to_string(X509_get_subject_name(bundle->ca->cert.get())), bundle->all.size()));
  if (auto st = check_master_serves_bundle_ca(plan, *bundle); !st) return options.failure(st.error());
  if (dry_run) return print_dry_run(options, plan, c, no_start, ca_server);
  return spawn_from_checked(options, plan, c, *bundle, no_start, ca_server, instance_yaml_path);
}

}  // namespace

int run_spawn(Args args) {
  std::string config_file, ca_server;
  bool dry_run = false, no_start = false;
  OptionParser options("ca-clone spawn", kUsage);
  options.value("--config", &config_file)
      .value("--ca-server", &ca_server)
      .flag("--dry-run", &dry_run)
      .flag("--no-start", &no_start);
  if (auto done = options.parse(args)) return *done;
  if (config_file.empty()) return options.usage_error("--config is required");
  auto plan = load_plan(config_file);
  if (!plan) return std::fprintf(stderr, "ca-clone spawn: %s\n", plan.error().message.c_str()), kExitUsage;
  log::set_level(log::Level::warn);  // the steps print progress; the libraries' info lines would drown it
  return spawn(options, *plan, dry_run, no_start, ca_server.empty() ? default_ca_server() : fs::path(ca_server));
}

}  // namespace ca::clone_tools
