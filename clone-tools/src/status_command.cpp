// ca-clone status and ca-clone remove: looking at and trimming the topology.
//
// status works in steps: load the configuration, check the instances (their HTTPS endpoints),
// find the directories it can read (this instance's and the providers of its agreements), look
// at each of them twice, judge (replication_health.hpp), and render a table or JSON.
#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <thread>
#include <tuple>

#include <fmt/format.h>
#include <openssl/evp.h>
#include <boost/json.hpp>

#include "api/admin_messages.hpp"
#include "api/instance_messages.hpp"
#include "authority/instance/instance_setup.hpp"
#include "commands.hpp"
#include "core/config.hpp"
#include "core/log.hpp"
#include "crl_role_report.hpp"
#include "crypto/pem.hpp"
#include "crypto/signing_key.hpp"
#include "master_client.hpp"
#include "replication_health.hpp"
#include "running_instance_store.hpp"
#include "store/ldap/directory_census.hpp"
#include "store/ldap/ldap_connection.hpp"
#include "store/ldap/replication.hpp"

namespace ca::clone_tools {

namespace {

namespace json = boost::json;

constexpr std::string_view kStatusUsage =
    R"(usage: ca-clone status --config INSTANCE.yaml [--interval SECONDS] [--max-lag SECONDS] [--json]

Shows the topology as the directory of the instance configured in INSTANCE.yaml (any instance: the
master or a clone; its ca-server must be running, or its directory reachable) sees it, and whether
the directories replicate. Every directory is looked at twice, --interval seconds apart:
  - every instance: replica ID, URL, reachable or not, serial/request ranges (current, standby,
    numbers left), retired or not, when its entry (in this directory) was last updated;
  - the CRL master: the instance that holds the role, its epoch, the pin and a pending handover, as
    this directory holds them (`ca-clone crl-master status` shows more);
  - every directory it can read (this instance's, and each one it consumes from per its agreements
    in cn=config): per provider (replica ID) the contextCSN it holds and how far that is behind the
    newest CSN of the same provider in any directory: a difference of two CSNs, so an idle provider
    is not behind; and its certificate records, compared record by record with the others';
  - problems: an instance or a directory that cannot be reached; an agreement whose provider cannot
    be reached; a directory that is not receiving a provider's changes (partition or broken
    agreement: it still lacks changes another directory held at the first look, and its CSN for
    that provider did not move); a directory more than --max-lag seconds behind a provider;
    certificate records other directories held at both looks and this one lacks; a directory that
    consumes from no other; a duplicate serial;
  - overlapping range claims (two instances took the same counter range: harmless, the replica ID
    in every serial keeps their numbers apart, but worth knowing).
Every running ca-server writes its heartbeat once a second, so a live provider always has changes
to replicate. Run it with the master's YAML to see every directory: a clone reads only its own
and the master's.

Options:
  --config FILE       the instance's YAML (instance.yaml of a clone, or the master's)
  --interval SECONDS  between the two looks (default 2; more than 0, at most 600)
  --max-lag SECONDS   further behind a provider than this is a problem (default 10)
  --json              machine-readable output
  -h, --help          show this help

Exit status: 0 healthy, 1 a problem was found (listed) or something could not be checked,
2 usage error.
)";

constexpr std::string_view kRemoveUsage =
    R"(usage: ca-clone remove --config INSTANCE.yaml (--replica-id N | --instance-id ID)
                        [--cert ADMIN.pem --key ADMIN.key]

Retires an instance: the instance named by --config drops its replication agreement with the
retired instance's directory and its replication account, marks its replica ID retired (never
handed out again) and revokes its subsystem, TLS and directory certificates. Stop the retired
instance's ca-server afterwards (its records stay in every directory).

Retiring needs an administrator (a caAdminCert certificate in the Administrators group): no
instance's own certificate may retire another instance.

Options:
  --config FILE       the instance YAML of the instance to call (its CA certificate and URL)
  --replica-id N      the replica ID to retire (see ca-clone status)
  --instance-id ID    or its instance ID
  --cert PEM          the administrator's certificate (default: certs/admin.pem of the instance
                      folder, which `ca-server init` writes on the first instance)
  --key KEY           its key (default: private/admin.key)
  -h, --help          show this help

Exit status: 0 retired, 1 failed, 2 usage error.
)";

constexpr std::string_view kThisDirectory = "this instance's directory";
// Other instances' directories: a frozen one costs this three times (LdapConnection::open tries
// three times), once: a directory that did not answer the first look is not asked again.
constexpr int kPeerTimeoutMs = 3000;

struct StatusOptions {
  std::string config_file;
  bool as_json = false;
  double interval_seconds = 2;
  double max_lag_seconds = 10;
};

// One line of the problem list: a finding of the judgement, or one made here.
struct Problem {
  std::string kind;
  std::string about;
  std::optional<int> replica_id;
  std::string message;
};

Problem problem_of(const Finding& f) {
  return {std::string(finding_kind_name(f.kind)), f.directory, f.replica_id, f.message};
}

std::string range_text(const std::optional<store::NumberRange>& r) {
  return r ? fmt::format("{}-{}", r->begin, r->end) : std::string("-");
}

// Step 1: the instances, as this directory lists them, each asked over HTTPS whether it answers.
struct InstancesView {
  std::size_t count = 0;
  json::array rows;
  std::vector<std::string> lines;
  std::vector<Problem> problems;
  std::map<int, std::string> labels;  // replica ID -> "replica 2 (clone1)"
  int other_active = 0;               // not retired, not this instance
};

// What an instance's /readyz says about its CRLs: serving a CRL below a peer's (the `crl` check), two
// epochs publishing or a lease epoch that went down (the advisory `crl_epochs` check).
std::vector<Problem> readiness_problems(MasterClient& client, const store::ReplicaRecord& r) {
  std::vector<Problem> out;
  auto answer = client.get_with_status("/readyz");
  if (!answer) return out;
  // Not ready is a 503 with the same body; an answer not shaped as a report shows no CRL problem.
  auto report = api::decode_message<api::ReadinessAnswer>(answer->second);
  if (!report) return out;
  for (const auto& c : report->checks) {
    if (c.ok) continue;
    const std::string& check = c.name;
    const std::string& text = c.detail;
    if (check != "crl" && check != "crl_epochs") continue;  // the others show in the instance's own /readyz
    out.push_back({check, r.url, r.replica_id,
                   fmt::format("instance {} (replica {}): {}: {}", r.instance_id, r.replica_id, check, text)});
  }
  return out;
}

// The instance a `ca-clone promote` took over from, if one was run: the registrar is named and is
// another instance, so the one that registered clones before it (the master, which has the
// lowest replica ID of the instances still listed; or an earlier registrar) stays listed, and
// unreachable, until someone retires it.
std::optional<int> replaced_by_promote(const std::vector<store::ReplicaRecord>& replicas,
                                       const std::optional<std::string>& registrar) {
  if (!registrar) return std::nullopt;
  std::optional<int> lowest;
  for (const auto& r : replicas)
    if (!r.retired && r.instance_id != *registrar && (!lowest || r.replica_id < *lowest)) lowest = r.replica_id;
  return lowest;
}

InstancesView check_instances(const std::vector<store::ReplicaRecord>& replicas, X509* ca_cert, int own_replica_id,
                              const std::optional<std::string>& registrar, const std::string& config_file) {
  InstancesView out;
  out.count = replicas.size();
  const auto replaced = replaced_by_promote(replicas, registrar);
  for (const auto& r : replicas) {
    out.labels[r.replica_id] = fmt::format("replica {} ({})", r.replica_id, r.instance_id);
    if (!r.retired && r.replica_id != own_replica_id) ++out.other_active;
    bool reachable = false;
    std::string why;
    if (!r.retired && ca_cert) {
      auto client = MasterClient::create(r.url, ca_cert, nullptr, nullptr);
      if (client) {
        auto info = (*client)->get("/ca/rest/info");
        reachable = static_cast<bool>(info);
        if (!info)
          why = info.error().message;
        else
          for (auto& p : readiness_problems(**client, r)) out.problems.push_back(std::move(p));
      } else {
        why = client.error().message;
      }
      if (!reachable) {
        std::string message =
            fmt::format("instance {} (replica {}) does not answer at {}: {}", r.instance_id, r.replica_id, r.url, why);
        if (replaced == r.replica_id)
          message += fmt::format(
              ". Instance {} was replaced by a promote ('{}' registers clones now): if it is lost for good, remove "
              "it with `ca-clone remove --config {} --instance-id {} --cert ADMIN.pem --key ADMIN.key` (an "
              "administrator; until then it is listed here)",
              r.instance_id, *registrar, config_file, r.instance_id);
        out.problems.push_back({"instance_unreachable", r.url, r.replica_id, std::move(message)});
      }
    }
    auto left = [](const std::optional<store::NumberRange>& cur, const std::optional<store::NumberRange>& standby,
                   uint64_t next) -> uint64_t {
      uint64_t n = cur && next >= cur->begin && next <= cur->end ? cur->end - next + 1 : 0;
      if (standby) n += standby->end - standby->begin + 1;
      return n;
    };
    uint64_t serials_left = left(r.serial_current, r.serial_standby, r.serial_next);
    // The replica entry's age in this directory (the instance's clock against ours): for people.
    auto heartbeat =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now() - r.heartbeat).count();
    json::object o;
    o["replica_id"] = r.replica_id;
    o["instance_id"] = r.instance_id;
    o["url"] = r.url;
    o["retired"] = r.retired;
    o["reachable"] = reachable;
    if (!why.empty()) o["error"] = why;
    o["serial_current"] = range_text(r.serial_current);
    o["serial_standby"] = range_text(r.serial_standby);
    o["serials_left"] = serials_left;
    o["request_current"] = range_text(r.request_current);
    o["request_standby"] = range_text(r.request_standby);
    o["updated_seconds_ago"] = heartbeat;
    out.rows.push_back(o);
    out.lines.push_back(fmt::format(
        "  {:>3}  {:<12} {:<28} {:<11} serials {} (+{}) {} left   requests {} (+{})   entry updated {} s ago{}",
        r.replica_id, r.instance_id, r.url,
        r.retired   ? "retired"
        : reachable ? "reachable"
                    : "UNREACHABLE",
        range_text(r.serial_current), range_text(r.serial_standby), serials_left, range_text(r.request_current),
        range_text(r.request_standby), heartbeat, why.empty() ? "" : "  (" + why + ")"));
  }
  return out;
}

// Step 2: the directories the tool can read: this instance's, and the provider of each of its
// agreements (an embedded directory's cn=config is readable with the directory password).
struct DirectorySource {
  std::string name;               // kThisDirectory, or the agreement's provider URL
  std::optional<int> replica_id;  // whose directory: this instance's, or the agreement's rid
  store::LdapEndpoint endpoint;
};

struct Sources {
  std::vector<DirectorySource> directories;
  std::vector<Agreement> agreements;
  bool agreements_read = false;
  std::vector<std::string> unchecked;
};

Sources directory_sources(const InstanceConfig& c, const store::LdapEndpoint& own, const std::string& password) {
  Sources out;
  out.directories.push_back({std::string(kThisDirectory), c.ranges.replica_id, own});
  if (c.directory.mode != DirectoryMode::embedded)
    return out;  // an external directory's agreements are not ours to read
  auto peers = store::replication_peers(store::config_admin_endpoint(own.url, password, 5000));
  if (!peers) {
    out.unchecked.push_back(
        fmt::format("replication agreements ({}): {}", store::config_tree_name(), peers.error().message));
    return out;
  }
  out.agreements_read = true;
  // The peers are read as this instance's replication account (it reads the records and the
  // contextCSN, not the hashes); an agreement binds with the directory's certificate instead.
  const std::string account = store::replication_account_dn(c.directory.suffix, c.ranges.replica_id);
  auto account_password = read_secret_file(c.dir / "secrets" / "replication.pass");
  for (const auto& p : *peers) {
    out.agreements.push_back({std::string(kThisDirectory), p.replica_id, p.provider_url});
    if (!p.binds_with_certificate() && !p.bind_dn.empty()) {
      out.directories.push_back(
          {p.provider_url, p.replica_id,
           store::LdapEndpoint{p.provider_url, p.bind_dn, p.password, kPeerTimeoutMs,
                               p.tls_ca_file.empty() ? c.cert_file("ca_signing").string() : p.tls_ca_file}});
      continue;
    }
    if (!account_password) {
      out.unchecked.push_back(fmt::format("the directory of replica {} ({}): {}", p.replica_id, p.provider_url,
                                          account_password.error().message));
      continue;
    }
    // Over TLS, trusting this CA only (the peer's directory certificate is issued by it).
    out.directories.push_back(
        {p.provider_url, p.replica_id,
         store::LdapEndpoint{p.provider_url, account, *account_password, kPeerTimeoutMs,
                             p.tls_ca_file.empty() ? c.cert_file("ca_signing").string() : p.tls_ca_file}});
  }
  return out;
}

// Step 3: two looks at every directory. `records`: at the first look the serial numbers only
// (mapped to ""), at the second each serial's replica ID and a digest of its certificate (for
// the duplicate-serial check).
struct Reading {
  DirectoryLook look;
  std::map<std::string, std::string> records;
};

Reading read_directory(const DirectorySource& d, const std::string& suffix, bool with_contents) {
  Reading r;
  auto unreachable = [&](const Error& e) {
    r.look = DirectoryLook{false, e.message, {}};
    r.records.clear();
    return r;
  };
  auto conn = store::LdapConnection::open(d.endpoint);
  if (!conn) return unreachable(conn.error());
  auto csns = store::context_csns(**conn, suffix);
  if (!csns) return unreachable(csns.error());
  Status searched =
      store::each_certificate_record(**conn, suffix, with_contents, [&](const store::CertificateSighting& seen) {
        std::string content;
        if (with_contents) {
          unsigned char md[EVP_MAX_MD_SIZE];
          unsigned int len = 0;
          std::string digest = EVP_Digest(seen.der.data(), seen.der.size(), md, &len, EVP_sha256(), nullptr) == 1
                                   ? crypto::to_hex({md, std::min(len, 8u)})
                                   : std::string("?");
          content = seen.replica_id + "/" + digest;
        }
        r.records[seen.serial] = std::move(content);
      });
  if (!searched) return unreachable(searched.error());
  r.look = DirectoryLook{true, "", std::move(*csns)};
  return r;
}

struct Looks {
  std::vector<Reading> first;
  std::vector<Reading> second;
};

Looks look_twice(const std::vector<DirectorySource>& sources, const std::string& suffix, double interval_seconds) {
  Looks out;
  for (const auto& d : sources) out.first.push_back(read_directory(d, suffix, false));
  std::this_thread::sleep_for(std::chrono::duration<double>(interval_seconds));
  for (std::size_t i = 0; i < sources.size(); ++i)
    // A directory that did not answer the first look is not waited for again.
    out.second.push_back(out.first[i].look.reached ? read_directory(sources[i], suffix, true) : out.first[i]);
  return out;
}

// Step 4: the checks that need no judgement of replication.
// Overlapping range claims, from this directory's range entries.
std::vector<std::string> overlapping_claims(const store::LdapEndpoint& own, const std::string& suffix,
                                            std::vector<std::string>& unchecked) {
  std::vector<std::string> overlaps;
  auto range_reader = store::LdapConnection::open(own);
  if (!range_reader) {
    unchecked.push_back("overlapping range claims: " + range_reader.error().message);
    return overlaps;
  }
  for (auto [kind, range_kind] :
       {std::pair{"serial", store::RangeKind::serial}, std::pair{"request", store::RangeKind::request}}) {
    std::map<std::string, std::set<std::string>> owners;
    Status searched = store::each_range_claim(
        **range_reader, suffix, range_kind,
        [&](const std::string& begin, const std::string& replica) { owners[begin].insert(replica); });
    if (!searched) unchecked.push_back(fmt::format("overlapping {} range claims: {}", kind, searched.error().message));
    for (const auto& [begin, who] : owners)
      if (who.size() > 1) {
        std::string list;
        for (const auto& w : who) list += (list.empty() ? "" : ", ") + w;
        overlaps.push_back(fmt::format("{} range from {} claimed by replicas {}", kind, begin, list));
      }
  }
  return overlaps;
}

// Duplicate serials: one serial number (the counter and replica ID in its high bits, below them
// 64 random bits) used for two different certificates, in one directory or across two.
std::vector<std::string> duplicate_serials(const std::vector<DirectorySource>& sources,
                                           const std::vector<Reading>& second) {
  std::vector<std::string> duplicates;
  std::map<std::string, std::tuple<std::string, std::string, std::string>>
      first_seen;  // number -> serial, content, directory
  for (std::size_t i = 0; i < sources.size(); ++i)
    for (const auto& [serial, content] : second[i].records) {
      auto number = store::number_of_serial(serial);
      std::string key = number ? fmt::format("number {:x}", *number) : "serial " + serial;
      auto [it, inserted] = first_seen.emplace(key, std::tuple{serial, content, sources[i].name});
      const auto& [first_serial, first_content, first_directory] = it->second;
      if (!inserted && (first_serial != serial || first_content != content))
        duplicates.push_back(fmt::format("{}: serial {} ({}) in {}, serial {} ({}) in {}", key, first_serial,
                                         first_content, first_directory, serial, content, sources[i].name));
    }
  return duplicates;
}

// Everything status found, for rendering.
struct StatusReport {
  StatusOptions options;
  InstancesView instances;
  std::vector<DirectorySource> sources;
  Looks looks;
  ReplicationHealth health;  // directories in the order of `sources`
  RecordComparison records;  // the directories read at both looks
  std::vector<std::string> overlaps;
  std::vector<std::string> duplicates;
  std::vector<Problem> problems;
  std::vector<std::string> unchecked;
  std::optional<store::CrlLease> crl_lease;  // as this directory holds it; nullopt: not read (see unchecked)
  std::chrono::system_clock::time_point crl_lease_read_at{};

  bool healthy() const { return problems.empty() && unchecked.empty(); }
  std::string owner_label(const DirectorySource& d) const {
    if (!d.replica_id) return "";
    auto it = instances.labels.find(*d.replica_id);
    return it != instances.labels.end() ? it->second : fmt::format("replica {}", *d.replica_id);
  }
  const RecordCount* record_count(const std::string& directory) const {
    for (const auto& c : records.directories)
      if (c.directory == directory) return &c;
    return nullptr;
  }
};

StatusReport gather(const StatusOptions& options, const InstanceConfig& c, const store::LdapEndpoint& own,
                    const std::string& password, const std::vector<store::ReplicaRecord>& replicas) {
  StatusReport report;
  report.options = options;
  auto ca_cert = crypto::load_certificate_file(c.cert_file("ca_signing"));
  if (!ca_cert) report.unchecked.push_back("whether the instances answer: " + ca_cert.error().message);
  std::optional<std::string> registrar;
  auto tree = store::LdapConnection::open(own);
  auto named = tree ? store::read_registrar(**tree, c.directory.suffix)
                    : Result<std::optional<std::string>>(std::unexpected(tree.error()));
  if (named)
    registrar = *named;
  else
    report.unchecked.push_back("which instance registers clones: " + named.error().message);
  report.instances = check_instances(replicas, ca_cert ? ca_cert->get() : nullptr, c.ranges.replica_id, registrar,
                                     options.config_file);

  auto sources = directory_sources(c, own, password);
  report.sources = sources.directories;
  for (auto& u : sources.unchecked) report.unchecked.push_back(std::move(u));
  report.looks = look_twice(report.sources, c.directory.suffix, options.interval_seconds);

  // Judge.
  HealthOptions health_options{options.interval_seconds, options.max_lag_seconds, report.instances.labels};
  std::vector<DirectorySamples> samples;
  std::vector<RecordLooks> record_looks;
  for (std::size_t i = 0; i < report.sources.size(); ++i) {
    const auto& first = report.looks.first[i];
    const auto& second = report.looks.second[i];
    samples.push_back({report.sources[i].name, first.look, second.look});
    if (!first.look.reached || !second.look.reached) continue;
    RecordLooks& r = record_looks.emplace_back();
    r.directory = report.sources[i].name;
    for (const auto& [serial, content] : first.records) r.first.insert(serial);
    for (const auto& [serial, content] : second.records) r.second.insert(serial);
  }
  report.health = judge_replication(samples, sources.agreements, health_options);
  report.records = compare_records(record_looks, health_options);

  report.problems = report.instances.problems;
  for (const auto& f : report.health.findings) report.problems.push_back(problem_of(f));
  for (const auto& f : report.records.findings) report.problems.push_back(problem_of(f));
  // A directory of a topology that consumes from nobody receives nothing.
  if (sources.agreements_read && sources.agreements.empty() && report.instances.other_active > 0)
    report.problems.push_back({"no_agreement", std::string(kThisDirectory), std::nullopt,
                               fmt::format("{} consumes from no other directory (no olcSyncrepl), although {} other "
                                           "instance(s) are active: it receives none of their changes",
                                           kThisDirectory, report.instances.other_active)});
  report.overlaps = overlapping_claims(own, c.directory.suffix, report.unchecked);
  report.duplicates = duplicate_serials(report.sources, report.looks.second);
  for (const auto& d : report.duplicates) report.problems.push_back({"duplicate_serial", "", std::nullopt, d});
  return report;
}

// The providers one directory follows: their contextCSN there, lag, and whether changes arrive.
template <typename Providers, typename Csns>
json::array providers_json(const Providers& providers, const Csns& context_csns) {
  json::array out;
  for (const auto& p : providers) {
    json::object po;
    po["replica_id"] = p.replica_id;
    auto text = context_csns.find(p.replica_id);
    if (p.csn && text != context_csns.end())
      po["context_csn"] = text->second;
    else
      po["context_csn"] = nullptr;
    if (p.lag_seconds)
      po["lag_seconds"] = *p.lag_seconds;
    else
      po["lag_seconds"] = nullptr;
    po["advanced"] = p.advanced;
    po["provider_writing"] = p.provider_writing;
    po["receiving"] = p.receiving;
    out.push_back(po);
  }
  return out;
}

// Step 5: rendering.
json::value json_of(const StatusReport& report) {
  json::array directories;
  for (std::size_t i = 0; i < report.sources.size(); ++i) {
    const auto& source = report.sources[i];
    const auto& health = report.health.directories[i];
    json::object o;
    o["directory"] = source.name;
    if (source.replica_id) o["replica_id"] = *source.replica_id;
    o["reachable"] = health.reachable;
    if (!health.reachable) {
      o["error"] = health.error;
      directories.push_back(o);
      continue;
    }
    json::object csns;
    for (const auto& [sid, csn] : report.looks.second[i].look.context_csns) csns[std::to_string(sid)] = csn;
    o["context_csn"] = csns;
    o["lag_seconds"] = health.lag_seconds;
    o["providers"] = providers_json(health.providers, report.looks.second[i].look.context_csns);
    if (const auto* count = report.record_count(source.name)) {
      o["certificate_records"] = count->records;
      if (report.records.compared) {
        o["records_missing_here"] = count->missing_here;
        o["records_only_here"] = count->only_here;
      }
    }
    directories.push_back(o);
  }
  auto strings = [](const std::vector<std::string>& list) {
    json::array a;
    for (const auto& s : list) a.push_back(json::value(s));
    return a;
  };
  json::array problems;
  for (const auto& p : report.problems) {
    json::object o;
    o["kind"] = p.kind;
    o["about"] = p.about;
    if (p.replica_id) o["replica_id"] = *p.replica_id;
    o["message"] = p.message;
    problems.push_back(o);
  }
  json::object out;
  out["instances"] = report.instances.rows;
  if (report.crl_lease)
    out["crl_master"] = crl_lease_json(*report.crl_lease, report.crl_lease_read_at);
  else
    out["crl_master"] = nullptr;
  out["directories"] = directories;
  // null: fewer than two directories could be read, nothing to compare.
  if (report.records.compared)
    out["same_certificate_records"] = report.records.same_records;
  else
    out["same_certificate_records"] = nullptr;
  out["sampling_interval_seconds"] = report.options.interval_seconds;
  out["max_lag_seconds"] = report.options.max_lag_seconds;
  out["overlapping_range_claims"] = strings(report.overlaps);
  out["duplicate_serials"] = strings(report.duplicates);
  out["problems"] = problems;
  out["not_checked"] = strings(report.unchecked);
  out["healthy"] = report.healthy();
  return out;
}

void print_text(const StatusReport& report) {
  std::printf("Instances (%zu):\n", report.instances.count);
  for (const auto& l : report.instances.lines) std::puts(l.c_str());
  if (report.crl_lease) std::printf("CRL master: %s\n", crl_holder_summary(*report.crl_lease).c_str());

  std::printf("\nDirectories (%zu; each looked at twice, %.1f s apart):\n", report.sources.size(),
              report.options.interval_seconds);
  for (std::size_t i = 0; i < report.sources.size(); ++i) {
    const auto& source = report.sources[i];
    const auto& health = report.health.directories[i];
    std::string owner = report.owner_label(source);
    std::string name = owner.empty() ? source.name : fmt::format("{} [{}]", source.name, owner);
    if (!health.reachable) {
      std::printf("  %s  UNREACHABLE: %s\n", name.c_str(), health.error.c_str());
      continue;
    }
    std::string records;
    if (const auto* count = report.record_count(source.name)) {
      records = fmt::format("{} certificate records", count->records);
      if (count->missing_here) records += fmt::format(", {} held elsewhere missing here", count->missing_here);
      if (count->only_here) records += fmt::format(", {} held only here", count->only_here);
    }
    std::printf("  %s  %s\n", name.c_str(), records.c_str());
    for (const auto& p : health.providers) {
      auto label = report.instances.labels.find(p.replica_id);
      std::string provider =
          label != report.instances.labels.end() ? label->second : fmt::format("replica {}", p.replica_id);
      std::string state = !p.csn ? std::string("none of its changes")
                          : *p.lag_seconds == 0.0
                              ? fmt::format("{}  up to date", csn_time_text(*p.csn))
                              : fmt::format("{}  behind by {:.3f} s", csn_time_text(*p.csn), *p.lag_seconds);
      std::printf("      from %-28s %s%s\n", provider.c_str(), state.c_str(), p.receiving ? "" : "  NOT RECEIVING");
    }
  }
  std::printf("Certificate records: %s\n",
              !report.records.compared ? "only one directory read, nothing to compare"
              : report.records.same_records
                  ? "the same in every directory read"
                  : "DIFFER between directories (in flight, or not replicated: see problems)");

  std::printf("\nOverlapping range claims: %s\n", report.overlaps.empty() ? "none" : "");
  for (const auto& o : report.overlaps) std::printf("  %s (harmless: serials carry the replica ID)\n", o.c_str());
  std::printf("Duplicate serials across directories: %s\n", report.duplicates.empty() ? "none" : "");
  for (const auto& d : report.duplicates) std::printf("  %s\n", d.c_str());

  if (report.problems.empty())
    std::printf("\nProblems: none\n");
  else
    std::printf("\nProblems (%zu):\n", report.problems.size());
  for (const auto& p : report.problems) std::printf("  %s\n", p.message.c_str());
  for (const auto& u : report.unchecked) std::printf("NOT CHECKED: %s\n", u.c_str());
}

}  // namespace

int run_status(Args args) {
  StatusOptions status;
  std::string interval_text, max_lag_text;
  OptionParser options("ca-clone status", kStatusUsage);
  options.value("--config", &status.config_file)
      .value("--interval", &interval_text)
      .value("--max-lag", &max_lag_text)
      .flag("--json", &status.as_json);
  if (auto done = options.parse(args)) return *done;
  if (status.config_file.empty()) return options.usage_error("--config is required");
  if (options.given("--interval")) {
    auto seconds = seconds_option(interval_text, 600);
    if (!seconds) return options.usage_error("--interval expects a number of seconds, more than 0 and at most 600");
    status.interval_seconds = *seconds;
  }
  if (options.given("--max-lag")) {
    auto seconds = seconds_option(max_lag_text, 1e9);
    if (!seconds) return options.usage_error("--max-lag expects a number of seconds, more than 0");
    status.max_lag_seconds = *seconds;
  }
  log::set_level(log::Level::warn);
  auto config = load_instance_config(status.config_file);
  if (!config) return std::fprintf(stderr, "ca-clone status: %s\n", config.error().message.c_str()), kExitUsage;
  const InstanceConfig& c = *config;
  auto directory = open_running_instance_store(c);
  if (!directory) return options.failure(directory.error());
  auto replicas = directory->store->list_replicas();
  if (!replicas) return options.failure(replicas.error().context("this instance's directory"));

  StatusReport report = gather(status, c, directory->endpoint, directory->password, *replicas);
  report.crl_lease_read_at = std::chrono::system_clock::now();
  if (auto lease = directory->store->read_crl_lease(crl_issuing_point()))
    report.crl_lease = *lease;
  else
    report.unchecked.push_back(fmt::format("the CRL master role: {}", lease.error().message));
  if (status.as_json)
    std::puts(json::serialize(json_of(report)).c_str());
  else
    print_text(report);
  return report.healthy() ? kExitOk : kExitFailure;
}

int run_remove(Args args) {
  std::string config_file, replica_text, instance_id;
  OptionParser options("ca-clone remove", kRemoveUsage);
  std::string admin_cert_file, admin_key_file;
  options.value("--config", &config_file).value("--replica-id", &replica_text).value("--instance-id", &instance_id);
  options.value("--cert", &admin_cert_file).value("--key", &admin_key_file);
  if (auto done = options.parse(args)) return *done;
  if (config_file.empty()) return options.usage_error("--config is required");
  if (replica_text.empty() == instance_id.empty())
    return options.usage_error("give exactly one of --replica-id and --instance-id");
  if (admin_cert_file.empty() != admin_key_file.empty()) return options.usage_error("give --cert and --key together");
  log::set_level(log::Level::warn);
  auto config = load_instance_config(config_file);
  if (!config) return std::fprintf(stderr, "ca-clone remove: %s\n", config.error().message.c_str()), kExitUsage;
  const InstanceConfig& c = *config;
  if (admin_cert_file.empty()) {
    admin_cert_file = c.cert_file("admin").string();
    admin_key_file = c.key_file("admin").string();
  }
  auto ca_cert = crypto::load_certificate_file(c.cert_file("ca_signing"));
  if (!ca_cert) return options.failure(Error::config(fmt::format("{}: {}", c.dir.string(), ca_cert.error().message)));
  auto admin_cert = crypto::load_certificate_file(admin_cert_file);
  auto admin_key = crypto::open_private_key(admin_key_file);
  if (!admin_cert || !admin_key)
    return options.failure(Error::config(
        fmt::format("retiring an instance needs an administrator's certificate and key (--cert/--key): {}",
                    (!admin_cert ? admin_cert.error() : admin_key.error()).message)));
  auto client = MasterClient::create(fmt::format("https://{}:{}", c.server.address, c.server.port), ca_cert->get(),
                                     admin_cert->get(), admin_key->get());
  if (!client) return options.failure(client.error());
  int replica_id = 0;
  if (!instance_id.empty()) {
    auto topology = (*client)->get_message<api::TopologyAnswer>("/ca/rest/admin/topology");
    if (!topology) return options.failure(topology.error());
    if (const api::TopologyInstance* active = topology->active_instance(instance_id)) replica_id = active->replica_id;
    if (!replica_id)
      return options.failure(Error::not_found(fmt::format("no active instance '{}' in the topology", instance_id)));
  } else {
    try {
      replica_id = std::stoi(replica_text);
    } catch (...) {
      return options.usage_error("--replica-id expects a number");
    }
  }
  auto removed =
      (*client)->remove_message<api::CloneRetirementAnswer>(fmt::format("/ca/rest/admin/clones/{}", replica_id));
  if (!removed) return options.failure(removed.error());
  std::printf(
      "Replica %d retired: its agreement and replication account are gone, and its ID will not be reused.\n"
      "Stop its ca-server now.\n",
      replica_id);
  return kExitOk;
}

}  // namespace ca::clone_tools
