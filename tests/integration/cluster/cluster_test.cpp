// A master and two clones, each a real ca-server with its own real slapd, set up with the real
// `ca-clone prepare` and `ca-clone spawn`, replicating multi-provider on loopback; and a real
// haproxy in front of them (TLS passes through).
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/openssl_owners.hpp"
#include "store/ca_store.hpp"
#include "store/ldap/embedded_directory.hpp"
#include "store/ldap/replication.hpp"
#include "support/ca_cluster_fixture.hpp"
#include "support/ca_server_fixture.hpp"
#include "support/crl_text.hpp"
#include "support/https_client.hpp"
#include "support/temp_dir.hpp"
#include "support/tls_proxy.hpp"

namespace ca::testing {
namespace {

// The replica ID a serial carries (bits 64..79, docs/ranges.md); -1 for another layout.
int replica_of_serial(const std::string& serial) {
  auto number = store::number_of_serial(serial.starts_with("0x") ? serial.substr(2) : serial);
  return number ? store::replica_of(*number) : -1;
}

// What must never repeat: the counter and replica ID in a serial's high bits (the 64 random low
// bits would make even a reused counter look unique).
std::string number_key(const std::string& serial) {
  auto number = store::number_of_serial(serial.starts_with("0x") ? serial.substr(2) : serial);
  return number ? fmt::format("{:x}", *number) : "unexpected layout: " + serial;
}

// Tiny ranges: claims race many times during a test.
constexpr const char* kTinyRanges = "  serial_range_size: 8\n  request_range_size: 8\n  low_water_mark: 3\n";
constexpr const char* kFastCrl = "  lease_seconds: 4\n  poll_ms: 300\n";

std::string ca_clone() { return ca_clone_binary().string(); }

// Tiny ranges and a fast CRL lease for every cluster here.
struct Cluster : CaCluster {
  Cluster() : CaCluster({.ranges_yaml = kTinyRanges, .crl_yaml = kFastCrl}) {}
};

int certificate_records(const CaServer& s) {
  return s.count_entries("ou=certificateRepository,ou=ca,o=pki-ca", "(objectClass=caCertificateRecord)");
}

// Every caSerialNumber value in one directory, with the real ldapsearch.
std::vector<std::string> serial_numbers(const CaServer& s) {
  auto r = shell(fmt::format(
      "ldapsearch -LLL -o ldif-wrap=no -x -H '{}' -D '{}' -y '{}' -b 'ou=certificateRepository,ou=ca,o=pki-ca' -s one "
      "'(objectClass=caCertificateRecord)' caSerialNumber | sed -n 's/^caSerialNumber: //p'",
      s.ldap_url(), s.bind_dn(), s.password_file().string()));
  std::vector<std::string> out;
  std::string line;
  std::istringstream in(r.output);
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(number_key(line));
  return out;
}

// Waits until every directory holds the same number of certificate records (at least `at_least`).
bool converge(const std::vector<CaServer*>& servers, int at_least, int seconds = 60) {
  for (int i = 0; i < seconds * 4; ++i) {
    std::set<int> counts;
    for (auto* s : servers) counts.insert(certificate_records(*s));
    if (counts.size() == 1 && *counts.begin() >= at_least) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  return false;
}

std::string make_csr(const std::filesystem::path& dir, const std::string& name) {
  auto r =
      shell(fmt::format("openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout {0}/{1}.key "
                        "-out {0}/{1}.csr -subj '/CN={1}.example.com' 2>&1",
                        dir.string(), name));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return read_file(dir / (name + ".csr"));
}

struct Issued {
  std::string serial;
  std::string pem;
};

// `count` enrollments against one server from one thread; every answer must be 201.
std::vector<Issued> enroll_many(const CaServer& server, const std::string& csr, int count, std::atomic<int>& failures) {
  std::vector<Issued> out;
  auto client = server.client();
  std::string body = fmt::format(R"({{"profile_id":"testServerCert","csr":"{}"}})", json_escape(csr));
  for (int i = 0; i < count; ++i) {
    auto reply = client.post("/ca/rest/certrequests", body);
    if (reply.status != 201) {
      ++failures;
      ADD_FAILURE() << "enrollment on " << server.https_url() << ": " << reply.status << " " << reply.body;
      continue;
    }
    out.push_back({json_field(reply.body, "serial"), json_field(reply.body, "certificate")});
  }
  return out;
}

// An agent revocation with the instance's own agent certificate (real curl); the output ends in the
// HTTP status.
Shell revoke(const CaServer& at, const std::string& serial) {
  return shell(
      fmt::format("curl -s --cacert {} --cert {} --key {} -H 'Content-Type: application/json' "
                  "-d '{{\"reason\":\"keyCompromise\"}}' -w ' %{{http_code}}' {}/ca/rest/agent/certs/{}/revoke",
                  at.ca_file().string(), at.agent_cert().string(), at.agent_key().string(), at.https_url(), serial));
}

// The same, retried while the record has not replicated to `at` yet (404).
Shell revoke_once_replicated(const CaServer& at, const std::string& serial) {
  auto r = revoke(at, serial);
  for (int i = 0; i < 100 && r.output.find(" 200") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    r = revoke(at, serial);
  }
  return r;
}

// How `openssl crl -text` prints a serial given as "0x..." hex.
std::string crl_serial_text(std::string serial) {
  serial = serial.substr(2);
  for (auto& ch : serial) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  if (serial.size() % 2) serial = "0" + serial;
  return serial;
}

// The CRLs an instance serves over plain HTTP, the full CRL then its delta CRL, as
// `openssl crl -text -crlnumber` (with the signature checked against `ca_file`) prints them:
// revocations between full CRLs are published in the delta.
std::string served_crl_text(const CaServer& s, const std::filesystem::path& ca_file,
                            const std::filesystem::path& scratch) {
  std::string text;
  for (const char* name : {"MasterCRL.crl", "MasterCRL-delta.crl"}) {
    std::filesystem::remove(scratch);
    shell(fmt::format("curl -s -o {} {}/crl/{}", scratch.string(), s.http_url(), name));
    text += shell(fmt::format("openssl crl -inform DER -in {} -CAfile {} -noout -text -crlnumber 2>&1",
                              scratch.string(), ca_file.string()))
                .output;
    text += "\n";
  }
  return text;
}

// The newest CRL number in `openssl crl -crlnumber` output ("crlNumber=0x1A", full and delta), or -1.
long long crl_number_in(const std::string& text) {
  long long newest = -1;
  for (auto at = text.find("crlNumber="); at != std::string::npos; at = text.find("crlNumber=", at + 10))
    newest = std::max(newest, std::stoll(text.substr(at + 10), nullptr, 16));
  return newest;
}

class ClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cluster_ = new Cluster();
    setup_error_ = new std::string(cluster_->build(2));
  }
  static void TearDownTestSuite() {
    delete cluster_;
    delete setup_error_;
  }
  void SetUp() override { ASSERT_TRUE(setup_error_->empty()) << *setup_error_; }
  // Scenarios that share one three-instance set-up (below).
  void HaproxyPassesTlsThroughToEveryInstance();
  void ClientsWaitingBehindTheBalancerGetTheirCertificatesFromAnyInstance();

  static Cluster* cluster_;
  static std::string* setup_error_;
};
Cluster* ClusterTest::cluster_ = nullptr;
std::string* ClusterTest::setup_error_ = nullptr;

TEST_F(ClusterTest, ThreeInstancesIssueConcurrentlyWithTinyRangesAndNoSerialRepeats) {
  auto servers = cluster_->all();
  ASSERT_EQ(servers.size(), 3u);
  std::string csr = make_csr(cluster_->work.path(), "concurrent");
  constexpr int kPerThread = 40;
  std::atomic<int> failures{0};
  std::vector<std::vector<Issued>> results(servers.size() * 2);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < results.size(); ++i)
    threads.emplace_back([&, i] { results[i] = enroll_many(*servers[i % servers.size()], csr, kPerThread, failures); });
  for (auto& t : threads) t.join();
  ASSERT_EQ(failures, 0);

  std::set<std::string> serials;
  std::map<int, int> by_replica;
  for (const auto& list : results)
    for (const auto& issued : list) {
      EXPECT_TRUE(serials.insert(number_key(issued.serial)).second) << "serial " << issued.serial << " reuses a number";
      by_replica[replica_of_serial(issued.serial)]++;
    }
  EXPECT_EQ(serials.size(), results.size() * kPerThread);
  EXPECT_EQ(by_replica.size(), 3u) << "each instance issues with its own replica ID in the serial";

  // Every record reaches every directory, and no directory holds a serial twice.
  int before = certificate_records(*servers[0]);
  ASSERT_TRUE(converge(servers, static_cast<int>(serials.size()))) << "directories did not converge";
  for (auto* s : servers) {
    auto numbers = serial_numbers(*s);
    std::set<std::string> unique(numbers.begin(), numbers.end());
    EXPECT_EQ(unique.size(), numbers.size()) << s->https_url() << " holds a serial twice";
    EXPECT_GE(static_cast<int>(numbers.size()), before);
  }
  // Many claims raced: each instance claimed many tiny ranges.
  int range_entries =
      servers[0]->count_entries("ou=certificateRepository,ou=ranges,o=pki-ca", "(objectClass=caRangeEntry)");
  EXPECT_GT(range_entries, 30) << "ranges were not tiny enough to race";
}

TEST_F(ClusterTest, ACertificateIssuedByACloneVerifiesAgainstTheMastersCa) {
  auto& clone = *cluster_->clones.at(0);
  std::string csr = make_csr(cluster_->work.path(), "byclone");
  std::atomic<int> failures{0};
  auto issued = enroll_many(clone, csr, 1, failures);
  ASSERT_EQ(issued.size(), 1u);
  auto pem = write_file(cluster_->work.path() / "byclone.pem", issued[0].pem);
  auto verified =
      shell(fmt::format("openssl verify -CAfile {} {}", cluster_->master->ca_file().string(), pem.string()));
  EXPECT_EQ(verified.exit_code, 0) << verified.output;
  // And the master knows it (replicated record).
  auto master = cluster_->master->client();
  HttpReply found;
  for (int i = 0; i < 100; ++i) {
    found = master.get("/ca/rest/certs/" + issued[0].serial);
    if (found.status == 200) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(found.status, 200) << found.body;
}

TEST_F(ClusterTest, RevocationsTravelBetweenMasterAndClonesBothWays) {
  auto& master = *cluster_->master;
  auto& clone = *cluster_->clones.at(1);
  std::string csr = make_csr(cluster_->work.path(), "revoked");
  std::atomic<int> failures{0};
  auto on_master = enroll_many(master, csr, 1, failures);
  auto on_clone = enroll_many(clone, csr, 1, failures);
  ASSERT_EQ(failures, 0);
  auto status_on = [&](const CaServer& at, const std::string& serial) {
    auto c = at.client();
    for (int i = 0; i < 200; ++i) {
      auto r = c.get("/ca/rest/certs/" + serial);
      if (r.status == 200 && json_field(r.body, "status") == "REVOKED") return std::string("REVOKED");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return std::string("not revoked");
  };
  // Revoked on the clone (with the clone's agent), seen on the master; and the other way round.
  // The master's certificate may reach the clone a moment after it was issued.
  auto r1 = revoke_once_replicated(clone, on_master[0].serial);
  EXPECT_NE(r1.output.find(" 200"), std::string::npos) << r1.output;
  EXPECT_EQ(status_on(master, on_master[0].serial), "REVOKED");
  auto r2 = revoke_once_replicated(master, on_clone[0].serial);
  EXPECT_NE(r2.output.find(" 200"), std::string::npos) << r2.output;
  EXPECT_EQ(status_on(clone, on_clone[0].serial), "REVOKED");

  // The CRL master (whichever it is) publishes both; every instance serves that CRL.
  for (auto* s : cluster_->all()) {
    bool listed = false;
    for (int i = 0; i < 100 && !listed; ++i) {
      auto text = served_crl_text(*s, master.ca_file(), cluster_->work.path() / "cluster.crl");
      listed = text.find("Serial Number: " + crl_serial_text(on_master[0].serial)) != std::string::npos &&
               text.find("Serial Number: " + crl_serial_text(on_clone[0].serial)) != std::string::npos;
      if (!listed) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_TRUE(listed) << s->http_url() << " does not serve a CRL with both revocations";
  }
}

// An agent call with the instance's own agent certificate (real curl): {status, body}.
std::pair<int, std::string> as_agent(const CaServer& at, const std::string& target, const std::string& body,
                                     const std::filesystem::path& scratch) {
  write_file(scratch / "agent-body.json", body);
  auto out = scratch / "agent-reply.json";
  // An empty body is a GET.
  std::string data = body.empty() ? std::string()
                                  : fmt::format("-H 'Content-Type: application/json' --data-binary @{}",
                                                (scratch / "agent-body.json").string());
  auto r = shell(fmt::format("curl -s --cacert {} --cert {} --key {} {} -o {} -w '%{{http_code}}' '{}{}'",
                             at.ca_file().string(), at.agent_cert().string(), at.agent_key().string(), data,
                             out.string(), at.https_url(), target));
  int status = 0;
  try {
    status = std::stoi(r.output);
  } catch (...) {
  }
  return {status, read_file(out)};
}

// 40-digit form of a "0x..." request id, as the directory stores it.
std::string fixed_width(const std::string& id) {
  std::string hex = id.substr(2);
  return std::string(40 - hex.size(), '0') + hex;
}

TEST_F(ClusterTest, ARequestSubmittedOnOneInstanceIsApprovedOnAnotherAndIssuedOnceByTheFirst) {
  auto& a = *cluster_->master;
  auto& b = *cluster_->clones.at(0);
  const auto scratch = cluster_->work.path();
  auto submit = [&](const std::string& name) {
    auto reply = a.client().post("/ca/rest/certrequests", fmt::format(R"({{"profile_id":"caServerCert","csr":"{}"}})",
                                                                      json_escape(make_csr(scratch, name))));
    EXPECT_EQ(reply.status, 202) << reply.body;
    return std::pair{json_field(reply.body, "request_id"), json_field(reply.body, "request_secret")};
  };
  // Approving on B needs the request there: it arrives by replication.
  auto approve_when_replicated = [&](CaServer& at, const std::string& id) {
    std::pair<int, std::string> r;
    for (int i = 0; i < 200; ++i) {
      r = as_agent(at, "/ca/rest/agent/certrequests/" + id + "/approve", "{}", scratch);
      if (r.first != 404) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    return r;
  };
  auto fetch_complete = [&](const std::string& id, const std::string& secret) {
    std::string body;
    for (int i = 0; i < 200; ++i) {
      auto r = a.client().get("/ca/rest/certrequests/" + id + "?secret=" + secret);
      body = r.body;
      if (r.status == 200 && json_field(r.body, "status") == "complete") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return body;
  };

  // Submit on A, approve on B: B records the approval; A, which received the request, issues it.
  auto [id, secret] = submit("approved-elsewhere");
  auto approval = approve_when_replicated(b, id);
  ASSERT_EQ(approval.first, 200) << approval.second;
  EXPECT_EQ(json_field(approval.second, "status"), "approved") << approval.second;
  std::string fetched = fetch_complete(id, secret);
  ASSERT_EQ(json_field(fetched, "status"), "complete") << fetched;
  write_file(scratch / "approved-elsewhere.pem", json_field(fetched, "certificate"));
  auto verify = shell(
      fmt::format("openssl verify -CAfile {} {}", a.ca_file().string(), (scratch / "approved-elsewhere.pem").string()));
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  EXPECT_EQ(replica_of_serial(json_field(fetched, "serial")), 1) << "issued by the instance that received it";

  // Two agents approve the same request at the same moment on two instances (two directory
  // servers): however the two compare-and-sets end, exactly one certificate exists.
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE(round);
    auto [id2, secret2] = submit(fmt::format("raced{}", round));
    // Wait until B sees it, without approving.
    for (int i = 0; i < 200; ++i) {
      auto r = as_agent(b, "/ca/rest/agent/certrequests?status=pending&size=1000", "", scratch);
      ASSERT_EQ(r.first, 200) << r.second;
      if (r.second.find("\"request_id\":\"" + id2 + "\"") != std::string::npos) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    std::pair<int, std::string> on_a, on_b;
    std::thread ta([&] { on_a = as_agent(a, "/ca/rest/agent/certrequests/" + id2 + "/approve", "{}", scratch / "a"); });
    std::thread tb([&] { on_b = as_agent(b, "/ca/rest/agent/certrequests/" + id2 + "/approve", "{}", scratch / "b"); });
    ta.join();
    tb.join();
    EXPECT_TRUE(on_a.first == 200 || on_a.first == 409) << on_a.first << " " << on_a.second;
    EXPECT_TRUE(on_b.first == 200 || on_b.first == 409) << on_b.first << " " << on_b.second;
    EXPECT_TRUE(on_a.first == 200 || on_b.first == 200) << "neither approval succeeded";
    std::string done = fetch_complete(id2, secret2);
    ASSERT_EQ(json_field(done, "status"), "complete") << done;
    // Let replication settle, then count the certificates of that request in both directories.
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    for (auto* s : {&a, &b}) {
      EXPECT_EQ(s->count_entries("ou=certificateRepository,ou=ca,o=pki-ca", "(caRequestId=" + fixed_width(id2) + ")"),
                1)
          << s->https_url();
    }
  }
}

TEST_F(ClusterTest, AProfileStoredOnTheMasterIsUsedByTheClones) {
  auto& master = *cluster_->master;
  // Copy testServerCert to a new profile, in the master's directory only (real ldapsearch/ldapadd).
  auto config =
      shell(fmt::format("ldapsearch -LLL -o ldif-wrap=no -x -H '{}' -D '{}' -y '{}' -b "
                        "'cn=testServerCert,ou=certificateProfiles,ou=ca,o=pki-ca' "
                        "-s base caProfileConfig | sed -n 's/^caProfileConfig:: //p'",
                        master.ldap_url(), master.bind_dn(), master.password_file().string()));
  std::string b64 = config.output.substr(0, config.output.find('\n'));
  ASSERT_FALSE(b64.empty()) << config.output;
  auto ldif = write_file(
      cluster_->work.path() / "profile.ldif",
      fmt::format("dn: cn=caWebServer,ou=certificateProfiles,ou=ca,o=pki-ca\nobjectClass: caProfile\n"
                  "cn: caWebServer\ncaProfileId: caWebServer\ncaProfileConfig:: {}\ncaProfileEnabled: TRUE\n",
                  b64));
  auto added = shell(fmt::format("ldapadd -x -H '{}' -D '{}' -y '{}' -f {}", master.ldap_url(), master.bind_dn(),
                                 master.password_file().string(), ldif.string()));
  ASSERT_EQ(added.exit_code, 0) << added.output;
  std::string csr = make_csr(cluster_->work.path(), "webserver");
  std::string body = fmt::format(R"({{"profile_id":"caWebServer","csr":"{}"}})", json_escape(csr));
  for (auto& clone : cluster_->clones) {
    auto client = clone->client();
    HttpReply reply;
    for (int i = 0; i < 40; ++i) {  // replication, then the clone re-reads its profiles
      reply = client.post("/ca/rest/certrequests", body);
      if (reply.status == 201) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_EQ(reply.status, 201) << clone->https_url() << ": " << reply.body;
  }
}

void ClusterTest::HaproxyPassesTlsThroughToEveryInstance() {
  std::vector<unsigned short> ports;
  for (auto* server : cluster_->all()) ports.push_back(server->port());
  TlsPassthroughProxy proxy(cluster_->work.path(), ports);
  ASSERT_TRUE(proxy.start()) << proxy.log();
  std::string csr = make_csr(cluster_->work.path(), "balanced");
  std::string body = fmt::format(R"({{"profile_id":"testServerCert","csr":"{}"}})", json_escape(csr));
  std::set<int> replicas;
  for (int i = 0; i < 12; ++i) {
    // A new connection each time, so round robin spreads them; the CA's own TLS certificate
    // (issued to 127.0.0.1 by the CA) is what the client sees: no termination at the proxy.
    HttpsClient client("127.0.0.1", proxy.port(), cluster_->master->ca_file());
    auto reply = client.post("/ca/rest/certrequests", body);
    ASSERT_EQ(reply.status, 201) << reply.body << "\nhaproxy: " << proxy.log();
    replicas.insert(replica_of_serial(json_field(reply.body, "serial")));
  }
  EXPECT_EQ(replicas.size(), 3u) << "haproxy did not reach every instance";
}

// Real clients waiting for an agent behind the balancer: each poll may land on another instance,
// the approval happens on the master, the instance that received the request issues it, and every
// instance answers the poll from the shared directory; a repeated EST request queues nothing new.
void ClusterTest::ClientsWaitingBehindTheBalancerGetTheirCertificatesFromAnyInstance() {
  std::vector<unsigned short> ports;
  for (auto* server : cluster_->all()) ports.push_back(server->port());
  TlsPassthroughProxy proxy(cluster_->work.path(), ports);
  ASSERT_TRUE(proxy.start()) << proxy.log();
  const auto& dir = cluster_->work.path();
  const std::string ca = cluster_->master->ca_file().string();
  const std::string agent = fmt::format("--cert {} --key {}", cluster_->master->agent_cert().string(),
                                        cluster_->master->agent_key().string());
  auto pending_id = [&](const std::string& subject) {
    for (int i = 0; i < 120; ++i) {
      auto list = shell(fmt::format("curl -s --cacert {} {} '{}/ca/rest/agent/certrequests?status=pending&size=1000'",
                                    ca, agent, cluster_->master->https_url()));
      auto at = list.output.find(subject);
      if (at != std::string::npos) {
        auto id_at = list.output.rfind("\"request_id\":\"", at);
        return list.output.substr(id_at + 14, list.output.find('"', id_at + 14) - id_at - 14);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    return std::string();
  };
  auto approve = [&](const std::string& id) {
    return shell(fmt::format("curl -s -o /dev/null -w '%{{http_code}}' --cacert {} {} -X POST "
                             "{}/ca/rest/agent/certrequests/{}/approve",
                             ca, agent, cluster_->master->https_url(), id))
        .output;
  };

  // EST: the same request sent again until the certificate comes.
  auto csr =
      shell(fmt::format("openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout {0}/est.key "
                        "-subj /CN=est-waiting.example.com -outform DER | base64 > {0}/est.b64",
                        dir.string()));
  ASSERT_EQ(csr.exit_code, 0) << csr.output;
  auto est = [&]() {
    return shell(fmt::format(
                     "curl -s -o {0}/est.p7 -w '%{{http_code}}' --cacert {1} -H 'Content-Type: application/pkcs10' "
                     "--data-binary @{0}/est.b64 {2}/.well-known/est/simpleenroll",
                     dir.string(), ca, proxy.url()))
        .output;
  };
  ASSERT_EQ(est(), "202") << read_file(dir / "est.p7");
  std::string id = pending_id("CN=est-waiting.example.com");
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(est(), "202");  // another instance, perhaps: still the one request, still waiting
  ASSERT_EQ(approve(id), "200");
  std::string status;
  for (int i = 0; i < 120 && status != "200"; ++i) {
    status = est();
    if (status != "200") std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  ASSERT_EQ(status, "200") << read_file(dir / "est.p7");
  auto cert =
      shell(fmt::format("base64 -d {0}/est.p7 | openssl pkcs7 -inform DER -print_certs -out {0}/est.pem && "
                        "openssl verify -CAfile {1} {0}/est.pem",
                        dir.string(), ca));
  EXPECT_EQ(cert.exit_code, 0) << cert.output;
  for (auto* s : cluster_->all())
    EXPECT_LE(s->count_entries("ou=requests,ou=ca,o=pki-ca", "(caSubjectDN=CN=est-waiting.example.com)"), 1)
        << s->https_url();

  // certmonger's helper: a cookie, polls through the balancer.
  make_csr(dir, "dogtag-waiting");
  const std::string submit =
      fmt::format("/usr/lib/certmonger/dogtag-submit -E {}/ca/ee/ca -i {} -T caServerCert", proxy.url(), ca);
  auto first = shell(fmt::format("{} {}/dogtag-waiting.csr 2>/dev/null", submit, dir.string()));
  ASSERT_EQ(first.exit_code, 1) << first.output;
  std::string cookie = first.output.substr(0, first.output.find_first_of("\r\n"));
  // The cookie holds Dogtag's decimal request number; the JSON API takes it as it is. The master
  // may see the request only once it has replicated.
  const std::string decimal_id = cookie.substr(cookie.find("requestId=") + 10);
  std::string approved;
  for (int i = 0; i < 120 && approved != "200"; ++i) {
    approved = approve(decimal_id);
    if (approved != "200") std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  ASSERT_EQ(approved, "200");
  Shell polled{};
  for (int i = 0; i < 120; ++i) {
    polled =
        shell(fmt::format("env CERTMONGER_OPERATION=POLL 'CERTMONGER_CA_COOKIE={}' {} 2>/dev/null", cookie, submit));
    if (polled.exit_code == 0) break;
    if (polled.exit_code == 5) {
      cookie = polled.output.substr(polled.output.find('\n') + 1);
      cookie = cookie.substr(0, cookie.find_first_of("\r\n"));
      continue;
    }
    ASSERT_EQ(polled.exit_code, 1) << polled.output;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  ASSERT_EQ(polled.exit_code, 0) << polled.output;
  write_file(dir / "dogtag-waiting.pem", polled.output);
  auto verified = shell(fmt::format("openssl verify -CAfile {} {}/dogtag-waiting.pem", ca, dir.string()));
  EXPECT_EQ(verified.exit_code, 0) << verified.output;
}

// Both through haproxy; one three-instance set-up for the two.
TEST_F(ClusterTest, HaproxyPassesTlsThroughAndWaitingClientsGetTheirCertificatesFromAnyInstance) {
  HaproxyPassesTlsThroughToEveryInstance();
  ClientsWaitingBehindTheBalancerGetTheirCertificatesFromAnyInstance();
}

TEST_F(ClusterTest, StatusShowsEveryInstanceAndRemoveRetiresAClone) {
  auto& master = *cluster_->master;
  ASSERT_TRUE(converge(cluster_->all(), 1));
  auto status = shell(fmt::format("{} status --config {} --json", ca_clone(), master.config_file().string()));
  EXPECT_EQ(status.exit_code, 0) << status.output;
  for (const char* id : {"\"master\"", "\"clone1\"", "\"clone2\""})
    EXPECT_NE(status.output.find(id), std::string::npos) << status.output;
  EXPECT_NE(status.output.find("\"duplicate_serials\":[]"), std::string::npos) << status.output;
  EXPECT_EQ(status.output.find("\"reachable\":false"), std::string::npos) << status.output;
  // The master's directory replicates with both clones' directories.
  std::size_t directories = 0;
  for (auto pos = status.output.find("\"directory\":"); pos != std::string::npos;
       pos = status.output.find("\"directory\":", pos + 1))
    ++directories;
  EXPECT_EQ(directories, 3u) << status.output;

  // Before removal, clone2's own subsystem certificate is accepted by the other instances.
  auto& clone1 = *cluster_->clones.at(0);
  auto& clone2 = *cluster_->clones.at(1);
  auto as_clone2 = [&](const CaServer& at, const std::string& method, const std::string& target,
                       const std::string& body) {
    std::string data = body.empty() ? "" : fmt::format("-H 'Content-Type: application/json' -d '{}'", body);
    auto r =
        shell(fmt::format("curl -s -o /dev/null -w '%{{http_code}}' --cacert {} --cert {} --key {} -X {} {} '{}{}'",
                          at.ca_file().string(), (clone2.dir() / "certs/subsystem.pem").string(),
                          (clone2.dir() / "private/subsystem.key").string(), method, data, at.https_url(), target));
    return std::atoi(r.output.c_str());
  };
  EXPECT_EQ(as_clone2(master, "GET", "/ca/rest/admin/topology", ""), 200);
  EXPECT_EQ(as_clone2(clone1, "GET", "/ca/rest/admin/topology", ""), 200);
  // The shared subsystem certificate is gone: each instance has its own, recorded by serial.
  EXPECT_NE(read_file(clone2.dir() / "certs/subsystem.pem"), read_file(master.dir() / "certs/subsystem.pem"));

  // clone2's directory reads the master's with its certificate (SASL EXTERNAL), hashes included ...
  auto directory_reads = [&](const CaServer& at) {
    auto r =
        shell(fmt::format("LDAPTLS_CACERT={} LDAPTLS_CERT={} LDAPTLS_KEY={} ldapsearch -Q -Y EXTERNAL -LLL "
                          "-H ldaps://127.0.0.1:{}/ -b o=pki-ca '(userPassword=*)' 1.1 2>&1 | grep -c '^dn:'",
                          at.ca_file().string(), (clone2.dir() / "certs/directory.pem").string(),
                          (clone2.dir() / "private/directory.key").string(), at.directory_port()));
    return std::atoi(r.output.c_str());
  };
  EXPECT_GT(directory_reads(master), 0);
  auto removed =
      shell(fmt::format("{} remove --config {} --instance-id clone2", ca_clone(), master.config_file().string()));
  EXPECT_EQ(removed.exit_code, 0) << removed.output;
  // ... and nothing once it is retired: in the master's directory, and in clone1's once the
  // change has replicated there.
  EXPECT_EQ(directory_reads(master), 0);
  int on_clone1 = -1;
  for (int i = 0; i < 100 && (on_clone1 = directory_reads(clone1)) != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(on_clone1, 0);
  // From then on clone2's certificate is refused by every admin endpoint of the master and of the
  // other clone (once the retirement has replicated there).
  const std::vector<std::pair<std::string, std::string>> endpoints{{"GET", "/ca/rest/admin/topology"},
                                                                   {"POST", "/ca/rest/admin/clones"},
                                                                   {"POST", "/ca/rest/admin/clones/2/replication"},
                                                                   {"DELETE", "/ca/rest/admin/clones/2"}};
  for (auto* at : {&master, &clone1}) {
    for (const auto& [method, target] : endpoints) {
      SCOPED_TRACE(at->https_url() + " " + method + " " + target);
      std::string body = target == "/ca/rest/admin/clones" ? R"({"instance_id":"clone2","url":"https://127.0.0.1:1"})"
                         : method == "POST"                ? R"({"directory_url":"ldaps://127.0.0.1:1/"})"
                                                           : "";
      int status = 0;
      for (int i = 0; i < 100 && (status = as_clone2(*at, method, target, body)) != 403; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      EXPECT_EQ(status, 403);
    }
  }
  // Its certificates were revoked (subsystem, TLS server, directory).
  for (const char* file : {"subsystem", "sslserver", "directory"}) {
    auto serial = shell(fmt::format("openssl x509 -noout -serial -in {}",
                                    (clone2.dir() / "certs" / (std::string(file) + ".pem")).string()));
    std::string hex = serial.output.substr(serial.output.find('=') + 1);
    while (!hex.empty() && (hex.back() == '\n' || hex.back() == '\r')) hex.pop_back();
    auto record = master.client().get("/ca/rest/certs/0x" + hex);
    EXPECT_EQ(json_field(record.body, "status"), "REVOKED") << file << ": " << record.body;
  }
  auto again =
      shell(fmt::format("{} remove --config {} --instance-id clone2", ca_clone(), master.config_file().string()));
  EXPECT_EQ(again.exit_code, 1) << again.output;
  auto after = shell(fmt::format("{} status --config {}", ca_clone(), master.config_file().string()));
  EXPECT_NE(after.output.find("retired"), std::string::npos) << after.output;
  // A bundle from another CA is refused before anything is made.
  CaServer other(CaServerOptions{.instance_id = "other", .replica_id = 1});
  ASSERT_EQ(other.init().exit_code, 0);
  auto pass = write_file(cluster_->work.path() / "other.pass", "other-secret\n");
  auto other_bundle = cluster_->work.path() / "other.p12";
  ASSERT_EQ(shell(fmt::format("{} prepare --config {} --pkcs12-file {} --pkcs12-password-file {}", ca_clone(),
                              other.config_file().string(), other_bundle.string(), pass.string()))
                .exit_code,
            0);
  CaServer stranger(CaServerOptions{.instance_id = "stranger",
                                    .clone_master_url = master.https_url(),
                                    .clone_bundle = other_bundle,
                                    .clone_password_file = pass});
  auto refused = stranger.init();
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_NE(refused.output.find("another CA"), std::string::npos) << refused.output;
  EXPECT_FALSE(std::filesystem::exists(stranger.dir())) << "a refused spawn left an instance folder behind";
  // A wrong password, likewise.
  auto wrong = write_file(cluster_->work.path() / "wrong.pass", "not-the-password\n");
  CaServer wrong_pw(CaServerOptions{.instance_id = "wrongpw",
                                    .clone_master_url = master.https_url(),
                                    .clone_bundle = cluster_->work.path() / "bundle.p12",
                                    .clone_password_file = wrong});
  auto denied = wrong_pw.init();
  EXPECT_EQ(denied.exit_code, 1) << denied.output;
  EXPECT_NE(denied.output.find("wrong password"), std::string::npos) << denied.output;
  EXPECT_FALSE(std::filesystem::exists(wrong_pw.dir()));
}

// Replication cut between the master's and a clone's directories: both claim ranges from their own
// (stale) copy of the shared counters and issue; after healing, no serial appears twice.
TEST(ClusterPartitionTest, BothSidesIssueDuringAPartitionAndNoSerialRepeatsAfterHealing) {
  Cluster cluster;
  // The partition is made by removing the agreements: the self-healing mesh would put them back.
  cluster.options.directory_yaml = "  mesh: false\n";
  auto error = cluster.build(1);
  ASSERT_TRUE(error.empty()) << error;
  auto& master = *cluster.master;
  auto& clone = *cluster.clones.at(0);
  ASSERT_TRUE(converge(cluster.all(), 1));

  auto config_admin = [](const CaServer& s) { return config_admin_endpoint(s); };
  auto master_peers = store::replication_peers(config_admin(master));
  auto clone_peers = store::replication_peers(config_admin(clone));
  ASSERT_TRUE(master_peers && clone_peers);
  ASSERT_EQ(master_peers->size(), 1u);
  ASSERT_EQ(clone_peers->size(), 1u);
  // Cut both directions.
  ASSERT_TRUE(store::remove_replication_peer(config_admin(master), (*master_peers)[0].replica_id, "o=pki-ca"));
  ASSERT_TRUE(store::remove_replication_peer(config_admin(clone), (*clone_peers)[0].replica_id, "o=pki-ca"));
  int base = certificate_records(master);

  std::string csr = make_csr(cluster.work.path(), "partitioned");
  std::atomic<int> failures{0};
  std::vector<Issued> a, b;
  std::thread ta([&] { a = enroll_many(master, csr, 60, failures); });
  std::thread tb([&] { b = enroll_many(clone, csr, 60, failures); });
  ta.join();
  tb.join();
  ASSERT_EQ(failures, 0);
  // Really partitioned: neither side sees the other's new records.
  EXPECT_EQ(certificate_records(master), base + 60);
  // And ca-clone status says so: the master's directory consumes from nobody any more.
  auto during = shell(fmt::format("{} status --config {} --interval 1", ca_clone(), master.config_file().string()));
  EXPECT_EQ(during.exit_code, 1) << during.output;
  EXPECT_NE(during.output.find("consumes from no other directory"), std::string::npos) << during.output;

  // Heal.
  ASSERT_TRUE(store::put_replication_peer(config_admin(master), (*master_peers)[0], "o=pki-ca"));
  ASSERT_TRUE(store::put_replication_peer(config_admin(clone), (*clone_peers)[0], "o=pki-ca"));
  ASSERT_TRUE(converge(cluster.all(), base + 120)) << "records did not converge after healing";

  std::set<std::string> serials;
  for (const auto& list : {a, b})
    for (const auto& issued : list)
      EXPECT_TRUE(serials.insert(number_key(issued.serial)).second) << issued.serial << " reuses a number";
  for (auto* s : cluster.all()) {
    auto numbers = serial_numbers(*s);
    std::set<std::string> unique(numbers.begin(), numbers.end());
    EXPECT_EQ(unique.size(), numbers.size());
  }
  // The partition did make both sides claim the same counter ranges (the hazard this design is
  // for); the replica ID in the serial is what kept them apart.
  auto ranges = shell(
      fmt::format("ldapsearch -LLL -o ldif-wrap=no -x -H '{}' -D '{}' -y '{}' -b "
                  "'ou=certificateRepository,ou=ranges,o=pki-ca' -s one "
                  "'(objectClass=caRangeEntry)' cn | sed -n 's/^cn: \\([0-9]*\\)-r.*/\\1/p' | sort | uniq -d | wc -l",
                  master.ldap_url(), master.bind_dn(), master.password_file().string()));
  EXPECT_GT(std::stoi(ranges.output), 0) << "no range was claimed on both sides: the test did not exercise the hazard";
  // ca-clone status reports those overlapping claims, and no duplicate serial.
  auto status = shell(fmt::format("{} status --config {} --json", ca_clone(), master.config_file().string()));
  EXPECT_EQ(status.exit_code, 0) << status.output;
  EXPECT_NE(status.output.find("\"duplicate_serials\":[]"), std::string::npos) << status.output;
  EXPECT_EQ(status.output.find("\"overlapping_range_claims\":[]"), std::string::npos)
      << "status reports no overlapping claims after the partition:\n"
      << status.output;
  EXPECT_NE(status.output.find("claimed by replicas"), std::string::npos) << status.output;
}

// The CRL master's machine dies (ca-server SIGKILLed, so the lease is not released; its slapd goes
// with it): the other instance takes the lease once it has expired and publishes the next CRLs,
// with numbers that keep rising; when the old master comes back it follows and serves them.
TEST(ClusterFailoverTest, WhenTheCrlMasterDiesTheOtherInstanceTakesOverTheCrl) {
  Cluster cluster;
  auto error = cluster.build(1);
  ASSERT_TRUE(error.empty()) << error;
  auto& master = *cluster.master;
  auto& clone = *cluster.clones.at(0);
  auto scratch = cluster.work.path() / "failover.crl";
  // The master started first, so it holds the lease; the clone serves the CRL it published.
  ASSERT_NE(master.log().find("is now the CRL master"), std::string::npos) << master.log();
  EXPECT_EQ(clone.log().find("is now the CRL master"), std::string::npos) << clone.log();
  long long before = -1;
  for (int i = 0; i < 100 && before < 0; ++i) {
    before = crl_number_in(served_crl_text(clone, master.ca_file(), scratch));
    if (before < 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_GT(before, 0) << "the clone serves no CRL";

  std::string csr = make_csr(cluster.work.path(), "failover");
  std::atomic<int> failures{0};
  auto issued = enroll_many(clone, csr, 1, failures);
  ASSERT_EQ(issued.size(), 1u);
  ASSERT_EQ(::kill(master.pid(), SIGKILL), 0);
  master.stop();  // reaps the killed process
  auto revoked = revoke(clone, issued[0].serial);
  ASSERT_NE(revoked.output.find(" 200"), std::string::npos) << revoked.output;

  // Lease 4 s, polls every 300 ms: the clone publishes a CRL with the revocation well within 30 s.
  std::string text;
  bool listed = false;
  for (int i = 0; i < 300 && !listed; ++i) {
    text = served_crl_text(clone, master.ca_file(), scratch);
    listed = text.find("Serial Number: " + crl_serial_text(issued[0].serial)) != std::string::npos;
    if (!listed) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(listed) << "no CRL with the revocation after the master died\n" << text << "\n" << clone.log();
  EXPECT_NE(text.find("verify OK"), std::string::npos) << text;
  EXPECT_NE(clone.log().find("is now the CRL master"), std::string::npos) << clone.log();
  long long after = crl_number_in(text);
  EXPECT_GT(after, before) << "the CRL number went backwards across the takeover";

  // The old master comes back: the clone keeps the lease, and the old master serves the clone's
  // CRL once replication has caught up.
  auto log_before_restart = master.log().size();
  ASSERT_TRUE(master.start()) << master.log();
  bool follows = false;
  for (int i = 0; i < 300 && !follows; ++i) {
    auto served = served_crl_text(master, master.ca_file(), scratch);
    follows = served.find("Serial Number: " + crl_serial_text(issued[0].serial)) != std::string::npos &&
              crl_number_in(served) >= after;
    if (!follows) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(follows) << "the restarted master does not serve the clone's CRL\n" << master.log();
  auto restarted_log = master.log().substr(log_before_restart);
  EXPECT_EQ(restarted_log.find("is now the CRL master"), std::string::npos)
      << "the restarted master took the lease from a live CRL master\n"
      << restarted_log;
}

// The replica ID an instance runs with (from the config it runs with).
int replica_id_of(const CaServer& s) {
  const std::string text = read_file(s.config_file());
  auto at = text.find("replica_id:");
  return at == std::string::npos ? -1 : std::atoi(text.c_str() + at + 11);
}

// Polls `what` for up to `seconds`.
bool eventually(const std::function<bool()>& what, int seconds) {
  for (int i = 0; i < seconds * 10; ++i) {
    if (what()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return what();
}

// POST /ca/rest/certrequests with an Idempotency-Key (real curl); "<status> <body>".
std::pair<int, std::string> enroll_with_key(const CaServer& s, const std::filesystem::path& body_file,
                                            const std::string& key) {
  auto r =
      shell(fmt::format("curl -s --cacert {} -H 'Content-Type: application/json' -H 'Idempotency-Key: {}' "
                        "--data-binary @{} -w ' %{{http_code}}' {}/ca/rest/certrequests",
                        s.ca_file().string(), key, body_file.string(), s.https_url()));
  auto space = r.output.rfind(' ');
  if (space == std::string::npos) return {0, r.output};
  return {std::atoi(r.output.c_str() + space + 1), r.output.substr(0, space)};
}

TEST(ClusterIdempotencyTest, TheSameKeySentToTwoInstancesAtOnceIssuesOneCertificate) {
  Cluster cluster;
  auto error = cluster.build(1);
  ASSERT_TRUE(error.empty()) << error;
  auto& master = *cluster.master;
  auto& clone = *cluster.clones.at(0);
  // Both instances know both directories (the claims are placed by rendezvous over them).
  ASSERT_TRUE(eventually(
      [&] {
        return master.count_entries("ou=replica,o=pki-ca", "(&(objectClass=caReplicaInstance)(caDirectoryUrl=*))") ==
                   2 &&
               clone.count_entries("ou=replica,o=pki-ca", "(&(objectClass=caReplicaInstance)(caDirectoryUrl=*))") == 2;
      },
      30))
      << master.log();
  // ...and each instance has re-read the registry since (every 2 s): until then two instances may
  // rank the directories differently for a key (docs/deployment.md).
  std::this_thread::sleep_for(std::chrono::seconds(3));
  const int before = certificate_records(master);
  constexpr int kKeys = 12;
  std::set<std::string> serials;
  for (int k = 0; k < kKeys; ++k) {
    auto body = write_file(cluster.work.path() / fmt::format("keyed{}.json", k),
                           fmt::format(R"({{"profile_id":"testServerCert","csr":"{}"}})",
                                       json_escape(make_csr(cluster.work.path(), fmt::format("keyed{}", k)))));
    const std::string key = fmt::format("two-instances-{}", k);
    std::pair<int, std::string> on_master, on_clone;
    std::thread a([&] { on_master = enroll_with_key(master, body, key); });
    std::thread b([&] { on_clone = enroll_with_key(clone, body, key); });
    a.join();
    b.join();
    ASSERT_EQ(on_master.first, 201) << on_master.second;
    ASSERT_EQ(on_clone.first, 201) << on_clone.second;
    EXPECT_EQ(json_field(on_master.second, "serial"), json_field(on_clone.second, "serial")) << "key " << key;
    serials.insert(json_field(on_master.second, "serial"));
  }
  EXPECT_EQ(serials.size(), static_cast<std::size_t>(kKeys));
  ASSERT_TRUE(converge(cluster.all(), before + kKeys));
  // Counted by subject: the clone's own certificate records may still be replicating in.
  for (auto* s : cluster.all())
    EXPECT_EQ(s->count_entries("ou=certificateRepository,ou=ca,o=pki-ca", "(caSubjectDN=CN=keyed*)"), kKeys)
        << "a key issued more than one certificate (" << s->https_url() << ")";
}

TEST(ClusterMasterLossTest, ClonesReplicateWithEachOtherAfterTheMasterIsLostAndAPromotedCloneRegistersANewOne) {
  Cluster cluster;
  auto error = cluster.build(2);
  ASSERT_TRUE(error.empty()) << error;
  auto& master = *cluster.master;
  auto& clone1 = *cluster.clones.at(0);
  auto& clone2 = *cluster.clones.at(1);
  const int id1 = replica_id_of(clone1), id2 = replica_id_of(clone2);
  ASSERT_GT(id1, 1);
  ASSERT_GT(id2, id1);
  // The mesh: each clone consumes from the other, not only from the master.
  ASSERT_TRUE(eventually(
      [&] {
        return clone1.log().find(fmt::format("mesh: now consuming from replica {}", id2)) != std::string::npos &&
               clone2.log().find(fmt::format("mesh: now consuming from replica {}", id1)) != std::string::npos;
      },
      40))
      << clone1.log() << "\n"
      << clone2.log();

  // The master's machine is lost for good: its ca-server and its slapd die, its folder goes.
  const pid_t master_slapd = std::stoi(read_file(master.dir() / "slapd" / "slapd.pid"));
  ASSERT_EQ(::kill(master.pid(), SIGKILL), 0);
  ::kill(master_slapd, SIGKILL);
  master.stop();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // The bootstrap administrator's credential is the person's, kept off the lost machine.
  const auto admin_cert = cluster.work.path() / "admin.pem", admin_key = cluster.work.path() / "admin.key";
  std::filesystem::copy_file(master.admin_cert(), admin_cert);
  std::filesystem::copy_file(master.admin_key(), admin_key);
  std::filesystem::remove_all(master.dir());

  // The clones still replicate with each other, both ways.
  std::atomic<int> failures{0};
  const int before = certificate_records(clone1);
  auto on1 = enroll_many(clone1, make_csr(cluster.work.path(), "after-loss-1"), 3, failures);
  auto on2 = enroll_many(clone2, make_csr(cluster.work.path(), "after-loss-2"), 3, failures);
  ASSERT_EQ(failures.load(), 0);
  ASSERT_TRUE(converge({&clone1, &clone2}, before + 6)) << "the clones stopped replicating without the master";

  // Promote clone1: it registers clones from now on, with replica IDs above every one known.
  auto promoted = shell(fmt::format("{} promote --config {} --gap 5", ca_clone(), clone1.config_file().string()));
  ASSERT_EQ(promoted.exit_code, 0) << promoted.output;
  EXPECT_NE(promoted.output.find("now the registrar"), std::string::npos) << promoted.output;
  // The lost master stays listed until it is retired: status says so, and what to run.
  const std::string status_command =
      fmt::format("{} status --config {} --interval 0.5", ca_clone(), clone1.config_file().string());
  auto status = shell(status_command);
  EXPECT_EQ(status.exit_code, 1) << status.output;
  EXPECT_NE(status.output.find("Instance master was replaced by a promote ('clone1' registers clones now)"),
            std::string::npos)
      << status.output;
  const std::string remove_master =
      fmt::format("ca-clone remove --config {} --instance-id master", clone1.config_file().string());
  EXPECT_NE(status.output.find(remove_master), std::string::npos) << status.output;
  // Clone1's own certificate cannot retire another instance; an administrator can.
  auto as_instance = shell(fmt::format(
      "{} remove --config {} --instance-id master --cert {} --key {}", ca_clone(), clone1.config_file().string(),
      (clone1.dir() / "certs" / "subsystem.pem").string(), (clone1.dir() / "private" / "subsystem.key").string()));
  EXPECT_EQ(as_instance.exit_code, 1) << as_instance.output;
  EXPECT_NE(as_instance.output.find("administrator"), std::string::npos) << as_instance.output;
  auto removed = shell(fmt::format("{} remove --config {} --instance-id master --cert {} --key {}", ca_clone(),
                                   clone1.config_file().string(), admin_cert.string(), admin_key.string()));
  ASSERT_EQ(removed.exit_code, 0) << removed.output;
  // Healthy once every directory has dropped the master's agreement (the mesh follows the registry).
  Shell healthy{-1, ""};
  for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
       std::chrono::steady_clock::now() < until;) {
    healthy = shell(status_command);
    if (healthy.exit_code == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  EXPECT_EQ(healthy.exit_code, 0) << healthy.output;

  auto password = write_file(cluster.work.path() / "bundle3.pass", "bundle-secret-3\n");
  auto bundle = cluster.work.path() / "bundle3.p12";
  auto prepared = shell(fmt::format("{} prepare --config {} --pkcs12-file {} --pkcs12-password-file {}", ca_clone(),
                                    clone1.config_file().string(), bundle.string(), password.string()));
  ASSERT_EQ(prepared.exit_code, 0) << prepared.output;
  CaServer clone3(CaServerOptions{.instance_id = "clone3",
                                  .ranges_yaml = kTinyRanges,
                                  .crl_yaml = kFastCrl,
                                  .clone_master_url = clone1.https_url(),
                                  .clone_bundle = bundle,
                                  .clone_password_file = password});
  clone3.use_credentials_of(clone1);
  auto spawned = clone3.init();
  ASSERT_EQ(spawned.exit_code, 0) << spawned.output;
  ASSERT_TRUE(clone3.start()) << clone3.log();
  const int id3 = replica_id_of(clone3);
  EXPECT_GE(id3, id2 + 1 + 5) << "the new clone's replica ID is not above every known ID plus the gap";

  // The new clone joins the mesh: what it issues reaches clone2, which it was never spawned against.
  const int before3 = certificate_records(clone2);
  auto on3 = enroll_many(clone3, make_csr(cluster.work.path(), "from-clone3"), 2, failures);
  ASSERT_EQ(failures.load(), 0);
  EXPECT_TRUE(converge({&clone1, &clone2, &clone3}, before3 + 2)) << clone2.log();
  EXPECT_TRUE(eventually(
      [&] { return clone2.log().find(fmt::format("mesh: now consuming from replica {}", id3)) != std::string::npos; },
      30))
      << clone2.log();
}

TEST(ClusterCrlPushTest, AFollowerServesANewCrlWithoutWaitingForItsPoll) {
  // The followers poll only once a minute: a CRL reaching them within seconds came by push.
  Cluster cluster;
  cluster.options.crl_yaml = "  lease_seconds: 30\n  poll_ms: 60000\n";
  auto error = cluster.build(1);
  ASSERT_TRUE(error.empty()) << error;
  auto& master = *cluster.master;
  auto& clone = *cluster.clones.at(0);
  auto scratch = cluster.work.path() / "push.crl";
  std::atomic<int> failures{0};
  auto issued = enroll_many(master, make_csr(cluster.work.path(), "pushed"), 1, failures);
  ASSERT_EQ(issued.size(), 1u);
  ASSERT_TRUE(converge(cluster.all(), 1));
  auto revoked = revoke(master, issued[0].serial);
  ASSERT_NE(revoked.output.find(" 200"), std::string::npos) << revoked.output;
  const auto start = std::chrono::steady_clock::now();
  bool served = eventually(
      [&] {
        return served_crl_text(clone, master.ca_file(), scratch)
                   .find("Serial Number: " + crl_serial_text(issued[0].serial)) != std::string::npos;
      },
      15);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_TRUE(served) << clone.log();
  // Debounce (100 ms) + activation delay (1 s, the same moment on every instance) + push.
  EXPECT_LT(seconds, 3.0) << "the follower learned of the new CRL only by its poll";
}

// A relying party that polls every instance's full and delta CRL every 100 ms over plain HTTP (real
// curl) and remembers what it saw, to check what must hold whatever happens to the masters:
// - two CRLs with the same number have the same bytes (full or delta, any instance, any time);
// - from one instance, the full CRL number and the newest number never go down;
// - from one instance, a serial listed once (full CRL completed by its delta) stays listed.
class RelyingParty {
 public:
  struct Seen {
    std::chrono::steady_clock::time_point at;
    long long full = -1, delta = -1;  // numbers
    std::set<std::string> listed;     // upper-case hex serials, full + delta - removeFromCRL
  };

  RelyingParty(std::vector<CaServer*> instances, std::filesystem::path scratch)
      : instances_(std::move(instances)), scratch_(std::move(scratch)) {
    std::filesystem::create_directories(scratch_);
  }
  ~RelyingParty() { stop(); }
  void start() {
    thread_ = std::thread([this] {
      while (!stopping_) {
        for (std::size_t i = 0; i < instances_.size(); ++i) poll(i);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    });
  }
  void stop() {
    stopping_ = true;
    if (thread_.joinable()) thread_.join();
  }
  // Every observation of instance i, in order.
  std::vector<Seen> seen(std::size_t i) const {
    std::lock_guard lock(mutex_);
    return seen_.count(i) ? seen_.at(i) : std::vector<Seen>{};
  }
  // What broke the rules, one line each.
  std::vector<std::string> violations() const {
    std::lock_guard lock(mutex_);
    std::vector<std::string> out = violations_;
    for (const auto& [i, list] : seen_) {
      for (std::size_t j = 1; j < list.size(); ++j) {
        const auto& a = list[j - 1];
        const auto& b = list[j];
        if (b.full < a.full) out.push_back(fmt::format("instance {}: full CRL {} after {}", i, b.full, a.full));
        if (std::max(b.full, b.delta) < std::max(a.full, a.delta))
          out.push_back(fmt::format("instance {}: newest CRL {} after {}", i, std::max(b.full, b.delta),
                                    std::max(a.full, a.delta)));
        for (const auto& serial : a.listed)
          if (!b.listed.count(serial))
            out.push_back(fmt::format("instance {}: serial {} listed by CRL {}/{} is missing from CRL {}/{}", i, serial,
                                      a.full, a.delta, b.full, b.delta));
      }
    }
    return out;
  }
  std::size_t distinct_numbers() const {
    std::lock_guard lock(mutex_);
    return bytes_by_number_.size();
  }

 private:
  // The CRL's number, whether it is a delta, and its entries (serial -> removeFromCRL), parsed in process.
  struct Parsed {
    long long number = -1;
    long long base = -1;  // delta CRLs: the full CRL they complete
    std::map<std::string, bool> entries;
  };
  static std::optional<Parsed> parse(const std::string& der) {
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    ossl::UniquePtr<X509_CRL> crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size())));
    if (!crl) return std::nullopt;
    Parsed out;
    ossl::UniquePtr<ASN1_INTEGER> number(
        static_cast<ASN1_INTEGER*>(X509_CRL_get_ext_d2i(crl.get(), NID_crl_number, nullptr, nullptr)));
    if (!number) return std::nullopt;
    uint64_t value = 0;
    if (ASN1_INTEGER_get_uint64(&value, number.get()) != 1) return std::nullopt;
    out.number = static_cast<long long>(value);
    ossl::UniquePtr<ASN1_INTEGER> base(
        static_cast<ASN1_INTEGER*>(X509_CRL_get_ext_d2i(crl.get(), NID_delta_crl, nullptr, nullptr)));
    if (base && ASN1_INTEGER_get_uint64(&value, base.get()) == 1) out.base = static_cast<long long>(value);
    auto* revoked = X509_CRL_get_REVOKED(crl.get());
    for (int i = 0; revoked && i < sk_X509_REVOKED_num(revoked); ++i) {
      auto* entry = sk_X509_REVOKED_value(revoked, i);
      ossl::UniquePtr<BIGNUM> bn(ASN1_INTEGER_to_BN(X509_REVOKED_get0_serialNumber(entry), nullptr));
      char* hex = BN_bn2hex(bn.get());
      const std::string serial = openssl_serial_hex(hex ? hex : "");
      OPENSSL_free(hex);
      ossl::UniquePtr<ASN1_ENUMERATED> reason(
          static_cast<ASN1_ENUMERATED*>(X509_REVOKED_get_ext_d2i(entry, NID_crl_reason, nullptr, nullptr)));
      out.entries[serial] = reason && ASN1_ENUMERATED_get(reason.get()) == 8;
    }
    return out;
  }

  void poll(std::size_t i) {
    const auto full_file = scratch_ / fmt::format("full{}.der", i);
    const auto delta_file = scratch_ / fmt::format("delta{}.der", i);
    std::filesystem::remove(full_file);
    std::filesystem::remove(delta_file);
    shell(fmt::format("curl -s -m 2 -o {} {}/crl/MasterCRL.crl -o {} {}/crl/MasterCRL-delta.crl", full_file.string(),
                      instances_[i]->http_url(), delta_file.string(), instances_[i]->http_url()));
    const std::string full_der = read_file(full_file), delta_der = read_file(delta_file);
    auto full = parse(full_der);
    auto delta = parse(delta_der);
    if (!full) return;  // down, stopped or not serving yet
    Seen seen;
    seen.at = std::chrono::steady_clock::now();
    seen.full = full->number;
    for (const auto& [serial, removed] : full->entries)
      if (!removed) seen.listed.insert(serial);
    std::lock_guard lock(mutex_);
    auto record = [&](long long number, const std::string& der) {
      auto [it, fresh] = bytes_by_number_.emplace(number, der);
      if (!fresh && it->second != der)
        violations_.push_back(fmt::format("two different CRLs carry the number {} (one from instance {})", number, i));
    };
    record(full->number, full_der);
    if (delta) record(delta->number, delta_der);
    // The two GETs may straddle a switch to a new CRL: a delta CRL completes only its own base, and
    // a relying party that got a delta of another base keeps the view it had (as RFC 5280 clients do).
    if (delta && delta->base != full->number) return;
    if (delta) {
      seen.delta = delta->number;
      for (const auto& [serial, removed] : delta->entries) {
        if (removed)
          seen.listed.erase(serial);
        else
          seen.listed.insert(serial);
      }
    }
    seen_[i].push_back(std::move(seen));
  }

  std::vector<CaServer*> instances_;
  std::filesystem::path scratch_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  mutable std::mutex mutex_;
  std::map<std::size_t, std::vector<Seen>> seen_;
  std::map<long long, std::string> bytes_by_number_;
  std::vector<std::string> violations_;
};

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

// Whether instance `s` serves a CRL (full + delta) listing `serial`.
bool serves_revoked(const CaServer& s, const CaServer& master, const std::string& serial,
                    const std::filesystem::path& scratch) {
  auto text = served_crl_text(s, master.ca_file(), scratch);
  const auto full_end = text.find("crlNumber=");
  const auto split = full_end == std::string::npos ? std::string::npos : text.find('\n', full_end);
  if (split == std::string::npos) return false;
  return listed_by_full_and_delta(text.substr(0, split), text.substr(split), serial);
}

// `count` certificates enrolled on `at`, once every directory of the cluster holds them.
std::vector<Issued> enrolled_everywhere(Cluster& cluster, const CaServer& at, const std::string& name, int count) {
  std::atomic<int> failures{0};
  auto issued = enroll_many(at, make_csr(cluster.work.path(), name), count, failures);
  EXPECT_EQ(issued.size(), static_cast<std::size_t>(count));
  EXPECT_TRUE(converge(cluster.all(), count)) << "the certificates did not reach every directory";
  return issued;
}

// Whether instance `s` serves CRLs (full + delta) listing every one of `issued`.
bool serves_every(const CaServer& s, const CaServer& master, const std::vector<Issued>& issued,
                  const std::filesystem::path& scratch) {
  return std::all_of(issued.begin(), issued.end(),
                     [&](const Issued& i) { return serves_revoked(s, master, i.serial, scratch); });
}

// What a relying party that polled every instance must never have seen, and that it saw enough.
void expect_consistent_crls(const RelyingParty& party, std::size_t instances) {
  const auto violations = party.violations();
  EXPECT_TRUE(violations.empty()) << joined(violations);
  EXPECT_GE(party.distinct_numbers(), 3u) << "the relying party saw too few CRLs to mean anything";
  for (std::size_t i = 0; i < instances; ++i) EXPECT_GT(party.seen(i).size(), 10u) << "instance " << i;
}

// Resumes a process stopped with SIGSTOP when it goes out of scope (also when an assertion ends the
// test early).
struct ResumeOnExit {
  pid_t pid;
  ~ResumeOnExit() { ::kill(pid, SIGCONT); }
};

// The CRL master is SIGSTOPped past its lease: another instance takes over and publishes; when the
// old master resumes it writes nothing and stands down; a relying party polling every instance
// meanwhile never sees two different CRLs with one number, nor a number going down.
TEST(ClusterCrlFencingTest, AMasterStoppedPastItsLeaseWritesNothingWhenItResumes) {
  Cluster cluster;
  auto error = cluster.build(2);
  ASSERT_TRUE(error.empty()) << error;
  auto& master = *cluster.master;
  auto& clone1 = *cluster.clones.at(0);
  auto& clone2 = *cluster.clones.at(1);
  auto scratch = cluster.work.path() / "fencing.crl";
  ASSERT_NE(master.log().find("is now the CRL master"), std::string::npos) << master.log();
  auto issued = enrolled_everywhere(cluster, clone1, "fenced", 3);
  ASSERT_EQ(issued.size(), 3u);
  RelyingParty party(cluster.all(), cluster.work.path() / "party");
  party.start();

  ASSERT_EQ(::kill(master.pid(), SIGSTOP), 0);
  ResumeOnExit resume{master.pid()};
  auto first = revoke_once_replicated(clone1, issued[0].serial);
  ASSERT_NE(first.output.find(" 200"), std::string::npos) << first.output;
  // Lease 4 s, margin 0.8 s: a clone takes over after 4.8 s without renewals, confirms 1.5 s later.
  ASSERT_TRUE(eventually(
      [&] {
        return clone1.log().find("is now the CRL master") != std::string::npos ||
               clone2.log().find("is now the CRL master") != std::string::npos;
      },
      30))
      << clone1.log() << clone2.log();
  ASSERT_TRUE(eventually([&] { return serves_revoked(clone2, master, issued[0].serial, scratch); }, 20))
      << "the new master's CRL does not list the revocation\n"
      << clone1.log() << clone2.log();

  const auto resumed_at = master.log().size();
  ASSERT_EQ(::kill(master.pid(), SIGCONT), 0);
  auto second = revoke_once_replicated(clone2, issued[1].serial);
  ASSERT_NE(second.output.find(" 200"), std::string::npos) << second.output;
  auto third = revoke_once_replicated(master, issued[2].serial);  // the old master's side
  ASSERT_NE(third.output.find(" 200"), std::string::npos) << third.output;
  // The old master follows the new one's CRLs, and every instance serves every revocation ...
  EXPECT_TRUE(eventually(
      [&] {
        return serves_every(master, master, issued, scratch) && serves_every(clone1, master, issued, scratch) &&
               serves_every(clone2, master, issued, scratch);
      },
      5))
      << master.log().substr(resumed_at) << clone1.log() << clone2.log();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  party.stop();
  // ... and wrote nothing after it resumed: it stood down (its lease ran out while it was stopped).
  const std::string after = master.log().substr(resumed_at);
  EXPECT_EQ(after.find("published full CRL"), std::string::npos) << after;
  EXPECT_EQ(after.find("published delta CRL"), std::string::npos) << after;
  EXPECT_NE(after.find("is no longer the CRL master"), std::string::npos) << after;
  EXPECT_EQ(after.find("is now the CRL master"), std::string::npos) << after;

  expect_consistent_crls(party, 3);
}

// A partition between the CRL master and a clone: each side elects its own master (different
// epochs, so different numbers) and publishes its side's revocation. After the heal, every CRL with a
// number above all that were served before lists both revocations, and from no instance does a
// listed serial ever disappear.
TEST(ClusterCrlPartitionTest, RevocationsFromBothSidesAreInEveryCrlAfterTheHeal) {
  Cluster cluster;
  cluster.options.directory_yaml = "  mesh: false\n";  // the cut would be healed by the mesh
  auto error = cluster.build(1);
  ASSERT_TRUE(error.empty()) << error;
  auto& master = *cluster.master;
  auto& clone = *cluster.clones.at(0);
  auto scratch = cluster.work.path() / "partition.crl";
  auto issued = enrolled_everywhere(cluster, master, "sides", 2);
  ASSERT_EQ(issued.size(), 2u);
  RelyingParty party(cluster.all(), cluster.work.path() / "party");
  party.start();

  auto master_peers = store::replication_peers(config_admin_endpoint(master));
  auto clone_peers = store::replication_peers(config_admin_endpoint(clone));
  ASSERT_TRUE(master_peers && clone_peers);
  ASSERT_EQ(master_peers->size(), 1u);
  ASSERT_EQ(clone_peers->size(), 1u);
  ASSERT_TRUE(store::remove_replication_peer(config_admin_endpoint(master), (*master_peers)[0].replica_id, "o=pki-ca"));
  ASSERT_TRUE(store::remove_replication_peer(config_admin_endpoint(clone), (*clone_peers)[0].replica_id, "o=pki-ca"));
  const auto cut_at = std::chrono::steady_clock::now();
  ASSERT_NE(revoke(master, issued[0].serial).output.find(" 200"), std::string::npos);
  ASSERT_NE(revoke(clone, issued[1].serial).output.find(" 200"), std::string::npos);
  // Each side publishes its own revocation: the clone only once it has taken the lease over.
  ASSERT_TRUE(eventually([&] { return serves_revoked(master, master, issued[0].serial, scratch); }, 20))
      << master.log();
  ASSERT_TRUE(eventually([&] { return serves_revoked(clone, master, issued[1].serial, scratch); }, 30)) << clone.log();
  EXPECT_FALSE(serves_revoked(master, master, issued[1].serial, scratch)) << "the partition was not real";
  // The newest number served before the heal, by each instance (the relying party may not have
  // polled since the last switch).
  long long before_heal = std::max(crl_number_in(served_crl_text(master, master.ca_file(), scratch)),
                                   crl_number_in(served_crl_text(clone, master.ca_file(), scratch)));
  for (std::size_t i = 0; i < 2; ++i)
    for (const auto& s : party.seen(i)) before_heal = std::max({before_heal, s.full, s.delta});

  // A partition of 30 s: both masters renew their own epochs all along.
  std::this_thread::sleep_until(cut_at + std::chrono::seconds(30));
  ASSERT_TRUE(store::put_replication_peer(config_admin_endpoint(master), (*master_peers)[0], "o=pki-ca"));
  ASSERT_TRUE(store::put_replication_peer(config_admin_endpoint(clone), (*clone_peers)[0], "o=pki-ca"));
  const auto healed = std::chrono::steady_clock::now();
  const auto both = [&](const CaServer& s) {
    return serves_revoked(s, master, issued[0].serial, scratch) && serves_revoked(s, master, issued[1].serial, scratch);
  };
  ASSERT_TRUE(eventually([&] { return both(master) && both(clone); }, 5))
      << "after the heal the CRLs do not list both sides' revocations\n"
      << master.log() << clone.log();
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - healed);
  std::cout << "both revocations served by both instances " << took.count() << " ms after the heal\n";
  std::this_thread::sleep_for(std::chrono::seconds(3));
  party.stop();

  const auto violations = party.violations();
  EXPECT_TRUE(violations.empty()) << joined(violations);
  const std::string a = openssl_serial_hex(issued[0].serial), b = openssl_serial_hex(issued[1].serial);
  int after_heal = 0;
  for (std::size_t i = 0; i < 2; ++i) {
    for (const auto& s : party.seen(i)) {
      if (std::max(s.full, s.delta) <= before_heal) continue;
      ++after_heal;
      EXPECT_TRUE(s.listed.count(a) && s.listed.count(b)) << "instance " << i << " served CRL " << s.full << "/"
                                                          << s.delta << " (after the heal) without both revocations";
    }
  }
  EXPECT_GT(after_heal, 0) << "no CRL newer than the partition's was served after the heal";
}

// Cuts the replication INTO one instance's directory (its consumer agreements) until restored; its
// own writes still reach the others.
struct HeldBackReplication {
  store::LdapEndpoint config;
  std::vector<store::ReplicationPeer> peers;
  bool held = false;
  explicit HeldBackReplication(const CaServer& s) : config(config_admin_endpoint(s)) {}
  ::testing::AssertionResult hold() {
    auto listed = store::replication_peers(config);
    if (!listed || listed->empty()) return ::testing::AssertionFailure() << "no agreements to hold back";
    peers = *listed;
    for (const auto& p : peers)
      if (!store::remove_replication_peer(config, p.replica_id, "o=pki-ca"))
        return ::testing::AssertionFailure() << "cut";
    held = true;
    return ::testing::AssertionSuccess();
  }
  ::testing::AssertionResult restore() {
    if (!std::exchange(held, false)) return ::testing::AssertionSuccess();
    for (const auto& p : peers)
      if (!store::put_replication_peer(config, p, "o=pki-ca")) return ::testing::AssertionFailure() << "restore";
    return ::testing::AssertionSuccess();
  }
  ~HeldBackReplication() { (void)restore(); }
};

// The CRL master's DIRECTORY freezes past the lease (its ca-server keeps running and cannot reach
// it): a clone takes the lease over with a new epoch and publishes. After the thaw, replication into
// the old master's directory is held back for a few seconds, so that directory still names the old
// master at its old epoch: the old master must not renew that epoch or publish under it (it did
// before: its renewal, the newer write, carried the old epoch back everywhere and split the CRLs).
// Revocations on both sides; after the heal every instance serves full and delta CRLs listing all
// of them within 5 s, and a relying party polling every instance never sees a number go down, two
// CRLs with one number, or a listed serial disappear.
TEST(ClusterCrlFreezeTest, AFrozenMasterDirectoryNeverSplitsTheCrls) {
  // The master's own mesh upkeep would restore the held-back agreements; the clones keep theirs.
  Cluster cluster;
  cluster.options.master_directory_yaml = "  mesh: false\n";
  auto error = cluster.build(2);
  ASSERT_TRUE(error.empty()) << error;
  auto& master = *cluster.master;
  auto& clone1 = *cluster.clones.at(0);
  auto& clone2 = *cluster.clones.at(1);
  auto scratch = cluster.work.path() / "freeze.crl";
  ASSERT_NE(master.log().find("is now the CRL master"), std::string::npos) << master.log();
  auto issued = enrolled_everywhere(cluster, clone1, "frozen", 3);
  ASSERT_EQ(issued.size(), 3u);
  RelyingParty party(cluster.all(), cluster.work.path() / "party");
  party.start();

  HeldBackReplication into_master(master);
  ASSERT_TRUE(into_master.hold());
  const pid_t slapd = std::stoi(read_file(master.dir() / "slapd" / "slapd.pid"));
  ASSERT_EQ(::kill(slapd, SIGSTOP), 0);
  ResumeOnExit resume{slapd};
  auto first = revoke_once_replicated(clone1, issued[0].serial);
  ASSERT_NE(first.output.find(" 200"), std::string::npos) << first.output;
  ASSERT_TRUE(eventually(
      [&] {
        return clone1.log().find("is now the CRL master") != std::string::npos ||
               clone2.log().find("is now the CRL master") != std::string::npos;
      },
      30))
      << clone1.log() << clone2.log();
  ASSERT_TRUE(eventually([&] { return serves_revoked(clone2, master, issued[0].serial, scratch); }, 20))
      << "the new master's CRL does not list the revocation\n"
      << clone1.log() << clone2.log();

  const auto thawed_at = master.log().size();
  ASSERT_EQ(::kill(slapd, SIGCONT), 0);
  // The old master's side: a revocation written into its (stale) directory, which replicates out.
  auto second = revoke_once_replicated(master, issued[1].serial);
  ASSERT_NE(second.output.find(" 200"), std::string::npos) << second.output;
  // The other side.
  auto third = revoke_once_replicated(clone2, issued[2].serial);
  ASSERT_NE(third.output.find(" 200"), std::string::npos) << third.output;
  std::this_thread::sleep_for(std::chrono::seconds(4));  // the old master acts on its stale directory
  {
    const std::string stale = master.log().substr(thawed_at);
    EXPECT_EQ(stale.find("published full CRL"), std::string::npos) << stale;
    EXPECT_EQ(stale.find("published delta CRL"), std::string::npos) << stale;
    EXPECT_EQ(stale.find("is now the CRL master"), std::string::npos) << stale;
  }
  ASSERT_TRUE(into_master.restore());
  const auto healed = std::chrono::steady_clock::now();
  EXPECT_TRUE(eventually(
      [&] {
        return serves_every(master, master, issued, scratch) && serves_every(clone1, master, issued, scratch) &&
               serves_every(clone2, master, issued, scratch);
      },
      5))
      << "5 s after the heal not every instance serves every revocation\n"
      << master.log().substr(thawed_at) << clone1.log() << clone2.log();
  std::cout << "every revocation served by all 3 instances "
            << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - healed).count()
            << " ms after the heal\n";
  std::this_thread::sleep_for(std::chrono::seconds(2));
  party.stop();
  const std::string after = master.log().substr(thawed_at);
  EXPECT_EQ(after.find("is now the CRL master"), std::string::npos) << "the old master came back under its old epoch\n"
                                                                    << after;
  expect_consistent_crls(party, 3);
}

}  // namespace
}  // namespace ca::testing
