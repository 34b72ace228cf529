#include "authority/issuance/csr_attributes.hpp"

#include <string_view>

#include "crypto/der_writer.hpp"

namespace ca::authority {

namespace {

constexpr std::string_view kEcPublicKey = "1.2.840.10045.2.1";
constexpr std::string_view kRsaEncryption = "1.2.840.113549.1.1.1";
constexpr std::string_view kSha256WithRsa = "1.2.840.113549.1.1.11";

// The curve's OID and the ECDSA signature that matches its strength.
std::pair<std::string_view, std::string_view> curve_oids(const std::string& curve) {
  if (curve == "P-384") return {"1.3.132.0.34", "1.2.840.10045.4.3.3"};
  if (curve == "P-521") return {"1.3.132.0.35", "1.2.840.10045.4.3.4"};
  return {"1.2.840.10045.3.1.7", "1.2.840.10045.4.3.2"};
}

}  // namespace

std::vector<uint8_t> csr_attributes_der(const Profile& profile) {
  crypto::DerWriter w;
  auto all = w.begin(0x30);
  if (!profile.key.ec_curves.empty()) {
    auto [curve, signature] = curve_oids(profile.key.ec_curves.front());
    auto attribute = w.begin(0x30);
    w.oid(kEcPublicKey);
    auto values = w.begin(0x31);
    w.oid(curve);
    w.end(values);
    w.end(attribute);
    w.oid(signature);
  } else {
    w.oid(kRsaEncryption);
    w.oid(kSha256WithRsa);
  }
  w.end(all);
  return std::move(w.bytes());
}

}  // namespace ca::authority
