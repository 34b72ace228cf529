// CrlPublisher over the fake store: what a follower does with its own revocations, and how CRL pairs
// chain (full CRL + delta against a base the publisher can vouch for).
#include "authority/crl_publisher.hpp"

#include <atomic>
#include <thread>

#include <gtest/gtest.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

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
  }
  testing::FakeCaStore store_;
  crypto::fixtures::Issued ca_;
};

TEST_F(CrlPublisherTest, AFollowerDoesNotSpinAfterItsOwnRevocation) {
  CrlOptions options;
  options.debounce = std::chrono::milliseconds(5);
  options.poll_interval = std::chrono::seconds(60);
  CrlPublisher follower(store_, ca_.cert.get(), ca_.key.get(), options);
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
  CrlPublisher publisher(store_, ca_.cert.get(), ca_.key.get(), options);
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
  ASSERT_TRUE(publisher.publish_now());
  auto second = publisher.latest();
  auto chained = inspect_delta(*second.delta);
  EXPECT_EQ(chained.base, static_cast<long>(first.full->number));
  EXPECT_EQ(chained.entries, 1);
  publisher.stop();
}

}  // namespace
}  // namespace ca::authority
