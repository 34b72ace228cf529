// ca-server: the CA daemon. `init` creates an instance, `run` serves it.
#include <algorithm>
#include <mutex>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <fmt/format.h>

#include "authority/instance/agent_admin.hpp"
#include "authority/issuance/certificate_authority.hpp"
#include "authority/instance/instance_setup.hpp"
#include "core/config.hpp"
#include "core/log.hpp"
#include "crypto/issuer.hpp"
#include "crypto/pem.hpp"
#include "http/ca_endpoints.hpp"
#include "http/dogtag_endpoints.hpp"
#include "http/est_endpoints.hpp"
#include "http/kra_endpoints.hpp"
#include "http/revocation_endpoints.hpp"
#include "http/server.hpp"
#include "store/base_dit.hpp"
#include "store/directory_watch.hpp"
#include "store/ldap_ca_store.hpp"
#include "authority/revocation/crl_consistency.hpp"
#include "authority/revocation/crl_master.hpp"
#include "authority/issuance/idempotency.hpp"
#include "authority/cluster/single_use_claims.hpp"
#include "authority/instance/clone_registry.hpp"
#include "http/admin_endpoints.hpp"
#include "http/audit_endpoints.hpp"
#include "http/health_endpoints.hpp"
#include "authority/instance/readiness.hpp"
#include "authority/cluster/replication_lag.hpp"
#include "authority/cluster/context_csn_monitor.hpp"
#include "crypto/keys.hpp"
#include "authority/audit/audit_checkpoints.hpp"
#include "authority/audit/audit_log.hpp"
#include "authority/cluster/context_csn_monitor.hpp"
#include "authority/instance/instance_metrics.hpp"
#include "core/metrics.hpp"
#include "http/access_log.hpp"
#include "http/metrics_endpoints.hpp"
#include "store/replication.hpp"

namespace {

constexpr const char* kUsage = R"(usage: ca-server <command> [options]

Commands:
  init --config FILE          create the instance described by FILE: CA signing key and
                              certificate, subsystem certificates, directory (embedded slapd
                              by default), base DIT, profiles, replica entry. Safe to re-run:
                              finished steps are skipped.
  run --config FILE           serve the instance over HTTPS until SIGINT/SIGTERM.
  check-config --config FILE  validate FILE and exit (0 = valid).
  sample-config [--dir DIR] [--port N]
                              print a commented instance.yaml with every default.
  agent list --config FILE    the agents: certificates (serial, subject, status) in the
                              agents group of the instance's directory.
  agent add --config FILE --cert PEM
                              make an existing certificate of this CA an agent.
  agent add --config FILE --subject DN --out DIR
                              issue a new agent certificate (caAgentCert) with a key made
                              here, write both to DIR and make it an agent: the way back in
                              when every agent credential is lost.
  agent remove --config FILE --serial HEX [--revoke]
                              take the agent's rights away (and revoke its certificate).
  admin list|add|remove ...   the same for administrators (they approve agent, administrator
                              and auditor certificates and manage instances; caAdminCert).
  auditor list|add|remove ... the same for auditors (they read and verify the audit trail;
                              caAuditorCert).
                              These commands work on the directory directly, local to this
                              machine; the server may be running.
  audit verify --config FILE [--instance ID] [--file PATH] [--no-directory]
                              check the signed, hash-chained audit log (default
                              <dir>/logs/audit.log): seq continuity, every prev hash, every
                              signature (audit signing certificate, itself checked against
                              the CA certificate), and the file against the instance's
                              checkpoints in the directory: a missing tail, an emptied file,
                              a cut continued, a cut the instance recorded. --instance ID:
                              the trail of another instance (give its file with --file).
                              --no-directory: the file alone (a cut cannot be seen).
                              Exit 0 intact and matching every checkpoint, 1 anything found
                              (cut, tampered, unsigned records after the last signature:
                              unverified), 2 usage or configuration error.

Options:
  -h, --help                  show this help (also: ca-server <command> --help)
  --version                   print the version

Exit status: 0 success, 1 runtime failure, 2 usage or configuration error.
)";

struct Args {
  std::string command;
  std::string subcommand;  // agent|admin|auditor list|add|remove, audit verify
  std::string cert, subject, out, serial;
  std::string file;  // audit verify --file
  std::string instance;  // audit verify --instance
  bool no_directory = false;  // audit verify --no-directory
  bool revoke = false;
  std::string config;
  std::string dir = "var/demo";
  uint16_t port = 8443;
  bool help = false;
};

int usage_error(const std::string& message) {
  std::fprintf(stderr, "ca-server: %s\n\n%s", message.c_str(), kUsage);
  return 2;
}

bool parse_args(int argc, char** argv, Args& a, std::string& error) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const char* name) -> const char* {
      if (i + 1 >= argc) {
        error = fmt::format("{} needs a value", name);
        return nullptr;
      }
      return argv[++i];
    };
    if (arg == "-h" || arg == "--help") a.help = true;
    else if (arg == "--version") a.command = "version";
    else if (arg == "--config") {
      const char* v = value("--config");
      if (!v) return false;
      a.config = v;
    } else if (arg == "--dir") {
      const char* v = value("--dir");
      if (!v) return false;
      a.dir = v;
    } else if (arg == "--port") {
      const char* v = value("--port");
      if (!v) return false;
      char* end = nullptr;
      long p = std::strtol(v, &end, 10);
      if (*end || p < 1 || p > 65535) {
        error = fmt::format("--port: '{}' is not a port number", v);
        return false;
      }
      a.port = static_cast<uint16_t>(p);
    } else if (arg == "--cert" || arg == "--subject" || arg == "--out" || arg == "--serial") {
      const char* v = value(arg.c_str());
      if (!v) return false;
      (arg == "--cert" ? a.cert : arg == "--subject" ? a.subject : arg == "--out" ? a.out : a.serial) = v;
    } else if (arg == "--file") {
      const char* v = value("--file");
      if (!v) return false;
      a.file = v;
    } else if (arg == "--instance") {
      const char* v = value("--instance");
      if (!v) return false;
      a.instance = v;
    } else if (arg == "--no-directory") {
      a.no_directory = true;
    } else if (arg == "--revoke") {
      a.revoke = true;
    } else if (!arg.empty() && arg[0] == '-') {
      error = fmt::format("unknown option '{}'", arg);
      return false;
    } else if (a.command.empty()) {
      a.command = arg;
    } else if ((a.command == "agent" || a.command == "admin" || a.command == "auditor" || a.command == "audit") &&
               a.subcommand.empty()) {
      a.subcommand = arg;
    } else {
      error = fmt::format("unexpected argument '{}'", arg);
      return false;
    }
  }
  return true;
}

ca::Result<ca::InstanceConfig> load_config(const Args& a) {
  if (a.config.empty()) return ca::fail(ca::Error::config("--config FILE is required"));
  CA_TRY(auto config, ca::load_instance_config(a.config));
  ca::log::Level level;
  if (ca::log::parse_level(config.log_level, level)) ca::log::set_level(level);
  return config;
}

int fail_with(const ca::Error& e) {
  ca::log::error("ca-server", "{}", e.message);
  return e.is(ca::ErrorCode::config) ? 2 : 1;
}

// `ca-server agent|admin|auditor list|add|remove`: the holders of one role.
int run_role_command(const Args& a, const ca::InstanceConfig& config, const ca::authority::Role& role) {
  const std::string& sub = a.subcommand;
  const std::string command(role.command);
  if (sub != "list" && sub != "add" && sub != "remove")
    return usage_error(sub.empty() ? command + ": say list, add or remove"
                                   : fmt::format("{}: unknown command '{}'", command, sub));
  if (sub == "add" && a.cert.empty() == (a.subject.empty() || a.out.empty()))
    return usage_error(command + " add: give either --cert PEM, or --subject DN and --out DIR");
  if (sub == "remove" && a.serial.empty()) return usage_error(command + " remove: --serial HEX is required");
  ca::log::set_level(ca::log::Level::warn);
  auto audit = ca::authority::open_instance_audit_log(config);
  if (!audit) return fail_with(audit.error().context("the audit log"));
  const std::string operator_name = fmt::format("ca-server {} {} (uid {})", command, sub, ::getuid());
  auto directory = ca::authority::open_local_directory(config);
  if (!directory) return fail_with(directory.error().context("the instance's directory"));
  int status = 0;
  {
    ca::store::GroupCommitOptions writes;
    writes.writers = 1;
    if (directory->started) writes = ca::authority::group_commit_options(config), writes.writers = 1;
    ca::store::LdapCaStore store(directory->endpoint, config.directory.suffix, 1, writes);
    ca::authority::AuditCheckpointPublisher audit_checkpoints(store, config.instance_id);
    ca::authority::AuditCheckpointAttachment audit_checkpoints_attached(**audit, audit_checkpoints);
    // The signature of what this command records, in the directory before it goes.
    struct SignBeforeLeaving {
      ca::authority::AuditLog& log;
      ca::authority::AuditCheckpointPublisher& publisher;
      ~SignBeforeLeaving() {
        log.sign_now();
        (void)publisher.drain(std::chrono::seconds(3));
      }
    } sign_before_leaving{**audit, audit_checkpoints};
    auto print = [](const ca::authority::AgentEntry& e) {
      std::printf("0x%s  %-8s  %s\n", e.serial_hex.c_str(), e.status.c_str(),
                  e.subject_dn.empty() ? "(no certificate record)" : e.subject_dn.c_str());
    };
    if (sub == "list") {
      auto agents = ca::authority::list_agents(store, role);
      if (!agents) status = fail_with(agents.error());
      else {
        for (const auto& e : *agents) print(e);
        if (agents->empty()) std::printf("no %ss\n", std::string(role.name).c_str());
      }
    } else if (sub == "add") {
      auto added = a.cert.empty() ? ca::authority::issue_agent_certificate(store, config, a.subject, a.out, role)
                                  : ca::authority::add_agent_certificate(store, config, a.cert, role);
      const std::string what = a.cert.empty() ? fmt::format("a new {} certificate for '{}'", role.name, a.subject) : "certificate " + a.cert;
      if (added) (*audit)->record(command + "_added", operator_name, what, fmt::format("{} 0x{} ('{}')", role.name, added->serial_hex, added->subject_dn));
      else (*audit)->record(command + "_add_failed", operator_name, what, added.error().message);
      if (!added) status = fail_with(added.error());
      else {
        std::printf("added %s: ", std::string(role.name).c_str());
        print(*added);
        if (!a.out.empty())
          std::printf("key and certificate: %s/%s-%s.key, %s/%s-%s.pem\n", a.out.c_str(), command.c_str(),
                      added->serial_hex.c_str(), a.out.c_str(), command.c_str(), added->serial_hex.c_str());
      }
    } else {
      auto removed = ca::authority::remove_agent(store, a.serial, a.revoke, role);
      const std::string what = command + " 0x" + a.serial + (a.revoke ? " (and revoke its certificate)" : "");
      if (removed) (*audit)->record(command + "_removed", operator_name, what, fmt::format("removed '{}'", removed->subject_dn));
      else (*audit)->record(command + "_remove_failed", operator_name, what, removed.error().message);
      if (!removed) status = fail_with(removed.error());
      else {
        std::printf("removed %s%s: ", std::string(role.name).c_str(), a.revoke ? " and revoked its certificate" : "");
        print(*removed);
      }
    }
  }
  if (directory->started && directory->started->embedded) directory->started->embedded->stop();
  return status;
}

// The audit trail of `instance` in the instance's directory (the running server's, or the
// embedded one started for the command).
ca::Result<ca::store::AuditTrail> read_audit_trail(const ca::InstanceConfig& config, const std::string& instance) {
  CA_TRY(auto directory, ca::authority::open_local_directory(config));
  ca::Result<ca::store::AuditTrail> trail = [&] {
    ca::store::GroupCommitOptions writes;
    writes.writers = 1;
    ca::store::LdapCaStore store(directory.endpoint, config.directory.suffix, 1, writes);
    return store.audit_trail(instance);
  }();
  if (directory.started && directory.started->embedded) directory.started->embedded->stop();
  return trail;
}

int run_audit_command(const Args& a, const ca::InstanceConfig& config) {
  if (a.subcommand != "verify")
    return usage_error(a.subcommand.empty() ? "audit: say verify" : fmt::format("audit: unknown command '{}'", a.subcommand));
  const std::string instance = a.instance.empty() ? config.instance_id : a.instance;
  if (instance != config.instance_id && a.file.empty())
    return usage_error(fmt::format("audit verify --instance {}: give that instance's log with --file PATH", instance));
  const std::filesystem::path file = a.file.empty() ? config.dir / "logs" / "audit.log" : std::filesystem::path(a.file);
  ca::log::set_level(ca::log::Level::warn);
  auto audit_cert = ca::crypto::load_certificate_file(config.cert_file("audit_signing"));
  if (!audit_cert) return fail_with(ca::Error::config(audit_cert.error().message));
  auto ca_cert = ca::crypto::load_certificate_file(config.cert_file("ca_signing"));
  if (!ca_cert) return fail_with(ca::Error::config(ca_cert.error().message));
  std::optional<ca::store::AuditTrail> trail;
  if (!a.no_directory) {
    auto read = read_audit_trail(config, instance);
    if (!read) {
      std::printf("result:     NOT VERIFIED: cannot read the audit checkpoints of '%s' from the directory (%s); "
                  "--no-directory checks the file alone\n",
                  instance.c_str(), read.error().message.c_str());
      return 1;
    }
    trail = std::move(*read);
  }
  auto checked = ca::authority::verify_audit_log(file, audit_cert->get(), ca_cert->get(),
                                                 trail ? ca::authority::checkpointed_seqs(*trail) : std::set<uint64_t>{});
  if (!checked) return fail_with(ca::Error::config(checked.error().message));
  const auto& v = *checked;
  const auto seq_text = [](uint64_t seq) { return static_cast<unsigned long long>(seq); };
  std::printf("audit log:  %s\n", file.c_str());
  std::printf("instance:   %s\n", instance.c_str());
  std::printf("signed by:  %s\n", ca::crypto::name_to_string(X509_get_subject_name(audit_cert->get())).c_str());
  if (v.records == 0) std::printf("records:    none%s\n", v.intact() ? "" : " checked");
  else std::printf("records:    %zu (seq %llu..%llu)%s\n", v.records, seq_text(v.first_seq), seq_text(v.last_seq),
                   v.intact() ? "" : " checked before the problem");
  std::printf("signatures: %zu verified\n", v.signatures);
  if (!v.intact()) {
    std::printf("result:     TAMPERED OR INVALID: %s\n", v.problem.c_str());
    return 1;
  }
  std::optional<ca::authority::AuditTrailComparison> comparison;
  if (!trail) {
    std::printf("directory:  NOT CHECKED (--no-directory): a log cut back to a signed point, emptied, or cut and "
                "continued cannot be seen from the file alone\n");
  } else {
    comparison = ca::authority::compare_audit_trail(v.last_seq, v.last_signed_seq, v.hashes, *trail);
    if (comparison->highest_checkpoint == 0)
      std::printf("directory:  no checkpoints of '%s' (nothing signed yet, or written by a version before them)\n",
                  instance.c_str());
    else
      std::printf("directory:  %zu checkpoint(s) matched, highest seq %llu\n", comparison->checkpoints_matched,
                  seq_text(comparison->highest_checkpoint));
    if (comparison->signed_beyond_checkpoints)
      std::printf("note:       the file is signed up to seq %llu, ahead of the directory's checkpoints (written "
                  "asynchronously; late while the directory is unreachable)\n",
                  seq_text(comparison->signed_beyond_checkpoints));
    for (const auto& f : comparison->findings) std::printf("cut:        %s\n", f.text.c_str());
  }
  for (const auto& c : v.cuts) std::printf("cut record: %s\n", c.c_str());
  if ((comparison && !comparison->matches()) || !v.cuts.empty()) {
    // A cut the instance recorded names its first missing record exactly: it wins over the
    // earliest possible one a continued cut shows.
    uint64_t first_missing = 0;
    bool recorded = false;
    if (comparison)
      for (const auto& f : comparison->findings) {
        const bool exact = f.kind == ca::authority::AuditTrailFinding::Kind::recorded_cut;
        if (exact && !recorded) first_missing = 0, recorded = true;
        if (exact == recorded && (!first_missing || f.first_missing_seq < first_missing)) first_missing = f.first_missing_seq;
      }
    if (first_missing) std::printf("result:     CUT: first missing seq %llu\n", seq_text(first_missing));
    else std::printf("result:     CUT: the log records a cut of itself (see the cut record)\n");
    return 1;
  }
  if (v.unsigned_tail > 0) {
    std::printf("result:     UNVERIFIED: %zu record(s) after the last signature (seq %llu..%llu) are not covered by a "
                "signature; a running server signs them within its signature interval\n",
                v.unsigned_tail, seq_text(v.last_seq - v.unsigned_tail + 1), seq_text(v.last_seq));
    return 1;
  }
  std::printf("result:     intact%s\n", trail ? "" : " (file only)");
  return 0;
}

int run_server(const ca::InstanceConfig& config) {
  // Signals are taken by one thread (sigwait) so every other thread can ignore them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // Declared first, gone last: the audit log outlives everything that records into it, the
  // metrics registry everything its gauges read.
  auto audit = ca::authority::open_instance_audit_log(config);
  if (!audit) return fail_with(audit.error().context("the audit log"));
  ca::metrics::Registry metrics;
  auto directory = ca::authority::open_instance_directory(config, true);
  if (!directory) return fail_with(directory.error());
  ca::store::LdapCaStore store(directory->endpoint, config.directory.suffix, config.directory.pool_size,
                               ca::authority::group_commit_options(config));
  // The audit log against its checkpoints in the directory before anything new is recorded, then
  // every signature goes to the directory too (asynchronously: never in the way of an operation).
  (void)ca::authority::check_audit_trail_at_start(**audit, store);
  ca::authority::AuditCheckpointPublisher audit_checkpoints(store, config.instance_id);
  ca::authority::AuditCheckpointAttachment audit_checkpoints_attached(**audit, audit_checkpoints);
  auto authority = ca::authority::CertificateAuthority::open(config, store);
  if (!authority) return fail_with(authority.error());

  auto& ca_authority = **authority;
  ca_authority.set_audit_log(audit->get());
  ca::authority::CrlOptions crl_options;
  crl_options.update_interval = std::chrono::seconds(config.crl.update_interval_seconds);
  crl_options.validity = std::chrono::seconds(config.crl.validity_seconds);
  crl_options.debounce = std::chrono::milliseconds(config.crl.debounce_ms);
  crl_options.generate = config.crl.generate;
  crl_options.poll_interval = std::chrono::milliseconds(config.crl.poll_ms);
  crl_options.activation_delay = std::chrono::milliseconds(config.crl.activation_delay_ms);
  crl_options.partitions = static_cast<std::size_t>(config.crl.partitions);
  crl_options.full_after_min_changes = static_cast<std::size_t>(config.crl.full_after_changes);
  crl_options.full_after_fraction = config.crl.full_after_percent / 100.0;
  crl_options.base_url = config.public_base_url();
  crl_options.revocations_fed = true;
  {
    // Certificates already name their partition's CRL: the count cannot change under them.
    auto stored = store.load_crl_numbers("MasterCRL");
    const uint64_t configured = config.crl.partitions > 1 ? static_cast<uint64_t>(config.crl.partitions) : 0;
    if (stored && *stored && (*stored)->partition_count != 0 && (*stored)->partition_count != configured)
      return fail_with(ca::Error::config(fmt::format(
          "crl.partitions is {} but this CA publishes {} CRL partitions: certificates already name their partition's "
          "CRL, so the count cannot change",
          config.crl.partitions, (*stored)->partition_count)));
  }
  ca::authority::CrlPublisher crls(store, ca_authority.issuer(), crl_options);
  ca::authority::ElectionOptions election_options;
  election_options.lease = std::chrono::seconds(config.crl.lease_seconds);
  election_options.eligible = config.crl.generate;
  election_options.replica_id = config.ranges.replica_id;
  ca::authority::CrlMasterElection election(store, config.instance_id, election_options);
  crls.set_master_epoch([&election]() -> std::optional<uint64_t> {
    const uint64_t epoch = election.epoch();  // minted epochs are never 0
    return epoch ? std::optional<uint64_t>(epoch) : std::nullopt;
  });
  crls.set_number_observer([&election](uint64_t number) { election.observe_crl_number(number); });
  election.on_change([&crls](bool) { crls.poke(); });
  // The revoked records, followed in the order this directory applies their changes (also those
  // replication delivers late, after a partition heals): each refresh phase rebuilds the index.
  ca::store::DirectoryWatch revocation_watch(directory->endpoint, store.layout().certificates(),
                                             ca::store::SearchScope::one, ca::store::LdapCaStore::revoked_filter(), [] {});
  revocation_watch.set_entry_handler(
      ca::store::LdapCaStore::revocation_attributes(),
      [&crls](ca::store::DirectoryWatch::Event event, const ca::store::LdapEntry* entry) {
        using Event = ca::store::DirectoryWatch::Event;
        switch (event) {
          case Event::refresh_begin: crls.feed_reload_begin(); break;
          case Event::refresh_entry:
            if (auto change = ca::store::LdapCaStore::revocation_change_from(*entry)) crls.feed_reload_entry(*change);
            break;
          case Event::refresh_end: crls.feed_reload_end(); break;
          case Event::changed:
            if (auto change = ca::store::LdapCaStore::revocation_change_from(*entry)) crls.revoked(*change);
            break;
        }
      });
  if (config.crl.generate) revocation_watch.start();
  election.start();
  if (auto st = crls.start(); !st) return fail_with(st.error().context("CRL publisher"));
  // A new CRL stored by the CRL master (here or on another instance, by replication) is pushed to
  // this one by the directory instead of waiting for the next poll: the issuing point entry and
  // the entries of its CRLs.
  ca::store::DirectoryWatch crl_watch(directory->endpoint, store.layout().crl_dn("MasterCRL"), ca::store::SearchScope::subtree,
                                      "(objectClass=*)", [&crls] { crls.stored_crl_changed(); });
  crl_watch.start();
  auto ocsp_signer = ca::crypto::Issuer::open(config.cert_file("ocsp_signing"), config.key_uri("ocsp_signing"));
  if (!ocsp_signer) return fail_with(ocsp_signer.error());
  ca::authority::OcspResponder ocsp(store, ca_authority.ca_certificate(), *ocsp_signer);
  ca::authority::RevocationService revocation(store, &crls);
  revocation.set_audit_log(audit->get());

  auto router = std::make_shared<ca::http::Router>();
  // Tokens spent once in the whole cluster (Idempotency-Keys, enrollment codes, key retrievals):
  // each in its home directory, refused while that home cannot be reached.
  if (auto st = ca::store::add_missing_containers(directory->endpoint, config.directory.suffix); !st)
    ca::log::warn("ca-server", "cannot add the claim containers to this directory yet: {}", st.error().message);
  ca::authority::SingleUseClaims single_use_claims(config, store, directory->endpoint);
  ca_authority.set_single_use_claims(&single_use_claims);
  ca::authority::IdempotencyOptions idempotency_options;
  idempotency_options.pending_timeout = std::chrono::seconds(config.server.request_timeout_ms / 1000 + 1);
  ca::authority::IdempotencyKeys idempotency_keys(config, single_use_claims, idempotency_options);
  ca::http::register_ca_endpoints(*router, ca_authority, &idempotency_keys);
  ca::http::register_agent_endpoints(*router, ca_authority.agents(), revocation);
  ca::http::register_crl_endpoints(*router, crls);
  // Half the request deadline: OCSP clients wait less than API clients, and tryLater tells them
  // to retry (another instance behind the balancer may answer) instead of failing closed.
  ca::http::register_ocsp_endpoints(*router, ocsp, std::chrono::milliseconds(config.server.request_timeout_ms / 2));
  auto key_archive = ca::authority::KeyArchive::open(config, store, ca_authority.ca_certificate(), **audit);
  if (!key_archive) return fail_with(key_archive.error());
  ca_authority.set_key_archive(key_archive->get());
  (*key_archive)->set_single_use_claims(&single_use_claims);
  ca::http::register_kra_endpoints(*router, ca_authority, **key_archive);
  ca::http::register_dogtag_endpoints(*router, ca_authority);
  ca::http::register_est_endpoints(*router, ca_authority, config.ca.est_profile);
  ca::authority::InstanceAuthenticator instances(store, ca_authority.ca_certificate());
  std::optional<ca::store::LdapEndpoint> config_admin;
  if (directory->embedded) config_admin = directory->embedded->config_endpoint();
  ca::authority::CloneRegistry clones(config, store, ca_authority, directory->endpoint, config_admin);
  instances.set_audit_log(audit->get());
  clones.set_audit_log(audit->get());
  ca::http::register_admin_endpoints(*router, instances, ca_authority.administrators(), clones);
  ca::http::register_audit_endpoints(*router, ca_authority.auditors(), **audit);
  // The replication mesh: tell the others where this directory listens, then follow the registry.
  if (auto st = clones.join_directory_peers(); !st)
    ca::log::warn("ca-server", "cannot make this directory a replication peer with its certificate: {}", st.error().message);
  if (directory->embedded && !directory->embedded->tcp_url().empty()) {
    if (auto st = clones.advertise_directory_url(directory->embedded->tcp_url()); !st)
      ca::log::warn("ca-server", "cannot record this directory's URL for the replication mesh: {}", st.error().message);
  }

  // Readiness (/readyz): what a balancer needs to know before it sends a request here.
  // The peers' directories are read on a thread of their own (a hung peer never delays /readyz).
  ca::authority::PeerCsnMonitor peers(config, store, {});
  constexpr auto kPeerSampleFresh = std::chrono::seconds(3);
  std::vector<ca::authority::ReadinessMonitor::Check> checks;
  checks.push_back({"directory_read", [&]() -> ca::Status {
                      auto r = store.load_replica(config.ranges.replica_id);
                      if (!r) return ca::fail(r.error());
                      return ca::ok();
                    }});
  checks.push_back({"directory_write", [&] { return store.touch_heartbeat(config.ranges.replica_id); }});
  checks.push_back({"signing_key", [&]() -> ca::Status {
                      static constexpr unsigned char kProbe[] = "readiness";
                      if (auto signature = ca_authority.issuer().sign(kProbe); !signature)
                        return ca::fail(signature.error().context("the CA signing key does not sign"));
                      return ca::ok();
                    }});
  checks.push_back({"serial_range", [&]() -> ca::Status {
                      if (config.ca.serial_generator == ca::SerialGenerator::random) return ca::ok();
                      auto serials = ca_authority.counters().serials;
                      if ((serials.current && serials.next <= serials.current->end) || serials.standby) return ca::ok();
                      return ca::fail(ca::Error::unavailable("no serial numbers left in this instance's ranges"));
                    }});
  // The CRL served here must not lag the newest one stored (by the CRL master) for longer than a
  // push takes: relying parties behind the balancer would see CRL numbers go backwards.
  ca::authority::CrlConsistency crl_consistency(
      {.behind_bound = std::chrono::milliseconds(std::max(2 * config.crl.poll_ms, 3000) + config.crl.activation_delay_ms),
       .advisory_window = std::chrono::seconds(60)});
  checks.push_back({"crl", [&]() -> ca::Status {
                      auto latest = crls.latest();
                      if (!latest.full) return ca::fail(ca::Error::unavailable("no CRL here yet"));
                      if (latest.full->next_update <= std::chrono::system_clock::now())
                        return ca::fail(ca::Error::unavailable(fmt::format(
                            "the newest CRL here (number {}) has expired", latest.full->number)));
                      CA_TRY(auto stored, store.load_crl_numbers("MasterCRL"));
                      const uint64_t served = std::max(latest.full->number, latest.delta ? latest.delta->number : 0);
                      // The newest CRL here or in any peer's directory (a directory that missed
                      // it, e.g. after a freeze, would otherwise not know).
                      const uint64_t newest = std::max(
                          stored ? std::max(stored->crl_number, stored->delta_number) : 0,
                          ca::authority::newest_peer_crl(peers.samples(), std::chrono::steady_clock::now(),
                                                         std::chrono::system_clock::now(), kPeerSampleFresh));
                      return crl_consistency.judge_served(served, newest, std::chrono::steady_clock::now());
                    }});
  checks.push_back({"crl_epochs",
                    [&] {
                      return crl_consistency.judge_epochs(election.epoch_regressions(), crls.older_crl_stored_at(),
                                                          std::chrono::steady_clock::now());
                    },
                    true});
  ca::authority::ReplicationLagJudge replication_lag(std::chrono::milliseconds(config.directory.max_lag_ms),
                                                     kPeerSampleFresh);
  checks.push_back({"replication", [&]() -> ca::Status {
                      CA_TRY(auto conn, store.pool().acquire());
                      CA_TRY(auto csns, ca::store::context_csns(*conn, config.directory.suffix));
                      std::map<int, std::chrono::system_clock::time_point> local;
                      for (const auto& [sid, csn] : csns)
                        if (auto t = ca::authority::csn_time(csn)) local[sid] = *t;
                      return replication_lag.judge(local, peers.samples(), std::chrono::steady_clock::now());
                    }});
  ca::authority::ReadinessMonitor readiness(std::move(checks), {});
  ca::http::register_health_endpoints(*router, readiness);

  // Observability (docs/observability.md): /metrics, the access log.
  ca::authority::ContextCsnMonitor context_csns(
      [&store, &config]() -> ca::Result<std::map<int, std::string>> {
        CA_TRY(auto conn, store.pool().acquire());
        return ca::store::context_csns(*conn, config.directory.suffix);
      },
      std::chrono::seconds(5));
  ca::authority::register_instance_metrics(metrics, {.authority = &ca_authority, .crls = &crls, .election = &election,
                                                     .readiness = &readiness, .context_csns = &context_csns,
                                                     .writer = &store.writer(), .crl_consistency = &crl_consistency});
  ca::http::HttpMetrics http_metrics(metrics);
  ca::http::register_metrics_endpoint(*router, metrics);
  auto access_log = ca::http::AccessLog::open(config.dir / "logs" / "access.log");
  if (!access_log) return fail_with(access_log.error());
  ca::http::ServerOptions options;
  options.listeners.push_back({config.server.address, config.server.port, true, config.server.proxy_protocol,
                               config.server.proxy_protocol_trusted});
  if (config.server.http_port)
    options.listeners.push_back({config.server.address, config.server.http_port, false,
                                 config.server.http_proxy_protocol, config.server.proxy_protocol_trusted});
  options.cert_chain_file = config.cert_file("sslserver");
  options.key_file = config.key_file("sslserver");
  options.client_ca_file = config.cert_file("ca_signing");
  options.io_threads = config.server.io_threads;
  options.worker_threads = config.server.worker_threads;
  options.body_limit = config.server.body_limit;
  options.idle_timeout = std::chrono::seconds(config.server.idle_timeout_seconds);
  options.max_connections = config.server.max_connections;
  options.max_queued_requests = config.server.max_queued_requests;
  options.max_connections_per_client = config.server.max_connections_per_client;
  options.client_requests_per_second = config.server.client_requests_per_second;
  options.client_request_burst = config.server.client_request_burst;
  options.handshake_timeout = std::chrono::seconds(config.server.handshake_timeout_seconds);
  options.request_timeout = std::chrono::milliseconds(config.server.request_timeout_ms);
  options.shutdown_grace = std::chrono::milliseconds(config.server.shutdown_grace_ms);
  options.observers.push_back([&http_metrics](const ca::http::CompletedRequest& r) { http_metrics.observe(r); });
  options.observers.push_back([log = access_log->get()](const ca::http::CompletedRequest& r) { log->write(r); });
  auto server = ca::http::HttpServer::create(options, router);
  if (!server) return fail_with(server.error());
  metrics.counter_callback(
      "ca_http_refused_total",
      "Connections and requests the transport refused before routing, by reason (docs/observability.md)",
      {"reason"}, [http = server->get()] {
        const auto r = http->refusals();
        return std::vector<ca::metrics::GaugeSample>{
            {{"max_connections"}, static_cast<double>(r.over_max_connections)},
            {{"max_connections_per_client"}, static_cast<double>(r.over_client_connections)},
            {{"bad_proxy_header"}, static_cast<double>(r.bad_proxy_header)},
            {{"rate_limited"}, static_cast<double>(r.rate_limited)},
            {{"bad_framing"}, static_cast<double>(r.bad_framing)}};
      });

  {
    std::ofstream pid(config.dir / "ca-server.pid", std::ios::trunc);
    pid << ::getpid() << "\n";
  }
  std::thread signal_waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    ca::log::info("ca-server", "received {}, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    readiness.set_draining();  // /readyz answers 503 from now on
    (*server)->stop();
  });
  ca::log::info("ca-server", "instance '{}' serving https://{}:{}/ (replica {})", config.instance_id,
                config.server.address, (*server)->bound_port(0), config.ranges.replica_id);
  if (config.server.http_port)
    ca::log::info("ca-server", "CRLs and OCSP also on http://{}:{}/", config.server.address, (*server)->bound_port(1));
  // Profiles live in the directory: one stored (or changed) on another instance reaches this one.
  // Requests this instance received and an agent approved elsewhere are issued here.
  std::mutex refresher_mutex;
  std::condition_variable refresher_wake;
  bool refresher_stop = false;
  // Background upkeep, each on its own cadence: approved requests (ca.approval_poll_ms), the
  // replication mesh (5 s), the directories that are homes of single-use claims (2 s), profiles
  // (30 s), expired claims (10 min).
  std::thread profile_refresher([&] {
    using steady = std::chrono::steady_clock;
    const auto approval_poll = std::chrono::milliseconds(config.ca.approval_poll_ms);
    auto next_approvals = steady::now() + approval_poll;
    auto next_profile_reload = steady::now() + std::chrono::seconds(30);
    auto next_mesh_check = steady::now();
    auto next_claim_sweep = steady::now() + std::chrono::minutes(1);
    auto next_directories_read = steady::now();
    std::unique_lock lock(refresher_mutex);
    for (;;) {
      const auto wake = std::min({next_approvals, next_profile_reload, next_mesh_check, next_directories_read,
                                  next_claim_sweep});
      if (refresher_wake.wait_until(lock, wake, [&] { return refresher_stop; })) break;
      lock.unlock();
      if (steady::now() >= next_approvals) {
        next_approvals = steady::now() + approval_poll;
        if (auto issued = ca_authority.issue_approved_requests(); !issued)
          ca::log::warn("ca-server", "issuing approved requests failed: {}", issued.error().message);
      }
      if (steady::now() >= next_mesh_check) {
        next_mesh_check = steady::now() + std::chrono::seconds(5);
        if (auto changed = clones.reconcile_mesh(); !changed)
          ca::log::warn("ca-server", "checking the replication mesh failed: {}", changed.error().message);

      }
      if (steady::now() >= next_directories_read) {
        // Every instance must pick the same home for a token: keep the registry fresh.
        next_directories_read = steady::now() + std::chrono::seconds(2);
        if (auto st = single_use_claims.refresh_directories(); !st)
          ca::log::warn("ca-server", "re-reading the homes of single-use claims failed: {}", st.error().message);
        single_use_claims.settle_abandoned();
      }
      if (steady::now() >= next_claim_sweep) {
        next_claim_sweep = steady::now() + std::chrono::minutes(10);
        if (auto swept = single_use_claims.sweep_expired(); !swept)
          ca::log::warn("ca-server", "removing expired single-use claims failed: {}", swept.error().message);
      }
      if (steady::now() >= next_profile_reload) {
        next_profile_reload = steady::now() + std::chrono::seconds(30);
        if (auto st = ca_authority.reload_profiles(); !st)
          ca::log::warn("ca-server", "re-reading the profiles failed: {}", st.error().message);
      }
      lock.lock();
    }
  });
  peers.start();
  readiness.start();
  context_csns.start();
  (*server)->run();
  // run() returned: either a signal arrived or the server stopped on its own. Nothing new is
  // accepted, but record units may still wait in the group-commit writer (a slow directory); their
  // callbacks call into the authority and answer through the server (a post to its io_context,
  // harmless while it exists), and each batch reads the authority's counters. So: stop what
  // submits work, drain the writer while the server and the authority are alive, then destroy
  // the server (joining its workers), then the authority.
  {
    std::lock_guard lock(refresher_mutex);
    refresher_stop = true;
  }
  refresher_wake.notify_all();
  profile_refresher.join();
  pthread_kill(signal_waiter.native_handle(), SIGTERM);
  signal_waiter.join();
  readiness.stop();
  peers.stop();
  crl_watch.stop();
  context_csns.stop();
  crls.stop();
  election.stop();
  store.writer().stop();  // every queued unit is written (or fails) and its callback has run
  (*audit)->flush();      // answers waiting for their audit record go out while the server exists
  idempotency_keys.drain();  // then the answers handed over to the Idempotency-Key finishers
  single_use_claims.drain();  // and the enrollment codes given back after failed enrollments
  server->reset();
  authority->reset();
  // The last signature, written to the directory before it stops (or late, if it cannot take it).
  (*audit)->sign_now();
  if (!audit_checkpoints.drain(std::chrono::seconds(3)))
    ca::log::warn("ca-server", "the last audit checkpoint is not in the directory: the audit log is ahead of it");
  auto stats = store.writer().stats();
  ca::log::info("ca-server", "stopped; {} record unit(s) committed in {} batch(es)", stats.units,
                stats.batches);
  std::error_code ec;
  std::filesystem::remove(config.dir / "ca-server.pid", ec);
  if (directory->embedded) directory->embedded->stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // A peer that closed its socket (slapd stopping, a client going away) must be an error value,
  // not a signal that kills the process.
  std::signal(SIGPIPE, SIG_IGN);
  Args a;
  std::string error;
  if (!parse_args(argc, argv, a, error)) return usage_error(error);
  if (a.help || a.command.empty()) {
    std::fputs(kUsage, a.help ? stdout : stderr);
    return a.help ? 0 : 2;
  }
  if (a.command == "version") {
    std::puts("ca-server 0.1.0");
    return 0;
  }
  if (a.command == "sample-config") {
    std::fputs(ca::authority::sample_instance_yaml(a.dir, a.port).c_str(), stdout);
    return 0;
  }
  if (a.command != "init" && a.command != "run" && a.command != "check-config" && a.command != "agent" &&
      a.command != "admin" && a.command != "auditor" &&
      a.command != "audit")
    return usage_error(fmt::format("unknown command '{}'", a.command));
  auto config = load_config(a);
  if (!config) return fail_with(config.error());
  if (a.command == "check-config") {
    std::printf("%s: valid\n", a.config.c_str());
    return 0;
  }
  if (a.command == "agent") return run_role_command(a, *config, ca::authority::kAgentRole);
  if (a.command == "admin") return run_role_command(a, *config, ca::authority::kAdministratorRole);
  if (a.command == "auditor") return run_role_command(a, *config, ca::authority::kAuditorRole);
  if (a.command == "audit") return run_audit_command(a, *config);
  if (a.command == "init") {
    auto st = ca::authority::initialize_instance(*config);
    return st ? 0 : fail_with(st.error());
  }
  return run_server(*config);
}
