#include "crypto/key_archive.hpp"

#include <climits>
#include <cstring>

#include <fmt/format.h>
#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "crypto/extra_owners.hpp"
#include "crypto/pem.hpp"

namespace ca::crypto {

namespace {

using Cms = detail::Owned<CMS_ContentInfo, CMS_ContentInfo_free>;
using CipherContext = detail::Owned<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>;
using Pkcs8 = detail::Owned<PKCS8_PRIV_KEY_INFO, PKCS8_PRIV_KEY_INFO_free>;
constexpr std::string_view kMagic = "CAK1";
const std::string kIntegrity = "the archived key record fails its integrity check (altered in the directory?)";

// Wipes a buffer holding key material when it goes.
struct Secret {
  std::vector<uint8_t> bytes;
  ~Secret() {
    if (!bytes.empty()) OPENSSL_cleanse(bytes.data(), bytes.size());
  }
};

}  // namespace

Result<std::vector<uint8_t>> private_key_pkcs8_der(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  Pkcs8 p8(EVP_PKEY2PKCS8(key));
  if (!p8) return fail(Error::crypto("cannot encode the private key: " + ossl::drain_errors()));
  int len = i2d_PKCS8_PRIV_KEY_INFO(p8.get(), &der);
  if (len <= 0) return fail(Error::crypto("cannot encode the private key: " + ossl::drain_errors()));
  std::vector<uint8_t> out(der, der + len);
  OPENSSL_clear_free(der, static_cast<std::size_t>(len));
  return out;
}

namespace {

Result<std::vector<uint8_t>> rsa_oaep(EVP_PKEY* key, std::span<const uint8_t> in, bool encrypt) {
  ossl::UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
  if (!ctx || (encrypt ? EVP_PKEY_encrypt_init(ctx.get()) : EVP_PKEY_decrypt_init(ctx.get())) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) != 1 ||
      EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), EVP_sha256()) != 1 ||
      EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), EVP_sha256()) != 1)
    return fail(Error::crypto("RSA-OAEP is not available with the storage key: " + ossl::drain_errors()));
  std::size_t out_len = 0;
  auto op = encrypt ? EVP_PKEY_encrypt : EVP_PKEY_decrypt;
  if (op(ctx.get(), nullptr, &out_len, in.data(), in.size()) != 1)
    return fail(Error::crypto("RSA-OAEP failed: " + ossl::drain_errors()));
  std::vector<uint8_t> out(out_len);
  if (op(ctx.get(), out.data(), &out_len, in.data(), in.size()) != 1) {
    ossl::drain_errors();
    return fail(Error::bad_request(kIntegrity));
  }
  out.resize(out_len);
  return out;
}

void put_field(std::vector<uint8_t>& out, std::span<const uint8_t> field) {
  uint32_t n = static_cast<uint32_t>(field.size());
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(n >> shift));
  out.insert(out.end(), field.begin(), field.end());
}

bool take_field(std::span<const uint8_t>& in, std::vector<uint8_t>& field) {
  if (in.size() < 4) return false;
  uint32_t n = (uint32_t{in[0]} << 24) | (uint32_t{in[1]} << 16) | (uint32_t{in[2]} << 8) | in[3];
  if (in.size() - 4 < n) return false;
  field.assign(in.begin() + 4, in.begin() + 4 + n);
  in = in.subspan(4 + n);
  return true;
}

}  // namespace

std::string public_key_id(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(key, &der);
  if (len <= 0) {
    ossl::drain_errors();
    return {};
  }
  unsigned char digest[32];
  unsigned int digest_len = 0;
  EVP_Digest(der, static_cast<std::size_t>(len), digest, &digest_len, EVP_sha256(), nullptr);
  OPENSSL_free(der);
  return to_hex({digest, digest_len});
}

Result<SealedKey> seal_private_key(EVP_PKEY* key, EVP_PKEY* storage_key, std::string_view aad) {
  SealedKey out;
  out.storage_key_id = public_key_id(storage_key);
  Secret plain, data_key;
  CA_TRY(plain.bytes, private_key_pkcs8_der(key));
  data_key.bytes.resize(32);
  out.iv.resize(12);
  if (RAND_priv_bytes(data_key.bytes.data(), 32) != 1 || RAND_bytes(out.iv.data(), 12) != 1)
    return fail(Error::crypto("the CSPRNG failed"));
  CipherContext ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  out.ciphertext.resize(plain.bytes.size());
  out.tag.resize(16);
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, data_key.bytes.data(), out.iv.data()) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), out.ciphertext.data(), &len, plain.bytes.data(),
                        static_cast<int>(plain.bytes.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), out.ciphertext.data() + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, 16, out.tag.data()) != 1)
    return fail(Error::crypto("AES-256-GCM failed: " + ossl::drain_errors()));
  CA_TRY(out.wrapped_data_key, rsa_oaep(storage_key, data_key.bytes, true));
  return out;
}

Result<ossl::UniquePtr<EVP_PKEY>> unseal_private_key(const SealedKey& sealed, EVP_PKEY* storage_key,
                                                     std::string_view aad) {
  if (sealed.storage_key_id != public_key_id(storage_key))
    return fail(
        Error::config(fmt::format("the key was archived under storage key {}, not this instance's {}",
                                  sealed.storage_key_id.substr(0, 16), public_key_id(storage_key).substr(0, 16))));
  if (sealed.iv.size() != 12 || sealed.tag.size() != 16 || sealed.ciphertext.empty() ||
      sealed.ciphertext.size() > static_cast<std::size_t>(INT_MAX))
    return fail(Error::bad_request(kIntegrity));
  Secret data_key, plain;
  CA_TRY(data_key.bytes, rsa_oaep(storage_key, sealed.wrapped_data_key, false));
  if (data_key.bytes.size() != 32) return fail(Error::bad_request(kIntegrity));
  CipherContext ctx(EVP_CIPHER_CTX_new());
  int len = 0, final_len = 0;
  plain.bytes.resize(sealed.ciphertext.size());
  std::vector<uint8_t> tag = sealed.tag;
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, data_key.bytes.data(), sealed.iv.data()) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), plain.bytes.data(), &len, sealed.ciphertext.data(),
                        static_cast<int>(sealed.ciphertext.size())) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, 16, tag.data()) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), plain.bytes.data() + len, &final_len) != 1) {
    ossl::drain_errors();
    return fail(Error::bad_request(kIntegrity));
  }
  const unsigned char* p = plain.bytes.data();
  ossl::UniquePtr<EVP_PKEY> key(d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(len) + final_len));
  if (!key) {
    ossl::drain_errors();
    return fail(Error::bad_request(kIntegrity));
  }
  return key;
}

std::vector<uint8_t> encode_sealed_key(const SealedKey& sealed) {
  std::vector<uint8_t> out(kMagic.begin(), kMagic.end());
  put_field(out,
            std::span(reinterpret_cast<const uint8_t*>(sealed.storage_key_id.data()), sealed.storage_key_id.size()));
  put_field(out, sealed.wrapped_data_key);
  put_field(out, sealed.iv);
  put_field(out, sealed.ciphertext);
  put_field(out, sealed.tag);
  return out;
}

Result<SealedKey> decode_sealed_key(std::span<const uint8_t> bytes) {
  if (bytes.size() < kMagic.size() || std::memcmp(bytes.data(), kMagic.data(), kMagic.size()) != 0)
    return fail(Error::bad_request(kIntegrity));
  auto in = bytes.subspan(kMagic.size());
  SealedKey out;
  std::vector<uint8_t> id;
  if (!take_field(in, id) || !take_field(in, out.wrapped_data_key) || !take_field(in, out.iv) ||
      !take_field(in, out.ciphertext) || !take_field(in, out.tag) || !in.empty())
    return fail(Error::bad_request(kIntegrity));
  out.storage_key_id.assign(id.begin(), id.end());
  return out;
}

Result<ossl::UniquePtr<EVP_PKEY>> open_key_envelope(std::string_view envelope, X509* transport_cert,
                                                    EVP_PKEY* transport_key) {
  if (envelope.empty() || envelope.size() > 65536)
    return fail(Error::bad_request("the key envelope is empty or larger than 64 KiB"));
  ossl::UniquePtr<BIO> in(BIO_new_mem_buf(envelope.data(), static_cast<int>(envelope.size())));
  Cms cms;
  // PEM only when it starts as PEM: a DER envelope may carry that text in a recipient's name.
  std::string_view start = envelope.substr(std::min(envelope.find_first_not_of(" \t\r\n"), envelope.size()));
  if (start.starts_with("-----BEGIN")) {
    // "-----BEGIN CMS-----" (openssl cms -outform PEM) or "PKCS7": the same DER inside.
    char* name = nullptr;
    char* header = nullptr;
    unsigned char* der = nullptr;
    long len = 0;
    if (PEM_read_bio(in.get(), &name, &header, &der, &len) == 1) {
      const unsigned char* p = der;
      cms.reset(d2i_CMS_ContentInfo(nullptr, &p, len));
    }
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(der);
  } else {
    cms.reset(d2i_CMS_bio(in.get(), nullptr));
  }
  if (!cms) return fail(Error::bad_request("the key envelope is not CMS: " + ossl::drain_errors()));
  if (OBJ_obj2nid(CMS_get0_type(cms.get())) != NID_pkcs7_enveloped)
    return fail(Error::bad_request("the key envelope is not CMS EnvelopedData (openssl cms -encrypt)"));
  // Addressed to us? Checked first, so that the answer says so instead of a decryption failure.
  bool for_us = false;
  STACK_OF(CMS_RecipientInfo)* recipients = CMS_get0_RecipientInfos(cms.get());
  for (int i = 0; i < sk_CMS_RecipientInfo_num(recipients); ++i) {
    CMS_RecipientInfo* ri = sk_CMS_RecipientInfo_value(recipients, i);
    if (CMS_RecipientInfo_type(ri) == CMS_RECIPINFO_TRANS && CMS_RecipientInfo_ktri_cert_cmp(ri, transport_cert) == 0)
      for_us = true;
  }
  ossl::drain_errors();
  if (!for_us)
    return fail(Error::bad_request(
        "the key envelope is not addressed to this CA's transport certificate (GET /kra/rest/transport-cert)"));
  ossl::UniquePtr<BIO> out(BIO_new(BIO_s_secmem()));
  if (!out) out.reset(BIO_new(BIO_s_mem()));
  if (CMS_decrypt(cms.get(), transport_key, transport_cert, nullptr, out.get(), 0) != 1)
    return fail(Error::bad_request("the key envelope cannot be opened: " + ossl::drain_errors()));
  char* data = nullptr;
  long len = BIO_get_mem_data(out.get(), &data);
  if (len <= 0) return fail(Error::bad_request("the key envelope is empty"));
  ossl::UniquePtr<EVP_PKEY> key;
  {
    ossl::UniquePtr<BIO> key_bio(BIO_new_mem_buf(data, static_cast<int>(len)));
    key.reset(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, const_cast<char*>("")));
  }
  if (!key) {
    ossl::drain_errors();
    const unsigned char* p = reinterpret_cast<const unsigned char*>(data);
    key.reset(d2i_AutoPrivateKey(nullptr, &p, len));
  }
  OPENSSL_cleanse(data, static_cast<std::size_t>(len));
  if (!key) {
    ossl::drain_errors();
    return fail(Error::bad_request("the key envelope does not hold an unencrypted private key (PEM or DER)"));
  }
  return key;
}

bool keys_match(EVP_PKEY* private_key, EVP_PKEY* public_key) {
  int r = EVP_PKEY_eq(private_key, public_key);
  ossl::drain_errors();
  return r == 1;
}

}  // namespace ca::crypto
