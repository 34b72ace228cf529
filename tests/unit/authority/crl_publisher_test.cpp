// CrlPublisher over the fake store: what a follower does with its own revocations, and how CRL pairs
// chain (full CRL + delta against a base the publisher can vouch for).
#include "authority/revocation/crl_publisher.hpp"

#include <atomic>
#include <thread>

#include <gtest/gtest.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <fmt/format.h>

#include "authority/revocation/crl_numbering.hpp"
#include "authority/revocation/crl_partitions.hpp"
#include "support/fake_ca_store.hpp"
#include "unit/crypto/crypto_test_support.hpp"

namespace ca::authority {
namespace {

store::RevocationChange revoked(const std::string& serial) {
  store::RevocationChange c;
  c.serial_hex = serial;
  c.revoked_on = std::chrono::system_clock::now();
  c.reason = 1;
  return c;
}

// The delta CRL indicator (base CRL number) and entry count of a published delta CRL.
struct DeltaView {
  long base = -1;
  int entries = -1;
};
DeltaView inspect_delta(const PublishedCrl& delta) {
  const unsigned char* p = delta.der.data();
  ossl::UniquePtr<X509_CRL> crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(delta.der.size())));
  DeltaView view;
  if (!crl) return view;
  ossl::UniquePtr<ASN1_INTEGER> base(
      static_cast<ASN1_INTEGER*>(X509_CRL_get_ext_d2i(crl.get(), NID_delta_crl, nullptr, nullptr)));
  if (base) view.base = ASN1_INTEGER_get(base.get());
  auto* revoked = X509_CRL_get_REVOKED(crl.get());
  view.entries = revoked ? sk_X509_REVOKED_num(revoked) : 0;
  return view;
}

// A certificate enrolled and revoked in the store, as another instance would have done it.
Status revoke_in_store(testing::FakeCaStore& store, const std::string& serial) {
  store::RequestRecord request;
  request.id_hex = serial;
  store::CertificateRecord certificate;
  certificate.serial_hex = serial;
  Status committed = ok();
  store.commit_enrollment(request, certificate, [&](Status st) { committed = st; });
  CA_CHECK(committed);
  return store.revoke_certificate(store::Revocation{serial, std::chrono::system_clock::now(), 1, std::nullopt, "agent"});
}

class CrlPublisherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto made = crypto::fixtures::make_self_signed_ca(KeyType::ec_p256);
    ASSERT_TRUE(made) << made.error().message;
    ca_ = std::move(*made);
    auto issuer = crypto::fixtures::issuer_of(ca_.cert.get(), ca_.key.get());
    ASSERT_TRUE(issuer) << issuer.error().message;
    issuer_.emplace(std::move(*issuer));
  }
  testing::FakeCaStore store_;
  crypto::fixtures::Issued ca_;
  std::optional<crypto::Issuer> issuer_;
};

TEST_F(CrlPublisherTest, AFollowerDoesNotSpinAfterItsOwnRevocation) {
  CrlOptions options;
  options.debounce = std::chrono::milliseconds(5);
  options.poll_interval = std::chrono::seconds(60);
  CrlPublisher follower(store_, *issuer_, options);
  std::atomic<int> checks{0};
  follower.set_master_check([&] { return ++checks, false; });
  ASSERT_TRUE(follower.start());
  follower.revoked(revoked("10001"));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  follower.stop();
  // One wake-up for the revocation and one when its debounce ends; a spinning loop asks
  // thousands of times.
  EXPECT_LT(checks.load(), 20) << "the follower's schedule loop spins";
  EXPECT_EQ(follower.latest().full, nullptr) << "a follower published a CRL";
}

TEST_F(CrlPublisherTest, TheFirstPairAfterALoadIsAFreshBaseThenDeltasFollowIt) {
  CrlOptions options;
  options.debounce = std::chrono::hours(1);  // publications only when the test asks
  CrlPublisher publisher(store_, *issuer_, options);
  // A revocation recorded before the index is loaded (e.g. by another instance, before a
  // takeover): the first pair cannot know what changed since the last CRL anyone published.
  ASSERT_TRUE(revoke_in_store(store_, "10001"));
  ASSERT_TRUE(publisher.start());
  auto first = publisher.latest();
  ASSERT_TRUE(first.full && first.delta);
  auto fresh = inspect_delta(*first.delta);
  EXPECT_EQ(fresh.base, static_cast<long>(first.full->number)) << "the first delta is not based on its own full CRL";
  EXPECT_EQ(fresh.entries, 0);

  publisher.revoked(revoked("20001"));
  ASSERT_TRUE(publisher.publish_now(false));
  auto second = publisher.latest();
  auto chained = inspect_delta(*second.delta);
  EXPECT_EQ(chained.base, static_cast<long>(first.full->number));
  EXPECT_EQ(chained.entries, 1);
  publisher.stop();
}

TEST_F(CrlPublisherTest, RevocationsBetweenFullCrlsWriteOnlyCumulativeDeltas) {
  CrlOptions options;
  options.debounce = std::chrono::hours(1);
  CrlPublisher publisher(store_, *issuer_, options);
  ASSERT_TRUE(publisher.start());
  const auto base = publisher.latest();
  ASSERT_TRUE(base.full);
  const std::size_t full_writes = store_.full_crl_writes();
  for (int i = 1; i <= 3; ++i) {
    publisher.revoked(revoked(fmt::format("3000{}", i)));
    ASSERT_TRUE(publisher.publish_now(false));
    const auto now = publisher.latest();
    EXPECT_EQ(now.full, base.full) << "a delta publication replaced the full CRL";
    EXPECT_EQ(now.full->etag, base.full->etag);
    EXPECT_EQ(now.delta->number, base.full->number + 1 + static_cast<uint64_t>(i));
    auto view = inspect_delta(*now.delta);
    EXPECT_EQ(view.base, static_cast<long>(base.full->number));
    EXPECT_EQ(view.entries, i) << "deltas are cumulative since their base";
  }
  EXPECT_EQ(store_.full_crl_writes(), full_writes) << "a delta publication rewrote the stored full CRL";
  auto stored = store_.load_crl("MasterCRL");
  ASSERT_TRUE(stored && *stored);
  EXPECT_EQ((*stored)->crl_number, base.full->number);
  EXPECT_EQ((*stored)->delta_number, publisher.latest().delta->number);
  // The scheduled full CRL lists everything and starts a new, empty delta.
  ASSERT_TRUE(publisher.publish_now(true));
  const auto next = publisher.latest();
  EXPECT_GT(next.full->number, base.full->number);
  EXPECT_NE(next.full->etag, base.full->etag);
  EXPECT_EQ(inspect_delta(*next.delta).entries, 0);
  EXPECT_EQ(store_.full_crl_writes(), full_writes + 1);
  publisher.stop();
}

TEST_F(CrlPublisherTest, ADeltaPastTheThresholdBecomesAFullCrl) {
  CrlOptions options;
  options.debounce = std::chrono::hours(1);
  options.full_after_min_changes = 5;
  options.full_after_fraction = 0.10;
  CrlPublisher publisher(store_, *issuer_, options);
  ASSERT_TRUE(publisher.start());
  const auto base = publisher.latest();
  for (int i = 0; i < 5; ++i) publisher.revoked(revoked(fmt::format("4000{}", i)));
  ASSERT_TRUE(publisher.publish_now(false));
  EXPECT_EQ(publisher.latest().full, base.full) << "5 changes are within max(5, 10 %)";
  publisher.revoked(revoked("40005"));
  ASSERT_TRUE(publisher.publish_now(false));
  EXPECT_NE(publisher.latest().full, base.full) << "6 changes are past max(5, 10 %): a full CRL was due";
  EXPECT_EQ(inspect_delta(*publisher.latest().delta).entries, 0);
  publisher.stop();
}

TEST_F(CrlPublisherTest, NumbersCarryTheEpochAndAStaleEpochPublishesNothing) {
  CrlOptions options;
  options.debounce = std::chrono::hours(1);
  const uint64_t epoch = crl_epoch(2, 1);
  ASSERT_TRUE(store_.write_crl_lease("MasterCRL", {}, store::CrlLease{"ca-1", {}, epoch, {}, {}}));
  CrlPublisher publisher(store_, *issuer_, options);
  std::optional<uint64_t> current = epoch;
  std::vector<uint64_t> observed;
  publisher.set_master_epoch([&] { return current; });
  publisher.set_number_observer([&](uint64_t n) { observed.push_back(n); });
  ASSERT_TRUE(publisher.start());
  EXPECT_EQ(publisher.latest().full->number, first_crl_number(epoch));
  // Another master (a later epoch) published meanwhile: this one must not write.
  const uint64_t later = crl_epoch(3, 2);
  ASSERT_TRUE(store_.write_crl_lease("MasterCRL", store::CrlLease{"ca-1", {}, epoch, {}, {}},
                                     store::CrlLease{"ca-2", {}, later, {}, {}}));
  store::CrlRecord theirs;
  theirs.crl_number = first_crl_number(later);
  theirs.delta_number = first_crl_number(later) + 1;
  theirs.epoch = later;
  ASSERT_TRUE(store_.save_crl(theirs));
  publisher.revoked(revoked("50001"));
  auto refused = publisher.publish_now(false);
  ASSERT_FALSE(refused);
  EXPECT_TRUE(refused.error().is(ErrorCode::conflict)) << refused.error().message;
  EXPECT_EQ((*store_.load_crl_numbers("MasterCRL"))->crl_number, first_crl_number(later));
  ASSERT_FALSE(observed.empty());
  EXPECT_EQ(observed.back(), first_crl_number(later) + 1) << "the election is told of the later number";
  // No longer master at write time (the lease ran out by the monotonic clock): nothing written.
  current.reset();
  EXPECT_FALSE(publisher.publish_now(true));
  publisher.stop();
}

TEST_F(CrlPublisherTest, PartitionsListEachSerialInItsOwnPartitionOnly) {
  CrlOptions options;
  options.debounce = std::chrono::hours(1);
  options.partitions = 4;
  options.base_url = "http://ca.example";
  CrlPublisher publisher(store_, *issuer_, options);
  std::vector<std::string> serials;
  for (int i = 0; i < 40; ++i) serials.push_back(fmt::format("{:x}", 0x60000 + i * 7919));
  for (const auto& s : serials) ASSERT_TRUE(revoke_in_store(store_, s));
  ASSERT_TRUE(publisher.start());
  const auto set = publisher.latest();
  ASSERT_EQ(set.partitions.size(), 4u);
  std::size_t total = 0;
  for (std::size_t k = 0; k < 4; ++k) {
    const auto& der = set.partitions[k].full->der;
    const unsigned char* p = der.data();
    ossl::UniquePtr<X509_CRL> crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size())));
    ASSERT_TRUE(crl);
    auto* revoked_list = X509_CRL_get_REVOKED(crl.get());
    const int n = revoked_list ? sk_X509_REVOKED_num(revoked_list) : 0;
    total += static_cast<std::size_t>(n);
    for (int i = 0; i < n; ++i) {
      ossl::UniquePtr<BIGNUM> bn(ASN1_INTEGER_to_BN(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revoked_list, i)), nullptr));
      char* raw = BN_bn2hex(bn.get());
      const std::string hex = raw ? raw : "";
      OPENSSL_free(raw);
      EXPECT_EQ(crl_partition_of_serial(hex, 4), k) << hex << " listed in partition " << k;
    }
    EXPECT_EQ(set.partitions[k].full->number, set.full->number) << "partitions share the complete CRL's numbers";
  }
  EXPECT_EQ(total, serials.size()) << "every revoked serial in exactly one partition";
  // A revocation later goes into its partition's delta only.
  publisher.revoked(revoked("7abcde"));
  ASSERT_TRUE(publisher.publish_now(false));
  const auto after = publisher.latest();
  const auto home = *crl_partition_of_serial("7abcde", 4);
  for (std::size_t k = 0; k < 4; ++k) {
    EXPECT_EQ(after.partitions[k].full, set.partitions[k].full);
    EXPECT_EQ(inspect_delta(*after.partitions[k].delta).entries, k == home ? 1 : 0) << "partition " << k;
  }
  publisher.stop();
}

TEST_F(CrlPublisherTest, ANewMasterKeepsWhatAnotherMastersStoredCrlListsBeforeItsRecordArrives) {
  // Another master (the other side of a partition) published a CRL listing 0xabc01; its record has
  // not replicated here yet, so the index does not know it. A relying party may have seen it.
  CrlOptions options;
  options.debounce = std::chrono::hours(1);
  {
    CrlPublisher other(store_, *issuer_, options);
    ASSERT_TRUE(other.start());
    other.revoked(revoked("abc01"));
    ASSERT_TRUE(other.publish_now(true));
    other.stop();
  }
  CrlPublisher publisher(store_, *issuer_, options);
  ASSERT_TRUE(publisher.start());
  EXPECT_TRUE(publisher.index().contains(*crypto::CrlEntry::from_hex("abc01", 0, 0)))
      << "a serial another master's CRL lists was dropped";
  const auto& der = publisher.latest().full->der;
  const unsigned char* p = der.data();
  ossl::UniquePtr<X509_CRL> crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size())));
  ASSERT_TRUE(crl);
  auto* list = X509_CRL_get_REVOKED(crl.get());
  EXPECT_EQ(list ? sk_X509_REVOKED_num(list) : 0, 1);
  publisher.stop();
}

}  // namespace
}  // namespace ca::authority
