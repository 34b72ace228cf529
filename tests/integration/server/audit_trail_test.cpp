// The audit log against its checkpoints in the directory, with a real ca-server and its embedded
// slapd: a log cut back to a signed point, emptied, or cut and then continued by a restarted
// server fails `ca-server audit verify` (exit 1) naming the first missing record; a forged record
// after the last signature is unverified (exit 1); the whole signed log is intact (exit 0).
#include <openssl/evp.h>

#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "support/ca_server_fixture.hpp"

namespace ca::testing {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  for (std::size_t start = 0; start < text.size();) {
    const auto end = text.find('\n', start);
    lines.push_back(text.substr(start, end - start));
    start = end == std::string::npos ? text.size() : end + 1;
  }
  return lines;
}

std::string first_lines(const std::vector<std::string>& lines, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n && i < lines.size(); ++i) out += lines[i] + "\n";
  return out;
}

std::string sha256_hex(const std::string& bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr);
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) hex += fmt::format("{:02x}", digest[i]);
  return hex;
}

// The 0-based index of the n-th (1-based) log_signature line.
std::size_t signature_line(const std::vector<std::string>& lines, int n) {
  for (std::size_t i = 0; i < lines.size(); ++i)
    if (lines[i].find("\"event\":\"log_signature\"") != std::string::npos && --n == 0) return i;
  return lines.size();
}

class AuditTrailTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto init = server_.init();
    ASSERT_EQ(init.exit_code, 0) << init.output;
  }

  // One run of the server that records something (an enrollment) and stops cleanly (signed).
  void run_once(const std::string& name) {
    ASSERT_TRUE(server_.start()) << server_.log();
    write_file(work_.path() / (name + ".json"), enrollment_json(openssl_csr(work_.path(), name)));
    auto r = shell(fmt::format("curl -s --max-time 20 --cacert {} -o /dev/null -w '%{{http_code}}' -H 'Content-Type: "
                               "application/json' --data-binary @{} {}/ca/rest/certrequests",
                               server_.ca_file().string(), (work_.path() / (name + ".json")).string(),
                               server_.https_url()));
    EXPECT_EQ(r.output, "201");
    ASSERT_EQ(server_.stop(), 0) << server_.log();
  }

  Shell verify(const std::string& extra = "") {
    return shell(fmt::format("{} audit verify --config {} {} 2>&1", ca_server_binary().string(),
                             server_.config_file().string(), extra));
  }

  fs::path log_file() const { return server_.dir() / "logs" / "audit.log"; }

  CaServer server_;
  TempDir work_{"ca-audit"};
};

TEST_F(AuditTrailTest, TheSignedLogIsIntactAndEveryCutOrUnsignedTailIsFound) {
  run_once("first");
  run_once("second");
  const std::string pristine = read_file(log_file());
  const auto lines = lines_of(pristine);
  const std::size_t first_signature = signature_line(lines, 1);
  ASSERT_LT(first_signature + 1, lines.size()) << pristine;  // a later signature follows

  auto intact = verify();
  EXPECT_EQ(intact.exit_code, 0) << intact.output;
  EXPECT_NE(intact.output.find("result:     intact"), std::string::npos) << intact.output;
  EXPECT_NE(intact.output.find("checkpoint(s) matched"), std::string::npos) << intact.output;

  // Cut back to the first signed point: every line of it verifies, the directory knows more.
  write_file(log_file(), first_lines(lines, first_signature + 1));
  auto truncated = verify();
  EXPECT_EQ(truncated.exit_code, 1) << truncated.output;
  EXPECT_NE(truncated.output.find(fmt::format("result:     CUT: first missing seq {}", first_signature + 2)),
            std::string::npos)
      << truncated.output;
  EXPECT_NE(truncated.output.find("missing tail"), std::string::npos) << truncated.output;
  // The file alone cannot tell, and says so.
  auto file_only = verify("--no-directory");
  EXPECT_EQ(file_only.exit_code, 0) << file_only.output;
  EXPECT_NE(file_only.output.find("NOT CHECKED"), std::string::npos) << file_only.output;

  write_file(log_file(), "");
  auto emptied = verify();
  EXPECT_EQ(emptied.exit_code, 1) << emptied.output;
  EXPECT_NE(emptied.output.find("result:     CUT: first missing seq 1"), std::string::npos) << emptied.output;

  // A forged record, chained correctly, after the last signature: no signature covers it.
  const std::string forged = fmt::format(
      "{{\"seq\":{},\"prev\":\"{}\",\"time\":\"2026-12-01T10:00:00.000Z\",\"instance\":\"test\",\"event\":"
      "\"certificate_revoked\",\"who\":\"nobody\",\"what\":\"forged\",\"outcome\":\"ok\"}}",
      lines.size() + 1, sha256_hex(lines.back()));
  write_file(log_file(), pristine + forged + "\n");
  auto unsigned_tail = verify();
  EXPECT_EQ(unsigned_tail.exit_code, 1) << unsigned_tail.output;
  EXPECT_NE(unsigned_tail.output.find("result:     UNVERIFIED: 1 record(s)"), std::string::npos) << unsigned_tail.output;
  EXPECT_EQ(unsigned_tail.output.find("intact"), std::string::npos) << unsigned_tail.output;

  write_file(log_file(), pristine);
  EXPECT_EQ(verify().exit_code, 0);
}

TEST_F(AuditTrailTest, ACutContinuedByARestartedServerIsRecordedAndStaysReported) {
  run_once("first");
  run_once("second");
  const auto lines = lines_of(read_file(log_file()));
  const std::size_t first_signature = signature_line(lines, 1);
  ASSERT_LT(first_signature + 1, lines.size());
  const std::size_t first_missing = first_signature + 2;

  write_file(log_file(), first_lines(lines, first_signature + 1));
  run_once("third");  // the restarted server finds the cut, records it, and goes on
  const std::string continued = read_file(log_file());
  EXPECT_NE(continued.find(fmt::format("\"seq\":{},", first_missing)), std::string::npos) << continued;
  EXPECT_NE(continued.find("\"event\":\"audit_log_cut\""), std::string::npos) << continued;
  EXPECT_NE(server_.log().find("THE AUDIT LOG WAS CUT"), std::string::npos) << server_.log();

  auto found = verify();
  EXPECT_EQ(found.exit_code, 1) << found.output;
  EXPECT_NE(found.output.find(fmt::format("result:     CUT: first missing seq {}", first_missing)), std::string::npos)
      << found.output;
  EXPECT_NE(found.output.find("cut recorded by the instance"), std::string::npos) << found.output;

  // Another instance's auditor reads this instance's trail from the directory with a copy of
  // its file (here the same directory; the audit signing certificate is the CA's, shared).
  const fs::path copy = work_.path() / "copy-of-test.log";
  write_file(copy, continued);
  auto from_elsewhere = verify(fmt::format("--instance test --file {}", copy.string()));
  EXPECT_EQ(from_elsewhere.exit_code, 1) << from_elsewhere.output;
  EXPECT_NE(from_elsewhere.output.find(fmt::format("first missing seq {}", first_missing)), std::string::npos)
      << from_elsewhere.output;
  // An instance with no trail in the directory: nothing to match, the file's own checks only.
  auto unknown = verify(fmt::format("--instance nobody --file {}", copy.string()));
  EXPECT_NE(unknown.output.find("no checkpoints of 'nobody'"), std::string::npos) << unknown.output;
  EXPECT_EQ(verify("--instance nobody").exit_code, 2);
}

}  // namespace
}  // namespace ca::testing
