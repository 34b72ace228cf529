// KeyArchive over the fake store: opening an instance's KRA keys, sealing, and the recovery
// workflow (M distinct approvals, one retrieval by the asking agent, everything audited).
#include "authority/key_recovery/key_recovery.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include "crypto/key_archive.hpp"
#include "crypto/pkcs12_bundle.hpp"
#include "support/fake_ca_store.hpp"
#include "support/temp_dir.hpp"
#include "unit/crypto/crypto_test_support.hpp"

namespace ca::authority {
namespace {

namespace fs = std::filesystem;
using ca::testing::FakeCaStore;
using ca::testing::TempDir;
using ca::testing::read_file;
using ca::testing::shell;
using ca::testing::write_file;
using crypto::fixtures::Issued;

constexpr std::string_view kPassword = "correct horse battery";
constexpr std::string_view kOwner = "CN=alice,O=Example";

// RSA generation is the slow part: the storage and transport keys are made once per binary.
EVP_PKEY* shared_rsa_key(int which) {
  static ossl::UniquePtr<EVP_PKEY> keys[2] = {
      [] { auto k = crypto::generate_key(KeyType::rsa_2048); return k ? std::move(*k) : nullptr; }(),
      [] { auto k = crypto::generate_key(KeyType::rsa_2048); return k ? std::move(*k) : nullptr; }(),
  };
  return keys[which].get();
}
EVP_PKEY* storage_key() { return shared_rsa_key(0); }
EVP_PKEY* transport_key() { return shared_rsa_key(1); }

Result<ossl::UniquePtr<X509>> issue(const Issued& ca, EVP_PKEY* key, std::string_view subject, std::string serial,
                                     std::vector<std::string> key_usage) {
  CA_TRY(auto name, crypto::parse_name(subject));
  crypto::CertificateSpec spec = crypto::fixtures::day_spec(name.get(), key, std::move(serial));
  spec.key_usage = std::move(key_usage);
  return crypto::sign_certificate(spec, ca.cert.get(), ca.key.get());
}

AgentIdentity agent(std::string name, std::string serial) {
  return AgentIdentity{"CN=" + name + ",O=Example", serial, "serial=" + serial + ";sha256=" + std::string(8, serial[0])};
}

template <typename T>
void expect_error(const Result<T>& r, ErrorCode code, std::string_view fragment = {}) {
  ASSERT_FALSE(r) << "expected " << error_code_name(code) << ", got success";
  EXPECT_TRUE(r.error().is(code)) << error_code_name(r.error().code) << ": " << r.error().message;
  if (!fragment.empty()) {
    EXPECT_NE(r.error().message.find(fragment), std::string::npos) << r.error().message;
  }
}

// The "event" of each line of the audit log, after checking the line is one JSON object with the
// fields every audit record has (seq and prev of the chain first).
std::vector<std::string> audit_events(const fs::path& file) {
  static const std::regex line_shape(
      R"re(^\{"seq":[0-9]+,"prev":"[0-9a-f]{64}","time":"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z","instance":"kra-test","event":"([a-z_]+)","who":"(?:[^"\\]|\\.)*","what":"(?:[^"\\]|\\.)*","outcome":"(?:[^"\\]|\\.)*"\}$)re");
  std::vector<std::string> events;
  std::string text = read_file(file);
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) {
      ADD_FAILURE() << "the last audit line has no newline: " << text.substr(start);
      break;
    }
    std::string line = text.substr(start, end - start);
    std::smatch m;
    if (std::regex_match(line, m, line_shape))
      events.push_back(m[1]);
    else
      ADD_FAILURE() << "not an audit record: " << line;
    start = end + 1;
  }
  return events;
}

class KeyRecoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(storage_key() && transport_key());
    config_.instance_id = "kra-test";
    config_.dir = tmp_.path() / "instance";
    auto ca = crypto::fixtures::make_self_signed_ca(KeyType::ec_p256, "CN=Recovery CA,O=Example");
    ASSERT_TRUE(ca) << ca.error().message;
    ca_ = std::move(*ca);
    auto storage_cert = issue(ca_, storage_key(), "CN=KRA Storage Certificate,O=Example", "5001",
                              {"keyEncipherment", "dataEncipherment"});
    ASSERT_TRUE(storage_cert) << storage_cert.error().message;
    auto transport_cert = issue(ca_, transport_key(), "CN=KRA Transport Certificate,O=Example", "5002",
                                {"keyEncipherment", "dataEncipherment"});
    ASSERT_TRUE(transport_cert) << transport_cert.error().message;
    transport_cert_ = std::move(*transport_cert);
    write_file(config_.cert_file("kra_storage"), crypto::certificate_to_pem(storage_cert->get()));
    write_file(config_.key_file("kra_storage"), crypto::private_key_to_pem(storage_key()));
    write_file(config_.cert_file("kra_transport"), crypto::certificate_to_pem(transport_cert_.get()));
    write_file(config_.key_file("kra_transport"), crypto::private_key_to_pem(transport_key()));
    audit_ = std::make_unique<AuditLog>(audit_file(), "kra-test");
    auto archive = KeyArchive::open(config_, store_, ca_.cert.get(), *audit_);
    ASSERT_TRUE(archive) << archive.error().message;
    archive_ = std::move(*archive);
    ASSERT_TRUE(archive_->enabled());
  }

  fs::path audit_file() const { return tmp_.path() / "instance" / "logs" / "audit.log"; }

  // What an enrollment with key archival leaves in the store: a subscriber key, its certificate
  // (issued by the CA) and the sealed key. `tamper` edits the key record before it is stored, as
  // someone with write access to the directory could.
  struct Enrolled {
    ossl::UniquePtr<EVP_PKEY> key;
    store::KeyRecord record;  // as stored
  };
  Enrolled enroll(const std::string& serial, const std::function<void(store::KeyRecord&)>& tamper = {},
                  EVP_PKEY* certified_key = nullptr) {
    Enrolled out;
    auto key = crypto::generate_key(KeyType::ec_p256);
    EXPECT_TRUE(key) << key.error().message;
    if (!key) return out;
    out.key = std::move(*key);
    auto cert = issue(ca_, certified_key ? certified_key : out.key.get(), kOwner, serial, {"digitalSignature"});
    EXPECT_TRUE(cert) << cert.error().message;
    if (!cert) return out;
    auto record = archive_->seal(out.key.get(), serial, std::string(kOwner), "r" + serial, "test enrollment");
    EXPECT_TRUE(record) << record.error().message;
    if (!record) return out;
    if (tamper) tamper(*record);
    store::RequestRecord request;
    request.id_hex = "9" + serial;
    request.serial_hex = record->serial_hex;
    store::CertificateRecord certificate;
    certificate.serial_hex = record->serial_hex;
    certificate.subject_dn = std::string(kOwner);
    certificate.der = crypto::certificate_to_der(cert->get());
    Status committed = fail(Error::internal("not called"));
    store_.commit_enrollment_with_key(request, certificate, *record, [&](Status st) { committed = st; });
    EXPECT_TRUE(committed) << committed.error().message;
    out.record = std::move(*record);
    return out;
  }

  // A recovery of `serial` asked by agent A (two approvals required) and approved by A and B.
  std::string approved_recovery(const std::string& serial) {
    auto r = archive_->request_recovery(serial, a_, 2);
    EXPECT_TRUE(r) << r.error().message;
    if (!r) return {};
    EXPECT_TRUE(archive_->approve(r->id, b_));
    auto approved = archive_->approve(r->id, c_);
    EXPECT_TRUE(approved && approved->state == "approved");
    return r->id;
  }

  TempDir tmp_{"ca-kra"};
  InstanceConfig config_;
  FakeCaStore store_;
  Issued ca_;
  ossl::UniquePtr<X509> transport_cert_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<KeyArchive> archive_;
  const AgentIdentity a_ = agent("Agent A", "a1");
  const AgentIdentity b_ = agent("Agent B", "b2");
  const AgentIdentity c_ = agent("Agent C", "c3");
  // A second certificate of Agent B: the same person.
  const AgentIdentity b2_ = agent("Agent B", "b4");
};

// ---- opening the archive ------------------------------------------------------------------------

TEST_F(KeyRecoveryTest, WithoutItsKeyFilesTheArchiveIsOffAndSaysSo) {
  TempDir empty("ca-kra-off");
  InstanceConfig bare = config_;
  bare.dir = empty.path();
  for (bool with_storage_key : {false, true}) {
    // The storage key alone: still off (the transport pair is missing).
    SCOPED_TRACE(with_storage_key ? "storage key only" : "no files");
    if (with_storage_key) write_file(bare.key_file("kra_storage"), crypto::private_key_to_pem(storage_key()));
    auto opened = KeyArchive::open(bare, store_, ca_.cert.get(), *audit_);
    ASSERT_TRUE(opened) << "an instance without the KRA keys still starts: " << opened.error().message;
    KeyArchive& off = **opened;
    EXPECT_FALSE(off.enabled());
    EXPECT_EQ(off.transport_certificate_pem(), "");
    auto key = crypto::generate_key(KeyType::ec_p256);
    ASSERT_TRUE(key);
    expect_error(off.seal(key->get(), "1", "CN=x", "1", "test"), ErrorCode::unavailable, "key archival is off");
    expect_error(off.open_envelope("-----BEGIN CMS-----"), ErrorCode::unavailable);
    expect_error(off.request_recovery("1", a_, 1), ErrorCode::unavailable);
    expect_error(off.approve("1", a_), ErrorCode::unavailable);
    expect_error(off.reject("1", a_, "no"), ErrorCode::unavailable);
    expect_error(off.find("1"), ErrorCode::unavailable);
    expect_error(off.list(""), ErrorCode::unavailable);
    expect_error(off.retrieve("1", a_, kPassword), ErrorCode::unavailable);
    expect_error(off.unseal(store::KeyRecord{}), ErrorCode::unavailable);
  }
}

TEST_F(KeyRecoveryTest, OpeningRefusesAStorageKeyThatIsNotRsa) {
  auto ec = crypto::generate_key(KeyType::ec_p256);
  ASSERT_TRUE(ec);
  write_file(config_.key_file("kra_storage"), crypto::private_key_to_pem(ec->get()));
  auto opened = KeyArchive::open(config_, store_, ca_.cert.get(), *audit_);
  expect_error(opened, ErrorCode::config, "must be RSA");
}

TEST_F(KeyRecoveryTest, OpeningRefusesATransportKeyThatIsNotTheCertificates) {
  write_file(config_.key_file("kra_transport"), crypto::private_key_to_pem(storage_key()));
  auto opened = KeyArchive::open(config_, store_, ca_.cert.get(), *audit_);
  expect_error(opened, ErrorCode::config, "kra_transport");
}

TEST_F(KeyRecoveryTest, HandsOutItsTransportCertificateAndOpensEnvelopesToIt) {
  EXPECT_EQ(archive_->transport_certificate_pem(), crypto::certificate_to_pem(transport_cert_.get()));

  auto key = crypto::generate_key(KeyType::ec_p256);
  ASSERT_TRUE(key);
  fs::path content = write_file(tmp_ / "client.key", crypto::private_key_to_pem(key->get()));
  fs::path transport = write_file(tmp_ / "transport.pem", archive_->transport_certificate_pem());
  fs::path envelope = tmp_ / "client.p7m";
  auto r = shell("openssl cms -encrypt -binary -aes-256-cbc -in " + content.string() + " -outform PEM -out " +
                 envelope.string() + " -recip " + transport.string() + " -keyopt rsa_padding_mode:oaep");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto opened = archive_->open_envelope(read_file(envelope));
  ASSERT_TRUE(opened) << opened.error().message;
  EXPECT_TRUE(crypto::keys_match(opened->get(), key->get()));
}

// ---- sealing ------------------------------------------------------------------------------------

TEST_F(KeyRecoveryTest, SealDescribesTheKeyAndBindsItToTheRecord) {
  auto key = crypto::generate_key(KeyType::ec_p256);
  ASSERT_TRUE(key);
  auto record = archive_->seal(key->get(), "00001A2B", std::string(kOwner), "77", "server-side key generation");
  ASSERT_TRUE(record) << record.error().message;
  EXPECT_EQ(record->key_id.size(), 32u);
  EXPECT_EQ(record->serial_hex, "00001A2B");
  EXPECT_EQ(record->owner, kOwner);
  EXPECT_EQ(record->request_id_hex, "77");
  EXPECT_EQ(record->algorithm, "EC");
  EXPECT_EQ(record->size_bits, 256);
  EXPECT_EQ(record->state, "active");
  EXPECT_EQ(record->archived_by, "server-side key generation");
  EXPECT_EQ(key_record_binding(*record), record->key_id + "|1a2b|" + std::string(kOwner));
  auto sealed = crypto::decode_sealed_key(record->sealed);
  ASSERT_TRUE(sealed) << sealed.error().message;
  EXPECT_EQ(sealed->storage_key_id, crypto::public_key_id(storage_key()));

  auto again = archive_->seal(key->get(), "1a2b", std::string(kOwner), "77", "again");
  ASSERT_TRUE(again);
  EXPECT_NE(again->key_id, record->key_id) << "each archival is its own record";

  // The directory hands serials back canonical: the binding must not care.
  store::KeyRecord from_directory = *record;
  from_directory.serial_hex = "1a2b";
  auto opened = archive_->unseal(from_directory);
  ASSERT_TRUE(opened) << opened.error().message;
  EXPECT_EQ(EVP_PKEY_eq(opened->get(), key->get()), 1);

  // Moved to another record (another key id), it does not open.
  store::KeyRecord moved = *record;
  moved.key_id = again->key_id;
  expect_error(archive_->unseal(moved), ErrorCode::bad_request, "integrity");
}

// ---- recovery -----------------------------------------------------------------------------------

TEST_F(KeyRecoveryTest, RecoveryOfAnUnknownCertificateIsNotFound) {
  enroll("1a2b");
  expect_error(archive_->request_recovery("dead", a_, 2), ErrorCode::not_found);
  auto all = archive_->list("");
  ASSERT_TRUE(all);
  EXPECT_TRUE(all->empty()) << "nothing is recorded for a refused request";
  EXPECT_EQ(audit_events(audit_file()), std::vector<std::string>{"key_recovery_refused"});
}

TEST_F(KeyRecoveryTest, TwoAgentsApproveAndTheAskingAgentRetrievesOnce) {
  Enrolled alice = enroll("1a2b");
  ASSERT_TRUE(alice.key);

  auto asked = archive_->request_recovery("1A2B", a_, 2);
  ASSERT_TRUE(asked) << asked.error().message;
  EXPECT_EQ(asked->state, "pending");
  EXPECT_EQ(asked->key_id, alice.record.key_id);
  EXPECT_EQ(asked->serial_hex, "1a2b");
  EXPECT_EQ(asked->requester, a_.member_value);
  EXPECT_EQ(asked->requester_name, a_.display());
  EXPECT_EQ(asked->approvals_required, 2);
  EXPECT_EQ(asked->instance_id, "kra-test");
  const std::string id = asked->id;
  auto pending = archive_->list("pending");
  ASSERT_TRUE(pending);
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ(pending->front().id, id);

  // Nothing to retrieve before the approvals.
  expect_error(archive_->retrieve(id, a_, kPassword), ErrorCode::conflict, "pending");

  // The agent who asked never approves its own recovery.
  expect_error(archive_->approve(id, a_), ErrorCode::forbidden, "cannot approve");

  auto first = archive_->approve(id, b_);
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(first->state, "pending");
  EXPECT_EQ(first->approval_count, 1);
  EXPECT_EQ(first->approvers, std::vector<std::string>{b_.member_value});

  // The same agent twice is still one approval.
  expect_error(archive_->approve(id, b_), ErrorCode::conflict, "counts once");
  auto still = archive_->find(id);
  ASSERT_TRUE(still);
  EXPECT_EQ(still->state, "pending");
  EXPECT_EQ(still->approval_count, 1);

  auto second = archive_->approve(id, c_);
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(second->state, "approved");
  EXPECT_EQ(second->approval_count, 2);
  EXPECT_EQ(second->approvers, (std::vector<std::string>{b_.member_value, c_.member_value}));

  // Only the agent who asked may take the key, and only under a real password.
  expect_error(archive_->retrieve(id, b_, kPassword), ErrorCode::forbidden, a_.display());
  expect_error(archive_->retrieve(id, a_, "short"), ErrorCode::bad_request, "password");
  expect_error(archive_->retrieve(id, a_, "1234567"), ErrorCode::bad_request, "password");
  expect_error(archive_->retrieve(id, a_, std::string(1025, 'p')), ErrorCode::bad_request, "password");
  auto unchanged = archive_->find(id);
  ASSERT_TRUE(unchanged);
  EXPECT_EQ(unchanged->state, "approved") << "refusals change nothing";

  auto p12 = archive_->retrieve(id, a_, kPassword);
  ASSERT_TRUE(p12) << p12.error().message;
  auto wrong = crypto::decode_pkcs12(*p12, "not the password");
  expect_error(wrong, ErrorCode::unauthorized);
  auto bundle = crypto::decode_pkcs12(*p12, kPassword);
  ASSERT_TRUE(bundle) << bundle.error().message;
  ASSERT_EQ(bundle->size(), 2u);
  const crypto::Pkcs12Certificate& subscriber = (*bundle)[0];
  ASSERT_TRUE(subscriber.has_key);
  ASSERT_TRUE(subscriber.key);
  EXPECT_EQ(subscriber.serial_hex, "1a2b");
  EXPECT_EQ(subscriber.subject_dn, kOwner);
  EXPECT_NE(subscriber.friendly_name.find("0x1a2b"), std::string::npos) << subscriber.friendly_name;
  EXPECT_TRUE(crypto::keys_match(subscriber.key.get(), alice.key.get()));
  auto recovered_der = crypto::private_key_pkcs8_der(subscriber.key.get());
  auto original_der = crypto::private_key_pkcs8_der(alice.key.get());
  ASSERT_TRUE(recovered_der && original_der);
  EXPECT_EQ(*recovered_der, *original_der) << "the private half differs";
  const crypto::Pkcs12Certificate& ca = (*bundle)[1];
  EXPECT_FALSE(ca.has_key) << "the CA key never leaves";
  ASSERT_TRUE(ca.cert);
  EXPECT_EQ(X509_cmp(ca.cert.get(), ca_.cert.get()), 0);

  auto done = archive_->find(id);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->state, "retrieved");
  EXPECT_NE(done->result.find(a_.display()), std::string::npos) << done->result;

  // Once.
  expect_error(archive_->retrieve(id, a_, kPassword), ErrorCode::conflict, "retrieved");
  expect_error(archive_->reject(id, b_, "too late"), ErrorCode::conflict);
  expect_error(archive_->approve(id, c_), ErrorCode::conflict, "not pending");

  EXPECT_EQ(audit_events(audit_file()), (std::vector<std::string>{
                                            "key_recovery_requested",
                                            "key_retrieval_refused",         // before approval
                                            "key_recovery_approval_refused", // A asked: no approval
                                            "key_recovery_approved",         // B
                                            "key_recovery_approval_refused", // B again
                                            "key_recovery_approved",         // C: approved
                                            "key_retrieval_refused",         // B may not retrieve
                                            "key_retrieval_refused",         // "short"
                                            "key_retrieval_refused",         // 7 characters
                                            "key_retrieval_refused",         // 1025 characters
                                            "key_retrieved",
                                            "key_retrieval_refused",         // second retrieval
                                            "key_recovery_approval_refused", // C after retrieval
                                        }));
  struct stat st {};
  ASSERT_EQ(::stat(audit_file().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // The audit names the agents, never the password.
  std::string log = read_file(audit_file());
  EXPECT_NE(log.find(a_.display()), std::string::npos);
  EXPECT_NE(log.find(b_.display()), std::string::npos);
  EXPECT_EQ(log.find(kPassword), std::string::npos);
}

// M-of-N counts people: two certificates with one subject are one approver, and neither the agent
// who asked nor the holder of the key approves.
TEST_F(KeyRecoveryTest, ApprovalsCountPeopleNotCertificates) {
  enroll("5e");
  for (const AgentIdentity* who : {&b_, &b2_, &c_}) {
    store::RequestRecord request;
    request.id_hex = "77" + who->serial_hex;
    store::CertificateRecord certificate;
    certificate.serial_hex = who->serial_hex;
    certificate.subject_dn = who->subject_dn;
    Status committed = fail(Error::internal("not called"));
    store_.commit_enrollment(request, certificate, [&](Status st) { committed = st; });
    ASSERT_TRUE(committed) << committed.error().message;
  }
  auto asked = archive_->request_recovery("5e", a_, 2);
  ASSERT_TRUE(asked) << asked.error().message;
  auto first = archive_->approve(asked->id, b_);
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(first->state, "pending");
  // Agent B's second certificate is still Agent B.
  expect_error(archive_->approve(asked->id, b2_), ErrorCode::conflict, "each person counts once");
  auto still = archive_->find(asked->id);
  ASSERT_TRUE(still);
  EXPECT_EQ(still->state, "pending");
  // The holder of the key is no approver of its recovery.
  const AgentIdentity holder{std::string(kOwner), "d5", "serial=d5;sha256=dddddddd"};
  expect_error(archive_->approve(asked->id, holder), ErrorCode::forbidden, "holds the key");
  auto second = archive_->approve(asked->id, c_);
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(second->state, "approved");
}

TEST_F(KeyRecoveryTest, OneRequiredApprovalCompletesAtOnce) {
  enroll("3c");
  auto asked = archive_->request_recovery("3c", a_, 1);
  ASSERT_TRUE(asked) << asked.error().message;
  EXPECT_EQ(asked->result, "waiting for 1 approval");
  auto approved = archive_->approve(asked->id, b_);
  ASSERT_TRUE(approved) << approved.error().message;
  EXPECT_EQ(approved->state, "approved");
  expect_error(archive_->approve(asked->id, c_), ErrorCode::conflict, "not pending");
  auto listed = archive_->list("approved");
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().id, asked->id);
  auto none = archive_->list("pending");
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

TEST_F(KeyRecoveryTest, ARejectedRecoveryCanNeitherBeApprovedNorRetrieved) {
  enroll("4d");
  auto asked = archive_->request_recovery("4d", a_, 2);
  ASSERT_TRUE(asked) << asked.error().message;
  ASSERT_TRUE(archive_->approve(asked->id, c_));
  auto rejected = archive_->reject(asked->id, b_, "not without a ticket");
  ASSERT_TRUE(rejected) << rejected.error().message;
  EXPECT_EQ(rejected->state, "rejected");
  EXPECT_NE(rejected->result.find(b_.display()), std::string::npos) << rejected->result;
  EXPECT_NE(rejected->result.find("not without a ticket"), std::string::npos) << rejected->result;
  expect_error(archive_->approve(asked->id, c_), ErrorCode::conflict, "rejected");
  expect_error(archive_->retrieve(asked->id, a_, kPassword), ErrorCode::conflict, "rejected");
  expect_error(archive_->reject(asked->id, c_, ""), ErrorCode::conflict);
  auto events = audit_events(audit_file());
  EXPECT_EQ(std::count(events.begin(), events.end(), "key_recovery_rejected"), 1);
}

// A retrieval that cannot finish within the request's time bound (a claim that waited on a frozen
// home, a slow directory): the transport has answered 503 by then, so nothing is handed out and the
// recovery stays approved, to be retrieved by the next request.
TEST_F(KeyRecoveryTest, ARetrievalPastTheRequestTimeBoundHandsNothingOutAndStaysApproved) {
  InstanceConfig bounded = config_;
  bounded.server.request_timeout_ms = 4000;
  auto opened = KeyArchive::open(bounded, store_, ca_.cert.get(), *audit_);
  ASSERT_TRUE(opened) << opened.error().message;
  auto& archive = **opened;
  Enrolled e = enroll("5b01");
  ASSERT_TRUE(e.key);
  const std::string id = approved_recovery(e.record.serial_hex);
  ASSERT_FALSE(id.empty());
  const auto now = std::chrono::system_clock::now();
  expect_error(archive.retrieve(id, a_, kPassword, now - std::chrono::milliseconds(3900)), ErrorCode::unavailable,
               "nothing was handed out");
  auto after = archive.find(id);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->state, "approved") << "a retrieval that was not delivered used the recovery up";
  auto retrieved = archive.retrieve(id, a_, kPassword, std::chrono::system_clock::now());
  ASSERT_TRUE(retrieved) << retrieved.error().message;
  EXPECT_EQ(archive.find(id)->state, "retrieved");
}

TEST_F(KeyRecoveryTest, ATamperedKeyRecordIsNotHandedOutAndTheRecoveryStaysApproved) {
  const struct {
    const char* name;
    std::string serial;
    std::function<void(store::KeyRecord&)> tamper;
  } cases[] = {
      {"a ciphertext byte flipped", "5a01", [](store::KeyRecord& k) { k.sealed[k.sealed.size() - 30] ^= 0x01; }},
      {"a tag byte flipped", "5a02", [](store::KeyRecord& k) { k.sealed.back() ^= 0x80; }},
      {"an iv byte flipped", "5a03",
       [](store::KeyRecord& k) {
         auto s = crypto::decode_sealed_key(k.sealed);
         ASSERT_TRUE(s);
         s->iv[0] ^= 0x01;
         k.sealed = crypto::encode_sealed_key(*s);
       }},
      {"the magic damaged", "5a04", [](store::KeyRecord& k) { k.sealed[0] = 'X'; }},
      // The sealed bytes are intact but belong to another certificate / owner now.
      {"serial changed", "5a05", [](store::KeyRecord& k) { k.serial_hex = "5a55"; }},
      {"owner changed", "5a06", [](store::KeyRecord& k) { k.owner = "CN=mallory,O=Example"; }},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Enrolled e = enroll(c.serial, c.tamper);
    ASSERT_TRUE(e.key);
    std::string id = approved_recovery(e.record.serial_hex);
    ASSERT_FALSE(id.empty());
    auto r = archive_->retrieve(id, a_, kPassword);
    expect_error(r, ErrorCode::bad_request, "integrity");
    auto after = archive_->find(id);
    ASSERT_TRUE(after);
    EXPECT_EQ(after->state, "approved") << "a failed retrieval must not use up the recovery";
    auto events = audit_events(audit_file());
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.back(), "key_retrieval_refused");
  }
}

TEST_F(KeyRecoveryTest, AKeyThatIsNotTheCertificatesIsNotHandedOut) {
  auto stranger = crypto::generate_key(KeyType::ec_p256);
  ASSERT_TRUE(stranger);
  Enrolled e = enroll("6e", {}, stranger->get());
  ASSERT_TRUE(e.key);
  std::string id = approved_recovery("6e");
  ASSERT_FALSE(id.empty());
  expect_error(archive_->retrieve(id, a_, kPassword), ErrorCode::bad_request, "is not the key of certificate");
  auto after = archive_->find(id);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->state, "approved");
}

// Two agents approving at once on two directory servers each see 0 of 2 approvals, so neither
// completes the recovery; after replication the record holds both approvers (caApprover is
// multi-valued) but a count of 1 (single-valued, one write wins). The record below is that
// replicated state: the next approval attempt, or the retrieval, completes it.
TEST_F(KeyRecoveryTest, TwoApprovalsThatCrossedInReplicationStillComplete) {
  Enrolled e = enroll("8a");
  ASSERT_TRUE(e.key);
  store::RecoveryRecord replicated;
  replicated.id = "c0ffee";
  replicated.key_id = e.record.key_id;
  replicated.serial_hex = "8a";
  replicated.requester = a_.member_value;
  replicated.requester_name = a_.display();
  replicated.approvals_required = 2;
  replicated.approval_count = 1;
  replicated.approvers = {a_.member_value, b_.member_value};
  ASSERT_TRUE(store_.add_recovery(replicated));

  auto again = archive_->approve("c0ffee", b_);  // B, not knowing its approval landed, tries again
  auto r = archive_->find("c0ffee");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->state, "approved") << (again ? "" : again.error().message);
  auto p12 = archive_->retrieve("c0ffee", a_, kPassword);
  EXPECT_TRUE(p12) << (p12 ? "" : p12.error().message);
}

TEST_F(KeyRecoveryTest, ADirectoryOutageFailsTheStepWithoutChangingIt) {
  enroll("7f");
  auto asked = archive_->request_recovery("7f", a_, 2);
  ASSERT_TRUE(asked);
  store_.set_unavailable(true);
  expect_error(archive_->approve(asked->id, a_), ErrorCode::unavailable);
  expect_error(archive_->request_recovery("7f", b_, 2), ErrorCode::unavailable);
  store_.set_unavailable(false);
  auto r = archive_->find(asked->id);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->approval_count, 0);
  EXPECT_TRUE(r->approvers.empty());
}

}  // namespace
}  // namespace ca::authority
