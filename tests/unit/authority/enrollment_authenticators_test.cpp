// The enrollment authenticators as objects: the chain's order and verdicts, each of this CA's
// four against a fake directory, and a protocol's own authenticator plugged in without touching
// the others.
#include "authority/issuance/enrollment_authenticators.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <future>

#include "authority/access/one_time_secret.hpp"
#include "crypto/certificate_builder.hpp"
#include "crypto/issuer.hpp"
#include "crypto/keys.hpp"
#include "crypto/pem.hpp"
#include "support/fake_ca_store.hpp"

namespace ca::authority {
namespace {

using Decision = Admission::Decision;
using std::chrono::hours;
using std::chrono::system_clock;

// Says what it was built to say, and counts how often it was asked.
class Scripted final : public EnrollmentAuthenticator {
 public:
  Scripted(std::string name, Admission verdict, int* asked)
      : name_(std::move(name)), verdict_(std::move(verdict)), asked_(asked) {}
  std::string_view name() const override { return name_; }
  Admission admit(const AdmissionRequest&) override {
    ++*asked_;
    return verdict_;
  }

 private:
  std::string name_;
  Admission verdict_;
  int* asked_;
};

Profile profile_accepting(std::vector<std::string> auth) {
  Profile p;
  p.id = "p";
  p.auth = std::move(auth);
  return p;
}

IssuancePlan plan_for(const std::string& subject, std::vector<std::string> dns_names) {
  IssuancePlan plan;
  auto name = crypto::parse_name(subject);
  EXPECT_TRUE(name) << name.error().message;
  plan.subject = std::move(*name);
  plan.subject_text = subject;
  plan.dns_names = std::move(dns_names);
  return plan;
}

TEST(EnrollmentAuthenticators, TheFirstThatDoesNotPassDecidesAndNamesItself) {
  int first = 0, second = 0, third = 0;
  std::vector<std::unique_ptr<EnrollmentAuthenticator>> chain;
  chain.push_back(std::make_unique<Scripted>("first", Admission::pass(), &first));
  chain.push_back(std::make_unique<Scripted>("second", Admission::queue("someone"), &second));
  chain.push_back(std::make_unique<Scripted>("third", Admission::issue("anyone"), &third));
  EnrollmentAuthenticators authenticators(std::move(chain));
  const Profile profile = profile_accepting({"second", "third"});
  const IssuancePlan plan = plan_for("CN=a.example", {"a.example"});
  const PeerIdentity peer;
  const Admission admission = authenticators.admit({profile, plan, peer, "", false});
  EXPECT_EQ(admission.decision, Decision::queue);
  EXPECT_EQ(admission.by, "second");
  EXPECT_EQ(admission.who, "someone");
  EXPECT_EQ(first, 1);
  EXPECT_EQ(second, 1);
  EXPECT_EQ(third, 0) << "nothing after the deciding authenticator is asked";
}

TEST(EnrollmentAuthenticators, WhenAllPassTheCallerIsToldWhatTheProfileAccepts) {
  int asked = 0;
  std::vector<std::unique_ptr<EnrollmentAuthenticator>> chain;
  chain.push_back(std::make_unique<Scripted>("x", Admission::pass(), &asked));
  EnrollmentAuthenticators authenticators(std::move(chain));
  const Profile profile = profile_accepting({"client_certificate", "acme_order"});
  const IssuancePlan plan = plan_for("CN=a.example", {});
  const PeerIdentity peer;
  const Admission admission = authenticators.admit({profile, plan, peer, "", false});
  ASSERT_EQ(admission.decision, Decision::refuse);
  ASSERT_TRUE(admission.error);
  EXPECT_EQ(admission.error->code, ErrorCode::unauthorized);
  EXPECT_EQ(admission.error->message, "profile p needs one of: client_certificate, acme_order");
}

// This CA's chain against a fake directory.
class ThisCasChain : public ::testing::Test {
 protected:
  void SetUp() override {
    auto key = crypto::generate_key(KeyType::ec_p256);
    auto name = crypto::parse_name("CN=Test CA,O=Example");
    ASSERT_TRUE(key && name);
    crypto::CertificateSpec spec;
    spec.serial_hex = "1";
    spec.subject = name->get();
    spec.public_key = key->get();
    spec.not_before = system_clock::now() - hours(1);
    spec.not_after = system_clock::now() + hours(24);
    spec.is_ca = true;
    spec.key_usage = {"digitalSignature", "keyCertSign", "cRLSign"};
    auto signing_key = crypto::SigningKey::from_key(ossl::up_ref(key->get()));
    ASSERT_TRUE(signing_key);
    auto issuer = crypto::Issuer::self_signed(spec, std::move(*signing_key));
    ASSERT_TRUE(issuer) << issuer.error().message;
    ca_.emplace(std::move(*issuer));
    authenticators_.emplace(make_enrollment_authenticators(store_, ca_->certificate()));
  }

  // A certificate of this CA for `subject` and `dns`, known to the directory as `status`.
  crypto::PeerCertificate holder(const std::string& serial, const std::string& subject, std::vector<std::string> dns,
                                 const std::string& status = "VALID") {
    auto key = crypto::generate_key(KeyType::ec_p256);
    auto name = crypto::parse_name(subject);
    EXPECT_TRUE(key && name);
    crypto::CertificateSpec spec;
    spec.serial_hex = serial;
    spec.subject = name->get();
    spec.public_key = key->get();
    spec.not_before = system_clock::now() - hours(1);
    spec.not_after = system_clock::now() + hours(24);
    spec.dns_names = std::move(dns);
    auto cert = ca_->sign_certificate(spec);
    EXPECT_TRUE(cert) << cert.error().message;
    store::CertificateRecord record;
    record.serial_hex = serial;
    record.status = status;
    record.subject_dn = subject;
    record.der = crypto::certificate_to_der(cert->get());
    store::RequestRecord request;
    request.id_hex = serial;
    std::promise<Status> committed;
    store_.commit_enrollment(request, record, [&](Status st) { committed.set_value(std::move(st)); });
    EXPECT_TRUE(committed.get_future().get());
    return crypto::PeerCertificate::of(cert->get());
  }

  std::string code_for(const std::string& profile_id, std::vector<std::string> allowed_names = {}) {
    store::EnrollmentCodeRecord code;
    code.id = "c0de";
    code.profile_id = profile_id;
    auto hash = hash_secret("s3cret-part");
    EXPECT_TRUE(hash);
    code.secret_hash = *hash;
    code.allowed_names = std::move(allowed_names);
    code.expires_at = system_clock::now() + hours(1);
    EXPECT_TRUE(store_.add_enrollment_code(code));
    return "c0de.s3cret-part";
  }

  Admission admit(const Profile& profile, const IssuancePlan& plan, const PeerIdentity& peer,
                  std::string_view code = "", bool renewal_only = false) {
    return authenticators_->admit({profile, plan, peer, code, renewal_only});
  }

  testing::FakeCaStore store_;
  std::optional<crypto::Issuer> ca_;
  std::optional<EnrollmentAuthenticators> authenticators_;
};

TEST_F(ThisCasChain, AnEnrollmentCodeIssuesAtOnceAndOnlyWhereTheProfileTakesCodes) {
  const Profile profile = profile_accepting({"agent_approval", "enrollment_code"});
  const IssuancePlan plan = plan_for("CN=a.example", {"a.example"});
  const std::string code = code_for("p", {"dns:a.example"});
  const Admission issued = admit(profile, plan, PeerIdentity{}, code);
  EXPECT_EQ(issued.decision, Decision::issue);
  EXPECT_EQ(issued.by, "enrollment_code");
  EXPECT_EQ(issued.who, "enrollment code c0de");
  EXPECT_EQ(issued.code_id, "c0de");

  const Admission wrong = admit(profile, plan, PeerIdentity{}, "c0de.not-the-secret");
  ASSERT_EQ(wrong.decision, Decision::refuse);
  EXPECT_EQ(wrong.error->message, "the enrollment code is not valid");

  const Admission other_name = admit(profile, plan_for("CN=b.example", {"b.example"}), PeerIdentity{}, code);
  ASSERT_EQ(other_name.decision, Decision::refuse);
  EXPECT_EQ(other_name.error->message, "this enrollment code does not allow the name dns:b.example");

  const Admission no_codes = admit(profile_accepting({"agent_approval"}), plan, PeerIdentity{}, code);
  ASSERT_EQ(no_codes.decision, Decision::refuse);
  EXPECT_EQ(no_codes.error->message, "profile p does not accept enrollment codes");
}

TEST_F(ThisCasChain, TheHolderOfAValidCertificateRenewsItsOwnNamesOnly) {
  const Profile profile = profile_accepting({"client_certificate"});
  const PeerIdentity peer{holder("a1", "CN=a.example", {"a.example"}), "192.0.2.1"};
  const Admission renewed = admit(profile, plan_for("CN=a.example", {"a.example"}), peer);
  EXPECT_EQ(renewed.decision, Decision::issue);
  EXPECT_EQ(renewed.by, "client_certificate");
  EXPECT_EQ(renewed.who, "certificate 0xa1");

  const Admission more = admit(profile, plan_for("CN=a.example", {"a.example", "b.example"}), peer);
  ASSERT_EQ(more.decision, Decision::refuse);
  EXPECT_EQ(more.error->message, "the client certificate does not hold the name dns:b.example");

  const PeerIdentity revoked{holder("a2", "CN=a.example", {"a.example"}, "REVOKED"), ""};
  const Admission refused = admit(profile, plan_for("CN=a.example", {"a.example"}), revoked);
  ASSERT_EQ(refused.decision, Decision::refuse);
  EXPECT_EQ(refused.error->message, "the client certificate 0xa2 is REVOKED");
}

TEST_F(ThisCasChain, AFailedRenewalGoesToTheAgentsWhereTheProfileHasThem) {
  const Profile profile = profile_accepting({"agent_approval", "client_certificate"});
  const PeerIdentity peer{holder("b1", "CN=a.example", {"a.example"}), ""};
  const Admission queued = admit(profile, plan_for("CN=other.example", {"other.example"}), peer);
  EXPECT_EQ(queued.decision, Decision::queue);
  EXPECT_EQ(queued.by, "agent_approval");
  EXPECT_EQ(queued.who, "anonymous");
  // Re-enrollment never falls back to the agents.
  const Admission reenroll = admit(profile, plan_for("CN=other.example", {"other.example"}), peer, "", true);
  ASSERT_EQ(reenroll.decision, Decision::refuse);
  EXPECT_EQ(reenroll.error->code, ErrorCode::forbidden);
}

TEST_F(ThisCasChain, ReEnrollmentWithoutACertificateIsRefusedWhateverTheProfile) {
  const Admission refused =
      admit(profile_accepting({"none"}), plan_for("CN=a.example", {"a.example"}), PeerIdentity{}, "", true);
  ASSERT_EQ(refused.decision, Decision::refuse);
  EXPECT_EQ(refused.error->code, ErrorCode::unauthorized);
  EXPECT_EQ(refused.error->message, "re-enrollment needs the current certificate as TLS client certificate");
}

TEST_F(ThisCasChain, AnOpenProfileIssuesToAnyoneAndOnlyAnOpenOne) {
  const IssuancePlan plan = plan_for("CN=a.example", {"a.example"});
  const Admission open = admit(profile_accepting({"none"}), plan, PeerIdentity{});
  EXPECT_EQ(open.decision, Decision::issue);
  EXPECT_EQ(open.by, "none");
  EXPECT_EQ(open.who, "anonymous");
  const Admission closed = admit(profile_accepting({"client_certificate"}), plan, PeerIdentity{});
  ASSERT_EQ(closed.decision, Decision::refuse);
  EXPECT_EQ(closed.error->message, "profile p needs one of: client_certificate");
}

TEST_F(ThisCasChain, ACertificateOfAnotherCaIsNoCredential) {
  auto key = crypto::generate_key(KeyType::ec_p256);
  auto name = crypto::parse_name("CN=a.example");
  ASSERT_TRUE(key && name);
  crypto::CertificateSpec spec;
  spec.serial_hex = "a1";  // the serial of nothing here, from a stranger
  spec.subject = name->get();
  spec.public_key = key->get();
  spec.not_before = system_clock::now() - hours(1);
  spec.not_after = system_clock::now() + hours(24);
  spec.dns_names = {"a.example"};
  auto signing_key = crypto::SigningKey::from_key(ossl::up_ref(key->get()));
  ASSERT_TRUE(signing_key);
  auto stranger = crypto::Issuer::self_signed(spec, std::move(*signing_key));
  ASSERT_TRUE(stranger);
  const PeerIdentity peer{crypto::PeerCertificate::of(stranger->certificate()), ""};
  const Admission refused =
      admit(profile_accepting({"client_certificate"}), plan_for("CN=a.example", {"a.example"}), peer);
  ASSERT_EQ(refused.decision, Decision::refuse);
  EXPECT_EQ(refused.error->message, "the client certificate was not issued by this CA");
}

}  // namespace
}  // namespace ca::authority
