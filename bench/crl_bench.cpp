// CRL generation at 10,000 / 100,000 / 1,000,000 revoked certificates: ca-server's CRL builder
// (ca::crypto::build_crl over the sorted in-memory index) against `openssl ca -gencrl` (an
// index.txt database), same revocations, same ECDSA P-256 CA key, one after the other.
//
//   build/bin/crl_bench [--sizes 10000,100000,1000000] [--verify-max 100000] [--keep] ...
//
// Every measurement runs in a fresh process (this binary re-executed, or openssl) and its peak
// RSS is the ru_maxrss that wait4 reports for it, so one size cannot inflate another. The driver
// itself stays small (it never holds the revocations): a child's ru_maxrss also counts the
// driver's resident size at fork time, which is printed as a floor.
//
// Every CRL is checked: parsed and verified with OpenSSL in a separate process, each entry
// compared with the revocations it should list (serial, time, reason, invalidity date); up to
// --verify-max also with `openssl crl -verify` and an entry count of `openssl crl -text`. A wrong
// CRL makes the bench exit 1. See docs/crl.md for figures and what they mean.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/child_process.hpp"
#include "core/config.hpp"
#include "core/openssl_owners.hpp"
#include "crypto/certificate_builder.hpp"
#include "crypto/crl_builder.hpp"
#include "crypto/issuer.hpp"
#include "crypto/keys.hpp"
#include "crypto/pem.hpp"

using namespace ca;
using crypto::CrlEntry;
namespace fs = std::filesystem;

namespace {

constexpr double kGoalFullSeconds = 2.0;    // issue 3: a full CRL of 1M entries in <= 2 s
constexpr double kGoalPeakMb = 150.0;       //          in <= 150 MB peak
constexpr double kGoalPlusOneSeconds = 1.0; //          one more revocation reflected in <= 1 s
constexpr std::size_t kGoalSize = 1'000'000;

// ---------------------------------------------------------------------------------------------
// The revocations: deterministic from (count, seed, now), so that every process regenerates the
// same set instead of passing a million entries around.

struct Revocation {
  CrlEntry entry;
  int64_t expires = 0;  // notAfter of the revoked certificate (index.txt only)
};

std::string hex_of(std::span<const uint8_t> bytes) {
  static const char digits[] = "0123456789ABCDEF";
  std::string s;
  s.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    s.push_back(digits[b >> 4]);
    s.push_back(digits[b & 15]);
  }
  return s;
}

class RevocationSource {
 public:
  RevocationSource(uint64_t seed, int64_t now) : rng_(seed), now_(now) {}

  // A revocation like a real CA's: 128-bit random serial (positive), revoked within the last
  // year, reasons mixed; keyCompromise revocations carry an invalidity date half of the time.
  Revocation next() {
    std::array<uint8_t, 16> serial{};
    for (std::size_t i = 0; i < serial.size(); i += 8) {
      uint64_t r = rng_();
      std::memcpy(serial.data() + i, &r, 8);
    }
    serial[0] &= 0x7f;
    int64_t revoked_at = now_ - static_cast<int64_t>(rng_() % (365 * 86400));
    int pick = static_cast<int>(rng_() % 100);
    int reason = pick < 30 ? 0 : pick < 45 ? 1 : pick < 47 ? 2 : pick < 62 ? 3 : pick < 87 ? 4 : 5;
    int64_t invalidity = 0;
    if (reason == 1 && rng_() % 2 == 0) invalidity = revoked_at - 86400 - static_cast<int64_t>(rng_() % (30 * 86400));
    auto entry = CrlEntry::from_hex(hex_of(serial), revoked_at, reason, invalidity);
    if (!entry) {
      std::fprintf(stderr, "crl_bench: CrlEntry::from_hex rejected a generated serial\n");
      std::exit(1);
    }
    return {*entry, revoked_at + 86400 * (30 + static_cast<int64_t>(rng_() % 700))};
  }

 private:
  std::mt19937_64 rng_;
  int64_t now_;
};

// Calls fn(revocation) for `count` revocations in generation (issuance) order, one at a time (no
// list of them is kept: the child that measures must not carry a generator's garbage), then
// returns the one revoked after them (the "+1").
template <typename Fn>
Revocation for_each_revocation(std::size_t count, uint64_t seed, int64_t now, Fn&& fn) {
  RevocationSource source(seed, now);
  for (std::size_t i = 0; i < count; ++i) fn(source.next());
  Revocation extra = source.next();
  extra.entry.revoked_at = now;  // revoked just now, key compromised yesterday
  extra.entry.reason = 1;
  extra.entry.invalidity_date = now - 86400;
  return extra;
}

// ---------------------------------------------------------------------------------------------
// Small helpers.

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "crl_bench: %s\n", what.c_str());
  std::exit(1);
}

template <typename T>
T must(Result<T> r, std::string_view what) {
  if (!r) die(fmt::format("{}: {}", what, r.error().message));
  return std::move(*r);
}
void must(Status s, std::string_view what) {
  if (!s) die(fmt::format("{}: {}", what, s.error().message));
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// A kB figure of this process from /proc/self/status: "VmRSS:" (now) or "VmHWM:" (peak so far).
long proc_status_kb(std::string_view field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field, 0) == 0) return std::strtol(line.c_str() + field.size(), nullptr, 10);
  return 0;
}

double mb(double bytes) { return bytes / 1e6; }

std::string utc_time(int64_t secs, const char* format) {
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, format, &tm);
  return buf;
}

void write_bytes(const fs::path& path, std::span<const uint8_t> bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) die("cannot write " + path.string());
}

std::vector<uint8_t> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) die("cannot read " + path.string());
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

// "key value" lines written by a child, read by the driver.
std::map<std::string, std::string> read_results(const fs::path& path) {
  std::map<std::string, std::string> out;
  std::ifstream in(path);
  std::string key, value;
  while (in >> key >> value) out[key] = value;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Child processes, measured with wait4. A SIGINT/SIGTERM is passed on to the running child; the
// driver then removes its folder and exits.

volatile sig_atomic_t g_signal = 0;
volatile pid_t g_child = -1;

void on_signal(int sig) {
  g_signal = sig;
  if (g_child > 0) kill(g_child, SIGTERM);
}

struct Measured {
  int status = -1;  // wait status
  double seconds = 0;
  double cpu_seconds = 0;  // user + system
  long max_rss_kb = 0;
  bool ok() const { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }
};

Measured run_measured(const std::vector<std::string>& argv, const fs::path& log) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  auto started = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid < 0) die(fmt::format("fork: {}", std::strerror(errno)));
  if (pid == 0) {
    FILE* f = std::fopen(log.c_str(), "a");
    if (f) {
      dup2(fileno(f), STDOUT_FILENO);
      dup2(fileno(f), STDERR_FILENO);
    }
    execv(args[0], args.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
    _exit(127);
  }
  g_child = pid;
  Measured m;
  struct rusage ru{};
  while (wait4(pid, &m.status, 0, &ru) < 0) {
    if (errno != EINTR) die(fmt::format("wait4: {}", std::strerror(errno)));
  }
  g_child = -1;
  if (g_signal) {
    std::fprintf(stderr, "crl_bench: interrupted\n");
    std::exit(128 + g_signal);  // the atexit hook removes the folder
  }
  m.seconds = seconds_since(started);
  m.max_rss_kb = ru.ru_maxrss;
  auto secs = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6; };
  m.cpu_seconds = secs(ru.ru_utime) + secs(ru.ru_stime);
  return m;
}

std::string tail_of(const fs::path& log) {
  std::ifstream in(log);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  return text.size() > 2000 ? text.substr(text.size() - 2000) : text;
}

// /bin/sh -c COMMAND; output captured (keep it short: pipe big output through grep/wc).
CommandResult shell(const std::string& command) {
  return must(run_command({"/bin/sh", "-c", command}), "run " + command);
}

std::string quote(const fs::path& p) {
  std::string s = "'";
  for (char c : p.string()) s += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return s + "'";
}

// ---------------------------------------------------------------------------------------------
// Child: our side. Loads the CA, builds the index as RevokedIndex::load does (push_back, sort,
// unique), then times build_crl over it, then one more revocation inserted as
// RevokedIndex::apply does (lower_bound + insert) and the CRL built again, while the first CRL
// is still held (the server keeps serving the previous CRL while it builds the next).

int child_ours(std::size_t count, uint64_t seed, int64_t now, const fs::path& dir) {
  auto issuer = must(crypto::Issuer::open(dir / "ca.pem", (dir / "ca.key").string()), "load ca.pem and ca.key");
  // As RevokedIndex::load: entries streamed in (push_back), then sorted and deduplicated.
  std::vector<CrlEntry> index;
  Revocation extra = for_each_revocation(count, seed, now, [&](const Revocation& r) { index.push_back(r.entry); });
  std::sort(index.begin(), index.end());
  index.erase(std::unique(index.begin(), index.end(), [](const CrlEntry& a, const CrlEntry& b) { return a.same_serial(b); }),
              index.end());
  long rss_index_kb = proc_status_kb("VmRSS:");

  auto this_update = std::chrono::system_clock::from_time_t(static_cast<std::time_t>(now));
  crypto::CrlParams params{1, std::nullopt, this_update, this_update + std::chrono::hours(24)};
  auto started = std::chrono::steady_clock::now();
  auto full = must(crypto::build_crl(issuer, params, index), "build_crl");
  double full_s = seconds_since(started);
  long hwm_full_kb = proc_status_kb("VmHWM:");

  started = std::chrono::steady_clock::now();
  auto at = std::lower_bound(index.begin(), index.end(), extra.entry);
  if (at != index.end() && at->same_serial(extra.entry)) die("the extra revocation is already in the index");
  index.insert(at, extra.entry);
  params.crl_number = 2;
  auto next = must(crypto::build_crl(issuer, params, index), "build_crl (+1)");
  double plus_one_s = seconds_since(started);

  write_bytes(dir / "ours.der", full);
  write_bytes(dir / "ours-plus1.der", next);
  std::ofstream out(dir / "ours.result");
  out << "full_s " << fmt::format("{:.6f}", full_s) << "\nplus1_s " << fmt::format("{:.6f}", plus_one_s)
      << "\nentries " << index.size() - 1 << "\nder_bytes " << full.size() << "\nplus1_der_bytes " << next.size()
      << "\nindex_bytes " << index.capacity() * sizeof(CrlEntry) << "\nrss_index_kb " << rss_index_kb << "\nhwm_full_kb " << hwm_full_kb << "\n";
  return out ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------
// Child: the peer's database. index.txt in issuance order (random serials: what a real CA's
// index.txt looks like; openssl sorts the CRL itself), or in serial order with --sorted-index
// (what sequential serials give; openssl is about twice as fast on it). The line of the extra
// revocation goes to index-extra.txt.

std::string index_line(const Revocation& r, std::size_t n) {
  const CrlEntry& e = r.entry;
  std::string revinfo = utc_time(e.revoked_at, "%y%m%d%H%M%SZ");
  static const char* names[] = {"", "keyCompromise", "CACompromise", "affiliationChanged", "superseded",
                                "cessationOfOperation"};
  if (e.reason == 1 && e.invalidity_date != 0) {
    // openssl ca: "keyTime,<GeneralizedTime>" = keyCompromise with an invalidity date.
    revinfo += ",keyTime," + utc_time(e.invalidity_date, "%Y%m%d%H%M%SZ");
  } else if (e.reason != 0) {
    revinfo += std::string(",") + names[e.reason];
  }
  return fmt::format("R\t{}\t{}\t{}\tunknown\t/CN=revoked-{}.bench.example\n", utc_time(r.expires, "%y%m%d%H%M%SZ"),
                     revinfo, hex_of(e.serial_bytes()), n);
}

int child_index(std::size_t count, uint64_t seed, int64_t now, const fs::path& dir, bool sorted) {
  std::ofstream out(dir / "index.txt", std::ios::trunc);
  std::size_t line = 0;
  std::vector<std::pair<CrlEntry, std::string>> lines;
  Revocation extra = for_each_revocation(count, seed, now, [&](const Revocation& r) {
    if (sorted)
      lines.emplace_back(r.entry, index_line(r, ++line));
    else
      out << index_line(r, ++line);
  });
  std::sort(lines.begin(), lines.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& l : lines) out << l.second;
  out.close();
  std::ofstream extra_out(dir / "index-extra.txt", std::ios::trunc);
  extra_out << index_line(extra, count + 1);
  return out && extra_out ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------
// Child: check one CRL. Signature (CA key), count, and every entry against what it should say.

int64_t asn1_seconds(const ASN1_TIME* t) {
  std::tm tm{};
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return -1;
  return static_cast<int64_t>(timegm(&tm));
}

int child_check(const fs::path& der_path, std::size_t count, bool plus_one, uint64_t seed, int64_t now, const fs::path& ca_path) {
  auto ca = must(crypto::load_certificate_file(ca_path), "load ca.pem");
  auto der = read_bytes(der_path);
  const unsigned char* p = der.data();
  ossl::UniquePtr<X509_CRL> crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size())));
  auto bad = [&](const std::string& why) {
    std::fprintf(stderr, "%s: %s\n", der_path.c_str(), why.c_str());
    return 1;
  };
  if (!crl || p != der.data() + der.size()) return bad("not one DER CRL");
  if (X509_CRL_verify(crl.get(), X509_get0_pubkey(ca.get())) != 1) return bad("signature does not verify with the CA key");
  if (X509_NAME_cmp(X509_CRL_get_issuer(crl.get()), X509_get_subject_name(ca.get())) != 0) return bad("issuer is not the CA");

  std::vector<CrlEntry> expected;
  expected.reserve(count + 1);
  Revocation extra = for_each_revocation(count, seed, now, [&](const Revocation& r) { expected.push_back(r.entry); });
  if (plus_one) expected.push_back(extra.entry);
  std::sort(expected.begin(), expected.end());

  STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(crl.get());
  std::size_t listed = revoked ? static_cast<std::size_t>(sk_X509_REVOKED_num(revoked)) : 0;
  if (listed != expected.size()) return bad(fmt::format("{} entries, expected {}", listed, expected.size()));
  std::optional<CrlEntry> previous;
  for (std::size_t i = 0; i < listed; ++i) {
    X509_REVOKED* rev = sk_X509_REVOKED_value(revoked, static_cast<int>(i));
    ossl::UniquePtr<BIGNUM> bn(ASN1_INTEGER_to_BN(X509_REVOKED_get0_serialNumber(rev), nullptr));
    char* hex = bn ? BN_bn2hex(bn.get()) : nullptr;
    auto got = CrlEntry::from_hex(hex ? hex : "", 0, 0);
    OPENSSL_free(hex);
    if (!got) return bad(fmt::format("entry {}: unreadable serial", i));
    if (previous && !(*previous < *got)) return bad(fmt::format("entry {}: serials not in ascending order", i));
    previous = got;
    auto it = std::lower_bound(expected.begin(), expected.end(), *got);
    if (it == expected.end() || !it->same_serial(*got)) return bad(fmt::format("entry {}: serial not revoked", i));
    if (asn1_seconds(X509_REVOKED_get0_revocationDate(rev)) != it->revoked_at)
      return bad(fmt::format("entry {}: wrong revocation date", i));
    int crit = 0;
    ossl::UniquePtr<ASN1_STRING> reason(
        static_cast<ASN1_STRING*>(X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, &crit, nullptr)));
    int got_reason = reason ? static_cast<int>(ASN1_ENUMERATED_get(reason.get())) : 0;
    if (got_reason != it->reason) return bad(fmt::format("entry {}: reason {}, expected {}", i, got_reason, it->reason));
    ossl::UniquePtr<ASN1_STRING> invalidity(
        static_cast<ASN1_STRING*>(X509_REVOKED_get_ext_d2i(rev, NID_invalidity_date, &crit, nullptr)));
    int64_t got_invalidity = invalidity ? asn1_seconds(invalidity.get()) : 0;
    if (got_invalidity != it->invalidity_date) return bad(fmt::format("entry {}: wrong invalidity date", i));
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// The driver.

struct Options {
  std::vector<std::size_t> sizes{10'000, 100'000, 1'000'000};
  std::size_t verify_max = 100'000;
  std::string openssl = "/usr/bin/openssl";
  bool skip_openssl = false;
  bool sorted_index = false;
  bool keep = false;
  int repeat = 1;
  uint64_t seed = 20260101;
};

void usage(FILE* to) {
  std::fprintf(to, R"(usage: crl_bench [options] [N ...]

Full CRL generation with N revoked certificates (128-bit random serials, mixed reasons, some
invalidity dates, ECDSA P-256 CA): ca-server's builder (ca::crypto::build_crl over the sorted
in-memory index) against `openssl ca -gencrl` (index.txt), then the next CRL after one more
revocation. Each measurement runs in its own process; peak RSS is its ru_maxrss (wait4).
MB = 10^6 bytes.

Options:
  --sizes N,N,...     revoked certificates per run (default 10000,100000,1000000); N ... also works
  --verify-max N      also check with `openssl crl -verify` and count `openssl crl -text` entries
                      for sizes up to N (default 100000; every CRL is always parsed, verified and
                      compared entry by entry in a separate process)
  --openssl PATH      the openssl binary (default /usr/bin/openssl)
  --skip-openssl      only our builder
  --sorted-index      write openssl's index.txt in serial order (default: issuance order, i.e.
                      random serial order, as a real CA with random serials has it)
  --repeat R          R fresh processes per measurement; the table shows medians (default 1)
  --seed S            revocations are generated from this seed (default 20260101)
  --keep              keep the temporary folder and print its path
  -h, --help          this help

Exit status: 0 done (goals met or not: see the output), 1 a CRL was wrong or a step failed,
2 usage error.
)");
}

std::optional<std::size_t> parse_count(std::string_view text) {
  std::string s;
  for (char c : text)
    if (c != '_' && c != '\'') s += c;  // 1_000_000
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 10) return std::nullopt;
  auto v = std::stoull(s);
  if (v == 0) return std::nullopt;
  return static_cast<std::size_t>(v);
}

Options parse_options(int argc, char** argv) {
  Options o;
  bool sizes_given = false;
  auto usage_error = [](const std::string& what) {
    std::fprintf(stderr, "crl_bench: %s\n", what.c_str());
    usage(stderr);
    std::exit(2);
  };
  auto add_sizes = [&](std::string_view list) {
    if (!sizes_given) o.sizes.clear();
    sizes_given = true;
    std::size_t pos = 0;
    while (pos <= list.size()) {
      auto comma = std::min(list.find(',', pos), list.size());
      auto n = parse_count(list.substr(pos, comma - pos));
      if (!n) usage_error(fmt::format("'{}' is not a positive count", list.substr(pos, comma - pos)));
      o.sizes.push_back(*n);
      pos = comma + 1;
    }
  };
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&]() -> std::string_view {
      if (i + 1 >= argc) usage_error(fmt::format("{} needs a value", a));
      return argv[++i];
    };
    if (a == "-h" || a == "--help") {
      usage(stdout);
      std::exit(0);
    } else if (a == "--sizes") {
      add_sizes(value());
    } else if (a == "--verify-max") {
      auto v = value();
      auto n = parse_count(v);
      if (!n && v != "0") usage_error("--verify-max needs a count");
      o.verify_max = n.value_or(0);
    } else if (a == "--openssl") {
      o.openssl = value();
    } else if (a == "--skip-openssl") {
      o.skip_openssl = true;
    } else if (a == "--sorted-index") {
      o.sorted_index = true;
    } else if (a == "--repeat") {
      auto n = parse_count(value());
      if (!n || *n > 100) usage_error("--repeat needs a count from 1 to 100");
      o.repeat = static_cast<int>(*n);
    } else if (a == "--seed") {
      auto n = parse_count(value());
      if (!n) usage_error("--seed needs a positive number");
      o.seed = *n;
    } else if (a == "--keep") {
      o.keep = true;
    } else if (!a.empty() && a[0] != '-') {
      add_sizes(a);
    } else {
      usage_error(fmt::format("unknown option '{}'", a));
    }
  }
  return o;
}

// The CA: ECDSA P-256, self-signed, with a subjectKeyIdentifier (the CRLs carry the matching
// authorityKeyIdentifier), made with the same code ca-server's init uses.
void make_ca(const fs::path& dir) {
  auto key = must(crypto::generate_key(KeyType::ec_p256), "generate the CA key");
  auto name = must(crypto::parse_name("CN=CRL Bench CA,O=Example"), "CA name");
  crypto::CertificateSpec spec;
  spec.serial_hex = "01";
  spec.subject = name.get();
  spec.public_key = key.get();
  spec.not_before = std::chrono::system_clock::now() - std::chrono::hours(1);
  spec.not_after = spec.not_before + std::chrono::hours(24 * 3650);
  spec.is_ca = true;
  spec.key_usage = {"keyCertSign", "cRLSign"};
  auto cert = must(crypto::sign_certificate(spec, nullptr, key.get()), "sign the CA certificate");
  must(crypto::write_certificate_file(dir / "ca.pem", cert.get()), "write ca.pem");
  must(crypto::write_private_key_file(dir / "ca.key", key.get()), "write ca.key");
}

// openssl ca's configuration for -gencrl over DATABASE (index.txt or index-plus1.txt): the CRL
// gets the same extensions as ours (authorityKeyIdentifier, cRLNumber) and is valid for a day.
// unique_subject = no spares openssl a subject index it does not need for a CRL.
void write_openssl_config(const fs::path& dir, const std::string& config, const std::string& database) {
  std::ofstream cfg(dir / config, std::ios::trunc);
  cfg << "[ ca ]\ndefault_ca = bench\n\n[ bench ]\n"
      << "database = " << (dir / database).string() << "\n"
      << "crlnumber = " << (dir / "crlnumber").string() << "\n"
      << "certificate = " << (dir / "ca.pem").string() << "\n"
      << "private_key = " << (dir / "ca.key").string() << "\n"
      << "default_md = sha256\ndefault_crl_days = 1\nunique_subject = no\ncrl_extensions = crl_ext\n\n"
      << "[ crl_ext ]\nauthorityKeyIdentifier = keyid:always\n";
  std::ofstream(dir / (database + ".attr"), std::ios::trunc) << "unique_subject = no\n";
  if (!cfg) die("cannot write " + (dir / config).string());
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

struct Row {
  std::size_t n = 0;
  double ours_full_s = 0, ours_plus1_s = 0;
  double ours_peak_mb = 0, ours_index_mb = 0, ours_rss_before_mb = 0, ours_hwm_full_mb = 0;
  double ours_der_mb = 0;
  bool peer = false;
  double peer_cpu_s = 0;
  double peer_full_s = 0, peer_plus1_s = 0, peer_peak_mb = 0, peer_der_mb = 0;
};

class Driver {
 public:
  Driver(Options o, fs::path self, fs::path work) : o_(std::move(o)), self_(std::move(self)), work_(std::move(work)) {}

  bool run() {
    now_ = static_cast<int64_t>(std::time(nullptr));
    make_ca(work_);
    driver_rss_kb_ = proc_status_kb("VmRSS:");
    for (std::size_t n : o_.sizes) {
      if (g_signal) return false;
      rows_.push_back(run_size(n));
    }
    return !g_signal;
  }

  void report() const {
    std::printf("\nCRL generation, ECDSA P-256 CA, 128-bit random serials, mixed reasons; %ld cores; MB = 10^6 bytes%s\n",
                sysconf(_SC_NPROCESSORS_ONLN), o_.repeat > 1 ? fmt::format("; medians of {} runs", o_.repeat).c_str() : "");
    std::printf("(driver RSS %.1f MB at fork time: a floor under every peak below; load average before: %s)\n\n",
                driver_rss_kb_ * 1024 / 1e6, load_before_.c_str());
    std::printf("| revoked | ours: full CRL s | ours: peak RSS MB | ours: +1 revocation s | openssl ca -gencrl s | "
                "openssl peak RSS MB | openssl +1 s | DER MB ours/openssl |\n");
    std::printf("|---|---|---|---|---|---|---|---|\n");
    for (const auto& r : rows_) {
      std::string na = "n/a";
      std::printf("| %s | %.3f | %.1f | %.3f | %s | %s | %s | %s |\n", group(r.n).c_str(), r.ours_full_s, r.ours_peak_mb,
                  r.ours_plus1_s, r.peer ? fmt::format("{:.3f}", r.peer_full_s).c_str() : na.c_str(),
                  r.peer ? fmt::format("{:.1f}", r.peer_peak_mb).c_str() : na.c_str(),
                  r.peer ? fmt::format("{:.3f}", r.peer_plus1_s).c_str() : na.c_str(),
                  r.peer ? fmt::format("{:.2f} / {:.2f}", r.ours_der_mb, r.peer_der_mb).c_str()
                         : fmt::format("{:.2f} / n/a", r.ours_der_mb).c_str());
    }
    std::printf("\nours: build_crl time over the sorted index (the server keeps it in memory). Peak RSS = ru_maxrss of\n"
                "the whole child: index loaded, full CRL, one more entry inserted, next CRL built while the first\n"
                "is still held (the server keeps serving the previous CRL while it builds the next). Breakdown:\n");
    for (const auto& r : rows_)
      std::printf("- %s: index %.1f MB; RSS %.1f MB with the index loaded; peak %.1f MB after the full CRL; "
                  "peak %.1f MB after the +1 CRL\n",
                  group(r.n).c_str(), r.ours_index_mb, r.ours_rss_before_mb, r.ours_hwm_full_mb, r.ours_peak_mb);
    std::printf("openssl: wall time of the whole `openssl ca -gencrl` process (reads index.txt, signs, writes PEM),\n"
                "index.txt in %s order; +1 = the same over index.txt plus one line; peak RSS = the larger of the\n"
                "two runs. CPU time (user + system) of the full run:",
                o_.sorted_index ? "serial" : "issuance (random serial)");
    for (const auto& r : rows_)
      if (r.peer) std::printf(" %s: %.2f s;", group(r.n).c_str(), r.peer_cpu_s);
    std::printf("\n");
    if (std::any_of(rows_.begin(), rows_.end(), [](const Row& r) { return r.peer; })) {
      std::printf("speed-up ours vs openssl (full CRL):");
      for (const auto& r : rows_)
        if (r.peer && r.ours_full_s > 0) std::printf(" %s: %.1fx;", group(r.n).c_str(), r.peer_full_s / r.ours_full_s);
      std::printf("\n");
    }

    std::printf("\nGoals (issue 3): %s entries in <= %.0f s and <= %.0f MB peak; one more revocation in <= %.0f s\n",
                group(kGoalSize).c_str(), kGoalFullSeconds, kGoalPeakMb, kGoalPlusOneSeconds);
    auto goal = std::find_if(rows_.begin(), rows_.end(), [](const Row& r) { return r.n == kGoalSize; });
    if (goal == rows_.end()) {
      std::printf("- not evaluated: %s was not among the sizes run\n", group(kGoalSize).c_str());
    } else {
      auto verdict = [](bool met) { return met ? "MET" : "MISSED"; };
      std::printf("- full CRL: %.3f s (goal %.0f s): %s\n", goal->ours_full_s, kGoalFullSeconds,
                  verdict(goal->ours_full_s <= kGoalFullSeconds));
      std::printf("- peak RSS up to the full CRL: %.1f MB (goal %.0f MB): %s\n", goal->ours_hwm_full_mb, kGoalPeakMb,
                  verdict(goal->ours_hwm_full_mb <= kGoalPeakMb));
      std::printf("- peak RSS with the next CRL built while the first is held: %.1f MB (goal %.0f MB): %s\n",
                  goal->ours_peak_mb, kGoalPeakMb, verdict(goal->ours_peak_mb <= kGoalPeakMb));
      std::printf("- +1 revocation: %.3f s to the next signed CRL (goal %.0f s): %s\n", goal->ours_plus1_s,
                  kGoalPlusOneSeconds, verdict(goal->ours_plus1_s <= kGoalPlusOneSeconds));
      std::printf("  (in ca-server a revocation first waits crl.debounce_ms, 2000 ms by default, before the build starts)\n");
    }
    std::printf("\nChecks: every CRL parsed, signature verified, each entry compared (serial, date, reason, invalidity)%s\n",
                o_.verify_max ? fmt::format("; `openssl crl -verify` + entry count for sizes <= {}", group(o_.verify_max)).c_str() : "");
    std::fflush(stdout);
  }

  const fs::path& work() const { return work_; }
  void set_load_before(std::string s) { load_before_ = std::move(s); }

 private:
  static std::string group(std::size_t n) {
    std::string digits = std::to_string(n), s;
    for (std::size_t i = 0; i < digits.size(); ++i) {
      if (i > 0 && (digits.size() - i) % 3 == 0) s += ',';
      s += digits[i];
    }
    return s;
  }

  std::vector<std::string> child_args(const std::string& mode, std::size_t n, const fs::path& dir) const {
    return {self_.string(), mode, std::to_string(n), std::to_string(o_.seed), std::to_string(now_), dir.string()};
  }

  void check(const fs::path& der, std::size_t n, bool plus_one, const fs::path& dir) {
    auto log = dir / "check.log";
    auto m = run_measured({self_.string(), "--child-check", der.string(), std::to_string(n), plus_one ? "1" : "0",
                           std::to_string(o_.seed), std::to_string(now_), (work_ / "ca.pem").string()},
                          log);
    if (!m.ok()) die(fmt::format("WRONG CRL {}:\n{}", der.string(), tail_of(log)));
  }

  // `openssl crl -verify` and the number of entries `openssl crl -text` lists.
  void check_with_cli(const fs::path& der, std::size_t expected) {
    auto verify = shell(fmt::format("{} crl -inform DER -in {} -CAfile {} -noout -verify 2>&1", o_.openssl, quote(der),
                                    quote(work_ / "ca.pem")));
    if (verify.exit_code != 0 || verify.output.find("verify OK") == std::string::npos)
      die(fmt::format("WRONG CRL {}: openssl crl -verify said: {}", der.string(), verify.output));
    auto count = shell(fmt::format("{} crl -inform DER -in {} -noout -text | grep -c 'Serial Number'", o_.openssl, quote(der)));
    auto listed = parse_count(std::string_view(count.output).substr(0, count.output.find_first_of("\r\n")));
    if (!listed || *listed != expected)
      die(fmt::format("WRONG CRL {}: openssl crl -text lists {} entries, expected {}", der.string(), count.output, expected));
  }

  Row run_size(std::size_t n) {
    Row row;
    row.n = n;
    fs::path dir = work_ / std::to_string(n);
    fs::create_directories(dir);
    fs::copy_file(work_ / "ca.pem", dir / "ca.pem");
    fs::copy_file(work_ / "ca.key", dir / "ca.key");
    const double kb_to_mb = 1024 / 1e6;

    // Our side, `repeat` fresh processes; figures are medians. The CRLs of the first are checked.
    std::vector<double> full_s, plus1_s, peak_mb, hwm_mb, before_mb;
    for (int i = 0; i < o_.repeat; ++i) {
      if (g_signal) return row;
      std::fprintf(stderr, "==> %s revoked: our builder (run %d/%d)\n", group(n).c_str(), i + 1, o_.repeat);
      auto ours = run_measured(child_args("--child-ours", n, dir), dir / "ours.log");
      if (!ours.ok()) die(fmt::format("our builder failed at {}:\n{}", n, tail_of(dir / "ours.log")));
      auto r = read_results(dir / "ours.result");
      if (std::stoull(r.at("entries")) != n) die(fmt::format("our index holds {} entries, not {}", r.at("entries"), n));
      full_s.push_back(std::stod(r.at("full_s")));
      plus1_s.push_back(std::stod(r.at("plus1_s")));
      peak_mb.push_back(ours.max_rss_kb * kb_to_mb);
      hwm_mb.push_back(std::stod(r.at("hwm_full_kb")) * kb_to_mb);
      before_mb.push_back(std::stod(r.at("rss_index_kb")) * kb_to_mb);
      row.ours_der_mb = mb(std::stod(r.at("der_bytes")));
      row.ours_index_mb = mb(std::stod(r.at("index_bytes")));
      if (i == 0) {
        std::fprintf(stderr, "==> %s revoked: checking our CRLs\n", group(n).c_str());
        check(dir / "ours.der", n, false, dir);
        check(dir / "ours-plus1.der", n, true, dir);
        if (n <= o_.verify_max) {
          check_with_cli(dir / "ours.der", n);
          check_with_cli(dir / "ours-plus1.der", n + 1);
        }
      }
    }
    row.ours_full_s = median(full_s);
    row.ours_plus1_s = median(plus1_s);
    row.ours_peak_mb = median(peak_mb);
    row.ours_hwm_full_mb = median(hwm_mb);
    row.ours_rss_before_mb = median(before_mb);
    if (o_.skip_openssl) return cleanup_size(dir, row);

    // The peer: index.txt, and index-plus1.txt = the same plus the line of one more revocation.
    std::fprintf(stderr, "==> %s revoked: writing index.txt\n", group(n).c_str());
    auto index_args = child_args("--child-index", n, dir);
    if (o_.sorted_index) index_args.push_back("sorted");
    auto index = run_measured(index_args, dir / "index.log");
    if (!index.ok()) die(fmt::format("writing index.txt failed:\n{}", tail_of(dir / "index.log")));
    fs::copy_file(dir / "index.txt", dir / "index-plus1.txt");
    {
      std::ofstream out(dir / "index-plus1.txt", std::ios::app);
      std::ifstream in(dir / "index-extra.txt");
      out << in.rdbuf();
      if (!out) die("cannot write index-plus1.txt");
    }
    write_openssl_config(dir, "openssl.cnf", "index.txt");
    write_openssl_config(dir, "openssl-plus1.cnf", "index-plus1.txt");
    std::ofstream(dir / "crlnumber", std::ios::trunc) << "01\n";
    auto gencrl = [&](const std::string& name) {
      auto m = run_measured({o_.openssl, "ca", "-gencrl", "-config", (dir / (name + ".cnf")).string(), "-out",
                             (dir / (name + ".pem")).string()},
                            dir / "openssl.log");
      if (!m.ok()) die(fmt::format("openssl ca -gencrl ({}) failed:\n{}", name, tail_of(dir / "openssl.log")));
      return m;
    };
    std::vector<double> peer_s, peer_plus1_s, peer_peak_mb, peer_cpu_s;
    for (int i = 0; i < o_.repeat; ++i) {
      if (g_signal) return row;
      std::fprintf(stderr, "==> %s revoked: openssl ca -gencrl (run %d/%d)\n", group(n).c_str(), i + 1, o_.repeat);
      auto full = gencrl("openssl");
      auto next = gencrl("openssl-plus1");
      peer_s.push_back(full.seconds);
      peer_cpu_s.push_back(full.cpu_seconds);
      peer_plus1_s.push_back(next.seconds);
      peer_peak_mb.push_back(std::max(full.max_rss_kb, next.max_rss_kb) * kb_to_mb);
    }
    for (const char* name : {"openssl", "openssl-plus1"}) {
      auto conv = shell(fmt::format("{} crl -in {} -outform DER -out {} 2>&1", o_.openssl, quote(dir / (std::string(name) + ".pem")),
                                    quote(dir / (std::string(name) + ".der"))));
      if (conv.exit_code != 0) die("openssl crl -outform DER failed: " + conv.output);
    }
    std::fprintf(stderr, "==> %s revoked: checking openssl's CRLs\n", group(n).c_str());
    check(dir / "openssl.der", n, false, dir);
    check(dir / "openssl-plus1.der", n, true, dir);
    row.peer = true;
    row.peer_full_s = median(peer_s);
    row.peer_cpu_s = median(peer_cpu_s);
    row.peer_plus1_s = median(peer_plus1_s);
    row.peer_peak_mb = median(peer_peak_mb);
    row.peer_der_mb = mb(static_cast<double>(fs::file_size(dir / "openssl.der")));
    return cleanup_size(dir, row);
  }

  // Frees the disk between sizes (at 1M: two index files and four CRLs, about 450 MB).
  Row cleanup_size(const fs::path& dir, Row row) const {
    if (o_.keep) return row;
    std::error_code ignored;
    for (const auto& e : fs::directory_iterator(dir)) {
      auto ext = e.path().extension();
      if (ext == ".pem" || ext == ".der" || ext == ".txt") fs::remove(e.path(), ignored);
    }
    return row;
  }

  Options o_;
  fs::path self_, work_;
  int64_t now_ = 0;
  long driver_rss_kb_ = 0;
  std::string load_before_;
  std::vector<Row> rows_;
};

int child_main(int argc, char** argv) {
  std::string_view mode = argv[1];
  auto arg = [&](int i) -> std::string {
    if (i >= argc) die(fmt::format("{}: missing argument {}", mode, i));
    return argv[i];
  };
  if (mode == "--child-check")
    return child_check(arg(2), std::stoull(arg(3)), arg(4) == "1", std::stoull(arg(5)), std::stoll(arg(6)), arg(7));
  std::size_t n = std::stoull(arg(2));
  uint64_t seed = std::stoull(arg(3));
  int64_t now = std::stoll(arg(4));
  fs::path dir = arg(5);
  if (mode == "--child-ours") return child_ours(n, seed, now, dir);
  if (mode == "--child-index") return child_index(n, seed, now, dir, argc > 6 && std::string_view(argv[6]) == "sorted");
  die(fmt::format("unknown child mode {}", mode));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string_view(argv[1]).rfind("--child-", 0) == 0) return child_main(argc, argv);
  Options options = parse_options(argc, argv);
  if (!options.skip_openssl && access(options.openssl.c_str(), X_OK) != 0)
    die(fmt::format("{} is not executable (--openssl PATH, or --skip-openssl)", options.openssl));
  // Children re-execute this very file through /proc/self/exe, not its path: a rebuild that
  // replaces build/bin/crl_bench while the bench runs must not change (or break) its children.
  const fs::path self = "/proc/self/exe";
  if (access(self.c_str(), X_OK) != 0) die("cannot execute /proc/self/exe");

  std::string load_before;
  {
    std::ifstream in("/proc/loadavg");
    std::string a, b, c;
    in >> a >> b >> c;
    load_before = a + " " + b + " " + c;
  }
  std::string tmpl = (fs::temp_directory_path() / "crl-bench.XXXXXX").string();
  if (!mkdtemp(tmpl.data())) die(fmt::format("mkdtemp: {}", std::strerror(errno)));
  fs::path work = tmpl;

  struct sigaction sa{};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  // die() exits without unwinding: remove the folder from an atexit hook instead of a destructor.
  static fs::path cleanup_dir;
  static bool keep = options.keep;
  cleanup_dir = work;
  std::atexit([] {
    if (cleanup_dir.empty()) return;
    if (keep) {
      std::fprintf(stderr, "crl_bench: kept %s\n", cleanup_dir.c_str());
    } else {
      std::error_code ignored;
      fs::remove_all(cleanup_dir, ignored);
    }
  });

  Driver driver(options, self, work);
  driver.set_load_before(load_before);
  if (!driver.run()) {
    std::fprintf(stderr, "crl_bench: interrupted\n");
    return 130;
  }
  driver.report();
  return 0;
}
