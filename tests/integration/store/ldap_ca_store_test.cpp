// LdapCaStore against a real slapd.
#include "store/ldap/ldap_ca_store.hpp"

#include <algorithm>
#include <atomic>
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
      auto r =
          testing::shell("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=t -keyout " +
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
  // One attribute of an entry as the directory holds it ("" when absent).
  std::string attribute_of(const std::string& dn, const std::string& attribute) {
    auto conn = LdapConnection::open(directory.endpoint());
    if (!conn) return "";
    auto entry = (*conn)->read(dn, {attribute});
    return entry && *entry ? (*entry)->first_or(attribute) : std::string();
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
  ASSERT_TRUE(store.each_revocation_change(now - std::chrono::seconds(5),
                                           [&](const RevocationChange& c) { changed.push_back(c); }));
  ASSERT_EQ(changed.size(), 2u);
  for (const auto& c : changed) EXPECT_EQ(c.revoked, c.serial_hex == "r1") << c.serial_hex;
}

// A real CRL (slapd checks the syntax of certificateRevocationList / deltaRevocationList).
const std::vector<uint8_t>& real_crl_der() {
  static const std::vector<uint8_t> der = [] {
    testing::TempDir tmp;
    testing::shell(
        "cd " + tmp.path().string() +
        " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=c -keyout k -out c"
        " && touch index.txt && printf "
        "'default_ca=ca\n[ca]\ndatabase=index.txt\ndefault_md=sha256\ndefault_crl_days=1\n' > ca.cnf"
        " && openssl ca -config ca.cnf -gencrl -keyfile k -cert c -out crl.pem && openssl crl -in crl.pem -outform DER "
        "-out crl.der");
    std::string b = testing::read_file(tmp / "crl.der");
    return std::vector<uint8_t>(b.begin(), b.end());
  }();
  return der;
}

StoredCrl stored_crl(uint64_t number, uint64_t base, std::vector<uint8_t> der) {
  StoredCrl c;
  c.number = number;
  c.base = base;
  c.this_update = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
  c.next_update = c.this_update + std::chrono::hours(1);
  c.serve_from = std::chrono::system_clock::time_point(std::chrono::milliseconds(1234567));
  c.der = std::move(der);
  return c;
}

TEST_F(LdapCaStoreTest, CrlNumberNeverGoesBackwards) {
  ASSERT_FALSE(real_crl_der().empty());
  CrlRecord crl;
  crl.crl_number = 5;
  crl.this_update = std::chrono::system_clock::now();
  crl.next_update = crl.this_update + std::chrono::hours(1);
  crl.complete.full = stored_crl(5, 0, real_crl_der());
  ASSERT_TRUE(store.save_crl(crl));
  crl.crl_number = 4;
  auto back = store.save_crl(crl);
  ASSERT_FALSE(back);
  EXPECT_TRUE(back.error().is(ErrorCode::conflict));
  crl.crl_number = 6;
  crl.complete.full->number = 6;
  ASSERT_TRUE(store.save_crl(crl));
  auto loaded = store.load_crl("MasterCRL");
  ASSERT_TRUE(loaded && *loaded);
  EXPECT_EQ((*loaded)->crl_number, 6u);
  ASSERT_TRUE((*loaded)->complete.full);
  EXPECT_EQ((*loaded)->complete.full->der, real_crl_der());
  EXPECT_EQ((*loaded)->complete.full->number, 6u);
}

TEST_F(LdapCaStoreTest, ADeltaPublicationLeavesTheStoredFullCrlEntryUntouched) {
  CrlRecord crl;
  crl.crl_number = 10;
  crl.delta_number = 11;
  crl.complete.full = stored_crl(10, 0, real_crl_der());
  crl.complete.delta = stored_crl(11, 10, real_crl_der());
  crl.partitions.resize(2);
  for (auto& p : crl.partitions) {
    p.full = stored_crl(10, 0, real_crl_der());
    p.delta = stored_crl(11, 10, real_crl_der());
  }
  ASSERT_TRUE(store.save_crl(crl));
  const std::string full_dn = "cn=full," + store.layout().crl_dn("MasterCRL");
  auto csn_of = [&](const std::string& dn) { return attribute_of(dn, "entryCSN"); };
  const std::string full_csn = csn_of(full_dn);
  ASSERT_FALSE(full_csn.empty());
  // A delta only: the full CRLs are absent from the record and stay as stored.
  CrlRecord delta;
  delta.crl_number = 10;
  delta.delta_number = 12;
  delta.complete.delta = stored_crl(12, 10, real_crl_der());
  delta.partitions.resize(2);
  for (auto& p : delta.partitions) p.delta = stored_crl(12, 10, real_crl_der());
  ASSERT_TRUE(store.save_crl(delta));
  EXPECT_EQ(csn_of(full_dn), full_csn) << "writing a delta modified the full CRL's entry";
  auto loaded = store.load_crl("MasterCRL");
  ASSERT_TRUE(loaded && *loaded);
  EXPECT_EQ((*loaded)->crl_number, 10u);
  EXPECT_EQ((*loaded)->delta_number, 12u);
  ASSERT_TRUE((*loaded)->complete.full && (*loaded)->complete.delta);
  EXPECT_EQ((*loaded)->complete.full->number, 10u);
  EXPECT_EQ((*loaded)->complete.delta->number, 12u);
  EXPECT_EQ((*loaded)->complete.delta->base, 10u);
  EXPECT_EQ((*loaded)->complete.delta->serve_from,
            std::chrono::system_clock::time_point(std::chrono::milliseconds(1234567)));
  ASSERT_EQ((*loaded)->partitions.size(), 2u);
  EXPECT_EQ((*loaded)->partitions[1].delta->number, 12u);
  EXPECT_EQ((*loaded)->partitions[1].full->number, 10u);
  // A follower that serves full CRL 10 already reads only the deltas.
  auto light = store.load_crl("MasterCRL", 10);
  ASSERT_TRUE(light && *light);
  EXPECT_FALSE((*light)->complete.full);
  EXPECT_TRUE((*light)->complete.delta);
  EXPECT_EQ((*light)->partition_count, 2u);
}

TEST_F(LdapCaStoreTest, APublicationOfAnotherEpochIsRefused) {
  ASSERT_TRUE(store.write_crl_lease("MasterCRL", {}, CrlLease{"ca-1", std::chrono::system_clock::now(), 4097, {}, {}}));
  CrlRecord crl;
  crl.crl_number = (uint64_t{4097} << 32) + 1;
  crl.delta_number = crl.crl_number + 1;
  crl.epoch = 4097;
  crl.complete.full = stored_crl(crl.crl_number, 0, real_crl_der());
  ASSERT_TRUE(store.save_crl(crl));
  // Another instance takes the lease over (a new epoch); the old master's next write is refused.
  ASSERT_TRUE(store.write_crl_lease("MasterCRL", CrlLease{"ca-1", {}, 4097, {}, {}},
                                    CrlLease{"ca-2", std::chrono::system_clock::now(), 8194, {}, {}}));
  CrlRecord stale = crl;
  stale.crl_number += 2;
  stale.delta_number += 2;
  stale.complete.full->number = stale.crl_number;
  auto refused = store.save_crl(stale);
  ASSERT_FALSE(refused);
  EXPECT_TRUE(refused.error().is(ErrorCode::conflict)) << refused.error().message;
  EXPECT_EQ((*store.load_crl_numbers("MasterCRL"))->crl_number, crl.crl_number);
  auto loaded = store.load_crl("MasterCRL");
  EXPECT_EQ((*loaded)->complete.full->number, crl.crl_number) << "a refused publication left a CRL entry behind";
}

TEST_F(LdapCaStoreTest, TheLeaseIsACompareAndSetOnHolderAndEpoch) {
  ASSERT_TRUE(store.write_crl_lease("MasterCRL", {}, CrlLease{"ca-1", std::chrono::system_clock::now(), 4097, {}, {}}));
  EXPECT_FALSE(store.write_crl_lease("MasterCRL", {}, CrlLease{"ca-2", {}, 8194, {}, {}})) << "took a held lease";
  EXPECT_FALSE(
      store.write_crl_lease("MasterCRL", CrlLease{"ca-1", {}, 4096, {}, {}}, CrlLease{"ca-2", {}, 8194, {}, {}}))
      << "a stale epoch moved the lease";
  ASSERT_TRUE(store.set_crl_role_hint("MasterCRL", CaStore::CrlRoleHint::pinned, "ca-3"));
  ASSERT_TRUE(store.set_crl_role_hint("MasterCRL", CaStore::CrlRoleHint::handover, "ca-2"));
  ASSERT_TRUE(
      store.write_crl_lease("MasterCRL", CrlLease{"ca-1", {}, 4097, {}, "ca-2"}, CrlLease{"ca-2", {}, 8194, {}, {}}));
  auto lease = store.read_crl_lease("MasterCRL");
  ASSERT_TRUE(lease);
  EXPECT_EQ(lease->holder, "ca-2");
  EXPECT_EQ(lease->epoch, 8194u);
  EXPECT_EQ(lease->pinned, "ca-3") << "a lease write must leave the pin alone";
  EXPECT_TRUE(lease->handover.empty()) << "the handover request is answered by the lease write";
  ASSERT_TRUE(store.set_crl_role_hint("MasterCRL", CaStore::CrlRoleHint::pinned, ""));
  EXPECT_TRUE(store.read_crl_lease("MasterCRL")->pinned.empty());
}

// One entry per epoch: a renewal of an old epoch written after a newer epoch exists (as a frozen
// directory applies it after its thaw) changes that old entry only; the lease stays the highest.
TEST_F(LdapCaStoreTest, TheLeaseIsTheHighestEpochWhateverTheOrderOfWrites) {
  const auto now = std::chrono::system_clock::now();
  ASSERT_TRUE(store.write_crl_lease("MasterCRL", {}, CrlLease{"ca-1", now, 4097, {}, {}}));
  ASSERT_TRUE(
      store.write_crl_lease("MasterCRL", CrlLease{"ca-1", {}, 4097, {}, {}}, CrlLease{"ca-2", now, 8194, {}, {}}));
  auto admin = LdapConnection::open(directory.endpoint());
  ASSERT_TRUE(admin);
  const std::string old_entry = "cn=epoch-4097," + store.layout().crl_dn("MasterCRL");
  ASSERT_TRUE((*admin)->modify(
      old_entry,
      {{LdapModification::Op::replace, "caLeaseExpires", {to_generalized_time(now + std::chrono::hours(1))}}}));
  auto lease = store.read_crl_lease("MasterCRL");
  ASSERT_TRUE(lease);
  EXPECT_EQ(lease->holder, "ca-2");
  EXPECT_EQ(lease->epoch, 8194u);
  auto renewal =
      store.write_crl_lease("MasterCRL", CrlLease{"ca-1", {}, 4097, {}, {}}, CrlLease{"ca-1", now, 4097, {}, {}});
  ASSERT_FALSE(renewal) << "the holder of a superseded epoch renewed it";
  EXPECT_TRUE(renewal.error().is(ErrorCode::conflict)) << renewal.error().message;
  EXPECT_FALSE(
      store.write_crl_lease("MasterCRL", CrlLease{"ca-2", {}, 8194, {}, {}}, CrlLease{"ca-3", now, 4099, {}, {}}))
      << "an epoch went down";
  // The holder renews its own entry; a new epoch adds one; old entries beyond the few kept go.
  ASSERT_TRUE(
      store.write_crl_lease("MasterCRL", CrlLease{"ca-2", {}, 8194, {}, {}}, CrlLease{"ca-2", now, 8194, {}, {}}));
  uint64_t epoch = 8194;
  for (uint64_t generation = 3; generation <= 9; ++generation) {
    const uint64_t next = (generation << 12) | 2;
    ASSERT_TRUE(
        store.write_crl_lease("MasterCRL", CrlLease{"ca-2", {}, epoch, {}, {}}, CrlLease{"ca-2", now, next, {}, {}}));
    epoch = next;
  }
  EXPECT_EQ(store.read_crl_lease("MasterCRL")->epoch, epoch);
  auto entries = (*admin)->search(store.layout().crl_dn("MasterCRL"), SearchScope::one, "(caCrlEpoch=*)",
                                  SearchOptions{{"caCrlEpoch"}, 0});
  ASSERT_TRUE(entries);
  EXPECT_EQ(entries->size(), 5u) << "the newest epoch and the 4 before it are kept";
}

// A lease an earlier version stored on the issuing point entry itself is read, and the first write
// of its holder moves it into an epoch entry.
TEST_F(LdapCaStoreTest, ALeaseOfTheEarlierLayoutIsReadAndMoved) {
  const std::string dn = store.layout().crl_dn("MasterCRL");
  auto admin = LdapConnection::open(directory.endpoint());
  ASSERT_TRUE(admin);
  ASSERT_TRUE((*admin)->add(dn, {{"objectClass", {"caCrlIssuingPoint"}},
                                 {"cn", {"MasterCRL"}},
                                 {"caCrlMaster", {"ca-1"}},
                                 {"caLeaseExpires", {"20300101000000Z"}},
                                 {"caCrlEpoch", {"4097"}}}));
  auto lease = store.read_crl_lease("MasterCRL");
  ASSERT_TRUE(lease);
  EXPECT_EQ(lease->holder, "ca-1");
  EXPECT_EQ(lease->epoch, 4097u);
  ASSERT_TRUE(
      store.write_crl_lease("MasterCRL", *lease, CrlLease{"ca-1", std::chrono::system_clock::now(), 4097, {}, {}}));
  ASSERT_TRUE(store.write_crl_lease("MasterCRL", CrlLease{"ca-1", {}, 4097, {}, {}},
                                    CrlLease{"ca-2", std::chrono::system_clock::now(), 8194, {}, {}}));
  EXPECT_EQ(store.read_crl_lease("MasterCRL")->holder, "ca-2");
  EXPECT_TRUE(attribute_of(dn, "caCrlMaster").empty()) << "the earlier layout's lease stayed on the issuing point";
}

TEST_F(LdapCaStoreTest, ACrlStoredInTheEarlierLayoutIsStillRead) {
  // Both CRLs on the issuing point entry itself, as earlier versions (and bench/crl_fetch.sh) store them.
  const std::string dn = store.layout().crl_dn("MasterCRL");
  const std::string der(real_crl_der().begin(), real_crl_der().end());
  auto admin = LdapConnection::open(directory.endpoint());
  ASSERT_TRUE(admin);
  ASSERT_TRUE((*admin)->add(dn, {{"objectClass", {"caCrlIssuingPoint"}},
                                 {"cn", {"MasterCRL"}},
                                 {"caCrlNumber", {"7"}},
                                 {"caThisUpdate", {"20260101000000Z"}},
                                 {"caNextUpdate", {"20260102000000Z"}},
                                 {"certificateRevocationList;binary", {der}}}));
  auto loaded = store.load_crl("MasterCRL");
  ASSERT_TRUE(loaded && *loaded);
  ASSERT_TRUE((*loaded)->complete.full);
  EXPECT_EQ((*loaded)->complete.full->number, 7u);
  EXPECT_EQ((*loaded)->complete.full->der, real_crl_der());
  // The next publication moves it to its own entry and clears the issuing point's copy.
  CrlRecord next;
  next.crl_number = 8;
  next.delta_number = 9;
  next.complete.full = stored_crl(8, 0, real_crl_der());
  ASSERT_TRUE(store.save_crl(next));
  EXPECT_TRUE(attribute_of(dn, "certificateRevocationList;binary").empty());
  EXPECT_EQ((*store.load_crl("MasterCRL"))->complete.full->number, 8u);
}

TEST_F(LdapCaStoreTest, GroupMembership) {
  EXPECT_FALSE(*store.is_group_member("Certificate Manager Agents", "CN=agent,O=Example"));
  ASSERT_TRUE(store.add_group_member("Certificate Manager Agents", "CN=agent,O=Example"));
  ASSERT_TRUE(store.add_group_member("Certificate Manager Agents", "CN=agent,O=Example"));
  EXPECT_TRUE(*store.is_group_member("Certificate Manager Agents", "CN=agent,O=Example"));
  EXPECT_FALSE(*store.is_group_member("Certificate Manager Agents", "CN=*"));
}

// ---- key archival and recovery ------------------------------------------------------------------

class LdapKeyArchiveStoreTest : public LdapCaStoreTest {
 protected:
  // Sealed bytes are opaque binary to the store: every byte value must survive.
  static KeyRecord key(std::string id, std::string serial) {
    KeyRecord k;
    k.key_id = std::move(id);
    k.sealed = {'C', 'A', 'K', '1', 0, 0, 0, 0, 0xff, 0x00, 0x0a, 0x0d, 0x80, 0x7f, 0x20, 0x00};
    k.owner = "CN=alice,O=Example";
    k.serial_hex = std::move(serial);
    k.algorithm = "EC";
    k.size_bits = 256;
    k.request_id_hex = k.serial_hex;
    k.archived_by = "server-side key generation on test";
    k.created_at = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
    return k;
  }
  Status commit_with_key(RequestRecord r, CertificateRecord c, KeyRecord k) {
    std::promise<Status> p;
    store.commit_enrollment_with_key(std::move(r), std::move(c), std::move(k), [&](Status st) { p.set_value(st); });
    return p.get_future().get();
  }
  static RecoveryRecord recovery(std::string id, int required, TimePoint created) {
    RecoveryRecord r;
    r.id = std::move(id);
    r.key_id = "k" + r.id;
    r.serial_hex = "5e" + r.id;
    r.requester = "serial=a1;sha256=aaaa";
    r.requester_name = "CN=Agent A,O=Example (0xa1)";
    r.approvals_required = required;
    r.result = "waiting";
    r.instance_id = "master";
    r.created_at = r.modified_at = std::chrono::time_point_cast<std::chrono::seconds>(created);
    return r;
  }
  static constexpr std::string_view kA = "serial=a1;sha256=aaaa";
  static constexpr std::string_view kB = "serial=b2;sha256=bbbb";
  static constexpr std::string_view kC = "serial=c3;sha256=cccc";
};

TEST_F(LdapKeyArchiveStoreTest, EnrollmentWithKeyWritesRequestCertificateAndKey) {
  const KeyRecord k = key("0123456789abcdef0123456789abcdef", "b001");
  ASSERT_TRUE(commit_with_key(request("b001"), certificate("b001"), k));

  auto found = store.find_key(k.key_id);
  ASSERT_TRUE(found) << found.error().message;
  EXPECT_EQ(found->key_id, k.key_id);
  EXPECT_EQ(found->sealed, k.sealed);
  EXPECT_EQ(found->owner, k.owner);
  EXPECT_EQ(found->serial_hex, "b001");
  EXPECT_EQ(found->algorithm, "EC");
  EXPECT_EQ(found->size_bits, 256);
  EXPECT_EQ(found->state, "active");
  EXPECT_EQ(found->request_id_hex, "b001");
  EXPECT_EQ(found->archived_by, k.archived_by);
  EXPECT_EQ(found->created_at, k.created_at);

  // By certificate, whatever the spelling of the serial.
  for (std::string_view serial : {"b001", "B001", "000b001"}) {
    SCOPED_TRACE(std::string(serial));
    auto by_serial = store.find_key_by_serial(serial);
    ASSERT_TRUE(by_serial) << by_serial.error().message;
    EXPECT_EQ(by_serial->key_id, k.key_id);
    EXPECT_EQ(by_serial->sealed, k.sealed);
  }
  auto cert = store.find_certificate("b001");
  ASSERT_TRUE(cert) << cert.error().message;
  EXPECT_EQ(cert->der, real_der());
  auto req = store.find_request("b001");
  ASSERT_TRUE(req) << req.error().message;
  EXPECT_EQ(req->serial_hex, "b001");

  EXPECT_TRUE(store.find_key("fedcba9876543210").error().is(ErrorCode::not_found));
  EXPECT_TRUE(store.find_key_by_serial("b002").error().is(ErrorCode::not_found));
  // A key id from outside cannot reach other entries through the DN.
  EXPECT_FALSE(store.find_key("x,ou=certificateRepository"));
}

TEST_F(LdapKeyArchiveStoreTest, AFailingUnitLeavesNoKeyRecordBehind) {
  ASSERT_TRUE(commit_with_key(request("c001"), certificate("c001"), key("aaaa0001", "c001")));

  // The certificate (written last) exists: the key and request written before it are undone.
  Status dup_cert = commit_with_key(request("c002"), certificate("c001"), key("aaaa0002", "c001"));
  ASSERT_FALSE(dup_cert);
  EXPECT_TRUE(dup_cert.error().is(ErrorCode::conflict)) << dup_cert.error().message;
  EXPECT_TRUE(store.find_key("aaaa0002").error().is(ErrorCode::not_found));
  EXPECT_TRUE(store.find_request("c002").error().is(ErrorCode::not_found));

  // The request (written second) exists: the key written first is undone.
  Status dup_request = commit_with_key(request("c001"), certificate("c003"), key("aaaa0003", "c003"));
  ASSERT_FALSE(dup_request);
  EXPECT_TRUE(dup_request.error().is(ErrorCode::conflict)) << dup_request.error().message;
  EXPECT_TRUE(store.find_key("aaaa0003").error().is(ErrorCode::not_found));
  EXPECT_TRUE(store.find_key_by_serial("c003").error().is(ErrorCode::not_found));
  EXPECT_TRUE(store.find_certificate("c003").error().is(ErrorCode::not_found));

  // The key id (written first) exists: nothing else is written.
  Status dup_key = commit_with_key(request("c004"), certificate("c004"), key("aaaa0001", "c004"));
  ASSERT_FALSE(dup_key);
  EXPECT_TRUE(dup_key.error().is(ErrorCode::conflict)) << dup_key.error().message;
  EXPECT_TRUE(store.find_request("c004").error().is(ErrorCode::not_found));
  EXPECT_TRUE(store.find_certificate("c004").error().is(ErrorCode::not_found));

  // What was there stays as it was: one key for c001, the first.
  auto first = store.find_key_by_serial("c001");
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(first->key_id, "aaaa0001");
  EXPECT_EQ(first->serial_hex, "c001");
}

TEST_F(LdapKeyArchiveStoreTest, AFailingKeyUnitInABatchSparesTheOthers) {
  ASSERT_TRUE(commit_with_key(request("d000"), certificate("d000"), key("bbbb0000", "d000")));
  // Units submitted together share batches; unit 7 collides with the existing certificate.
  std::vector<std::promise<Status>> results(20);
  for (int i = 0; i < 20; ++i) {
    std::string id = fmt::format("d{:03x}", i + 1);
    std::string serial = i == 7 ? "d000" : id;
    store.commit_enrollment_with_key(request(id), certificate(serial), key(fmt::format("bbbb{:04x}", i + 1), serial),
                                     [&, i](Status st) { results[i].set_value(st); });
  }
  for (int i = 0; i < 20; ++i) {
    SCOPED_TRACE(i);
    Status st = results[i].get_future().get();
    auto k = store.find_key(fmt::format("bbbb{:04x}", i + 1));
    if (i == 7) {
      ASSERT_FALSE(st);
      EXPECT_TRUE(st.error().is(ErrorCode::conflict)) << st.error().message;
      EXPECT_TRUE(k.error().is(ErrorCode::not_found)) << "the failed unit left its key behind";
    } else {
      EXPECT_TRUE(st) << st.error().message;
      EXPECT_TRUE(k) << k.error().message;
    }
  }
  auto first = store.find_key_by_serial("d000");
  ASSERT_TRUE(first);
  EXPECT_EQ(first->key_id, "bbbb0000");
}

TEST_F(LdapKeyArchiveStoreTest, RecoveriesAreAddedFoundAndListedByState) {
  const auto t0 = std::chrono::system_clock::now() - std::chrono::minutes(10);
  // Added out of order: listings come back oldest first.
  ASSERT_TRUE(store.add_recovery(recovery("c3", 2, t0 + std::chrono::seconds(2))));
  ASSERT_TRUE(store.add_recovery(recovery("a1", 2, t0)));
  ASSERT_TRUE(store.add_recovery(recovery("b2", 1, t0 + std::chrono::seconds(1))));
  Status again = store.add_recovery(recovery("a1", 2, t0));
  ASSERT_FALSE(again);
  EXPECT_TRUE(again.error().is(ErrorCode::conflict)) << again.error().message;

  const RecoveryRecord expected = recovery("a1", 2, t0);
  auto found = store.find_recovery("a1");
  ASSERT_TRUE(found) << found.error().message;
  EXPECT_EQ(found->id, "a1");
  EXPECT_EQ(found->state, "pending");
  EXPECT_EQ(found->key_id, expected.key_id);
  EXPECT_EQ(found->serial_hex, "5ea1");
  EXPECT_EQ(found->requester, expected.requester);
  EXPECT_EQ(found->requester_name, expected.requester_name);
  EXPECT_TRUE(found->approvers.empty());
  EXPECT_EQ(found->approvals_required, 2);
  EXPECT_EQ(found->approval_count, 0);
  EXPECT_EQ(found->result, "waiting");
  EXPECT_EQ(found->instance_id, "master");
  EXPECT_EQ(found->created_at, expected.created_at);
  EXPECT_TRUE(store.find_recovery("d4").error().is(ErrorCode::not_found));

  ASSERT_TRUE(store.approve_recovery("b2", kA, 0, true));
  auto ids = [&](std::string_view state) {
    std::vector<std::string> out;
    auto listed = store.list_recoveries(state);
    EXPECT_TRUE(listed) << listed.error().message;
    if (listed)
      for (const auto& r : *listed) out.push_back(r.id + ":" + r.state);
    return out;
  };
  EXPECT_EQ(ids("pending"), (std::vector<std::string>{"a1:pending", "c3:pending"}));
  EXPECT_EQ(ids("approved"), (std::vector<std::string>{"b2:approved"}));
  EXPECT_EQ(ids(""), (std::vector<std::string>{"a1:pending", "b2:approved", "c3:pending"}));
  EXPECT_TRUE(ids("retrieved").empty());
  // A state from outside is a value in the filter, not more filter.
  EXPECT_TRUE(ids("*").empty());
  EXPECT_TRUE(ids("pending)(caRequestState=*").empty());
}

TEST_F(LdapKeyArchiveStoreTest, ApprovalIsACompareAndSetOnTheCount) {
  ASSERT_TRUE(store.add_recovery(recovery("e5", 2, std::chrono::system_clock::now())));

  ASSERT_TRUE(store.approve_recovery("e5", kA, 0, false));
  auto one = store.find_recovery("e5");
  ASSERT_TRUE(one);
  EXPECT_EQ(one->state, "pending");
  EXPECT_EQ(one->approval_count, 1);
  EXPECT_EQ(one->approvers, std::vector<std::string>{std::string(kA)});

  // B read the record before A's approval landed: its write must fail whole (no approver added).
  Status stale = store.approve_recovery("e5", kB, 0, false);
  ASSERT_FALSE(stale);
  EXPECT_TRUE(stale.error().is(ErrorCode::conflict)) << stale.error().message;
  // A again, with the current count: each approver counts once (also spelt in other case).
  for (std::string approver : {std::string(kA), std::string("SERIAL=A1;SHA256=AAAA")}) {
    SCOPED_TRACE(approver);
    Status twice = store.approve_recovery("e5", approver, 1, true);
    ASSERT_FALSE(twice);
    EXPECT_TRUE(twice.error().is(ErrorCode::conflict)) << twice.error().message;
  }
  auto still = store.find_recovery("e5");
  ASSERT_TRUE(still);
  EXPECT_EQ(still->state, "pending");
  EXPECT_EQ(still->approval_count, 1);
  EXPECT_EQ(still->approvers, std::vector<std::string>{std::string(kA)});

  ASSERT_TRUE(store.approve_recovery("e5", kB, 1, true));
  auto done = store.find_recovery("e5");
  ASSERT_TRUE(done);
  EXPECT_EQ(done->state, "approved");
  EXPECT_EQ(done->approval_count, 2);
  std::vector<std::string> approvers = done->approvers;
  std::sort(approvers.begin(), approvers.end());
  EXPECT_EQ(approvers, (std::vector<std::string>{std::string(kA), std::string(kB)}));

  // Completing twice: the state is no longer pending.
  Status late = store.approve_recovery("e5", kC, 2, true);
  ASSERT_FALSE(late);
  EXPECT_TRUE(late.error().is(ErrorCode::conflict)) << late.error().message;
  EXPECT_EQ(store.find_recovery("e5")->approval_count, 2);

  Status missing = store.approve_recovery("f6", kA, 0, true);
  ASSERT_FALSE(missing);
  EXPECT_TRUE(missing.error().is(ErrorCode::not_found)) << missing.error().message;
}

TEST_F(LdapKeyArchiveStoreTest, ConcurrentApprovalsFromOneCountLandOnce) {
  ASSERT_TRUE(store.add_recovery(recovery("g7", 3, std::chrono::system_clock::now())));
  const std::vector<std::string> agents = {"serial=01;sha256=00", "serial=02;sha256=00", "serial=03;sha256=00",
                                           "serial=04;sha256=00", "serial=05;sha256=00", "serial=06;sha256=00"};
  std::vector<std::thread> threads;
  std::atomic<int> won{0};
  for (const auto& a : agents)
    threads.emplace_back([&, a] {
      if (store.approve_recovery("g7", a, 0, false)) ++won;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(won.load(), 1);
  auto r = store.find_recovery("g7");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->approval_count, 1);
  EXPECT_EQ(r->approvers.size(), 1u);
}

TEST_F(LdapKeyArchiveStoreTest, TransitionsAreACompareAndSetOnTheState) {
  ASSERT_TRUE(store.add_recovery(recovery("h8", 1, std::chrono::system_clock::now())));
  ASSERT_TRUE(store.approve_recovery("h8", kA, 0, true));

  ASSERT_TRUE(store.transition_recovery("h8", "approved", "retrieved", "retrieved by A"));
  auto r = store.find_recovery("h8");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->state, "retrieved");
  EXPECT_EQ(r->result, "retrieved by A");

  Status twice = store.transition_recovery("h8", "approved", "retrieved", "retrieved by A again");
  ASSERT_FALSE(twice);
  EXPECT_TRUE(twice.error().is(ErrorCode::conflict)) << twice.error().message;
  Status reject = store.transition_recovery("h8", "approved", "rejected", "too late");
  ASSERT_FALSE(reject);
  EXPECT_TRUE(reject.error().is(ErrorCode::conflict)) << reject.error().message;
  r = store.find_recovery("h8");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->state, "retrieved");
  EXPECT_EQ(r->result, "retrieved by A") << "a refused transition writes nothing";

  // pending -> rejected, with an empty result leaving the old one.
  ASSERT_TRUE(store.add_recovery(recovery("i9", 2, std::chrono::system_clock::now())));
  ASSERT_TRUE(store.transition_recovery("i9", "pending", "rejected", ""));
  r = store.find_recovery("i9");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->state, "rejected");
  EXPECT_EQ(r->result, "waiting");
}

}  // namespace
}  // namespace ca::store
