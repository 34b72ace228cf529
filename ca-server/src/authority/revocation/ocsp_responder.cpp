#include "authority/revocation/ocsp_responder.hpp"

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>

#include "core/log.hpp"
#include "store/records.hpp"

namespace ca::authority {

namespace {
constexpr std::string_view kLog = "ocsp";

std::vector<uint8_t> to_der(OCSP_RESPONSE* resp) {
  int len = i2d_OCSP_RESPONSE(resp, nullptr);
  if (len <= 0) return {};
  std::vector<uint8_t> out(static_cast<std::size_t>(len));
  unsigned char* p = out.data();
  i2d_OCSP_RESPONSE(resp, &p);
  return out;
}

std::string serial_hex(const ASN1_INTEGER* serial) {
  ossl::UniquePtr<BIGNUM> bn(ASN1_INTEGER_to_BN(serial, nullptr));
  if (!bn || BN_is_negative(bn.get())) return {};
  char* hex = BN_bn2hex(bn.get());
  std::string out = store::canonical_hex(hex ? hex : "0");
  OPENSSL_free(hex);
  return out;
}

ossl::UniquePtr<ASN1_STRING> asn1_time(std::chrono::system_clock::time_point t) {
  return ossl::UniquePtr<ASN1_STRING>(ASN1_GENERALIZEDTIME_set(nullptr, std::chrono::system_clock::to_time_t(t)));
}
}  // namespace

OcspResponder::OcspResponder(store::CaStore& store, X509* ca_cert, const crypto::Issuer& signer)
    : store_(store), ca_cert_(ca_cert), signer_(signer) {}

std::vector<uint8_t> OcspResponder::status_only(int response_status) {
  ossl::UniquePtr<OCSP_RESPONSE> resp(OCSP_response_create(response_status, nullptr));
  return resp ? to_der(resp.get()) : std::vector<uint8_t>{};
}

std::vector<uint8_t> OcspResponder::respond(std::span<const uint8_t> request_der) {
  const unsigned char* p = request_der.data();
  ossl::UniquePtr<OCSP_REQUEST> req(
      request_der.empty() ? nullptr : d2i_OCSP_REQUEST(nullptr, &p, static_cast<long>(request_der.size())));
  if (!req || p != request_der.data() + request_der.size()) {
    ERR_clear_error();
    log::debug(kLog, "malformed request ({} bytes)", request_der.size());
    return status_only(OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
  }
  int count = OCSP_request_onereq_count(req.get());
  // Each entry is a look-up: an anonymous client gets at most 20 per request (clients send one).
  if (count <= 0 || count > 20) return status_only(OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);

  ossl::UniquePtr<OCSP_BASICRESP> basic(OCSP_BASICRESP_new());
  if (!basic) return status_only(OCSP_RESPONSE_STATUS_INTERNALERROR);
  auto now = std::chrono::system_clock::now();
  auto this_update = asn1_time(now);
  auto next_update = asn1_time(now + validity_);
  for (int i = 0; i < count; ++i) {
    OCSP_CERTID* id = OCSP_onereq_get0_id(OCSP_request_onereq_get0(req.get(), i));
    ASN1_OBJECT* md_oid = nullptr;
    ASN1_INTEGER* serial = nullptr;
    OCSP_id_get0_info(nullptr, &md_oid, nullptr, &serial, id);
    const EVP_MD* md = md_oid ? EVP_get_digestbyobj(md_oid) : nullptr;
    int status = V_OCSP_CERTSTATUS_UNKNOWN;
    int reason = -1;
    ossl::UniquePtr<ASN1_STRING> revoked_at;
    // Only certificates of our CA: the issuer name and key hashes must match ours.
    ossl::UniquePtr<OCSP_CERTID> ours(md ? OCSP_cert_to_id(md, nullptr, ca_cert_) : nullptr);
    std::string hex = serial ? serial_hex(serial) : std::string();
    if (ours && OCSP_id_issuer_cmp(ours.get(), id) == 0 && !hex.empty()) {
      auto record = store_.find_certificate(hex);
      if (record) {
        if (record->status == "REVOKED" && record->revoked_on) {
          status = V_OCSP_CERTSTATUS_REVOKED;
          reason = record->revocation_reason;
          revoked_at = asn1_time(*record->revoked_on);
        } else {
          status = V_OCSP_CERTSTATUS_GOOD;
        }
      } else if (!record.error().is(ErrorCode::not_found)) {
        log::warn(kLog, "status of 0x{} unavailable: {}", hex, record.error().message);
        return status_only(OCSP_RESPONSE_STATUS_TRYLATER);
      }
    }
    if (!OCSP_basic_add1_status(basic.get(), id, status, reason, revoked_at.get(), this_update.get(),
                                status == V_OCSP_CERTSTATUS_REVOKED ? nullptr : next_update.get()))
      return status_only(OCSP_RESPONSE_STATUS_INTERNALERROR);
  }
  // Echo the nonce (RFC 6960 4.4.1) when there is one.
  if (OCSP_REQUEST_get_ext_by_NID(req.get(), NID_id_pkix_OCSP_Nonce, -1) >= 0) OCSP_copy_nonce(basic.get(), req.get());
  if (auto signed_response = signer_.sign_ocsp_response(basic.get()); !signed_response) {
    log::error(kLog, "signing the OCSP response failed: {}", signed_response.error().message);
    return status_only(OCSP_RESPONSE_STATUS_INTERNALERROR);
  }
  ossl::UniquePtr<OCSP_RESPONSE> resp(OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, basic.get()));
  return resp ? to_der(resp.get()) : status_only(OCSP_RESPONSE_STATUS_INTERNALERROR);
}

}  // namespace ca::authority
