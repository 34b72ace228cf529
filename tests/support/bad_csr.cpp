#include "support/bad_csr.hpp"

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/openssl_owners.hpp"

namespace ca::testing {

namespace {

using ossl::UniquePtr;

template <typename T, auto Free>
struct FreeWith {
  void operator()(T* p) const noexcept { Free(p); }
};
template <typename T, auto Free>
using Owned = std::unique_ptr<T, FreeWith<T, Free>>;
using BnCtx = Owned<BN_CTX, BN_CTX_free>;
using ParamBuild = Owned<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>;
using Params = Owned<OSSL_PARAM, OSSL_PARAM_free>;
using EcGroup = Owned<EC_GROUP, EC_GROUP_free>;
using EcPoint = Owned<EC_POINT, EC_POINT_free>;
using EcdsaSig = Owned<ECDSA_SIG, ECDSA_SIG_free>;

[[noreturn]] void die(const std::string& what) {
  throw std::runtime_error("bad_csr: cannot " + what + ": " + ossl::drain_errors());
}
template <typename T>
T* must(T* p, const std::string& what) {
  if (!p) die(what);
  return p;
}
void must(bool good, const std::string& what) {
  if (!good) die(what);
}

// Primes made once with `openssl prime -generate -bits N -hex` (kPrime2047: a random 2047-bit
// start below 0x55 << 2040 and the next prime, so that 2p and 3p both have exactly 2048 bits):
// an RSA modulus built from them costs microseconds, where generating a 2048-bit key costs
// ~100 ms and a 3072-bit one ~1 s.
constexpr const char* kPrime1024A =
    "FDB9FAB743F24AD1BD0F0538A8323D9323E061A8A34D12D612E43017DAF3D65033E0FDE3F8A8CD965AEA8D83A0044A8FDB5C8FFD015E7268"
    "C4CF6DF99046EEBAEF880C25BC7A936776346ED78923BC85AF75EC2556A1CA71C08834170D888FAD98B5CE2089D650467F155C5B7A7B7581"
    "0AD7CB0F70AD04D24F7CAD7063E090EF";
constexpr const char* kPrime1024B =
    "CD66972034DCCF34A8E410AF40C39DF63E06CCA12F6001C299D2D8DFA46905A6AC1CC846FBCB34063EBC2E20DA59E530429394BB18EAF0BA"
    "CDABFA4291011C2831E3CB73046492BD8769589D9EC6D9D740F093EE194E039059B98A4BEC7B006502445283F87D45D3A18D299F906D1AFB"
    "045777F94DD982C2FFC005712B76152B";
constexpr const char* kPrime2047 =
    "480331731A60D661CC770747660CEE75ECE8E5048701BB00BBEA6255E026134EBFBA568CA293E81C88AB598D5172C033BD285EF65CA26B04"
    "0747E41399591BC5BF6411DE84E523DD23B43DB1BD484864D7F1F1FFDE3EC500FF7F01A41E25F0CE2AA5A51755B61BD1E7A957D8E8938F6E"
    "4F3EBA9DFFE197E79DAE457F2248A95BFF3BCC55D77DF703057EE76E3BBF355386BE62B901D8BF570E9B8196C1071CDCEE63F8C984265CCB"
    "C03103BD83B677126968979F08390151C7AE2D66503AC0FA9303B82825AA79626F248D5CEC585AC912466CFB7FB4C8E8219DEE0C99DE905D"
    "998515543FAF38039706B4E1B05C17B6EF7111CF800CC1034611C4D50A882A77";
// For the good keys (RSA-2048 and RSA-3072), unrelated to the ones above.
constexpr const char* kGood1024C =
    "D9539686799EEBF556F733265B78A5E20F04658A2FB0A4746A35B724344688770D59B1ED73873305FA8F50C9F4EB989D66E6A22CCA5B40E0"
    "D73B1166DD2DFB28A7F9BFA36C5E7131AF043FD2F5EB03DC33A7906F011AC953151C547A1485CCE4BED321C9BD33A45F460EBB6258936315"
    "3F07C4248F4FD42429686E8FBFAAEEF5";
constexpr const char* kGood1024D =
    "CF0FA39A8D3DCAF43461E506F41DE1F2E9E267B6CA01D2A8774C3DC23D5FA5D209785193050BF51040AD81CA5A75C123E3FB9A97DA976748"
    "00A293A6EB66985ED25E2758D14A9E745ECFBB449DDD976A25C8C167E28FA6C93ECF6E5937047ED51A0C2A905418D02C22AFBD54E4E3BD24"
    "593F28B4C9885A0616076A43DA237B93";
constexpr const char* kGood1536E =
    "F1658EC705F7EFF76ACCD8FD839BE893C19E45700F6CCE3B95F069F05587E0CB7966A450FE1151E3E7C1C81A55477CBDE832E48B79D8D712"
    "965CBE7933B5837DB523679F3300EFE63D165DA9AD3E999BE1BFABA9F3753A2222A97D163FD3E57C4BC7926BBAC4C68FD6A65DCCECDE2E5C"
    "DD289467B4303404D53AEDE0D482BAED8BFD4DC34AA7F6D9CB27F8B7E9F2CFBA3EFCAC00B669FEC82884308411BD94B734050C2DCD208A1A"
    "0EC7F3D06B23955BE77309E51410C3BC3B74E90FE7FA55CB";
constexpr const char* kGood1536F =
    "E6EB179B721A8486EDCB6BEE6D3F99B78F04DA43C82066ED7E06E7FF20B93F5116F51EC11218FD136DF0AD6D9C83771A305D9C4D8B1C0F19"
    "D67AF4B5FA88EB1318CBE24E5F081522854FD3D8E10157621B80ED44C75D41FEF7CA24BE040FD6FAD4FFE9C522FB3130955880465041DD26"
    "4C033561AB51AF7304CDF134A8FFFF66FBC9601EE4E1BFF640DE1336BCA60400A50F585A5DB956527F0F4CEE6FB4BE76724CC1D2B3F136AF"
    "05CA7FF7B3316DEFB902323AA1D45834850EA39729C44841";

UniquePtr<BIGNUM> bn_hex(const char* hex) {
  BIGNUM* b = nullptr;
  must(BN_hex2bn(&b, hex) > 0, "decode a prime");
  return UniquePtr<BIGNUM>(b);
}
UniquePtr<BIGNUM> bn_word(BN_ULONG w) {
  UniquePtr<BIGNUM> b(must(BN_new(), "allocate a BIGNUM"));
  must(BN_set_word(b.get(), w) == 1, "set a BIGNUM");
  return b;
}
UniquePtr<BIGNUM> bn_new() { return UniquePtr<BIGNUM>(must(BN_new(), "allocate a BIGNUM")); }

// The next prime after p (q = p + 2, p + 4, ...), computed once: ~350 odd candidates, most
// dismissed by BN_check_prime's trial division.
const BIGNUM* next_prime_after_1024a() {
  static const UniquePtr<BIGNUM> q = [] {
    auto candidate = bn_hex(kPrime1024A);
    BnCtx ctx(must(BN_CTX_new(), "allocate a BN_CTX"));
    do must(BN_add_word(candidate.get(), 2) == 1, "step to the next odd number");
    while (BN_check_prime(candidate.get(), ctx.get(), nullptr) != 1);
    return candidate;
  }();
  return q.get();
}

// d = e⁻¹ mod lcm(p − 1, q − 1) for a squarefree n = p·q (q may be 2 or 3).
UniquePtr<BIGNUM> private_exponent(const BIGNUM* e, const BIGNUM* p, const BIGNUM* q) {
  BnCtx ctx(must(BN_CTX_new(), "allocate a BN_CTX"));
  auto p1 = bn_new(), q1 = bn_new(), g = bn_new(), lambda = bn_new(), d = bn_new();
  must(BN_sub(p1.get(), p, BN_value_one()) == 1 && BN_sub(q1.get(), q, BN_value_one()) == 1 &&
           BN_gcd(g.get(), p1.get(), q1.get(), ctx.get()) == 1 &&
           BN_mul(lambda.get(), p1.get(), q1.get(), ctx.get()) == 1 &&
           BN_div(lambda.get(), nullptr, lambda.get(), g.get(), ctx.get()) == 1,
       "compute lambda(n)");
  must(BN_mod_inverse(d.get(), e, lambda.get(), ctx.get()) != nullptr, "invert e modulo lambda(n)");
  return d;
}

// A private key from n, e and d; with the factors p and q, also the CRT parameters (a complete key,
// as keygen makes it). Nothing is validated: that is the point.
UniquePtr<EVP_PKEY> rsa_key(const BIGNUM* n, const BIGNUM* e, const BIGNUM* d, const BIGNUM* p = nullptr,
                            const BIGNUM* q = nullptr) {
  ParamBuild build(must(OSSL_PARAM_BLD_new(), "allocate a parameter builder"));
  must(OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_RSA_N, n) == 1 &&
           OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_RSA_E, e) == 1 &&
           OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_RSA_D, d) == 1,
       "build RSA parameters");
  UniquePtr<BIGNUM> dp, dq, qinv;
  if (p && q) {
    BnCtx ctx(must(BN_CTX_new(), "allocate a BN_CTX"));
    dp = bn_new(), dq = bn_new(), qinv = bn_new();
    auto p1 = bn_new(), q1 = bn_new();
    must(BN_sub(p1.get(), p, BN_value_one()) == 1 && BN_sub(q1.get(), q, BN_value_one()) == 1 &&
             BN_mod(dp.get(), d, p1.get(), ctx.get()) == 1 && BN_mod(dq.get(), d, q1.get(), ctx.get()) == 1 &&
             BN_mod_inverse(qinv.get(), q, p, ctx.get()) != nullptr,
         "compute the CRT parameters");
    must(OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_RSA_FACTOR1, p) == 1 &&
             OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_RSA_FACTOR2, q) == 1 &&
             OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_RSA_EXPONENT1, dp.get()) == 1 &&
             OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_RSA_EXPONENT2, dq.get()) == 1 &&
             OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_RSA_COEFFICIENT1, qinv.get()) == 1,
         "build RSA CRT parameters");
  }
  Params params(must(OSSL_PARAM_BLD_to_param(build.get()), "build RSA parameters"));
  UniquePtr<EVP_PKEY_CTX> ctx(must(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr), "create an RSA context"));
  EVP_PKEY* key = nullptr;
  must(EVP_PKEY_fromdata_init(ctx.get()) == 1 &&
           EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_KEYPAIR, params.get()) == 1,
       "build an RSA key from its parameters");
  return UniquePtr<EVP_PKEY>(key);
}

// n = p·q with e = 65537; with_crt for two genuine odd primes.
UniquePtr<EVP_PKEY> rsa_key_from_factors(const BIGNUM* p, const BIGNUM* q, bool with_crt) {
  BnCtx ctx(must(BN_CTX_new(), "allocate a BN_CTX"));
  auto n = bn_new(), e = bn_word(65537);
  must(BN_mul(n.get(), p, q, ctx.get()) == 1, "multiply the factors");
  auto d = private_exponent(e.get(), p, q);
  return with_crt ? rsa_key(n.get(), e.get(), d.get(), p, q) : rsa_key(n.get(), e.get(), d.get());
}

// An unsigned request: version 1, subject CN=cn, the key, and subjectAltName DNS:cn if asked.
UniquePtr<X509_REQ> unsigned_request(EVP_PKEY* key, const std::string& cn, bool dns_san) {
  UniquePtr<X509_REQ> req(must(X509_REQ_new(), "allocate a request"));
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  must(X509_REQ_set_version(req.get(), 0) == 1 &&
           X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()),
                                      -1, -1, 0) == 1 &&
           X509_REQ_set_pubkey(req.get(), key) == 1,
       "fill the request");
  if (dns_san) {
    UniquePtr<STACK_OF(X509_EXTENSION)> extensions(must(sk_X509_EXTENSION_new_null(), "allocate extensions"));
    X509_EXTENSION* san =
        must(X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, ("DNS:" + cn).c_str()),
             "make a subjectAltName");
    if (sk_X509_EXTENSION_push(extensions.get(), san) <= 0) {
      X509_EXTENSION_free(san);
      die("add the subjectAltName");
    }
    must(X509_REQ_add_extensions(req.get(), extensions.get()) == 1, "add the extensionRequest");
  }
  return req;
}

std::string der_to_pem(const std::string& der) {
  UniquePtr<BIO> bio(must(BIO_new(BIO_s_mem()), "allocate a BIO"));
  must(PEM_write_bio(bio.get(), "CERTIFICATE REQUEST", "", reinterpret_cast<const unsigned char*>(der.data()),
                     static_cast<long>(der.size())) > 0,
       "write PEM");
  char* p = nullptr;
  long n = BIO_get_mem_data(bio.get(), &p);
  return std::string(p, static_cast<std::size_t>(n));
}

std::string pem_to_der(const std::string& pem) {
  UniquePtr<BIO> bio(must(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), "buffer PEM"));
  char *name = nullptr, *header = nullptr;
  unsigned char* data = nullptr;
  long len = 0;
  must(PEM_read_bio(bio.get(), &name, &header, &data, &len) == 1, "read PEM");
  std::string der(reinterpret_cast<char*>(data), static_cast<std::size_t>(len));
  OPENSSL_free(name);
  OPENSSL_free(header);
  OPENSSL_free(data);
  return der;
}

std::string signed_by_openssl(X509_REQ* req, EVP_PKEY* key) {
  must(X509_REQ_sign(req, key, EVP_sha256()) > 0, "sign the request");
  unsigned char* der = nullptr;
  int len = i2d_X509_REQ(req, &der);
  must(len > 0, "encode the request");
  std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  return der_to_pem(out);
}

// The DER CertificationRequestInfo, exactly as it will be signed.
std::string to_be_signed(X509_REQ* req) {
  unsigned char* der = nullptr;
  int len = i2d_re_X509_REQ_tbs(req, &der);
  must(len > 0, "encode the CertificationRequestInfo");
  std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  return out;
}

std::array<unsigned char, SHA256_DIGEST_LENGTH> sha256(const std::string& data) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest.data());
  return digest;
}

void append_length(std::string& out, std::size_t n) {
  if (n < 0x80) {
    out += static_cast<char>(n);
    return;
  }
  std::string bytes;
  for (; n; n >>= 8) bytes.insert(bytes.begin(), static_cast<char>(n & 0xff));
  out += static_cast<char>(0x80 | bytes.size());
  out += bytes;
}
std::string tlv(uint8_t tag, const std::string& content) {
  std::string out(1, static_cast<char>(tag));
  append_length(out, content.size());
  return out + content;
}

// SEQUENCE { info, algorithm, BIT STRING signature }: a CertificationRequest assembled by hand.
std::string assemble(const std::string& info, std::string_view algorithm, const std::string& signature) {
  return der_to_pem(tlv(0x30, info + std::string(algorithm) + tlv(0x03, std::string(1, '\0') + signature)));
}

// The DER TLV at the front of `in` (advancing it): {whole TLV, content}. Throws on anything malformed.
struct Tlv {
  std::string_view whole, content;
};
Tlv take_tlv(std::string_view& in) {
  if (in.size() < 2) die("split the request DER");
  std::size_t len = static_cast<unsigned char>(in[1]), header = 2;
  if (len & 0x80) {
    std::size_t count = len & 0x7f;
    if (count == 0 || count > 4 || in.size() < 2 + count) die("split the request DER");
    len = 0;
    for (std::size_t i = 0; i < count; ++i) len = (len << 8) | static_cast<unsigned char>(in[2 + i]);
    header += count;
  }
  if (in.size() - header < len) die("split the request DER");
  Tlv t{in.substr(0, header + len), in.substr(header, len)};
  in.remove_prefix(header + len);
  return t;
}

std::string bn_bytes(const BIGNUM* v, int width) {
  std::string out(static_cast<std::size_t>(width), '\0');
  must(BN_bn2binpad(v, reinterpret_cast<unsigned char*>(out.data()), width) == width, "encode a BIGNUM");
  return out;
}

}  // namespace

std::string replace_signature_algorithm(const std::string& pem, std::string_view algorithm_der) {
  std::string der = pem_to_der(pem);
  std::string_view all(der);
  std::string_view body = take_tlv(all).content;
  std::string_view info = take_tlv(body).whole;
  take_tlv(body);  // the algorithm being replaced
  std::string_view signature = take_tlv(body).whole;
  return der_to_pem(tlv(0x30, std::string(info) + std::string(algorithm_der) + std::string(signature)));
}

std::string csr_good_ec(const std::string& cn, const std::string& curve, bool dns_san) {
  UniquePtr<EVP_PKEY> key(must(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve.c_str()), "generate an EC key"));
  auto req = unsigned_request(key.get(), cn, dns_san);
  return signed_by_openssl(req.get(), key.get());
}

std::string csr_good_rsa(const std::string& cn, int bits, bool dns_san) {
  // 2048 and 3072 bits: the fixed primes. Other sizes: generated once per process.
  static std::mutex mutex;
  static std::map<int, UniquePtr<EVP_PKEY>> keys;
  EVP_PKEY* key = nullptr;
  {
    std::lock_guard lock(mutex);
    auto& slot = keys[bits];
    if (!slot && (bits == 2048 || bits == 3072)) {
      auto p = bn_hex(bits == 2048 ? kGood1024C : kGood1536E), q = bn_hex(bits == 2048 ? kGood1024D : kGood1536F);
      slot = rsa_key_from_factors(p.get(), q.get(), true);
    } else if (!slot) {
      slot.reset(must(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(bits)), "generate an RSA key"));
    }
    key = slot.get();
  }
  auto req = unsigned_request(key, cn, dns_san);
  return signed_by_openssl(req.get(), key);
}

std::string csr_good_ed25519(const std::string& cn, bool dns_san) {
  UniquePtr<EVP_PKEY> key(must(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"), "generate an Ed25519 key"));
  auto req = unsigned_request(key.get(), cn, dns_san);
  must(X509_REQ_sign(req.get(), key.get(), nullptr) > 0, "sign with Ed25519");
  unsigned char* der = nullptr;
  int len = i2d_X509_REQ(req.get(), &der);
  must(len > 0, "encode the request");
  std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  return der_to_pem(out);
}

std::string csr_ec_point_at_infinity(const std::string& cn, bool dns_san) {
  // The key: P-256 with the one-byte encoding of ∞, which OpenSSL loads without complaint.
  UniquePtr<EVP_PKEY_CTX> kctx(must(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr), "create an EC context"));
  unsigned char infinity[] = {0x00};
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, const_cast<char*>("prime256v1"), 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, infinity, sizeof infinity),
      OSSL_PARAM_construct_end()};
  EVP_PKEY* raw = nullptr;
  must(EVP_PKEY_fromdata_init(kctx.get()) == 1 && EVP_PKEY_fromdata(kctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params) == 1,
       "build a P-256 key at infinity");
  UniquePtr<EVP_PKEY> key(raw);
  auto req = unsigned_request(key.get(), cn, dns_san);
  std::string info = to_be_signed(req.get());

  // The signature: R = kG, r = x(R) mod n, s = e·k⁻¹ mod n. Verification computes
  // u1·G + u2·Q = e·s⁻¹·G + r·s⁻¹·∞ = kG, whose x is r.
  EcGroup group(must(EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1), "load P-256"));
  const BIGNUM* order = EC_GROUP_get0_order(group.get());
  BnCtx ctx(must(BN_CTX_new(), "allocate a BN_CTX"));
  auto digest = sha256(info);
  UniquePtr<BIGNUM> e(must(BN_bin2bn(digest.data(), static_cast<int>(digest.size()), nullptr), "read the digest"));
  auto k = bn_new(), kinv = bn_new(), x = bn_new(), r = bn_new(), s = bn_new();
  EcPoint big_r(must(EC_POINT_new(group.get()), "allocate a point"));
  do {
    must(BN_priv_rand_range(k.get(), order) == 1, "pick k");
    if (BN_is_zero(k.get())) continue;
    must(EC_POINT_mul(group.get(), big_r.get(), k.get(), nullptr, nullptr, ctx.get()) == 1 &&
             EC_POINT_get_affine_coordinates(group.get(), big_r.get(), x.get(), nullptr, ctx.get()) == 1 &&
             BN_nnmod(r.get(), x.get(), order, ctx.get()) == 1 &&
             BN_mod_inverse(kinv.get(), k.get(), order, ctx.get()) != nullptr &&
             BN_mod_mul(s.get(), e.get(), kinv.get(), order, ctx.get()) == 1,
         "compute the ECDSA signature");
  } while (BN_is_zero(k.get()) || BN_is_zero(r.get()) || BN_is_zero(s.get()));
  EcdsaSig sig(must(ECDSA_SIG_new(), "allocate an ECDSA_SIG"));
  BIGNUM* r_owned = BN_dup(r.get());
  BIGNUM* s_owned = BN_dup(s.get());
  if (!r_owned || !s_owned || ECDSA_SIG_set0(sig.get(), r_owned, s_owned) != 1) {
    BN_free(r_owned);
    BN_free(s_owned);
    die("fill the ECDSA_SIG");
  }
  unsigned char* sig_der = nullptr;
  int sig_len = i2d_ECDSA_SIG(sig.get(), &sig_der);
  must(sig_len > 0, "encode the ECDSA signature");
  std::string signature(reinterpret_cast<char*>(sig_der), static_cast<std::size_t>(sig_len));
  OPENSSL_free(sig_der);
  return assemble(info, kEcdsaWithSha256, signature);
}

std::string csr_ec_explicit_parameters(const std::string& cn, bool dns_san) {
  UniquePtr<EVP_PKEY_CTX> ctx(must(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr), "create an EC context"));
  must(EVP_PKEY_keygen_init(ctx.get()) == 1 && EVP_PKEY_CTX_set_group_name(ctx.get(), "P-256") == 1 &&
           EVP_PKEY_CTX_set_ec_param_enc(ctx.get(), OPENSSL_EC_EXPLICIT_CURVE) == 1,
       "ask for explicit P-256 parameters");
  EVP_PKEY* raw = nullptr;
  must(EVP_PKEY_generate(ctx.get(), &raw) == 1, "generate an EC key with explicit parameters");
  UniquePtr<EVP_PKEY> key(raw);
  auto req = unsigned_request(key.get(), cn, dns_san);
  return signed_by_openssl(req.get(), key.get());
}

std::string csr_rsa_exponent_one(const std::string& cn, bool dns_san) {
  auto p = bn_hex(kPrime1024A), q = bn_hex(kPrime1024B), n = bn_new();
  BnCtx ctx(must(BN_CTX_new(), "allocate a BN_CTX"));
  must(BN_mul(n.get(), p.get(), q.get(), ctx.get()) == 1, "multiply the factors");
  auto one = bn_word(1);
  auto key = rsa_key(n.get(), one.get(), one.get());  // e·d = 1: signing is the identity
  auto req = unsigned_request(key.get(), cn, dns_san);
  return signed_by_openssl(req.get(), key.get());
}

std::string csr_rsa_huge_exponent_bad_signature(const std::string& cn) {
  auto p = bn_hex(kPrime1024A), q = bn_hex(kPrime1024B), n = bn_new(), e = bn_new();
  BnCtx ctx(must(BN_CTX_new(), "allocate a BN_CTX"));
  must(BN_mul(n.get(), p.get(), q.get(), ctx.get()) == 1, "multiply the factors");
  // 2^3070 + 1: odd, 3,071 bits.
  must(BN_set_bit(e.get(), 3070) == 1 && BN_set_bit(e.get(), 0) == 1, "make the exponent");
  auto one = bn_word(1);
  auto key = rsa_key(n.get(), e.get(), one.get());
  auto req = unsigned_request(key.get(), cn, true);
  return signed_by_openssl(req.get(), key.get());
}

std::string csr_rsa_even_modulus(const std::string& cn, bool dns_san) {
  auto p = bn_hex(kPrime2047), two = bn_word(2);
  auto key = rsa_key_from_factors(p.get(), two.get(), false);
  auto req = unsigned_request(key.get(), cn, dns_san);
  std::string info = to_be_signed(req.get());

  // EMSA-PKCS1-v1_5 with SHA-256 (RFC 8017 §9.2), then s = m^d mod n. BN_mod_exp falls back to
  // reciprocal arithmetic for an even modulus, where OpenSSL's RSA code insists on Montgomery.
  BIGNUM *n_raw = nullptr, *d_raw = nullptr;
  must(EVP_PKEY_get_bn_param(key.get(), OSSL_PKEY_PARAM_RSA_N, &n_raw) == 1 &&
           EVP_PKEY_get_bn_param(key.get(), OSSL_PKEY_PARAM_RSA_D, &d_raw) == 1,
       "read n and d");
  UniquePtr<BIGNUM> n(n_raw), d(d_raw);
  const int k = BN_num_bytes(n.get());
  static constexpr unsigned char kDigestInfo[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                                  0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
  auto digest = sha256(info);
  std::string em(static_cast<std::size_t>(k), '\xff');
  em[0] = '\x00';
  em[1] = '\x01';
  std::size_t tail = sizeof kDigestInfo + digest.size();
  em[em.size() - tail - 1] = '\x00';
  std::copy(std::begin(kDigestInfo), std::end(kDigestInfo), em.end() - static_cast<std::ptrdiff_t>(tail));
  std::copy(digest.begin(), digest.end(), em.end() - static_cast<std::ptrdiff_t>(digest.size()));
  BnCtx ctx(must(BN_CTX_new(), "allocate a BN_CTX"));
  UniquePtr<BIGNUM> m(must(BN_bin2bn(reinterpret_cast<const unsigned char*>(em.data()), k, nullptr), "read EM"));
  auto s = bn_new();
  must(BN_mod_exp(s.get(), m.get(), d.get(), n.get(), ctx.get()) == 1, "compute m^d mod n");
  return assemble(info, kSha256WithRsaNull, bn_bytes(s.get(), k));
}

std::string csr_rsa_small_factor(const std::string& cn, bool dns_san) {
  auto p = bn_hex(kPrime2047), three = bn_word(3);
  auto key = rsa_key_from_factors(p.get(), three.get(), false);
  auto req = unsigned_request(key.get(), cn, dns_san);
  return signed_by_openssl(req.get(), key.get());
}

std::string csr_rsa_close_primes(const std::string& cn, bool dns_san) {
  auto p = bn_hex(kPrime1024A);
  auto key = rsa_key_from_factors(p.get(), next_prime_after_1024a(), true);
  auto req = unsigned_request(key.get(), cn, dns_san);
  return signed_by_openssl(req.get(), key.get());
}

std::string csr_ecdsa_signed_labelled_rsa(const std::string& cn, bool dns_san) {
  return replace_signature_algorithm(csr_good_ec(cn, "P-256", dns_san), kSha256WithRsaNull);
}

std::string csr_rsa_signed_labelled_ecdsa(const std::string& cn, bool dns_san) {
  return replace_signature_algorithm(csr_good_rsa(cn, 2048, dns_san), kEcdsaWithSha256);
}

}  // namespace ca::testing
