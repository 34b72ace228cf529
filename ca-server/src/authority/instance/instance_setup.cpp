#include "authority/instance/instance_setup.hpp"

#include <algorithm>
#include <fstream>

#include <arpa/inet.h>
#include <future>
#include <sstream>

#include <fmt/format.h>
#include <openssl/rand.h>

#include "authority/cluster/range_allocator.hpp"
#include "authority/instance/subsystem_certs.hpp"
#include "authority/issuance/certificate_authority.hpp"
#include "authority/issuance/profile.hpp"
#include "authority/issuance/serial_text.hpp"
#include "authority/revocation/revocation.hpp"
#include "core/log.hpp"
#include "core/time_text.hpp"
#include "crypto/certificate_builder.hpp"
#include "crypto/issuer.hpp"
#include "crypto/keys.hpp"
#include "crypto/pem.hpp"
#include "store/ldap/base_dit.hpp"
#include "store/ldap/directory_account.hpp"
#include "store/ldap/ldap_ca_store.hpp"

#ifndef CA_DEFAULT_SCHEMA_DIR
#define CA_DEFAULT_SCHEMA_DIR "schema"
#endif

namespace ca::authority {

namespace fs = std::filesystem;

namespace {
constexpr std::string_view kLog = "init";

fs::path schema_dir() {
  if (const char* env = std::getenv("CA_SCHEMA_DIR")) return env;
  // Installed layout first (<prefix>/share/ca-server/schema), then the source tree.
  if (fs::exists("/usr/share/ca-server/schema/ca-schema.ldif")) return "/usr/share/ca-server/schema";
  return CA_DEFAULT_SCHEMA_DIR;
}

store::EmbeddedDirectoryOptions embedded_options_impl(const InstanceConfig& c, const std::string& password) {
  store::EmbeddedDirectoryOptions o;
  o.dir = c.slapd_dir();
  o.suffix = c.directory.suffix;
  o.root_dn = store::directory_bind_dn(c.directory);
  o.root_password = password;
  o.port = c.directory.port;
  o.listen_address = c.directory.listen_address;
  o.server_id = c.ranges.replica_id;
  o.fsync = c.directory.durability == Durability::per_write;
  o.slapd_path = c.directory.slapd_path;
  o.slapadd_path = c.directory.slapadd_path;
  o.schema_dir = schema_dir();
  // The TCP port speaks TLS with the instance's directory certificate once it exists (init and
  // spawn make it); the local ca-server always talks over the unix socket.
  if (fs::exists(c.cert_file("directory")) && fs::exists(c.key_file("directory"))) {
    o.tls_cert_file = c.cert_file("directory");
    o.tls_key_file = c.key_file("directory");
    o.tls_ca_file = c.cert_file("ca_signing");
  }
  return o;
}

struct IssuedCert {
  ossl::UniquePtr<X509> cert;
  ossl::UniquePtr<EVP_PKEY> key;
};

// The rest of the CA's DN after its CN (",O=Example"): subsystem certificates share it.
std::string ca_subject_tail(const InstanceConfig& c) {
  const auto comma = c.ca.subject.find(',');
  return comma == std::string::npos ? std::string() : c.ca.subject.substr(comma);
}

// The TLS server certificate's names: localhost and the address the server listens on.
void describe_server_certificate(const InstanceConfig& c, crypto::CertificateSpec& spec) {
  spec.key_usage = {"digitalSignature", "keyEncipherment"};
  spec.extended_key_usage = {"serverAuth"};
  spec.dns_names = {"localhost"};
  spec.ip_addresses = {"127.0.0.1", "::1"};
  if (c.server.address != "127.0.0.1" && c.server.address != "0.0.0.0" && c.server.address != "::" &&
      c.server.address != "localhost")
    spec.ip_addresses.push_back(c.server.address);
}

// Sets the usages of the certificate kept as `file` in `spec`, and returns its subject.
std::string describe_subsystem_certificate(const InstanceConfig& c, std::string_view file,
                                           crypto::CertificateSpec& spec) {
  const std::string ca_tail = ca_subject_tail(c);
  if (file == "ca_signing") {
    spec.is_ca = true;
    spec.key_usage = {"digitalSignature", "keyCertSign", "cRLSign"};
    return c.ca.subject;
  }
  if (file == "ocsp_signing") {
    spec.key_usage = {"digitalSignature", "nonRepudiation"};
    spec.extended_key_usage = {"OCSPSigning"};
    spec.ocsp_no_check = true;
    return "CN=OCSP Signing Certificate" + ca_tail;
  }
  if (file == "subsystem") {
    spec.key_usage = {"digitalSignature", "keyEncipherment"};
    spec.extended_key_usage = {"serverAuth", "clientAuth"};
    return "CN=CA Subsystem Certificate" + ca_tail;
  }
  if (file == "audit_signing") {
    spec.key_usage = {"digitalSignature", "nonRepudiation"};
    return "CN=CA Audit Signing Certificate" + ca_tail;
  }
  if (file == "kra_storage" || file == "kra_transport") {
    spec.key_usage = {"keyEncipherment", "dataEncipherment"};
    return (file == "kra_storage" ? "CN=KRA Storage Certificate" : "CN=KRA Transport Certificate") + ca_tail;
  }
  if (file == "agent" || file == "admin") {
    // The bootstrap person: one identity holding the first agent and administrator certificates.
    spec.key_usage = {"digitalSignature"};
    spec.extended_key_usage = {"clientAuth"};
    return "CN=CA Administrator" + ca_tail;
  }
  describe_server_certificate(c, spec);
  return "CN=localhost" + ca_tail;
}

KeyType subsystem_key_type(const InstanceConfig& c, std::string_view file) {
  if (file == "ca_signing") return c.ca.key_type;
  return file == "kra_storage" || file == "kra_transport" ? KeyType::rsa_3072 : KeyType::ec_p256;
}

// The CA certificate (ca == nullptr) is signed by its own new key; every other one by the CA.
Result<ossl::UniquePtr<X509>> sign_subsystem_certificate(const crypto::CertificateSpec& spec, const crypto::Issuer* ca,
                                                         EVP_PKEY* key) {
  if (ca) return ca->sign_certificate(spec);
  CA_TRY(auto own_key, crypto::SigningKey::from_key(ossl::up_ref(key)));
  CA_TRY(auto root, crypto::Issuer::self_signed(spec, std::move(own_key)));
  return ossl::up_ref(root.certificate());
}

// The certificate and request entries of a subsystem certificate, committed like an enrollment's.
Status record_subsystem_enrollment(const InstanceConfig& c, store::LdapCaStore& store, std::string_view file,
                                   X509* cert, const crypto::CertificateSpec& spec, uint64_t request_number,
                                   std::chrono::system_clock::time_point now) {
  store::CertificateRecord record;
  record.serial_hex = spec.serial_hex;
  record.subject_dn = crypto::name_to_string(X509_get_subject_name(cert));
  record.issuer_dn = crypto::name_to_string(X509_get_issuer_name(cert));
  record.not_before = spec.not_before;
  record.not_after = spec.not_after;
  record.issued_at = now;
  // The first agent is issued under the agent-only profile, like every later one.
  record.profile_id = file == "agent"   ? std::string(kAgentRole.profile)
                      : file == "admin" ? std::string(kAdministratorRole.profile)
                                        : fmt::format("subsystem:{}", file);
  record.request_id_hex = fmt::format("{:x}", request_number);
  record.replica_id = c.ranges.replica_id;
  record.issued_by = c.instance_id;
  record.der = crypto::certificate_to_der(cert);
  store::RequestRecord request;
  request.id_hex = record.request_id_hex;
  request.profile_id = record.profile_id;
  request.serial_hex = record.serial_hex;
  request.subject_dn = record.subject_dn;
  request.created_at = request.modified_at = now;
  request.result = "issued at instance creation";
  request.replica_id = c.ranges.replica_id;
  request.instance_id = c.instance_id;
  std::promise<Status> committed;
  store.commit_enrollment(request, record, [&](const Status& st) { committed.set_value(st); });
  return committed.get_future().get();
}

// Issues one subsystem certificate through the same numbering and records as any enrollment,
// signed by `ca` (nullptr: the CA certificate itself, self-signed).
Result<IssuedCert> issue_subsystem_cert(const InstanceConfig& c, store::LdapCaStore& store, RangeAllocator& serials,
                                        RangeAllocator& requests, std::string_view file, const crypto::Issuer* ca) {
  const bool is_ca = file == "ca_signing";
  IssuedCert out;
  CA_TRY(out.key, crypto::generate_key(subsystem_key_type(c, file)));
  crypto::CertificateSpec spec;
  const auto now = std::chrono::system_clock::now();
  spec.not_before = now - std::chrono::minutes(5);
  spec.not_after = now + std::chrono::hours(24) * (is_ca ? c.ca.validity_days : std::min(c.ca.validity_days, 730));
  CA_TRY(auto name, crypto::parse_name(describe_subsystem_certificate(c, file, spec)));
  CA_TRY(uint64_t serial, serials.next_number());
  CA_TRY(uint64_t request_number, requests.next_number());
  uint64_t random_bits = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&random_bits), sizeof random_bits) != 1)
    return fail(Error::crypto("the CSPRNG failed"));
  spec.serial_hex = store::compose_serial_hex(serial, random_bits);
  spec.subject = name.get();
  spec.public_key = out.key.get();
  CA_TRY(out.cert, sign_subsystem_certificate(spec, is_ca ? nullptr : ca, out.key.get()));
  CA_CHECK(record_subsystem_enrollment(c, store, file, out.cert.get(), spec, request_number, now));
  CA_CHECK(crypto::write_private_key_file(c.key_file(file), out.key.get()));
  CA_CHECK(crypto::write_certificate_file(c.cert_file(file), out.cert.get()));
  log::info(kLog, "issued {} certificate '{}' (serial 0x{})", file,
            crypto::name_to_string(X509_get_subject_name(out.cert.get())), spec.serial_hex);
  return out;
}

}  // namespace

Status ensure_dir(const fs::path& p, fs::perms perms) {
  std::error_code ec;
  fs::create_directories(p, ec);
  if (ec) return fail(Error::io(fmt::format("cannot create {}: {}", p.string(), ec.message())));
  fs::permissions(p, perms, ec);
  return ok();
}

Status ensure_password_file(const fs::path& file) {
  if (fs::exists(file)) return ok();
  CA_CHECK(ensure_dir(file.parent_path(), fs::perms::owner_all));
  std::string password = store::random_password(32);
  // No trailing newline: `ldapsearch -y FILE` uses the whole file as the password.
  CA_CHECK(crypto::write_text_file_atomic(file, password, 0600));
  log::info(kLog, "generated the directory password in {} (mode 0600)", file.string());
  return ok();
}

store::EmbeddedDirectoryOptions embedded_directory_options(const InstanceConfig& c, const std::string& password) {
  return embedded_options_impl(c, password);
}

store::GroupCommitOptions group_commit_options(const InstanceConfig& c) {
  store::GroupCommitOptions o;
  o.max_batch = c.directory.group_commit.max_batch;
  o.writers = c.directory.group_commit.writers;
  o.max_queue = static_cast<std::size_t>(c.directory.group_commit.max_queue);
  if (c.directory.mode == DirectoryMode::embedded && c.directory.durability == Durability::group)
    o.sync_file = (c.slapd_dir() / "data" / "data.mdb").string();
  return o;
}

Result<InstanceDirectory> open_instance_directory(const InstanceConfig& c, bool supervise, bool tcp) {
  InstanceDirectory d;
  CA_TRY(std::string password, read_secret_file(c.directory.bind_password_file));
  if (c.directory.mode == DirectoryMode::external) {
    d.endpoint =
        store::LdapEndpoint{c.directory.url, store::directory_bind_dn(c.directory), password, c.directory.timeout_ms};
    return d;
  }
  auto options = embedded_options_impl(c, password);
  options.tcp = tcp;
  if (tcp && c.directory.port && !options.tls())
    log::warn(kLog,
              "the directory's port {} has no TLS certificate ({} is missing): run `ca-server init` again to "
              "issue it; until then the port is not opened",
              c.directory.port, c.cert_file("directory").string());
  if (!options.tls()) options.tcp = false;
  d.embedded = std::make_unique<store::EmbeddedDirectory>(options);
  std::string socket = (c.slapd_dir() / "ldapi").string();
  if (socket.size() > 100 && c.directory.port == 0)
    return fail(Error::config(fmt::format(
        "{}: directory: the socket path {} is too long for a unix socket; set directory.port to a free loopback port",
        c.source_file.string(), socket)));
  CA_CHECK(d.embedded->start(supervise));
  d.endpoint = d.embedded->endpoint(c.directory.timeout_ms);
  return d;
}

Result<LocalDirectory> open_local_directory(const InstanceConfig& c) {
  LocalDirectory d;
  CA_TRY(std::string password, read_secret_file(c.directory.bind_password_file));
  if (c.directory.mode == DirectoryMode::external) {
    d.endpoint =
        store::LdapEndpoint{c.directory.url, store::directory_bind_dn(c.directory), password, c.directory.timeout_ms};
    return d;
  }
  d.endpoint = store::LdapEndpoint{store::ldapi_url_for(c.slapd_dir() / "ldapi"), store::directory_bind_dn(c.directory),
                                   password, c.directory.timeout_ms};
  if (store::LdapConnection::open(d.endpoint)) return d;
  CA_TRY(auto started, open_instance_directory(c, false, false));
  d.endpoint = started.endpoint;
  d.started.emplace(std::move(started));
  return d;
}

Result<std::string> directory_certificate_subject(const InstanceConfig& c, std::string_view instance_id) {
  CA_TRY(auto name, crypto::parse_name(fmt::format("CN=Directory {}{}", instance_id, ca_subject_tail(c))));
  return crypto::name_to_string(name.get());
}

Status issue_local_certificate(const InstanceConfig& c, std::string_view file) {
  if (file != "directory") return fail(Error::internal(fmt::format("no local certificate kind '{}'", file)));
  CA_TRY(auto ca, crypto::Issuer::open(c.cert_file("ca_signing"), c.key_uri("ca_signing")));
  CA_TRY(auto key, crypto::generate_key(KeyType::ec_p256));
  CA_TRY(std::string subject, directory_certificate_subject(c, c.instance_id));
  CA_TRY(auto name, crypto::parse_name(subject));
  CA_TRY(std::string serial, random_serial_hex());
  auto now = std::chrono::system_clock::now();
  crypto::CertificateSpec spec;
  spec.serial_hex = serial;
  spec.subject = name.get();
  spec.public_key = key.get();
  spec.not_before = now - std::chrono::minutes(5);
  spec.not_after = now + std::chrono::hours(24) * std::min(c.ca.validity_days, 730);
  spec.key_usage = {"digitalSignature", "keyEncipherment"};
  spec.extended_key_usage = {"serverAuth", "clientAuth"};
  spec.dns_names = {"localhost"};
  spec.ip_addresses = {"127.0.0.1"};
  unsigned char probe[16];
  const std::string& host = c.directory.listen_address;
  if (inet_pton(AF_INET, host.c_str(), probe) == 1 || inet_pton(AF_INET6, host.c_str(), probe) == 1) {
    if (host != "127.0.0.1") spec.ip_addresses.push_back(host);
  } else if (host != "localhost") {
    spec.dns_names.push_back(host);
  }
  CA_TRY(auto cert, ca.sign_certificate(spec));
  CA_CHECK(crypto::write_private_key_file(c.key_file(file), key.get()));
  CA_CHECK(crypto::write_certificate_file(c.cert_file(file), cert.get()));
  log::info(kLog, "issued the {} certificate 0x{} ('{}') for {}", file, serial,
            crypto::name_to_string(X509_get_subject_name(cert.get())), host);
  return ok();
}

Status record_local_certificate(store::CaStore& store, const InstanceConfig& c, std::string_view file) {
  CA_TRY(auto cert, crypto::load_certificate_file(c.cert_file(file)));
  std::string serial = crypto::serial_to_hex(X509_get0_serialNumber(cert.get()));
  auto existing = store.find_certificate(serial);
  if (existing) return ok();
  if (!existing.error().is(ErrorCode::not_found)) return fail(existing.error());
  auto to_time = [](const ASN1_TIME* t) {
    std::tm tm{};
    ASN1_TIME_to_tm(t, &tm);
    return from_utc_tm(tm);
  };
  auto now = std::chrono::system_clock::now();
  store::CertificateRecord record;
  record.serial_hex = serial;
  record.subject_dn = crypto::name_to_string(X509_get_subject_name(cert.get()));
  record.issuer_dn = crypto::name_to_string(X509_get_issuer_name(cert.get()));
  record.not_before = to_time(X509_get0_notBefore(cert.get()));
  record.not_after = to_time(X509_get0_notAfter(cert.get()));
  record.issued_at = now;
  record.profile_id = fmt::format("subsystem:{}", file);
  record.request_id_hex = serial;
  record.replica_id = c.ranges.replica_id;
  record.issued_by = c.instance_id;
  record.der = crypto::certificate_to_der(cert.get());
  store::RequestRecord request;
  request.id_hex = serial;  // not a counter-based number: this certificate took none
  request.profile_id = record.profile_id;
  request.serial_hex = serial;
  request.subject_dn = record.subject_dn;
  request.created_at = request.modified_at = now;
  request.result = "issued by the instance for itself";
  request.requester = "instance " + c.instance_id;
  request.instance_id = c.instance_id;
  std::promise<Status> committed;
  store.commit_enrollment(request, record, [&](const Status& st) { committed.set_value(st); });
  CA_CHECK(committed.get_future().get());
  return ok();
}

namespace {

Status make_instance_folders(const InstanceConfig& c) {
  CA_CHECK(ensure_dir(c.dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec));
  CA_CHECK(ensure_dir(c.certs_dir(), fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                         fs::perms::others_read | fs::perms::others_exec));
  return ensure_dir(c.private_dir(), fs::perms::owner_all);
}

Status initialize_embedded_directory(const InstanceConfig& c) {
  if (c.directory.mode != DirectoryMode::embedded) return ok();
  CA_CHECK(ensure_password_file(c.directory.bind_password_file));
  CA_TRY(std::string password, read_secret_file(c.directory.bind_password_file));
  store::EmbeddedDirectory probe(embedded_options_impl(c, password));
  if (!probe.initialized()) CA_CHECK(probe.initialize());
  return ok();
}

// The built-in profiles, then the file's (which may add profiles or redefine built-in ones).
Status store_profiles(const InstanceConfig& c, store::LdapCaStore& store) {
  if (!fs::exists(c.profiles_file)) {
    CA_CHECK(crypto::write_text_file_atomic(c.profiles_file, default_profiles_yaml(), 0644));
    log::info(kLog, "wrote the default profiles to {}", c.profiles_file.string());
  }
  CA_TRY(auto profiles, parse_profiles_text(default_profiles_yaml(), "built-in profiles"));
  CA_TRY(auto from_file, load_profiles_file(c.profiles_file));
  for (auto& p : from_file) {
    std::erase_if(profiles, [&](const Profile& q) { return q.id == p.id; });
    profiles.push_back(std::move(p));
  }
  for (const auto& p : profiles)
    CA_CHECK(store.put_profile(store::ProfileRecord{p.id, p.definition_yaml, p.enabled}, false));
  log::info(kLog, "{} profile(s) in the directory", profiles.size());
  return ok();
}

Result<store::ReplicaRecord> register_replica(const InstanceConfig& c, store::LdapCaStore& store) {
  CA_TRY(auto replica, store.load_replica(c.ranges.replica_id));
  if (replica) return *replica;
  // The first instance takes its replica ID from the shared replica counter, so clones that
  // are spawned later never get the same one.
  CA_TRY(auto id, store.claim_range(store::RangeKind::replica, 1, static_cast<uint64_t>(c.ranges.replica_id),
                                    c.ranges.replica_id, c.instance_id));
  if (id.begin != static_cast<uint64_t>(c.ranges.replica_id))
    return fail(Error::conflict(fmt::format("replica ID {} is already taken in this directory (next free: {})",
                                            c.ranges.replica_id, id.begin)));
  store::ReplicaRecord r;
  r.replica_id = c.ranges.replica_id;
  r.instance_id = c.instance_id;
  r.url = fmt::format("https://{}:{}", c.server.address, c.server.port);
  CA_CHECK(store.save_replica(r));
  log::info(kLog, "registered replica {}", c.ranges.replica_id);
  return r;
}

// The numbering of the certificates issued at set-up: this replica's ranges, persisted as they move.
struct SetupNumbering {
  RangeAllocator serials, requests;

  SetupNumbering(const InstanceConfig& c, store::LdapCaStore& store)
      : serials(store, store::RangeKind::serial, c.ranges.replica_id, c.instance_id, c.ranges.serial_range_size,
                c.ranges.low_water_mark),
        requests(store, store::RangeKind::request, c.ranges.replica_id, c.instance_id, c.ranges.request_range_size,
                 c.ranges.low_water_mark) {}

  Status restore(const InstanceConfig& c, store::LdapCaStore& store, const store::ReplicaRecord& replica) {
    RangeState ss{replica.serial_current, replica.serial_standby, replica.serial_next, replica.serial_high_water};
    RangeState rs{replica.request_current, replica.request_standby, replica.request_next, replica.request_high_water};
    CA_CHECK(serials.restore(ss));
    CA_CHECK(requests.restore(rs));
    auto persist = [this, &c, &store] { return persist_counters(store, c, &serials, requests); };
    serials.on_change(persist);
    requests.on_change(persist);
    return ok();
  }
};

bool has_certificate_and_key(const InstanceConfig& c, std::string_view file) {
  return fs::exists(c.cert_file(file)) && fs::exists(c.key_file(file));
}

// The CA's issuer: the one on disk, or a new self-signed CA certificate and key.
Result<crypto::Issuer> open_or_issue_ca(const InstanceConfig& c, store::LdapCaStore& store, SetupNumbering& numbers) {
  if (has_certificate_and_key(c, "ca_signing")) {
    CA_TRY(auto ca, crypto::Issuer::open(c.cert_file("ca_signing"), c.key_uri("ca_signing")));
    log::info(kLog, "CA signing certificate exists; keeping it");
    return ca;
  }
  CA_TRY(auto issued, issue_subsystem_cert(c, store, numbers.serials, numbers.requests, "ca_signing", nullptr));
  CA_TRY(auto key, crypto::SigningKey::from_key(std::move(issued.key), c.key_uri("ca_signing")));
  return crypto::Issuer::create(std::move(issued.cert), std::move(key));
}

// Whether the bootstrap `role` certificate is this instance's to make (see issue_bootstrap_people).
Result<bool> bootstrap_role_wanted(store::LdapCaStore& store, const Role& role) {
  auto holders = store.group_members(role.group);
  if (!holders && !holders.error().is(ErrorCode::not_found)) return fail(holders.error());
  if (holders && !holders->empty()) {
    log::info(kLog, "the group '{}' has {} member(s) already: no bootstrap {} certificate for this instance",
              role.group, holders->size(), role.name);
    return false;
  }
  // A group still empty on an instance that is not alone (a clone of a cluster made by an
  // earlier version, before its master's init was run again): not this instance's to fill.
  CA_TRY(auto members, store.list_replicas());
  if (std::count_if(members.begin(), members.end(), [](const auto& r) { return !r.retired; }) > 1) {
    log::warn(kLog,
              "the group '{}' is empty; run `ca-server init` on the first instance, or `ca-server {} add` "
              "there, to make the first {}",
              role.group, role.command, role.name);
    return false;
  }
  return true;
}

// The bootstrap person of a new CA: the first agent and the first administrator, TLS client
// certificates that are themselves (serial and SHA-256) in their groups. Only the first instance
// makes them: a spawned clone finds the groups filled by replication and gets no role
// certificate (its operator is not made an agent or administrator anywhere).
Status issue_bootstrap_people(const InstanceConfig& c, store::LdapCaStore& store, SetupNumbering& numbers,
                              const crypto::Issuer& ca) {
  for (const auto& [file, role] :
       {std::pair{std::string_view("agent"), kAgentRole}, std::pair{std::string_view("admin"), kAdministratorRole}}) {
    if (has_certificate_and_key(c, file)) continue;
    CA_TRY(bool wanted, bootstrap_role_wanted(store, role));
    if (!wanted) continue;
    CA_TRY(auto holder, issue_subsystem_cert(c, store, numbers.serials, numbers.requests, file, &ca));
    std::string subject = crypto::name_to_string(X509_get_subject_name(holder.cert.get()));
    CA_CHECK(store.add_group_member(role.group, certificate_member_value(holder.cert.get())));
    log::info(kLog, "{} '{}' added to '{}': {} + {}", role.name, subject, role.group, c.cert_file(file).string(),
              c.key_file(file).string());
  }
  return ok();
}

Status issue_subsystem_certificates(const InstanceConfig& c, store::LdapCaStore& store, SetupNumbering& numbers,
                                    const crypto::Issuer& ca) {
  for (const auto& sc : kSubsystemCerts) {
    if (sc.file == "ca_signing" || has_certificate_and_key(c, sc.file)) continue;
    CA_TRY(auto issued, issue_subsystem_cert(c, store, numbers.serials, numbers.requests, sc.file, &ca));
  }
  CA_CHECK(issue_bootstrap_people(c, store, numbers, ca));
  // The TLS certificate of the directory's TCP port (a clone's spawn made it already).
  if (!has_certificate_and_key(c, "directory")) CA_CHECK(issue_local_certificate(c, "directory"));
  return record_local_certificate(store, c, "directory");
}

// This instance's own certificates, by serial, in its replica entry: other instances accept its
// calls only with the subsystem certificate recorded there, and retiring it revokes them.
Status record_own_certificate_serials(const InstanceConfig& c, store::LdapCaStore& store) {
  CA_TRY(auto own, store.load_replica(c.ranges.replica_id));
  if (!own) return fail(Error::internal(fmt::format("replica {} is not registered", c.ranges.replica_id)));
  auto serial_of = [&](std::string_view file) -> Result<std::string> {
    if (!fs::exists(c.cert_file(file))) return std::string();
    CA_TRY(auto cert, crypto::load_certificate_file(c.cert_file(file)));
    return crypto::serial_to_hex(X509_get0_serialNumber(cert.get()));
  };
  CA_TRY(std::string subsystem, serial_of("subsystem"));
  CA_TRY(std::string server, serial_of("sslserver"));
  CA_TRY(std::string directory, serial_of("directory"));
  if (own->subsystem_serial == subsystem && own->server_cert_serial == server &&
      (directory.empty() || own->directory_cert_serial == directory))
    return ok();
  own->subsystem_serial = subsystem;
  own->server_cert_serial = server;
  own->directory_cert_serial = directory;
  CA_CHECK(store.save_replica(*own));
  log::info(kLog, "replica {}: subsystem certificate 0x{}, TLS server certificate 0x{}", c.ranges.replica_id, subsystem,
            server);
  return ok();
}

}  // namespace

Status initialize_instance(const InstanceConfig& c) {
  log::info(kLog, "[1/6] instance folder {}", c.dir.string());
  CA_CHECK(make_instance_folders(c));

  log::info(kLog, "[2/6] directory ({})",
            c.directory.mode == DirectoryMode::embedded ? "embedded slapd" : c.directory.url);
  CA_CHECK(initialize_embedded_directory(c));
  // Only the unix socket while the instance is set up: the TCP port opens with TLS, at run.
  CA_TRY(InstanceDirectory dir, open_instance_directory(c, false, false));
  CA_CHECK(store::load_base_dit(dir.endpoint, c.directory.suffix, schema_dir()));
  auto commit_options = group_commit_options(c);
  commit_options.writers = 1;
  // The store (and its connections) goes before the directory it talks to: declared after `dir`.
  store::LdapCaStore store(dir.endpoint, c.directory.suffix, 2, commit_options);

  log::info(kLog, "[3/6] profiles");
  CA_CHECK(store_profiles(c, store));

  log::info(kLog, "[4/6] replica registration");
  CA_TRY(store::ReplicaRecord replica, register_replica(c, store));

  log::info(kLog, "[5/6] subsystem certificates");
  SetupNumbering numbers(c, store);
  CA_CHECK(numbers.restore(c, store, replica));
  CA_TRY(crypto::Issuer ca, open_or_issue_ca(c, store, numbers));
  CA_CHECK(issue_subsystem_certificates(c, store, numbers, ca));
  CA_CHECK(record_own_certificate_serials(c, store));
  numbers.serials.wait_idle();
  numbers.requests.wait_idle();
  CA_CHECK(persist_counters(store, c, &numbers.serials, numbers.requests));

  log::info(kLog, "[6/6] done: CA '{}' in {}", crypto::name_to_string(X509_get_subject_name(ca.certificate())),
            c.dir.string());
  return ok();
}

std::string sample_instance_yaml(const std::string& instance_dir, uint16_t port) {
  return fmt::format(R"(# ca-server instance configuration. Every key is optional; shown with its default
# unless noted. Relative paths are resolved against this file's folder.
instance:
  id: demo
  dir: {dir}
ca:
  subject: "CN=Demo Certificate Authority,O=Example"
  key_type: ec-p256            # ec-p256 | ec-p384 | rsa-2048 | rsa-3072 | ed25519
  validity_days: 3650
  serial_generator: ranges     # ranges | random
  public_url: ""               # base of the CRL and OCSP URLs in certificates; "" = http://address:http_port
  est_profile: caServerCert    # the profile of EST requests without a label (/.well-known/est/simpleenroll)
  retry_after_seconds: 10      # how long a client waiting for an agent is told to wait before asking again
  refusal_summary_ms: 60000    # refusals of unauthenticated callers: one requests_refused audit record per interval
server:
  address: 127.0.0.1
  port: {port}
  http_port: {http_port}              # plain HTTP for CRLs and OCSP; 0 = off
  io_threads: 0                # 0 = one per core
  worker_threads: 0            # 0 = four per core
  body_limit: 65536
  idle_timeout_seconds: 30
  handshake_timeout_seconds: 10   # a new connection's TLS handshake and first request are due within this
  max_connections_per_client: 256 # open connections per client address (of max_connections); more are closed
  client_requests_per_second: 2000  # per client address, sustained; more get 429 + Retry-After; 0 = no limit
  client_request_burst: 4000
  proxy_protocol: false        # behind haproxy with send-proxy-v2: the client address comes from its header
  http_proxy_protocol: false   # the same for the plain-HTTP port
  proxy_protocol_trusted: []   # the balancers' addresses (e.g. [10.0.0.5, 10.0.1.0/24]); only they may connect
  request_timeout_ms: 0        # a client waits at most this long (then 503 + Retry-After); 0 = directory.timeout_ms + 1000
  shutdown_grace_ms: 5000      # SIGTERM: in-flight requests get this long to finish
directory:
  mode: embedded               # embedded (a private slapd in <dir>/slapd) | external
  port: 0                      # embedded: TCP port for the directories of clones; 0 = unix socket only
  listen_address: 127.0.0.1    # embedded: address of that port
  suffix: o=pki-ca
  pool_size: 4
  timeout_ms: 3000
  mesh: true                   # embedded: replicate with every registered instance (false: agreements are yours)
  max_lag_ms: 10000            # /readyz fails while this directory is further behind a peer
  durability: group            # group: one fdatasync per batch of records, before any answer;
                               # per_write: slapd syncs every write; none: no sync (tests only)
  group_commit:
    max_batch: 64
    writers: 4                 # batches written in parallel: one syncs while another writes
crl:
  update_interval_seconds: 3600
  validity_seconds: 86400
  debounce_ms: 500             # a revocation shows in the CRL after this (plus generation; 1M entries: 0.5 s)
  generate: true
  lease_seconds: 30            # CRL master lease; when the master dies another instance takes over
  poll_ms: 2000                # master: other instances' revocations; others: a newer CRL to serve (also pushed)
  activation_delay_ms: 1000    # every instance serves a new CRL from this long after it is published (together)
ranges:
  replica_id: 1
  serial_range_size: 100000
  request_range_size: 100000
  low_water_mark: 20000
log:
  level: info
)",
                     fmt::arg("dir", instance_dir), fmt::arg("port", port),
                     fmt::arg("http_port", port == 8443 ? 8080 : port + 1));
}

}  // namespace ca::authority
