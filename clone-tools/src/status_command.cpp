// ca-clone status and ca-clone remove: looking at and trimming the topology.
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <map>
#include <set>

#include <boost/json.hpp>
#include <fmt/format.h>
#include <tuple>
#include <openssl/evp.h>

#include "authority/instance_setup.hpp"
#include "commands.hpp"
#include "core/config.hpp"
#include "core/log.hpp"
#include "crypto/pem.hpp"
#include "master_client.hpp"
#include "store/embedded_directory.hpp"
#include "store/ldap_ca_store.hpp"
#include "store/replication.hpp"

namespace ca::clone_tools {

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

constexpr std::string_view kStatusUsage = R"(usage: ca-clone status --config INSTANCE.yaml [--json]

Shows the topology as the directory of the instance configured in INSTANCE.yaml (any instance: the
master or a clone; its ca-server must be running, or its directory reachable) sees it:
  - every instance: replica ID, URL, reachable or not, serial/request ranges (current, standby,
    numbers left), retired or not, last heartbeat;
  - every directory this one replicates with: contextCSN per server ID, how far behind it is,
    certificate records it holds;
  - overlapping range claims (two instances took the same counter range: harmless, the replica ID
    in every serial keeps their numbers apart, but worth knowing);
  - a duplicate-serial check across all directories (a serial held with different contents).

Options:
  --config FILE  the instance's YAML (instance.yaml of a clone, or the master's)
  --json         machine-readable output
  -h, --help     show this help

Exit status: 0 all reachable and no duplicate serial, 1 something is wrong (listed), 2 usage error.
)";

constexpr std::string_view kRemoveUsage = R"(usage: ca-clone remove --config MASTER.yaml (--replica-id N | --instance-id ID)

Retires a clone: the master drops its replication agreement with the clone's directory and the
clone's replication account, and marks its replica ID retired (never handed out again). Stop the
clone's ca-server afterwards (its records stay in every directory).

Options:
  --config FILE       the master's instance YAML (its subsystem certificate authenticates the call)
  --replica-id N      the clone's replica ID (see ca-clone status)
  --instance-id ID    or the clone's instance ID
  -h, --help          show this help

Exit status: 0 retired, 1 failed, 2 usage error.
)";

std::string csn_time(const std::string& csn) { return csn.substr(0, csn.find('#')); }

// Seconds between two CSN timestamps (20261123163001.123456Z).
double csn_seconds(const std::string& csn) {
  std::tm tm{};
  std::string t = csn_time(csn);
  if (t.size() < 14 || !strptime(t.substr(0, 14).c_str(), "%Y%m%d%H%M%S", &tm)) return 0;
  double frac = t.size() > 15 ? std::strtod(fmt::format("0{}", t.substr(14, t.find('Z') - 14)).c_str(), nullptr) : 0;
  return static_cast<double>(timegm(&tm)) + frac;
}

struct DirectoryView {
  std::string name;  // "this" or the provider URL
  bool reachable = false;
  std::string error;
  std::map<int, std::string> csns;
  std::map<std::string, std::string> serials;  // serial -> replica ID + digest of the certificate
};

Result<DirectoryView> look_at(const std::string& name, const store::LdapEndpoint& endpoint, const std::string& suffix) {
  DirectoryView v;
  v.name = name;
  auto conn = store::LdapConnection::open(endpoint);
  if (!conn) {
    v.error = conn.error().message;
    return v;
  }
  v.reachable = true;
  CA_TRY(v.csns, store::context_csns(**conn, suffix));
  CA_CHECK((*conn)->search_each(
      store::DirectoryLayout{suffix}.certificates(), store::SearchScope::one, "(objectClass=caCertificateRecord)",
      {"caSerialNumber", "caReplicaId", "userCertificate;binary"}, [&](const store::LdapEntry& e) {
        std::string der = e.first_or("userCertificate;binary");
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        std::string digest = EVP_Digest(der.data(), der.size(), md, &len, EVP_sha256(), nullptr) == 1
                                 ? crypto::to_hex({md, std::min(len, 8u)})
                                 : std::string("?");
        v.serials[e.first_or("caSerialNumber")] = e.first_or("caReplicaId") + "/" + digest;
      }));
  return v;
}

std::string range_text(const std::optional<store::NumberRange>& r) {
  return r ? fmt::format("{}-{}", r->begin, r->end) : std::string("-");
}

}  // namespace

int run_status(Args args) {
  std::string config_file;
  bool as_json = false;
  OptionParser options("ca-clone status", kStatusUsage);
  options.value("--config", &config_file).flag("--json", &as_json);
  if (auto done = options.parse(args)) return *done;
  if (config_file.empty()) return options.usage_error("--config is required");
  log::set_level(log::Level::warn);
  auto config = load_instance_config(config_file);
  if (!config) return std::fprintf(stderr, "ca-clone status: %s\n", config.error().message.c_str()), kExitUsage;
  const InstanceConfig& c = *config;
  auto password = authority::read_secret_file(c.directory.bind_password_file);
  if (!password) return options.failure(password.error());
  store::LdapEndpoint own{c.directory.mode == DirectoryMode::external
                              ? c.directory.url
                              : store::ldapi_url_for(c.slapd_dir() / "ldapi"),
                          c.directory.bind_dn, *password, 5000};
  store::GroupCommitOptions no_writes;
  no_writes.writers = 1;
  store::LdapCaStore store(own, c.directory.suffix, 1, no_writes);
  auto replicas = store.list_replicas();
  if (!replicas) return options.failure(replicas.error().context("this instance's directory"));

  bool healthy = true;
  // Instances.
  auto ca_cert = crypto::load_certificate_file(c.cert_file("ca_signing"));
  json::array instances;
  std::vector<std::string> lines;
  for (const auto& r : *replicas) {
    bool reachable = false;
    std::string why;
    if (!r.retired && ca_cert) {
      auto client = MasterClient::create(r.url, ca_cert->get(), nullptr, nullptr);
      if (client) {
        auto info = (*client)->get("/ca/rest/info");
        reachable = static_cast<bool>(info);
        if (!info) why = info.error().message;
      } else {
        why = client.error().message;
      }
      if (!reachable) healthy = false;
    }
    auto left = [](const std::optional<store::NumberRange>& cur, const std::optional<store::NumberRange>& standby,
                   uint64_t next) -> uint64_t {
      uint64_t n = cur && next >= cur->begin && next <= cur->end ? cur->end - next + 1 : 0;
      if (standby) n += standby->end - standby->begin + 1;
      return n;
    };
    uint64_t serials_left = left(r.serial_current, r.serial_standby, r.serial_next);
    auto heartbeat = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now() - r.heartbeat).count();
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
    instances.push_back(o);
    lines.push_back(fmt::format("  {:>3}  {:<12} {:<28} {:<11} serials {} (+{}) {} left   requests {} (+{})   entry updated {} s ago{}",
                                r.replica_id, r.instance_id, r.url,
                                r.retired ? "retired" : reachable ? "reachable" : "UNREACHABLE", range_text(r.serial_current),
                                range_text(r.serial_standby), serials_left, range_text(r.request_current),
                                range_text(r.request_standby), heartbeat, why.empty() ? "" : "  (" + why + ")"));
  }

  // Checks that could not be made: reported, and the topology is then not called healthy.
  std::vector<std::string> unchecked;
  // Directories: ours and the ones it consumes from.
  std::vector<DirectoryView> views;
  auto self = look_at("this instance's directory", own, c.directory.suffix);
  if (!self) return options.failure(self.error());
  views.push_back(*self);
  if (c.directory.mode == DirectoryMode::embedded) {
    store::LdapEndpoint config_admin{own.url, "cn=admin,cn=config", *password, 5000};
    auto peers = store::replication_peers(config_admin);
    if (!peers) unchecked.push_back("replication agreements (cn=config): " + peers.error().message);
    if (peers) {
      for (const auto& p : *peers) {
        // Over TLS, trusting this CA only (the peer's directory certificate is issued by it).
        auto view = look_at(p.provider_url,
                            store::LdapEndpoint{p.provider_url, p.bind_dn, p.password, 5000,
                                                p.tls_ca_file.empty() ? c.cert_file("ca_signing").string() : p.tls_ca_file},
                            c.directory.suffix);
        if (view) views.push_back(*view);
        else views.push_back(DirectoryView{p.provider_url, false, view.error().message, {}, {}});
      }
    }
  }
  // Lag: per server ID, how far each directory is behind the newest CSN anyone has.
  std::map<int, double> newest;
  for (const auto& v : views)
    for (const auto& [sid, csn] : v.csns) newest[sid] = std::max(newest[sid], csn_seconds(csn));
  json::array directories;
  std::vector<std::string> dir_lines;
  for (const auto& v : views) {
    double lag = 0;
    for (const auto& [sid, t] : newest) {
      auto it = v.csns.find(sid);
      lag = std::max(lag, it == v.csns.end() ? t : t - csn_seconds(it->second));
    }
    if (!v.reachable) healthy = false;
    json::object o;
    o["directory"] = v.name;
    o["reachable"] = v.reachable;
    if (!v.error.empty()) o["error"] = v.error;
    json::object csns;
    for (const auto& [sid, csn] : v.csns) csns[std::to_string(sid)] = csn;
    o["context_csn"] = csns;
    o["lag_seconds"] = lag;
    o["certificate_records"] = v.serials.size();
    directories.push_back(o);
    std::string csn_text;
    for (const auto& [sid, csn] : v.csns) csn_text += fmt::format(" {}:{}", sid, csn_time(csn));
    dir_lines.push_back(v.reachable ? fmt::format("  {:<40} {} certificate records, behind by {:.3f} s; contextCSN{}", v.name,
                                                  v.serials.size(), lag, csn_text)
                                    : fmt::format("  {:<40} UNREACHABLE: {}", v.name, v.error));
  }

  // Overlapping range claims, from this directory's range entries.
  std::vector<std::string> overlaps;
  store::DirectoryLayout layout{c.directory.suffix};
  auto range_reader = store::LdapConnection::open(own);
  if (!range_reader) unchecked.push_back("overlapping range claims: " + range_reader.error().message);
  for (auto [kind, range_kind] : {std::pair{"serial", store::RangeKind::serial}, std::pair{"request", store::RangeKind::request}}) {
    if (!range_reader) break;
    std::map<std::string, std::set<std::string>> owners;
    Status searched = (*range_reader)->search_each(layout.range_entries(range_kind), store::SearchScope::one,
                                                    "(objectClass=caRangeEntry)", {"caBeginRange", "caReplicaId"},
                                                    [&](const store::LdapEntry& e) {
                                                      owners[e.first_or("caBeginRange")].insert(e.first_or("caReplicaId", "?"));
                                                    });
    if (!searched) unchecked.push_back(fmt::format("overlapping {} range claims: {}", kind, searched.error().message));
    for (const auto& [begin, who] : owners)
      if (who.size() > 1) {
        std::string list;
        for (const auto& w : who) list += (list.empty() ? "" : ", ") + w;
        overlaps.push_back(fmt::format("{} range from {} claimed by replicas {}", kind, begin, list));
      }
  }

  // Duplicate serials: one serial number (the counter and replica ID in its high bits, below them
  // 64 random bits) used for two different certificates, in one directory or across two.
  std::vector<std::string> duplicates;
  std::map<std::string, std::tuple<std::string, std::string, std::string>> first_seen;  // number -> serial, content, directory
  for (const auto& v : views)
    for (const auto& [serial, content] : v.serials) {
      auto number = store::number_of_serial(serial);
      std::string key = number ? fmt::format("number {:x}", *number) : "serial " + serial;
      auto [it, inserted] = first_seen.emplace(key, std::tuple{serial, content, v.name});
      const auto& [first_serial, first_content, first_directory] = it->second;
      if (!inserted && (first_serial != serial || first_content != content)) {
        duplicates.push_back(fmt::format("{}: serial {} ({}) in {}, serial {} ({}) in {}", key, first_serial, first_content,
                                         first_directory, serial, content, v.name));
        healthy = false;
      }
    }

  if (as_json) {
    json::object out;
    out["instances"] = instances;
    out["directories"] = directories;
    json::array ov, dup;
    for (auto& o : overlaps) ov.push_back(json::value(o));
    for (auto& d : duplicates) dup.push_back(json::value(d));
    out["overlapping_range_claims"] = ov;
    out["duplicate_serials"] = dup;
    json::array not_checked;
    for (auto& u : unchecked) not_checked.push_back(json::value(u));
    out["not_checked"] = not_checked;
    out["healthy"] = healthy && unchecked.empty();
    std::puts(json::serialize(out).c_str());
  } else {
    std::printf("Instances (%zu):\n", replicas->size());
    for (const auto& l : lines) std::puts(l.c_str());
    std::printf("\nDirectories (%zu):\n", views.size());
    for (const auto& l : dir_lines) std::puts(l.c_str());
    std::printf("\nOverlapping range claims: %s\n", overlaps.empty() ? "none" : "");
    for (const auto& o : overlaps) std::printf("  %s (harmless: serials carry the replica ID)\n", o.c_str());
    std::printf("Duplicate serials across directories: %s\n", duplicates.empty() ? "none" : "");
    for (const auto& d : duplicates) std::printf("  %s\n", d.c_str());
    for (const auto& u : unchecked) std::printf("NOT CHECKED: %s\n", u.c_str());
  }
  return healthy && unchecked.empty() ? kExitOk : kExitFailure;
}

int run_remove(Args args) {
  std::string config_file, replica_text, instance_id;
  OptionParser options("ca-clone remove", kRemoveUsage);
  options.value("--config", &config_file).value("--replica-id", &replica_text).value("--instance-id", &instance_id);
  if (auto done = options.parse(args)) return *done;
  if (config_file.empty()) return options.usage_error("--config is required");
  if (replica_text.empty() == instance_id.empty()) return options.usage_error("give exactly one of --replica-id and --instance-id");
  log::set_level(log::Level::warn);
  auto config = load_instance_config(config_file);
  if (!config) return std::fprintf(stderr, "ca-clone remove: %s\n", config.error().message.c_str()), kExitUsage;
  const InstanceConfig& c = *config;
  auto ca_cert = crypto::load_certificate_file(c.cert_file("ca_signing"));
  auto sub_cert = crypto::load_certificate_file(c.cert_file("subsystem"));
  auto sub_key = crypto::load_private_key_file(c.key_file("subsystem"));
  if (!ca_cert || !sub_cert || !sub_key)
    return options.failure(Error::config(fmt::format("{}: the CA and subsystem certificates and key are needed", c.dir.string())));
  auto client = MasterClient::create(fmt::format("https://{}:{}", c.server.address, c.server.port), ca_cert->get(),
                                     sub_cert->get(), sub_key->get());
  if (!client) return options.failure(client.error());
  int replica_id = 0;
  if (!instance_id.empty()) {
    auto topology = (*client)->get("/ca/rest/admin/topology");
    if (!topology) return options.failure(topology.error());
    for (const auto& i : topology->as_object().at("instances").as_array()) {
      const auto& o = i.as_object();
      if (o.at("instance_id").as_string() == instance_id && !o.at("retired").as_bool())
        replica_id = static_cast<int>(o.at("replica_id").to_number<int64_t>());
    }
    if (!replica_id) return options.failure(Error::not_found(fmt::format("no active instance '{}' in the topology", instance_id)));
  } else {
    try {
      replica_id = std::stoi(replica_text);
    } catch (...) {
      return options.usage_error("--replica-id expects a number");
    }
  }
  auto removed = (*client)->remove(fmt::format("/ca/rest/admin/clones/{}", replica_id));
  if (!removed) return options.failure(removed.error());
  std::printf("Replica %d retired: its agreement and replication account are gone, and its ID will not be reused.\n"
              "Stop its ca-server now.\n",
              replica_id);
  return kExitOk;
}

}  // namespace ca::clone_tools
