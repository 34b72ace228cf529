// Observability of a real ca-server (embedded slapd): /metrics on both ports moves with the
// requests, the access log has a JSON line per request, and `ca-server audit verify` accepts the
// audit log the server wrote and finds the record a tamperer removed.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <limits>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "support/ca_server_fixture.hpp"

namespace ca::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// "name{labels}" -> value, from the text exposition. Every sample must belong to a family that
// was declared with # TYPE before it.
std::map<std::string, double> parse_metrics(const std::string& text) {
  std::map<std::string, double> samples;
  std::vector<std::string> families;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    EXPECT_NE(end, std::string::npos) << "the exposition ends with a newline";
    if (end == std::string::npos) break;
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    if (line.starts_with("# TYPE ")) {
      families.push_back(line.substr(7, line.find(' ', 7) - 7));
      continue;
    }
    if (line.starts_with("# HELP ")) continue;
    const auto space = line.rfind(' ');
    EXPECT_NE(space, std::string::npos) << line;
    if (space == std::string::npos) continue;
    const std::string key = line.substr(0, space);
    const std::string name = key.substr(0, key.find('{'));
    const bool declared = std::ranges::any_of(families, [&](const std::string& f) {
      return name == f || name == f + "_bucket" || name == f + "_sum" || name == f + "_count";
    });
    EXPECT_TRUE(declared) << "sample without # TYPE: " << line;
    const std::string value = line.substr(space + 1);
    samples[key] = value == "+Inf" ? std::numeric_limits<double>::infinity() : std::stod(value);
  }
  return samples;
}

// A string field of an access log line, "" if it is missing or not a string.
std::string text_of(const boost::json::object& o, const char* key) {
  auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

double value_or_zero(const std::map<std::string, double>& samples, const std::string& key) {
  auto it = samples.find(key);
  return it == samples.end() ? 0 : it->second;
}

class ObservabilityTest : public SharedCaServerTest {
 protected:

  std::string path(const std::string& name) const { return (work_ / name).string(); }

  struct Reply {
    int status = 0;
    std::string headers, body;
  };
  Reply curl(const std::string& url, const std::string& arguments = "") {
    const auto n = std::to_string(++calls_);
    auto r = shell(fmt::format("curl -s --max-time 20 --cacert {} -D {} -o {} -w '%{{http_code}}' {} '{}'",
                               server_->ca_file().string(), path("h" + n), path("b" + n), arguments, url));
    return {std::atoi(r.output.c_str()), read_file(work_ / ("h" + n)), read_file(work_ / ("b" + n))};
  }

  // Enrolls NAME under testServerCert with curl, sending X-Request-Id; returns the JSON reply.
  Reply enroll(const std::string& name, const std::string& request_id) {
    write_file(work_ / (name + ".json"), enrollment_json(openssl_csr(work_.path(), name)));
    return curl(server_->https_url() + "/ca/rest/certrequests",
                fmt::format("-H 'Content-Type: application/json' -H 'X-Request-Id: {}' --data-binary @{}", request_id,
                            path(name + ".json")));
  }

  Reply revoke_as_agent(const std::string& serial) {
    return curl(server_->https_url() + "/ca/rest/agent/certs/" + serial + "/revoke",
                fmt::format("-X POST -H 'Content-Type: application/json' -d '{{\"reason\":\"keyCompromise\"}}' "
                            "--cert {} --key {}",
                            server_->agent_cert().string(), server_->agent_key().string()));
  }

  // The access log line with this request id (the log is flushed within a second).
  boost::json::object access_line(const std::string& request_id) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    do {
      const std::string text = read_file(server_->dir() / "logs" / "access.log");
      for (std::size_t start = 0; start < text.size();) {
        const auto end = text.find('\n', start);
        if (end == std::string::npos) break;
        const std::string line = text.substr(start, end - start);
        start = end + 1;
        boost::json::error_code ec;
        auto value = boost::json::parse(line, ec);
        EXPECT_FALSE(ec) << "not JSON: " << line;
        if (ec || !value.is_object()) continue;
        const auto& o = value.as_object();
        if (text_of(o, "request_id") == request_id) return o;
      }
      std::this_thread::sleep_for(100ms);
    } while (std::chrono::steady_clock::now() < deadline);
    ADD_FAILURE() << "no access log line with request_id " << request_id;
    return {};
  }

  Shell audit_verify(const std::string& extra = "") {
    return shell(fmt::format("{} audit verify --config {} {}", ca_server_binary().string(),
                             server_->config_file().string(), extra));
  }

  TempDir work_{"ca-obs"};
  int calls_ = 0;
};

TEST_F(ObservabilityTest, MetricsOnBothPortsMoveWithAnEnrollment) {
  const std::string https_metrics = server_->https_url() + "/metrics";
  const std::string http_metrics = server_->http_url() + "/metrics";
  const std::string enrolled_key = "ca_http_requests_total{endpoint=\"/ca/rest/certrequests\",method=\"POST\",status=\"201\"}";
  const std::string enroll_count = "ca_enrollment_duration_seconds_count{endpoint=\"/ca/rest/certrequests\"}";
  const std::string scrapes_key = "ca_http_requests_total{endpoint=\"/metrics\",method=\"GET\",status=\"200\"}";

  auto before = curl(https_metrics);
  ASSERT_EQ(before.status, 200) << before.body;
  EXPECT_NE(before.headers.find("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"), std::string::npos)
      << before.headers;
  const auto b = parse_metrics(before.body);
  const auto plain_before = parse_metrics(curl(http_metrics).body);

  auto reply = enroll("metrics", "obs-metrics-1");
  ASSERT_EQ(reply.status, 201) << reply.body;
  // A path no route matches is counted under "unmatched", never under its own name.
  EXPECT_EQ(curl(server_->https_url() + "/no/such/path-" + std::to_string(::getpid())).status, 404);

  auto after = curl(https_metrics);
  ASSERT_EQ(after.status, 200);
  const auto a = parse_metrics(after.body);
  EXPECT_EQ(value_or_zero(a, enrolled_key), value_or_zero(b, enrolled_key) + 1) << after.body;
  EXPECT_EQ(value_or_zero(a, enroll_count), value_or_zero(b, enroll_count) + 1) << after.body;
  EXPECT_GE(value_or_zero(a, scrapes_key), value_or_zero(b, scrapes_key) + 1) << "the first scrape was counted";
  EXPECT_EQ(value_or_zero(a, "ca_http_requests_total{endpoint=\"unmatched\",method=\"GET\",status=\"404\"}"),
            value_or_zero(b, "ca_http_requests_total{endpoint=\"unmatched\",method=\"GET\",status=\"404\"}") + 1);
  EXPECT_EQ(after.body.find("no/such/path"), std::string::npos) << "raw paths never become labels";
  EXPECT_GE(value_or_zero(a, "ca_store_commit_batch_size_count"), value_or_zero(b, "ca_store_commit_batch_size_count") + 1);
  EXPECT_GE(value_or_zero(a, "ca_store_commit_sync_seconds_count"), 1);
  EXPECT_EQ(value_or_zero(a, "ca_http_request_duration_seconds_bucket{endpoint=\"/ca/rest/certrequests\",le=\"+Inf\"}"),
            value_or_zero(a, "ca_http_request_duration_seconds_count{endpoint=\"/ca/rest/certrequests\"}"));

  ASSERT_TRUE(a.contains("ca_serial_range_remaining")) << after.body;
  EXPECT_GT(a.at("ca_serial_range_remaining"), 0);
  EXPECT_LT(a.at("ca_serial_range_remaining"), b.at("ca_serial_range_remaining")) << "the enrollment used a serial";
  ASSERT_TRUE(a.contains("ca_crl_number")) << after.body;
  EXPECT_GE(a.at("ca_crl_number"), 1);
  EXPECT_GE(a.at("ca_crl_age_seconds"), 0);
  EXPECT_EQ(value_or_zero(a, "ca_crl_master"), 1) << "a lone instance holds the CRL lease";
  EXPECT_EQ(value_or_zero(a, "ca_crl_lease_holder_info{instance=\"test\"}"), 1) << after.body;
  EXPECT_TRUE(a.contains("ca_ready")) << after.body;
  // The CRL consistency counters: present, and zero on a lone instance.
  for (const char* counter : {"ca_crl_behind_total", "ca_crl_older_stored_total", "ca_crl_lease_epoch_regressions_total"}) {
    ASSERT_TRUE(a.contains(counter)) << counter << "\n" << after.body;
    EXPECT_EQ(a.at(counter), 0) << counter;
    EXPECT_NE(after.body.find(fmt::format("# TYPE {} counter", counter)), std::string::npos) << counter;
  }

  // The plain-HTTP listener serves the same registry.
  auto plain = curl(http_metrics);
  ASSERT_EQ(plain.status, 200);
  EXPECT_NE(plain.headers.find("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"), std::string::npos);
  const auto p = parse_metrics(plain.body);
  EXPECT_EQ(value_or_zero(p, enrolled_key), value_or_zero(plain_before, enrolled_key) + 1);
  EXPECT_TRUE(p.contains("ca_serial_range_remaining"));

  // The directory's contextCSN is read in the background every few seconds.
  auto csn_ages = [&] {
    std::vector<double> ages;
    for (const auto& [key, value] : parse_metrics(curl(http_metrics).body))
      if (key.starts_with("ca_replication_context_csn_age_seconds{server_id=\"")) ages.push_back(value);
    return ages;
  };
  auto ages = csn_ages();
  for (auto deadline = std::chrono::steady_clock::now() + 12s; ages.empty() && std::chrono::steady_clock::now() < deadline;
       ages = csn_ages())
    std::this_thread::sleep_for(500ms);
  ASSERT_FALSE(ages.empty()) << "no ca_replication_context_csn_age_seconds sample";
  for (double age : ages) EXPECT_GE(age, 0);
  EXPECT_EQ(value_or_zero(parse_metrics(curl(http_metrics).body), "ca_ready"), 1);
}

TEST_F(ObservabilityTest, AccessLogHasAJsonLinePerRequest) {
  auto reply = enroll("logged", "obs-access-1");
  ASSERT_EQ(reply.status, 201) << reply.body;
  EXPECT_NE(reply.headers.find("X-Request-Id: obs-access-1\r\n"), std::string::npos) << reply.headers;
  const std::string serial = json_field(reply.body, "serial");
  ASSERT_TRUE(serial.starts_with("0x")) << reply.body;

  auto line = access_line("obs-access-1");
  ASSERT_FALSE(line.empty());
  EXPECT_EQ(text_of(line, "method"), "POST");
  EXPECT_EQ(text_of(line, "path"), "/ca/rest/certrequests");
  EXPECT_EQ(line.at("status").as_int64(), 201);
  EXPECT_EQ(text_of(line, "serial"), serial.substr(2));
  EXPECT_TRUE(text_of(line, "peer").starts_with("127.0.0.1:")) << line;
  EXPECT_TRUE(line.at("latency_ms").is_number()) << line;
  EXPECT_FALSE(line.contains("agent"));
  const std::string time = text_of(line, "time");
  EXPECT_EQ(time.size(), 24u) << time;  // 2026-12-01T10:00:00.123Z
  EXPECT_TRUE(time.ends_with("Z")) << time;

  // An agent's revocation: the agent, its TLS certificate and the serial are in the line.
  auto revoked = curl(server_->https_url() + "/ca/rest/agent/certs/" + serial + "/revoke",
                      fmt::format("-X POST -H 'X-Request-Id: obs-revoke-1' -H 'Content-Type: application/json' "
                                  "-d '{{\"reason\":\"superseded\"}}' --cert {} --key {}",
                                  server_->agent_cert().string(), server_->agent_key().string()));
  ASSERT_EQ(revoked.status, 200) << revoked.body;
  auto agent_line = access_line("obs-revoke-1");
  ASSERT_FALSE(agent_line.empty());
  EXPECT_EQ(text_of(agent_line, "serial"), serial.substr(2));
  EXPECT_NE(text_of(agent_line, "agent").find("CN=CA Administrator"), std::string::npos) << agent_line;
  EXPECT_TRUE(text_of(agent_line, "tls_client").starts_with("CN=CA Administrator")) << agent_line;

  // A request id that is not a sane token is replaced, in the answer and in the log alike.
  auto odd = curl(server_->http_url() + "/crl/MasterCRL.crl", "-H 'X-Request-Id: <script>'");
  ASSERT_EQ(odd.status, 200);
  const auto at = odd.headers.find("X-Request-Id: ");
  ASSERT_NE(at, std::string::npos) << odd.headers;
  const std::string replaced = odd.headers.substr(at + 14, odd.headers.find("\r\n", at) - at - 14);
  EXPECT_EQ(replaced.size(), 32u) << replaced;
  auto crl_line = access_line(replaced);
  ASSERT_FALSE(crl_line.empty());
  EXPECT_EQ(text_of(crl_line, "path"), "/crl/MasterCRL.crl");

  struct stat st {};
  ASSERT_EQ(::stat((server_->dir() / "logs" / "access.log").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
}

TEST_F(ObservabilityTest, AuditLogVerifiesAndTamperingIsFound) {
  auto reply = enroll("audited", "obs-audit-1");
  ASSERT_EQ(reply.status, 201) << reply.body;
  const std::string serial = json_field(reply.body, "serial");
  ASSERT_EQ(revoke_as_agent(serial).status, 200);

  // While the server runs the newest records may not be signed yet: unverified (exit 1), never
  // "intact"; nothing is tampered with.
  auto running = audit_verify();
  EXPECT_TRUE(running.exit_code == 0 || running.output.find("UNVERIFIED") != std::string::npos) << running.output;
  EXPECT_EQ(running.output.find("TAMPERED"), std::string::npos) << running.output;

  ASSERT_EQ(server_->stop(), 0) << server_->log();  // a clean stop signs what is unsigned
  const fs::path log_file = server_->dir() / "logs" / "audit.log";
  const std::string text = read_file(log_file);
  EXPECT_NE(text.find("\"event\":\"certificate_issued\""), std::string::npos) << text;
  EXPECT_NE(text.find(serial), std::string::npos) << text;
  EXPECT_NE(text.find("\"event\":\"agent_call\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"event\":\"certificate_revoked\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"event\":\"log_signature\""), std::string::npos) << text;

  auto intact = audit_verify();
  EXPECT_EQ(intact.exit_code, 0) << intact.output;
  EXPECT_NE(intact.output.find("result:     intact"), std::string::npos) << intact.output;
  EXPECT_EQ(intact.output.find("unsigned tail"), std::string::npos) << intact.output;

  // Delete a middle line.
  std::vector<std::string> lines;
  for (std::size_t start = 0; start < text.size();) {
    const auto end = text.find('\n', start);
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  ASSERT_GE(lines.size(), 3u) << text;
  const std::size_t removed = lines.size() / 2;  // 0-based: record removed + 1
  const fs::path pristine = work_ / "audit-pristine.log";
  write_file(pristine, text);
  std::string tampered;
  for (std::size_t i = 0; i < lines.size(); ++i)
    if (i != removed) tampered += lines[i] + "\n";
  write_file(log_file, tampered);

  auto found = audit_verify();
  EXPECT_EQ(found.exit_code, 1) << found.output;
  EXPECT_NE(found.output.find(fmt::format("record {} (line {}): seq jumps from {} to {}", removed + 2, removed + 1,
                                          removed, removed + 2)),
            std::string::npos)
      << found.output;
  EXPECT_NE(found.output.find(fmt::format("record {} missing here", removed + 1)), std::string::npos) << found.output;
  EXPECT_NE(found.output.find("TAMPERED"), std::string::npos) << found.output;

  // --file checks another copy; a missing file is a usage error.
  EXPECT_EQ(audit_verify("--file " + pristine.string()).exit_code, 0);
  EXPECT_EQ(audit_verify("--file " + (work_ / "missing.log").string()).exit_code, 2);
  EXPECT_EQ(shell(fmt::format("{} audit frobnicate --config {}", ca_server_binary().string(),
                              server_->config_file().string()))
                .exit_code,
            2);
}

// /healthz, /readyz and /metrics are for balancers and Prometheus: anyone may read them, and a
// client certificate changes nothing. One from another CA fails the TLS handshake, as everywhere;
// a revoked one of this CA gets the same public figures as an anonymous client, nothing more;
// they take no writes.
TEST_F(ObservabilityTest, HealthAndMetricsAreTheSameForAnonymousRevokedAndRefuseForeignCertificates) {
  const std::vector<std::string> paths{"/healthz", "/readyz", "/metrics"};
  // Ready first (the CRL master needs a moment after start).
  for (int i = 0; i < 50 && curl(server_->https_url() + "/readyz").status != 200; ++i)
    std::this_thread::sleep_for(100ms);
  // The advisory CRL check is listed, passes, and says it is advisory.
  auto ready = curl(server_->https_url() + "/readyz");
  EXPECT_NE(ready.body.find(R"("name":"crl_epochs","ok":true)"), std::string::npos) << ready.body;
  EXPECT_NE(ready.body.find(R"("advisory":true)"), std::string::npos) << ready.body;
  for (const auto& base : {server_->https_url(), server_->http_url()})
    for (const auto& p : paths) {
      auto anonymous = curl(base + p);
      EXPECT_EQ(anonymous.status, 200) << base << p << " " << anonymous.body;
      EXPECT_EQ(curl(base + p, "-X POST -d x").status, 405) << base << p << " takes no writes";
    }

  // A certificate of this CA, revoked.
  auto issued = enroll("revokedclient", "obs-revoked-client");
  ASSERT_EQ(issued.status, 201) << issued.body;
  write_file(work_ / "revokedclient.pem", json_field(issued.body, "certificate"));
  ASSERT_EQ(revoke_as_agent(json_field(issued.body, "serial")).status, 200);
  const std::string revoked = fmt::format("--cert {} --key {}", path("revokedclient.pem"), path("revokedclient.key"));
  for (const auto& p : paths) {
    auto anonymous = curl(server_->https_url() + p);
    auto with_revoked = curl(server_->https_url() + p, revoked);
    EXPECT_EQ(with_revoked.status, anonymous.status) << p;
    if (p != "/metrics") {  // the counters move between two scrapes; their names do not
      EXPECT_EQ(json_field(with_revoked.body, "status") + json_field(with_revoked.body, "ready"),
                json_field(anonymous.body, "status") + json_field(anonymous.body, "ready"))
          << p;
    }
    EXPECT_EQ(with_revoked.body.find("revokedclient"), std::string::npos) << p << " names the client";
  }

  // A certificate from another CA: the handshake fails, nothing is answered.
  auto made = shell(fmt::format("openssl req -x509 -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout {} -out {} "
                                "-days 1 -subj /CN=stranger.example.com",
                                path("stranger.key"), path("stranger.pem")));
  ASSERT_EQ(made.exit_code, 0) << made.output;
  for (const auto& p : paths) {
    auto foreign = curl(server_->https_url() + p, fmt::format("--cert {} --key {}", path("stranger.pem"), path("stranger.key")));
    EXPECT_EQ(foreign.status, 0) << p << " answered a client with a foreign certificate: " << foreign.body;
  }
}

}  // namespace
}  // namespace ca::testing
