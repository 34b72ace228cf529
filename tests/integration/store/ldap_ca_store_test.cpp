// LdapCaStore against a real slapd.
#include "store/ldap_ca_store.hpp"

#include <future>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "support/directory_fixture.hpp"

namespace ca::store {
namespace {

using testing::TestDirectory;

class LdapCaStoreTest : public ::testing::Test {
 protected:
  TestDirectory directory;
  LdapCaStore store{directory.endpoint(), directory.suffix(), 4, GroupCommitOptions{}};

  // slapd checks the syntax of userCertificate, so records carry a real certificate.
  static const std::vector<uint8_t>& real_der() {
    static const std::vector<uint8_t> der = [] {
      testing::TempDir tmp;
      auto r = testing::shell("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=t -keyout " +
                              (tmp / "k").string() + " -outform DER -out " + (tmp / "c.der").string());
      std::string bytes = testing::read_file(tmp / "c.der");
      return std::vector<uint8_t>(bytes.begin(), bytes.end());
    }();
    return der;
  }
  static CertificateRecord certificate(std::string serial) {
    CertificateRecord c;
    c.serial_hex = serial;
    c.subject_dn = "CN=test,O=Example";
    c.issuer_dn = "CN=CA";
    c.der = real_der();
    c.not_before = std::chrono::system_clock::now();
    c.not_after = c.not_before + std::chrono::hours(24);
    c.issued_at = c.not_before;
    c.profile_id = "caServerCert";
    c.replica_id = 1;
    c.request_id_hex = serial;
    return c;
  }
  static RequestRecord request(std::string id) {
    RequestRecord r;
    r.id_hex = id;
    r.profile_id = "caServerCert";
    r.csr_der = {1, 2, 3, 0, 255};
    r.serial_hex = id;
    r.replica_id = 1;
    r.created_at = r.modified_at = std::chrono::system_clock::now();
    return r;
  }
  Status commit(RequestRecord r, std::optional<CertificateRecord> c) {
    std::promise<Status> p;
    store.commit_enrollment(std::move(r), std::move(c), [&](Status st) { p.set_value(st); });
    Status st = p.get_future().get();
    if (!st) std::fprintf(stderr, "commit failed: %s\n", st.error().message.c_str());
    return st;
  }
};

TEST_F(LdapCaStoreTest, EnrollmentRoundTripsThroughTheDirectory) {
  ASSERT_TRUE(commit(request("10001"), certificate("10001")));
  auto cert = store.find_certificate("010001");
  ASSERT_TRUE(cert) << cert.error().message;
  EXPECT_EQ(cert->serial_hex, "10001");
  EXPECT_EQ(cert->subject_dn, "CN=test,O=Example");
  EXPECT_EQ(cert->der, real_der());
  auto req = store.find_request("10001");
  ASSERT_TRUE(req) << req.error().message;
  EXPECT_EQ(req->csr_der, (std::vector<uint8_t>{1, 2, 3, 0, 255}));
  EXPECT_EQ(req->serial_hex, "10001");
  EXPECT_TRUE(*store.certificate_exists("10001"));
  EXPECT_FALSE(*store.certificate_exists("20001"));
  EXPECT_TRUE(store.find_certificate("ffff").error().is(ErrorCode::not_found));
}

TEST_F(LdapCaStoreTest, AFailingUnitLeavesNoHalfWrittenRecordAndSparesItsBatch) {
  ASSERT_TRUE(commit(request("a1"), certificate("a1")));
  // Many units at once so they share batches; one of them collides with an existing certificate.
  std::vector<std::promise<Status>> results(40);
  for (int i = 0; i < 40; ++i) {
    std::string id = i == 17 ? "b17" : fmt::format("c{}", i);
    std::string serial = i == 17 ? "a1" : id;  // unit 17: new request, duplicate certificate
    store.commit_enrollment(request(id), certificate(serial), [&, i](Status st) { results[i].set_value(st); });
  }
  for (int i = 0; i < 40; ++i) {
    Status st = results[i].get_future().get();
    if (i == 17) {
      ASSERT_FALSE(st);
      EXPECT_TRUE(st.error().is(ErrorCode::conflict)) << st.error().message;
    } else {
      EXPECT_TRUE(st) << i << ": " << st.error().message;
    }
  }
  // The request of the failed unit must not exist: the unit is all-or-nothing.
  EXPECT_TRUE(store.find_request("b17").error().is(ErrorCode::not_found));
  EXPECT_TRUE(store.find_request("c16"));
}

TEST_F(LdapCaStoreTest, ConcurrentClaimsOnOneServerNeverOverlap) {
  std::vector<NumberRange> ranges;
  std::mutex m;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        auto r = store.claim_range(RangeKind::serial, 10, 0, t + 1, "test");
        ASSERT_TRUE(r) << r.error().message;
        std::lock_guard l(m);
        ranges.push_back(*r);
      }
    });
  for (auto& t : threads) t.join();
  ASSERT_EQ(ranges.size(), 100u);
  std::sort(ranges.begin(), ranges.end(), [](auto& a, auto& b) { return a.begin < b.begin; });
  for (std::size_t i = 1; i < ranges.size(); ++i) EXPECT_GT(ranges[i].begin, ranges[i - 1].end);
  EXPECT_EQ(ranges.front().begin, 1u);
  EXPECT_EQ(ranges.back().end, 1000u);
}

TEST_F(LdapCaStoreTest, ClaimRespectsTheFloorAndMovesTheCounterPastIt) {
  auto r = store.claim_range(RangeKind::request, 100, 5000, 1, "test");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->begin, 5000u);
  auto r2 = store.claim_range(RangeKind::request, 100, 0, 1, "test");
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->begin, 5100u);
}

TEST_F(LdapCaStoreTest, ReplicaEntryAndCounterScan) {
  ReplicaRecord r;
  r.replica_id = 1;
  r.instance_id = "master";
  r.serial_current = NumberRange{1, 100};
  r.serial_next = 5;
  ASSERT_TRUE(store.save_replica(r));
  r.serial_next = 7;
  ASSERT_TRUE(store.save_replica(r));
  auto loaded = store.load_replica(1);
  ASSERT_TRUE(loaded && *loaded);
  EXPECT_EQ((*loaded)->serial_next, 7u);
  EXPECT_EQ((*loaded)->serial_current, (NumberRange{1, 100}));
  EXPECT_FALSE((*loaded)->serial_standby);

  // Serials carry 64 random bits below the number (compose_serial_hex): the scan still finds the
  // highest counter of this replica, whatever the random bits.
  for (uint64_t counter : {3u, 9u, 42u}) {
    std::string hex = compose_serial_hex(compose_number(counter, 1), 0xffffffffffffffffull - counter);
    ASSERT_TRUE(commit(request(fmt::format("{:x}", compose_number(counter, 1))), certificate(hex)));
  }
  // Another replica's numbers in the same counter range do not count.
  std::string other = compose_serial_hex(compose_number(77, 2), 0);
  auto c = certificate(other);
  c.replica_id = 2;
  ASSERT_TRUE(commit(request("f00d"), c));
  auto highest = store.highest_counter_used(RangeKind::serial, 1, 1, 100);
  ASSERT_TRUE(highest);
  ASSERT_TRUE(highest->has_value());
  EXPECT_EQ(**highest, 42u);
  auto none = store.highest_counter_used(RangeKind::serial, 1, 50, 100);
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->has_value());
}

TEST_F(LdapCaStoreTest, FilterValuesFromOutsideAreEscaped) {
  ASSERT_TRUE(commit(request("d1"), certificate("d1")));
  CertificateQuery q;
  q.subject_contains = "*)(objectClass=*";
  auto page = store.list_certificates(q);
  ASSERT_TRUE(page) << page.error().message;
  EXPECT_EQ(page->total, 0u);
  q.subject_contains = "test";
  page = store.list_certificates(q);
  ASSERT_TRUE(page);
  EXPECT_EQ(page->total, 1u);
}

TEST_F(LdapCaStoreTest, DirectoryDownIsUnavailableAndServiceResumes) {
  ASSERT_TRUE(commit(request("e1"), certificate("e1")));
  directory.slapd->stop();
  auto down = store.find_certificate("e1");
  ASSERT_FALSE(down);
  EXPECT_TRUE(down.error().is(ErrorCode::unavailable)) << down.error().message;
  Status write = commit(request("e2"), certificate("e2"));
  ASSERT_FALSE(write);
  EXPECT_TRUE(write.error().is(ErrorCode::unavailable)) << write.error().message;
  ASSERT_TRUE(directory.slapd->start(false));
  auto back = store.find_certificate("e1");
  EXPECT_TRUE(back) << back.error().message;
  EXPECT_TRUE(commit(request("e2"), certificate("e2")));
}

TEST_F(LdapCaStoreTest, RevocationIsACompareAndSetOnTheRecord) {
  ASSERT_TRUE(commit(request("r1"), certificate("r1")));
  auto now = std::chrono::system_clock::now();
  Revocation r{"r1", now, static_cast<int>(RevocationReason::key_compromise), now - std::chrono::hours(1), "agent"};
  ASSERT_TRUE(store.revoke_certificate(r));
  auto twice = store.revoke_certificate(r);
  ASSERT_FALSE(twice);
  EXPECT_TRUE(twice.error().is(ErrorCode::conflict)) << twice.error().message;
  auto missing = store.revoke_certificate(Revocation{"dead", now, 0, std::nullopt, "agent"});
  ASSERT_FALSE(missing);
  EXPECT_TRUE(missing.error().is(ErrorCode::not_found)) << missing.error().message;
  auto rec = store.find_certificate("r1");
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->status, "REVOKED");
  EXPECT_EQ(rec->revocation_reason, 1);
  ASSERT_TRUE(rec->invalidity_date);
  // Only a hold can be undone.
  auto undo = store.unrevoke_certificate("r1", "agent");
  ASSERT_FALSE(undo);
  EXPECT_TRUE(undo.error().is(ErrorCode::conflict));

  ASSERT_TRUE(commit(request("h1"), certificate("h1")));
  ASSERT_TRUE(store.revoke_certificate(Revocation{"h1", now, 6, std::nullopt, "agent"}));
  std::vector<RevocationChange> all;
  ASSERT_TRUE(store.each_revocation_change(std::nullopt, [&](const RevocationChange& c) { all.push_back(c); }));
  EXPECT_EQ(all.size(), 2u);
  ASSERT_TRUE(store.unrevoke_certificate("h1", "agent"));
  EXPECT_EQ(store.find_certificate("h1")->status, "VALID");
  std::vector<RevocationChange> changed;
  ASSERT_TRUE(store.each_revocation_change(now - std::chrono::seconds(5), [&](const RevocationChange& c) { changed.push_back(c); }));
  ASSERT_EQ(changed.size(), 2u);
  for (const auto& c : changed) EXPECT_EQ(c.revoked, c.serial_hex == "r1") << c.serial_hex;
}

TEST_F(LdapCaStoreTest, CrlNumberNeverGoesBackwards) {
  auto crl_der = [] {
    testing::TempDir tmp;
    testing::shell("cd " + tmp.path().string() +
                   " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=c -keyout k -out c"
                   " && touch index.txt && printf 'default_ca=ca\n[ca]\ndatabase=index.txt\ndefault_md=sha256\ndefault_crl_days=1\n' > ca.cnf"
                   " && openssl ca -config ca.cnf -gencrl -keyfile k -cert c -out crl.pem && openssl crl -in crl.pem -outform DER -out crl.der");
    std::string b = testing::read_file(tmp / "crl.der");
    return std::vector<uint8_t>(b.begin(), b.end());
  }();
  ASSERT_FALSE(crl_der.empty());
  CrlRecord crl;
  crl.crl_number = 5;
  crl.this_update = std::chrono::system_clock::now();
  crl.next_update = crl.this_update + std::chrono::hours(1);
  crl.crl_der = crl_der;
  ASSERT_TRUE(store.save_crl(crl));
  crl.crl_number = 4;
  auto back = store.save_crl(crl);
  ASSERT_FALSE(back);
  EXPECT_TRUE(back.error().is(ErrorCode::conflict));
  crl.crl_number = 6;
  ASSERT_TRUE(store.save_crl(crl));
  auto loaded = store.load_crl("MasterCRL");
  ASSERT_TRUE(loaded && *loaded);
  EXPECT_EQ((*loaded)->crl_number, 6u);
  EXPECT_EQ((*loaded)->crl_der, crl_der);
}

TEST_F(LdapCaStoreTest, GroupMembership) {
  EXPECT_FALSE(*store.is_group_member("Certificate Manager Agents", "CN=agent,O=Example"));
  ASSERT_TRUE(store.add_group_member("Certificate Manager Agents", "CN=agent,O=Example"));
  ASSERT_TRUE(store.add_group_member("Certificate Manager Agents", "CN=agent,O=Example"));
  EXPECT_TRUE(*store.is_group_member("Certificate Manager Agents", "CN=agent,O=Example"));
  EXPECT_FALSE(*store.is_group_member("Certificate Manager Agents", "CN=*"));
}

}  // namespace
}  // namespace ca::store
