#include "authority/issuance/certificate_authority.hpp"

#include <algorithm>
#include <future>
#include <mutex>
#include <utility>

#include <arpa/inet.h>
#include <fmt/format.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "authority/access/one_time_secret.hpp"
#include "authority/issuance/csr_policy.hpp"
#include "authority/issuance/serial_text.hpp"
#include "authority/revocation/crl_partitions.hpp"
#include "core/caller_text.hpp"
#include "core/log.hpp"
#include "core/time_text.hpp"
#include "crypto/certificate_builder.hpp"
#include "crypto/csr.hpp"
#include "crypto/key_archive.hpp"
#include "crypto/keys.hpp"
#include "crypto/pem.hpp"
#include "crypto/pkcs12_bundle.hpp"

namespace ca::authority {

namespace {
constexpr std::string_view kLog = "authority";
constexpr std::string_view kVersion = "0.1.0";

// Who submitted a request, as far as is known before a profile judges it. Never the secret half
// of an enrollment code.
std::string submitter(const std::string& enrollment_code, const crypto::PeerCertificate& certificate) {
  if (!enrollment_code.empty()) {
    const auto dot = enrollment_code.find('.');
    return dot == std::string::npos || dot > 32 ? "an enrollment code"
                                                : "enrollment code " + enrollment_code.substr(0, dot);
  }
  if (!certificate.empty())
    return fmt::format("certificate 0x{} ('{}')", certificate.serial_hex(), certificate.subject_text());
  return "anonymous";
}

std::string issued_what(const EnrollmentResult& r) {
  return fmt::format("certificate 0x{} for '{}' (profile {}, request 0x{})", r.serial_hex, r.subject_dn, r.profile_id,
                     r.request_id_hex);
}

RangeState saved_state(const std::optional<store::ReplicaRecord>& r, bool serial) {
  RangeState s;
  if (!r) return s;
  s.current = serial ? r->serial_current : r->request_current;
  s.standby = serial ? r->serial_standby : r->request_standby;
  s.next = serial ? r->serial_next : r->request_next;
  s.high_water = serial ? r->serial_high_water : r->request_high_water;
  return s;
}
}  // namespace

Status persist_counters(store::CaStore& store, const InstanceConfig& config, const RangeAllocator* serials,
                        const RangeAllocator& requests) {
  // Serialised: two allocators may persist at once, and the record carries both.
  static std::mutex persist_mutex;
  std::lock_guard lock(persist_mutex);
  CA_TRY(auto existing, store.load_replica(config.ranges.replica_id));
  store::ReplicaRecord r = existing.value_or(store::ReplicaRecord{});
  r.replica_id = config.ranges.replica_id;
  r.instance_id = config.instance_id;
  r.url = fmt::format("https://{}:{}", config.server.address, config.server.port);
  if (serials) {
    auto s = serials->state();
    r.serial_current = s.current;
    r.serial_standby = s.standby;
    r.serial_next = s.next;
    r.serial_high_water = std::max(r.serial_high_water, s.high_water);
  }
  auto q = requests.state();
  r.request_current = q.current;
  r.request_standby = q.standby;
  r.request_next = q.next;
  r.request_high_water = std::max(r.request_high_water, q.high_water);
  return store.save_replica(r);
}

CertificateAuthority::CertificateAuthority(const InstanceConfig& config, store::CaStore& store)
    : config_(config), store_(store) {}

CertificateAuthority::~CertificateAuthority() {
  if (serials_) serials_->wait_idle();
  if (requests_) requests_->wait_idle();
}

Result<std::unique_ptr<CertificateAuthority>> CertificateAuthority::open(const InstanceConfig& config,
                                                                         store::CaStore& store) {
  std::unique_ptr<CertificateAuthority> ca(new CertificateAuthority(config, store));
  CA_TRY(auto issuer, crypto::Issuer::open(config.cert_file("ca_signing"), config.key_uri("ca_signing")));
  ca->issuer_.emplace(std::move(issuer));
  ca->ca_cert_pem_ = crypto::certificate_to_pem(ca->issuer_->certificate());
  ca->ca_subject_ = crypto::name_to_string(X509_get_subject_name(ca->issuer_->certificate()));
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(ca->issuer_->certificate()), &tm) == 1) ca->ca_not_after_ = from_utc_tm(tm);
  CA_CHECK(ca->reload_profiles());
  ca->agents_ = std::make_unique<AgentAuthenticator>(store, ca->issuer_->certificate(), kAgentRole);
  ca->administrators_ = std::make_unique<AgentAuthenticator>(store, ca->issuer_->certificate(), kAdministratorRole);
  ca->auditors_ = std::make_unique<AgentAuthenticator>(store, ca->issuer_->certificate(), kAuditorRole);
  ca->authenticators_.emplace(make_enrollment_authenticators(store, ca->issuer_->certificate()));
  if (!config.ca.key_blocklist_file.empty()) {
    CA_TRY(ca->key_policy_.blocked_spki_sha256, crypto::load_spki_blocklist(config.ca.key_blocklist_file));
    log::info(kLog, "{} blocked public key(s) from {}", ca->key_policy_.blocked_spki_sha256.size(),
              config.ca.key_blocklist_file.string());
  }

  CA_TRY(auto replica, store.load_replica(config.ranges.replica_id));
  if (!replica)
    return fail(Error::config(fmt::format("replica {} is not registered in the directory; run 'ca-server init' first",
                                          config.ranges.replica_id)));
  if (replica->retired)
    return fail(Error::config(fmt::format("replica {} was retired; its ID is never reused", config.ranges.replica_id)));
  const auto& r = config.ranges;
  if (config.ca.serial_generator == SerialGenerator::ranges) {
    ca->serials_ = std::make_unique<RangeAllocator>(store, store::RangeKind::serial, r.replica_id, config.instance_id,
                                                    r.serial_range_size, r.low_water_mark);
    CA_CHECK(ca->serials_->restore(saved_state(replica, true)));
  }
  ca->requests_ = std::make_unique<RangeAllocator>(store, store::RangeKind::request, r.replica_id, config.instance_id,
                                                   r.request_range_size, r.low_water_mark);
  CA_CHECK(ca->requests_->restore(saved_state(replica, false)));
  auto* raw = ca.get();
  auto persist = [raw, &store, config]() {
    return persist_counters(store, config, raw->serials_.get(), *raw->requests_);
  };
  if (ca->serials_) ca->serials_->on_change(persist);
  ca->requests_->on_change(persist);
  store.set_checkpoint_source([raw, rid = r.replica_id]() {
    return store::CounterCheckpoint{rid, raw->serials_ ? raw->serials_->checkpoint() : 0, raw->requests_->checkpoint()};
  });
  log::info(kLog, "CA '{}' ready: replica {}, {} profile(s), serials from {}", ca->ca_subject_, r.replica_id,
            ca->profiles_.size(), config.ca.serial_generator == SerialGenerator::ranges ? "ranges" : "CSPRNG");
  return ca;
}

Status CertificateAuthority::reload_profiles() {
  CA_TRY(auto records, store_.list_profiles());
  std::map<std::string, Profile> loaded;
  for (const auto& rec : records) {
    auto p = parse_profile_text(rec.id, rec.definition_yaml, fmt::format("directory profile {}", rec.id));
    if (!p) {
      log::error(kLog, "profile {} in the directory is invalid and is skipped: {}", rec.id, p.error().message);
      continue;
    }
    p->enabled = p->enabled && rec.enabled;
    loaded.emplace(rec.id, std::move(*p));
  }
  std::unique_lock lock(profiles_mutex_);
  profiles_ = std::move(loaded);
  return ok();
}

std::vector<Profile> CertificateAuthority::profiles() const {
  std::shared_lock lock(profiles_mutex_);
  std::vector<Profile> out;
  out.reserve(profiles_.size());
  for (const auto& [id, p] : profiles_) out.push_back(p);
  return out;
}

Result<std::string> CertificateAuthority::next_serial_hex() {
  if (serials_) {
    CA_TRY(uint64_t n, serials_->next_number());
    uint64_t random_bits = 0;
    if (RAND_bytes(reinterpret_cast<unsigned char*>(&random_bits), sizeof random_bits) != 1)
      return fail(Error::crypto("the CSPRNG failed"));
    return store::compose_serial_hex(n, random_bits);
  }
  // Random: 127 bits from the CSPRNG (positive, far above the 64 bits CAs are asked for),
  // checked against the directory so that a collision can never be issued.
  for (int attempt = 0; attempt < 5; ++attempt) {
    CA_TRY(std::string hex, random_serial_hex());
    CA_TRY(bool taken, store_.certificate_exists(hex));
    if (!taken) return hex;
  }
  return fail(Error::internal("could not find a free random serial number"));
}

Result<Profile> CertificateAuthority::find_profile(const std::string& profile_id) {
  auto lookup = [&]() -> std::optional<Profile> {
    std::shared_lock lock(profiles_mutex_);
    auto it = profiles_.find(profile_id);
    if (it == profiles_.end()) return std::nullopt;
    return it->second;
  };
  if (auto p = lookup()) return *p;
  // Perhaps added on another instance since we last looked: re-read the directory (at most once
  // a second, so unknown names cannot make us hammer it).
  auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  auto last = last_profile_reload_.load();
  if (now - last > std::chrono::steady_clock::duration(std::chrono::seconds(1)).count() &&
      last_profile_reload_.compare_exchange_strong(last, now)) {
    if (auto st = reload_profiles(); !st) log::warn(kLog, "re-reading the profiles failed: {}", st.error().message);
  }
  if (auto p = lookup()) return *p;
  std::shared_lock lock(profiles_mutex_);
  std::string known;
  for (const auto& [id, p] : profiles_) known += (known.empty() ? "" : ", ") + id;
  return fail(Error::bad_request(fmt::format("unknown profile '{}' (known: {})", profile_id.substr(0, 64), known)));
}

Result<CertificateAuthority::Issued> CertificateAuthority::sign(const Profile& profile, const IssuancePlan& plan,
                                                                const crypto::ParsedCsr& csr,
                                                                const std::string& request_id_hex,
                                                                std::chrono::system_clock::time_point now) {
  CA_TRY(std::string serial, next_serial_hex());
  crypto::CertificateSpec spec;
  spec.serial_hex = serial;
  spec.subject = plan.subject.get();
  spec.public_key = csr.public_key.get();
  spec.not_before = plan.not_before;
  // A certificate never outlives its issuer (RFC 5280 path validation would reject it later).
  spec.not_after = std::min(plan.not_after, ca_not_after_);
  spec.key_usage = plan.key_usage;
  spec.extended_key_usage = plan.extended_key_usage;
  spec.dns_names = plan.dns_names;
  spec.ip_addresses = plan.ip_addresses;
  spec.emails = plan.emails;
  point_to_crls(spec, config_.public_base_url(), serial, static_cast<std::size_t>(config_.crl.partitions));
  spec.ocsp_url = config_.public_base_url() + "/ocsp";
  CA_TRY(auto cert, issuer_->sign_certificate(spec));

  Issued out;
  auto& record = out.record;
  record.serial_hex = serial;
  record.subject_dn = crypto::name_to_string(X509_get_subject_name(cert.get()));
  record.issuer_dn = ca_subject_;
  record.not_before = plan.not_before;
  record.not_after = spec.not_after;
  record.issued_at = now;
  record.profile_id = profile.id;
  record.request_id_hex = request_id_hex;
  record.replica_id = config_.ranges.replica_id;
  record.issued_by = config_.instance_id;
  record.der = crypto::certificate_to_der(cert.get());
  out.certificate_pem = crypto::certificate_to_pem(cert.get());
  return out;
}

namespace {

std::string pem_of_csr(const std::vector<uint8_t>& der) {
  std::string b64(4 * ((der.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()), der.data(), static_cast<int>(der.size()));
  b64.resize(static_cast<std::size_t>(std::max(n, 0)));
  std::string out = "-----BEGIN CERTIFICATE REQUEST-----\n";
  for (std::size_t i = 0; i < b64.size(); i += 64) out += b64.substr(i, 64) + "\n";
  return out + "-----END CERTIFICATE REQUEST-----\n";
}

// approval_changes: one change a line ("validity_days=30", "dns=a.example.com", ...).
std::string encode_changes(const IssuanceOverrides& o) {
  std::string out;
  if (o.validity_days) out += fmt::format("validity_days={}\n", *o.validity_days);
  auto list = [&](const char* key, const std::optional<std::vector<std::string>>& values) {
    if (!values) return;
    if (values->empty()) out += fmt::format("{}=\n", key);
    for (const auto& v : *values) out += fmt::format("{}={}\n", key, v);
  };
  list("dns", o.dns_names);
  list("ip", o.ip_addresses);
  list("email", o.emails);
  return out;
}

Result<IssuanceOverrides> decode_changes(std::string_view text) {
  IssuanceOverrides o;
  while (!text.empty()) {
    auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.empty()) continue;
    auto eq = line.find('=');
    if (eq == std::string_view::npos)
      return fail(Error::directory(fmt::format("approval change '{}' is malformed", line)));
    std::string key(line.substr(0, eq)), value(line.substr(eq + 1));
    auto add = [&](std::optional<std::vector<std::string>>& list) {
      if (!list) list.emplace();
      if (!value.empty()) list->push_back(value);
    };
    if (key == "validity_days")
      o.validity_days = std::atoi(value.c_str());
    else if (key == "dns")
      add(o.dns_names);
    else if (key == "ip")
      add(o.ip_addresses);
    else if (key == "email")
      add(o.emails);
    else
      return fail(Error::directory(fmt::format("approval change '{}' is unknown", key)));
  }
  return o;
}

}  // namespace

Result<std::string> CertificateAuthority::generate_for(const Profile& profile, EnrollmentInput& input,
                                                       std::shared_ptr<Archival>& archival) {
  if (!profile.archival.server_keygen)
    return fail(Error::forbidden(fmt::format("profile {} does not allow server-side key generation", profile.id)));
  if (!input.csr_pem.empty())
    return fail(Error::bad_request("server-side key generation makes the key and the request: send no CSR"));
  if (!input.key_as_pkcs8 && (input.pkcs12_password.size() < 8 || input.pkcs12_password.size() > 1024))
    return fail(Error::bad_request("server-side key generation needs a pkcs12_password of 8 to 1024 characters"));
  if (input.subject_dn.empty()) return fail(Error::bad_request("server-side key generation needs a subject"));
  std::vector<std::string> alt_names;
  alt_names.reserve(input.dns_names.size());
  for (const auto& d : input.dns_names) alt_names.push_back("DNS:" + d);
  for (const auto& ip : input.ip_addresses) alt_names.push_back("IP:" + ip);
  for (const auto& m : input.emails) alt_names.push_back("email:" + m);
  CA_TRY(KeyType type, parse_key_type(profile.archival.key_type));
  archival = std::make_shared<Archival>();
  CA_TRY(archival->key, crypto::generate_key(type));
  archival->how = fmt::format("server-side key generation on {}", config_.instance_id);
  archival->pkcs12_password = input.key_as_pkcs8 ? std::string() : input.pkcs12_password;
  archival->return_pkcs8 = input.key_as_pkcs8;
  return crypto::make_csr_pem(archival->key.get(), input.subject_dn, alt_names);
}

void CertificateAuthority::set_audit_log(AuditLog* audit) {
  refusals_.reset();
  audit_ = audit;
  if (audit_)
    refusals_ = std::make_unique<RefusalSummary>(
        *audit_, RefusalSummaryOptions{.interval = std::chrono::milliseconds(config_.ca.refusal_summary_ms)});
  agents_->set_audit_log(audit);
  administrators_->set_audit_log(audit);
  auditors_->set_audit_log(audit);
}

void CertificateAuthority::audit(std::string_view event, std::string_view who, std::string_view what,
                                 std::string_view outcome) const {
  if (audit_) audit_->record(event, who, what, outcome);
}

void CertificateAuthority::audit_then(std::string_view event, std::string_view who, std::string_view what,
                                      std::string_view outcome, std::function<void()> answer) const {
  if (!audit_) return answer();
  audit_->record_then(event, who, what, outcome, std::move(answer));
}

CertificateAuthority::EnrollmentCallback CertificateAuthority::audit_refusals(std::string event, std::string who,
                                                                              std::string what,
                                                                              bool caller_authenticated,
                                                                              std::string client_address,
                                                                              EnrollmentCallback done) const {
  if (!audit_) return done;
  const bool counted = !caller_authenticated && refusals_;
  return [this, event = std::move(event), who = std::move(who), what = std::move(what), counted,
          client_address = std::move(client_address), done = std::move(done)](Result<EnrollmentResult> result) {
    if (result) return done(std::move(result));
    if (counted) {
      refusals_->count(event, error_code_name(result.error().code),
                       client_address.empty() ? "unknown" : client_address);
      return done(std::move(result));
    }
    // Refusals mostly happen on the caller's thread (a worker), which may wait for the disk; the
    // few that come from a store callback (a failed commit) are rare enough to wait there too.
    audit(event, who, what,
          fmt::format("{}: {}", error_code_name(result.error().code), caller_text(result.error().message, 256)));
    done(std::move(result));
  };
}

void CertificateAuthority::enroll(EnrollmentInput input, EnrollmentCallback done) {
  done = audit_refusals("enrollment_rejected", submitter(input.enrollment_code, input.peer.certificate),
                        input.profile_id.empty() ? std::string("enrollment (profile of the presented certificate)")
                                                 : "enrollment under profile " + caller_text(input.profile_id),
                        !input.peer.certificate.empty(), input.peer.address, std::move(done));
  auto reject = [&](Error e) { done(std::unexpected(std::move(e))); };
  std::shared_ptr<Archival> archival;
  if (input.server_keygen || !input.key_envelope.empty()) {
    if (!key_archive_ || !key_archive_->enabled())
      return reject(
          Error::unavailable("key archival is off on this instance: it has no storage key (run `ca-server init`)"));
    if (input.server_keygen && !input.key_envelope.empty())
      return reject(Error::bad_request("send either server_keygen or key_envelope, not both"));
    if (input.renewal_only) return reject(Error::bad_request("key archival is not part of re-enrollment"));
  }
  if (input.server_keygen) {
    auto profile = find_profile(input.profile_id);
    if (!profile) return reject(profile.error());
    // Key generation costs: nobody gets it who could not be issued at once (checked in full later).
    if (input.enrollment_code.empty() && input.peer.certificate.empty() && !profile->accepts("none"))
      return reject(Error::unauthorized(fmt::format(
          "server-side key generation under profile {} needs an enrollment code or the holder's certificate",
          profile->id)));
    auto csr_pem = generate_for(*profile, input, archival);
    if (!csr_pem) return reject(csr_pem.error());
    input.csr_pem = std::move(*csr_pem);
  }
  // Decode and validate: nothing about the requester is looked at before the request is sound.
  auto csr = crypto::parse_csr_pem(input.csr_pem);
  if (!csr) return reject(csr.error());
  if (input.renewal_only) {
    // Re-enrollment: the presented certificate must be valid here before anything else is judged.
    auto presented = check_presented_certificate(store_, issuer_->certificate(), input.peer.certificate,
                                                 "the holder of a certificate of this CA");
    if (!presented) return reject(presented.error());
    if (input.profile_id.empty()) input.profile_id = presented->record.profile_id;
  }
  auto profile = find_profile(input.profile_id);
  if (!profile) return reject(profile.error());
  if (auto quality = crypto::check_key_quality(csr->public_key.get(), key_policy_); !quality)
    return reject(quality.error());
  auto plan = apply_profile(*profile, *csr, std::chrono::system_clock::now());
  if (!plan) return reject(plan.error());
  if (!input.key_envelope.empty()) {
    if (!profile->archival.client_keys)
      return reject(Error::forbidden(fmt::format("profile {} does not archive keys clients send", profile->id)));
    auto key = key_archive_->open_envelope(input.key_envelope);
    if (!key) return reject(key.error());
    if (!crypto::keys_match(key->get(), csr->public_key.get()))
      return reject(Error::bad_request("the key in the envelope is not the key of the CSR"));
    archival = std::make_shared<Archival>();
    archival->key = std::move(*key);
    archival->how = fmt::format("client envelope to the transport certificate, on {}", config_.instance_id);
  }
  authorize(*profile, *csr, *plan, input, "enrollment", std::move(done), archival);
}

void CertificateAuthority::renew(RenewalInput input, EnrollmentCallback done) {
  done = audit_refusals("enrollment_rejected", submitter(input.enrollment_code, input.peer.certificate),
                        fmt::format("renewal of certificate 0x{}", input.serial_hex.substr(0, 64)),
                        !input.peer.certificate.empty(), input.peer.address, std::move(done));
  auto reject = [&](Error e) { done(std::unexpected(std::move(e))); };
  auto old = store_.find_certificate(input.serial_hex);
  if (!old) {
    if (old.error().is(ErrorCode::not_found))
      return reject(Error::not_found(fmt::format("no certificate with serial 0x{} was issued here", input.serial_hex)));
    return reject(old.error());
  }
  if (old->status != "VALID")
    return reject(Error::forbidden(
        fmt::format("certificate 0x{} is {}: only a valid certificate can be renewed", old->serial_hex, old->status)));
  auto cert = crypto::parse_certificate_der(old->der);
  if (!cert) return reject(cert.error());
  auto csr = crypto::request_from_certificate(cert->get());
  if (!csr) return reject(csr.error());
  EnrollmentInput credentials;
  credentials.profile_id = input.profile_id.empty() ? old->profile_id : input.profile_id;
  credentials.enrollment_code = std::move(input.enrollment_code);
  credentials.peer = std::move(input.peer);
  auto profile = find_profile(credentials.profile_id);
  if (!profile) return reject(profile.error());
  if (auto quality = crypto::check_key_quality(csr->public_key.get(), key_policy_); !quality)
    return reject(quality.error());
  auto plan = apply_profile(*profile, *csr, std::chrono::system_clock::now());
  if (!plan) return reject(plan.error());
  log::info(kLog, "renewal of certificate 0x{} ('{}') under profile {}", old->serial_hex, old->subject_dn, profile->id);
  authorize(*profile, *csr, *plan, credentials, "renewal", std::move(done));
}

void CertificateAuthority::authorize(const Profile& profile, const crypto::ParsedCsr& csr, const IssuancePlan& plan,
                                     const EnrollmentInput& input, const std::string& type, EnrollmentCallback done,
                                     const std::shared_ptr<Archival>& archival) {
  auto reject = [&](Error e) { done(std::unexpected(std::move(e))); };
  // A key to archive never waits in the queue: nobody would be there to take it when it is issued.
  const Error queued_key = Error::forbidden(
      "key archival needs immediate issuance (an enrollment code, the holder's certificate, or an open profile); "
      "this request would wait for an agent");
  if (!profile.role.empty()) {
    // Anyone may ask for a role certificate (the future holder sends their own CSR); it waits for
    // an administrator who is neither its subject nor its requester. A role holder who submits is
    // recorded as the requester, so they cannot approve it themselves.
    if (archival) return reject(queued_key);
    std::string requester = "anonymous";
    if (!input.peer.certificate.empty()) {
      for (auto* holders : {administrators_.get(), agents_.get(), auditors_.get()}) {
        auto holder = holders->identify(input.peer.certificate);
        if (!holder) return reject(holder.error());
        if (*holder) {
          requester = (*holder)->requester();
          break;
        }
      }
    }
    if (input.repeat_finds_earlier && answer_repeat(profile, csr, done)) return;
    return store_pending(profile, csr, plan, requester, type, std::move(done));
  }
  const Admission admission =
      authenticators_->admit({profile, plan, input.peer, input.enrollment_code, input.renewal_only});
  switch (admission.decision) {
    case Admission::Decision::issue:
      return issue_now(profile, csr, plan, admission.who, admission.code_id, admission.by, type, std::move(done),
                       archival);
    case Admission::Decision::queue:
      if (archival) return reject(queued_key);
      if (input.repeat_finds_earlier && answer_repeat(profile, csr, done)) return;
      return store_pending(profile, csr, plan, admission.who, type, std::move(done));
    case Admission::Decision::refuse:
    case Admission::Decision::pass:
      break;
  }
  reject(admission.error.value_or(Error::unauthorized("no authenticator admitted the request")));
}

bool CertificateAuthority::answer_repeat(const Profile& profile, const crypto::ParsedCsr& csr,
                                         EnrollmentCallback& done) {
  store::RequestQuery q;
  q.subject_dn = csr.subject_text;
  q.profile_id = profile.id;
  q.size = 1000;
  auto page = store_.list_requests(q);
  if (!page) {
    done(std::unexpected(page.error()));
    return true;
  }
  // The newest request with these exact bytes: request ids grow, the page is in id order.
  for (auto it = page->entries.rbegin(); it != page->entries.rend(); ++it) {
    store::RequestRecord& r = *it;
    if (r.csr_der != csr.der || r.type != "enrollment") continue;
    EnrollmentResult result{r.id_hex, r.state, "", "", r.subject_dn, r.profile_id, "", "agent_approval"};
    if (r.state == "rejected") {
      done(std::unexpected(
          Error::forbidden(fmt::format("request 0x{} for this CSR was rejected ({}); make a new key and "
                                       "request",
                                       r.id_hex, r.result))));
      return true;
    }
    if (r.state == "pending" || (r.state == "approved" && r.replica_id != config_.ranges.replica_id)) {
      done(std::move(result));
      return true;
    }
    if (r.state == "approved") {
      issue_approved(r, std::move(done));
      return true;
    }
    if (r.state == "complete" && !r.serial_hex.empty()) {
      auto c = store_.find_certificate(r.serial_hex);
      if (!c) {
        done(std::unexpected(c.error()));
        return true;
      }
      auto cert = crypto::parse_certificate_der(c->der);
      if (!cert) {
        done(std::unexpected(cert.error()));
        return true;
      }
      result.serial_hex = r.serial_hex;
      result.certificate_pem = crypto::certificate_to_pem(cert->get());
      done(std::move(result));
      return true;
    }
  }
  return false;
}

Result<crypto::ParsedCsr> CertificateAuthority::requested(const store::RequestRecord& request) {
  if (request.type != "renewal") return crypto::parse_csr_pem(pem_of_csr(request.csr_der));
  CA_TRY(auto cert, crypto::parse_certificate_der(request.csr_der));
  return crypto::request_from_certificate(cert.get());
}

void CertificateAuthority::store_pending(const Profile& profile, const crypto::ParsedCsr& csr, const IssuancePlan& plan,
                                         std::string requester, const std::string& type, EnrollmentCallback done) {
  auto request_number = requests_->next_number();
  if (!request_number) return done(std::unexpected(request_number.error()));
  auto secret = random_hex(16);
  if (!secret) return done(std::unexpected(secret.error()));
  auto secret_hash = hash_secret(*secret);
  if (!secret_hash) return done(std::unexpected(secret_hash.error()));
  auto now = std::chrono::system_clock::now();
  store::RequestRecord request;
  request.id_hex = fmt::format("{:x}", *request_number);
  request.type = type;
  request.state = "pending";
  request.profile_id = profile.id;
  request.csr_der = csr.der;
  request.subject_dn = crypto::name_to_string(plan.subject.get());
  request.created_at = request.modified_at = now;
  request.result = "waiting for an agent";
  request.replica_id = config_.ranges.replica_id;
  request.instance_id = config_.instance_id;
  request.secret_hash = *secret_hash;
  request.requester = requester;
  EnrollmentResult result{request.id_hex, "pending", "", "", request.subject_dn, profile.id, *secret, "agent_approval"};
  store_.commit_enrollment(std::move(request), std::nullopt,
                           [this, done = std::move(done), result = std::move(result), requester](Status st) mutable {
                             if (!st) return done(std::unexpected(st.error()));
                             log::info(kLog, "request 0x{} for '{}' (profile {}, from {}) waits for an agent",
                                       result.request_id_hex, result.subject_dn, result.profile_id, requester);
                             audit_then("request_queued", requester,
                                        fmt::format("request 0x{} for '{}' (profile {})", result.request_id_hex,
                                                    result.subject_dn, result.profile_id),
                                        "waiting for an agent", [done, result]() mutable { done(std::move(result)); });
                           });
}

// Spent twice over: in its home directory (a claim: once in the whole cluster, refused while the
// home cannot be reached), then in this directory's record (unused -> used, what listings show).
Result<std::optional<HeldClaim>> CertificateAuthority::spend_enrollment_code(const std::string& code_id,
                                                                             const std::string& request_id) {
  std::optional<HeldClaim> claim;
  if (claims_) {
    auto claimed = claims_->claim(ClaimKind::enrollment_code, code_id);
    if (!claimed) {
      if (claimed.error().is(ErrorCode::conflict))
        return fail(Error::forbidden("this enrollment code was already used"));
      return fail(claimed.error());
    }
    claim = std::move(*claimed);
  }
  if (auto st = store_.consume_enrollment_code(code_id, request_id); !st) {
    if (claim) claims_->release(*claim);
    return fail(st.error());
  }
  return claim;
}

store::RequestRecord CertificateAuthority::issued_request_record(const std::string& request_id, const std::string& type,
                                                                 const Profile& profile, const crypto::ParsedCsr& csr,
                                                                 const store::CertificateRecord& issued,
                                                                 std::chrono::system_clock::time_point now) const {
  store::RequestRecord request;
  request.id_hex = request_id;
  request.type = type;
  request.state = "complete";
  request.profile_id = profile.id;
  request.csr_der = csr.der;
  request.serial_hex = issued.serial_hex;
  request.subject_dn = issued.subject_dn;
  request.created_at = request.modified_at = now;
  request.result = "issued";
  request.replica_id = config_.ranges.replica_id;
  request.instance_id = config_.instance_id;
  return request;
}

Status CertificateAuthority::add_key_packages(const Archival& archival, const Issued& issued,
                                              EnrollmentResult& result) const {
  if (!archival.pkcs12_password.empty()) {
    CA_TRY(auto cert, crypto::parse_certificate_der(issued.record.der));
    std::vector<crypto::Pkcs12Item> items(2);
    items[0].friendly_name = issued.record.subject_dn;
    items[0].cert = std::move(cert);
    items[0].key = ossl::up_ref(archival.key.get());
    items[1].friendly_name = "CA";
    items[1].cert = ossl::up_ref(issuer_->certificate());
    CA_TRY(result.pkcs12,
           crypto::encode_pkcs12(items, archival.pkcs12_password, crypto::Pkcs12Options{crypto::kMinPkcs12Iterations}));
  }
  if (archival.return_pkcs8) {
    CA_TRY(result.private_key_pkcs8, crypto::private_key_pkcs8_der(archival.key.get()));
  }
  return ok();
}

void CertificateAuthority::issue_now(const Profile& profile, const crypto::ParsedCsr& csr, const IssuancePlan& plan,
                                     const std::string& requester, const std::string& code_id,
                                     std::string authenticated_by, const std::string& type, EnrollmentCallback done,
                                     const std::shared_ptr<Archival>& archival) {
  auto request_number = requests_->next_number();
  if (!request_number) return done(std::unexpected(request_number.error()));
  std::string request_id = fmt::format("{:x}", *request_number);
  // The code is spent before anything is signed: two requests presenting it at once get one
  // certificate. It is given back if the certificate cannot be recorded.
  std::optional<HeldClaim> code_claim;
  if (!code_id.empty()) {
    auto spent = spend_enrollment_code(code_id, request_id);
    if (!spent) return done(std::unexpected(spent.error()));
    code_claim = std::move(*spent);
  }
  // Runs on the group-commit writers too: the claim is given back from the claims' own thread.
  auto release = [this, code_id, code_claim] {
    if (code_id.empty()) return;
    if (auto st = store_.release_enrollment_code(code_id); !st)
      log::warn(kLog, "enrollment code {} stays spent after a failed enrollment: {}", code_id, st.error().message);
    if (code_claim) claims_->release_later(*code_claim);
  };
  auto secret = random_hex(16);
  auto secret_hash = secret ? hash_secret(*secret) : Result<std::string>(fail(secret.error()));
  auto now = std::chrono::system_clock::now();
  auto issued = secret_hash ? sign(profile, plan, csr, request_id, now) : Result<Issued>(fail(secret_hash.error()));
  if (!issued) {
    release();
    return done(std::unexpected(issued.error()));
  }
  store::RequestRecord request = issued_request_record(request_id, type, profile, csr, issued->record, now);
  request.secret_hash = *secret_hash;
  request.requester = requester;
  EnrollmentResult result{
      request_id, "complete", issued->record.serial_hex,  issued->certificate_pem, issued->record.subject_dn,
      profile.id, *secret,    std::move(authenticated_by)};
  if (archival) {
    // Sealed and packaged before anything is written: a failure here leaves no record.
    auto record = key_archive_->seal(archival->key.get(), issued->record.serial_hex, issued->record.subject_dn,
                                     request_id, archival->how);
    if (!record) {
      release();
      return done(std::unexpected(record.error()));
    }
    result.archived_key_id = record->key_id;
    if (Status packaged = add_key_packages(*archival, *issued, result); !packaged) {
      release();
      return done(std::unexpected(packaged.error()));
    }
    std::string what = fmt::format("key {} of certificate 0x{} ('{}'), {} {}-bit, request 0x{}", record->key_id,
                                   record->serial_hex, record->owner, record->algorithm, record->size_bits, request_id);
    std::string how = archival->how;
    const std::string& who = requester;
    return store_.commit_enrollment_with_key(
        std::move(request), std::move(issued->record), std::move(*record),
        [this, done = std::move(done), result = std::move(result), release, what, how, who](Status st) mutable {
          if (!st) {
            release();
            key_archive_->audit("key_archival_failed", who, what, st.error().message);
            return done(std::unexpected(st.error()));
          }
          key_archive_->audit("key_archived", who, what, how);
          audit_then("certificate_issued", who, issued_what(result),
                     "issued; authenticated by " + result.authenticated_by,
                     [done, result]() mutable { done(std::move(result)); });
        });
  }
  store_.commit_enrollment(
      std::move(request), std::move(issued->record),
      [this, done = std::move(done), result = std::move(result), release, requester](Status st) mutable {
        if (!st) {
          log::warn(kLog, "enrollment of serial 0x{} not recorded: {}", result.serial_hex, st.error().message);
          release();
          return done(std::unexpected(st.error()));
        }
        log::debug(kLog, "issued serial 0x{} to '{}' (profile {}, request 0x{}, {})", result.serial_hex,
                   result.subject_dn, result.profile_id, result.request_id_hex, result.authenticated_by);
        audit_then("certificate_issued", requester, issued_what(result),
                   "issued; authenticated by " + result.authenticated_by,
                   [done, result]() mutable { done(std::move(result)); });
      });
}

void CertificateAuthority::approve(std::string_view id_hex, const AgentIdentity& agent,
                                   const IssuanceOverrides& changes, EnrollmentCallback done) {
  done = audit_refusals("request_approval_failed", agent.display(), fmt::format("request 0x{}", id_hex.substr(0, 64)),
                        true, "", std::move(done));
  auto reject = [&](Error e) { done(std::unexpected(std::move(e))); };
  auto request = store_.find_request(id_hex);
  if (!request) return reject(request.error());
  if (request->state != "pending")
    return reject(Error::conflict(fmt::format("request 0x{} is {}, not pending", request->id_hex, request->state)));
  auto profile = find_profile(request->profile_id);
  if (!profile) return reject(profile.error());
  auto csr = requested(*request);
  if (!csr) return reject(csr.error());
  // The changes must pass the profile like the original request did; refused before any write.
  auto plan = apply_profile(*profile, *csr, std::chrono::system_clock::now(), changes);
  if (!plan) return reject(plan.error());
  if (auto duty = check_approver(*profile, *request, *csr, plan->subject_text, agent); !duty)
    return reject(duty.error());
  std::string encoded = encode_changes(changes);
  store::RequestTransition t{"approved", agent.display(), encoded, "approved by " + agent.display()};
  if (auto st = store_.transition_request(request->id_hex, "pending", t); !st) return reject(st.error());
  log::info(kLog, "request 0x{} ('{}', profile {}) approved by {}", request->id_hex, request->subject_dn, profile->id,
            agent.display());
  audit("request_approved", agent.display(),
        fmt::format("request 0x{} for '{}' (profile {})", request->id_hex, request->subject_dn, profile->id),
        encoded.empty() ? std::string("approved as requested") : "approved with changes " + encoded);
  request->state = "approved";
  request->approved_by = agent.display();
  request->approval_changes = encoded;
  if (request->replica_id == config_.ranges.replica_id) return issue_approved(*request, std::move(done));
  // Only the instance that received the request issues it: two approvals on two directory servers
  // that have not replicated yet can both succeed, but they never make two certificates.
  done(EnrollmentResult{request->id_hex, "approved", "", "", request->subject_dn, profile->id, "", "agent_approval"});
}

void CertificateAuthority::issue_approved(const store::RequestRecord& request, EnrollmentCallback done) {
  auto reject = [&](Error e) { done(std::unexpected(std::move(e))); };
  auto profile = find_profile(request.profile_id);
  if (!profile) return reject(profile.error());
  auto csr = requested(request);
  if (!csr) return reject(csr.error());
  auto changes = decode_changes(request.approval_changes);
  if (!changes) return reject(changes.error());
  auto now = std::chrono::system_clock::now();
  auto plan = apply_profile(*profile, *csr, now, *changes);
  if (!plan) return reject(plan.error());
  auto issued = sign(*profile, *plan, *csr, request.id_hex, now);
  if (!issued) return reject(issued.error());
  std::optional<std::pair<std::string, std::string>> member;
  if (auto role = role_named(profile->role)) {
    const unsigned char* p = issued->record.der.data();
    ossl::UniquePtr<X509> cert(d2i_X509(nullptr, &p, static_cast<long>(issued->record.der.size())));
    member.emplace(std::string(role->group), certificate_member_value(cert.get()));
  }
  EnrollmentResult result{
      request.id_hex, "complete", issued->record.serial_hex, issued->certificate_pem, issued->record.subject_dn,
      profile->id,    "",         "agent_approval"};
  bool agent = member.has_value();
  const std::string new_holder = agent ? fmt::format(" (a new {})", profile->role) : std::string();
  store_.commit_approved_request(
      request, std::move(issued->record), std::move(member),
      [this, done = std::move(done), result = std::move(result), agent, id = request.id_hex,
       approved_by = request.approved_by, new_holder](Status st) mutable {
        if (st) {
          log::info(kLog, "approved request 0x{} issued: serial 0x{} for '{}'{}", id, result.serial_hex,
                    result.subject_dn, new_holder);
          return audit_then("certificate_issued", "approved by " + approved_by, issued_what(result),
                            agent ? "issued after approval: a new" + new_holder.substr(7, new_holder.size() - 8)
                                  : std::string("issued after approval"),
                            [done, result]() mutable { done(std::move(result)); });
        }
        if (!st.error().is(ErrorCode::conflict)) return done(std::unexpected(st.error()));
        // Another thread of this instance issued it first: answer with what it issued.
        auto now_stored = store_.find_request(id);
        if (!now_stored) return done(std::unexpected(now_stored.error()));
        EnrollmentResult r{id, now_stored->state,      now_stored->serial_hex,
                           "", now_stored->subject_dn, now_stored->profile_id,
                           "", "agent_approval"};
        if (!now_stored->serial_hex.empty()) {
          if (auto c = store_.find_certificate(now_stored->serial_hex)) {
            const unsigned char* p = c->der.data();
            ossl::UniquePtr<X509> cert(d2i_X509(nullptr, &p, static_cast<long>(c->der.size())));
            if (cert) r.certificate_pem = crypto::certificate_to_pem(cert.get());
          }
        }
        done(std::move(r));
      });
}

Result<AgentIdentity> CertificateAuthority::authenticate_approver(const crypto::PeerCertificate& peer,
                                                                  std::string_view call) {
  // An agent first (the common case); a certificate that is no agent's may be an administrator's.
  auto agent = agents_->identify(peer);
  if (!agent) return fail(agent.error());
  if (*agent) return agents_->authenticate(peer, call);
  return administrators_->authenticate(peer, call);
}

// Certificate requests are decided by agents; role certificates by administrators.
Status CertificateAuthority::check_decider(const Profile& profile, const AgentIdentity& decider) const {
  if (profile.role.empty()) {
    if (decider.role != kAgentRole.name)
      return fail(Error::forbidden(fmt::format("requests for profile {} are decided by agents; {} is an {}", profile.id,
                                               decider.display(), decider.role)));
    return ok();
  }
  if (decider.role != kAdministratorRole.name)
    return fail(
        Error::forbidden(fmt::format("profile {} issues {} certificates: only an administrator may decide on "
                                     "it, and {} is an {}",
                                     profile.id, profile.role, decider.display(), decider.role)));
  return ok();
}

// Separation of duties for role certificates: the approving administrator is neither the subject
// (no one grants their own identity a role) nor the requester, and the key to certify is not the
// approver's own.
Status CertificateAuthority::check_approver(const Profile& profile, const store::RequestRecord& request,
                                            const crypto::ParsedCsr& csr, const std::string& issued_subject,
                                            const AgentIdentity& approver) {
  CA_CHECK(check_decider(profile, approver));
  if (profile.role.empty()) return ok();
  auto same = [](std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
             return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
  };
  if (same(approver.identity(), issued_subject) || same(approver.identity(), request.subject_dn))
    return fail(
        Error::forbidden(fmt::format("{} cannot approve a {} certificate for its own identity '{}': another "
                                     "administrator must",
                                     approver.display(), profile.role, approver.identity())));
  if (auto requester = identity_of_requester(request.requester); requester && same(*requester, approver.identity()))
    return fail(
        Error::forbidden(fmt::format("{} asked for request 0x{} and cannot approve it too: another "
                                     "administrator must",
                                     approver.display(), request.id_hex)));
  CA_TRY(auto own, store_.find_certificate(approver.serial_hex));
  const unsigned char* p = own.der.data();
  ossl::UniquePtr<X509> own_cert(d2i_X509(nullptr, &p, static_cast<long>(own.der.size())));
  if (own_cert && EVP_PKEY_eq(X509_get0_pubkey(own_cert.get()), csr.public_key.get()) == 1)
    return fail(
        Error::forbidden(fmt::format("request 0x{} is for the key of {}'s own certificate: an administrator "
                                     "cannot give their own key another role",
                                     request.id_hex, approver.display())));
  return ok();
}

Result<store::RequestRecord> CertificateAuthority::reject(std::string_view id_hex, const AgentIdentity& agent,
                                                          std::string_view reason) {
  std::string what = fmt::format("request 0x{}", id_hex.substr(0, 64));
  auto rejected = [&]() -> Result<store::RequestRecord> {
    CA_TRY(auto request, store_.find_request(id_hex));
    what = fmt::format("request 0x{} for '{}' (profile {})", request.id_hex, request.subject_dn, request.profile_id);
    if (request.state != "pending")
      return fail(Error::conflict(fmt::format("request 0x{} is {}, not pending", request.id_hex, request.state)));
    CA_TRY(auto profile, find_profile(request.profile_id));
    CA_CHECK(check_decider(profile, agent));
    std::string result = reason.empty() ? "rejected by " + agent.display()
                                        : fmt::format("rejected by {}: {}", agent.display(), reason.substr(0, 200));
    CA_CHECK(store_.transition_request(request.id_hex, "pending", {"rejected", agent.display(), "", result}));
    log::info(kLog, "request 0x{} ('{}') rejected by {}", request.id_hex, request.subject_dn, agent.display());
    return store_.find_request(id_hex);
  }();
  if (rejected)
    audit("request_rejected", agent.display(), what,
          reason.empty() ? std::string("rejected") : "rejected: " + std::string(reason.substr(0, 200)));
  else
    audit("request_rejection_failed", agent.display(), what, rejected.error().message);
  return rejected;
}

Result<store::RequestPage> CertificateAuthority::list_requests(const store::RequestQuery& query) {
  return store_.list_requests(query);
}

Result<CreatedEnrollmentCode> CertificateAuthority::create_enrollment_code(const EnrollmentCodeSpec& spec,
                                                                           const AgentIdentity& agent) {
  auto created = make_enrollment_code(spec, agent);
  const std::string what =
      fmt::format("enrollment code for profile {}{}", spec.profile_id.substr(0, 64),
                  spec.subject_dn.empty() ? "" : " and subject '" + spec.subject_dn.substr(0, 200) + "'");
  if (created)
    audit("enrollment_code_created", agent.display(), what,
          fmt::format("code {} expires {}", created->id, store::to_generalized_time(created->expires_at)));
  else
    audit("enrollment_code_refused", agent.display(), what, created.error().message);
  return created;
}

Result<CreatedEnrollmentCode> CertificateAuthority::make_enrollment_code(const EnrollmentCodeSpec& spec,
                                                                         const AgentIdentity& agent) {
  CA_TRY(Profile profile, find_profile(spec.profile_id));
  if (!profile.accepts("enrollment_code"))
    return fail(Error::bad_request(fmt::format("profile {} does not accept enrollment codes", profile.id)));
  if (spec.lifetime < std::chrono::seconds(60) || spec.lifetime > std::chrono::hours(24 * 30))
    return fail(Error::bad_request("an enrollment code lives from 60 seconds to 30 days"));
  store::EnrollmentCodeRecord record;
  record.profile_id = profile.id;
  if (!spec.subject_dn.empty()) {
    auto name = crypto::parse_name(spec.subject_dn);
    if (!name)
      return fail(Error::bad_request(
          fmt::format("subject '{}' is not a DN: {}", spec.subject_dn.substr(0, 200), name.error().message)));
    record.subject_dn = crypto::name_to_string(name->get());
  }
  for (const auto& d : spec.dns_names) {
    if (!is_valid_dns_name(d)) return fail(Error::bad_request(fmt::format("'{}' is not a DNS name", d.substr(0, 255))));
    record.allowed_names.push_back("dns:" + lower_ascii(d));
  }
  for (const auto& ip : spec.ip_addresses) {
    std::string c = canonical_ip(ip);
    if (c.empty()) return fail(Error::bad_request(fmt::format("'{}' is not an IP address", ip.substr(0, 64))));
    record.allowed_names.push_back("ip:" + c);
  }
  for (const auto& m : spec.emails) {
    if (m.find('@') == std::string::npos || m.size() > 254)
      return fail(Error::bad_request(fmt::format("'{}' is not an e-mail address", m.substr(0, 254))));
    record.allowed_names.push_back("email:" + lower_ascii(m));
  }
  CA_TRY(record.id, random_hex(8));
  CA_TRY(std::string secret, random_hex(16));
  CA_TRY(record.secret_hash, hash_secret(secret));
  record.created_at = std::chrono::system_clock::now();
  record.expires_at = std::chrono::time_point_cast<std::chrono::seconds>(record.created_at + spec.lifetime);
  record.created_by = agent.display();
  CA_CHECK(store_.add_enrollment_code(record));
  log::info(kLog, "enrollment code {} for profile {} created by {} (expires {})", record.id, profile.id,
            agent.display(), store::to_generalized_time(record.expires_at));
  return CreatedEnrollmentCode{record.id, record.id + "." + secret, profile.id, record.expires_at};
}

void CertificateAuthority::read_request(std::string_view id_hex, std::string_view secret,
                                        const std::optional<AgentIdentity>& agent,
                                        std::function<void(Result<RequestView>)> done) {
  auto reject = [&](Error e) { done(std::unexpected(std::move(e))); };
  if (!agent && secret.empty())
    return reject(
        Error::unauthorized("reading a request needs its request_secret (X-Request-Secret) or an agent's "
                            "client certificate"));
  auto request = store_.find_request(id_hex);
  if (!request) return reject(request.error());
  if (!agent && !secret_matches(request->secret_hash, secret))
    return reject(Error::forbidden("the request secret does not match"));
  finish_read(std::move(*request), done);
}

void CertificateAuthority::check_request(std::string_view id_hex,
                                         const std::function<void(Result<RequestView>)>& done) {
  auto request = store_.find_request(id_hex);
  if (!request) return done(std::unexpected(request.error()));
  finish_read(std::move(*request), done);
}

void CertificateAuthority::finish_read(store::RequestRecord request,
                                       const std::function<void(Result<RequestView>)>& done) {
  auto finish = [this, done](store::RequestRecord record) {
    RequestView view{std::move(record), ""};
    if (view.record.state == "complete" && !view.record.serial_hex.empty()) {
      auto c = store_.find_certificate(view.record.serial_hex);
      if (!c) return done(std::unexpected(c.error()));
      const unsigned char* p = c->der.data();
      ossl::UniquePtr<X509> cert(d2i_X509(nullptr, &p, static_cast<long>(c->der.size())));
      if (cert) view.certificate_pem = crypto::certificate_to_pem(cert.get());
    }
    done(std::move(view));
  };
  if (request.state == "approved" && request.replica_id == config_.ranges.replica_id) {
    std::string id = request.id_hex;
    return issue_approved(request, [this, id, finish](Result<EnrollmentResult> r) {
      if (!r) log::warn(kLog, "issuing approved request 0x{} failed: {}", id, r.error().message);
      auto now_stored = store_.find_request(id);
      if (!now_stored) return finish(store::RequestRecord{});
      finish(std::move(*now_stored));
    });
  }
  finish(std::move(request));
}

Result<CertificateAuthority::InstanceCertificate> CertificateAuthority::issue_instance_certificate(
    const std::string& csr_pem, const std::string& instance_id) {
  CA_TRY(auto csr, crypto::parse_csr_pem(csr_pem));
  CA_CHECK(crypto::check_key_quality(csr.public_key.get(), key_policy_));
  std::string ca_tail;
  if (auto comma = config_.ca.subject.find(','); comma != std::string::npos) ca_tail = config_.ca.subject.substr(comma);
  CA_TRY(auto subject, crypto::parse_name(fmt::format("CN=Subsystem {}{}", instance_id, ca_tail)));
  auto now = std::chrono::system_clock::now();
  CA_TRY(uint64_t request_number, requests_->next_number());
  std::string request_id = fmt::format("{:x}", request_number);
  Profile profile;
  profile.id = "subsystem:instance";
  IssuancePlan plan;
  plan.subject = std::move(subject);
  plan.not_before = now - std::chrono::minutes(5);
  plan.not_after = now + std::chrono::hours(24 * 730);
  plan.key_usage = {"digitalSignature"};
  plan.extended_key_usage = {"clientAuth"};
  CA_TRY(auto issued, sign(profile, plan, csr, request_id, now));
  store::RequestRecord request;
  request.id_hex = request_id;
  request.profile_id = profile.id;
  request.csr_der = csr.der;
  request.serial_hex = issued.record.serial_hex;
  request.subject_dn = issued.record.subject_dn;
  request.created_at = request.modified_at = now;
  request.result = "issued to a registering instance";
  request.requester = "instance " + instance_id;
  request.replica_id = config_.ranges.replica_id;
  request.instance_id = config_.instance_id;
  std::promise<Status> committed;
  store_.commit_enrollment(request, issued.record, [&](const Status& st) { committed.set_value(st); });
  CA_CHECK(committed.get_future().get());
  log::info(kLog, "issued the subsystem certificate 0x{} of instance '{}'", issued.record.serial_hex, instance_id);
  audit("certificate_issued", "registration of instance '" + instance_id + "'",
        fmt::format("certificate 0x{} for '{}' (profile {}, request 0x{})", issued.record.serial_hex,
                    issued.record.subject_dn, profile.id, request_id),
        "issued: the instance's subsystem certificate");
  return InstanceCertificate{issued.record.serial_hex, issued.certificate_pem};
}

Result<int> CertificateAuthority::issue_approved_requests() {
  store::RequestQuery q;
  q.state = "approved";
  q.replica_id = config_.ranges.replica_id;
  q.size = 100;
  CA_TRY(auto page, store_.list_requests(q));
  int issued = 0;
  for (auto& request : page.entries) {
    std::promise<Result<EnrollmentResult>> outcome;
    std::string id = request.id_hex;
    issue_approved(request, [&](Result<EnrollmentResult> r) { outcome.set_value(std::move(r)); });
    auto r = outcome.get_future().get();
    if (r && r->request_status == "complete")
      ++issued;
    else if (!r)
      log::warn(kLog, "issuing approved request 0x{} failed: {}", id, r.error().message);
  }
  return issued;
}

Result<store::RequestRecord> CertificateAuthority::find_request(std::string_view id_hex) {
  return store_.find_request(id_hex);
}

Result<store::CertificateRecord> CertificateAuthority::find_certificate(std::string_view serial_hex) {
  return store_.find_certificate(serial_hex);
}

Result<store::CertificatePage> CertificateAuthority::list_certificates(const store::CertificateQuery& query) {
  return store_.list_certificates(query);
}

CaInfo CertificateAuthority::info() const {
  CaInfo i;
  i.subject_dn = ca_subject_;
  i.serial_hex = crypto::serial_to_hex(X509_get0_serialNumber(issuer_->certificate()));
  i.certificate_pem = ca_cert_pem_;
  i.key_type = std::string(key_type_name(config_.ca.key_type));
  i.version = std::string(kVersion);
  i.instance_id = config_.instance_id;
  i.replica_id = config_.ranges.replica_id;
  i.serial_generator = config_.ca.serial_generator == SerialGenerator::ranges ? "ranges" : "random";
  const ASN1_TIME* na = X509_get0_notAfter(issuer_->certificate());
  std::tm tm{};
  if (ASN1_TIME_to_tm(na, &tm) == 1) i.not_after = utc_text(from_utc_tm(tm), kIso8601);
  return i;
}

CounterStatus CertificateAuthority::counters() const {
  CounterStatus s;
  if (serials_) s.serials = serials_->state();
  s.requests = requests_->state();
  return s;
}

}  // namespace ca::authority
