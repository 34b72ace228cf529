// Idempotency-Key on enrollments against a real ca-server and slapd, with the real curl: a retry
// gets the first answer (same certificate, no second record), the same key with another request
// gets 409, a failed enrollment frees its key, and concurrent retries issue one certificate.
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "support/ca_server_fixture.hpp"

namespace ca::testing {
namespace {

const std::string kCerts = "ou=certificateRepository,ou=ca,o=pki-ca";

struct KeyedReply {
  int status = 0;
  std::string body;
  std::string headers;  // raw, lower-cased
};

// POST /ca/rest/certrequests with curl, the body from a file, and an Idempotency-Key header.
KeyedReply post_keyed(const CaServer& server, const std::filesystem::path& work, const std::string& key,
                      const std::string& body) {
  static std::atomic<int> counter{0};
  const int n = ++counter;
  auto body_file = write_file(work / fmt::format("body{}.json", n), body);
  auto out = work / fmt::format("out{}.json", n);
  auto headers = work / fmt::format("headers{}.txt", n);
  auto r = shell(fmt::format("curl -s --cacert {} -H 'Content-Type: application/json' -H 'Idempotency-Key: {}' "
                             "--data-binary @{} -D {} -o {} -w '%{{http_code}}' {}/ca/rest/certrequests",
                             server.ca_file().string(), key, body_file.string(), headers.string(), out.string(),
                             server.https_url()));
  KeyedReply reply;
  reply.status = std::atoi(r.output.c_str());
  reply.body = std::filesystem::exists(out) ? read_file(out) : std::string();
  reply.headers = std::filesystem::exists(headers) ? read_file(headers) : std::string();
  for (auto& c : reply.headers) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return reply;
}

std::string csr_body(const TempDir& work, const std::string& name) {
  return enrollment_json(openssl_csr(work.path(), name));
}

class IdempotencyTest : public SharedCaServerTest {
 protected:
  int certificates() const { return server_->count_entries(kCerts, "(objectClass=caCertificateRecord)"); }
  TempDir work_{"ca-idempotency"};
};

TEST_F(IdempotencyTest, ARetryWithTheSameKeyGetsTheSameCertificateAndIssuesNothing) {
  const std::string body = csr_body(work_, "retry");
  const int before = certificates();
  auto first = post_keyed(*server_, work_.path(), "order-4711-attempt", body);
  ASSERT_EQ(first.status, 201) << first.body;
  EXPECT_EQ(first.headers.find("idempotent-replayed"), std::string::npos);
  auto again = post_keyed(*server_, work_.path(), "order-4711-attempt", body);
  ASSERT_EQ(again.status, 201) << again.body;
  EXPECT_EQ(json_field(again.body, "serial"), json_field(first.body, "serial"));
  EXPECT_EQ(json_field(again.body, "certificate"), json_field(first.body, "certificate"));
  EXPECT_NE(again.headers.find("idempotent-replayed: true"), std::string::npos) << again.headers;
  EXPECT_EQ(certificates(), before + 1);
  // Without the key, the same body is a new enrollment.
  auto plain = server_->client().post("/ca/rest/certrequests", body);
  ASSERT_EQ(plain.status, 201) << plain.body;
  EXPECT_NE(json_field(plain.body, "serial"), json_field(first.body, "serial"));
}

TEST_F(IdempotencyTest, TheSameKeyWithAnotherRequestIsAConflict) {
  auto first = post_keyed(*server_, work_.path(), "shared-key-1", csr_body(work_, "one"));
  ASSERT_EQ(first.status, 201) << first.body;
  const int before = certificates();
  auto other = post_keyed(*server_, work_.path(), "shared-key-1", csr_body(work_, "two"));
  EXPECT_EQ(other.status, 409) << other.body;
  EXPECT_EQ(json_field(other.body, "error"), "conflict") << other.body;
  EXPECT_NE(other.body.find("different request"), std::string::npos) << other.body;
  EXPECT_EQ(certificates(), before);
}

TEST_F(IdempotencyTest, AFailedEnrollmentFreesItsKey) {
  const std::string key = "after-a-bad-csr";
  auto bad = post_keyed(*server_, work_.path(), key,
                        R"({"profile_id":"testServerCert","csr":"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"})");
  EXPECT_EQ(bad.status, 400) << bad.body;
  // The key was never bound to an answer: the same key with a good request enrolls (a different
  // body, so only a released claim lets it through).
  auto good = post_keyed(*server_, work_.path(), key, csr_body(work_, "afterbad"));
  EXPECT_EQ(good.status, 201) << good.body;
}

TEST_F(IdempotencyTest, BadKeysAndServerKeygenAreRefused) {
  const std::string body = csr_body(work_, "badkey");
  const int before = certificates();
  auto spaced = post_keyed(*server_, work_.path(), "has space", body);
  EXPECT_EQ(spaced.status, 400) << spaced.body;
  auto long_key = post_keyed(*server_, work_.path(), std::string(300, 'k'), body);
  EXPECT_EQ(long_key.status, 400) << long_key.body;
  auto keygen = post_keyed(*server_, work_.path(), "keygen-1",
                           R"({"profile_id":"testServerCert","server_keygen":true,"subject":"CN=k.example.com","pkcs12_password":"pw-123456"})");
  EXPECT_EQ(keygen.status, 400) << keygen.body;
  EXPECT_NE(keygen.body.find("server_keygen"), std::string::npos) << keygen.body;
  EXPECT_EQ(certificates(), before);
}

TEST_F(IdempotencyTest, ConcurrentRetriesWithOneKeyIssueOneCertificate) {
  const std::string body = csr_body(work_, "concurrent");
  const int before = certificates();
  constexpr int kClients = 8;
  std::vector<KeyedReply> replies(kClients);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i)
    threads.emplace_back([&, i] { replies[i] = post_keyed(*server_, work_.path(), "burst-key-7", body); });
  for (auto& t : threads) t.join();
  std::set<std::string> serials;
  for (const auto& r : replies) {
    EXPECT_EQ(r.status, 201) << r.body;
    serials.insert(json_field(r.body, "serial"));
  }
  EXPECT_EQ(serials.size(), 1u);
  EXPECT_EQ(certificates(), before + 1);
}

}  // namespace
}  // namespace ca::testing
