// The signed, hash-chained audit log: what the writer produces verifies, and removing, altering,
// reordering or re-chaining records, or signing with another key, is reported at the exact record.
#include "authority/audit/audit_log.hpp"

#include <sys/stat.h>

#include <fstream>
#include <functional>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include "core/json_text.hpp"
#include "crypto/pem.hpp"
#include "support/temp_dir.hpp"
#include "unit/crypto/crypto_test_support.hpp"

namespace ca::authority {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ca::testing::read_file;
using ca::testing::lines_of;
using ca::testing::TempDir;
using ca::testing::write_file;
using crypto::fixtures::Issued;


std::string joined(const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& l : lines) text += l + "\n";
  return text;
}

std::string field(const std::string& line, std::string_view name) {
  auto o = parse_json_object_text(line);
  if (!o) return "<not json>";
  const boost::json::value* v = o->if_contains(name);
  if (!v) return "";
  return v->is_string() ? std::string(v->get_string()) : boost::json::serialize(*v);
}

std::string sha256_hex(std::string_view bytes) {
  unsigned char digest[32];
  unsigned int length = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr);
  return crypto::to_hex(std::span<const unsigned char>(digest, length));
}

// An audit signing certificate issued by `ca` for `key`.
Result<ossl::UniquePtr<X509>> audit_certificate(const Issued& ca, EVP_PKEY* key) {
  CA_TRY(auto name, crypto::parse_name("CN=CA Audit Signing Certificate,O=Example"));
  auto spec = crypto::fixtures::day_spec(name.get(), key, "a1");
  spec.key_usage = {"digitalSignature", "nonRepudiation"};
  return crypto::sign_certificate(spec, ca.cert.get(), ca.key.get());
}

class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = crypto::fixtures::make_self_signed_ca(KeyType::ec_p256, "CN=Audit Test CA,O=Example");
    ASSERT_TRUE(ca) << ca.error().message;
    ca_ = std::move(*ca);
    auto key = crypto::generate_key(KeyType::ec_p256);
    ASSERT_TRUE(key) << key.error().message;
    key_ = std::move(*key);
    auto cert = audit_certificate(ca_, key_.get());
    ASSERT_TRUE(cert) << cert.error().message;
    cert_ = std::move(*cert);
  }

  fs::path file() const { return dir_.path() / "logs" / "audit.log"; }

  std::unique_ptr<AuditLog> open_log(AuditSigningOptions options = {5, 60s}) {
    auto signer = crypto::fixtures::issuer_of(cert_.get(), key_.get());
    EXPECT_TRUE(signer) << signer.error().message;
    return std::make_unique<AuditLog>(file(), "audit-test", std::move(signer).value(), options);
  }

  // 12 records, a signature after every 5 and one at close: 15 lines.
  void write_twelve() {
    auto log = open_log();
    for (int i = 1; i <= 12; ++i) log->record("certificate_issued", "anonymous", "certificate 0x" + std::to_string(i), "issued");
  }

  AuditVerification verify() {
    auto v = verify_audit_log(file(), cert_.get(), ca_.cert.get());
    EXPECT_TRUE(v) << v.error().message;
    return v ? *v : AuditVerification{};
  }

  TempDir dir_{"ca-audit"};
  Issued ca_;
  ossl::UniquePtr<EVP_PKEY> key_;
  ossl::UniquePtr<X509> cert_;
};

TEST_F(AuditLogTest, RecordsAreChainedAndSignedAndVerify) {
  write_twelve();
  const auto lines = lines_of(read_file(file()));
  ASSERT_EQ(lines.size(), 15u);
  std::string prev(64, '0');
  for (std::size_t i = 0; i < lines.size(); ++i) {
    SCOPED_TRACE(lines[i]);
    EXPECT_EQ(field(lines[i], "seq"), std::to_string(i + 1));
    EXPECT_EQ(field(lines[i], "prev"), prev);
    EXPECT_EQ(field(lines[i], "instance"), "audit-test");
    const bool signature = i + 1 == 6 || i + 1 == 12 || i + 1 == 15;
    EXPECT_EQ(field(lines[i], "event"), signature ? "log_signature" : "certificate_issued");
    if (signature) {
      EXPECT_EQ(field(lines[i], "signed_seq"), std::to_string(i));
    }
    prev = sha256_hex(lines[i]);
  }
  struct stat st {};
  ASSERT_EQ(::stat(file().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  auto v = verify();
  EXPECT_TRUE(v.intact()) << v.problem;
  EXPECT_EQ(v.records, 15u);
  EXPECT_EQ(v.signatures, 3u);
  EXPECT_EQ(v.first_seq, 1u);
  EXPECT_EQ(v.last_seq, 15u);
  EXPECT_EQ(v.unsigned_tail, 0u);
}

struct Tampering {
  const char* name;
  std::function<void(std::vector<std::string>&)> change;
  std::string problem;  // the start of the report
};

TEST_F(AuditLogTest, TamperingIsReportedAtTheExactRecord) {
  write_twelve();
  const auto original = lines_of(read_file(file()));
  ASSERT_EQ(original.size(), 15u);
  const auto alter_what = [](std::string& line) {
    auto at = line.find("certificate 0x");
    ASSERT_NE(at, std::string::npos);
    line[at + 14] = 'f';
  };
  const std::vector<Tampering> cases{
      {"removed middle record", [](auto& l) { l.erase(l.begin() + 7); },
       "record 9 (line 8): seq jumps from 7 to 9: record 8 missing here (removed or reordered)"},
      {"removed two records", [](auto& l) { l.erase(l.begin() + 7, l.begin() + 9); },
       "record 10 (line 8): seq jumps from 7 to 10: records 8..9 missing here"},
      {"altered byte", [&](auto& l) { alter_what(l[7]); },
       "record 9: prev hash does not match record 8 (removed or altered record)"},
      {"altered record right before a signature", [&](auto& l) { alter_what(l[10]); },
       "record 12: prev hash does not match record 11 (removed or altered record)"},
      {"reordered records", [](auto& l) { std::swap(l[7], l[8]); },
       "record 9 (line 8): seq jumps from 7 to 9: record 8 missing here"},
      {"duplicated record", [](auto& l) { l.insert(l.begin() + 8, l[7]); },
       "record 8 (line 9): seq 8 follows seq 8 (records reordered or duplicated)"},
      {"removed beginning", [](auto& l) { l.erase(l.begin()); },
       "record 2 (line 1): the log starts at seq 2, not 1"},
      {"altered signature", [](auto& l) {
         auto at = l[5].find("\"signature\":\"");
         ASSERT_NE(at, std::string::npos);
         char& c = l[5][at + 20];
         c = c == 'A' ? 'B' : 'A';
       },
       "record 6: the signature over records 1..5 does not verify"},
      {"signature record removed", [](auto& l) { l.erase(l.begin() + 5); },
       "record 7 (line 6): seq jumps from 5 to 7: record 6 missing here"},
      {"cut off last line", [](auto& l) { l.back().resize(l.back().size() / 2); },
       "line 15: not an audit record"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto lines = original;
    c.change(lines);
    std::string text = joined(lines);
    if (std::string_view(c.name) == "cut off last line") text.pop_back();  // no newline either
    write_file(file(), text);
    auto v = verify();
    EXPECT_FALSE(v.intact());
    EXPECT_TRUE(v.problem.starts_with(c.problem)) << v.problem;
  }
}

// Removing a record and re-chaining everything after it (new seq, new prev hashes) keeps the
// chain consistent: only the signatures, which need the key, catch it.
TEST_F(AuditLogTest, RechainingAfterARemovalBreaksTheNextSignature) {
  write_twelve();
  auto lines = lines_of(read_file(file()));
  lines.erase(lines.begin() + 7);  // record 8
  std::string prev = sha256_hex(lines[6]);
  for (std::size_t i = 7; i < lines.size(); ++i) {
    auto& line = lines[i];
    const auto rest = line.find(",\"time\"");
    line = "{\"seq\":" + std::to_string(i + 1) + ",\"prev\":\"" + prev + "\"" + line.substr(rest);
    if (field(line, "event") == "log_signature") {
      const auto at = line.find("\"signed_seq\":");
      const auto end = line.find(',', at);
      line = line.substr(0, at) + "\"signed_seq\":" + std::to_string(i) + line.substr(end);
    }
    prev = sha256_hex(line);
  }
  write_file(file(), joined(lines));
  auto v = verify();
  EXPECT_FALSE(v.intact());
  EXPECT_TRUE(v.problem.starts_with("record 11: the signature over records 1..10 does not verify")) << v.problem;
}

TEST_F(AuditLogTest, SignatureOfAnotherKeyFails) {
  auto other = crypto::generate_key(KeyType::ec_p256);
  ASSERT_TRUE(other);
  auto other_cert = audit_certificate(ca_, other->get());
  ASSERT_TRUE(other_cert) << other_cert.error().message;
  auto other_signer = crypto::fixtures::issuer_of(other_cert->get(), other->get());
  ASSERT_TRUE(other_signer) << other_signer.error().message;
  {
    AuditLog log(file(), "audit-test", std::move(*other_signer), {5, 60s});
    for (int i = 0; i < 5; ++i) log.record("agent_call", "CN=Agent", "GET /ca/rest/agent/certrequests", "authenticated");
  }
  auto v = verify();
  EXPECT_FALSE(v.intact());
  EXPECT_TRUE(v.problem.starts_with("record 6: the signature over records 1..5 does not verify")) << v.problem;
  EXPECT_EQ(v.records, 5u);
  EXPECT_EQ(v.signatures, 0u);
}

TEST_F(AuditLogTest, AuditCertificateMustBeIssuedByTheCa) {
  write_twelve();
  auto stranger = crypto::fixtures::make_self_signed_ca(KeyType::ec_p256, "CN=Stranger CA,O=Elsewhere");
  ASSERT_TRUE(stranger);
  auto forged = audit_certificate(*stranger, key_.get());  // the right key, vouched for by the wrong CA
  ASSERT_TRUE(forged);
  auto v = verify_audit_log(file(), forged->get(), ca_.cert.get());
  ASSERT_TRUE(v);
  EXPECT_FALSE(v->intact());
  EXPECT_NE(v->problem.find("is not signed by the CA certificate 'CN=Audit Test CA,O=Example'"), std::string::npos)
      << v->problem;
}

TEST_F(AuditLogTest, MissingFileIsAnIoError) {
  auto v = verify_audit_log(dir_.path() / "nothing.log", cert_.get(), ca_.cert.get());
  ASSERT_FALSE(v);
  EXPECT_TRUE(v.error().is(ErrorCode::io)) << v.error().message;
}

TEST_F(AuditLogTest, ChainGoesOnAcrossRestarts) {
  {
    auto log = open_log({100, 60s});
    for (int i = 0; i < 3; ++i) log->record("certificate_revoked", "CN=Agent", "certificate 0x" + std::to_string(i), "revoked");
  }  // seq 1..3, signature 4
  {
    auto log = open_log({100, 60s});
    log->record("certificate_unrevoked", "CN=Agent", "certificate 0x1", "taken off hold");
  }  // seq 5, signature 6
  const auto lines = lines_of(read_file(file()));
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_EQ(field(lines[4], "seq"), "5");
  EXPECT_EQ(field(lines[4], "prev"), sha256_hex(lines[3]));
  auto v = verify();
  EXPECT_TRUE(v.intact()) << v.problem;
  EXPECT_EQ(v.signatures, 2u);
}

TEST_F(AuditLogTest, RecordsAfterTheLastSignatureAreAnUnsignedTail) {
  write_twelve();
  auto lines = lines_of(read_file(file()));
  lines.pop_back();  // the closing signature: as if the server had been killed
  write_file(file(), joined(lines));
  auto v = verify();
  EXPECT_TRUE(v.intact()) << v.problem;
  EXPECT_EQ(v.unsigned_tail, 2u);
  EXPECT_EQ(v.last_seq, 14u);

  // The next run counts them as unsigned and signs them at once.
  { auto log = open_log({100, 60s}); log->record("agent_call", "CN=Agent", "GET /x", "authenticated"); }
  v = verify();
  EXPECT_TRUE(v.intact()) << v.problem;
  EXPECT_EQ(v.unsigned_tail, 0u);
  EXPECT_EQ(v.last_seq, 16u);
}

TEST_F(AuditLogTest, UnsignedLogStillVerifiesItsChain) {
  {
    AuditLog log(file(), "audit-test");
    for (int i = 0; i < 4; ++i) log.record("key_archived", "anonymous", "key " + std::to_string(i), "archived");
  }
  auto v = verify();
  EXPECT_TRUE(v.intact()) << v.problem;
  EXPECT_EQ(v.records, 4u);
  EXPECT_EQ(v.signatures, 0u);
  EXPECT_EQ(v.unsigned_tail, 4u);
}

TEST_F(AuditLogTest, SignatureFollowsWithinTheIntervalWithoutMoreRecords) {
  auto log = open_log({1000, 200ms});
  log->record("clone_registered", "join token ab", "clone 'b'", "replica ID 2");
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (lines_of(read_file(file())).size() < 2 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  const auto lines = lines_of(read_file(file()));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(field(lines[1], "event"), "log_signature");
  auto v = verify();
  EXPECT_TRUE(v.intact()) << v.problem;
  EXPECT_EQ(v.unsigned_tail, 0u);
}

TEST_F(AuditLogTest, RecordThenAnswersOnlyOnceTheRecordIsOnDisk) {
  auto log = open_log();
  std::promise<std::string> seen;
  log->record_then("certificate_issued", "anonymous", "certificate 0xabc", "issued",
                   [&] { seen.set_value(read_file(file())); });
  auto future = seen.get_future();
  ASSERT_EQ(future.wait_for(5s), std::future_status::ready);
  EXPECT_NE(future.get().find("\"what\":\"certificate 0xabc\""), std::string::npos);
  // A continuation that records again does not wait for itself.
  std::promise<void> nested;
  log->record_then("a", "b", "c", "d", [&] {
    log->record("nested", "b", "c", "d");
    nested.set_value();
  });
  ASSERT_EQ(nested.get_future().wait_for(5s), std::future_status::ready);
  log->flush();
  EXPECT_NE(read_file(file()).find("\"event\":\"nested\""), std::string::npos);
}

// The server and `ca-server agent ...` may write at once: the file lock keeps one chain.
TEST_F(AuditLogTest, TwoWritersOnOneFileKeepOneChain) {
  {
    auto server = open_log({7, 60s});
    auto command = open_log({100, 60s});
    std::vector<std::jthread> threads;
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([&, t] {
        for (int i = 0; i < 25; ++i) (t % 2 ? *command : *server).record("agent_call", "t" + std::to_string(t), "x", "y");
      });
  }
  auto v = verify();
  EXPECT_TRUE(v.intact()) << v.problem;
  std::size_t records = 0;
  for (const auto& line : lines_of(read_file(file()))) records += field(line, "event") == "agent_call";
  EXPECT_EQ(records, 100u);
  EXPECT_EQ(v.unsigned_tail, 0u);
}

TEST_F(AuditLogTest, AnIncompleteLastLineIsLeftAndReported) {
  {
    auto log = open_log({100, 60s});
    log->record("certificate_issued", "anonymous", "certificate 0x1", "issued");
  }
  std::ofstream(file(), std::ios::app) << "{\"seq\":3,\"prev\":\"0";  // a write cut off by a crash
  {
    auto log = open_log({100, 60s});
    log->record("certificate_issued", "anonymous", "certificate 0x2", "issued");
  }
  const auto lines = lines_of(read_file(file()));
  ASSERT_EQ(lines.size(), 5u);  // record, signature, fragment, record, signature
  EXPECT_EQ(lines[2], "{\"seq\":3,\"prev\":\"0");
  EXPECT_EQ(field(lines[3], "seq"), "4") << "the chain goes on after the fragment";
  EXPECT_EQ(field(lines[3], "prev"), sha256_hex(lines[2]));
  auto v = verify();
  EXPECT_FALSE(v.intact());
  EXPECT_TRUE(v.problem.starts_with("line 3: not an audit record")) << v.problem;
}

TEST_F(AuditLogTest, ARecordWithAKeyTwiceIsNoRecord) {
  {
    auto log = open_log({100, 60s});
    log->record("certificate_issued", "anonymous", "certificate 0x1", "issued");
  }
  auto lines = lines_of(read_file(file()));
  ASSERT_TRUE(lines[0].starts_with("{\"seq\":1,")) << lines[0];
  // A reader that kept the first or the last "event" would see two different records.
  lines[0].insert(lines[0].size() - 1, ",\"event\":\"log_signature\"");
  write_file(file(), joined(lines));
  auto v = verify();
  EXPECT_FALSE(v.intact());
  EXPECT_TRUE(v.problem.starts_with("line 1: not an audit record (malformed JSON at offset ")) << v.problem;
  EXPECT_NE(v.problem.find("duplicate key 'event'"), std::string::npos) << v.problem;
}

TEST_F(AuditLogTest, InstanceLogIsSignedWhenTheInstanceHasTheKey) {
  InstanceConfig config;
  config.instance_id = "audit-test";
  config.dir = dir_.path() / "instance";
  {
    auto unsigned_log = open_instance_audit_log(config);
    ASSERT_TRUE(unsigned_log) << unsigned_log.error().message;
    EXPECT_FALSE((*unsigned_log)->signing());
  }
  fs::create_directories(config.key_file("audit_signing").parent_path());
  ASSERT_TRUE(crypto::write_private_key_file(config.key_file("audit_signing"), key_.get()));
  // The key signs through its Issuer: without its certificate (init writes both) it is refused.
  auto without_certificate = open_instance_audit_log(config);
  ASSERT_FALSE(without_certificate);
  EXPECT_NE(without_certificate.error().message.find(config.cert_file("audit_signing").string()), std::string::npos)
      << without_certificate.error().message;
  fs::create_directories(config.cert_file("audit_signing").parent_path());
  ASSERT_TRUE(crypto::write_certificate_file(config.cert_file("audit_signing"), cert_.get()));
  auto log = open_instance_audit_log(config);
  ASSERT_TRUE(log) << log.error().message;
  EXPECT_TRUE((*log)->signing());
  EXPECT_EQ((*log)->file(), config.dir / "logs" / "audit.log");
}

// Collects what the writer hands to the directory's publisher.
class RecordingSink final : public AuditCheckpointSink {
 public:
  void checkpoint_signed(const store::AuditCheckpoint& c) override {
    std::lock_guard lock(mutex);
    checkpoints.push_back(c);
  }
  void cut_found(const store::AuditCut& c) override {
    std::lock_guard lock(mutex);
    cuts.push_back(c);
  }
  std::mutex mutex;
  std::vector<store::AuditCheckpoint> checkpoints;
  std::vector<store::AuditCut> cuts;
};

TEST_F(AuditLogTest, EachSignatureIsACheckpointAndAFileCutUnderTheWriterIsRecordedAsACut) {
  RecordingSink sink;
  auto log = open_log();  // a signature every 5 records
  log->set_checkpoint_sink(&sink);
  for (int i = 0; i < 5; ++i) log->record("certificate_issued", "who", "what", "ok");
  auto lines = lines_of(read_file(file()));
  ASSERT_EQ(lines.size(), 6u);
  {
    std::lock_guard lock(sink.mutex);
    ASSERT_EQ(sink.checkpoints.size(), 1u);
    EXPECT_EQ(sink.checkpoints[0].seq, 5u);
    EXPECT_EQ(sink.checkpoints[0].hash, sha256_hex(lines[4]));
    EXPECT_EQ(sink.checkpoints[0].hash, field(lines[5], "prev"));
  }
  write_file(file(), joined({lines[0], lines[1]}));  // cut back to seq 2 while the log is open
  log->record("certificate_revoked", "who", "what", "ok");
  lines = lines_of(read_file(file()));
  ASSERT_GE(lines.size(), 4u);  // then a signature: the two records left were unsigned
  EXPECT_EQ(field(lines[2], "event"), "audit_log_cut");
  EXPECT_NE(field(lines[2], "what").find("first missing seq 3"), std::string::npos) << lines[2];
  EXPECT_EQ(field(lines[3], "event"), "certificate_revoked");
  {
    std::lock_guard lock(sink.mutex);
    ASSERT_EQ(sink.cuts.size(), 1u);
    EXPECT_EQ(sink.cuts[0].first_missing_seq, 3u);
    EXPECT_EQ(sink.cuts[0].expected.seq, 5u);
  }
  log->set_checkpoint_sink(nullptr);
}

}  // namespace
}  // namespace ca::authority
