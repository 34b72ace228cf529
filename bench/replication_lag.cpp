// What TLS costs replication: two pairs of embedded slapd providers replicating multi-provider with
// each other on loopback, one pair over ldap:// and one over ldaps:// with the peer's certificate
// demanded (what ca-clone sets up), measured side by side in one run.
//
//   build/bin/replication_lag [--adds N] [--batch N] [--reconnect N] [--in-flight N] [--rounds N]
//                             [--durability dbnosync|fsync] [--keep]
//
// Per pair and round:
//   lag    N single certificate records added on provider A one at a time; after each add is
//          answered, provider B is read until the entry is there (add answered on A -> found on B;
//          also add sent -> found on B, and how often the first read on B already finds it: the
//          lag cannot be shorter than one read's round trip).
//   batch  N records pipelined into A (--in-flight operations outstanding on one connection); the
//          time until B holds every one of them, and the CPU time both slapd processes used.
//   reconnect  B's agreement with A removed, N records written on A, the agreement put back (as
//          after a partition): time until B holds them all (a new connection, with ldaps its TLS
//          handshake, then the refresh).
// The benchmark's own clients reach both directories over their unix sockets in both modes, as
// ca-server does, so the only difference between the pairs is the replication transport.
// The CA and the directories' certificates (P-256, IP SAN 127.0.0.1) are made here with the
// project's crypto helpers, in a folder under /tmp that is removed at the end.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "core/log.hpp"
#include "crypto/certificate_builder.hpp"
#include "crypto/keys.hpp"
#include "crypto/pem.hpp"
#include "store/ldap/embedded_directory.hpp"
#include "store/ldap/ldap_ca_store.hpp"
#include "store/ldap/replication.hpp"

using namespace ca;
using namespace ca::store;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kReplicationTimeout = std::chrono::seconds(30);  // an entry that takes longer is "missing"
constexpr auto kCatchUpTimeout = std::chrono::seconds(600);
constexpr auto kLagPoll = std::chrono::microseconds(100);  // between reads on B while waiting
constexpr auto kCatchUpPoll = std::chrono::milliseconds(1);

volatile std::sig_atomic_t g_interrupted = 0;
void on_signal(int) { g_interrupted = 1; }
Status check_interrupted() {
  if (g_interrupted) return fail(Error::internal("interrupted"));
  return ok();
}

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

struct Options {
  int adds = 500;
  int batch = 5000;
  int in_flight = 64;
  int reconnect = 1000;
  int rounds = 1;
  bool fsync = false;  // dbnosync by default: how ca-server runs its directory (durability: group)
  bool keep = false;
};

void usage(std::FILE* out) {
  std::fprintf(out,
               "usage: replication_lag [--adds N] [--batch N] [--reconnect N] [--in-flight N] [--rounds N]\n"
               "                       [--durability dbnosync|fsync] [--keep]\n"
               "Two pairs of slapd providers replicating with each other on loopback, one over ldap://, one\n"
               "over ldaps:// with the peer certificate demanded; prints, per pair and round:\n"
               "  --adds N        single adds on provider A, one at a time: lag until each is found on B\n"
               "                  (p50/p99/max) (default 500)\n"
               "  --batch N       pipelined adds on A: time until B has all of them (default 5000)\n"
               "  --reconnect N   B's agreement removed, N adds on A, agreement put back: time until B\n"
               "                  has them (new connection, TLS handshake with ldaps, refresh) (default 1000)\n"
               "  --in-flight N   adds outstanding during the batch and the reconnect (default 64)\n"
               "  --rounds N      repeat, alternating which pair goes first (default 1)\n"
               "  --durability    dbnosync (default, as ca-server runs the directory) or fsync (slapd\n"
               "                  syncs every write, on both providers)\n"
               "  --keep          keep the work folder under /tmp (slapd.log of each directory)\n");
}

std::optional<Options> parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto number = [&](int& out) {
      if (i + 1 >= argc) return false;
      char* end = nullptr;
      long v = std::strtol(argv[++i], &end, 10);
      if (*end != '\0' || v < 1 || v > 10'000'000) return false;
      out = static_cast<int>(v);
      return true;
    };
    if (a == "--help" || a == "-h") {
      usage(stdout);
      std::exit(0);
    } else if (a == "--adds") {
      if (!number(o.adds)) return std::nullopt;
    } else if (a == "--batch") {
      if (!number(o.batch)) return std::nullopt;
    } else if (a == "--reconnect") {
      if (!number(o.reconnect)) return std::nullopt;
    } else if (a == "--in-flight") {
      if (!number(o.in_flight)) return std::nullopt;
    } else if (a == "--rounds") {
      if (!number(o.rounds)) return std::nullopt;
    } else if (a == "--durability" && i + 1 < argc) {
      std::string d = argv[++i];
      if (d != "fsync" && d != "dbnosync") return std::nullopt;
      o.fsync = d == "fsync";
    } else if (a == "--keep") {
      o.keep = true;
    } else {
      return std::nullopt;
    }
  }
  return o;
}

// The work folder; removed when it goes out of scope (declared before the directories, so they
// stop first).
class WorkFolder {
 public:
  static Result<std::unique_ptr<WorkFolder>> create(bool keep) {
    char templ[] = "/tmp/replication-lag-XXXXXX";
    if (!::mkdtemp(templ)) return fail(Error::io("cannot create a folder under /tmp"));
    return std::unique_ptr<WorkFolder>(new WorkFolder(templ, keep));
  }
  ~WorkFolder() {
    std::error_code ec;
    if (keep_)
      std::fprintf(stderr, "kept %s\n", path_.c_str());
    else
      fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  WorkFolder(fs::path path, bool keep) : path_(std::move(path)), keep_(keep) {}
  fs::path path_;
  bool keep_;
};

// A port that was free a moment ago (the same trick as the tests' fixture).
Result<uint16_t> free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return fail(Error::io("socket() failed"));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
               ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  ::close(fd);
  if (!bound) return fail(Error::io("no free port on 127.0.0.1"));
  return ntohs(addr.sin_port);
}

// ---- Certificates: a CA and one TLS certificate per directory, as instance setup issues them ----

struct DirectoryCertificate {
  fs::path cert_file, key_file;
};

struct BenchPki {
  fs::path ca_file;
  std::vector<DirectoryCertificate> directories;
  std::vector<uint8_t> sample_der;  // the payload of every record written (a real certificate)
};

Result<BenchPki> make_pki(const fs::path& dir, int directories) {
  BenchPki pki;
  std::error_code ec;
  if (fs::create_directories(dir, ec); ec)
    return fail(Error::io(fmt::format("cannot create {}: {}", dir.string(), ec.message())));
  auto now = std::chrono::system_clock::now();
  CA_TRY(auto ca_key, crypto::generate_key(KeyType::ec_p256));
  CA_TRY(auto ca_name, crypto::parse_name("CN=Replication Bench CA,O=Example"));
  crypto::CertificateSpec ca;
  ca.serial_hex = "1";
  ca.subject = ca_name.get();
  ca.public_key = ca_key.get();
  ca.not_before = now - std::chrono::minutes(5);
  ca.not_after = now + std::chrono::hours(24);
  ca.is_ca = true;
  ca.key_usage = {"digitalSignature", "keyCertSign", "cRLSign"};
  CA_TRY(auto ca_cert, crypto::sign_certificate(ca, nullptr, ca_key.get()));
  pki.ca_file = dir / "ca.pem";
  CA_CHECK(crypto::write_certificate_file(pki.ca_file, ca_cert.get()));

  for (int i = 0; i < directories; ++i) {
    CA_TRY(auto key, crypto::generate_key(KeyType::ec_p256));
    CA_TRY(auto name, crypto::parse_name(fmt::format("CN=directory-{},O=Example", i + 1)));
    crypto::CertificateSpec spec;
    spec.serial_hex = fmt::format("{:x}", i + 2);
    spec.subject = name.get();
    spec.public_key = key.get();
    spec.not_before = ca.not_before;
    spec.not_after = ca.not_after;
    spec.key_usage = {"digitalSignature", "keyEncipherment"};
    spec.extended_key_usage = {"serverAuth", "clientAuth"};  // clientAuth: it binds to its peer with it
    spec.ip_addresses = {"127.0.0.1"};                       // the peers' provider URL is ldaps://127.0.0.1:port/
    CA_TRY(auto cert, crypto::sign_certificate(spec, ca_cert.get(), ca_key.get()));
    DirectoryCertificate files{dir / fmt::format("directory-{}.pem", i + 1),
                               dir / fmt::format("directory-{}.key", i + 1)};
    CA_CHECK(crypto::write_certificate_file(files.cert_file, cert.get()));
    CA_CHECK(crypto::write_private_key_file(files.key_file, key.get()));
    if (pki.sample_der.empty()) pki.sample_der = crypto::certificate_to_der(cert.get());
    pki.directories.push_back(std::move(files));
  }
  return pki;
}

// ---- Two providers replicating with each other ----

struct ProviderPair {
  std::string mode;  // "ldap" or "ldaps"
  DirectoryLayout layout{"o=pki-ca"};
  std::unique_ptr<EmbeddedDirectory> a, b;  // server IDs 1 and 2
  LdapEndpoint client_a, client_b;          // over the unix sockets

  ~ProviderPair() {
    if (b) b->stop();
    if (a) a->stop();
  }
};

LdapEndpoint local_endpoint(const EmbeddedDirectory& d) {
  return LdapEndpoint{d.ldapi_url(), d.options().root_dn, d.options().root_password, 10000};
}

Result<std::unique_ptr<EmbeddedDirectory>> start_directory(const fs::path& dir, int server_id, bool fsync,
                                                           const DirectoryCertificate* tls, const fs::path& ca_file) {
  EmbeddedDirectoryOptions o;
  o.dir = dir;
  o.root_password = random_password();
  CA_TRY(o.port, free_port());
  o.server_id = server_id;
  o.fsync = fsync;
  o.schema_dir = CA_SCHEMA_DIR;
  if (tls) {
    o.tls_cert_file = tls->cert_file;
    o.tls_key_file = tls->key_file;
    o.tls_ca_file = ca_file;
  }
  auto d = std::make_unique<EmbeddedDirectory>(o);
  CA_CHECK(d->initialize());
  CA_CHECK(d->start(false));
  return d;
}

// Polls `read` until it finds `dn` (or the deadline passes).
Result<bool> wait_for_entry(LdapConnection& conn, const std::string& dn, Clock::duration timeout,
                            Clock::duration poll) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    CA_CHECK(check_interrupted());
    CA_TRY(auto e, conn.read(dn, {"1.1"}));
    if (e) return true;
    std::this_thread::sleep_for(poll);
  }
  return false;
}

// The olcSyncrepl of `d` must name the peer's URL, and with ldaps also demand its certificate.
Status check_agreement(const EmbeddedDirectory& d, const std::string& provider_url, bool tls) {
  CA_TRY(auto conn, LdapConnection::open(d.config_endpoint()));
  CA_TRY(auto db, conn->read("olcDatabase={1}mdb,cn=config", {"olcSyncrepl"}));
  const auto* values = db ? db->values("olcSyncrepl") : nullptr;
  if (!values || values->size() != 1 || values->front().find(provider_url) == std::string::npos)
    return fail(Error::internal(fmt::format("{}: no agreement with {}", d.options().dir.string(), provider_url)));
  if (tls && values->front().find("tls_reqcert=demand") == std::string::npos)
    return fail(Error::internal(
        fmt::format("{}: the agreement does not demand the peer's certificate", d.options().dir.string())));
  return ok();
}

Result<std::unique_ptr<ProviderPair>> start_pair(const std::string& mode, const fs::path& dir, bool fsync,
                                                 const BenchPki& pki) {
  const bool tls = mode == "ldaps";
  auto pair = std::make_unique<ProviderPair>();
  pair->mode = mode;
  CA_TRY(pair->a, start_directory(dir / "a", 1, fsync, tls ? &pki.directories[0] : nullptr, pki.ca_file));
  CA_TRY(pair->b, start_directory(dir / "b", 2, fsync, tls ? &pki.directories[1] : nullptr, pki.ca_file));
  pair->client_a = local_endpoint(*pair->a);
  pair->client_b = local_endpoint(*pair->b);
  const std::string& suffix = pair->layout.suffix;
  const std::string ca_file = tls ? pki.ca_file.string() : std::string();

  if (tls) {
    // Before waiting for replication that would never come: each TLS port answers ldaps with a
    // certificate that chains to the CA and names 127.0.0.1, and refuses plain LDAP.
    for (const auto* d : {pair->a.get(), pair->b.get()}) {
      LdapEndpoint over_tls{d->tcp_url(), d->options().root_dn, d->options().root_password, 3000, ca_file};
      if (auto checked = LdapConnection::open(over_tls); !checked)
        return fail(checked.error().context(fmt::format("ldaps check of {}", d->tcp_url())));
      LdapEndpoint plain{fmt::format("ldap://127.0.0.1:{}/", d->options().port), d->options().root_dn,
                         d->options().root_password, 3000};
      if (LdapConnection::open(plain))
        return fail(Error::internal(fmt::format("{} answers plain LDAP on its TLS port", d->tcp_url())));
    }
  }

  // Base DIT on A only (twins with different entryUUIDs otherwise); B receives the tree.
  CA_CHECK(pair->a->load_base_dit());
  const std::string password_1 = random_password(), password_2 = random_password();
  // As ca-server does: over ldaps each directory binds to its peer with its certificate (SASL
  // EXTERNAL), whose subject is a directory peer; over plain ldap with an account, made one.
  {
    CA_TRY(auto conn, LdapConnection::open(pair->client_a));
    CA_CHECK(put_replication_account(*conn, suffix, 1, password_1));
    CA_CHECK(put_replication_account(*conn, suffix, 2, password_2));
    for (int id : {1, 2})
      CA_CHECK(add_directory_peer(
          *conn, suffix, tls ? fmt::format("CN=directory-{},O=Example", id) : replication_account_dn(suffix, id)));
  }
  auto agreement = [&](int provider_id, const EmbeddedDirectory& provider, int consumer_id,
                       const std::string& password) {
    ReplicationPeer peer{provider_id, provider.tcp_url(), replication_account_dn(suffix, consumer_id), password,
                         ca_file};
    if (tls) {
      const auto& own = pki.directories[static_cast<std::size_t>(consumer_id - 1)];
      peer.tls_cert_file = own.cert_file.string();
      peer.tls_key_file = own.key_file.string();
    }
    return peer;
  };
  // B consumes from A as replica-2, then A from B as replica-1 (whose account reached B from A).
  CA_CHECK(put_replication_peer(pair->b->config_endpoint(), agreement(1, *pair->a, 2, password_2), suffix));
  CA_TRY(auto on_b, LdapConnection::open(pair->client_b));
  CA_TRY(bool reached_b, wait_for_entry(*on_b, replication_account_dn(suffix, 1), kReplicationTimeout, kCatchUpPoll));
  if (!reached_b)
    return fail(
        Error::unavailable(fmt::format("{}: B did not receive the tree from A (see {}/slapd.log, kept with --keep)",
                                       mode, pair->b->options().dir.string())));
  CA_CHECK(put_replication_peer(pair->a->config_endpoint(), agreement(2, *pair->b, 1, password_1), suffix));
  CA_CHECK(check_agreement(*pair->a, pair->b->tcp_url(), tls));
  CA_CHECK(check_agreement(*pair->b, pair->a->tcp_url(), tls));

  // Both directions live: an entry added on B reaches A.
  std::string probe = pair->layout.certificate_dn("f00d");
  CertificateRecord r;
  r.serial_hex = "f00d";
  r.subject_dn = "CN=probe";
  r.issuer_dn = "CN=Replication Bench CA,O=Example";
  r.der = pki.sample_der;
  CA_CHECK(on_b->add(probe, certificate_attributes(r)));
  CA_TRY(auto on_a, LdapConnection::open(pair->client_a));
  CA_TRY(bool reached_a, wait_for_entry(*on_a, probe, kReplicationTimeout, kCatchUpPoll));
  if (!reached_a)
    return fail(Error::unavailable(fmt::format("{}: A did not receive B's entry (see {}/slapd.log, kept with --keep)",
                                               mode, pair->a->options().dir.string())));
  return pair;
}

// ---- Measurements ----

CertificateRecord record(uint64_t serial, const std::vector<uint8_t>& der) {
  CertificateRecord c;
  c.serial_hex = fmt::format("{:x}", serial);
  c.subject_dn = "CN=bench.example.com";
  c.issuer_dn = "CN=Replication Bench CA,O=Example";
  c.der = der;
  c.not_before = c.issued_at = std::chrono::system_clock::now();
  c.not_after = c.not_before + std::chrono::hours(24 * 365);
  c.profile_id = "caServerCert";
  c.request_id_hex = c.serial_hex;
  c.replica_id = 1;
  c.issued_by = "bench";
  return c;
}

struct LagFigures {
  int adds = 0;
  double adds_per_s = 0;         // time inside the add calls only
  std::vector<double> lag_ms;    // add answered on A -> found on B (sorted)
  std::vector<double> total_ms;  // add sent to A -> found on B (sorted)
  int missing = 0;               // not on B within kReplicationTimeout
  int first_read = 0;            // found by the first read on B after A answered
};

Result<LagFigures> measure_lag(ProviderPair& pair, int adds, uint64_t serial_base, const std::vector<uint8_t>& der) {
  CA_TRY(auto on_a, LdapConnection::open(pair.client_a));
  CA_TRY(auto on_b, LdapConnection::open(pair.client_b));
  LagFigures f;
  f.adds = adds;
  Clock::duration in_add{};
  for (int i = 0; i < adds; ++i) {
    CA_CHECK(check_interrupted());
    auto r = record(serial_base + uint64_t(i), der);
    std::string dn = pair.layout.certificate_dn(r.serial_hex);
    auto attributes = certificate_attributes(r);
    auto sent = Clock::now();
    CA_CHECK(on_a->add(dn, attributes));
    auto answered = Clock::now();
    in_add += answered - sent;
    CA_TRY(auto at_once, on_b->read(dn, {"1.1"}));
    bool found = at_once.has_value();
    if (found) {
      ++f.first_read;
    } else {
      CA_TRY(found, wait_for_entry(*on_b, dn, kReplicationTimeout, kLagPoll));
    }
    if (!found) {
      ++f.missing;
      continue;
    }
    auto found_at = Clock::now();
    f.lag_ms.push_back(std::chrono::duration<double, std::milli>(found_at - answered).count());
    f.total_ms.push_back(std::chrono::duration<double, std::milli>(found_at - sent).count());
  }
  f.adds_per_s = adds / std::chrono::duration<double>(in_add).count();
  std::sort(f.lag_ms.begin(), f.lag_ms.end());
  std::sort(f.total_ms.begin(), f.total_ms.end());
  return f;
}

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  auto rank = static_cast<std::size_t>(std::ceil(p * double(sorted.size())));
  return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

Result<std::size_t> count_records(LdapConnection& conn, const DirectoryLayout& layout) {
  std::size_t n = 0;
  CA_CHECK(conn.search_each(layout.certificates(), SearchScope::one, "(objectClass=caCertificateRecord)", {"1.1"},
                            [&](const LdapEntry&) { ++n; }));
  return n;
}

// CPU time (user + system) a process has used so far, from /proc/<pid>/stat (10 ms ticks).
double cpu_seconds(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = text.rfind(')');  // the command name may hold spaces
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {  // fields 14 and 15 (1-based): utime, stime
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return double(utime + stime) / double(::sysconf(_SC_CLK_TCK));
}

struct BatchFigures {
  int adds = 0;
  double a_seconds = 0;         // first add sent -> last add answered on A
  double b_seconds = -1;        // first add sent -> B holds all of them (-1: not within kCatchUpTimeout)
  double behind = -1;           // last add answered on A -> B holds all of them
  double cpu_a = 0, cpu_b = 0;  // CPU seconds of each slapd from the first add until B had all
  double adds_per_s() const { return adds / a_seconds; }
};

using Entries = std::vector<std::pair<std::string, std::vector<LdapAttribute>>>;

Entries make_entries(const DirectoryLayout& layout, int count, uint64_t serial_base, const std::vector<uint8_t>& der) {
  Entries entries;
  entries.reserve(std::size_t(count));
  for (int i = 0; i < count; ++i) {
    auto r = record(serial_base + uint64_t(i), der);
    entries.emplace_back(layout.certificate_dn(r.serial_hex), certificate_attributes(r));
  }
  return entries;
}

// Sends every add on one connection with at most `in_flight` unanswered; returns once all are answered.
Status pipeline_adds(LdapConnection& conn, const Entries& entries, int in_flight) {
  std::deque<std::pair<int, const std::string*>> outstanding;
  auto collect_oldest = [&]() -> Status {
    auto [msgid, dn] = outstanding.front();
    outstanding.pop_front();
    return conn.wait_result(msgid, "add", *dn);
  };
  for (const auto& [dn, attributes] : entries) {
    CA_CHECK(check_interrupted());
    Error error;
    int msgid = conn.add_async(dn, attributes, &error);
    if (msgid == 0) return fail(error);
    outstanding.emplace_back(msgid, &dn);
    if (outstanding.size() >= std::size_t(in_flight)) CA_CHECK(collect_oldest());
  }
  while (!outstanding.empty()) CA_CHECK(collect_oldest());
  return ok();
}

// Waits until B holds `expected` certificate records, the last one written being `last_dn`; returns
// when that was seen, or nullopt after kCatchUpTimeout. The last entry written on A arrives last
// (syncprov sends changes in CSN order), so it is polled cheaply; the count confirms that nothing
// before it is missing.
Result<std::optional<Clock::time_point>> wait_until_holds(LdapConnection& on_b, const DirectoryLayout& layout,
                                                          const std::string& last_dn, std::size_t expected) {
  auto deadline = Clock::now() + kCatchUpTimeout;
  CA_TRY(bool last_found, wait_for_entry(on_b, last_dn, kCatchUpTimeout, kCatchUpPoll));
  if (!last_found) return std::optional<Clock::time_point>{};
  while (Clock::now() < deadline) {
    CA_CHECK(check_interrupted());
    CA_TRY(std::size_t held, count_records(on_b, layout));
    if (held >= expected) return std::optional<Clock::time_point>(Clock::now());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return std::optional<Clock::time_point>{};
}

Result<BatchFigures> measure_batch(ProviderPair& pair, int adds, int in_flight, uint64_t serial_base,
                                   const std::vector<uint8_t>& der) {
  CA_TRY(auto on_a, LdapConnection::open(pair.client_a));
  CA_TRY(auto on_b, LdapConnection::open(pair.client_b));
  CA_TRY(std::size_t before, count_records(*on_a, pair.layout));
  Entries entries = make_entries(pair.layout, adds, serial_base, der);

  BatchFigures f;
  f.adds = adds;
  const double cpu_a_before = cpu_seconds(pair.a->pid()), cpu_b_before = cpu_seconds(pair.b->pid());
  auto start = Clock::now();
  CA_CHECK(pipeline_adds(*on_a, entries, in_flight));
  f.a_seconds = seconds_between(start, Clock::now());
  CA_TRY(auto b_done, wait_until_holds(*on_b, pair.layout, entries.back().first, before + std::size_t(adds)));
  if (b_done) {
    f.b_seconds = seconds_between(start, *b_done);
    f.behind = f.b_seconds - f.a_seconds;
    f.cpu_a = cpu_seconds(pair.a->pid()) - cpu_a_before;
    f.cpu_b = cpu_seconds(pair.b->pid()) - cpu_b_before;
  }
  return f;
}

// A cut and its repair, as ca-clone and the partition test do it: B's agreement with A is removed,
// `adds` records are written on A meanwhile, the agreement is put back; the time from putting it
// back until B holds every record (a new connection, with ldaps its TLS handshake, then the refresh).
Result<double> measure_reconnect(ProviderPair& pair, int adds, int in_flight, uint64_t serial_base,
                                 const std::vector<uint8_t>& der) {
  const std::string& suffix = pair.layout.suffix;
  CA_TRY(auto peers, replication_peers(pair.b->config_endpoint()));
  if (peers.size() != 1)
    return fail(Error::internal(fmt::format("{}: B has {} agreements, not 1", pair.mode, peers.size())));
  CA_TRY(bool removed, remove_replication_peer(pair.b->config_endpoint(), peers.front().replica_id, suffix));
  if (!removed) return fail(Error::internal(fmt::format("{}: B's agreement could not be removed", pair.mode)));
  CA_TRY(auto on_a, LdapConnection::open(pair.client_a));
  CA_TRY(auto on_b, LdapConnection::open(pair.client_b));
  Entries entries = make_entries(pair.layout, adds, serial_base, der);
  CA_CHECK(pipeline_adds(*on_a, entries, in_flight));
  CA_TRY(std::size_t on_a_now, count_records(*on_a, pair.layout));
  auto start = Clock::now();
  CA_CHECK(put_replication_peer(pair.b->config_endpoint(), peers.front(), suffix));
  CA_TRY(auto b_done, wait_until_holds(*on_b, pair.layout, entries.back().first, on_a_now));
  return b_done ? seconds_between(start, *b_done) : -1.0;
}

struct Row {
  std::string mode;
  int round = 0;
  LagFigures lag;
  BatchFigures batch;
  double reconnect_seconds = -1;  // agreement put back -> B holds everything (-1: not within kCatchUpTimeout)
};

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return fmt::format("{} {} {}", one, five, fifteen);
}

double median(std::vector<double> v) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  return v[(v.size() - 1) / 2];  // the lower middle one for an even count
}

// All rounds of one mode together: lag samples pooled; batch adds/s as total over total, times as
// the mean (A) or the median round (B, reconnect). A round where B never caught up counts as the slowest.
Row all_rounds(const std::vector<Row>& rows, const std::string& mode) {
  Row all{mode, 0, {}, {}, -1};
  double in_add = 0;
  std::vector<double> b_seconds, behind, reconnect;
  auto or_slowest = [](double seconds) { return seconds < 0 ? 1e9 : seconds; };
  for (const auto& r : rows) {
    if (r.mode != mode) continue;
    all.lag.adds += r.lag.adds;
    in_add += r.lag.adds / r.lag.adds_per_s;
    all.lag.lag_ms.insert(all.lag.lag_ms.end(), r.lag.lag_ms.begin(), r.lag.lag_ms.end());
    all.lag.total_ms.insert(all.lag.total_ms.end(), r.lag.total_ms.begin(), r.lag.total_ms.end());
    all.lag.missing += r.lag.missing;
    all.lag.first_read += r.lag.first_read;
    all.batch.adds += r.batch.adds;
    all.batch.a_seconds += r.batch.a_seconds;
    all.batch.cpu_a += r.batch.cpu_a;
    all.batch.cpu_b += r.batch.cpu_b;
    b_seconds.push_back(or_slowest(r.batch.b_seconds));
    behind.push_back(or_slowest(r.batch.behind));
    reconnect.push_back(or_slowest(r.reconnect_seconds));
  }
  auto or_none = [](double seconds) { return seconds >= 1e9 ? -1 : seconds; };
  const double rounds = double(b_seconds.size());
  all.lag.adds_per_s = all.lag.adds / in_add;
  std::sort(all.lag.lag_ms.begin(), all.lag.lag_ms.end());
  std::sort(all.lag.total_ms.begin(), all.lag.total_ms.end());
  all.batch.adds = int(all.batch.adds / rounds);
  all.batch.a_seconds /= rounds;
  all.batch.cpu_a /= rounds;
  all.batch.cpu_b /= rounds;
  all.batch.b_seconds = or_none(median(b_seconds));
  all.batch.behind = or_none(median(behind));
  all.reconnect_seconds = or_none(median(reconnect));
  return all;
}

void print_tables(const std::vector<Row>& measured, const Options& options, std::size_t der_size) {
  std::vector<Row> rows = measured;
  if (options.rounds > 1)
    for (const char* mode : {"ldap", "ldaps"}) rows.push_back(all_rounds(measured, mode));
  auto round_name = [](const Row& r) { return r.round ? std::to_string(r.round) : std::string("all"); };

  std::printf(
      "Replication between two slapd providers on loopback, durability %s, certificate records "
      "(%zu-byte certificates). Clients on the unix sockets; only the replication transport differs.\n\n",
      options.fsync ? "fsync" : "dbnosync", der_size);
  std::printf(
      "Lag: single adds on A, one at a time; B read until the entry is there\n\n"
      "| replication | round | adds | adds/s on A | answered on A -> found on B, p50 / p99 / max (ms) "
      "| sent to A -> found on B, p50 / p99 (ms) | found by the first read on B |\n"
      "|---|---|---|---|---|---|---|\n");
  for (const auto& r : rows) {
    std::string lag = fmt::format("{:.2f} / {:.2f} / {:.2f}", percentile(r.lag.lag_ms, 0.50),
                                  percentile(r.lag.lag_ms, 0.99), r.lag.lag_ms.empty() ? 0.0 : r.lag.lag_ms.back());
    if (r.lag.missing) lag += fmt::format(" ({} not on B within {} s)", r.lag.missing, kReplicationTimeout.count());
    std::string total =
        fmt::format("{:.2f} / {:.2f}", percentile(r.lag.total_ms, 0.50), percentile(r.lag.total_ms, 0.99));
    std::printf("| %s | %s | %d | %.0f | %s | %s | %d %% |\n", r.mode.c_str(), round_name(r).c_str(), r.lag.adds,
                r.lag.adds_per_s, lag.c_str(), total.c_str(), 100 * r.lag.first_read / std::max(1, r.lag.adds));
  }

  std::printf(
      "\nCatch-up: a batch pipelined into A (%d in flight), times from the first add sent; then a cut: "
      "B's agreement removed, %d adds on A, agreement put back%s\n\n"
      "| replication | round | adds | adds/s on A | A answered all (s) | B has all (s) | B behind A (s) "
      "| slapd CPU A / B (s) | after the cut: B has all (s) |\n"
      "|---|---|---|---|---|---|---|---|---|\n",
      options.in_flight, options.reconnect,
      options.rounds > 1 ? ". 'all': adds/s over all rounds, A and CPU the mean round, B the median round" : "");
  auto seconds = [](double s) {
    return s < 0 ? fmt::format("not within {} s", kCatchUpTimeout.count()) : fmt::format("{:.2f}", s);
  };
  for (const auto& r : rows) {
    std::printf("| %s | %s | %d | %.0f | %.2f | %s | %s | %.2f / %.2f | %s |\n", r.mode.c_str(), round_name(r).c_str(),
                r.batch.adds, r.batch.adds_per_s(), r.batch.a_seconds, seconds(r.batch.b_seconds).c_str(),
                r.batch.behind < 0 ? "-" : seconds(r.batch.behind).c_str(), r.batch.cpu_a, r.batch.cpu_b,
                seconds(r.reconnect_seconds).c_str());
  }
}

Status run(const Options& options, const fs::path& work) {
  std::printf("replication_lag: --adds %d --batch %d --reconnect %d --in-flight %d --rounds %d --durability %s\n",
              options.adds, options.batch, options.reconnect, options.in_flight, options.rounds,
              options.fsync ? "fsync" : "dbnosync");
  std::printf("cores: %u, load average at start: %s\n", std::thread::hardware_concurrency(), load_average().c_str());
  std::fflush(stdout);

  CA_TRY(auto pki, make_pki(work / "pki", 2));
  std::vector<std::unique_ptr<ProviderPair>> pairs;
  for (const char* mode : {"ldap", "ldaps"}) {
    CA_TRY(auto pair, start_pair(mode, work / mode, options.fsync, pki));
    std::printf("%-5s pair: A %s <-> B %s, replicating both ways\n", mode, pair->a->tcp_url().c_str(),
                pair->b->tcp_url().c_str());
    pairs.push_back(std::move(pair));
  }
  std::fflush(stdout);

  std::vector<Row> rows;
  for (int round = 1; round <= options.rounds; ++round) {
    // Alternate which pair goes first, so neither always runs on a machine warmed (or tired) by the other.
    std::vector<ProviderPair*> order{pairs[0].get(), pairs[1].get()};
    if (round % 2 == 0) std::reverse(order.begin(), order.end());
    for (ProviderPair* pair : order) {
      Row row{pair->mode, round, {}, {}, -1};
      const uint64_t base = (uint64_t(round) << 40);
      CA_TRY(row.lag, measure_lag(*pair, options.adds, base | (1ull << 32), pki.sample_der));
      CA_TRY(row.batch, measure_batch(*pair, options.batch, options.in_flight, base | (2ull << 32), pki.sample_der));
      CA_TRY(row.reconnect_seconds,
             measure_reconnect(*pair, options.reconnect, options.in_flight, base | (3ull << 32), pki.sample_der));
      std::fprintf(stderr, "round %d, %s: done\n", round, pair->mode.c_str());
      rows.push_back(std::move(row));
    }
  }

  std::printf("load average at end: %s\n\n", load_average().c_str());
  print_tables(rows, options, pki.sample_der.size());
  return ok();
}

}  // namespace

int main(int argc, char** argv) {
  auto options = parse_options(argc, argv);
  if (!options) {
    std::fprintf(stderr, "replication_lag: bad or unknown option\n");
    usage(stderr);
    return 2;
  }
  log::set_level(log::Level::warn);
  // Ctrl-C and SIGTERM end the run through the normal path, so the directories are stopped and
  // the work folder removed (slapd runs in its own process group and would not see Ctrl-C).
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  ::sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);

  auto work = WorkFolder::create(options->keep);
  if (!work) return std::fprintf(stderr, "replication_lag: %s\n", work.error().message.c_str()), 1;
  Status st = run(*options, (*work)->path());
  if (!st) {
    std::fprintf(stderr, "replication_lag: %s\n", st.error().message.c_str());
    return 1;
  }
  return 0;
}
