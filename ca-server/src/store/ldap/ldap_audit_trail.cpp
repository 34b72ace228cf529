// The audit trail of each instance in the directory:
//
//   ou=auditCheckpoints,ou=ca,<suffix>
//     cn=<instance>                 caAuditTrail: caInstanceId, caAuditCut (one value per cut found)
//       cn=<seq>,cn=<instance>      caAuditCheckpoint: caAuditSeq, caAuditHash, caCreatedAt
//
// One entry per checkpoint, added once and never modified: syncrepl replicates entries of
// different DNs independently (their union survives), so no replayed or late write can bring a
// lower highest checkpoint back over a higher one, and a seq once checkpointed keeps its hash.
// Deleting the oldest entries (beyond kAuditCheckpointsKept) never changes which one is highest.
#include <algorithm>
#include <charconv>

#include <fmt/format.h>

#include "core/log.hpp"
#include "store/ldap/ldap_ca_store.hpp"
#include "store/ldap/ldap_escape.hpp"

namespace ca::store {

namespace {
constexpr std::string_view kLog = "store";

std::optional<uint64_t> parse_seq(std::string_view s) {
  uint64_t v = 0;
  if (s.empty() || std::from_chars(s.data(), s.data() + s.size(), v).ec != std::errc{}) return std::nullopt;
  return v;
}

Result<std::vector<AuditCheckpoint>> read_checkpoints(LdapConnection& c, const std::string& trail_dn) {
  CA_TRY(auto entries, c.search(trail_dn, SearchScope::one, "(objectClass=caAuditCheckpoint)",
                                SearchOptions{{"caAuditSeq", "caAuditHash", "caCreatedAt"}, 0}));
  std::vector<AuditCheckpoint> out;
  for (const auto& e : entries) {
    auto seq = parse_seq(e.first_or("caAuditSeq"));
    if (!seq) continue;
    AuditCheckpoint cp{*seq, e.first_or("caAuditHash"), {}};
    if (auto t = e.first("caCreatedAt")) cp.time = from_generalized_time(*t).value_or(TimePoint{});
    out.push_back(std::move(cp));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.seq < b.seq; });
  return out;
}

Status ensure_trail_entry(LdapConnection& c, const std::string& dn, std::string_view instance) {
  CA_TRY(auto existing, c.read(dn, {"cn"}));
  if (existing) return ok();
  Status added = c.add(
      dn,
      {{"objectClass", {"caAuditTrail"}}, {"cn", {std::string(instance)}}, {"caInstanceId", {std::string(instance)}}});
  if (!added && added.error().is(ErrorCode::conflict)) return ok();
  return added;
}
}  // namespace

std::string DirectoryLayout::audit_trail_dn(std::string_view instance) const {
  return fmt::format("cn={},{}", escape_dn_value(instance), audit_checkpoints());
}
std::string DirectoryLayout::audit_checkpoint_dn(std::string_view instance, uint64_t seq) const {
  return fmt::format("cn={},{}", seq, audit_trail_dn(instance));
}

std::string audit_cut_value(const AuditCut& cut) {
  return fmt::format("{}:{}:{}:{}", cut.first_missing_seq, cut.expected.seq, cut.expected.hash,
                     to_generalized_time(cut.found));
}

std::optional<AuditCut> audit_cut_from_value(std::string_view value) {
  std::vector<std::string_view> parts;
  for (std::size_t start = 0;;) {
    const auto colon = value.find(':', start);
    parts.push_back(value.substr(start, colon == std::string_view::npos ? std::string_view::npos : colon - start));
    if (colon == std::string_view::npos) break;
    start = colon + 1;
  }
  if (parts.size() != 4) return std::nullopt;
  auto first = parse_seq(parts[0]);
  auto expected = parse_seq(parts[1]);
  auto found = from_generalized_time(parts[3]);
  if (!first || !expected || !found) return std::nullopt;
  return AuditCut{*first, {*expected, std::string(parts[2]), {}}, *found};
}

Status LdapCaStore::record_audit_checkpoint(std::string_view instance, const AuditCheckpoint& checkpoint) {
  const std::string trail = layout_.audit_trail_dn(instance);
  return pool_.with_connection([&](LdapConnection& c) -> Status {
    CA_CHECK(ensure_trail_entry(c, trail, instance));
    CA_TRY(auto existing, read_checkpoints(c, trail));
    if (!existing.empty() && existing.back().seq >= checkpoint.seq) {
      const auto same =
          std::find_if(existing.begin(), existing.end(), [&](const auto& e) { return e.seq == checkpoint.seq; });
      if (same != existing.end() && same->hash == checkpoint.hash) return ok();
      return fail(Error::conflict(
          fmt::format("the audit trail of '{}' has checkpoint {} already{}: a checkpoint never goes down or changes",
                      instance, existing.back().seq,
                      same != existing.end() ? fmt::format(" (and seq {} with another hash)", checkpoint.seq) : "")));
    }
    Status added = c.add(layout_.audit_checkpoint_dn(instance, checkpoint.seq),
                         {{"objectClass", {"caAuditCheckpoint"}},
                          {"cn", {std::to_string(checkpoint.seq)}},
                          {"caAuditSeq", {std::to_string(checkpoint.seq)}},
                          {"caAuditHash", {checkpoint.hash}},
                          {"caCreatedAt", {to_generalized_time(checkpoint.time)}}});
    if (!added && added.error().is(ErrorCode::conflict))
      return fail(Error::conflict(
          fmt::format("the audit trail of '{}' has a checkpoint at seq {} already", instance, checkpoint.seq)));
    CA_CHECK(added);
    // Best effort: the oldest beyond the newest kept (the new one counts).
    if (existing.size() + 1 > kAuditCheckpointsKept) {
      const std::size_t excess = existing.size() + 1 - kAuditCheckpointsKept;
      for (std::size_t i = 0; i < excess; ++i)
        if (Status st = c.remove(layout_.audit_checkpoint_dn(instance, existing[i].seq));
            !st && !st.error().is(ErrorCode::not_found))
          log::warn(kLog, "cannot delete the audit checkpoint {} of '{}': {}", existing[i].seq, instance,
                    st.error().message);
    }
    return ok();
  });
}

Status LdapCaStore::record_audit_cut(std::string_view instance, const AuditCut& cut) {
  const std::string trail = layout_.audit_trail_dn(instance);
  return pool_.with_connection([&](LdapConnection& c) -> Status {
    CA_CHECK(ensure_trail_entry(c, trail, instance));
    Status added = c.modify(trail, {{LdapModification::Op::add, "caAuditCut", {audit_cut_value(cut)}}});
    if (!added && added.error().is(ErrorCode::conflict)) return ok();  // recorded already
    return added;
  });
}

Result<AuditTrail> LdapCaStore::audit_trail(std::string_view instance) {
  const std::string trail = layout_.audit_trail_dn(instance);
  return pool_.with_connection([&](LdapConnection& c) -> Result<AuditTrail> {
    AuditTrail out;
    CA_TRY(auto entry, c.read(trail, {"caAuditCut"}));
    if (!entry) return out;
    if (const auto* values = entry->values("caAuditCut"))
      for (const auto& v : *values)
        if (auto cut = audit_cut_from_value(v)) out.cuts.push_back(std::move(*cut));
    std::sort(out.cuts.begin(), out.cuts.end(), [](const auto& a, const auto& b) { return a.found < b.found; });
    CA_TRY(out.checkpoints, read_checkpoints(c, trail));
    return out;
  });
}

}  // namespace ca::store
