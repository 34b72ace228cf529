#include "support/fake_ca_store.hpp"

#include <charconv>

#include <fmt/format.h>

namespace ca::testing {

using namespace store;

Status FakeCaStore::check_up() const {
  if (down_) return fail(Error::unavailable("fake directory is down"));
  return ok();
}

void FakeCaStore::commit_enrollment(RequestRecord request, std::optional<CertificateRecord> certificate,
                                    std::function<void(Status)> done) {
  Status st = [&]() -> Status {
    std::lock_guard lock(mutex_);
    CA_CHECK(check_up());
    std::string rid = canonical_hex(request.id_hex);
    if (requests_.count(rid)) return fail(Error::conflict("request exists: " + rid));
    if (certificate && certificates_.count(canonical_hex(certificate->serial_hex)))
      return fail(Error::conflict("certificate exists: " + certificate->serial_hex));
    requests_[rid] = request;
    if (certificate) certificates_[canonical_hex(certificate->serial_hex)] = *certificate;
    return ok();
  }();
  done(st);
}

Result<CertificateRecord> FakeCaStore::find_certificate(std::string_view serial_hex) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  auto it = certificates_.find(canonical_hex(serial_hex));
  if (it == certificates_.end()) return fail(Error::not_found("no certificate"));
  return it->second;
}

Result<bool> FakeCaStore::certificate_exists(std::string_view serial_hex) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  return certificates_.count(canonical_hex(serial_hex)) > 0;
}

Result<RequestRecord> FakeCaStore::find_request(std::string_view id_hex) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  auto it = requests_.find(canonical_hex(id_hex));
  if (it == requests_.end()) return fail(Error::not_found("no request"));
  return it->second;
}

Result<CertificatePage> FakeCaStore::list_certificates(const CertificateQuery& q) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  CertificatePage page;
  std::size_t i = 0;
  for (const auto& [serial, rec] : certificates_) {
    if (!q.status.empty() && rec.status != q.status) continue;
    if (!q.profile_id.empty() && rec.profile_id != q.profile_id) continue;
    if (i >= q.start && page.entries.size() < q.size) page.entries.push_back(rec);
    ++i;
  }
  page.total = i;
  return page;
}

Result<NumberRange> FakeCaStore::claim_range(RangeKind kind, uint64_t size, uint64_t floor, int, std::string_view) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  uint64_t& counter = counters_.try_emplace(kind, 1).first->second;
  NumberRange r{std::max(counter, floor), std::max(counter, floor) + size - 1};
  counter = r.end + 1;
  ++claims_;
  return r;
}

Result<std::optional<ReplicaRecord>> FakeCaStore::load_replica(int replica_id) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  auto it = replicas_.find(replica_id);
  if (it == replicas_.end()) return std::optional<ReplicaRecord>{};
  return std::optional<ReplicaRecord>(it->second);
}

Status FakeCaStore::save_replica(const ReplicaRecord& replica) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  replicas_[replica.replica_id] = replica;
  return ok();
}

Result<std::optional<uint64_t>> FakeCaStore::highest_counter_used(RangeKind kind, int replica_id, uint64_t from,
                                                                  uint64_t to) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  std::optional<uint64_t> highest;
  auto consider = [&](const std::string& hex) {
    uint64_t v = 0;
    std::from_chars(hex.data(), hex.data() + hex.size(), v, 16);
    if (replica_of(v) != replica_id) return;
    uint64_t c = counter_of(v);
    if (c >= from && c <= to) highest = std::max(highest.value_or(0), c);
  };
  if (kind == RangeKind::serial)
    for (const auto& [k, _] : certificates_) consider(k);
  else
    for (const auto& [k, _] : requests_) consider(k);
  return highest;
}

Status FakeCaStore::put_profile(const ProfileRecord& profile, bool overwrite) {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  if (!overwrite && profiles_.count(profile.id)) return ok();
  profiles_[profile.id] = profile;
  return ok();
}

Result<std::vector<ProfileRecord>> FakeCaStore::list_profiles() {
  std::lock_guard lock(mutex_);
  CA_CHECK(check_up());
  std::vector<ProfileRecord> out;
  for (const auto& [_, p] : profiles_) out.push_back(p);
  return out;
}

void FakeCaStore::set_counter(RangeKind kind, uint64_t value) {
  std::lock_guard lock(mutex_);
  counters_[kind] = value;
}

std::size_t FakeCaStore::certificate_count() const {
  std::lock_guard lock(mutex_);
  return certificates_.size();
}

std::size_t FakeCaStore::request_count() const {
  std::lock_guard lock(mutex_);
  return requests_.size();
}

}  // namespace ca::testing
