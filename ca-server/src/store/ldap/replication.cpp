#include "store/ldap/replication.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "core/log.hpp"
#include "store/ldap/embedded_directory.hpp"
#include "store/ldap/ldap_ca_store.hpp"

namespace ca::store {

namespace {

constexpr std::string_view kLog = "replication";
const std::string kDatabaseDn = "olcDatabase={1}mdb,cn=config";

// Drops the "{n}" ordering prefix slapd puts on olcSyncrepl values.
std::string_view without_index(std::string_view v) {
  if (!v.empty() && v.front() == '{') {
    if (auto close = v.find('}'); close != std::string_view::npos) return v.substr(close + 1);
  }
  return v;
}

// key=value pairs of an olcSyncrepl value; values may be double-quoted.
std::map<std::string, std::string> parse_syncrepl(std::string_view v) {
  std::map<std::string, std::string> out;
  std::size_t i = 0;
  while (i < v.size()) {
    while (i < v.size() && v[i] == ' ') ++i;
    std::size_t eq = v.find('=', i);
    if (eq == std::string_view::npos) break;
    std::string key(v.substr(i, eq - i));
    i = eq + 1;
    std::string value;
    if (i < v.size() && v[i] == '"') {
      ++i;
      while (i < v.size() && v[i] != '"') {
        if (v[i] == '\\' && i + 1 < v.size()) ++i;
        value += v[i++];
      }
      ++i;
    } else {
      while (i < v.size() && v[i] != ' ') value += v[i++];
    }
    out[key] = value;
  }
  return out;
}

std::string dquote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

Status check_rid(int replica_id) {
  if (replica_id < 1 || replica_id > 999)
    return fail(
        Error::bad_request(fmt::format("replica ID {} cannot name a replication agreement (1..999)", replica_id)));
  return ok();
}

Status write_peers(LdapConnection& conn, const std::vector<std::string>& values) {
  std::vector<LdapModification> mods;
  if (values.empty()) {
    // Back to a plain database: olcMultiProvider goes first (slapd refuses it without syncrepl),
    // then the agreements, whose removal clears the database's shadow flags. olcMultiProvider must
    // be absent, not FALSE: slapd 2.5 reads "FALSE" at start as "a read-only shadow", and every
    // write would then fail with "shadow context; no update referral".
    mods.push_back({LdapModification::Op::replace, "olcMultiProvider", {}});
    mods.push_back({LdapModification::Op::replace, "olcSyncrepl", {}});
  } else {
    mods.push_back({LdapModification::Op::replace, "olcSyncrepl", values});
    mods.push_back({LdapModification::Op::replace, "olcMultiProvider", {"TRUE"}});
  }
  return conn.modify(kDatabaseDn, mods);
}

}  // namespace

std::string replication_account_dn(const std::string& suffix, int replica_id) {
  return fmt::format("cn=replica-{},ou=replicators,{}", replica_id, suffix);
}

Status put_replication_account(LdapConnection& conn, const std::string& suffix, int replica_id,
                               const std::string& password) {
  std::string parent = "ou=replicators," + suffix;
  CA_TRY(auto ou, conn.read(parent, {"ou"}));
  if (!ou) {
    Status added = conn.add(parent, {{"objectClass", {"organizationalUnit"}}, {"ou", {"replicators"}}});
    if (!added && !added.error().is(ErrorCode::conflict)) return added;
  }
  std::string dn = replication_account_dn(suffix, replica_id);
  std::string hash = ssha_password_hash(password);
  CA_TRY(auto existing, conn.read(dn, {"cn"}));
  if (existing) return conn.modify(dn, {{LdapModification::Op::replace, "userPassword", {hash}}});
  return conn.add(dn, {{"objectClass", {"applicationProcess", "simpleSecurityObject"}},
                       {"cn", {fmt::format("replica-{}", replica_id)}},
                       {"userPassword", {hash}},
                       {"description", {fmt::format("replication account of CA replica {}", replica_id)}}});
}

Status remove_replication_account(LdapConnection& conn, const std::string& suffix, int replica_id) {
  Status st = conn.remove(replication_account_dn(suffix, replica_id));
  if (!st && st.error().is(ErrorCode::not_found)) return ok();
  return st;
}

std::string syncrepl_value(const ReplicationPeer& p, const std::string& suffix) {
  // retry: every 2 s for ever; timeouts short so a dead peer is noticed quickly.
  // Every value quoted as the syncrepl syntax wants, so none can add options of its own; the URL
  // itself is checked by whoever accepted it (clone_registry.cpp: check_directory_url).
  const bool tls = p.provider_url.starts_with("ldaps://");
  std::string bind;
  if (tls && p.binds_with_certificate())
    bind = fmt::format("bindmethod=sasl saslmech=EXTERNAL tls_cert={} tls_key={}", dquote(p.tls_cert_file),
                       dquote(p.tls_key_file));
  else
    bind = fmt::format("bindmethod=simple binddn={} credentials={}", dquote(p.bind_dn), dquote(p.password));
  std::string tls_options;
  if (tls)
    tls_options =
        fmt::format(" tls_cacert={} tls_reqcert=demand tls_protocol_min=3.3",
                    dquote(p.tls_ca_file.empty() ? std::string("/etc/ssl/certs/ca-certificates.crt") : p.tls_ca_file));
  // (An empty CA file means the system's trust store: only for a provider with a public certificate.)
  return fmt::format(
      "rid={:03d} provider={} {} searchbase={} type=refreshAndPersist "
      "retry=\"2 +\" timeout=3 network-timeout=3 keepalive=60:3:10{}",
      p.replica_id, dquote(p.provider_url), bind, dquote(suffix), tls_options);
}

Result<std::vector<ReplicationPeer>> replication_peers(const LdapEndpoint& config) {
  CA_TRY(auto conn, LdapConnection::open(config));
  CA_TRY(auto db, conn->read(kDatabaseDn, {"olcSyncrepl"}));
  std::vector<ReplicationPeer> peers;
  if (!db) return fail(Error::directory(fmt::format("{} not found in cn=config", kDatabaseDn)));
  if (const auto* values = db->values("olcSyncrepl")) {
    for (const auto& v : *values) {
      auto kv = parse_syncrepl(without_index(v));
      ReplicationPeer p;
      p.replica_id = std::atoi(kv["rid"].c_str());
      p.provider_url = kv["provider"];
      p.bind_dn = kv["binddn"];
      p.password = kv["credentials"];
      p.tls_ca_file = kv["tls_cacert"];
      if (kv["bindmethod"] == "sasl") {
        p.tls_cert_file = kv["tls_cert"];
        p.tls_key_file = kv["tls_key"];
      }
      peers.push_back(std::move(p));
    }
  }
  return peers;
}

Status put_replication_peer(const LdapEndpoint& config, const ReplicationPeer& peer, const std::string& suffix) {
  CA_CHECK(check_rid(peer.replica_id));
  CA_TRY(auto peers, replication_peers(config));
  std::vector<std::string> values;
  bool replaced = false;
  for (auto& p : peers) {
    if (p.replica_id == peer.replica_id) {
      replaced = true;
      values.push_back(syncrepl_value(peer, suffix));
    } else {
      values.push_back(syncrepl_value(p, suffix));
    }
  }
  if (!replaced) values.push_back(syncrepl_value(peer, suffix));
  CA_TRY(auto conn, LdapConnection::open(config));
  CA_CHECK(write_peers(*conn, values));
  log::info(kLog, "{} agreement: consume from replica {} at {} as {}", replaced ? "updated" : "added", peer.replica_id,
            peer.provider_url, peer.bind_dn);
  return ok();
}

Result<bool> remove_replication_peer(const LdapEndpoint& config, int replica_id, const std::string& suffix) {
  CA_TRY(auto peers, replication_peers(config));
  std::vector<std::string> values;
  bool found = false;
  for (auto& p : peers) {
    if (p.replica_id == replica_id)
      found = true;
    else
      values.push_back(syncrepl_value(p, suffix));
  }
  if (!found) return false;
  CA_TRY(auto conn, LdapConnection::open(config));
  CA_CHECK(write_peers(*conn, values));
  log::info(kLog, "removed the agreement with replica {}", replica_id);
  return true;
}

Result<int> bind_agreements_with_certificate(const LdapEndpoint& config, const std::string& cert_file,
                                             const std::string& key_file, const std::string& suffix) {
  CA_TRY(auto peers, replication_peers(config));
  int changed = 0;
  std::vector<std::string> values;
  for (auto& p : peers) {
    if (p.provider_url.starts_with("ldaps://") && (p.tls_cert_file != cert_file || p.tls_key_file != key_file)) {
      p.tls_cert_file = cert_file;
      p.tls_key_file = key_file;
      p.bind_dn.clear();
      p.password.clear();
      ++changed;
    }
    values.push_back(syncrepl_value(p, suffix));
  }
  if (changed == 0) return 0;
  CA_TRY(auto conn, LdapConnection::open(config));
  CA_CHECK(write_peers(*conn, values));
  log::info(kLog, "{} agreement(s) now bind with this directory's certificate {}", changed, cert_file);
  return changed;
}

Status add_directory_peer(LdapConnection& conn, const std::string& suffix, const std::string& member) {
  const std::string dn = directory_peers_dn(suffix);
  for (int attempt = 0; attempt < 2; ++attempt) {
    CA_TRY(auto group, conn.read(dn, {"member"}));
    if (!group) {
      Status added =
          conn.add(dn, {{"objectClass", {"groupOfNames"}},
                        {"cn", {"Directory Peers"}},
                        {"member", {member}},
                        {"description", {"directories that replicate from this one: they read every entry whole"}}});
      if (added || !added.error().is(ErrorCode::conflict)) return added;
      continue;  // made meanwhile by another writer: add to it
    }
    Status st = conn.modify(dn, {{LdapModification::Op::add, "member", {member}}});
    // Already a member (LDAP_TYPE_OR_VALUE_EXISTS, as a conflict): nothing to do.
    if (!st && st.error().is(ErrorCode::conflict)) return ok();
    return st;
  }
  return fail(Error::directory(fmt::format("could not add {} to {}", member, dn)));
}

Status remove_directory_peer(LdapConnection& conn, const std::string& suffix, const std::string& member) {
  const std::string dn = directory_peers_dn(suffix);
  Status st = conn.modify(dn, {{LdapModification::Op::remove, "member", {member}}});
  if (st) return ok();
  // No group (not found), or not a member (no such value, as a conflict).
  if (st.error().is(ErrorCode::not_found) || st.error().is(ErrorCode::conflict)) return ok();
  // The last member: a groupOfNames cannot be empty, so the group goes.
  CA_TRY(auto members, directory_peers(conn, suffix));
  if (members.size() == 1) {  // it was there (else: no such value), so it is the last
    Status removed = conn.remove(dn);
    if (removed || removed.error().is(ErrorCode::not_found)) return ok();
    return removed;
  }
  return st;
}

Result<std::vector<std::string>> directory_peers(LdapConnection& conn, const std::string& suffix) {
  CA_TRY(auto group, conn.read(directory_peers_dn(suffix), {"member"}));
  std::vector<std::string> out;
  if (group)
    if (const auto* values = group->values("member")) out = *values;
  return out;
}

namespace {
std::string replica_counter_dn(const std::string& suffix) { return "ou=replica," + suffix; }
std::string replica_entry_dn(const std::string& suffix, int replica_id) {
  return DirectoryLayout{suffix}.replica_dn(replica_id);
}
std::optional<uint64_t> as_number(std::string_view text) {
  if (text.empty() || text.size() > 19) return std::nullopt;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}
}  // namespace

Status set_directory_url(LdapConnection& conn, const std::string& suffix, int replica_id, const std::string& url) {
  return conn.modify(replica_entry_dn(suffix, replica_id), {{LdapModification::Op::replace, "caDirectoryUrl", {url}}});
}

Result<std::optional<std::string>> read_registrar(LdapConnection& conn, const std::string& suffix) {
  CA_TRY(auto entry, conn.read(replica_counter_dn(suffix), {"caRegistrar"}));
  if (!entry)
    return fail(
        Error::directory(fmt::format("{} is missing: the base DIT was not loaded", replica_counter_dn(suffix))));
  auto v = entry->first("caRegistrar");
  return v ? std::optional<std::string>(std::string(*v)) : std::nullopt;
}

Status write_registrar(LdapConnection& conn, const std::string& suffix, const std::string& instance_id) {
  return conn.modify(replica_counter_dn(suffix), {{LdapModification::Op::replace, "caRegistrar", {instance_id}}});
}

Result<uint64_t> highest_replica_id_known(LdapConnection& conn, const std::string& suffix) {
  uint64_t highest = 0;
  CA_TRY(auto counter, conn.read(replica_counter_dn(suffix), {"caNextRange"}));
  if (counter)
    if (auto next = as_number(counter->first_or("caNextRange")); next && *next > 0) highest = *next - 1;
  const DirectoryLayout layout{suffix};
  CA_TRY(auto replicas, conn.search(layout.replicas(), SearchScope::one, "(objectClass=caReplicaInstance)",
                                    SearchOptions{{"caReplicaId"}, 0}));
  for (const auto& e : replicas)
    if (auto id = as_number(e.first_or("caReplicaId"))) highest = std::max(highest, *id);
  CA_TRY(auto ranges, conn.search(layout.range_entries(RangeKind::replica), SearchScope::one,
                                  "(objectClass=caRangeEntry)", SearchOptions{{"caEndRange"}, 0}));
  for (const auto& e : ranges)
    if (auto end = as_number(e.first_or("caEndRange"))) highest = std::max(highest, *end);
  return highest;
}

Result<uint64_t> raise_replica_counter(LdapConnection& conn, const std::string& suffix, uint64_t next) {
  const std::string dn = replica_counter_dn(suffix);
  for (int attempt = 0; attempt < 100; ++attempt) {
    CA_TRY(auto entry, conn.read(dn, {"caNextRange"}));
    if (!entry) return fail(Error::directory(fmt::format("{} is missing: the base DIT was not loaded", dn)));
    std::string current = entry->first_or("caNextRange");
    auto value = as_number(current);
    if (!value) return fail(Error::directory(fmt::format("{}: caNextRange '{}' is not a number", dn, current)));
    if (*value >= next) return *value;
    // The same atomic delete-old/add-new as a range claim: a concurrent claim makes it retry.
    Status moved = conn.modify(dn, {{LdapModification::Op::remove, "caNextRange", {current}},
                                    {LdapModification::Op::add, "caNextRange", {std::to_string(next)}}});
    if (moved) return next;
    if (!moved.error().is(ErrorCode::conflict)) return fail(moved.error());
  }
  return fail(Error::unavailable("could not move the replica counter: too many concurrent claims"));
}

Result<std::map<int, std::string>> context_csns(LdapConnection& conn, const std::string& suffix) {
  CA_TRY(auto entry, conn.read(suffix, {"contextCSN"}));
  std::map<int, std::string> out;
  if (!entry) return out;
  if (const auto* values = entry->values("contextcsn")) {
    for (const auto& csn : *values) {
      // 20261123163001.123456Z#000000#001#000000: the third field is the server ID, in hex.
      auto first = csn.find('#');
      auto second = first == std::string::npos ? first : csn.find('#', first + 1);
      auto third = second == std::string::npos ? second : csn.find('#', second + 1);
      if (third == std::string::npos) continue;
      int sid = static_cast<int>(std::strtol(csn.substr(second + 1, third - second - 1).c_str(), nullptr, 16));
      out[sid] = csn;
    }
  }
  return out;
}

}  // namespace ca::store
