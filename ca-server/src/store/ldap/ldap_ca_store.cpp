#include "store/ldap/ldap_ca_store.hpp"

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <functional>
#include <random>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include "core/log.hpp"
#include "store/ldap/ldap_escape.hpp"

namespace ca::store {

namespace {
constexpr std::string_view kLog = "store";
using Op = LdapModification::Op;

void put(std::vector<LdapAttribute>& attrs, std::string name, std::string value) {
  if (!value.empty()) attrs.push_back({std::move(name), {std::move(value)}});
}

std::optional<uint64_t> parse_u64(std::string_view s, int base = 10) {
  uint64_t v = 0;
  if (s.empty() || std::from_chars(s.data(), s.data() + s.size(), v, base).ec != std::errc{}) return std::nullopt;
  return v;
}

TimePoint time_or_epoch(const LdapEntry& e, std::string_view attr) {
  auto t = e.first(attr);
  if (!t) return {};
  return from_generalized_time(*t).value_or(TimePoint{});
}

std::string now_generalized() { return to_generalized_time(std::chrono::system_clock::now()); }
}  // namespace

std::string DirectoryLayout::counter(RangeKind kind) const {
  switch (kind) {
    case RangeKind::serial:
      return certificates();
    case RangeKind::request:
      return requests();
    case RangeKind::replica:
      return replicas();
  }
  return {};
}

std::string DirectoryLayout::range_entries(RangeKind kind) const {
  switch (kind) {
    case RangeKind::serial:
      return "ou=certificateRepository,ou=ranges," + suffix;
    case RangeKind::request:
      return "ou=requests,ou=ranges," + suffix;
    case RangeKind::replica:
      return "ou=replica,ou=ranges," + suffix;
  }
  return {};
}

std::string DirectoryLayout::certificate_dn(std::string_view serial_hex) const {
  return fmt::format("cn={},{}", escape_dn_value(canonical_hex(serial_hex)), certificates());
}
std::string DirectoryLayout::request_dn(std::string_view id_hex) const {
  return fmt::format("cn={},{}", escape_dn_value(canonical_hex(id_hex)), requests());
}
std::string DirectoryLayout::replica_dn(int replica_id) const {
  return fmt::format("cn=replica-{},{}", replica_id, replicas());
}

std::string DirectoryLayout::crl_dn(std::string_view issuing_point) const {
  return fmt::format("cn={},{}", escape_dn_value(issuing_point), crl_issuing_points());
}
std::string DirectoryLayout::join_token_dn(std::string_view id) const {
  return fmt::format("cn={},{}", escape_dn_value(id), join_tokens());
}
std::string DirectoryLayout::key_dn(std::string_view key_id) const {
  return fmt::format("cn={},{}", escape_dn_value(key_id), keys());
}
std::string DirectoryLayout::recovery_dn(std::string_view id) const {
  return fmt::format("cn={},{}", escape_dn_value(id), recoveries());
}
std::string DirectoryLayout::enrollment_code_dn(std::string_view id) const {
  return fmt::format("cn={},{}", escape_dn_value(id), enrollment_codes());
}
std::string DirectoryLayout::group_dn(std::string_view group) const {
  return fmt::format("cn={},{}", escape_dn_value(group), groups());
}

std::vector<LdapAttribute> certificate_attributes(const CertificateRecord& r) {
  std::vector<LdapAttribute> a;
  a.push_back({"objectClass", {"caCertificateRecord"}});
  put(a, "cn", canonical_hex(r.serial_hex));
  put(a, "caSerialNumber", fixed_width_hex(r.serial_hex));
  put(a, "caCertStatus", r.status);
  a.push_back({"userCertificate;binary", {std::string(r.der.begin(), r.der.end())}});
  put(a, "caSubjectDN", r.subject_dn);
  put(a, "caIssuerDN", r.issuer_dn);
  put(a, "caNotBefore", to_generalized_time(r.not_before));
  put(a, "caNotAfter", to_generalized_time(r.not_after));
  put(a, "caIssuedAt", to_generalized_time(r.issued_at));
  put(a, "caIssuedBy", r.issued_by);
  put(a, "caProfileId", r.profile_id);
  if (!r.request_id_hex.empty()) put(a, "caRequestId", fixed_width_hex(r.request_id_hex));
  if (r.replica_id > 0) put(a, "caReplicaId", std::to_string(r.replica_id));
  if (r.revoked_on) {
    put(a, "caRevokedOn", to_generalized_time(*r.revoked_on));
    put(a, "caRevocationReason", std::to_string(r.revocation_reason));
    put(a, "caRevokedBy", r.revoked_by);
  }
  if (r.invalidity_date) put(a, "caInvalidityDate", to_generalized_time(*r.invalidity_date));
  return a;
}

Result<CertificateRecord> certificate_from_entry(const LdapEntry& e) {
  CertificateRecord r;
  auto serial = e.first("caSerialNumber");
  auto der = e.first("userCertificate;binary");
  if (!der) der = e.first("userCertificate");
  if (!serial || !der) return fail(Error::directory(fmt::format("certificate record {} is incomplete", e.dn)));
  r.serial_hex = canonical_hex(*serial);
  r.status = e.first_or("caCertStatus", "VALID");
  r.der.assign(der->begin(), der->end());
  r.subject_dn = e.first_or("caSubjectDN");
  r.issuer_dn = e.first_or("caIssuerDN");
  r.not_before = time_or_epoch(e, "caNotBefore");
  r.not_after = time_or_epoch(e, "caNotAfter");
  r.issued_at = time_or_epoch(e, "caIssuedAt");
  r.issued_by = e.first_or("caIssuedBy");
  r.profile_id = e.first_or("caProfileId");
  if (auto id = e.first("caRequestId")) r.request_id_hex = canonical_hex(*id);
  r.replica_id = static_cast<int>(parse_u64(e.first_or("caReplicaId", "0")).value_or(0));
  if (auto t = e.first("caRevokedOn")) r.revoked_on = from_generalized_time(*t);
  r.revocation_reason = static_cast<int>(parse_u64(e.first_or("caRevocationReason", "0")).value_or(0));
  r.revoked_by = e.first_or("caRevokedBy");
  if (auto t = e.first("caInvalidityDate")) r.invalidity_date = from_generalized_time(*t);
  r.modified_at = time_or_epoch(e, "caModifiedAt");
  return r;
}

std::vector<LdapAttribute> request_attributes(const RequestRecord& r) {
  std::vector<LdapAttribute> a;
  a.push_back({"objectClass", {"caRequestRecord"}});
  put(a, "cn", canonical_hex(r.id_hex));
  put(a, "caRequestId", fixed_width_hex(r.id_hex));
  put(a, "caRequestState", r.state);
  put(a, "caRequestType", r.type);
  if (!r.csr_der.empty()) a.push_back({"caCertificationRequest", {std::string(r.csr_der.begin(), r.csr_der.end())}});
  put(a, "caProfileId", r.profile_id);
  if (!r.serial_hex.empty()) put(a, "caSerialNumber", fixed_width_hex(r.serial_hex));
  put(a, "caSubjectDN", r.subject_dn);
  put(a, "caCreatedAt", to_generalized_time(r.created_at));
  put(a, "caModifiedAt", to_generalized_time(r.modified_at));
  put(a, "caRequestResult", r.result);
  if (r.replica_id > 0) put(a, "caReplicaId", std::to_string(r.replica_id));
  put(a, "caIssuedBy", r.instance_id);
  put(a, "caSecretHash", r.secret_hash);
  put(a, "caRequester", r.requester);
  put(a, "caApprovedBy", r.approved_by);
  put(a, "caApprovalChanges", r.approval_changes);
  return a;
}

Result<RequestRecord> request_from_entry(const LdapEntry& e) {
  RequestRecord r;
  auto id = e.first("caRequestId");
  if (!id) return fail(Error::directory(fmt::format("request record {} has no caRequestId", e.dn)));
  r.id_hex = canonical_hex(*id);
  r.type = e.first_or("caRequestType", "enrollment");
  r.state = e.first_or("caRequestState");
  r.profile_id = e.first_or("caProfileId");
  if (auto csr = e.first("caCertificationRequest")) r.csr_der.assign(csr->begin(), csr->end());
  if (auto s = e.first("caSerialNumber")) r.serial_hex = canonical_hex(*s);
  r.subject_dn = e.first_or("caSubjectDN");
  r.created_at = time_or_epoch(e, "caCreatedAt");
  r.modified_at = time_or_epoch(e, "caModifiedAt");
  r.result = e.first_or("caRequestResult");
  r.replica_id = static_cast<int>(parse_u64(e.first_or("caReplicaId", "0")).value_or(0));
  r.instance_id = e.first_or("caIssuedBy");
  r.secret_hash = e.first_or("caSecretHash");
  r.requester = e.first_or("caRequester");
  r.approved_by = e.first_or("caApprovedBy");
  r.approval_changes = e.first_or("caApprovalChanges");
  return r;
}

LdapCaStore::LdapCaStore(const LdapEndpoint& endpoint, std::string suffix, int pool_size,
                         GroupCommitOptions group_commit)
    : layout_{std::move(suffix)}, pool_(endpoint, pool_size), writer_(endpoint, std::move(group_commit)) {}

LdapCaStore::~LdapCaStore() { writer_.stop(); }

void LdapCaStore::set_checkpoint_source(std::function<CounterCheckpoint()> source) {
  writer_.set_batch_epilogue([this, source = std::move(source)]() -> std::vector<WriteOp> {
    CounterCheckpoint cp = source();
    if (cp.replica_id <= 0) return {};
    WriteOp op;
    op.kind = WriteOp::Kind::modify;
    op.dn = layout_.replica_dn(cp.replica_id);
    op.modifications = {{Op::replace, "caSerialNext", {std::to_string(cp.serial_next)}},
                        {Op::replace, "caRequestNext", {std::to_string(cp.request_next)}}};
    return {op};
  });
}

void LdapCaStore::commit_enrollment(RequestRecord request, std::optional<CertificateRecord> certificate,
                                    std::function<void(Status)> done) {
  WriteUnit unit;
  unit.ops.push_back(WriteOp{WriteOp::Kind::add, layout_.request_dn(request.id_hex), request_attributes(request), {}});
  if (certificate)
    unit.ops.push_back(WriteOp{
        WriteOp::Kind::add, layout_.certificate_dn(certificate->serial_hex), certificate_attributes(*certificate), {}});
  unit.done = std::move(done);
  writer_.submit(std::move(unit));
}

Result<CertificateRecord> LdapCaStore::find_certificate(std::string_view serial_hex) {
  std::string dn = layout_.certificate_dn(serial_hex);
  CA_TRY(auto entry, pool_.with_connection([&](LdapConnection& c) { return c.read(dn); }));
  if (!entry)
    return fail(Error::not_found(fmt::format("no certificate with serial number 0x{}", canonical_hex(serial_hex))));
  return certificate_from_entry(*entry);
}

Result<bool> LdapCaStore::certificate_exists(std::string_view serial_hex) {
  std::string dn = layout_.certificate_dn(serial_hex);
  CA_TRY(auto entry, pool_.with_connection([&](LdapConnection& c) { return c.read(dn, {"cn"}); }));
  return entry.has_value();
}

Result<RequestRecord> LdapCaStore::find_request(std::string_view id_hex) {
  std::string dn = layout_.request_dn(id_hex);
  CA_TRY(auto entry, pool_.with_connection([&](LdapConnection& c) { return c.read(dn); }));
  if (!entry) return fail(Error::not_found(fmt::format("no request with id 0x{}", canonical_hex(id_hex))));
  return request_from_entry(*entry);
}

Result<CertificatePage> LdapCaStore::list_certificates(const CertificateQuery& q) {
  std::string filter = "(&(objectClass=caCertificateRecord)";
  if (!q.status.empty()) filter += fmt::format("(caCertStatus={})", escape_filter_value(q.status));
  if (!q.profile_id.empty()) filter += fmt::format("(caProfileId={})", escape_filter_value(q.profile_id));
  if (!q.issued_by.empty()) filter += fmt::format("(caIssuedBy={})", escape_filter_value(q.issued_by));
  if (!q.subject_contains.empty()) filter += fmt::format("(caSubjectDN=*{}*)", escape_filter_value(q.subject_contains));
  filter += ")";
  // First the matching serials only (small), then the full records of one page.
  CA_TRY(auto keys, pool_.with_connection([&](LdapConnection& c) {
    return c.search(layout_.certificates(), SearchScope::one, filter,
                    SearchOptions{{"caSerialNumber"}, kListingSearchLimit});
  }));
  std::vector<std::string> serials;
  for (const auto& e : keys)
    if (auto s = e.first("caSerialNumber")) serials.push_back(fixed_width_hex(*s));
  std::sort(serials.begin(), serials.end());
  CertificatePage page;
  page.total = serials.size();
  page.truncated = serials.size() >= static_cast<std::size_t>(kListingSearchLimit);
  std::size_t end = std::min(serials.size(), q.start + q.size);
  for (std::size_t i = q.start; i < end; ++i) {
    CA_TRY(auto rec, find_certificate(serials[i]));
    page.entries.push_back(std::move(rec));
  }
  return page;
}

Result<NumberRange> LdapCaStore::claim_range(RangeKind kind, uint64_t size, uint64_t floor, int replica_id,
                                             std::string_view instance_id) {
  if (size == 0) return fail(Error::internal("claim_range: size 0"));
  const std::string counter_dn = layout_.counter(kind);
  thread_local std::mt19937 jitter{std::random_device{}()};
  CA_TRY(auto lease, pool_.acquire());
  for (int attempt = 0; attempt < 1000; ++attempt) {
    CA_TRY(auto entry, lease->read(counter_dn, {"caNextRange"}));
    if (!entry) return fail(Error::directory(fmt::format("{} is missing: the base DIT was not loaded", counter_dn)));
    std::string current = entry->first_or("caNextRange");
    auto next = parse_u64(current);
    if (!next) return fail(Error::directory(fmt::format("{}: caNextRange '{}' is not a number", counter_dn, current)));
    NumberRange range{std::max(*next, floor), std::max(*next, floor) + size - 1};
    // Atomic on one server: the delete fails with noSuchAttribute if another claimer moved it first.
    Status moved = lease->modify(counter_dn, {{Op::remove, "caNextRange", {current}},
                                              {Op::add, "caNextRange", {std::to_string(range.end + 1)}}});
    if (!moved) {
      if (!moved.error().is(ErrorCode::conflict)) return fail(moved.error());
      std::this_thread::sleep_for(
          std::chrono::microseconds(jitter() % (200UL * static_cast<unsigned long>(1 + std::min(attempt, 20)))));
      continue;
    }
    std::string dn = fmt::format("cn={}-r{},{}", range.begin, replica_id, layout_.range_entries(kind));
    std::vector<LdapAttribute> attrs{{"objectClass", {"caRangeEntry"}},
                                     {"cn", {fmt::format("{}-r{}", range.begin, replica_id)}},
                                     {"caBeginRange", {std::to_string(range.begin)}},
                                     {"caEndRange", {std::to_string(range.end)}},
                                     {"caRangeKind", {std::string(range_kind_name(kind))}},
                                     {"caReplicaId", {std::to_string(replica_id)}},
                                     {"caCreatedAt", {now_generalized()}}};
    if (!instance_id.empty()) attrs.push_back({"caInstanceId", {std::string(instance_id)}});
    Status recorded = lease->add(dn, attrs);
    if (!recorded && !recorded.error().is(ErrorCode::conflict)) return fail(recorded.error());
    log::info(kLog, "claimed {} range {} for replica {} ({} attempt(s))", range_kind_name(kind), format_range(range),
              replica_id, attempt + 1);
    return range;
  }
  return fail(
      Error::unavailable(fmt::format("could not claim a {} range: too many concurrent claims", range_kind_name(kind))));
}

namespace {
ReplicaRecord replica_from(const LdapEntry& e) {
  ReplicaRecord r;
  r.replica_id = static_cast<int>(parse_u64(e.first_or("caReplicaId", "0")).value_or(0));
  r.instance_id = e.first_or("caInstanceId");
  r.url = e.first_or("caInstanceUrl");
  auto range = [&](std::string_view a) -> std::optional<NumberRange> {
    auto v = e.first(a);
    return v ? parse_range(*v) : std::nullopt;
  };
  auto number = [&](std::string_view a) { return parse_u64(e.first_or(a, "0")).value_or(0); };
  r.serial_current = range("caSerialCurrent");
  r.serial_standby = range("caSerialStandby");
  r.serial_next = number("caSerialNext");
  r.serial_high_water = number("caSerialHighWater");
  r.request_current = range("caRequestCurrent");
  r.request_standby = range("caRequestStandby");
  r.request_next = number("caRequestNext");
  r.request_high_water = number("caRequestHighWater");
  r.retired = e.first_or("caRetired", "FALSE") == "TRUE";
  r.subsystem_serial = e.first_or("caSubsystemSerial");
  r.server_cert_serial = e.first_or("caServerCertSerial");
  r.directory_cert_serial = e.first_or("caDirectoryCertSerial");
  r.heartbeat = time_or_epoch(e, "caHeartbeat");
  r.directory_url = e.first_or("caDirectoryUrl");
  return r;
}
}  // namespace

Result<std::optional<ReplicaRecord>> LdapCaStore::load_replica(int replica_id) {
  std::string dn = layout_.replica_dn(replica_id);
  CA_TRY(auto entry, pool_.with_connection([&](LdapConnection& c) { return c.read(dn); }));
  if (!entry) return std::optional<ReplicaRecord>{};
  ReplicaRecord r = replica_from(*entry);
  r.replica_id = replica_id;
  return std::optional<ReplicaRecord>(std::move(r));
}

Result<std::vector<ReplicaRecord>> LdapCaStore::list_replicas() {
  CA_TRY(auto entries, pool_.with_connection([&](LdapConnection& c) {
    return c.search(layout_.replicas(), SearchScope::one, "(objectClass=caReplicaInstance)");
  }));
  std::vector<ReplicaRecord> out;
  for (const auto& e : entries) out.push_back(replica_from(e));
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.replica_id < b.replica_id; });
  return out;
}

Status LdapCaStore::touch_heartbeat(int replica_id) {
  std::string dn = layout_.replica_dn(replica_id);
  return pool_.with_connection([&](LdapConnection& c) {
    return c.modify(dn, {{Op::replace, "caHeartbeat", {now_generalized()}}});
  });
}

Status LdapCaStore::save_replica(const ReplicaRecord& r) {
  std::string dn = layout_.replica_dn(r.replica_id);
  auto range_values = [](const std::optional<NumberRange>& range) {
    return range ? std::vector<std::string>{format_range(*range)} : std::vector<std::string>{};
  };
  std::vector<LdapModification> mods{
      {Op::replace, "caInstanceId", r.instance_id.empty() ? std::vector<std::string>{} : std::vector{r.instance_id}},
      {Op::replace, "caInstanceUrl", r.url.empty() ? std::vector<std::string>{} : std::vector{r.url}},
      {Op::replace, "caSerialCurrent", range_values(r.serial_current)},
      {Op::replace, "caSerialStandby", range_values(r.serial_standby)},
      {Op::replace, "caSerialNext", {std::to_string(r.serial_next)}},
      {Op::replace, "caSerialHighWater", {std::to_string(r.serial_high_water)}},
      {Op::replace, "caRequestCurrent", range_values(r.request_current)},
      {Op::replace, "caRequestStandby", range_values(r.request_standby)},
      {Op::replace, "caRequestNext", {std::to_string(r.request_next)}},
      {Op::replace, "caRequestHighWater", {std::to_string(r.request_high_water)}},
      {Op::replace, "caRetired", {r.retired ? "TRUE" : "FALSE"}},
      {Op::replace, "caHeartbeat", {now_generalized()}},
  };
  if (!r.subsystem_serial.empty()) mods.push_back({Op::replace, "caSubsystemSerial", {r.subsystem_serial}});
  if (!r.server_cert_serial.empty()) mods.push_back({Op::replace, "caServerCertSerial", {r.server_cert_serial}});
  if (!r.directory_cert_serial.empty())
    mods.push_back({Op::replace, "caDirectoryCertSerial", {r.directory_cert_serial}});
  return pool_.with_connection([&](LdapConnection& c) -> Status {
    CA_TRY(auto existing, c.read(dn, {"cn"}));
    if (existing) return c.modify(dn, mods);
    std::vector<LdapAttribute> attrs{{"objectClass", {"caReplicaInstance"}},
                                     {"cn", {fmt::format("replica-{}", r.replica_id)}},
                                     {"caReplicaId", {std::to_string(r.replica_id)}},
                                     {"caCreatedAt", {now_generalized()}}};
    for (const auto& m : mods)
      if (!m.values.empty()) attrs.push_back({m.attribute, m.values});
    return c.add(dn, attrs);
  });
}

Result<std::optional<uint64_t>> LdapCaStore::highest_counter_used(RangeKind kind, int replica_id, uint64_t from,
                                                                  uint64_t to) {
  if (kind == RangeKind::replica) return fail(Error::internal("highest_counter_used: not for replica IDs"));
  const bool serials = kind == RangeKind::serial;
  const std::string attr = serials ? "caSerialNumber" : "caRequestId";
  const std::string base = serials ? layout_.certificates() : layout_.requests();
  // Serials carry kSerialRandomBits random low bits below the number (see compose_serial_hex).
  const std::string low = serials ? serial_search_bound(compose_number(from, replica_id), false)
                                  : fixed_width_hex(compose_number(from, replica_id));
  const std::string high = serials ? serial_search_bound(compose_number(to, replica_id), true)
                                   : fixed_width_hex(compose_number(to, replica_id));
  const std::string filter =
      fmt::format("(&(objectClass={})(caReplicaId={})({}>={})({}<={}))",
                  serials ? "caCertificateRecord" : "caRequestRecord", replica_id, attr, low, attr, high);
  CA_TRY(auto entries, pool_.with_connection([&](LdapConnection& c) {
    return c.search(base, SearchScope::one, filter, SearchOptions{{attr}, 0});
  }));
  std::optional<uint64_t> highest;
  for (const auto& e : entries) {
    auto v = serials ? number_of_serial(e.first_or(attr, "0")) : parse_u64(canonical_hex(e.first_or(attr, "0")), 16);
    if (v && replica_of(*v) == replica_id) highest = std::max(highest.value_or(0), counter_of(*v));
  }
  return highest;
}

Status LdapCaStore::revoke_certificate(const Revocation& r) {
  std::string dn = layout_.certificate_dn(r.serial_hex);
  std::string now = now_generalized();
  std::vector<LdapModification> mods{
      {Op::remove, "caCertStatus", {"VALID"}},  // compare-and-set: fails unless VALID
      {Op::add, "caCertStatus", {"REVOKED"}},
      {Op::replace, "caRevokedOn", {to_generalized_time(r.revoked_on)}},
      {Op::replace, "caRevocationReason", {std::to_string(r.reason)}},
      {Op::replace, "caRevokedBy", r.revoked_by.empty() ? std::vector<std::string>{} : std::vector{r.revoked_by}},
      {Op::replace, "caInvalidityDate",
       r.invalidity_date ? std::vector{to_generalized_time(*r.invalidity_date)} : std::vector<std::string>{}},
      {Op::replace, "caModifiedAt", {now}},
  };
  return pool_.with_connection([&](LdapConnection& c) -> Status {
    Status st = c.modify(dn, mods);
    if (st) return st;
    if (st.error().is(ErrorCode::not_found))
      return fail(Error::not_found(fmt::format("no certificate with serial number 0x{}", canonical_hex(r.serial_hex))));
    if (!st.error().is(ErrorCode::conflict)) return st;
    CA_TRY(auto entry, c.read(dn, {"caCertStatus", "caRevocationReason"}));
    if (!entry)
      return fail(Error::not_found(fmt::format("no certificate with serial number 0x{}", canonical_hex(r.serial_hex))));
    return fail(
        Error::conflict(fmt::format("certificate 0x{} is already {} (reason {})", canonical_hex(r.serial_hex),
                                    entry->first_or("caCertStatus"), entry->first_or("caRevocationReason", "-"))));
  });
}

Status LdapCaStore::unrevoke_certificate(std::string_view serial_hex, std::string_view by) {
  std::string dn = layout_.certificate_dn(serial_hex);
  std::vector<LdapModification> mods{
      {Op::remove, "caRevocationReason", {std::to_string(static_cast<int>(RevocationReason::certificate_hold))}},
      {Op::remove, "caCertStatus", {"REVOKED"}},
      {Op::add, "caCertStatus", {"VALID"}},
      {Op::replace, "caRevokedOn", {}},
      {Op::replace, "caInvalidityDate", {}},
      {Op::replace, "caRevokedBy", by.empty() ? std::vector<std::string>{} : std::vector{std::string(by)}},
      {Op::replace, "caModifiedAt", {now_generalized()}},
  };
  return pool_.with_connection([&](LdapConnection& c) -> Status {
    Status st = c.modify(dn, mods);
    if (st) return st;
    if (st.error().is(ErrorCode::not_found))
      return fail(Error::not_found(fmt::format("no certificate with serial number 0x{}", canonical_hex(serial_hex))));
    if (!st.error().is(ErrorCode::conflict)) return st;
    CA_TRY(auto entry, c.read(dn, {"caCertStatus", "caRevocationReason"}));
    if (!entry)
      return fail(Error::not_found(fmt::format("no certificate with serial number 0x{}", canonical_hex(serial_hex))));
    return fail(Error::conflict(fmt::format(
        "certificate 0x{} is not on hold (status {}, reason {}); only certificateHold can be undone",
        canonical_hex(serial_hex), entry->first_or("caCertStatus"), entry->first_or("caRevocationReason", "-"))));
  });
}

const std::vector<std::string>& LdapCaStore::revocation_attributes() {
  static const std::vector<std::string> kAttributes{"caSerialNumber",     "caCertStatus",     "caRevokedOn",
                                                    "caRevocationReason", "caInvalidityDate", "caModifiedAt"};
  return kAttributes;
}

std::string LdapCaStore::revoked_filter() { return "(&(objectClass=caCertificateRecord)(caCertStatus=REVOKED))"; }

std::optional<RevocationChange> LdapCaStore::revocation_change_from(const LdapEntry& e) {
  RevocationChange ch;
  if (auto serial = e.first("caSerialNumber")) {
    ch.serial_hex = canonical_hex(*serial);
  } else {
    // Reported by a watch with its DN only: the record left the filter (taken off hold) or was
    // deleted. The DN is cn=<serial>,ou=certificateRepository,...
    if (e.dn.size() < 4 || e.dn.compare(0, 3, "cn=") != 0) return std::nullopt;
    const auto comma = e.dn.find(',');
    const std::string value = e.dn.substr(3, comma == std::string::npos ? std::string::npos : comma - 3);
    if (value.empty() || value.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) return std::nullopt;
    ch.serial_hex = canonical_hex(value);
  }
  ch.revoked = e.first_or("caCertStatus") == "REVOKED";
  ch.revoked_on = time_or_epoch(e, "caRevokedOn");
  ch.reason = static_cast<int>(parse_u64(e.first_or("caRevocationReason", "0")).value_or(0));
  if (auto t = e.first("caInvalidityDate")) ch.invalidity_date = from_generalized_time(*t);
  ch.modified_at = time_or_epoch(e, "caModifiedAt");
  return ch;
}

Status LdapCaStore::each_revocation_change(std::optional<TimePoint> since,
                                           const std::function<void(const RevocationChange&)>& visit) {
  std::string filter =
      since ? fmt::format("(&(objectClass=caCertificateRecord)(caModifiedAt>={}))", to_generalized_time(*since))
            : revoked_filter();
  CA_TRY(auto lease, pool_.acquire());
  return lease->search_each(layout_.certificates(), SearchScope::one, filter, revocation_attributes(),
                            [&](const LdapEntry& e) {
                              if (auto ch = revocation_change_from(e)) visit(*ch);
                            });
}

namespace {
// Numbers and times of a CRL issuing point entry, without the DER.
CrlRecord crl_header_from(const LdapEntry& entry, std::string_view issuing_point) {
  CrlRecord r;
  r.issuing_point = std::string(issuing_point);
  r.crl_number = parse_u64(entry.first_or("caCrlNumber", "0")).value_or(0);
  r.delta_number = parse_u64(entry.first_or("caDeltaCrlNumber", "0")).value_or(0);
  r.this_update = time_or_epoch(entry, "caThisUpdate");
  r.next_update = time_or_epoch(entry, "caNextUpdate");
  if (auto ms = parse_u64(entry.first_or("caCrlServeFrom", "0")); ms && *ms)
    r.serve_from = std::chrono::system_clock::time_point(std::chrono::milliseconds(*ms));
  r.epoch = parse_u64(entry.first_or("caCrlEpoch", "0")).value_or(0);
  r.partition_count = parse_u64(entry.first_or("caCrlPartitions", "0")).value_or(0);
  return r;
}

const std::vector<std::string> kCrlHeaderAttributes{"caCrlNumber",    "caDeltaCrlNumber", "caThisUpdate",
                                                    "caNextUpdate",   "caCrlServeFrom",   "caCrlEpoch",
                                                    "caCrlPartitions"};

std::string millis_text(std::chrono::system_clock::time_point t) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count());
}

// The entry a CRL of a scope lives in: cn=full / cn=delta (complete), cn=full-K / cn=delta-K.
std::string crl_child_rdn(bool delta, std::optional<std::size_t> partition) {
  std::string name = delta ? "delta" : "full";
  if (partition) name += fmt::format("-{}", *partition);
  return "cn=" + name;
}

const char* der_attribute(bool delta) {
  return delta ? "deltaRevocationList;binary" : "certificateRevocationList;binary";
}

Result<std::optional<StoredCrl>> read_child_crl(LdapConnection& c, const std::string& dn, bool delta) {
  CA_TRY(auto entry, c.read(dn, {"caCrlNumber", "caBaseCrlNumber", "caThisUpdate", "caNextUpdate", "caCrlServeFrom",
                                 der_attribute(delta)}));
  if (!entry) return std::optional<StoredCrl>{};
  auto der = entry->first(der_attribute(delta));
  if (!der) return std::optional<StoredCrl>{};
  StoredCrl crl;
  crl.number = parse_u64(entry->first_or("caCrlNumber", "0")).value_or(0);
  crl.base = parse_u64(entry->first_or("caBaseCrlNumber", "0")).value_or(0);
  crl.this_update = time_or_epoch(*entry, "caThisUpdate");
  crl.next_update = time_or_epoch(*entry, "caNextUpdate");
  if (auto ms = parse_u64(entry->first_or("caCrlServeFrom", "0")); ms && *ms)
    crl.serve_from = std::chrono::system_clock::time_point(std::chrono::milliseconds(*ms));
  crl.der.assign(der->begin(), der->end());
  return std::optional<StoredCrl>(std::move(crl));
}

Status write_child_crl(LdapConnection& c, const std::string& dn, std::string_view rdn_value, const StoredCrl& crl,
                       bool delta) {
  std::vector<LdapModification> mods{
      {Op::replace, "caCrlNumber", {std::to_string(crl.number)}},
      {Op::replace, "caBaseCrlNumber", crl.base ? std::vector{std::to_string(crl.base)} : std::vector<std::string>{}},
      {Op::replace, "caThisUpdate", {to_generalized_time(crl.this_update)}},
      {Op::replace, "caNextUpdate", {to_generalized_time(crl.next_update)}},
      {Op::replace, "caCrlServeFrom", {millis_text(crl.serve_from)}},
      {Op::replace, der_attribute(delta), {std::string(crl.der.begin(), crl.der.end())}},
  };
  Status st = c.modify(dn, mods);
  if (st || !st.error().is(ErrorCode::not_found)) return st;
  std::vector<LdapAttribute> attrs{{"objectClass", {"caCrlIssuingPoint"}}, {"cn", {std::string(rdn_value)}}};
  for (const auto& m : mods)
    if (!m.values.empty()) attrs.push_back({m.attribute, m.values});
  return c.add(dn, attrs);
}
}  // namespace

Result<std::optional<CrlRecord>> LdapCaStore::load_crl(std::string_view issuing_point, uint64_t skip_full_number) {
  const std::string dn = layout_.crl_dn(issuing_point);
  return pool_.with_connection([&](LdapConnection& c) -> Result<std::optional<CrlRecord>> {
    auto attributes = kCrlHeaderAttributes;
    attributes.insert(attributes.end(), {"certificateRevocationList;binary", "deltaRevocationList;binary"});
    // The legacy layout (both CRLs on the issuing point entry) is read only when present: the
    // attribute list asks for it, and it is empty once a publication moved it to cn=full.
    CA_TRY(auto entry, c.read(dn, attributes));
    if (!entry) return std::optional<CrlRecord>{};
    CrlRecord r = crl_header_from(*entry, issuing_point);
    const bool skip_full = skip_full_number != 0 && r.crl_number == skip_full_number;
    auto load_scope = [&](std::optional<std::size_t> partition) -> Result<CrlScope> {
      CrlScope scope;
      if (!skip_full) {
        CA_TRY(auto full, read_child_crl(c, fmt::format("{},{}", crl_child_rdn(false, partition), dn), false));
        scope.full = std::move(full);
      }
      CA_TRY(auto delta, read_child_crl(c, fmt::format("{},{}", crl_child_rdn(true, partition), dn), true));
      scope.delta = std::move(delta);
      return scope;
    };
    CA_TRY(r.complete, load_scope(std::nullopt));
    if (!r.complete.full && !skip_full) {
      if (auto der = entry->first("certificateRevocationList;binary")) {
        StoredCrl legacy{r.crl_number, 0, r.this_update, r.next_update, r.serve_from, {der->begin(), der->end()}};
        r.complete.full = std::move(legacy);
        if (auto delta = entry->first("deltaRevocationList;binary"))
          r.complete.delta = StoredCrl{r.delta_number, r.crl_number, r.this_update,
                                       r.next_update,  r.serve_from, {delta->begin(), delta->end()}};
      }
    }
    for (std::size_t k = 0; k < r.partition_count && k < 4096; ++k) {
      CA_TRY(auto scope, load_scope(k));
      r.partitions.push_back(std::move(scope));
    }
    return std::optional<CrlRecord>(std::move(r));
  });
}

Result<std::optional<CrlRecord>> LdapCaStore::load_crl_numbers(std::string_view issuing_point) {
  std::string dn = layout_.crl_dn(issuing_point);
  return pool_.with_connection([&](LdapConnection& c) -> Result<std::optional<CrlRecord>> {
    CA_TRY(auto entry, c.read(dn, kCrlHeaderAttributes));
    if (!entry) return std::optional<CrlRecord>{};
    CrlRecord r = crl_header_from(*entry, issuing_point);
    r.newest_stored = std::max(r.crl_number, r.delta_number);
    // The numbers of the CRL entries too (a few small entries; no DER read).
    CA_TRY(auto children, c.search(dn, SearchScope::one, "(caCrlNumber=*)", SearchOptions{{"caCrlNumber"}, 0}));
    for (const auto& child : children)
      r.newest_stored = std::max(r.newest_stored, parse_u64(child.first_or("caCrlNumber", "0")).value_or(0));
    return std::optional<CrlRecord>(std::move(r));
  });
}

namespace {
// The CRL lease: one entry per epoch under the issuing point, cn=epoch-<N>. An epoch's entry is
// added by whoever minted the epoch and afterwards written only by its holder (renewals, giving it
// back), so no two instances ever write one entry in a way that matters. The lease is the entry with
// the highest epoch. syncrepl replicates entries of different DNs independently (their union
// survives) and resolves two writes of ONE entry by entryCSN: a late renewal of an old epoch,
// applied anywhere after the thaw of a frozen directory, changes only that old entry and cannot
// hide a newer epoch. Epochs are ordered by value, never by write order.
// A lease stored by an earlier version on the issuing point entry itself (caCrlMaster,
// caLeaseExpires, caCrlEpoch) counts as one more candidate; the first write of this version adds
// its epoch entry.
constexpr std::string_view kEpochRdnPrefix = "cn=epoch-";
// Entries of superseded epochs kept besides the newest (for people reading the directory); older
// ones are deleted by the instance that adds a new epoch.
constexpr std::size_t kEpochEntriesKept = 4;

struct LeaseView {
  bool issuing_point_exists = false;
  CrlLease lease;            // the highest epoch, with the pin and handover of the issuing point
  bool from_legacy = false;  // the highest epoch is the earlier version's lease on the issuing point
  bool legacy_present = false;
  std::vector<uint64_t> epoch_entries;  // epochs that have an entry, any order
};

std::string epoch_entry_dn(uint64_t epoch, const std::string& issuing_point_dn) {
  return fmt::format("{}{},{}", kEpochRdnPrefix, epoch, issuing_point_dn);
}

CrlLease lease_candidate(const LdapEntry& e) {
  CrlLease lease;
  lease.holder = e.first_or("caCrlMaster");
  lease.expires = time_or_epoch(e, "caLeaseExpires");
  lease.epoch = parse_u64(e.first_or("caCrlEpoch", "0")).value_or(0);
  return lease;
}

Result<LeaseView> read_lease_view(LdapConnection& c, const std::string& dn) {
  LeaseView view;
  CA_TRY(auto entry, c.read(dn, {"caCrlMaster", "caLeaseExpires", "caCrlEpoch", "caCrlPinned", "caCrlHandover"}));
  if (!entry) return view;
  view.issuing_point_exists = true;
  if (entry->first("caCrlMaster")) {
    view.lease = lease_candidate(*entry);
    view.from_legacy = view.legacy_present = true;
  }
  CA_TRY(auto epochs, c.search(dn, SearchScope::one, "(&(objectClass=caCrlIssuingPoint)(caCrlMaster=*)(caCrlEpoch=*))",
                               SearchOptions{{"caCrlMaster", "caLeaseExpires", "caCrlEpoch"}, 0}));
  for (const auto& e : epochs) {
    CrlLease candidate = lease_candidate(e);
    view.epoch_entries.push_back(candidate.epoch);
    if (candidate.epoch >= view.lease.epoch || view.lease.holder.empty()) {
      view.lease = std::move(candidate);
      view.from_legacy = false;
    }
  }
  view.lease.pinned = entry->first_or("caCrlPinned");
  view.lease.handover = entry->first_or("caCrlHandover");
  return view;
}

// Best effort, after a new epoch was added: old epoch entries beyond the few kept, and the earlier
// version's lease attributes. Deleting a lower epoch never changes which epoch is the highest.
void prune_superseded_epochs(LdapConnection& c, const std::string& dn, const LeaseView& view, uint64_t newest) {
  std::vector<uint64_t> older;
  for (uint64_t e : view.epoch_entries)
    if (e < newest) older.push_back(e);
  std::sort(older.begin(), older.end(), std::greater<>());
  for (std::size_t i = kEpochEntriesKept; i < older.size(); ++i)
    if (Status st = c.remove(epoch_entry_dn(older[i], dn)); !st && !st.error().is(ErrorCode::not_found))
      log::warn(kLog, "cannot delete the CRL lease entry of epoch {}: {}", older[i], st.error().message);
  if (view.legacy_present) {
    Status st = c.modify(dn, {{Op::replace, "caCrlMaster", {}}, {Op::replace, "caLeaseExpires", {}}});
    if (!st) log::warn(kLog, "cannot remove the earlier version's CRL lease attributes: {}", st.error().message);
  }
}
}  // namespace

Result<CrlLease> LdapCaStore::read_crl_lease(std::string_view issuing_point) {
  const std::string dn = layout_.crl_dn(issuing_point);
  CA_TRY(auto view, pool_.with_connection([&](LdapConnection& c) { return read_lease_view(c, dn); }));
  return view.lease;
}

Status LdapCaStore::write_crl_lease(std::string_view issuing_point, const CrlLease& expected, const CrlLease& lease) {
  if (lease.epoch == 0 || lease.holder.empty()) return fail(Error::internal("a CRL lease needs a holder and an epoch"));
  if (lease.epoch < expected.epoch)
    return fail(
        Error::internal(fmt::format("a CRL lease epoch never goes down ({} after {})", lease.epoch, expected.epoch)));
  if (lease.epoch == expected.epoch && lease.holder != expected.holder)
    return fail(Error::internal("a CRL lease changes holder only with a new epoch"));
  const std::string dn = layout_.crl_dn(issuing_point);
  return pool_.with_connection([&](LdapConnection& c) -> Status {
    CA_TRY(auto view, read_lease_view(c, dn));
    if (view.lease.holder != expected.holder || view.lease.epoch != expected.epoch)
      return fail(Error::conflict(fmt::format("the CRL lease moved: this directory shows '{}' at epoch {}",
                                              view.lease.holder, view.lease.epoch)));
    if (!view.issuing_point_exists) {
      Status added = c.add(dn, {{"objectClass", {"caCrlIssuingPoint"}}, {"cn", {std::string(issuing_point)}}});
      if (!added && !added.error().is(ErrorCode::conflict)) return added;
    }
    const std::string entry_dn = epoch_entry_dn(lease.epoch, dn);
    const bool new_entry = lease.epoch != expected.epoch || view.from_legacy;
    if (new_entry) {
      Status added = c.add(entry_dn, {{"objectClass", {"caCrlIssuingPoint"}},
                                      {"cn", {fmt::format("epoch-{}", lease.epoch)}},
                                      {"caCrlMaster", {lease.holder}},
                                      {"caLeaseExpires", {to_generalized_time(lease.expires)}},
                                      {"caCrlEpoch", {std::to_string(lease.epoch)}}});
      if (!added)
        return fail(added.error().is(ErrorCode::conflict)
                        ? Error::conflict(fmt::format("the CRL lease of epoch {} exists already", lease.epoch))
                        : added.error());
    } else {
      // Only while the entry still names the holder (delete and add the same value: fails if not).
      Status renewed = c.modify(entry_dn, {{Op::remove, "caCrlMaster", {lease.holder}},
                                           {Op::add, "caCrlMaster", {lease.holder}},
                                           {Op::replace, "caLeaseExpires", {to_generalized_time(lease.expires)}}});
      if (!renewed && (renewed.error().is(ErrorCode::not_found) || renewed.error().is(ErrorCode::conflict)))
        return fail(Error::conflict(fmt::format("the CRL lease moved: {}", renewed.error().message)));
      CA_CHECK(renewed);
    }
    if (!expected.handover.empty() && lease.handover.empty()) {
      // The request was acted on: withdraw exactly that value (an operator's newer request stays).
      Status cleared = c.modify(dn, {{Op::remove, "caCrlHandover", {expected.handover}}});
      if (!cleared && !cleared.error().is(ErrorCode::conflict))
        log::warn(kLog, "cannot clear the CRL handover request: {}", cleared.error().message);
    }
    if (new_entry) prune_superseded_epochs(c, dn, view, lease.epoch);
    return ok();
  });
}

std::string_view crl_role_hint_attribute(RevocationStore::CrlRoleHint hint) {
  return hint == RevocationStore::CrlRoleHint::pinned ? "caCrlPinned" : "caCrlHandover";
}

Status LdapCaStore::set_crl_role_hint(std::string_view issuing_point, CrlRoleHint hint, std::string_view instance) {
  std::string dn = layout_.crl_dn(issuing_point);
  const std::string attribute(crl_role_hint_attribute(hint));
  std::vector<std::string> values;
  if (!instance.empty()) values.emplace_back(instance);
  return pool_.with_connection([&](LdapConnection& c) -> Status {
    Status st = c.modify(dn, {{Op::replace, attribute, values}, {Op::replace, "caModifiedAt", {now_generalized()}}});
    if (st || !st.error().is(ErrorCode::not_found)) return st;
    std::vector<LdapAttribute> attrs{{"objectClass", {"caCrlIssuingPoint"}}, {"cn", {std::string(issuing_point)}}};
    if (!values.empty()) attrs.push_back({attribute, values});
    return c.add(dn, attrs);
  });
}

Status LdapCaStore::save_crl(const CrlRecord& crl) {
  std::string dn = layout_.crl_dn(crl.issuing_point);
  return pool_.with_connection([&](LdapConnection& c) -> Status {
    CA_TRY(auto entry, c.read(dn, {"caCrlNumber", "caDeltaCrlNumber", "caCrlEpoch"}));
    if (crl.epoch) {
      // The fence: only the holder of the highest epoch in this directory publishes. (On one server
      // a takeover between this read and the writes below is not excluded; it cannot happen while
      // the publisher's own lease is valid, which it checks before and after building the CRL.)
      CA_TRY(auto view, read_lease_view(c, dn));
      if (view.lease.epoch != crl.epoch)
        return fail(Error::conflict(
            fmt::format("the CRL lease is at epoch {}, not {}: this instance is no longer the CRL master",
                        view.lease.epoch, crl.epoch)));
    }
    std::vector<LdapModification> mods{
        {Op::replace, "caDeltaCrlNumber",
         crl.delta_number ? std::vector{std::to_string(crl.delta_number)} : std::vector<std::string>{}},
        {Op::replace, "caThisUpdate", {to_generalized_time(crl.this_update)}},
        {Op::replace, "caNextUpdate", {to_generalized_time(crl.next_update)}},
        {Op::replace, "caModifiedAt", {now_generalized()}},
        {Op::replace, "caCrlServeFrom", {millis_text(crl.serve_from)}},
        {Op::replace, "caCrlPartitions",
         crl.partitions.empty() ? std::vector<std::string>{} : std::vector{std::to_string(crl.partitions.size())}},
    };
    if (!entry) {
      if (crl.epoch)
        return fail(Error::conflict("the CRL issuing point has no lease: this instance is not its master"));
      std::vector<LdapAttribute> attrs{{"objectClass", {"caCrlIssuingPoint"}},
                                       {"cn", {crl.issuing_point}},
                                       {"caCrlNumber", {std::to_string(crl.crl_number)}}};
      for (const auto& m : mods)
        if (!m.values.empty()) attrs.push_back({m.attribute, m.values});
      CA_CHECK(c.add(dn, attrs));
    } else {
      std::string old = entry->first_or("caCrlNumber", "0");
      uint64_t old_number = parse_u64(old).value_or(0);
      uint64_t old_delta = parse_u64(entry->first_or("caDeltaCrlNumber", "0")).value_or(0);
      if (std::max(crl.crl_number, crl.delta_number) <= std::max(old_number, old_delta))
        return fail(
            Error::conflict(fmt::format("CRL number {} is not above the stored {}",
                                        std::max(crl.crl_number, crl.delta_number), std::max(old_number, old_delta))));
      // Compare-and-set on the number so that two writers can never move it backwards. caCrlEpoch
      // here records the epoch of the latest publication (the lease is in the epoch entries). The
      // CRLs of a legacy layout leave the issuing point entry.
      mods.push_back({Op::replace, "certificateRevocationList;binary", {}});
      mods.push_back({Op::replace, "deltaRevocationList;binary", {}});
      if (crl.epoch) mods.push_back({Op::replace, "caCrlEpoch", {std::to_string(crl.epoch)}});
      if (entry->first("caCrlNumber"))
        mods.insert(mods.begin(),
                    {{Op::remove, "caCrlNumber", {old}}, {Op::add, "caCrlNumber", {std::to_string(crl.crl_number)}}});
      else
        mods.insert(mods.begin(), {Op::add, "caCrlNumber", {std::to_string(crl.crl_number)}});
      CA_CHECK(c.modify(dn, mods));
    }
    // The CRLs, each in its own entry: a delta-only publication leaves the full CRLs untouched.
    auto write_scope = [&](const CrlScope& scope, std::optional<std::size_t> partition) -> Status {
      for (bool delta : {false, true}) {
        const auto& stored = delta ? scope.delta : scope.full;
        if (!stored) continue;
        const std::string rdn = crl_child_rdn(delta, partition);
        CA_CHECK(write_child_crl(c, fmt::format("{},{}", rdn, dn), rdn.substr(3), *stored, delta));
      }
      return ok();
    };
    CA_CHECK(write_scope(crl.complete, std::nullopt));
    for (std::size_t k = 0; k < crl.partitions.size(); ++k) CA_CHECK(write_scope(crl.partitions[k], k));
    return ok();
  });
}

Result<bool> LdapCaStore::is_group_member(std::string_view group, std::string_view member) {
  std::string dn = layout_.group_dn(group);
  std::string filter = fmt::format("(caGroupMember={})", escape_filter_value(member));
  auto found = pool_.with_connection([&](LdapConnection& c) {
    return c.search(dn, SearchScope::base, filter, SearchOptions{{"cn"}, 1});
  });
  if (!found && found.error().is(ErrorCode::not_found)) return false;  // a group nobody was ever added to
  if (!found) return fail(found.error());
  return !found->empty();
}

Status LdapCaStore::add_group_member(std::string_view group, std::string_view member) {
  std::string dn = layout_.group_dn(group);
  return pool_.with_connection([&](LdapConnection& c) -> Status {
    Status st = c.modify(dn, {{Op::add, "caGroupMember", {std::string(member)}}});
    if (!st && st.error().is(ErrorCode::conflict)) return ok();  // already a member
    if (!st && st.error().is(ErrorCode::not_found)) {
      // A group a directory made by an earlier version lacks (administrators, auditors).
      Status added = c.add(
          dn, {{"objectClass", {"caGroup"}}, {"cn", {std::string(group)}}, {"caGroupMember", {std::string(member)}}});
      if (!added && added.error().is(ErrorCode::conflict))
        return c.modify(dn, {{Op::add, "caGroupMember", {std::string(member)}}});
      return added;
    }
    return st;
  });
}

Status LdapCaStore::put_profile(const ProfileRecord& p, bool overwrite) {
  std::string dn = fmt::format("cn={},{}", escape_dn_value(p.id), layout_.profiles());
  return pool_.with_connection([&](LdapConnection& c) -> Status {
    CA_TRY(auto existing, c.read(dn, {"cn"}));
    if (existing) {
      if (!overwrite) return ok();
      return c.modify(dn, {{Op::replace, "caProfileConfig", {p.definition_yaml}},
                           {Op::replace, "caProfileEnabled", {p.enabled ? "TRUE" : "FALSE"}},
                           {Op::replace, "caModifiedAt", {now_generalized()}}});
    }
    return c.add(dn, {{"objectClass", {"caProfile"}},
                      {"cn", {p.id}},
                      {"caProfileId", {p.id}},
                      {"caProfileConfig", {p.definition_yaml}},
                      {"caProfileEnabled", {p.enabled ? "TRUE" : "FALSE"}},
                      {"caModifiedAt", {now_generalized()}}});
  });
}

Result<std::vector<ProfileRecord>> LdapCaStore::list_profiles() {
  CA_TRY(auto entries, pool_.with_connection([&](LdapConnection& c) {
    return c.search(layout_.profiles(), SearchScope::one, "(objectClass=caProfile)", {});
  }));
  std::vector<ProfileRecord> out;
  for (const auto& e : entries)
    out.push_back(
        {e.first_or("caProfileId"), e.first_or("caProfileConfig"), e.first_or("caProfileEnabled", "TRUE") == "TRUE"});
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  return out;
}

}  // namespace ca::store

namespace ca::store {

Status LdapCaStore::remove_group_member(std::string_view group, std::string_view member) {
  std::string dn = layout_.group_dn(group);
  return pool_.with_connection([&](LdapConnection& c) -> Status {
    Status st = c.modify(dn, {{Op::remove, "caGroupMember", {std::string(member)}}});
    if (!st && st.error().is(ErrorCode::conflict))
      return fail(Error::not_found(fmt::format("'{}' is not a member of '{}'", member, group)));
    return st;
  });
}

Result<std::vector<std::string>> LdapCaStore::group_members(std::string_view group) {
  std::string dn = layout_.group_dn(group);
  CA_TRY(auto entry, pool_.with_connection([&](LdapConnection& c) { return c.read(dn, {"caGroupMember"}); }));
  if (!entry) return fail(Error::not_found(fmt::format("no group '{}'", group)));
  const auto* members = entry->values("caGroupMember");
  return members ? *members : std::vector<std::string>{};
}

namespace {
std::vector<LdapModification> transition_modifications(std::string_view expected_state, const RequestTransition& t) {
  // The remove of the old value is the compare: it fails with noSuchAttribute (conflict) when
  // another agent or instance moved the request first.
  std::vector<LdapModification> mods{{Op::remove, "caRequestState", {std::string(expected_state)}},
                                     {Op::add, "caRequestState", {t.state}},
                                     {Op::replace, "caModifiedAt", {now_generalized()}}};
  if (!t.approved_by.empty()) mods.push_back({Op::replace, "caApprovedBy", {t.approved_by}});
  if (!t.approval_changes.empty()) mods.push_back({Op::replace, "caApprovalChanges", {t.approval_changes}});
  if (!t.result.empty()) mods.push_back({Op::replace, "caRequestResult", {t.result}});
  return mods;
}
}  // namespace

Status LdapCaStore::transition_request(std::string_view id_hex, std::string_view expected_state,
                                       const RequestTransition& t) {
  std::string dn = layout_.request_dn(id_hex);
  return pool_.with_connection([&](LdapConnection& c) -> Status {
    Status st = c.modify(dn, transition_modifications(expected_state, t));
    if (!st && st.error().is(ErrorCode::conflict))
      return fail(Error::conflict(fmt::format("request 0x{} is no longer {}", canonical_hex(id_hex), expected_state)));
    return st;
  });
}

void LdapCaStore::commit_approved_request(const RequestRecord& request, CertificateRecord certificate,
                                          std::optional<std::pair<std::string, std::string>> group_member,
                                          std::function<void(Status)> done) {
  WriteUnit unit;
  unit.ops.push_back(WriteOp{
      WriteOp::Kind::add, layout_.certificate_dn(certificate.serial_hex), certificate_attributes(certificate), {}});
  RequestTransition t{"complete", "", "", "issued"};
  auto mods = transition_modifications("approved", t);
  mods.push_back({Op::replace, "caSerialNumber", {fixed_width_hex(certificate.serial_hex)}});
  unit.ops.push_back(WriteOp{WriteOp::Kind::modify, layout_.request_dn(request.id_hex), {}, std::move(mods)});
  if (group_member)
    unit.ops.push_back(WriteOp{WriteOp::Kind::modify,
                               layout_.group_dn(group_member->first),
                               {},
                               {{Op::add, "caGroupMember", {group_member->second}}}});
  unit.done = std::move(done);
  writer_.submit(std::move(unit));
}

Result<RequestPage> LdapCaStore::list_requests(const RequestQuery& q) {
  std::string filter = "(&(objectClass=caRequestRecord)";
  if (!q.state.empty()) filter += fmt::format("(caRequestState={})", escape_filter_value(q.state));
  if (q.replica_id > 0) filter += fmt::format("(caReplicaId={})", q.replica_id);
  if (!q.subject_dn.empty()) filter += fmt::format("(caSubjectDN={})", escape_filter_value(q.subject_dn));
  if (!q.profile_id.empty()) filter += fmt::format("(caProfileId={})", escape_filter_value(q.profile_id));
  filter += ")";
  CA_TRY(auto keys, pool_.with_connection([&](LdapConnection& c) {
    return c.search(layout_.requests(), SearchScope::one, filter, SearchOptions{{"caRequestId"}, kListingSearchLimit});
  }));
  std::vector<std::string> ids;
  for (const auto& e : keys)
    if (auto s = e.first("caRequestId")) ids.push_back(fixed_width_hex(*s));
  std::sort(ids.begin(), ids.end());
  RequestPage page;
  page.total = ids.size();
  page.truncated = ids.size() >= static_cast<std::size_t>(kListingSearchLimit);
  std::size_t end = std::min(ids.size(), q.start + q.size);
  for (std::size_t i = q.start; i < end; ++i) {
    auto rec = find_request(ids[i]);
    if (!rec) {
      if (rec.error().is(ErrorCode::not_found)) continue;  // removed meanwhile
      return fail(rec.error());
    }
    page.entries.push_back(std::move(*rec));
  }
  return page;
}

Status LdapCaStore::add_enrollment_code(const EnrollmentCodeRecord& code) {
  std::vector<LdapAttribute> attrs{{"objectClass", {"caEnrollmentCode"}},
                                   {"cn", {code.id}},
                                   {"caProfileId", {code.profile_id}},
                                   {"caSecretHash", {code.secret_hash}},
                                   {"caCodeState", {code.state}},
                                   {"caExpiresAt", {to_generalized_time(code.expires_at)}},
                                   {"caCreatedAt", {to_generalized_time(code.created_at)}}};
  put(attrs, "caSubjectDN", code.subject_dn);
  put(attrs, "caIssuedBy", code.created_by);
  if (!code.allowed_names.empty()) attrs.push_back({"caAllowedName", code.allowed_names});
  std::string dn = layout_.enrollment_code_dn(code.id);
  return pool_.with_connection([&](LdapConnection& c) -> Status {
    Status st = c.add(dn, attrs);
    if (st || !st.error().is(ErrorCode::not_found)) return st;
    // A directory made before enrollment codes existed: create their folder once.
    Status folder =
        c.add(layout_.enrollment_codes(), {{"objectClass", {"organizationalUnit"}}, {"ou", {"enrollmentCodes"}}});
    if (!folder && !folder.error().is(ErrorCode::conflict)) return folder;
    return c.add(dn, attrs);
  });
}

namespace {

std::vector<LdapAttribute> key_attributes(const KeyRecord& k) {
  std::vector<LdapAttribute> a{
      {"objectClass", {"caKeyRecord"}}, {"cn", {k.key_id}},
      {"caKeyId", {k.key_id}},          {"caWrappedPrivateKey", {std::string(k.sealed.begin(), k.sealed.end())}},
      {"caCertStatus", {k.state}},      {"caCreatedAt", {to_generalized_time(k.created_at)}}};
  put(a, "caKeyOwner", k.owner);
  put(a, "caKeyAlgorithm", k.algorithm);
  if (k.size_bits > 0) a.push_back({"caKeySize", {std::to_string(k.size_bits)}});
  if (!k.serial_hex.empty()) a.push_back({"caSerialNumber", {fixed_width_hex(k.serial_hex)}});
  if (!k.request_id_hex.empty()) a.push_back({"caRequestId", {fixed_width_hex(k.request_id_hex)}});
  put(a, "caIssuedBy", k.archived_by);
  return a;
}

KeyRecord key_from_entry(const LdapEntry& e) {
  KeyRecord k;
  k.key_id = e.first_or("caKeyId");
  if (auto v = e.first("caWrappedPrivateKey")) k.sealed.assign(v->begin(), v->end());
  k.owner = e.first_or("caKeyOwner");
  k.algorithm = e.first_or("caKeyAlgorithm");
  k.size_bits = std::atoi(e.first_or("caKeySize", "0").c_str());
  if (auto v = e.first("caSerialNumber")) k.serial_hex = canonical_hex(*v);
  if (auto v = e.first("caRequestId")) k.request_id_hex = canonical_hex(*v);
  k.state = e.first_or("caCertStatus", "active");
  k.archived_by = e.first_or("caIssuedBy");
  k.created_at = time_or_epoch(e, "caCreatedAt");
  return k;
}

RecoveryRecord recovery_from_entry(const LdapEntry& e) {
  RecoveryRecord r;
  r.id = e.first_or("cn");
  r.state = e.first_or("caRequestState");
  r.key_id = e.first_or("caKeyId");
  if (auto v = e.first("caSerialNumber")) r.serial_hex = canonical_hex(*v);
  r.requester = e.first_or("caRequester");
  r.requester_name = e.first_or("description");
  if (const auto* v = e.values("caApprover")) r.approvers = *v;
  r.approvals_required = std::atoi(e.first_or("caApprovalsRequired", "1").c_str());
  r.approval_count = std::atoi(e.first_or("caApprovalCount", "0").c_str());
  r.result = e.first_or("caRequestResult");
  r.instance_id = e.first_or("caInstanceId");
  r.created_at = time_or_epoch(e, "caCreatedAt");
  r.modified_at = time_or_epoch(e, "caModifiedAt");
  return r;
}

}  // namespace

void LdapCaStore::commit_enrollment_with_key(RequestRecord request, CertificateRecord certificate, KeyRecord key,
                                             std::function<void(Status)> done) {
  WriteUnit unit;
  unit.ops.push_back(WriteOp{WriteOp::Kind::add, layout_.key_dn(key.key_id), key_attributes(key), {}});
  unit.ops.push_back(WriteOp{WriteOp::Kind::add, layout_.request_dn(request.id_hex), request_attributes(request), {}});
  unit.ops.push_back(WriteOp{
      WriteOp::Kind::add, layout_.certificate_dn(certificate.serial_hex), certificate_attributes(certificate), {}});
  unit.done = std::move(done);
  writer_.submit(std::move(unit));
}

Result<KeyRecord> LdapCaStore::find_key(std::string_view key_id) {
  std::string dn = layout_.key_dn(key_id);
  CA_TRY(auto entry, pool_.with_connection([&](LdapConnection& c) { return c.read(dn); }));
  if (!entry) return fail(Error::not_found(fmt::format("no archived key {}", key_id)));
  return key_from_entry(*entry);
}

Result<KeyRecord> LdapCaStore::find_key_by_serial(std::string_view serial_hex) {
  std::string filter =
      fmt::format("(&(objectClass=caKeyRecord)(caSerialNumber={}))", escape_filter_value(fixed_width_hex(serial_hex)));
  CA_TRY(auto entries, pool_.with_connection([&](LdapConnection& c) {
    return c.search(layout_.keys(), SearchScope::one, filter, SearchOptions{{}, 2});
  }));
  if (entries.empty())
    return fail(Error::not_found(fmt::format("no key was archived for certificate 0x{}", canonical_hex(serial_hex))));
  return key_from_entry(entries.front());
}

Status LdapCaStore::add_recovery(const RecoveryRecord& r) {
  std::vector<LdapAttribute> attrs{{"objectClass", {"caRecoveryRequest"}},
                                   {"cn", {r.id}},
                                   {"caRequestId", {r.id}},
                                   {"caRequestState", {r.state}},
                                   {"caKeyId", {r.key_id}},
                                   {"caRequester", {r.requester}},
                                   {"caApprovalsRequired", {std::to_string(r.approvals_required)}},
                                   {"caApprovalCount", {"0"}},
                                   {"caCreatedAt", {to_generalized_time(r.created_at)}},
                                   {"caModifiedAt", {to_generalized_time(r.modified_at)}}};
  if (!r.serial_hex.empty()) attrs.push_back({"caSerialNumber", {fixed_width_hex(r.serial_hex)}});
  put(attrs, "description", r.requester_name);
  put(attrs, "caInstanceId", r.instance_id);
  put(attrs, "caRequestResult", r.result);
  std::string dn = layout_.recovery_dn(r.id);
  return pool_.with_connection([&](LdapConnection& c) -> Status {
    Status st = c.add(dn, attrs);
    if (st || !st.error().is(ErrorCode::not_found)) return st;
    // A directory made before key recovery existed: create the folder once.
    Status folder =
        c.add(layout_.recoveries(), {{"objectClass", {"organizationalUnit"}}, {"ou", {"recoveryRequests"}}});
    if (!folder && !folder.error().is(ErrorCode::conflict)) return folder;
    return c.add(dn, attrs);
  });
}

Result<RecoveryRecord> LdapCaStore::find_recovery(std::string_view id) {
  std::string dn = layout_.recovery_dn(id);
  CA_TRY(auto entry, pool_.with_connection([&](LdapConnection& c) { return c.read(dn); }));
  if (!entry) return fail(Error::not_found(fmt::format("no recovery request {}", id)));
  return recovery_from_entry(*entry);
}

Result<std::vector<RecoveryRecord>> LdapCaStore::list_recoveries(std::string_view state) {
  std::string filter =
      state.empty() ? "(objectClass=caRecoveryRequest)"
                    : fmt::format("(&(objectClass=caRecoveryRequest)(caRequestState={}))", escape_filter_value(state));
  auto entries = pool_.with_connection([&](LdapConnection& c) {
    return c.search(layout_.recoveries(), SearchScope::one, filter, SearchOptions{{}, kListingSearchLimit});
  });
  if (!entries) {
    if (entries.error().is(ErrorCode::not_found)) return std::vector<RecoveryRecord>{};
    return fail(entries.error());
  }
  std::vector<RecoveryRecord> out;
  for (const auto& e : *entries) out.push_back(recovery_from_entry(e));
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.created_at < b.created_at; });
  return out;
}

Status LdapCaStore::approve_recovery(std::string_view id, std::string_view approver, int seen, bool complete) {
  std::string dn = layout_.recovery_dn(id);
  std::vector<LdapModification> mods{{Op::add, "caApprover", {std::string(approver)}},
                                     {Op::remove, "caApprovalCount", {std::to_string(seen)}},
                                     {Op::add, "caApprovalCount", {std::to_string(seen + 1)}},
                                     {Op::replace, "caModifiedAt", {now_generalized()}}};
  if (complete) {
    mods.push_back({Op::remove, "caRequestState", {"pending"}});
    mods.push_back({Op::add, "caRequestState", {"approved"}});
  }
  return pool_.with_connection([&](LdapConnection& c) { return c.modify(dn, mods); });
}

Status LdapCaStore::transition_recovery(std::string_view id, std::string_view from, std::string_view to,
                                        std::string_view result) {
  std::string dn = layout_.recovery_dn(id);
  std::vector<LdapModification> mods{{Op::remove, "caRequestState", {std::string(from)}},
                                     {Op::add, "caRequestState", {std::string(to)}},
                                     {Op::replace, "caModifiedAt", {now_generalized()}}};
  if (!result.empty()) mods.push_back({Op::replace, "caRequestResult", {std::string(result)}});
  return pool_.with_connection([&](LdapConnection& c) { return c.modify(dn, mods); });
}

Result<EnrollmentCodeRecord> LdapCaStore::find_enrollment_code(std::string_view id) {
  std::string dn = layout_.enrollment_code_dn(id);
  CA_TRY(auto entry, pool_.with_connection([&](LdapConnection& c) { return c.read(dn); }));
  if (!entry) return fail(Error::not_found("unknown enrollment code"));
  EnrollmentCodeRecord r;
  r.id = entry->first_or("cn");
  r.profile_id = entry->first_or("caProfileId");
  r.secret_hash = entry->first_or("caSecretHash");
  r.state = entry->first_or("caCodeState");
  r.subject_dn = entry->first_or("caSubjectDN");
  if (const auto* names = entry->values("caAllowedName")) r.allowed_names = *names;
  r.expires_at = time_or_epoch(*entry, "caExpiresAt");
  r.created_at = time_or_epoch(*entry, "caCreatedAt");
  r.created_by = entry->first_or("caIssuedBy");
  if (auto id_hex = entry->first("caRequestId")) r.used_by_request = canonical_hex(*id_hex);
  return r;
}

Status LdapCaStore::consume_enrollment_code(std::string_view id, std::string_view request_id_hex) {
  std::string dn = layout_.enrollment_code_dn(id);
  return pool_.with_connection([&](LdapConnection& c) -> Status {
    Status st = c.modify(dn, {{Op::remove, "caCodeState", {"unused"}},
                              {Op::add, "caCodeState", {"used"}},
                              {Op::replace, "caRequestId", {fixed_width_hex(request_id_hex)}},
                              {Op::replace, "caModifiedAt", {now_generalized()}}});
    if (!st && st.error().is(ErrorCode::conflict))
      return fail(Error::forbidden("this enrollment code was already used"));
    return st;
  });
}

Status LdapCaStore::release_enrollment_code(std::string_view id) {
  std::string dn = layout_.enrollment_code_dn(id);
  return pool_.with_connection([&](LdapConnection& c) -> Status {
    return c.modify(dn, {{Op::remove, "caCodeState", {"used"}},
                         {Op::add, "caCodeState", {"unused"}},
                         {Op::remove, "caRequestId", {}},
                         {Op::replace, "caModifiedAt", {now_generalized()}}});
  });
}

Status LdapCaStore::add_join_token(const JoinTokenRecord& token) {
  std::vector<LdapAttribute> attrs{{"objectClass", {"caJoinToken"}},
                                   {"cn", {token.id}},
                                   {"caSecretHash", {token.secret_hash}},
                                   {"caCodeState", {token.state}},
                                   {"caExpiresAt", {to_generalized_time(token.expires_at)}},
                                   {"caCreatedAt", {to_generalized_time(token.created_at)}}};
  put(attrs, "caInstanceId", token.instance_id);
  put(attrs, "caIssuedBy", token.created_by);
  std::string dn = layout_.join_token_dn(token.id);
  return pool_.with_connection([&](LdapConnection& c) -> Status {
    Status st = c.add(dn, attrs);
    if (st || !st.error().is(ErrorCode::not_found)) return st;
    Status folder = c.add(layout_.join_tokens(), {{"objectClass", {"organizationalUnit"}}, {"ou", {"joinTokens"}}});
    if (!folder && !folder.error().is(ErrorCode::conflict)) return folder;
    return c.add(dn, attrs);
  });
}

Result<JoinTokenRecord> LdapCaStore::find_join_token(std::string_view id) {
  std::string dn = layout_.join_token_dn(id);
  CA_TRY(auto entry, pool_.with_connection([&](LdapConnection& c) { return c.read(dn); }));
  if (!entry) return fail(Error::not_found("unknown join token"));
  JoinTokenRecord r;
  r.id = entry->first_or("cn");
  r.secret_hash = entry->first_or("caSecretHash");
  r.state = entry->first_or("caCodeState");
  r.instance_id = entry->first_or("caInstanceId");
  r.expires_at = time_or_epoch(*entry, "caExpiresAt");
  r.created_at = time_or_epoch(*entry, "caCreatedAt");
  r.created_by = entry->first_or("caIssuedBy");
  r.replica_id = static_cast<int>(parse_u64(entry->first_or("caReplicaId", "0")).value_or(0));
  return r;
}

Status LdapCaStore::consume_join_token(std::string_view id, int replica_id) {
  std::string dn = layout_.join_token_dn(id);
  return pool_.with_connection([&](LdapConnection& c) -> Status {
    Status st = c.modify(dn, {{Op::remove, "caCodeState", {"unused"}},
                              {Op::add, "caCodeState", {"used"}},
                              {Op::replace, "caReplicaId", {std::to_string(replica_id)}},
                              {Op::replace, "caModifiedAt", {now_generalized()}}});
    if (!st && st.error().is(ErrorCode::conflict)) return fail(Error::forbidden("this join token was already used"));
    return st;
  });
}

}  // namespace ca::store
