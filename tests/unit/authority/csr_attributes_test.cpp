// EST /csrattrs (authority/csr_attributes): the DER CsrAttrs for a profile, read back with
// `openssl asn1parse`, must name the key the profile prefers (EC on its first curve, else RSA) and
// the matching signature algorithm, in RFC 7030's shape.
#include "authority/issuance/csr_attributes.hpp"

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "authority/issuance/profile.hpp"
#include "support/temp_dir.hpp"

namespace ca::authority {
namespace {

using ca::testing::shell;
using ca::testing::TempDir;
using ca::testing::write_file;

Profile with_curves(std::vector<std::string> curves) {
  Profile p;
  p.key.ec_curves = std::move(curves);
  return p;
}

// `openssl asn1parse` of the DER, one "depth kind type[:value]" line per element, e.g.
// "2 prim OBJECT :prime256v1". Empty after recording a failure.
std::vector<std::string> asn1parse(const std::vector<uint8_t>& der) {
  TempDir dir("ca-csrattrs");
  auto file = write_file(dir / "attrs.der", std::string(der.begin(), der.end()));
  auto out = shell("openssl asn1parse -inform DER -in " + file.string());
  EXPECT_EQ(out.exit_code, 0) << out.output;
  if (out.exit_code != 0) return {};
  // "    4:d=2  hl=2 l=   7 prim: OBJECT            :id-ecPublicKey"
  std::vector<std::string> elements;
  std::istringstream lines(out.output);
  for (std::string line; std::getline(lines, line);) {
    auto d = line.find("d=");
    auto kind = line.find(": ", d);
    if (d == std::string::npos || kind == std::string::npos) {
      ADD_FAILURE() << "unexpected asn1parse line: " << line;
      return {};
    }
    std::string depth = line.substr(d + 2, line.find(' ', d) - d - 2);
    std::string kind_text = line.substr(kind - 4, 4);
    std::istringstream rest(line.substr(kind + 1));
    std::string element;
    for (std::string word; rest >> word;) element += " " + word;
    elements.push_back(depth + " " + kind_text + element);
  }
  return elements;
}

// An EC key on `curve_name` signed with `signature_name`:
// SEQUENCE { SEQUENCE { id-ecPublicKey, SET { curve } }, signature }
std::vector<std::string> ec_attributes(const std::string& curve_name, const std::string& signature_name) {
  return {"0 cons SEQUENCE",
          "1 cons SEQUENCE",
          "2 prim OBJECT :id-ecPublicKey",
          "2 cons SET",
          "3 prim OBJECT :" + curve_name,
          "1 prim OBJECT :" + signature_name};
}

TEST(CsrAttributes, DefaultProfileAsksForP256WithEcdsaSha256) {
  Profile profile;
  ASSERT_EQ(profile.key.ec_curves.front(), "P-256");  // the default this case relies on
  auto der = csr_attributes_der(profile);
  ASSERT_GE(der.size(), 2u);
  EXPECT_EQ(der[0], 0x30);
  EXPECT_EQ(der[1] + 2u, der.size());  // one SEQUENCE, nothing after it
  EXPECT_EQ(asn1parse(der), ec_attributes("prime256v1", "ecdsa-with-SHA256"));
}

TEST(CsrAttributes, FirstCurveOfTheProfileDecides) {
  const struct {
    std::vector<std::string> curves;
    const char* curve;
    const char* signature;
  } cases[] = {
      {{"P-384"}, "secp384r1", "ecdsa-with-SHA384"},
      {{"P-521"}, "secp521r1", "ecdsa-with-SHA512"},
      {{"P-384", "P-256"}, "secp384r1", "ecdsa-with-SHA384"},
      {{"P-256", "P-521"}, "prime256v1", "ecdsa-with-SHA256"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.curves.front());
    EXPECT_EQ(asn1parse(csr_attributes_der(with_curves(c.curves))), ec_attributes(c.curve, c.signature));
  }
}

TEST(CsrAttributes, NoCurvesAsksForRsaWithSha256) {
  auto der = csr_attributes_der(with_curves({}));
  EXPECT_EQ(asn1parse(der), (std::vector<std::string>{"0 cons SEQUENCE", "1 prim OBJECT :rsaEncryption",
                                                        "1 prim OBJECT :sha256WithRSAEncryption"}));
  // The same bytes every time: a client may cache them.
  EXPECT_EQ(csr_attributes_der(with_curves({})), der);
}

}  // namespace
}  // namespace ca::authority
