#include "authority/instance/agent_admin.hpp"

#include <future>

#include <fmt/format.h>
#include <openssl/rand.h>

#include "authority/access/presented_certificate.hpp"
#include "authority/issuance/serial_text.hpp"
#include "authority/revocation/crl_partitions.hpp"
#include "authority/revocation/revocation.hpp"
#include "core/log.hpp"
#include "crypto/certificate_builder.hpp"
#include "crypto/issuer.hpp"
#include "crypto/keys.hpp"
#include "crypto/pem.hpp"

namespace ca::authority {

namespace {
constexpr std::string_view kLog = "agent";

std::string serial_of_member(std::string_view member) {
  if (!member.starts_with("serial=")) return {};
  auto end = member.find(';');
  return std::string(member.substr(7, end == std::string_view::npos ? std::string_view::npos : end - 7));
}

AgentEntry entry_for(store::CaStore& store, std::string member) {
  AgentEntry e;
  e.member_value = std::move(member);
  e.serial_hex = serial_of_member(e.member_value);
  e.status = "missing";
  if (!e.serial_hex.empty()) {
    if (auto rec = store.find_certificate(e.serial_hex)) {
      e.subject_dn = rec->subject_dn;
      e.status = rec->status;
    }
  }
  return e;
}
}  // namespace

Result<std::vector<AgentEntry>> list_agents(store::CaStore& store, const Role& role) {
  auto listed = store.group_members(role.group);
  if (!listed && listed.error().is(ErrorCode::not_found)) return std::vector<AgentEntry>{};
  CA_TRY(auto members, std::move(listed));
  std::vector<AgentEntry> out;
  for (auto& m : members) out.push_back(entry_for(store, std::move(m)));
  return out;
}

Result<AgentEntry> add_agent_certificate(store::CaStore& store, const InstanceConfig& config,
                                         const std::filesystem::path& certificate_file, const Role& role) {
  CA_TRY(auto ca_cert, crypto::load_certificate_file(config.cert_file("ca_signing")));
  CA_TRY(auto cert, crypto::load_certificate_file(certificate_file));
  // The same checks as a request from that certificate: ours, valid now, VALID in the directory.
  CA_TRY(auto presented, check_presented_certificate(store, ca_cert.get(), crypto::PeerCertificate::of(cert.get()),
                                                     fmt::format("the new {}", role.name)));
  CA_CHECK(store.add_group_member(role.group, presented.member_value));
  log::info(kLog, "certificate 0x{} ('{}') is now an {}", presented.serial_hex, presented.subject_dn, role.name);
  return entry_for(store, presented.member_value);
}

Result<AgentEntry> issue_agent_certificate(store::CaStore& store, const InstanceConfig& config,
                                           const std::string& subject, const std::filesystem::path& out_dir,
                                           const Role& role) {
  CA_TRY(auto ca, crypto::Issuer::open(config.cert_file("ca_signing"), config.key_uri("ca_signing")));
  CA_TRY(auto name, crypto::parse_name(subject));
  CA_TRY(auto key, crypto::generate_key(KeyType::ec_p256));
  std::string serial;
  for (int attempt = 0; attempt < 5 && serial.empty(); ++attempt) {
    CA_TRY(std::string hex, random_serial_hex());
    CA_TRY(bool taken, store.certificate_exists(hex));
    if (!taken) serial = hex;
  }
  if (serial.empty()) return fail(Error::internal("could not find a free serial number"));
  auto now = std::chrono::system_clock::now();
  crypto::CertificateSpec spec;
  spec.serial_hex = serial;
  spec.subject = name.get();
  spec.public_key = key.get();
  spec.not_before = now - std::chrono::minutes(5);
  spec.not_after = now + std::chrono::hours(24 * 730);
  spec.key_usage = {"digitalSignature"};
  spec.extended_key_usage = {"clientAuth"};
  point_to_crls(spec, config.public_base_url(), serial, static_cast<std::size_t>(config.crl.partitions));
  spec.ocsp_url = config.public_base_url() + "/ocsp";
  CA_TRY(auto cert, ca.sign_certificate(spec));

  store::CertificateRecord record;
  record.serial_hex = serial;
  record.subject_dn = crypto::name_to_string(X509_get_subject_name(cert.get()));
  record.issuer_dn = crypto::name_to_string(X509_get_subject_name(ca.certificate()));
  record.not_before = spec.not_before;
  record.not_after = spec.not_after;
  record.issued_at = now;
  record.profile_id = std::string(role.profile);
  record.replica_id = config.ranges.replica_id;
  record.issued_by = fmt::format("{} (ca-server {} add)", config.instance_id, role.command);
  record.der = crypto::certificate_to_der(cert.get());
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  // Named by the serial as every listing prints it (no leading zeros).
  const auto key_file = out_dir / fmt::format("{}-{}.key", role.command, store::canonical_hex(serial));
  const auto cert_file = out_dir / fmt::format("{}-{}.pem", role.command, store::canonical_hex(serial));
  // Files first: a certificate whose key was never written is useless, and nothing is recorded yet.
  CA_CHECK(crypto::write_private_key_file(key_file, key.get()));
  CA_CHECK(crypto::write_certificate_file(cert_file, cert.get()));
  store::RequestRecord request;  // an operator's issuance: no request number is taken from the ranges
  std::promise<Status> committed;
  request.id_hex = serial;  // unique, and distinguishable from counter-based request numbers
  request.state = "complete";
  request.profile_id = std::string(role.profile);
  request.serial_hex = serial;
  request.subject_dn = record.subject_dn;
  request.created_at = request.modified_at = now;
  request.result = fmt::format("issued by the operator (ca-server {} add)", role.command);
  request.requester = "local operator";
  request.instance_id = config.instance_id;
  record.request_id_hex = request.id_hex;
  store.commit_enrollment(request, record, [&](const Status& st) { committed.set_value(st); });
  if (auto st = committed.get_future().get(); !st) {
    std::filesystem::remove(key_file, ec);
    std::filesystem::remove(cert_file, ec);
    return fail(st.error());
  }
  std::string member = certificate_member_value(cert.get());
  CA_CHECK(store.add_group_member(role.group, member));
  log::info(kLog, "issued {} certificate 0x{} for '{}': {} + {}", role.name, serial, record.subject_dn,
            cert_file.string(), key_file.string());
  return entry_for(store, member);
}

Result<AgentEntry> remove_agent(store::CaStore& store, std::string_view serial_hex, bool revoke, const Role& role) {
  std::string wanted = store::canonical_hex(serial_hex.starts_with("0x") ? serial_hex.substr(2) : serial_hex);
  CA_TRY(auto members, store.group_members(role.group));
  for (auto& m : members) {
    if (store::canonical_hex(serial_of_member(m)) != wanted) continue;
    CA_CHECK(store.remove_group_member(role.group, m));
    log::info(kLog, "certificate 0x{} is no longer an {}", wanted, role.name);
    if (revoke) {
      store::Revocation r;
      r.serial_hex = wanted;
      r.revoked_on = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
      r.reason = 4;  // superseded
      r.revoked_by = fmt::format("local operator (ca-server {} remove)", role.command);
      if (auto st = store.revoke_certificate(r); !st && !st.error().is(ErrorCode::conflict)) return fail(st.error());
    }
    return entry_for(store, m);
  }
  return fail(Error::not_found(fmt::format("no {} has a certificate with serial 0x{}", role.name, wanted)));
}

}  // namespace ca::authority
