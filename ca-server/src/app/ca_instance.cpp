#include "app/ca_instance.hpp"

#include <algorithm>
#include <fstream>
#include <mutex>
#include <optional>

#include <unistd.h>

#include <fmt/format.h>

#include "authority/audit/audit_checkpoints.hpp"
#include "authority/audit/audit_log.hpp"
#include "authority/cluster/context_csn_monitor.hpp"
#include "authority/cluster/replication_lag.hpp"
#include "authority/cluster/single_use_claims.hpp"
#include "authority/instance/clone_registry.hpp"
#include "authority/instance/instance_metrics.hpp"
#include "authority/instance/instance_setup.hpp"
#include "authority/instance/readiness.hpp"
#include "authority/issuance/certificate_authority.hpp"
#include "authority/issuance/idempotency.hpp"
#include "authority/revocation/crl_consistency.hpp"
#include "authority/revocation/crl_master.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/scheduler.hpp"
#include "crypto/issuer.hpp"
#include "crypto/pem.hpp"
#include "http/access_log.hpp"
#include "http/admin_endpoints.hpp"
#include "http/audit_endpoints.hpp"
#include "http/ca_endpoints.hpp"
#include "http/dogtag_endpoints.hpp"
#include "http/est_endpoints.hpp"
#include "http/health_endpoints.hpp"
#include "http/kra_endpoints.hpp"
#include "http/metrics_endpoints.hpp"
#include "http/revocation_endpoints.hpp"
#include "http/server.hpp"
#include "store/ldap/base_dit.hpp"
#include "store/ldap/directory_watch.hpp"
#include "store/ldap/ldap_ca_store.hpp"
#include "store/ldap/ldap_claim_store.hpp"
#include "store/ldap/ldap_peer_directory.hpp"
#include "store/ldap/replication.hpp"

namespace ca::app {

namespace {
constexpr std::string_view kLog = "ca-server";
// How old a peer's contextCSN sample may be and still count (readiness, replication lag).
constexpr auto kPeerSampleFresh = std::chrono::seconds(3);
}  // namespace

// Everything an instance is made of, in the order it is built; members are destroyed in reverse
// (the audit log outlives everything that records into it, the metrics registry everything its
// gauges read).
struct CaInstance::Parts {
  InstanceConfig config;
  std::unique_ptr<authority::AuditLog> audit;
  metrics::Registry metric_registry;
  std::optional<authority::InstanceDirectory> directory;
  std::unique_ptr<store::LdapCaStore> ca_store;
  std::unique_ptr<authority::AuditCheckpointPublisher> audit_checkpoints;
  std::unique_ptr<authority::AuditCheckpointAttachment> audit_checkpoints_attached;
  std::unique_ptr<authority::CertificateAuthority> ca_authority;
  std::unique_ptr<authority::CrlPublisher> crls;
  std::unique_ptr<authority::CrlMasterElection> election;
  std::unique_ptr<store::DirectoryWatch> revocation_watch;
  std::unique_ptr<store::DirectoryWatch> crl_watch;
  std::optional<crypto::Issuer> ocsp_signer;
  std::unique_ptr<authority::OcspResponder> ocsp;
  std::unique_ptr<authority::RevocationService> revocation;
  std::shared_ptr<http::Router> router = std::make_shared<http::Router>();
  std::unique_ptr<authority::SingleUseClaims> claims;
  std::unique_ptr<authority::IdempotencyKeys> idempotency_keys;
  std::unique_ptr<authority::KeyArchive> key_archive;
  std::unique_ptr<authority::InstanceAuthenticator> instances;
  std::unique_ptr<authority::CloneRegistry> clones;
  std::unique_ptr<authority::PeerCsnMonitor> peers;
  std::unique_ptr<authority::CrlConsistency> crl_consistency;
  std::unique_ptr<authority::ReplicationLagJudge> replication_lag;
  std::unique_ptr<authority::ReadinessMonitor> readiness;
  std::unique_ptr<authority::ContextCsnMonitor> context_csns;
  std::unique_ptr<http::HttpMetrics> http_metrics;
  std::unique_ptr<http::AccessLog> access_log;
  std::unique_ptr<http::HttpServer> server;
  std::unique_ptr<Scheduler> upkeep;

  std::mutex lifecycle;  // stop() against the shutdown in run()
  bool shut_down = false;

  explicit Parts(const InstanceConfig& c) : config(c) {}

  Status open_directory_and_audit();
  Status open_revocation();
  void follow_revocations();
  Status open_services();
  void join_mesh();
  std::vector<authority::ReadinessMonitor::Check> readiness_checks();
  authority::ReadinessMonitor::Check crl_check();
  void open_observability();
  Status open_server();
  void schedule_upkeep();
  void shutdown();
};

Status CaInstance::Parts::open_directory_and_audit() {
  auto opened_audit = authority::open_instance_audit_log(config);
  if (!opened_audit) return fail(opened_audit.error().context("the audit log"));
  audit = std::move(*opened_audit);
  CA_TRY(auto opened, authority::open_instance_directory(config, true));
  directory = std::move(opened);
  ca_store = std::make_unique<store::LdapCaStore>(directory->endpoint, config.directory.suffix,
                                                  config.directory.pool_size, authority::group_commit_options(config));
  // The audit log against its checkpoints in the directory before anything new is recorded, then
  // every signature goes to the directory too (asynchronously: never in the way of an operation).
  (void)authority::check_audit_trail_at_start(*audit, *ca_store);
  audit_checkpoints = std::make_unique<authority::AuditCheckpointPublisher>(*ca_store, config.instance_id);
  audit_checkpoints_attached = std::make_unique<authority::AuditCheckpointAttachment>(*audit, *audit_checkpoints);
  CA_TRY(ca_authority, authority::CertificateAuthority::open(config, *ca_store));
  ca_authority->set_audit_log(audit.get());
  return ok();
}

namespace {
authority::CrlOptions crl_options(const InstanceConfig& config) {
  authority::CrlOptions o;
  o.update_interval = std::chrono::seconds(config.crl.update_interval_seconds);
  o.validity = std::chrono::seconds(config.crl.validity_seconds);
  o.debounce = std::chrono::milliseconds(config.crl.debounce_ms);
  o.generate = config.crl.generate;
  o.poll_interval = std::chrono::milliseconds(config.crl.poll_ms);
  o.activation_delay = std::chrono::milliseconds(config.crl.activation_delay_ms);
  o.partitions = static_cast<std::size_t>(config.crl.partitions);
  o.full_after_min_changes = static_cast<std::size_t>(config.crl.full_after_changes);
  o.full_after_fraction = config.crl.full_after_percent / 100.0;
  o.base_url = config.public_base_url();
  o.revocations_fed = true;
  return o;
}

// Certificates already name their partition's CRL: the count cannot change under them.
Status check_partition_count(store::CaStore& store, const InstanceConfig& config) {
  auto stored = store.load_crl_numbers("MasterCRL");
  const uint64_t configured = config.crl.partitions > 1 ? static_cast<uint64_t>(config.crl.partitions) : 0;
  if (stored && *stored && (*stored)->partition_count != 0 && (*stored)->partition_count != configured)
    return fail(Error::config(fmt::format(
        "crl.partitions is {} but this CA publishes {} CRL partitions: certificates already name their partition's "
        "CRL, so the count cannot change",
        config.crl.partitions, (*stored)->partition_count)));
  return ok();
}
}  // namespace

Status CaInstance::Parts::open_revocation() {
  CA_CHECK(check_partition_count(*ca_store, config));
  crls = std::make_unique<authority::CrlPublisher>(*ca_store, ca_authority->issuer(), crl_options(config));
  authority::ElectionOptions election_options;
  election_options.lease = std::chrono::seconds(config.crl.lease_seconds);
  election_options.eligible = config.crl.generate;
  election_options.replica_id = config.ranges.replica_id;
  election = std::make_unique<authority::CrlMasterElection>(*ca_store, config.instance_id, election_options);
  crls->set_master_epoch([e = election.get()]() -> std::optional<uint64_t> {
    const uint64_t epoch = e->epoch();  // minted epochs are never 0
    return epoch ? std::optional<uint64_t>(epoch) : std::nullopt;
  });
  crls->set_number_observer([e = election.get()](uint64_t number) { e->observe_crl_number(number); });
  election->on_change([c = crls.get()](bool) { c->poke(); });
  follow_revocations();
  if (config.crl.generate) revocation_watch->start();
  election->start();
  if (auto st = crls->start(); !st) return fail(st.error().context("CRL publisher"));
  // A new CRL stored by the CRL master (here or on another instance, by replication) is pushed to
  // this one by the directory instead of waiting for the next poll: the issuing point entry and
  // the entries of its CRLs.
  crl_watch = std::make_unique<store::DirectoryWatch>(
      directory->endpoint, ca_store->layout().crl_dn("MasterCRL"), store::SearchScope::subtree,
      std::string(store::DirectoryWatch::kEveryEntry), [c = crls.get()] { c->stored_crl_changed(); });
  crl_watch->start();
  CA_TRY(ocsp_signer, crypto::Issuer::open(config.cert_file("ocsp_signing"), config.key_uri("ocsp_signing")));
  ocsp = std::make_unique<authority::OcspResponder>(*ca_store, ca_authority->ca_certificate(), *ocsp_signer);
  revocation = std::make_unique<authority::RevocationService>(*ca_store, crls.get());
  revocation->set_audit_log(audit.get());
  return ok();
}

// The revoked records, followed in the order this directory applies their changes (also those
// replication delivers late, after a partition heals): each refresh phase rebuilds the index.
void CaInstance::Parts::follow_revocations() {
  revocation_watch =
      std::make_unique<store::DirectoryWatch>(directory->endpoint, ca_store->layout().certificates(),
                                              store::SearchScope::one, store::LdapCaStore::revoked_filter(), [] {});
  revocation_watch->set_entry_handler(
      store::LdapCaStore::revocation_attributes(),
      [c = crls.get()](store::DirectoryWatch::Event event, const store::LdapEntry* entry) {
        using Event = store::DirectoryWatch::Event;
        switch (event) {
          case Event::refresh_begin:
            c->feed_reload_begin();
            break;
          case Event::refresh_entry:
            if (auto change = store::LdapCaStore::revocation_change_from(*entry)) c->feed_reload_entry(*change);
            break;
          case Event::refresh_end:
            c->feed_reload_end();
            break;
          case Event::changed:
            if (auto change = store::LdapCaStore::revocation_change_from(*entry)) c->revoked(*change);
            break;
        }
      });
}

Status CaInstance::Parts::open_services() {
  auto& ca = *ca_authority;
  // Tokens spent once in the whole cluster (Idempotency-Keys, enrollment codes, key retrievals):
  // each in its home directory, refused while that home cannot be reached.
  if (auto st = store::add_missing_containers(directory->endpoint, config.directory.suffix); !st)
    log::warn(kLog, "cannot add the claim containers to this directory yet: {}", st.error().message);
  const int claim_timeout_ms = authority::ClaimOptions{}.directory_timeout_ms;
  claims = std::make_unique<authority::SingleUseClaims>(
      config, *ca_store, store::open_local_claim_store(directory->endpoint, config.directory.suffix, claim_timeout_ms),
      [open = store::replication_claim_store_opener(config, claim_timeout_ms)](const authority::ClaimDirectory& d) {
        return open(d.url);
      });
  ca.set_single_use_claims(claims.get());
  authority::IdempotencyOptions idempotency_options;
  idempotency_options.pending_timeout = std::chrono::seconds(config.server.request_timeout_ms / 1000 + 1);
  idempotency_keys = std::make_unique<authority::IdempotencyKeys>(config, *claims, idempotency_options);
  http::register_ca_endpoints(*router, ca, idempotency_keys.get());
  http::register_agent_endpoints(*router, ca.agents(), *revocation);
  http::register_crl_endpoints(*router, *crls);
  // Half the request deadline: OCSP clients wait less than API clients, and tryLater tells them
  // to retry (another instance behind the balancer may answer) instead of failing closed.
  http::register_ocsp_endpoints(*router, *ocsp, std::chrono::milliseconds(config.server.request_timeout_ms / 2));
  CA_TRY(key_archive, authority::KeyArchive::open(config, *ca_store, ca.ca_certificate(), *audit));
  ca.set_key_archive(key_archive.get());
  key_archive->set_single_use_claims(claims.get());
  http::register_kra_endpoints(*router, ca, *key_archive);
  http::register_dogtag_endpoints(*router, ca);
  http::register_est_endpoints(*router, ca, config.ca.est_profile);
  instances = std::make_unique<authority::InstanceAuthenticator>(*ca_store, ca.ca_certificate());
  std::optional<store::LdapEndpoint> config_admin;
  if (directory->embedded) config_admin = directory->embedded->config_endpoint();
  clones = std::make_unique<authority::CloneRegistry>(config, *ca_store, ca, directory->endpoint, config_admin);
  instances->set_audit_log(audit.get());
  clones->set_audit_log(audit.get());
  http::register_admin_endpoints(*router, *instances, ca.administrators(), *clones);
  http::register_audit_endpoints(*router, ca.auditors(), *audit);
  join_mesh();
  return ok();
}

// The replication mesh: tell the others where this directory listens, then follow the registry.
void CaInstance::Parts::join_mesh() {
  if (auto st = clones->join_directory_peers(); !st)
    log::warn(kLog, "cannot make this directory a replication peer with its certificate: {}", st.error().message);
  if (directory->embedded && !directory->embedded->tcp_url().empty()) {
    if (auto st = clones->advertise_directory_url(directory->embedded->tcp_url()); !st)
      log::warn(kLog, "cannot record this directory's URL for the replication mesh: {}", st.error().message);
  }
}

// Readiness (/readyz): what a balancer needs to know before it sends a request here. The peers'
// directories are read on a thread of their own (a hung peer never delays /readyz).
std::vector<authority::ReadinessMonitor::Check> CaInstance::Parts::readiness_checks() {
  std::vector<authority::ReadinessMonitor::Check> checks;
  checks.push_back({"directory_read", [this]() -> Status {
                      auto r = ca_store->load_replica(config.ranges.replica_id);
                      if (!r) return fail(r.error());
                      return ok();
                    }});
  checks.push_back({"directory_write", [this] { return ca_store->touch_heartbeat(config.ranges.replica_id); }});
  checks.push_back({"signing_key", [this]() -> Status {
                      static constexpr unsigned char kProbe[] = "readiness";
                      if (auto signature = ca_authority->issuer().sign(kProbe); !signature)
                        return fail(signature.error().context("the CA signing key does not sign"));
                      return ok();
                    }});
  checks.push_back({"serial_range", [this]() -> Status {
                      if (config.ca.serial_generator == SerialGenerator::random) return ok();
                      auto serials = ca_authority->counters().serials;
                      if ((serials.current && serials.next <= serials.current->end) || serials.standby) return ok();
                      return fail(Error::unavailable("no serial numbers left in this instance's ranges"));
                    }});
  checks.push_back(crl_check());
  checks.push_back({"crl_epochs",
                    [this] {
                      return crl_consistency->judge_epochs(election->epoch_regressions(), crls->older_crl_stored_at(),
                                                           std::chrono::steady_clock::now());
                    },
                    true});
  checks.push_back({"replication", [this]() -> Status {
                      CA_TRY(auto conn, ca_store->pool().acquire());
                      CA_TRY(auto csns, store::context_csns(*conn, config.directory.suffix));
                      std::map<int, std::chrono::system_clock::time_point> local;
                      for (const auto& [sid, csn] : csns)
                        if (auto t = authority::csn_time(csn)) local[sid] = *t;
                      return replication_lag->judge(local, peers->samples(), std::chrono::steady_clock::now());
                    }});
  return checks;
}

// The CRL served here must not lag the newest one stored (by the CRL master) for longer than a
// push takes: relying parties behind the balancer would see CRL numbers go backwards.
authority::ReadinessMonitor::Check CaInstance::Parts::crl_check() {
  return {"crl", [this]() -> Status {
            auto latest = crls->latest();
            if (!latest.full) return fail(Error::unavailable("no CRL here yet"));
            if (latest.full->next_update <= std::chrono::system_clock::now())
              return fail(
                  Error::unavailable(fmt::format("the newest CRL here (number {}) has expired", latest.full->number)));
            CA_TRY(auto stored, ca_store->load_crl_numbers("MasterCRL"));
            const uint64_t served = std::max(latest.full->number, latest.delta ? latest.delta->number : 0);
            // The newest CRL here or in any peer's directory (a directory that missed it, e.g.
            // after a freeze, would otherwise not know).
            const uint64_t newest =
                std::max(stored ? std::max(stored->crl_number, stored->delta_number) : 0,
                         authority::newest_peer_crl(peers->samples(), std::chrono::steady_clock::now(),
                                                    std::chrono::system_clock::now(), kPeerSampleFresh));
            return crl_consistency->judge_served(served, newest, std::chrono::steady_clock::now());
          }};
}

// Observability (docs/observability.md): readiness, /metrics, the access log.
void CaInstance::Parts::open_observability() {
  const authority::PeerCsnMonitor::Options peer_options;
  peers = std::make_unique<authority::PeerCsnMonitor>(
      config, *ca_store, store::replication_peer_opener(config, peer_options.timeout_ms), peer_options);
  crl_consistency = std::make_unique<authority::CrlConsistency>(authority::CrlConsistency::Options{
      .behind_bound =
          std::chrono::milliseconds(std::max(2 * config.crl.poll_ms, 3000) + config.crl.activation_delay_ms),
      .advisory_window = std::chrono::seconds(60)});
  replication_lag = std::make_unique<authority::ReplicationLagJudge>(
      std::chrono::milliseconds(config.directory.max_lag_ms), kPeerSampleFresh);
  readiness = std::make_unique<authority::ReadinessMonitor>(readiness_checks(), authority::ReadinessMonitor::Options{});
  http::register_health_endpoints(*router, *readiness);
  context_csns = std::make_unique<authority::ContextCsnMonitor>(
      [this]() -> Result<std::map<int, std::string>> {
        CA_TRY(auto conn, ca_store->pool().acquire());
        return store::context_csns(*conn, config.directory.suffix);
      },
      std::chrono::seconds(5));
  authority::register_instance_metrics(metric_registry, {.authority = ca_authority.get(),
                                                         .crls = crls.get(),
                                                         .election = election.get(),
                                                         .readiness = readiness.get(),
                                                         .context_csns = context_csns.get(),
                                                         .writer = &ca_store->writer(),
                                                         .crl_consistency = crl_consistency.get()});
  http_metrics = std::make_unique<http::HttpMetrics>(metric_registry);
  http::register_metrics_endpoint(*router, metric_registry);
}

namespace {
http::ServerOptions server_options(const InstanceConfig& config) {
  const auto& s = config.server;
  http::ServerOptions o;
  o.listeners.push_back({s.address, s.port, true, s.proxy_protocol, s.proxy_protocol_trusted});
  if (s.http_port)
    o.listeners.push_back({s.address, s.http_port, false, s.http_proxy_protocol, s.proxy_protocol_trusted});
  o.cert_chain_file = config.cert_file("sslserver");
  o.key_file = config.key_file("sslserver");
  o.client_ca_file = config.cert_file("ca_signing");
  o.io_threads = s.io_threads;
  o.worker_threads = s.worker_threads;
  o.body_limit = s.body_limit;
  o.idle_timeout = std::chrono::seconds(s.idle_timeout_seconds);
  o.max_connections = s.max_connections;
  o.max_queued_requests = s.max_queued_requests;
  o.max_connections_per_client = s.max_connections_per_client;
  o.client_requests_per_second = s.client_requests_per_second;
  o.client_request_burst = s.client_request_burst;
  o.handshake_timeout = std::chrono::seconds(s.handshake_timeout_seconds);
  o.request_timeout = std::chrono::milliseconds(s.request_timeout_ms);
  o.shutdown_grace = std::chrono::milliseconds(s.shutdown_grace_ms);
  return o;
}
}  // namespace

Status CaInstance::Parts::open_server() {
  CA_TRY(access_log, http::AccessLog::open(config.dir / "logs" / "access.log"));
  auto options = server_options(config);
  options.observers.push_back([m = http_metrics.get()](const http::CompletedRequest& r) { m->observe(r); });
  options.observers.push_back([log = access_log.get()](const http::CompletedRequest& r) { log->write(r); });
  CA_TRY(server, http::HttpServer::create(options, router));
  metric_registry.counter_callback(
      "ca_http_refused_total",
      "Connections and requests the transport refused before routing, by reason (docs/observability.md)", {"reason"},
      [http = server.get()] {
        const auto r = http->refusals();
        return std::vector<metrics::GaugeSample>{
            {{"max_connections"}, static_cast<double>(r.over_max_connections)},
            {{"max_connections_per_client"}, static_cast<double>(r.over_client_connections)},
            {{"bad_proxy_header"}, static_cast<double>(r.bad_proxy_header)},
            {{"rate_limited"}, static_cast<double>(r.rate_limited)},
            {{"bad_framing"}, static_cast<double>(r.bad_framing)}};
      });
  return ok();
}

// Background upkeep, each job on its own cadence: approved requests (ca.approval_poll_ms; requests
// received here and approved by an agent elsewhere are issued here), the replication mesh (5 s),
// the directories that are homes of single-use claims (2 s: every instance must pick the same
// home for a token), expired claims (10 min), profiles (30 s: one stored or changed on another
// instance reaches this one).
void CaInstance::Parts::schedule_upkeep() {
  using std::chrono::milliseconds, std::chrono::seconds, std::chrono::minutes;
  upkeep = std::make_unique<Scheduler>("upkeep");
  const milliseconds approval_poll(config.ca.approval_poll_ms);
  auto& ca = *ca_authority;
  upkeep->add({"issue approved requests", approval_poll, approval_poll, [&ca] {
                 if (auto issued = ca.issue_approved_requests(); !issued)
                   log::warn(kLog, "issuing approved requests failed: {}", issued.error().message);
               }});
  upkeep->add({"replication mesh", seconds(5), milliseconds(0), [c = clones.get()] {
                 if (auto changed = c->reconcile_mesh(); !changed)
                   log::warn(kLog, "checking the replication mesh failed: {}", changed.error().message);
               }});
  upkeep->add({"homes of single-use claims", seconds(2), milliseconds(0), [c = claims.get()] {
                 if (auto st = c->refresh_directories(); !st)
                   log::warn(kLog, "re-reading the homes of single-use claims failed: {}", st.error().message);
                 c->settle_abandoned();
               }});
  upkeep->add({"expired single-use claims", minutes(10), minutes(1), [c = claims.get()] {
                 if (auto swept = c->sweep_expired(); !swept)
                   log::warn(kLog, "removing expired single-use claims failed: {}", swept.error().message);
               }});
  upkeep->add({"profiles", seconds(30), seconds(30), [&ca] {
                 if (auto st = ca.reload_profiles(); !st)
                   log::warn(kLog, "re-reading the profiles failed: {}", st.error().message);
               }});
}

// Nothing new is accepted any more, but record units may still wait in the group-commit writer (a
// slow directory); their callbacks call into the authority and answer through the server (a post
// to its io_context, harmless while it exists), and each batch reads the authority's counters.
// So: stop what submits work, drain the writer while the server and the authority are alive, then
// destroy the server (joining its workers), then the authority.
void CaInstance::Parts::shutdown() {
  {
    std::lock_guard lock(lifecycle);
    if (shut_down) return;
    shut_down = true;
  }
  upkeep->stop();
  readiness->stop();
  peers->stop();
  crl_watch->stop();
  context_csns->stop();
  crls->stop();
  election->stop();
  ca_store->writer().stop();  // every queued unit is written (or fails) and its callback has run
  audit->flush();             // answers waiting for their audit record go out while the server exists
  idempotency_keys->drain();  // then the answers handed over to the Idempotency-Key finishers
  claims->drain();            // and the enrollment codes given back after failed enrollments
  {
    std::lock_guard lock(lifecycle);
    server.reset();
  }
  ca_authority.reset();
  // The last signature, written to the directory before it stops (or late, if it cannot take it).
  audit->sign_now();
  if (!audit_checkpoints->drain(std::chrono::seconds(3)))
    log::warn(kLog, "the last audit checkpoint is not in the directory: the audit log is ahead of it");
  const auto stats = ca_store->writer().stats();
  log::info(kLog, "stopped; {} record unit(s) committed in {} batch(es)", stats.units, stats.batches);
  std::error_code ec;
  std::filesystem::remove(config.dir / "ca-server.pid", ec);
  if (directory->embedded) directory->embedded->stop();
}

Result<std::unique_ptr<CaInstance>> CaInstance::open(const InstanceConfig& config) {
  auto parts = std::make_unique<Parts>(config);
  CA_CHECK(parts->open_directory_and_audit());
  CA_CHECK(parts->open_revocation());
  CA_CHECK(parts->open_services());
  parts->open_observability();
  CA_CHECK(parts->open_server());
  parts->schedule_upkeep();
  return std::unique_ptr<CaInstance>(new CaInstance(std::move(parts)));
}

CaInstance::CaInstance(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}

CaInstance::~CaInstance() { parts_->shutdown(); }

void CaInstance::run() {
  auto& p = *parts_;
  {
    std::ofstream pid(p.config.dir / "ca-server.pid", std::ios::trunc);
    pid << ::getpid() << "\n";
  }
  log::info(kLog, "instance '{}' serving https://{}:{}/ (replica {})", p.config.instance_id, p.config.server.address,
            p.server->bound_port(0), p.config.ranges.replica_id);
  if (p.config.server.http_port)
    log::info(kLog, "CRLs and OCSP also on http://{}:{}/", p.config.server.address, p.server->bound_port(1));
  p.upkeep->start();
  p.peers->start();
  p.readiness->start();
  p.context_csns->start();
  p.server->run();
  p.shutdown();
}

void CaInstance::stop() {
  auto& p = *parts_;
  std::lock_guard lock(p.lifecycle);
  if (!p.server) return;
  p.readiness->set_draining();  // /readyz answers 503 from now on
  p.server->stop();
}

uint16_t CaInstance::bound_port(std::size_t index) const { return parts_->server->bound_port(index); }

const InstanceConfig& CaInstance::config() const { return parts_->config; }

}  // namespace ca::app
