// Enrollment writes into a real slapd: one unit = request + certificate record, written through
// GroupCommitWriter under each durability mode of ca-server (directory.durability):
//   per_write  slapd fsyncs every write itself (what an external directory does)
//   group      slapd runs olcDbNoSync; ca-server fdatasyncs data.mdb once per batch before answering
//   none       no sync at all (reference only: a power cut loses acknowledged records)
//
//   build/bin/group_commit_bench [units=4000] [in_flight=64]
//
// Prints units/s and records/s per configuration.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <sstream>
#include <string>

#include <fmt/format.h>

#include "core/child_process.hpp"
#include "core/log.hpp"
#include "store/ldap/embedded_directory.hpp"
#include "store/ldap/ldap_ca_store.hpp"

using namespace ca;
using namespace ca::store;

namespace {

std::vector<uint8_t> sample_certificate_der(const std::filesystem::path& dir) {
  auto r =
      run_command({"/bin/sh", "-c",
                   fmt::format("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "
                               "/CN=bench.example.com -keyout {0}/k.pem -outform DER -out {0}/c.der 2>/dev/null && "
                               "cat {0}/c.der | od -An -v -tx1",
                               dir.string())});
  std::vector<uint8_t> der;
  if (!r) return der;
  std::istringstream in(r->output);
  std::string byte;
  while (in >> byte) der.push_back(static_cast<uint8_t>(std::stoul(byte, nullptr, 16)));
  return der;
}

struct Row {
  std::string name;
  double units_per_s;
  double seconds;
  uint64_t batches;
};

Row run(const std::string& name, const LdapEndpoint& endpoint, GroupCommitOptions options, int units, int in_flight,
        const std::vector<uint8_t>& der, int round) {
  LdapCaStore store(endpoint, "o=pki-ca", 2, options);
  std::mutex m;
  std::condition_variable cv;
  int outstanding = 0, failed = 0;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < units; ++i) {
    {
      std::unique_lock lock(m);
      cv.wait(lock, [&] { return outstanding < in_flight; });
      ++outstanding;
    }
    std::string id = fmt::format("{:x}", (uint64_t(round) << 40) | uint64_t(i + 1));
    CertificateRecord c;
    c.serial_hex = id;
    c.subject_dn = "CN=bench.example.com";
    c.issuer_dn = "CN=Bench CA";
    c.der = der;
    c.not_before = c.issued_at = std::chrono::system_clock::now();
    c.not_after = c.not_before + std::chrono::hours(24 * 365);
    c.profile_id = "caServerCert";
    c.request_id_hex = id;
    c.replica_id = 1;
    RequestRecord r;
    r.id_hex = id;
    r.profile_id = "caServerCert";
    r.csr_der.assign(300, 0x42);
    r.serial_hex = id;
    r.created_at = r.modified_at = c.issued_at;
    store.commit_enrollment(r, c, [&](Status st) {
      std::lock_guard lock(m);
      if (!st) ++failed;
      --outstanding;
      cv.notify_all();
    });
  }
  std::unique_lock lock(m);
  cv.wait(lock, [&] { return outstanding == 0; });
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (failed) std::fprintf(stderr, "%s: %d units failed\n", name.c_str(), failed);
  return {name, units / s, s, store.writer().stats().batches};
}

}  // namespace

namespace {

struct Slapd {
  std::filesystem::path dir;
  std::unique_ptr<EmbeddedDirectory> server;
};

Result<Slapd> start_slapd(const std::filesystem::path& dir, bool fsync) {
  EmbeddedDirectoryOptions o;
  o.dir = dir;
  o.root_password = random_password();
  o.fsync = fsync;
  o.schema_dir = CA_SCHEMA_DIR;
  Slapd s{dir, std::make_unique<EmbeddedDirectory>(o)};
  CA_CHECK(s.server->initialize());
  CA_CHECK(s.server->start(false));
  CA_CHECK(s.server->load_base_dit());
  return s;
}

GroupCommitOptions options(int max_batch, int writers, std::string sync_file = {}) {
  GroupCommitOptions o;
  o.max_batch = max_batch;
  o.writers = writers;
  o.sync_file = std::move(sync_file);
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  int units = argc > 1 ? std::atoi(argv[1]) : 4000;
  int in_flight = argc > 2 ? std::atoi(argv[2]) : 64;
  log::set_level(log::Level::warn);
  char tmpl[] = "/tmp/gc-bench-XXXXXX";
  std::filesystem::path dir = ::mkdtemp(tmpl);
  auto syncing = start_slapd(dir / "per-write", true);
  if (!syncing) return std::fprintf(stderr, "%s\n", syncing.error().message.c_str()), 1;
  auto nosync = start_slapd(dir / "group", false);
  if (!nosync) return std::fprintf(stderr, "%s\n", nosync.error().message.c_str()), 1;
  const std::string data_file = (nosync->dir / "data" / "data.mdb").string();
  auto der = sample_certificate_der(dir);

  std::vector<Row> rows;
  int round = 1;
  auto per_write = syncing->server->endpoint();
  auto group = nosync->server->endpoint();
  rows.push_back(run("per_write, batch 1, 1 writer (one write at a time)", per_write, options(1, 1), units / 4,
                     in_flight, der, round++));
  rows.push_back(
      run("per_write, batch 64, 2 writers (pipelined)", per_write, options(64, 2), units / 2, in_flight, der, round++));
  rows.push_back(run("group, batch 16, 2 writers", group, options(16, 2, data_file), units, in_flight, der, round++));
  rows.push_back(run("group, batch 64, 1 writer", group, options(64, 1, data_file), units, in_flight, der, round++));
  rows.push_back(
      run("group, batch 64, 2 writers (default)", group, options(64, 2, data_file), units, in_flight, der, round++));
  rows.push_back(run("group, batch 128, 2 writers", group, options(128, 2, data_file), units, in_flight, der, round++));
  rows.push_back(run("none (no sync), batch 64, 2 writers", group, options(64, 2), units, in_flight, der, round++));
  syncing->server->stop();
  nosync->server->stop();
  std::filesystem::remove_all(dir);

  std::printf("\nEnrollment writes into slapd, %d units in flight, 1 unit = request + certificate record\n\n",
              in_flight);
  std::printf("| durability, configuration | units/s | records/s | batches | seconds |\n|---|---|---|---|---|\n");
  for (const auto& r : rows)
    std::printf("| %s | %.0f | %.0f | %llu | %.2f |\n", r.name.c_str(), r.units_per_s, 2 * r.units_per_s,
                static_cast<unsigned long long>(r.batches), r.seconds);
  return 0;
}
