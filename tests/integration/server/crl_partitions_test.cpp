// Partitioned CRLs (crl.partitions: 4) served by a real ca-server and checked by the openssl command
// line the way a relying party uses them: each certificate's CRL distribution point names its
// partition's CRL, `openssl verify -crl_check -crl_download` fetches exactly that CRL and accepts the
// good certificate and rejects the revoked one, in every partition.
#include <array>
#include <map>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "authority/revocation/crl_partitions.hpp"
#include "support/ca_server_fixture.hpp"
#include "support/crl_text.hpp"
#include "support/temp_dir.hpp"

namespace ca::testing {
namespace {

constexpr std::size_t kPartitions = 4;

struct Issued {
  std::string serial;
  std::filesystem::path pem;
};

class CrlPartitionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CaServerOptions o;
    // A delta of more than one change becomes a full CRL at once, and a full CRL follows every 3 s
    // anyway (revocations that arrive one at a time under load would otherwise end in a delta):
    // openssl -crl_download fetches the distribution point (the full CRL), not the delta.
    o.crl_yaml = "  partitions: 4\n  full_after_changes: 1\n  debounce_ms: 100\n  update_interval_seconds: 3\n";
    server_ = std::make_unique<CaServer>(o);
    auto init = server_->init();
    ASSERT_EQ(init.exit_code, 0) << init.output;
    ASSERT_TRUE(server_->start()) << server_->log();
  }

  std::string get_to(const std::string& path, const std::filesystem::path& file) {
    return shell(fmt::format("curl -s -o {} -w '%{{http_code}}' '{}{}'", file.string(), server_->http_url(), path)).output;
  }
  std::string crl_text(const std::filesystem::path& file) {
    return shell(fmt::format("openssl crl -inform DER -in {} -CAfile {} -noout -text", file.string(),
                             server_->ca_file().string()))
        .output;
  }

  TempDir work_{"ca-crl-partitions"};
  std::unique_ptr<CaServer> server_;
};

TEST_F(CrlPartitionsTest, OpensslChecksEveryPartitionsCertificatesAgainstTheCrlTheirDistributionPointNames) {
  const std::string csr = openssl_csr(work_.path(), "leaf");
  auto client = server_->client();
  // Two certificates in every partition (serials spread over the partitions by a hash).
  std::map<std::size_t, std::vector<Issued>> by_partition;
  for (int i = 0; i < 80; ++i) {
    bool enough = true;
    for (std::size_t k = 0; k < kPartitions; ++k) enough = enough && by_partition[k].size() >= 2;
    if (enough) break;
    auto reply = client.post("/ca/rest/certrequests", enrollment_json(csr));
    ASSERT_EQ(reply.status, 201) << reply.body;
    Issued issued{json_field(reply.body, "serial"), work_.path() / fmt::format("cert{}.pem", i)};
    write_file(issued.pem, json_field(reply.body, "certificate"));
    auto k = authority::crl_partition_of_serial(issued.serial.substr(2), kPartitions);
    ASSERT_TRUE(k) << issued.serial;
    by_partition[*k].push_back(issued);
  }
  for (std::size_t k = 0; k < kPartitions; ++k) ASSERT_GE(by_partition[k].size(), 2u) << "partition " << k;

  // The certificate names its partition's CRL and the delta of that partition.
  for (std::size_t k = 0; k < kPartitions; ++k) {
    auto text = shell(fmt::format("openssl x509 -in {} -noout -text", by_partition[k][0].pem.string())).output;
    EXPECT_NE(text.find(fmt::format("{}/crl/MasterCRL-{}.crl", server_->http_url(), k)), std::string::npos) << text;
    EXPECT_NE(text.find("X509v3 Freshest CRL"), std::string::npos) << text;
    EXPECT_NE(text.find(fmt::format("/crl/MasterCRL-{}-delta.crl", k)), std::string::npos) << text;
  }

  // Revoke the first certificate of every partition.
  for (std::size_t k = 0; k < kPartitions; ++k) {
    auto r = shell(fmt::format("curl -s --cacert {} --cert {} --key {} -H 'Content-Type: application/json' "
                               "-d '{{\"reason\":\"keyCompromise\"}}' -w ' %{{http_code}}' {}/ca/rest/agent/certs/{}/revoke",
                               server_->ca_file().string(), server_->agent_cert().string(), server_->agent_key().string(),
                               server_->https_url(), by_partition[k][0].serial));
    ASSERT_NE(r.output.find(" 200"), std::string::npos) << r.output;
  }
  // Each partition's full CRL lists its own revoked certificate, and only its own.
  for (std::size_t k = 0; k < kPartitions; ++k) {
    const auto file = work_.path() / fmt::format("p{}.crl", k);
    std::string text;
    bool listed = false;
    for (int i = 0; i < 200 && !listed; ++i) {
      ASSERT_EQ(get_to(fmt::format("/crl/MasterCRL-{}.crl", k), file), "200");
      text = crl_text(file);
      listed = crl_listing(text, by_partition[k][0].serial) == CrlListing::listed;
      if (!listed) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_TRUE(listed) << "partition " << k << " never listed its revoked certificate\n" << text << server_->log();
    EXPECT_NE(text.find("verify OK"), std::string::npos) << text;
    EXPECT_NE(text.find("X509v3 Issuing Distribution Point: critical"), std::string::npos) << text;
    EXPECT_NE(text.find(fmt::format("/crl/MasterCRL-{}.crl", k)), std::string::npos) << text;
    for (std::size_t other = 0; other < kPartitions; ++other) {
      if (other == k) continue;
      EXPECT_EQ(crl_listing(text, by_partition[other][0].serial), CrlListing::absent)
          << "partition " << k << " lists a certificate of partition " << other;
    }
    // Dogtag's path names the partition as the issuing point and serves the same bytes.
    const auto dogtag = work_.path() / fmt::format("dogtag{}.crl", k);
    ASSERT_EQ(get_to(fmt::format("/ca/ee/ca/getCRL?op=getCRL&crlIssuingPoint=MasterCRL-{}", k), dogtag), "200");
    EXPECT_EQ(read_file(dogtag), read_file(file));
  }

  // What a relying party does: openssl downloads the CRL the certificate names and checks it.
  for (std::size_t k = 0; k < kPartitions; ++k) {
    auto revoked = shell(fmt::format("openssl verify -crl_check -crl_download -CAfile {} {}", server_->ca_file().string(),
                                     by_partition[k][0].pem.string()));
    EXPECT_NE(revoked.exit_code, 0) << revoked.output;
    EXPECT_NE(revoked.output.find("certificate revoked"), std::string::npos) << "partition " << k << ": " << revoked.output;
    auto good = shell(fmt::format("openssl verify -crl_check -crl_download -CAfile {} {}", server_->ca_file().string(),
                                  by_partition[k][1].pem.string()));
    EXPECT_EQ(good.exit_code, 0) << "partition " << k << ": " << good.output;
    EXPECT_NE(good.output.find(": OK"), std::string::npos) << good.output;
  }

  // The complete CRL lists all of them; partitions that do not exist are 404.
  const auto complete = work_.path() / "complete.crl";
  ASSERT_EQ(get_to("/crl/MasterCRL.crl", complete), "200");
  const auto complete_text = crl_text(complete);
  for (std::size_t k = 0; k < kPartitions; ++k)
    EXPECT_EQ(crl_listing(complete_text, by_partition[k][0].serial), CrlListing::listed);
  EXPECT_EQ(complete_text.find("Issuing Distribution Point"), std::string::npos) << "the complete CRL is not a partition";
  EXPECT_EQ(get_to("/crl/MasterCRL-4.crl", work_.path() / "none.crl"), "404");
  EXPECT_EQ(get_to("/crl/MasterCRL-x.crl", work_.path() / "none.crl"), "404");
  EXPECT_EQ(get_to("/ca/ee/ca/getCRL?crlIssuingPoint=MasterCRL-7", work_.path() / "none.crl"), "404");

  // Partition CRLs are public, like every CRL: over HTTPS a client certificate changes nothing. A
  // revoked one of this CA gets the same bytes as an anonymous client; one from another CA fails
  // the handshake; nothing is written.
  auto fetch = [&](const std::string& path, const std::string& options) {
    const auto out = work_.path() / "fetched.crl";
    std::filesystem::remove(out);
    auto code = shell(fmt::format("curl -s --cacert {} {} -o {} -w '%{{http_code}}' '{}{}'", server_->ca_file().string(),
                                  options, out.string(), server_->https_url(), path))
                    .output;
    return std::make_pair(code, std::filesystem::exists(out) ? read_file(out) : std::string());
  };
  auto made = shell(fmt::format("openssl req -x509 -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout {0}/stranger.key "
                                "-out {0}/stranger.pem -days 1 -subj /CN=stranger.example.com",
                                work_.path().string()));
  ASSERT_EQ(made.exit_code, 0) << made.output;
  const std::string revoked_client = fmt::format("--cert {} --key {}", by_partition[0][0].pem.string(),
                                                 (work_.path() / "leaf.key").string());
  const std::string foreign_client = fmt::format("--cert {0}/stranger.pem --key {0}/stranger.key", work_.path().string());
  for (const std::string path : {"/crl/MasterCRL-0.crl", "/crl/MasterCRL-0-delta.crl"}) {
    auto anonymous = fetch(path, "");
    EXPECT_EQ(anonymous.first, "200") << path;
    auto with_revoked = fetch(path, revoked_client);
    EXPECT_EQ(with_revoked.first, "200") << path;
    EXPECT_EQ(with_revoked.second, anonymous.second) << path;
    EXPECT_EQ(fetch(path, foreign_client).first, "000") << path << " answered a client with a foreign certificate";
    EXPECT_EQ(fetch(path, "-X POST -d x").first, "405") << path << " takes no writes";
  }
}

TEST_F(CrlPartitionsTest, ChangingThePartitionCountOfAnExistingCaIsRefusedAtStart) {
  ASSERT_EQ(server_->stop(), 0);
  // Certificates already name their partition's CRL: the count cannot change under them.
  auto config = read_file(server_->config_file());
  const auto at = config.find("partitions: 4");
  ASSERT_NE(at, std::string::npos) << config;
  config.replace(at, 13, "partitions: 8");
  write_file(server_->config_file(), config);
  auto run = shell(fmt::format("timeout 20 {} run --config {}", ca_server_binary().string(), server_->config_file().string()));
  EXPECT_NE(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("crl.partitions is 8 but this CA publishes 4 CRL partitions"), std::string::npos) << run.output;
}

}  // namespace
}  // namespace ca::testing
