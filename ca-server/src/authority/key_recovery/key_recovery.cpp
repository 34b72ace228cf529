#include "authority/key_recovery/key_recovery.hpp"

#include <algorithm>
#include <cctype>
#include <set>

#include <fmt/format.h>

#include "authority/access/one_time_secret.hpp"
#include "core/log.hpp"
#include "crypto/key_archive.hpp"
#include "crypto/keys.hpp"
#include "crypto/pem.hpp"
#include "crypto/pkcs12_bundle.hpp"
#include "crypto/signing_key.hpp"

namespace ca::authority {

namespace fs = std::filesystem;

namespace {
std::string lowercase(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}
}  // namespace

std::string key_record_binding(const store::KeyRecord& record) {
  return fmt::format("{}|{}|{}", record.key_id, store::canonical_hex(record.serial_hex), record.owner);
}

Result<std::unique_ptr<KeyArchive>> KeyArchive::open(const InstanceConfig& config, store::CaStore& store,
                                                     X509* ca_certificate, AuditLog& audit) {
  std::unique_ptr<KeyArchive> archive(new KeyArchive(store, ca_certificate, audit));
  archive->instance_id_ = config.instance_id;
  archive->answer_within_ = std::chrono::milliseconds(config.server.request_timeout_ms);
  std::error_code ec;
  const bool has_storage = fs::exists(config.key_file("kra_storage"), ec);
  const bool has_transport =
      fs::exists(config.cert_file("kra_transport"), ec) && fs::exists(config.key_file("kra_transport"), ec);
  if (!has_storage || !has_transport) {
    log::warn("kra",
              "no storage or transport key in {}: key archival and recovery are off (run `ca-server init` to add them)",
              config.dir.string());
    return archive;
  }
  CA_TRY(archive->storage_key_, crypto::open_private_key(config.key_uri("kra_storage")));
  CA_TRY(archive->transport_cert_, crypto::load_certificate_file(config.cert_file("kra_transport")));
  CA_TRY(archive->transport_key_, crypto::open_private_key(config.key_uri("kra_transport")));
  if (EVP_PKEY_get_base_id(archive->storage_key_.get()) != EVP_PKEY_RSA)
    return fail(Error::config(fmt::format("{}: the storage key must be RSA", config.key_file("kra_storage").string())));
  if (X509_check_private_key(archive->transport_cert_.get(), archive->transport_key_.get()) != 1) {
    ossl::drain_errors();
    return fail(Error::config(fmt::format("{} is not the key of {}", config.key_file("kra_transport").string(),
                                          config.cert_file("kra_transport").string())));
  }
  log::info("kra", "key archive on: storage key {}", crypto::public_key_id(archive->storage_key_.get()).substr(0, 16));
  return archive;
}

Status KeyArchive::check_enabled() const {
  if (!enabled())
    return fail(
        Error::unavailable("key archival is off on this instance: it has no storage key (run `ca-server init`)"));
  return ok();
}

std::string KeyArchive::transport_certificate_pem() const {
  return transport_cert_ ? crypto::certificate_to_pem(transport_cert_.get()) : std::string();
}

Result<store::KeyRecord> KeyArchive::seal(EVP_PKEY* key, const std::string& serial_hex, const std::string& owner,
                                          const std::string& request_id_hex, const std::string& how) {
  CA_CHECK(check_enabled());
  store::KeyRecord record;
  CA_TRY(record.key_id, random_hex(16));
  record.serial_hex = serial_hex;
  record.owner = owner;
  record.request_id_hex = request_id_hex;
  auto info = crypto::describe_public_key(key);
  record.algorithm = info.algorithm;
  record.size_bits = info.bits;
  record.archived_by = how;
  record.created_at = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
  CA_TRY(auto sealed, crypto::seal_private_key(key, storage_key_.get(), key_record_binding(record)));
  record.sealed = crypto::encode_sealed_key(sealed);
  return record;
}

Result<ossl::UniquePtr<EVP_PKEY>> KeyArchive::open_envelope(std::string_view envelope) {
  CA_CHECK(check_enabled());
  return crypto::open_key_envelope(envelope, transport_cert_.get(), transport_key_.get());
}

Result<ossl::UniquePtr<EVP_PKEY>> KeyArchive::unseal(const store::KeyRecord& record) {
  CA_CHECK(check_enabled());
  CA_TRY(auto sealed, crypto::decode_sealed_key(record.sealed));
  return crypto::unseal_private_key(sealed, storage_key_.get(), key_record_binding(record));
}

Result<store::RecoveryRecord> KeyArchive::request_recovery(std::string_view serial_hex, const AgentIdentity& agent,
                                                           int approvals_required) {
  CA_CHECK(check_enabled());
  auto key = store_.find_key_by_serial(serial_hex);
  if (!key) {
    audit("key_recovery_refused", agent.display(), fmt::format("certificate 0x{}", serial_hex), key.error().message);
    return fail(key.error());
  }
  store::RecoveryRecord r;
  CA_TRY(r.id, random_hex(8));
  r.key_id = key->key_id;
  r.serial_hex = key->serial_hex;
  r.requester = agent.member_value;
  r.requester_name = agent.display();
  r.approvals_required = approvals_required;
  r.instance_id = instance_id_;
  r.created_at = r.modified_at = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
  r.result = fmt::format("waiting for {} approval{}", approvals_required, approvals_required == 1 ? "" : "s");
  CA_CHECK(store_.add_recovery(r));
  audit("key_recovery_requested", agent.display(),
        fmt::format("recovery {} of key {} (certificate 0x{}, '{}')", r.id, key->key_id, key->serial_hex, key->owner),
        fmt::format("needs {} approval(s)", approvals_required));
  return r;
}

// The people behind approvals: the subject DN of each approving certificate (an approval is
// recorded by the certificate; two certificates with one subject are one identity).
std::string KeyArchive::identity_of_member(std::string_view member) {
  if (!member.starts_with("serial=")) return lowercase(member);
  auto end = member.find(';');
  std::string serial(member.substr(7, end == std::string_view::npos ? std::string_view::npos : end - 7));
  auto record = store_.find_certificate(serial);
  // An approver whose certificate record cannot be read counts as its own identity: never merged.
  return record ? lowercase(record->subject_dn) : std::string(member);
}

std::set<std::string> KeyArchive::approver_identities(const store::RecoveryRecord& r) {
  std::set<std::string> people;
  for (const auto& m : r.approvers) people.insert(identity_of_member(m));
  return people;
}

Result<store::RecoveryRecord> KeyArchive::approve(std::string_view id, const AgentIdentity& agent) {
  CA_CHECK(check_enabled());
  for (int attempt = 0; attempt < 5; ++attempt) {
    CA_TRY(auto r, store_.find_recovery(id));
    auto refuse = [&](Error e) -> Result<store::RecoveryRecord> {
      audit("key_recovery_approval_refused", agent.display(), fmt::format("recovery {}", r.id), e.message);
      return fail(std::move(e));
    };
    if (r.state != "pending")
      return refuse(Error::conflict(fmt::format("recovery {} is {}, not pending", r.id, r.state)));
    const auto people = approver_identities(r);
    const std::string me = lowercase(agent.identity());
    // Separation of duties: the agent who asked, and the holder of the key, never approve it.
    std::string asked_by = lowercase(r.requester_name.substr(0, r.requester_name.rfind(" (0x")));
    if (asked_by.empty() && !r.requester.empty()) asked_by = identity_of_member(r.requester);
    if (agent.member_value == r.requester || me == asked_by)
      return refuse(
          Error::forbidden(fmt::format("{} asked for recovery {} and cannot approve it: approvals come from "
                                       "other people",
                                       agent.display(), r.id)));
    if (auto key = store_.find_key(r.key_id); key && lowercase(key->owner) == me)
      return refuse(Error::forbidden(
          fmt::format("{} holds the key of recovery {} and cannot approve its recovery", agent.display(), r.id)));
    if (static_cast<int>(people.size()) >= r.approvals_required) {
      // Approvals given on two directory servers at once both landed, neither completing it:
      // the distinct approvers are enough, so it is approved now (and this one is not needed).
      CA_TRY(auto healed, complete_if_enough(r));
      return refuse(Error::conflict(fmt::format("recovery {} has its {} approvals already; it is {} now", r.id,
                                                r.approvals_required, healed.state)));
    }
    if (std::find(r.approvers.begin(), r.approvers.end(), agent.member_value) != r.approvers.end() ||
        people.contains(me))
      return refuse(
          Error::conflict(fmt::format("{} has approved recovery {} already (with this or another certificate "
                                      "of '{}'): each person counts once",
                                      agent.display(), r.id, agent.identity())));
    // Distinct approvers decide (the count is only the compare-and-set guard): approvals given on
    // two directory servers at once both land, and the approver set keeps both after replication.
    const int given = static_cast<int>(people.size());
    const bool completes = given + 1 >= r.approvals_required;
    Status st = store_.approve_recovery(r.id, agent.member_value, r.approval_count, completes);
    if (st) {
      CA_TRY(auto now, store_.find_recovery(id));
      audit("key_recovery_approved", agent.display(), fmt::format("recovery {} of key {}", r.id, r.key_id),
            fmt::format("approval {} of {}{}", given + 1, r.approvals_required, completes ? ": approved" : ""));
      return now;
    }
    if (!st.error().is(ErrorCode::conflict)) return fail(st.error());
    // Another approval came first, or this agent's landed on another instance: look again.
  }
  return fail(Error::conflict(fmt::format("recovery {} is being approved concurrently; try again", id)));
}

Result<store::RecoveryRecord> KeyArchive::complete_if_enough(const store::RecoveryRecord& r) {
  const std::size_t people = approver_identities(r).size();
  if (r.state != "pending" || static_cast<int>(people) < r.approvals_required) return r;
  Status st =
      store_.transition_recovery(r.id, "pending", "approved", fmt::format("approved by {} distinct agents", people));
  if (!st && !st.error().is(ErrorCode::conflict)) return fail(st.error());
  if (st)
    audit("key_recovery_approved", "replication", fmt::format("recovery {} of key {}", r.id, r.key_id),
          fmt::format("{} distinct approvals after replication: approved", people));
  return store_.find_recovery(r.id);
}

Result<store::RecoveryRecord> KeyArchive::reject(std::string_view id, const AgentIdentity& agent,
                                                 std::string_view reason) {
  CA_CHECK(check_enabled());
  CA_TRY(auto r, store_.find_recovery(id));
  if (r.state != "pending" && r.state != "approved")
    return fail(Error::conflict(fmt::format("recovery {} is {}: it can no longer be rejected", r.id, r.state)));
  std::string result =
      fmt::format("rejected by {}{}{}", agent.display(), reason.empty() ? "" : ": ", reason.substr(0, 200));
  CA_CHECK(store_.transition_recovery(r.id, r.state, "rejected", result));
  audit("key_recovery_rejected", agent.display(), fmt::format("recovery {} of key {}", r.id, r.key_id), result);
  return store_.find_recovery(id);
}

Result<store::RecoveryRecord> KeyArchive::find(std::string_view id) {
  CA_CHECK(check_enabled());
  return store_.find_recovery(id);
}

Result<std::vector<store::RecoveryRecord>> KeyArchive::list(std::string_view state) {
  CA_CHECK(check_enabled());
  return store_.list_recoveries(state);
}

Result<std::optional<HeldClaim>> KeyArchive::claim_retrieval(const store::RecoveryRecord& r) {
  if (!claims_) return std::optional<HeldClaim>();
  auto claimed = claims_->claim(ClaimKind::key_retrieval, r.id);
  if (!claimed) {
    if (claimed.error().is(ErrorCode::conflict))
      return fail(Error::conflict(fmt::format("recovery {} was retrieved already", r.id)));
    return fail(claimed.error());
  }
  return std::optional<HeldClaim>(std::move(*claimed));
}

Status KeyArchive::mark_retrieved(const store::RecoveryRecord& r, const AgentIdentity& agent,
                                  std::chrono::system_clock::time_point received_at) {
  // The package must reach the agent: past the request's time bound the transport has answered
  // 503 already, and a retrieval marked done but never delivered would lose the key for good.
  const auto too_late = [&] {
    return answer_within_.count() > 0 &&
           std::chrono::system_clock::now() >= received_at + answer_within_ - kAnswerMargin;
  };
  const auto late = [&] {
    return Error::unavailable(
        fmt::format("recovery {}: the retrieval took longer than the request may; nothing was "
                    "handed out, ask again",
                    r.id));
  };
  if (too_late()) return fail(late());
  if (Status st = store_.transition_recovery(r.id, "approved", "retrieved", "retrieved by " + agent.display()); !st) {
    if (st.error().is(ErrorCode::conflict))
      return fail(Error::conflict(fmt::format("recovery {} was retrieved already", r.id)));
    return st;
  }
  if (too_late()) {
    // Undo (compare-and-set back): the package is not handed out.
    if (Status undone = store_.transition_recovery(r.id, "retrieved", "approved", "not delivered in time"); !undone)
      log::warn("kra", "recovery {}: cannot undo a retrieval that was not delivered: {}", r.id, undone.error().message);
    return fail(late());
  }
  return ok();
}

Result<std::vector<uint8_t>> KeyArchive::retrieve(std::string_view id, const AgentIdentity& agent,
                                                  std::string_view password,
                                                  std::chrono::system_clock::time_point received_at) {
  CA_CHECK(check_enabled());
  CA_TRY(auto r, store_.find_recovery(id));
  auto refuse = [&](Error e) -> Result<std::vector<uint8_t>> {
    audit("key_retrieval_refused", agent.display(), fmt::format("recovery {}", r.id), e.message);
    return fail(std::move(e));
  };
  if (agent.member_value != r.requester)
    return refuse(Error::forbidden(
        fmt::format("only the agent who asked for recovery {} ({}) may retrieve it", r.id, r.requester_name)));
  if (r.state == "pending") {
    CA_TRY(r, complete_if_enough(r));
  }
  if (r.state != "approved")
    return refuse(Error::conflict(fmt::format(
        "recovery {} is {}{}", r.id, r.state,
        r.state == "pending" ? fmt::format(" ({} of {} approvals)", r.approval_count, r.approvals_required) : "")));
  if (password.size() < 8 || password.size() > 1024)
    return refuse(Error::bad_request("the PKCS#12 password must have 8 to 1024 characters"));
  auto key_record = store_.find_key(r.key_id);
  if (!key_record) return refuse(key_record.error());
  auto key = unseal(*key_record);
  if (!key) return refuse(key.error());
  auto cert_record = store_.find_certificate(key_record->serial_hex);
  if (!cert_record) return refuse(cert_record.error());
  CA_TRY(auto cert, crypto::parse_certificate_der(cert_record->der));
  if (!crypto::keys_match(key->get(), X509_get0_pubkey(cert.get())))
    return refuse(Error::bad_request(
        fmt::format("the archived key {} is not the key of certificate 0x{}", r.key_id, key_record->serial_hex)));
  // Once: claimed in the recovery's home directory (once in the cluster) before the package is
  // made, then the state moves approved -> retrieved here, both before the package leaves.
  auto claim = claim_retrieval(r);
  if (!claim) return refuse(claim.error());
  std::vector<crypto::Pkcs12Item> items(2);
  items[0].friendly_name = fmt::format("{} (0x{})", key_record->owner, key_record->serial_hex);
  items[0].cert = std::move(cert);
  items[0].key = std::move(*key);
  items[1].friendly_name = "CA";
  items[1].cert = ossl::up_ref(ca_cert_);
  auto p12 = crypto::encode_pkcs12(items, password);
  Status delivered = p12 ? mark_retrieved(r, agent, received_at) : Status(fail(p12.error()));
  if (!delivered) {
    if (*claim) claims_->release(**claim);  // nothing was handed out
    return refuse(delivered.error());
  }
  audit("key_retrieved", agent.display(),
        fmt::format("recovery {} of key {} (certificate 0x{})", r.id, r.key_id, key_record->serial_hex),
        "PKCS#12 handed out");
  return std::move(*p12);
}

}  // namespace ca::authority
