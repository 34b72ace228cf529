#include "authority/revocation/revocation.hpp"

#include <array>
#include <charconv>

#include <fmt/format.h>

#include "core/log.hpp"
#include "crypto/pem.hpp"

namespace ca::authority {

namespace {
constexpr std::string_view kLog = "revocation";
constexpr std::array<std::string_view, 11> kReasons{
    "unspecified",   "keyCompromise",        "cACompromise",    "affiliationChanged",
    "superseded",    "cessationOfOperation", "certificateHold", "",
    "removeFromCRL", "privilegeWithdrawn",   "aACompromise"};
}  // namespace

Result<int> parse_revocation_reason(std::string_view name) {
  for (std::size_t i = 0; i < kReasons.size(); ++i)
    if (!kReasons[i].empty() && kReasons[i] == name && i != 8) return static_cast<int>(i);
  return fail(Error::bad_request(fmt::format(
      "unknown revocation reason '{}' (use one of unspecified, keyCompromise, cACompromise, affiliationChanged, "
      "superseded, cessationOfOperation, certificateHold, privilegeWithdrawn, aACompromise)",
      name.substr(0, 64))));
}

std::string_view revocation_reason_name(int code) {
  return code >= 0 && code < static_cast<int>(kReasons.size()) ? kReasons[static_cast<std::size_t>(code)] : "";
}

Result<store::TimePoint> parse_rfc3339(std::string_view t) {
  // YYYY-MM-DDTHH:MM:SSZ (the form we print); fractions and offsets are not accepted.
  auto bad = [&] {
    return fail(
        Error::bad_request(fmt::format("'{}' is not a time of the form 2026-11-20T10:00:00Z", t.substr(0, 40))));
  };
  if (t.size() != 20 || t[4] != '-' || t[7] != '-' || t[10] != 'T' || t[13] != ':' || t[16] != ':' || t[19] != 'Z')
    return bad();
  std::string g = fmt::format("{}{}{}{}{}{}Z", t.substr(0, 4), t.substr(5, 2), t.substr(8, 2), t.substr(11, 2),
                              t.substr(14, 2), t.substr(17, 2));
  auto parsed = store::from_generalized_time(g);
  if (!parsed) return bad();
  return *parsed;
}

std::string AgentIdentity::display() const { return fmt::format("{} (0x{})", subject_dn, serial_hex); }

std::string AgentIdentity::requester() const { return requester_label(role, subject_dn, serial_hex); }

std::string requester_label(std::string_view role, std::string_view subject_dn, std::string_view serial_hex) {
  return fmt::format("{} {} (0x{})", role, subject_dn, serial_hex);
}

std::optional<std::string> identity_of_requester(std::string_view requester) {
  for (const Role& r : {kAgentRole, kAdministratorRole, kAuditorRole}) {
    const std::string prefix = std::string(r.name) + " ";
    if (!requester.starts_with(prefix)) continue;
    std::string_view rest = requester.substr(prefix.size());
    auto tail = rest.rfind(" (0x");
    if (tail == std::string_view::npos || !rest.ends_with(")")) return std::nullopt;
    return std::string(rest.substr(0, tail));
  }
  return std::nullopt;
}

Result<AgentIdentity> AgentAuthenticator::authenticate(const crypto::PeerCertificate& peer, std::string_view call) {
  auto agent = check(peer);
  const std::string role(role_.name);
  if (audit_ && agent && !call.empty()) audit_->record(role + "_call", agent->display(), call, "authenticated");
  // A certificate presented and refused is worth a record; no certificate at all (401) is not.
  if (audit_ && !agent && agent.error().is(ErrorCode::forbidden))
    audit_->record(role + "_refused", "a TLS client certificate",
                   call.empty() ? fmt::format("an operation of an {}", role_.name) : call, agent.error().message);
  return agent;
}

Result<AgentIdentity> AgentAuthenticator::check(const crypto::PeerCertificate& peer) {
  CA_TRY(auto presented,
         check_presented_certificate(store_, ca_cert_, peer, fmt::format("an {} of this CA", role_.name)));
  CA_TRY(bool member, store_.is_group_member(role_.group, presented.member_value));
  if (!member)
    return fail(Error::forbidden(fmt::format("the certificate 0x{} ('{}') is not in the group '{}'",
                                             presented.serial_hex, presented.subject_dn, role_.group)));
  return AgentIdentity{presented.subject_dn, presented.serial_hex, presented.member_value, std::string(role_.name)};
}

Result<std::optional<AgentIdentity>> AgentAuthenticator::identify(const crypto::PeerCertificate& peer) {
  if (peer.empty()) return std::optional<AgentIdentity>{};
  auto agent = check(peer);
  if (agent) return std::optional<AgentIdentity>{std::move(*agent)};
  if (agent.error().is(ErrorCode::forbidden) || agent.error().is(ErrorCode::unauthorized))
    return std::optional<AgentIdentity>{};
  return fail(agent.error());
}

Result<store::CertificateRecord> RevocationService::revoke(std::string_view serial_hex, std::string_view reason_name,
                                                           std::string_view invalidity_text,
                                                           const AgentIdentity& agent) {
  auto revoked = revoke_now(serial_hex, reason_name, invalidity_text, agent);
  if (audit_) {
    const std::string what = fmt::format("certificate 0x{}", serial_hex.substr(0, 64));
    if (revoked)
      audit_->record("certificate_revoked", agent.display(), fmt::format("{} ('{}')", what, revoked->subject_dn),
                     fmt::format("revoked: {}", reason_name.empty() ? "unspecified" : reason_name.substr(0, 64)));
    else
      audit_->record("revocation_failed", agent.display(), what, revoked.error().message);
  }
  return revoked;
}

Result<store::CertificateRecord> RevocationService::unrevoke(std::string_view serial_hex, const AgentIdentity& agent) {
  auto unrevoked = unrevoke_now(serial_hex, agent);
  if (audit_) {
    const std::string what = fmt::format("certificate 0x{}", serial_hex.substr(0, 64));
    if (unrevoked)
      audit_->record("certificate_unrevoked", agent.display(), fmt::format("{} ('{}')", what, unrevoked->subject_dn),
                     "taken off hold");
    else
      audit_->record("unrevocation_failed", agent.display(), what, unrevoked.error().message);
  }
  return unrevoked;
}

Result<store::CertificateRecord> RevocationService::revoke_now(std::string_view serial_hex,
                                                               std::string_view reason_name,
                                                               std::string_view invalidity_text,
                                                               const AgentIdentity& agent) {
  CA_TRY(int reason, parse_revocation_reason(reason_name.empty() ? "unspecified" : reason_name));
  store::Revocation r;
  r.serial_hex = std::string(serial_hex);
  r.revoked_on = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
  r.reason = reason;
  r.revoked_by = agent.subject_dn;
  if (!invalidity_text.empty()) {
    CA_TRY(auto t, parse_rfc3339(invalidity_text));
    if (t > r.revoked_on) return fail(Error::bad_request("invalidity_date is in the future"));
    r.invalidity_date = t;
  }
  CA_CHECK(store_.revoke_certificate(r));
  log::info(kLog, "certificate 0x{} revoked ({}) by '{}'", serial_hex, revocation_reason_name(reason),
            agent.subject_dn);
  if (publisher_)
    publisher_->revoked(
        {r.serial_hex, true, r.revoked_on, r.reason, r.invalidity_date, std::chrono::system_clock::now()});
  return store_.find_certificate(serial_hex);
}

Result<store::CertificateRecord> RevocationService::unrevoke_now(std::string_view serial_hex,
                                                                 const AgentIdentity& agent) {
  CA_CHECK(store_.unrevoke_certificate(serial_hex, agent.subject_dn));
  log::info(kLog, "certificate 0x{} taken off hold by '{}'", serial_hex, agent.subject_dn);
  if (publisher_)
    publisher_->revoked({std::string(serial_hex), false, {}, 6, std::nullopt, std::chrono::system_clock::now()});
  return store_.find_certificate(serial_hex);
}

}  // namespace ca::authority
