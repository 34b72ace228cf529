// Certificate and request records <-> directory entries, and the other small mappings of
// store/ldap/, without a directory: what a write makes reads back as the same record, and an
// entry without its key fields is refused.
#include <gtest/gtest.h>

#include "store/ldap/directory_account.hpp"
#include "store/ldap/ldap_ca_store.hpp"
#include "store/ldap/ldap_peer_directory.hpp"

namespace ca::store {
namespace {

TimePoint at(int64_t seconds) { return TimePoint(std::chrono::seconds(seconds)); }

CertificateRecord revoked_certificate() {
  CertificateRecord r;
  r.serial_hex = "1a2b3c4d5e6f70819aabbccdd";
  r.status = "REVOKED";
  r.subject_dn = "CN=host.example.com";
  r.issuer_dn = "CN=Certificate Authority,O=Example";
  r.not_before = at(1'800'000'000);
  r.not_after = at(1'831'536'000);
  r.issued_at = at(1'800'000'001);
  r.profile_id = "caServerCert";
  r.request_id_hex = "2f0001";
  r.replica_id = 3;
  r.issued_by = "ca-3";
  r.der = {0x30, 0x82, 0x00, 0x01, 0x00, 0xff};
  r.revoked_on = at(1'800'100'000);
  r.revocation_reason = 1;
  r.revoked_by = "agent 0x1f";
  r.invalidity_date = at(1'800'090'000);
  return r;
}

RequestRecord approved_request() {
  RequestRecord r;
  r.id_hex = "2f0001";
  r.type = "enrollment";
  r.state = "approved";
  r.profile_id = "caServerCert";
  r.csr_der = {0x30, 0x81, 0x00, 0x7f};
  r.serial_hex = "1a2b";
  r.subject_dn = "CN=host.example.com";
  r.created_at = at(1'800'000'000);
  r.modified_at = at(1'800'000'100);
  r.result = "";
  r.replica_id = 3;
  r.instance_id = "ca-3";
  r.secret_hash = "salt$hash";
  r.requester = "enrollment code 0xab";
  r.approved_by = "agent 0x1f";
  r.approval_changes = R"({"validity_days":30})";
  return r;
}

std::vector<LdapAttribute> without(std::vector<LdapAttribute> attributes, std::string_view name) {
  std::erase_if(attributes, [&](const LdapAttribute& a) { return a.name == name; });
  return attributes;
}

void expect_same(const CertificateRecord& a, const CertificateRecord& b) {
  EXPECT_EQ(a.serial_hex, b.serial_hex);
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.subject_dn, b.subject_dn);
  EXPECT_EQ(a.issuer_dn, b.issuer_dn);
  EXPECT_EQ(a.not_before, b.not_before);
  EXPECT_EQ(a.not_after, b.not_after);
  EXPECT_EQ(a.issued_at, b.issued_at);
  EXPECT_EQ(a.profile_id, b.profile_id);
  EXPECT_EQ(a.request_id_hex, b.request_id_hex);
  EXPECT_EQ(a.replica_id, b.replica_id);
  EXPECT_EQ(a.issued_by, b.issued_by);
  EXPECT_EQ(a.der, b.der);
  EXPECT_EQ(a.revoked_on, b.revoked_on);
  EXPECT_EQ(a.revocation_reason, b.revocation_reason);
  EXPECT_EQ(a.revoked_by, b.revoked_by);
  EXPECT_EQ(a.invalidity_date, b.invalidity_date);
}

TEST(RecordEntriesTest, ACertificateRecordReadsBackAsItWasWritten) {
  const auto record = revoked_certificate();
  auto back = certificate_from_entry(entry_of("cn=x", certificate_attributes(record)));
  ASSERT_TRUE(back) << back.error().message;
  expect_same(*back, record);
}

TEST(RecordEntriesTest, ASerialIsStoredAtFixedWidthSoTheDirectoryOrdersItNumerically) {
  const auto entry = entry_of("cn=x", certificate_attributes(revoked_certificate()));
  EXPECT_EQ(entry.first_or("caSerialNumber"), "0000000000000001a2b3c4d5e6f70819aabbccdd");
}

TEST(RecordEntriesTest, ACertificateEntryWithoutSerialOrCertificateIsRefused) {
  for (const char* missing : {"caSerialNumber", "userCertificate;binary"}) {
    SCOPED_TRACE(missing);
    auto back =
        certificate_from_entry(entry_of("cn=x", without(certificate_attributes(revoked_certificate()), missing)));
    ASSERT_FALSE(back);
    EXPECT_TRUE(back.error().is(ErrorCode::directory)) << back.error().message;
  }
}

TEST(RecordEntriesTest, ARequestRecordReadsBackAsItWasWritten) {
  const auto record = approved_request();
  auto back = request_from_entry(entry_of("cn=x", request_attributes(record)));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->id_hex, record.id_hex);
  EXPECT_EQ(back->type, record.type);
  EXPECT_EQ(back->state, record.state);
  EXPECT_EQ(back->profile_id, record.profile_id);
  EXPECT_EQ(back->csr_der, record.csr_der);
  EXPECT_EQ(back->serial_hex, record.serial_hex);
  EXPECT_EQ(back->subject_dn, record.subject_dn);
  EXPECT_EQ(back->created_at, record.created_at);
  EXPECT_EQ(back->modified_at, record.modified_at);
  EXPECT_EQ(back->replica_id, record.replica_id);
  EXPECT_EQ(back->instance_id, record.instance_id);
  EXPECT_EQ(back->secret_hash, record.secret_hash);
  EXPECT_EQ(back->requester, record.requester);
  EXPECT_EQ(back->approved_by, record.approved_by);
  EXPECT_EQ(back->approval_changes, record.approval_changes);
}

TEST(RecordEntriesTest, ARequestEntryWithoutItsIdIsRefused) {
  auto back = request_from_entry(entry_of("cn=x", without(request_attributes(approved_request()), "caRequestId")));
  ASSERT_FALSE(back);
  EXPECT_TRUE(back.error().is(ErrorCode::directory));
  EXPECT_NE(back.error().message.find("caRequestId"), std::string::npos) << back.error().message;
}

TEST(RecordEntriesTest, AnAuditCutReadsBackAsItWasWrittenAndGarbageIsRefused) {
  // The value names the expected checkpoint by seq and hash (its time is on the checkpoint entries).
  const AuditCut cut{12, AuditCheckpoint{40, std::string(64, 'a'), {}}, at(1'800'000'500)};
  auto back = audit_cut_from_value(audit_cut_value(cut));
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, cut);
  EXPECT_FALSE(audit_cut_from_value("12:forty:hash:now"));
}

TEST(RecordEntriesTest, APeersCrlNumbersAreReadFromItsIssuingPoint) {
  const auto entry = entry_of(
      "cn=MasterCRL",
      {{"caCrlNumber", {"4294967297"}}, {"caDeltaCrlNumber", {"4294967299"}}, {"caCrlServeFrom", {"1800000000123"}}});
  EXPECT_EQ(peer_crl_numbers_from(entry),
            (PeerCrlNumbers{4294967297u, 4294967299u, TimePoint(std::chrono::milliseconds(1'800'000'000'123))}));
  EXPECT_EQ(peer_crl_numbers_from(entry_of("cn=MasterCRL", {})), PeerCrlNumbers{}) << "nothing published yet";
}

TEST(RecordEntriesTest, TheDirectoryIsBoundAsItsRootUnlessAnAccountIsConfigured) {
  DirectorySection directory;
  EXPECT_EQ(directory_bind_dn(directory), "cn=Directory Manager,o=pki-ca");
  directory.suffix = "dc=example,dc=com";
  EXPECT_EQ(directory_bind_dn(directory), "cn=Directory Manager,dc=example,dc=com");
  directory.bind_dn = "uid=ca,ou=services,dc=example,dc=com";
  EXPECT_EQ(directory_bind_dn(directory), "uid=ca,ou=services,dc=example,dc=com");
}

}  // namespace
}  // namespace ca::store
