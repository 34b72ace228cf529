// apply_profile over CSRs built in-process: names, subjects, overrides.
#include "authority/issuance/csr_policy.hpp"

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "core/config.hpp"
#include "crypto/keys.hpp"
#include "crypto/pem.hpp"

namespace ca::authority {
namespace {

using namespace std::chrono_literals;
using Names = std::vector<std::string>;

struct Rdn {
  std::string attr;
  std::string value;           // UTF-8; may hold NUL and control bytes
  bool joins_previous = false; // a multi-valued RDN with the attribute before it
};

struct CsrSpec {
  std::vector<Rdn> subject;  // in DER order (most general first)
  std::string san;           // OpenSSL config form: "DNS:a.example.com,IP:10.0.0.1,email:a@example.com"
};

EVP_PKEY* test_key() {
  static ossl::UniquePtr<EVP_PKEY> key = [] {
    auto k = crypto::generate_key(KeyType::ec_p256);
    return k ? std::move(*k) : nullptr;
  }();
  return key.get();
}

// Signs an X509_REQ with an EC P-256 key and parses it the way the server does.
Result<crypto::ParsedCsr> make_csr(const CsrSpec& spec) {
  EVP_PKEY* key = test_key();
  if (!key) return fail(Error::crypto("no test key"));
  ossl::UniquePtr<X509_REQ> req(X509_REQ_new());
  ossl::UniquePtr<X509_NAME> name(X509_NAME_new());
  if (!req || !name) return fail(Error::crypto("allocation"));
  for (const auto& rdn : spec.subject)
    if (X509_NAME_add_entry_by_txt(name.get(), rdn.attr.c_str(), MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(rdn.value.data()),
                                   static_cast<int>(rdn.value.size()), -1, rdn.joins_previous ? -1 : 0) != 1)
      return fail(Error::crypto("subject attribute " + rdn.attr + ": " + ossl::drain_errors()));
  if (X509_REQ_set_subject_name(req.get(), name.get()) != 1 || X509_REQ_set_pubkey(req.get(), key) != 1)
    return fail(Error::crypto("request: " + ossl::drain_errors()));
  if (!spec.san.empty()) {
    ossl::UniquePtr<STACK_OF(X509_EXTENSION)> exts(sk_X509_EXTENSION_new_null());
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, spec.san.c_str());
    if (!exts || !ext) return fail(Error::crypto("subjectAltName '" + spec.san + "': " + ossl::drain_errors()));
    sk_X509_EXTENSION_push(exts.get(), ext);
    if (X509_REQ_add_extensions(req.get(), exts.get()) != 1) return fail(Error::crypto(ossl::drain_errors()));
  }
  if (X509_REQ_sign(req.get(), key, EVP_sha256()) <= 0) return fail(Error::crypto("sign: " + ossl::drain_errors()));
  ossl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509_REQ(bio.get(), req.get()) != 1) return fail(Error::crypto("PEM"));
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return crypto::parse_csr_pem(std::string_view(data, static_cast<std::size_t>(len)));
}

// A server profile like caServerCert, without restrictions on names.
Profile server_profile() {
  Profile p;
  p.id = "web";
  p.validity_days = 398;
  p.subject.allowed_attributes = {"C", "ST", "L", "O", "OU", "CN"};
  p.san = {};
  return p;
}

Profile user_profile() {
  Profile p = server_profile();
  p.id = "person";
  p.subject.allowed_attributes = {"C", "O", "OU", "UID", "emailAddress", "CN"};
  p.san.dns = false;
  p.san.ip = false;
  p.san.email = true;
  p.san.copy_cn_to_dns = false;
  return p;
}

const auto kNow = std::chrono::system_clock::time_point(std::chrono::sys_days(std::chrono::year(2026) / 12 / 1));

CsrSpec host(std::string cn, std::string san = "") { return {{{"O", "Example"}, {"CN", std::move(cn)}}, std::move(san)}; }

struct RefusalCase {
  const char* name;
  std::function<void(Profile&)> edit;  // from server_profile()
  CsrSpec csr;
  IssuanceOverrides overrides;
  const char* message;  // fragment of the expected message
};

void PrintTo(const RefusalCase& c, std::ostream* os) { *os << c.name; }

class Refusals : public ::testing::TestWithParam<RefusalCase> {};

TEST_P(Refusals, AreAPolicyErrorNamingTheProfileAndTheValue) {
  const RefusalCase& c = GetParam();
  Profile p = server_profile();
  if (c.edit) c.edit(p);
  auto csr = make_csr(c.csr);
  ASSERT_TRUE(csr) << csr.error().message;
  auto plan = apply_profile(p, *csr, kNow, c.overrides);
  ASSERT_FALSE(plan) << "issued " << plan->subject_text;
  EXPECT_EQ(plan.error().code, ErrorCode::policy_violation) << plan.error().message;
  EXPECT_NE(plan.error().message.find(c.message), std::string::npos) << plan.error().message;
  EXPECT_NE(plan.error().message.find("profile " + p.id), std::string::npos) << plan.error().message;
}

auto wildcards = [](Profile& p) { p.san.wildcards = true; };
auto below_example_com = [](Profile& p) { p.san.dns_names = {".example.com"}; };
auto ten_slash_8 = [](Profile& p) { p.san.ip_ranges = {"10.0.0.0/8"}; };
auto mail_at_example_com = [](Profile& p) {
  p = user_profile();
  p.san.email_domains = {"example.com"};
};

IssuanceOverrides validity(int days) {
  IssuanceOverrides o;
  o.validity_days = days;
  return o;
}

INSTANTIATE_TEST_SUITE_P(
    Names, Refusals,
    ::testing::Values(
        RefusalCase{"wildcard_over_com", wildcards, host("www.example.com", "DNS:*.com"), {},
                    "the wildcard '*.com' covers every name under the public suffix 'com'"},
        // The subjects of instance certificates: a directory replicates by its certificate's subject.
        RefusalCase{"directory_instance_form", nullptr, host("Directory clone1"), {},
                    "the subject CN 'Directory clone1' has the form of an instance certificate's"},
        RefusalCase{"subsystem_instance_form_any_case", nullptr, host("sUBSYSTEM master"), {},
                    "has the form of an instance certificate's"},
        RefusalCase{"wildcard_over_co_uk", wildcards, host("www.example.co.uk", "DNS:*.co.uk"), {},
                    "public suffix 'co.uk'"},
        RefusalCase{"wildcard_over_unknown_tld", wildcards, host("a.example.com", "DNS:*.internal"), {},
                    "public suffix 'internal'"},
        RefusalCase{"wildcard_over_private_suffix", wildcards, host("a.example.com", "DNS:*.github.io"), {},
                    "public suffix 'github.io'"},
        RefusalCase{"wildcard_when_not_allowed", nullptr, host("www.example.com", "DNS:*.example.com"), {},
                    "profile web does not allow wildcard DNS names ('*.example.com')"},
        RefusalCase{"wildcard_in_cn_when_not_allowed", nullptr, host("*.example.com"), {},
                    "does not allow wildcard DNS names ('*.example.com')"},
        RefusalCase{"wildcard_cn_over_com", wildcards, host("*.com"), {}, "public suffix 'com'"},
        RefusalCase{"partial_label_wildcard", wildcards, host("www.example.com", "DNS:a*.example.com"), {},
                    "'a*.example.com' has a '*' that is not the whole leftmost label"},
        RefusalCase{"inner_wildcard", wildcards, host("www.example.com", "DNS:x.*.com"), {},
                    "'x.*.com' has a '*' that is not the whole leftmost label"},
        RefusalCase{"bare_star", wildcards, host("www.example.com", "DNS:*"), {}, "'*' has a '*'"},
        RefusalCase{"name_outside_patterns", below_example_com, host("www.example.com", "DNS:www.example.org"), {},
                    "profile web does not allow the DNS name 'www.example.org' (allowed: .example.com)"},
        RefusalCase{"suffix_pattern_excludes_the_apex", below_example_com, host("www.example.com", "DNS:example.com"),
                    {}, "does not allow the DNS name 'example.com'"},
        RefusalCase{"lookalike_suffix", below_example_com, host("www.example.com", "DNS:wwwexample.com"), {},
                    "does not allow the DNS name 'wwwexample.com'"},
        RefusalCase{"exact_pattern_excludes_wildcard",
                    [](Profile& p) {
                      p.san.wildcards = true;
                      p.san.dns_names = {"www.example.com"};
                    },
                    host("www.example.com", "DNS:*.example.com"), {}, "does not allow the DNS name '*.example.com'"},
        RefusalCase{"cn_outside_patterns", below_example_com, host("www.example.org"), {},
                    "does not allow the DNS name 'www.example.org'"},
        RefusalCase{"bare_tld", nullptr, host("www.example.com", "DNS:com"), {},
                    "'com' is a public suffix or top-level domain, not a host name"},
        RefusalCase{"bare_public_suffix", nullptr, host("www.example.com", "DNS:co.uk"), {},
                    "'co.uk' is a public suffix or top-level domain"},
        RefusalCase{"cn_is_a_tld", nullptr, host("com"), {}, "'com' is a public suffix"},
        RefusalCase{"ip_as_dns_name", nullptr, host("www.example.com", "DNS:10.0.0.1"), {},
                    "the DNS name '10.0.0.1' is an IP address"},
        RefusalCase{"bad_dns_syntax", nullptr, host("www.example.com", "DNS:-bad.example.com"), {},
                    "'-bad.example.com' is not a valid DNS name"},
        RefusalCase{"trailing_hyphen", nullptr, host("www.example.com", "DNS:www.example-"), {},
                    "'www.example-' is not a valid DNS name"},
        RefusalCase{"dns_when_not_allowed", [](Profile& p) { p.san.dns = false; },
                    host("Web Server", "DNS:www.example.com"), {},
                    "profile web does not allow DNS names in subjectAltName ('www.example.com')"},
        RefusalCase{"ip_outside_ranges", ten_slash_8, host("www.example.com", "IP:192.0.2.1"), {},
                    "profile web does not allow the IP address '192.0.2.1' (allowed ranges: 10.0.0.0/8)"},
        RefusalCase{"ipv6_outside_ranges", [](Profile& p) { p.san.ip_ranges = {"fd00::/8"}; },
                    host("www.example.com", "IP:2001:db8::1"), {}, "does not allow the IP address '2001:db8::1'"},
        RefusalCase{"ipv4_mapped_is_not_ipv4", ten_slash_8, host("www.example.com", "IP:::ffff:10.0.0.1"), {},
                    "does not allow the IP address '::ffff:10.0.0.1'"},
        RefusalCase{"ip_cn_outside_ranges", ten_slash_8, host("192.0.2.1"), {},
                    "does not allow the IP address '192.0.2.1'"},
        RefusalCase{"ip_cn_when_ip_not_allowed", [](Profile& p) { p.san.ip = false; }, host("10.0.0.1"), {},
                    "profile web does not allow IP addresses; the subject CN '10.0.0.1' is one"},
        RefusalCase{"email_outside_domains", mail_at_example_com,
                    {{{"CN", "Alice"}}, "email:alice@example.org"}, {},
                    "profile person does not allow the e-mail address 'alice@example.org' (allowed domains: example.com)"},
        RefusalCase{"exact_mail_domain_excludes_subdomains", mail_at_example_com,
                    {{{"CN", "Alice"}}, "email:alice@mail.example.com"}, {},
                    "does not allow the e-mail address 'alice@mail.example.com'"},
        RefusalCase{"subject_email_outside_domains", mail_at_example_com,
                    {{{"emailAddress", "alice@example.org"}, {"CN", "Alice"}}, ""}, {},
                    "does not allow the e-mail address 'alice@example.org'"},
        RefusalCase{"too_many_names", [](Profile& p) { p.san.max = 2; },
                    host("a.example.com", "DNS:b.example.com,DNS:c.example.com"), {},
                    "profile web allows at most 2 subjectAltNames; the request asks for 3"}),
    [](const auto& info) { return std::string(info.param.name); });

INSTANTIATE_TEST_SUITE_P(
    Subjects, Refusals,
    ::testing::Values(
        RefusalCase{"two_cns", nullptr, {{{"CN", "a.example.com"}, {"CN", "b.example.com"}}, ""}, {},
                    "profile web accepts one CN; the subject has a second one, 'b.example.com'"},
        RefusalCase{"cn_with_control_character", nullptr, host("www\x01.example.com"), {},
                    "the subject attribute CN 'www\\x01.example.com' contains a control character"},
        RefusalCase{"cn_with_nul", nullptr, host(std::string("www.example.com\0.evil.org", 25)), {},
                    "'www.example.com\\x00.evil.org' contains a control character"},
        RefusalCase{"o_with_del", nullptr, {{{"O", "Ex\x7f" "ample"}, {"CN", "www.example.com"}}, ""}, {},
                    "the subject attribute O 'Ex\\x7fample' contains a control character"},
        RefusalCase{"ou_with_c1_control", nullptr, {{{"OU", "a\xc2\x85" "b"}, {"CN", "www.example.com"}}, ""}, {},
                    "the subject attribute OU 'a\\u0085b' contains a control character"},
        RefusalCase{"attribute_not_listed", [](Profile& p) { p.subject.allowed_attributes = {"C", "O", "CN"}; },
                    {{{"L", "Paris"}, {"CN", "www.example.com"}}, ""}, {},
                    "profile web does not allow the subject attribute L (allowed: C, O, CN)"},
        RefusalCase{"unknown_attribute", nullptr, {{{"title", "Boss"}, {"CN", "www.example.com"}}, ""}, {},
                    "does not allow the subject attribute title"},
        RefusalCase{"multi_valued_rdn", nullptr, {{{"O", "Example"}, {"CN", "www.example.com", true}}, ""}, {},
                    "share one RDN; multi-valued RDNs are not accepted"},
        RefusalCase{"missing_cn", nullptr, {{{"O", "Example"}}, "DNS:www.example.com"}, {},
                    "profile web requires a CN in the subject"},
        RefusalCase{"disabled", [](Profile& p) { p.enabled = false; }, host("www.example.com"), {},
                    "profile web is disabled"}),
    [](const auto& info) { return std::string(info.param.name); });

IssuanceOverrides dns_override(Names names) {
  IssuanceOverrides o;
  o.dns_names = std::move(names);
  return o;
}

INSTANTIATE_TEST_SUITE_P(
    Overrides, Refusals,
    ::testing::Values(
        RefusalCase{"validity_above_the_profile", nullptr, host("www.example.com"), validity(399),
                    "profile web allows a validity of 1 to 398 days; 399 days were asked for"},
        RefusalCase{"validity_zero", nullptr, host("www.example.com"), validity(0), "1 to 398 days; 0 days"},
        RefusalCase{"dns_override_outside_patterns", below_example_com, host("www.example.com"),
                    dns_override({"www.example.org"}), "does not allow the DNS name 'www.example.org'"},
        RefusalCase{"dns_override_wildcard_over_com", wildcards, host("www.example.com"), dns_override({"*.com"}),
                    "public suffix 'com'"},
        RefusalCase{"ip_override_not_an_address", nullptr, host("www.example.com"),
                    [] {
                      IssuanceOverrides o;
                      o.ip_addresses = Names{"10.0.0.300"};
                      return o;
                    }(),
                    "'10.0.0.300' is not a valid IP address"},
        RefusalCase{"email_override_with_a_space", mail_at_example_com, {{{"CN", "Alice"}}, ""},
                    [] {
                      IssuanceOverrides o;
                      o.emails = Names{"al ice@example.com"};
                      return o;
                    }(),
                    "'al ice@example.com' is not a valid e-mail address"}),
    [](const auto& info) { return std::string(info.param.name); });

struct AllowedCase {
  const char* name;
  std::function<void(Profile&)> edit;
  CsrSpec csr;
  Names dns, ips, emails;  // the plan's subjectAltNames
};

void PrintTo(const AllowedCase& c, std::ostream* os) { *os << c.name; }

class Allowed : public ::testing::TestWithParam<AllowedCase> {};

TEST_P(Allowed, IssueTheExpectedNames) {
  const AllowedCase& c = GetParam();
  Profile p = server_profile();
  if (c.edit) c.edit(p);
  auto csr = make_csr(c.csr);
  ASSERT_TRUE(csr) << csr.error().message;
  auto plan = apply_profile(p, *csr, kNow);
  ASSERT_TRUE(plan) << plan.error().message;
  EXPECT_EQ(plan->dns_names, c.dns);
  EXPECT_EQ(plan->ip_addresses, c.ips);
  EXPECT_EQ(plan->emails, c.emails);
}

INSTANTIATE_TEST_SUITE_P(
    Names, Allowed,
    ::testing::Values(
        AllowedCase{"any_name_without_patterns", nullptr, host("www.example.com", "DNS:alt.example.org,IP:10.0.0.1"),
                    {"www.example.com", "alt.example.org"}, {"10.0.0.1"}, {}},
        AllowedCase{"exact_pattern", [](Profile& p) { p.san.dns_names = {"www.example.com"}; },
                    host("www.example.com", "DNS:www.example.com"), {"www.example.com"}, {}, {}},
        AllowedCase{"patterns_ignore_case", [](Profile& p) { p.san.dns_names = {".Example.COM"}; },
                    host("WWW.example.com", "DNS:www.EXAMPLE.com,DNS:a.b.example.com"),
                    {"www.EXAMPLE.com", "a.b.example.com"}, {}, {}},
        AllowedCase{"wildcard_below_pattern",
                    [](Profile& p) {
                      p.san.wildcards = true;
                      p.san.dns_names = {".example.com"};
                    },
                    host("www.example.com", "DNS:*.example.com"), {"www.example.com", "*.example.com"}, {}, {}},
        AllowedCase{"wildcard_below_a_registered_domain", wildcards, host("*.example.co.uk"), {"*.example.co.uk"},
                    {}, {}},
        AllowedCase{"wildcard_below_a_private_name", wildcards, host("*.corp.example.internal"),
                    {"*.corp.example.internal"}, {}, {}},
        AllowedCase{"ranges_v4_and_v6",
                    [](Profile& p) { p.san.ip_ranges = {"10.0.0.0/8", "fd00::/8", "192.0.2.7/32"}; },
                    host("www.example.com", "IP:10.255.0.1,IP:fd12::1,IP:192.0.2.7"), {"www.example.com"},
                    {"10.255.0.1", "fd12::1", "192.0.2.7"}, {}},
        AllowedCase{"odd_prefix_length", [](Profile& p) { p.san.ip_ranges = {"192.0.2.64/27"}; },
                    host("www.example.com", "IP:192.0.2.95"), {"www.example.com"}, {"192.0.2.95"}, {}},
        AllowedCase{"any_address", [](Profile& p) { p.san.ip_ranges = {"0.0.0.0/0", "::/0"}; },
                    host("www.example.com", "IP:203.0.113.9,IP:2001:db8::9"), {"www.example.com"},
                    {"203.0.113.9", "2001:db8::9"}, {}},
        AllowedCase{"mail_below_a_domain",
                    [](Profile& p) {
                      p = user_profile();
                      p.san.email_domains = {"example.com", ".example.org"};
                    },
                    {{{"emailAddress", "alice@Example.com"}, {"CN", "Alice Example"}},
                     "email:alice@example.com,email:alice@mail.example.org"},
                    {}, {}, {"alice@example.com", "alice@mail.example.org"}},
        AllowedCase{"person_cn_is_not_a_host_name", [](Profile& p) { p = user_profile(); }, {{{"CN", "Mallory"}}, ""}, {}, {}, {}},
        AllowedCase{"dotted_person_cn_without_dns", [](Profile& p) { p = user_profile(); }, {{{"CN", "alice.smith"}}, ""}, {}, {}, {}},
        AllowedCase{"server_cn_that_is_no_host", nullptr, host("Web Server", "DNS:www.example.com"),
                    {"www.example.com"}, {}, {}}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(CommonName, AnIpAddressBecomesAnIpSanNeverADnsName) {
  struct Case {
    const char* cn;
    const char* ip;
  };
  for (const Case& c : {Case{"10.0.0.1", "10.0.0.1"}, Case{"2001:DB8::1", "2001:db8::1"}}) {
    SCOPED_TRACE(c.cn);
    auto csr = make_csr(host(c.cn));
    ASSERT_TRUE(csr) << csr.error().message;
    auto plan = apply_profile(server_profile(), *csr, kNow);
    ASSERT_TRUE(plan) << plan.error().message;
    EXPECT_TRUE(plan->dns_names.empty()) << plan->dns_names.front();
    EXPECT_EQ(plan->ip_addresses, Names{c.ip});
  }
}

TEST(CommonName, IsNotCopiedTwice) {
  auto csr = make_csr(host("WWW.Example.com", "DNS:www.example.com,IP:10.0.0.1"));
  ASSERT_TRUE(csr) << csr.error().message;
  auto plan = apply_profile(server_profile(), *csr, kNow);
  ASSERT_TRUE(plan) << plan.error().message;
  EXPECT_EQ(plan->dns_names, Names{"www.example.com"});

  auto ip = make_csr(host("10.0.0.1", "IP:10.0.0.1"));
  ASSERT_TRUE(ip) << ip.error().message;
  auto ip_plan = apply_profile(server_profile(), *ip, kNow);
  ASSERT_TRUE(ip_plan) << ip_plan.error().message;
  EXPECT_EQ(ip_plan->ip_addresses, Names{"10.0.0.1"});
}

std::vector<std::string> der_order(const X509_NAME* name) {
  std::vector<std::string> out;
  for (int i = 0; i < X509_NAME_entry_count(name); ++i) {
    const X509_NAME_ENTRY* e = X509_NAME_get_entry(name, i);
    const ASN1_STRING* v = X509_NAME_ENTRY_get_data(e);
    out.push_back(fmt::format("{}={}", OBJ_nid2sn(OBJ_obj2nid(X509_NAME_ENTRY_get_object(e))),
                              std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(v)),
                                               static_cast<std::size_t>(ASN1_STRING_length(v)))));
  }
  return out;
}

TEST(Subject, IsRebuiltInTheProfilesOrder) {
  auto csr = make_csr({{{"CN", "x.example.com"}, {"O", "y"}, {"C", "US"}}, ""});
  ASSERT_TRUE(csr) << csr.error().message;
  auto plan = apply_profile(server_profile(), *csr, kNow);
  ASSERT_TRUE(plan) << plan.error().message;
  EXPECT_EQ(der_order(plan->subject.get()), (Names{"C=US", "O=y", "CN=x.example.com"}));
  EXPECT_EQ(plan->subject_text, "CN=x.example.com,O=y,C=US");
  EXPECT_EQ(plan->subject_text, crypto::name_to_string(plan->subject.get()));
  // One attribute per RDN in the result too.
  for (int i = 1; i < X509_NAME_entry_count(plan->subject.get()); ++i)
    EXPECT_NE(X509_NAME_ENTRY_set(X509_NAME_get_entry(plan->subject.get(), i)),
              X509_NAME_ENTRY_set(X509_NAME_get_entry(plan->subject.get(), i - 1)));
}

TEST(Subject, RepeatedAttributesKeepTheirRelativeOrder) {
  auto csr = make_csr({{{"CN", "x.example.com"}, {"OU", "second"}, {"O", "Example"}, {"OU", "first"}, {"C", "FR"}}, ""});
  ASSERT_TRUE(csr) << csr.error().message;
  Profile p = server_profile();
  p.subject.allowed_attributes = {"CN", "OU", "O", "C"};  // an unusual order is still the profile's order
  auto plan = apply_profile(p, *csr, kNow);
  ASSERT_TRUE(plan) << plan.error().message;
  EXPECT_EQ(der_order(plan->subject.get()), (Names{"CN=x.example.com", "OU=second", "OU=first", "O=Example", "C=FR"}));
}

TEST(Overrides, ValidityBelowTheProfileShortensTheCertificate) {
  auto csr = make_csr(host("www.example.com"));
  ASSERT_TRUE(csr) << csr.error().message;
  Profile p = server_profile();
  auto full = apply_profile(p, *csr, kNow);
  ASSERT_TRUE(full) << full.error().message;
  EXPECT_EQ(full->not_after, kNow + 24h * 398);
  for (int days : {1, 30, 398}) {
    SCOPED_TRACE(days);
    auto plan = apply_profile(p, *csr, kNow, validity(days));
    ASSERT_TRUE(plan) << plan.error().message;
    EXPECT_EQ(plan->not_after, kNow + 24h * days);
    EXPECT_EQ(plan->not_before, kNow - 5min);
  }
}

TEST(Overrides, SubjectAltNamesReplaceTheCsrsAndAreStillChecked) {
  auto csr = make_csr(host("www.example.com", "DNS:old.example.com,IP:10.0.0.1"));
  ASSERT_TRUE(csr) << csr.error().message;
  Profile p = server_profile();
  p.san.dns_names = {".example.com"};
  p.san.ip_ranges = {"10.0.0.0/8", "fd00::/8"};
  IssuanceOverrides o;
  o.dns_names = Names{"new.example.com"};
  o.ip_addresses = Names{"10.0.0.2", "FD00::2"};
  auto plan = apply_profile(p, *csr, kNow, o);
  ASSERT_TRUE(plan) << plan.error().message;
  EXPECT_EQ(plan->dns_names, (Names{"www.example.com", "new.example.com"}));  // the CN stays first
  EXPECT_EQ(plan->ip_addresses, (Names{"10.0.0.2", "fd00::2"}));

  // An empty list removes the CSR's names of that kind.
  IssuanceOverrides none;
  none.ip_addresses = Names{};
  auto fewer = apply_profile(p, *csr, kNow, none);
  ASSERT_TRUE(fewer) << fewer.error().message;
  EXPECT_EQ(fewer->dns_names, (Names{"www.example.com", "old.example.com"}));
  EXPECT_TRUE(fewer->ip_addresses.empty());

  o.ip_addresses = Names{"192.0.2.1"};
  auto refused = apply_profile(p, *csr, kNow, o);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("does not allow the IP address '192.0.2.1'"), std::string::npos)
      << refused.error().message;
}

TEST(DefaultProfiles, IssueTypicalRequests) {
  auto profiles = parse_profiles_text(default_profiles_yaml(), "defaults");
  ASSERT_TRUE(profiles) << profiles.error().message;
  auto find = [&](std::string_view id) -> const Profile& {
    for (const auto& p : *profiles)
      if (p.id == id) return p;
    return profiles->front();
  };
  auto server_csr = make_csr({{{"O", "Example"}, {"CN", "web.example.com"}},
                              "DNS:web.example.com,DNS:alt.example.com,IP:10.0.0.1"});
  ASSERT_TRUE(server_csr) << server_csr.error().message;
  auto server = apply_profile(find("caServerCert"), *server_csr, kNow);
  ASSERT_TRUE(server) << server.error().message;
  EXPECT_EQ(server->subject_text, "CN=web.example.com,O=Example");

  auto wildcard = make_csr(host("*.example.com"));
  ASSERT_TRUE(wildcard) << wildcard.error().message;
  EXPECT_FALSE(apply_profile(find("caServerCert"), *wildcard, kNow));

  auto user_csr = make_csr({{{"CN", "Alice Example"}, {"emailAddress", "alice@example.com"}}, "email:alice@example.com"});
  ASSERT_TRUE(user_csr) << user_csr.error().message;
  auto user = apply_profile(find("caUserCert"), *user_csr, kNow);
  ASSERT_TRUE(user) << user.error().message;
  EXPECT_EQ(der_order(user->subject.get()), (Names{"emailAddress=alice@example.com", "CN=Alice Example"}));
}

TEST(PublicSuffixes, IncludeTldsKnownOrNot) {
  for (const char* d : {"com", "COM", "co.uk", "uk", "internal", "localhost", "github.io"}) {
    SCOPED_TRACE(d);
    EXPECT_TRUE(is_public_suffix(d));
  }
  for (const char* d : {"example.com", "example.co.uk", "example.internal", "www.example.com"}) {
    SCOPED_TRACE(d);
    EXPECT_FALSE(is_public_suffix(d));
  }
}

TEST(IpRanges, MatchWithinTheirFamilyAndPrefix) {
  struct Case {
    const char* range;
    const char* address;
    bool inside;
  };
  const Case cases[] = {
      {"10.0.0.0/8", "10.255.255.255", true},  {"10.0.0.0/8", "11.0.0.0", false},
      {"192.0.2.64/27", "192.0.2.64", true},   {"192.0.2.64/27", "192.0.2.96", false},
      {"192.0.2.7/32", "192.0.2.7", true},     {"192.0.2.7/32", "192.0.2.8", false},
      {"0.0.0.0/0", "203.0.113.1", true},      {"0.0.0.0/0", "::1", false},
      {"fd00::/8", "fdff::1", true},           {"fd00::/8", "fe00::1", false},
      {"10.0.0.0/8", "::ffff:10.0.0.1", false}, {"::ffff:0:0/96", "10.0.0.1", false},
      {"2001:db8::/33", "2001:db8:7fff::1", true}, {"2001:db8::/33", "2001:db8:8000::1", false},
      {"10.0.0.0/8", "not an address", false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.range) + " " + c.address);
    auto r = parse_ip_range(c.range);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->contains(c.address), c.inside);
  }
}

}  // namespace
}  // namespace ca::authority
