#include "authority/instance/clone_registry.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include <fmt/format.h>

#include "authority/access/one_time_secret.hpp"
#include "authority/instance/instance_setup.hpp"
#include "authority/issuance/certificate_authority.hpp"
#include "core/log.hpp"
#include "crypto/pem.hpp"
#include "store/ldap/embedded_directory.hpp"

namespace ca::authority {

namespace {
constexpr std::string_view kLog = "clones";
}

Status check_instance_id(std::string_view id) {
  bool fine = !id.empty() && id.size() <= 64;
  for (char c : id) fine = fine && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_');
  if (!fine)
    return fail(Error::bad_request(
        fmt::format("instance ID '{}' must be 1 to 64 letters, digits, '-' or '_'", id.substr(0, 80))));
  return ok();
}

namespace {
// host:port of a URL after its scheme, up to an optional trailing '/': a DNS name, an IPv4
// address or a bracketed IPv6 address, and a port 1..65535. Nothing else (no spaces, quotes,
// user info, paths or options) can get through into cn=config.
Status check_host_port(std::string_view url, std::string_view scheme) {
  auto bad = [&](std::string_view why) {
    return fail(Error::bad_request(fmt::format("'{}' is not a {}host:port URL: {}", url.substr(0, 200), scheme, why)));
  };
  if (!url.starts_with(scheme)) return bad("wrong scheme");
  std::string_view rest = url.substr(scheme.size());
  if (rest.ends_with('/')) rest.remove_suffix(1);
  std::string_view host, port;
  if (rest.starts_with('[')) {
    auto close = rest.find(']');
    if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':')
      return bad("bad IPv6 literal");
    host = rest.substr(1, close - 1);
    port = rest.substr(close + 2);
    for (char c : host)
      if (!(std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.')) return bad("bad IPv6 literal");
  } else {
    auto colon = rest.rfind(':');
    if (colon == std::string_view::npos) return bad("no port");
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
    for (char c : host)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.')) return bad("bad host name");
  }
  if (host.empty() || host.size() > 253) return bad("empty or long host");
  if (port.empty() || port.size() > 5) return bad("bad port");
  int value = 0;
  for (char c : port) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return bad("bad port");
    value = value * 10 + (c - '0');
  }
  if (value < 1 || value > 65535) return bad("bad port");
  return ok();
}
}  // namespace

Status check_https_url(std::string_view url) { return check_host_port(url, "https://"); }
Status check_directory_url(std::string_view url) { return check_host_port(url, "ldaps://"); }

CloneRegistry::CloneRegistry(const InstanceConfig& config, store::CaStore& store, CertificateAuthority& authority,
                             store::LdapEndpoint tree, std::optional<store::LdapEndpoint> config_admin)
    : config_(config),
      store_(store),
      authority_(authority),
      tree_(std::move(tree)),
      config_admin_(std::move(config_admin)) {}

Result<std::string> CloneRegistry::create_join_token(store::CaStore& store, std::chrono::seconds lifetime,
                                                     const std::string& for_instance_id,
                                                     const std::string& created_by) {
  if (!for_instance_id.empty()) CA_CHECK(check_instance_id(for_instance_id));
  if (lifetime < std::chrono::seconds(60) || lifetime > std::chrono::hours(24 * 30))
    return fail(Error::bad_request("a join token lives from 60 seconds to 30 days"));
  store::JoinTokenRecord token;
  CA_TRY(token.id, random_hex(8));
  CA_TRY(std::string secret, random_hex(16));
  CA_TRY(token.secret_hash, hash_secret(secret));
  token.instance_id = for_instance_id;
  token.created_at = std::chrono::system_clock::now();
  token.expires_at = std::chrono::time_point_cast<std::chrono::seconds>(token.created_at + lifetime);
  token.created_by = created_by;
  CA_CHECK(store.add_join_token(token));
  log::info(kLog, "join token {} made by {}{} (expires {})", token.id, created_by,
            for_instance_id.empty() ? "" : " for instance '" + for_instance_id + "'",
            store::to_generalized_time(token.expires_at));
  return token.id + "." + secret;
}

Result<std::unique_ptr<store::LdapConnection>> CloneRegistry::open_tree() const {
  return store::LdapConnection::open(tree_);
}

// This instance's replication password: <dir>/secrets/replication.pass, made on first use; its
// account is written when the password is new or the account is missing (not on every call: that
// would be a replicated write per registration).
Result<std::string> CloneRegistry::own_replication_password() {
  auto file = config_.dir / "secrets" / "replication.pass";
  std::string password;
  bool made = false;
  if (std::filesystem::exists(file)) {
    CA_TRY(password, read_secret_file(file));
  } else {
    password = store::random_password(32);
    CA_CHECK(crypto::write_text_file_atomic(file, password, 0600));
    made = true;
    log::info(kLog, "generated this instance's replication password in {}", file.string());
  }
  CA_TRY(auto conn, open_tree());
  CA_TRY(auto account,
         conn->read(store::replication_account_dn(config_.directory.suffix, config_.ranges.replica_id), {"cn"}));
  if (made || !account)
    CA_CHECK(store::put_replication_account(*conn, config_.directory.suffix, config_.ranges.replica_id, password));
  return password;
}

Result<store::ReplicationPeer> CloneRegistry::agreement_with(int replica_id, const std::string& directory_url) {
  store::ReplicationPeer peer{replica_id, directory_url, {}, {}, config_.cert_file("ca_signing").string()};
  const auto cert = config_.cert_file("directory");
  const auto key = config_.key_file("directory");
  if (std::filesystem::exists(cert) && std::filesystem::exists(key)) {
    peer.tls_cert_file = cert.string();
    peer.tls_key_file = key.string();
    return peer;
  }
  // No directory certificate (an instance set up without a directory port): its account, which
  // replicates everything but the hashes.
  log::warn(kLog,
            "{} is missing: the agreement with replica {} binds with this instance's account, and the password "
            "and secret hashes will not reach this directory; run `ca-server init` again to issue it",
            cert.string(), replica_id);
  CA_TRY(peer.password, own_replication_password());
  peer.bind_dn = store::replication_account_dn(config_.directory.suffix, config_.ranges.replica_id);
  return peer;
}

Status CloneRegistry::join_directory_peers() {
  if (!config_admin_) return ok();
  const auto cert_file = config_.cert_file("directory");
  if (!std::filesystem::exists(cert_file)) return ok();
  CA_TRY(auto cert, crypto::load_certificate_file(cert_file));
  const std::string subject = crypto::name_to_string(X509_get_subject_name(cert.get()));
  CA_TRY(auto conn, open_tree());
  CA_CHECK(store::add_directory_peer(*conn, config_.directory.suffix, subject));
  CA_TRY(int rebound,
         store::bind_agreements_with_certificate(*config_admin_, cert_file.string(),
                                                 config_.key_file("directory").string(), config_.directory.suffix));
  if (rebound > 0)
    log::info(kLog, "{} replication agreement(s) now bind with {} ({})", rebound, cert_file.string(), subject);
  return ok();
}

std::string RegistryCaller::display() const {
  if (administrator) return "administrator " + administrator->display();
  if (instance) return fmt::format("instance '{}' (replica {})", instance->instance_id, instance->replica_id);
  return "a join token";
}

namespace {

// Who may register what, before anything is read: a caller without a certificate brings a join
// token, an instance's certificate speaks for that instance only, and a new clone sends its CSR.
Status check_caller_may_register(const RegistrationRequest& request, const RegistryCaller& caller) {
  const std::string& instance_id = request.instance_id;
  CA_CHECK(check_instance_id(instance_id));
  CA_CHECK(check_https_url(request.url));
  const bool authenticated = caller.instance || caller.administrator;
  if (!authenticated && request.join_token.empty())
    return fail(
        Error::unauthorized("registering a clone needs a join token (from `ca-clone prepare`), an "
                            "administrator's certificate, or the instance's own subsystem certificate"));
  // An instance's certificate speaks for that instance only.
  if (caller.instance && !caller.administrator && caller.instance->instance_id != instance_id)
    return fail(
        Error::forbidden(fmt::format("instance '{}' may register only itself; registering '{}' needs an "
                                     "administrator or a join token",
                                     caller.instance->instance_id, instance_id)));
  const bool new_instance_by_token_or_admin = !caller.instance || caller.administrator;
  if (new_instance_by_token_or_admin && request.subsystem_csr.empty())
    return fail(Error::bad_request("a new clone sends the CSR of its subsystem certificate"));
  return ok();
}

// Where clones consume from: this instance's directory, by a TCP port (ldaps://) or its URL.
Result<std::string> master_directory_url(const InstanceConfig& config) {
  std::string url = config.directory.mode == DirectoryMode::external
                        ? config.directory.url
                        : (config.directory.port
                               ? fmt::format("ldaps://{}:{}/", config.directory.listen_address, config.directory.port)
                               : std::string());
  if (url.empty())
    return fail(Error::conflict(
        "this instance's directory listens on a unix socket only; set directory.port (and listen_address) so that "
        "clones can replicate from it, then restart ca-server"));
  return url;
}

}  // namespace

// The join token is checked before anything about the ID is said: a caller without a valid token
// learns nothing about which instances exist. Returns the token's ID ("" for an authenticated caller).
Result<std::string> CloneRegistry::check_join_token(const RegistrationRequest& request, bool authenticated) {
  if (authenticated) return std::string();
  const std::string& code = request.join_token;
  const std::string invalid = "the join token is not valid";
  auto dot = code.find('.');
  if (dot == std::string::npos || dot == 0 || code.size() > 200) return fail(Error::forbidden(invalid));
  std::string token_id = code.substr(0, dot);
  for (char c : token_id)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return fail(Error::forbidden(invalid));
  auto token = store_.find_join_token(token_id);
  if (!token) return fail(token.error().is(ErrorCode::not_found) ? Error::forbidden(invalid) : token.error());
  if (!secret_matches(token->secret_hash, std::string_view(code).substr(dot + 1)))
    return fail(Error::forbidden(invalid));
  if (token->state != "unused") return fail(Error::forbidden("this join token was already used"));
  if (token->expires_at <= std::chrono::system_clock::now())
    return fail(Error::forbidden("this join token has expired"));
  if (!token->instance_id.empty() && token->instance_id != request.instance_id)
    return fail(Error::forbidden(fmt::format("this join token is for instance '{}'", token->instance_id)));
  return token_id;
}

// The active registration of `instance_id`, if any. Only the instance itself (its own current
// certificate) registers an existing ID again: not a join token, not an administrator, not another
// instance; and an instance's certificate registers no new one.
Result<std::optional<store::ReplicaRecord>> CloneRegistry::registration_to_renew(const std::string& instance_id,
                                                                                 const RegistryCaller& caller) {
  CA_TRY(auto replicas, store_.list_replicas());
  std::optional<store::ReplicaRecord> existing;
  for (const auto& r : replicas)
    if (r.instance_id == instance_id && !r.retired) existing = r;
  if (existing && !(caller.instance && caller.instance->instance_id == instance_id))
    return fail(Error::conflict(fmt::format(
        "instance '{}' is already registered; only that instance registers again (re-run spawn from its folder), "
        "or remove it first",
        instance_id)));
  if (!existing && caller.instance && !caller.administrator)
    return fail(
        Error::forbidden(fmt::format("instance '{}' is not registered; a new clone needs a join token or an "
                                     "administrator",
                                     instance_id)));
  return existing;
}

// A new instance: the next replica ID (the registrar's to give), its token spent, its record saved.
Result<int> CloneRegistry::assign_replica_id(const RegistrationRequest& request, const RegistryCaller& caller,
                                             const std::string& token_id) {
  const std::string& instance_id = request.instance_id;
  {
    // Replica IDs come from one counter, and two instances moving a replicated counter at once
    // can hand out the same value: only the registrar (see `ca-clone promote`) assigns them.
    CA_TRY(auto tree, open_tree());
    CA_TRY(auto registrar, store::read_registrar(*tree, config_.directory.suffix));
    if (registrar && *registrar != config_.instance_id)
      return fail(Error::conflict(fmt::format(
          "new clones are registered by instance '{}' (the registrar), not by '{}': spawn the clone against it",
          *registrar, config_.instance_id)));
  }
  CA_TRY(auto claimed, store_.claim_range(store::RangeKind::replica, 1, 1, config_.ranges.replica_id, instance_id));
  const int replica_id = static_cast<int>(claimed.begin);
  if (replica_id > 999)
    return fail(
        Error::conflict(fmt::format("replica ID {} is above 999, the most replication agreements allow", replica_id)));
  if (!token_id.empty()) CA_CHECK(store_.consume_join_token(token_id, replica_id));
  store::ReplicaRecord record;
  record.replica_id = replica_id;
  record.instance_id = instance_id;
  record.url = request.url;
  CA_CHECK(store_.save_replica(record));
  log::info(kLog, "clone '{}' ({}) gets replica ID {}{}", instance_id, request.url, replica_id,
            token_id.empty() ? fmt::format(" (registered by {})", caller.display())
                             : fmt::format(" (join token {})", token_id));
  return replica_id;
}

Status CloneRegistry::certify_subsystem(const RegistrationRequest& request, int replica_id,
                                        const std::string& replaced_serial, CloneRegistration& reg) {
  if (request.subsystem_csr.empty()) return ok();
  CA_TRY(auto issued, authority_.issue_instance_certificate(request.subsystem_csr, request.instance_id));
  CA_TRY(auto record, store_.load_replica(replica_id));
  if (!record) return fail(Error::internal(fmt::format("replica {} vanished while registering", replica_id)));
  record->subsystem_serial = issued.serial_hex;
  CA_CHECK(store_.save_replica(*record));
  reg.subsystem_certificate = issued.certificate_pem;
  // The certificate it replaces no longer speaks for the instance (the registry names the new
  // one), and is revoked now so that nobody holding its key can use it anywhere else either.
  if (!replaced_serial.empty() && replaced_serial != issued.serial_hex)
    CA_CHECK(revoke_replaced_subsystem_certificate(replaced_serial, replica_id));
  return ok();
}

// The clone's replication account (a fresh password on every registration), and its directory a
// peer of ours.
Status CloneRegistry::open_replication_to(CloneRegistration& reg, const std::string& master_url) {
  CA_TRY(std::string own_password, own_replication_password());
  (void)own_password;  // made sure the master's own account exists: the clone's agreement binds to it
  reg.suffix = config_.directory.suffix;
  reg.replication_bind_dn = store::replication_account_dn(config_.directory.suffix, reg.replica_id);
  reg.replication_password = store::random_password(32);
  reg.master_directory_url = master_url;
  reg.master_replica_id = config_.ranges.replica_id;
  reg.master_instance_id = config_.instance_id;
  CA_TRY(auto conn, open_tree());
  CA_CHECK(store::put_replication_account(*conn, config_.directory.suffix, reg.replica_id, reg.replication_password));
  // Its directory (by its certificate's subject) may now replicate everything from ours.
  CA_TRY(std::string directory_subject, directory_certificate_subject(config_, reg.instance_id));
  CA_CHECK(store::add_directory_peer(*conn, config_.directory.suffix, directory_subject));
  return ok();
}

Result<CloneRegistration> CloneRegistry::register_clone_unaudited(const RegistrationRequest& request,
                                                                  const RegistryCaller& caller) {
  const std::string& instance_id = request.instance_id;
  CA_CHECK(check_caller_may_register(request, caller));
  CA_TRY(std::string token_id, check_join_token(request, caller.instance || caller.administrator));
  std::lock_guard changing(changes_mutex_);
  if (instance_id == config_.instance_id)
    return fail(Error::conflict(fmt::format("instance ID '{}' is this instance's own", instance_id)));
  CA_TRY(std::string master_url, master_directory_url(config_));
  CA_TRY(auto existing, registration_to_renew(instance_id, caller));
  CloneRegistration reg;
  reg.instance_id = instance_id;
  if (existing) {
    reg.replica_id = existing->replica_id;
    log::info(kLog, "clone '{}' registers again: keeps replica ID {}", instance_id, reg.replica_id);
  } else {
    CA_TRY(reg.replica_id, assign_replica_id(request, caller, token_id));
  }
  CA_CHECK(certify_subsystem(request, reg.replica_id, existing ? existing->subsystem_serial : std::string(), reg));
  CA_CHECK(open_replication_to(reg, master_url));
  return reg;
}

Status CloneRegistry::revoke_replaced_subsystem_certificate(const std::string& serial_hex, int replica_id) {
  store::Revocation r;
  r.serial_hex = serial_hex;
  r.revoked_on = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
  r.reason = 4;  // superseded
  r.revoked_by =
      fmt::format("instance '{}' (replica {} registered a new subsystem certificate)", config_.instance_id, replica_id);
  Status revoked = store_.revoke_certificate(r);
  if (!revoked && !revoked.error().is(ErrorCode::conflict)) return revoked;  // conflict: revoked already
  log::info(kLog, "revoked the replaced subsystem certificate 0x{} of replica {}", serial_hex, replica_id);
  return ok();
}

Status CloneRegistry::connect_clone(int replica_id, const std::string& directory_url, const RegistryCaller& caller) {
  if (!caller.administrator && !(caller.instance && caller.instance->replica_id == replica_id))
    return fail(Error::forbidden(fmt::format("{} may connect only its own directory; replica {} is another instance's",
                                             caller.display(), replica_id)));
  if (!config_admin_)
    return fail(Error::conflict("this instance's directory is external: set up its replication agreements yourself"));
  CA_CHECK(check_directory_url(directory_url));
  std::lock_guard changing(changes_mutex_);
  CA_TRY(auto replica, store_.load_replica(replica_id));
  if (!replica) return fail(Error::not_found(fmt::format("no clone with replica ID {} is registered", replica_id)));
  if (replica->retired) return fail(Error::conflict(fmt::format("replica {} was retired", replica_id)));
  if (replica_id == config_.ranges.replica_id) return fail(Error::conflict("that is this instance's own replica ID"));
  CA_TRY(auto peer, agreement_with(replica_id, directory_url));
  CA_CHECK(store::put_replication_peer(*config_admin_, peer, config_.directory.suffix));
  // Recorded in the registry too: every other instance connects to it from there (the mesh).
  CA_TRY(auto conn, open_tree());
  CA_CHECK(store::set_directory_url(*conn, config_.directory.suffix, replica_id, directory_url));
  return ok();
}

Status CloneRegistry::advertise_directory_url(const std::string& url) {
  CA_CHECK(check_directory_url(url));
  CA_TRY(auto replica, store_.load_replica(config_.ranges.replica_id));
  if (!replica) return fail(Error::not_found(fmt::format("replica {} is not registered", config_.ranges.replica_id)));
  if (replica->directory_url == url) return ok();
  CA_TRY(auto conn, open_tree());
  CA_CHECK(store::set_directory_url(*conn, config_.directory.suffix, config_.ranges.replica_id, url));
  log::info(kLog, "this instance's directory is recorded as {} (the other instances replicate from it)", url);
  return ok();
}

Result<int> CloneRegistry::reconcile_mesh() {
  if (!config_admin_ || !config_.directory.mesh) return 0;  // the agreements are the operator's
  std::lock_guard changing(changes_mutex_);
  CA_TRY(auto replicas, store_.list_replicas());
  CA_TRY(auto agreements, store::replication_peers(*config_admin_));
  int changed = 0;
  for (const auto& r : replicas) {
    if (r.retired || r.replica_id == config_.ranges.replica_id || r.directory_url.empty()) continue;
    if (!check_directory_url(r.directory_url)) {
      log::warn(kLog, "replica {} records a directory URL that is not ldaps://host:port/; no agreement made",
                r.replica_id);
      continue;
    }
    auto have = std::find_if(agreements.begin(), agreements.end(),
                             [&](const store::ReplicationPeer& p) { return p.replica_id == r.replica_id; });
    if (have != agreements.end() && have->provider_url == r.directory_url) continue;
    CA_TRY(auto peer, agreement_with(r.replica_id, r.directory_url));
    CA_CHECK(store::put_replication_peer(*config_admin_, peer, config_.directory.suffix));
    log::info(kLog, "mesh: now consuming from replica {} ('{}') at {}", r.replica_id, r.instance_id, r.directory_url);
    ++changed;
  }
  for (const auto& a : agreements) {
    auto r = std::find_if(replicas.begin(), replicas.end(),
                          [&](const store::ReplicaRecord& x) { return x.replica_id == a.replica_id; });
    if (r == replicas.end() || !r->retired) continue;  // unknown agreements are left to the operator
    CA_TRY(bool removed, store::remove_replication_peer(*config_admin_, a.replica_id, config_.directory.suffix));
    if (removed) {
      log::info(kLog, "mesh: dropped the agreement with retired replica {}", a.replica_id);
      ++changed;
    }
  }
  return changed;
}

Result<Promotion> promote_registrar(store::LdapConnection& tree, const std::string& suffix,
                                    const std::string& instance_id, uint64_t highest_known, uint64_t gap) {
  CA_CHECK(check_instance_id(instance_id));
  Promotion p;
  CA_TRY(p.previous_registrar, store::read_registrar(tree, suffix));
  CA_TRY(uint64_t here, store::highest_replica_id_known(tree, suffix));
  p.highest_known = std::max(highest_known, here);
  const uint64_t wanted = p.highest_known + 1 + gap;
  if (wanted > 999)
    return fail(
        Error::conflict(fmt::format("replica IDs would start at {}, above 999 (the most replication allows); "
                                    "use a smaller --gap",
                                    wanted)));
  CA_TRY(p.next_replica_id, store::raise_replica_counter(tree, suffix, wanted));
  CA_CHECK(store::write_registrar(tree, suffix, instance_id));
  log::info(kLog, "instance '{}' is now the registrar (was: {}); replica IDs continue at {}", instance_id,
            p.previous_registrar.value_or("not named"), p.next_replica_id);
  return p;
}

Status CloneRegistry::retire_clone_unaudited(int replica_id) {
  if (replica_id == config_.ranges.replica_id) return fail(Error::conflict("an instance cannot retire itself here"));
  std::lock_guard changing(changes_mutex_);
  CA_TRY(auto replica, store_.load_replica(replica_id));
  if (!replica) return fail(Error::not_found(fmt::format("no clone with replica ID {} is registered", replica_id)));
  if (config_admin_) {
    CA_TRY(bool had_agreement, store::remove_replication_peer(*config_admin_, replica_id, config_.directory.suffix));
    (void)had_agreement;
  }
  CA_TRY(auto conn, open_tree());
  CA_CHECK(store::remove_replication_account(*conn, config_.directory.suffix, replica_id));
  // Its directory no longer reads from any of ours (every directory gets this change).
  CA_TRY(std::string directory_subject, directory_certificate_subject(config_, replica->instance_id));
  CA_CHECK(store::remove_directory_peer(*conn, config_.directory.suffix, directory_subject));
  if (!replica->retired) {
    replica->retired = true;
    CA_CHECK(store_.save_replica(*replica));
  }
  // Its own certificates go too: whoever holds the retired instance's keys can no longer call
  // other instances, serve TLS as it, or be trusted by a directory.
  for (const auto& serial : {replica->subsystem_serial, replica->server_cert_serial, replica->directory_cert_serial}) {
    if (serial.empty()) continue;
    store::Revocation r;
    r.serial_hex = serial;
    r.revoked_on = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
    r.reason = 5;  // cessationOfOperation
    r.revoked_by = fmt::format("instance '{}' (retiring replica {})", config_.instance_id, replica_id);
    Status revoked = store_.revoke_certificate(r);
    if (!revoked && !revoked.error().is(ErrorCode::conflict)) return revoked;  // conflict: revoked already
    log::info(kLog, "revoked certificate 0x{} of retired replica {}", serial, replica_id);
  }
  log::info(kLog, "retired replica {} ('{}'); its ID will not be handed out again", replica_id, replica->instance_id);
  return ok();
}

Result<std::vector<TopologyMember>> CloneRegistry::topology() {
  CA_TRY(auto replicas, store_.list_replicas());
  std::vector<store::ReplicationPeer> peers;
  if (config_admin_) {
    CA_TRY(auto found, store::replication_peers(*config_admin_));
    peers = std::move(found);
  }
  std::vector<TopologyMember> out;
  for (auto& r : replicas) {
    TopologyMember m;
    m.replica = r;
    for (const auto& p : peers)
      if (p.replica_id == r.replica_id) {
        m.agreement = true;
        m.directory_url = p.provider_url;
      }
    out.push_back(std::move(m));
  }
  return out;
}

// Audit: every registration and retirement, whoever asked and however it ended.
Result<CloneRegistration> CloneRegistry::register_clone(const RegistrationRequest& request,
                                                        const RegistryCaller& caller) {
  auto registered = register_clone_unaudited(request, caller);
  if (audit_) {
    const auto dot = request.join_token.find('.');
    const std::string who =
        caller.instance || caller.administrator
            ? caller.display()
            : (dot != std::string::npos && dot <= 32 ? "join token " + request.join_token.substr(0, dot)
                                                     : "a join token");
    const std::string what =
        fmt::format("clone '{}' at {}", request.instance_id.substr(0, 80), request.url.substr(0, 200));
    if (registered)
      audit_->record("clone_registered", who, what, fmt::format("replica ID {}", registered->replica_id));
    else
      audit_->record("clone_registration_refused", who, what, registered.error().message);
  }
  return registered;
}

Status CloneRegistry::retire_clone(int replica_id, const RegistryCaller& caller) {
  Status retired = caller.administrator
                       ? retire_clone_unaudited(replica_id)
                       : Status(fail(Error::forbidden(fmt::format(
                             "retiring an instance needs an administrator's certificate; {} cannot retire replica {}",
                             caller.display(), replica_id))));
  if (audit_)
    audit_->record(retired ? "clone_retired" : "clone_retirement_failed", caller.display(),
                   fmt::format("replica {}", replica_id),
                   retired ? "retired; its certificates revoked" : retired.error().message);
  return retired;
}

}  // namespace ca::authority
