// Profile loading: who may enroll (auth, role), the SAN patterns, and the default profiles.
#include "authority/issuance/profile.hpp"

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace ca::authority {
namespace {

// The authenticator names profiles list (authority/issuance/enrollment_authenticators.hpp).
namespace A {
const std::string agent_approval = "agent_approval";
const std::string enrollment_code = "enrollment_code";
const std::string client_certificate = "client_certificate";
const std::string none = "none";
}  // namespace A

// A minimal profile "p" with `body` (YAML, two-space indented keys) under it.
Result<Profile> parse(const std::string& body) { return parse_profile_text("p", body, "profiles.yaml"); }

struct AuthCase {
  const char* name;
  const char* yaml;
  std::vector<std::string> auth;    // expected when error is empty
  const char* role;
  const char* error;      // fragment of the expected message, "" for success
};

TEST(ProfileAuth, ParsesOneNameOrAListAndChecksTheRole) {
  const AuthCase cases[] = {
      {"default", "name: x\n", {A::agent_approval}, "", ""},
      {"one name", "auth: client_certificate\n", {A::client_certificate}, "", ""},
      {"a list", "auth: [agent_approval, enrollment_code]\n", {A::agent_approval, A::enrollment_code}, "", ""},
      {"all four", "auth: [none, client_certificate, enrollment_code, agent_approval]\n",
       {A::none, A::client_certificate, A::enrollment_code, A::agent_approval}, "", ""},
      {"none explicitly", "auth: none\n", {A::none}, "", ""},
      {"null keeps the default", "auth:\n", {A::agent_approval}, "", ""},
      {"unknown name", "auth: password\n", {}, "",
       "profiles.yaml: auth: unknown value 'password' (allowed: agent_approval, enrollment_code, "
       "client_certificate, none)"},
      {"unknown name in a list", "auth: [agent_approval, kerberos]\n", {}, "", "auth: unknown value 'kerberos'"},
      {"empty list", "auth: []\n", {}, "", "auth: lists no authenticator"},
      {"listed twice", "auth: [none, none]\n", {}, "", "auth: 'none' is listed twice"},
      {"a mapping", "auth: {agent_approval: true}\n", {}, "", "auth: expected an authenticator name or a list of them"},
      {"agent role", "role: agent\n", {A::agent_approval}, "agent", ""},
      {"agent role refuses client certificates", "role: agent\nauth: [agent_approval, client_certificate]\n", {}, "",
       "auth: a profile with role 'agent' cannot accept 'client_certificate'"},
      {"administrator role", "role: administrator\n", {A::agent_approval}, "administrator", ""},
      {"auditor role", "role: auditor\n", {A::agent_approval}, "auditor", ""},
      {"empty role", "role: \"\"\n", {A::agent_approval}, "", ""},
      {"agent role refuses none", "role: agent\nauth: [agent_approval, none]\n", {}, "",
       "auth: a profile with role 'agent' cannot accept 'none'"},
      {"agent role refuses enrollment codes", "role: agent\nauth: enrollment_code\n", {}, "",
       "auth: a profile with role 'agent' cannot accept 'enrollment_code'"},
      {"unknown role", "role: admin\n", {}, "", "role: unknown value 'admin'"},
      {"unknown key", "authentication: none\n", {}, "", "authentication: unknown key"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto p = parse(c.yaml);
    if (*c.error) {
      ASSERT_FALSE(p);
      EXPECT_EQ(p.error().code, ErrorCode::config);
      EXPECT_NE(p.error().message.find(c.error), std::string::npos) << p.error().message;
      continue;
    }
    ASSERT_TRUE(p) << p.error().message;
    EXPECT_EQ(p->auth, c.auth);
    EXPECT_EQ(p->role, c.role);
    for (const std::string& a : {A::agent_approval, A::enrollment_code, A::client_certificate, A::none})
      EXPECT_EQ(p->accepts(a), std::find(c.auth.begin(), c.auth.end(), a) != c.auth.end()) << a;
  }
}

TEST(ProfileAuth, TheNamesAreTheRegisteredAuthenticators) {
  const auto names = enrollment_authenticator_names();
  EXPECT_EQ(std::vector<std::string>(names.begin(), names.end()),
            (std::vector<std::string>{A::agent_approval, A::enrollment_code, A::client_certificate, A::none}));
  EXPECT_FALSE(parse("auth: None\n")) << "names are case-sensitive";
  auto empty = parse("auth: []\n");
  ASSERT_FALSE(empty);
  EXPECT_NE(empty.error().message.find("(allowed: agent_approval, enrollment_code, client_certificate, none)"),
            std::string::npos)
      << empty.error().message;
}

TEST(ProfileAuth, AProfileBuiltInCodeWaitsForAnAgent) {
  Profile p;
  EXPECT_EQ(p.auth, std::vector<std::string>{A::agent_approval});
  EXPECT_TRUE(p.accepts(A::agent_approval));
  EXPECT_FALSE(p.accepts(A::none));
  EXPECT_EQ(p.role, "");
}

struct SanCase {
  const char* name;
  const char* san;    // the flow mapping under san:
  const char* error;  // "" for success
};

TEST(ProfileSan, PatternsRangesAndDomainsAreValidatedAtLoad) {
  const SanCase cases[] = {
      {"defaults", "{}", ""},
      {"exact and suffix names", "{dns_names: [host.example.com, .example.org, Mixed.Case.Example]}", ""},
      {"wildcards on", "{wildcards: true}", ""},
      {"wildcards not a bool", "{wildcards: sometimes}", "san.wildcards: expected true or false, got 'sometimes'"},
      {"wildcard pattern", "{dns_names: ['*.example.com']}",
       "san.dns_names: '*.example.com' has a '*': write '.example.com' for the names below example.com"},
      {"star inside", "{dns_names: ['a*.example.com']}", "san.dns_names: 'a*.example.com' is not a domain name pattern"},
      {"space", "{dns_names: ['exa mple.com']}", "san.dns_names: 'exa mple.com' is not a domain name pattern"},
      {"two dots", "{dns_names: ['..example.com']}", "san.dns_names: '..example.com' is not a domain name pattern"},
      {"trailing dot", "{dns_names: ['example.com.']}", "'example.com.' is not a domain name pattern"},
      {"empty pattern", "{dns_names: ['']}", "san.dns_names: '' is not a domain name pattern"},
      {"just a dot", "{dns_names: ['.']}", "'.' is not a domain name pattern"},
      {"not a list", "{dns_names: example.com}", "san.dns_names: expected a list of strings"},
      {"ranges", "{ip_ranges: [10.0.0.0/8, 'fd00::/8', 192.0.2.7/32, 0.0.0.0/0, '::/0', '2001:db8::1/128']}", ""},
      {"prefix too long v4", "{ip_ranges: [10.0.0.0/33]}", "san.ip_ranges: '10.0.0.0/33' is not a CIDR block"},
      {"prefix too long v6", "{ip_ranges: ['fd00::/129']}", "san.ip_ranges: 'fd00::/129' is not a CIDR block"},
      {"no prefix", "{ip_ranges: [10.0.0.1]}", "san.ip_ranges: '10.0.0.1' is not a CIDR block"},
      {"host bits", "{ip_ranges: [10.0.0.1/8]}",
       "san.ip_ranges: '10.0.0.1/8' is not a CIDR block (host bits are set; the block is 10.0.0.0/8)"},
      {"host bits v6", "{ip_ranges: ['fd00::1/64']}", "host bits are set; the block is fd00::/64"},
      {"not an address", "{ip_ranges: [example.com/8]}", "'example.com/8' is not a CIDR block"},
      {"short address", "{ip_ranges: [10.0/8]}", "'10.0/8' is not a CIDR block"},
      {"signed prefix", "{ip_ranges: [10.0.0.0/+8]}", "'10.0.0.0/+8' is not a CIDR block"},
      {"leading zero", "{ip_ranges: [10.0.0.0/08]}", "'10.0.0.0/08' is not a CIDR block"},
      {"empty prefix", "{ip_ranges: [10.0.0.0/]}", "'10.0.0.0/' is not a CIDR block"},
      {"two slashes", "{ip_ranges: [10.0.0.0/8/8]}", "'10.0.0.0/8/8' is not a CIDR block"},
      {"mail domains", "{email_domains: [example.com, .example.org]}", ""},
      {"mail domain with @", "{email_domains: ['@example.com']}",
       "san.email_domains: '@example.com' is not a domain name pattern"},
      {"mail wildcard", "{email_domains: ['*.example.com']}", "san.email_domains: '*.example.com' has a '*'"},
      {"unknown san key", "{dns_patterns: [x]}", "san.dns_patterns: unknown key"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto p = parse(fmt::format("san: {}\n", c.san));
    if (*c.error) {
      ASSERT_FALSE(p);
      EXPECT_EQ(p.error().code, ErrorCode::config);
      EXPECT_NE(p.error().message.find(c.error), std::string::npos) << p.error().message;
    } else {
      EXPECT_TRUE(p) << p.error().message;
    }
  }
}

TEST(ProfileSan, KeepsTheListsAsWritten) {
  auto p = parse("san: {dns_names: [.Example.com], wildcards: true, ip_ranges: ['fd00::/8'], "
                 "email_domains: [example.org]}\n");
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->san.dns_names, std::vector<std::string>{".Example.com"});
  EXPECT_TRUE(p->san.wildcards);
  EXPECT_EQ(p->san.ip_ranges, std::vector<std::string>{"fd00::/8"});
  EXPECT_EQ(p->san.email_domains, std::vector<std::string>{"example.org"});

  auto d = parse("name: x\n");
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_TRUE(d->san.dns_names.empty());
  EXPECT_FALSE(d->san.wildcards);
  EXPECT_TRUE(d->san.ip_ranges.empty());
  EXPECT_TRUE(d->san.email_domains.empty());
}

TEST(ProfileSubject, AnAttributeListedTwiceIsAnError) {
  auto p = parse("subject: {allowed_attributes: [C, O, CN, O]}\n");
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().message.find("subject.allowed_attributes: 'O' is listed twice"), std::string::npos)
      << p.error().message;
}

TEST(DefaultProfiles, ParseWithTheirAuthenticatorsRolesAndX500Order) {
  auto profiles = parse_profiles_text(default_profiles_yaml(), "defaults");
  ASSERT_TRUE(profiles) << profiles.error().message;
  ASSERT_EQ(profiles->size(), 5u);
  std::map<std::string, const Profile*> by_id;
  for (const auto& p : *profiles) by_id[p.id] = &p;
  ASSERT_EQ(by_id.count("caServerCert") + by_id.count("caUserCert") + by_id.count("caAgentCert") +
                by_id.count("caAdminCert") + by_id.count("caAuditorCert"),
            5u);
  // The role profiles: issued only after an administrator's approval.
  EXPECT_EQ(by_id["caAdminCert"]->role, "administrator");
  EXPECT_EQ(by_id["caAdminCert"]->auth, std::vector<std::string>{A::agent_approval});
  EXPECT_EQ(by_id["caAuditorCert"]->role, "auditor");
  EXPECT_EQ(by_id["caAuditorCert"]->auth, std::vector<std::string>{A::agent_approval});

  const Profile& server = *by_id["caServerCert"];
  EXPECT_EQ(server.auth, (std::vector<std::string>{A::agent_approval, A::enrollment_code, A::client_certificate}));
  EXPECT_EQ(server.role, "");
  EXPECT_FALSE(server.san.wildcards);
  EXPECT_FALSE(server.accepts(A::none));
  EXPECT_EQ(server.subject.allowed_attributes, (std::vector<std::string>{"C", "ST", "L", "O", "OU", "CN"}));

  const Profile& user = *by_id["caUserCert"];
  EXPECT_EQ(user.auth, (std::vector<std::string>{A::agent_approval, A::enrollment_code, A::client_certificate}));
  EXPECT_EQ(user.role, "");
  EXPECT_EQ(user.subject.allowed_attributes,
            (std::vector<std::string>{"C", "ST", "L", "O", "OU", "UID", "emailAddress", "CN"}));

  const Profile& agent = *by_id["caAgentCert"];
  EXPECT_TRUE(agent.enabled);
  EXPECT_EQ(agent.auth, std::vector<std::string>{A::agent_approval});
  EXPECT_EQ(agent.role, "agent");
  EXPECT_EQ(agent.subject.allowed_attributes, (std::vector<std::string>{"O", "OU", "UID", "emailAddress", "CN"}));

  for (const auto& p : *profiles) {
    SCOPED_TRACE(p.id);
    EXPECT_FALSE(p.definition_yaml.empty());
    // The stored copy of each profile parses to the same policy.
    auto again = parse_profile_text(p.id, p.definition_yaml, "directory");
    ASSERT_TRUE(again) << again.error().message;
    EXPECT_EQ(again->auth, p.auth);
    EXPECT_EQ(again->role, p.role);
    EXPECT_EQ(again->subject.allowed_attributes, p.subject.allowed_attributes);
  }
}

}  // namespace
}  // namespace ca::authority
