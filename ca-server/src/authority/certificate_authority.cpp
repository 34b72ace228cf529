#include "authority/certificate_authority.hpp"

#include <mutex>

#include <fmt/format.h>
#include <openssl/rand.h>

#include "authority/csr_policy.hpp"
#include "core/log.hpp"
#include "crypto/certificate_builder.hpp"
#include "crypto/csr.hpp"
#include "crypto/pem.hpp"

namespace ca::authority {

namespace {
constexpr std::string_view kLog = "authority";
constexpr std::string_view kVersion = "0.1.0";

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
  CA_TRY(ca->ca_cert_, crypto::load_certificate_file(config.cert_file("ca_signing")));
  CA_TRY(ca->ca_key_, crypto::load_private_key_file(config.key_file("ca_signing")));
  if (X509_check_private_key(ca->ca_cert_.get(), ca->ca_key_.get()) != 1)
    return fail(Error::config(fmt::format("{} does not belong to {}", config.key_file("ca_signing").string(),
                                          config.cert_file("ca_signing").string())));
  CA_TRY(auto signer, crypto::CertificateSigner::create(ca->ca_cert_.get(), ca->ca_key_.get()));
  ca->signer_.emplace(std::move(signer));
  ca->ca_cert_pem_ = crypto::certificate_to_pem(ca->ca_cert_.get());
  ca->ca_subject_ = crypto::name_to_string(X509_get_subject_name(ca->ca_cert_.get()));
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(ca->ca_cert_.get()), &tm) == 1)
    ca->ca_not_after_ = std::chrono::system_clock::from_time_t(timegm(&tm));
  CA_CHECK(ca->reload_profiles());

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
  auto persist = [raw, &store, config]() { return persist_counters(store, config, raw->serials_.get(), *raw->requests_); };
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
  for (const auto& [id, p] : profiles_) out.push_back(p);
  return out;
}

Result<std::string> CertificateAuthority::next_serial_hex() {
  if (serials_) {
    CA_TRY(uint64_t n, serials_->next_number());
    return fmt::format("{:x}", n);
  }
  // Random: 127 bits from the CSPRNG (positive, far above the 64 bits CAs are asked for),
  // checked against the directory so that a collision can never be issued.
  for (int attempt = 0; attempt < 5; ++attempt) {
    unsigned char bytes[16];
    if (RAND_bytes(bytes, sizeof bytes) != 1) return fail(Error::crypto("the CSPRNG failed"));
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;  // never a short serial
    std::string hex;
    for (unsigned char b : bytes) hex += fmt::format("{:02x}", b);
    CA_TRY(bool taken, store_.certificate_exists(hex));
    if (!taken) return store::canonical_hex(hex);
  }
  return fail(Error::internal("could not find a free random serial number"));
}

void CertificateAuthority::enroll(const std::string& profile_id, const std::string& csr_pem, EnrollmentCallback done) {
  auto reject = [&](Error e) { done(std::unexpected(std::move(e))); };
  Profile profile;
  auto find_profile = [&]() -> bool {
    std::shared_lock lock(profiles_mutex_);
    auto it = profiles_.find(profile_id);
    if (it == profiles_.end()) return false;
    profile = it->second;
    return true;
  };
  if (!find_profile()) {
    // Perhaps added on another instance since we last looked: re-read the directory (at most once
    // a second, so unknown names cannot make us hammer it).
    auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    auto last = last_profile_reload_.load();
    if (now - last > std::chrono::steady_clock::duration(std::chrono::seconds(1)).count() &&
        last_profile_reload_.compare_exchange_strong(last, now)) {
      if (auto st = reload_profiles(); !st) log::warn(kLog, "re-reading the profiles failed: {}", st.error().message);
    }
    if (!find_profile()) {
      std::shared_lock lock(profiles_mutex_);
      std::string known;
      for (const auto& [id, p] : profiles_) known += (known.empty() ? "" : ", ") + id;
      return reject(Error::bad_request(fmt::format("unknown profile '{}' (known: {})", profile_id, known)));
    }
  }
  auto csr = crypto::parse_csr_pem(csr_pem);
  if (!csr) return reject(csr.error());
  auto now = std::chrono::system_clock::now();
  auto plan = apply_profile(profile, *csr, now);
  if (!plan) return reject(plan.error());

  auto request_number = requests_->next_number();
  if (!request_number) return reject(request_number.error());
  auto serial = next_serial_hex();
  if (!serial) return reject(serial.error());

  crypto::CertificateSpec spec;
  spec.serial_hex = *serial;
  spec.subject = plan->subject.get();
  spec.public_key = csr->public_key.get();
  spec.not_before = plan->not_before;
  // A certificate never outlives its issuer (RFC 5280 path validation would reject it later).
  spec.not_after = std::min(plan->not_after, ca_not_after_);
  spec.key_usage = plan->key_usage;
  spec.extended_key_usage = plan->extended_key_usage;
  spec.dns_names = plan->dns_names;
  spec.ip_addresses = plan->ip_addresses;
  spec.emails = plan->emails;
  spec.crl_distribution_points = {config_.public_base_url() + "/crl/MasterCRL.crl"};
  spec.ocsp_url = config_.public_base_url() + "/ocsp";
  auto cert = signer_->sign(spec);
  if (!cert) return reject(cert.error());

  store::CertificateRecord record;
  record.serial_hex = *serial;
  record.subject_dn = crypto::name_to_string(X509_get_subject_name(cert->get()));
  record.issuer_dn = ca_subject_;
  record.not_before = plan->not_before;
  record.not_after = spec.not_after;
  record.issued_at = now;
  record.profile_id = profile_id;
  record.request_id_hex = fmt::format("{:x}", *request_number);
  record.replica_id = config_.ranges.replica_id;
  record.issued_by = config_.instance_id;
  record.der = crypto::certificate_to_der(cert->get());

  store::RequestRecord request;
  request.id_hex = record.request_id_hex;
  request.state = "complete";
  request.profile_id = profile_id;
  request.csr_der = csr->der;
  request.serial_hex = *serial;
  request.subject_dn = record.subject_dn;
  request.created_at = request.modified_at = now;
  request.result = "issued";
  request.replica_id = config_.ranges.replica_id;
  request.instance_id = config_.instance_id;

  EnrollmentResult result{record.request_id_hex, "complete", *serial, crypto::certificate_to_pem(cert->get()),
                          record.subject_dn, profile_id};
  store_.commit_enrollment(std::move(request), std::move(record),
                           [done = std::move(done), result = std::move(result)](Status st) mutable {
                             if (!st) {
                               log::warn(kLog, "enrollment of serial 0x{} not recorded: {}", result.serial_hex,
                                         st.error().message);
                               return done(std::unexpected(st.error()));
                             }
                             log::debug(kLog, "issued serial 0x{} to '{}' (profile {}, request 0x{})",
                                        result.serial_hex, result.subject_dn, result.profile_id, result.request_id_hex);
                             done(std::move(result));
                           });
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
  i.serial_hex = crypto::serial_to_hex(X509_get0_serialNumber(ca_cert_.get()));
  i.certificate_pem = ca_cert_pem_;
  i.key_type = std::string(key_type_name(config_.ca.key_type));
  i.version = std::string(kVersion);
  i.instance_id = config_.instance_id;
  i.replica_id = config_.ranges.replica_id;
  i.serial_generator = config_.ca.serial_generator == SerialGenerator::ranges ? "ranges" : "random";
  const ASN1_TIME* na = X509_get0_notAfter(ca_cert_.get());
  std::tm tm{};
  if (ASN1_TIME_to_tm(na, &tm) == 1) {
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    i.not_after = buf;
  }
  return i;
}

CounterStatus CertificateAuthority::counters() const {
  CounterStatus s;
  if (serials_) s.serials = serials_->state();
  s.requests = requests_->state();
  return s;
}

}  // namespace ca::authority
