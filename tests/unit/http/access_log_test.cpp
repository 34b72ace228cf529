// The access log: one valid JSON line per request whatever the client sent, request ids kept only
// when sane, and the file written in order, flushed on close, mode 0640.
#include "http/access_log.hpp"

#include <sys/stat.h>

#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "support/temp_dir.hpp"

namespace ca::http {
namespace {

using namespace std::chrono_literals;
using ca::testing::read_file;
using ca::testing::lines_of;
using ca::testing::TempDir;
using ca::testing::write_file;

CompletedRequest sample() {
  CompletedRequest r;
  r.received = std::chrono::system_clock::time_point(std::chrono::milliseconds(1764583200123));  // 2025-12-01T10:00:00.123Z
  r.latency = 12345us;
  r.peer = "192.0.2.7:50123";
  r.tls = true;
  r.method = "POST";
  r.path = "/ca/rest/certrequests";
  r.route = "/ca/rest/certrequests";
  r.status = 201;
  r.request_id = "req-1";
  return r;
}


TEST(AccessLogTest, LineHasEveryFieldInOrder) {
  auto r = sample();
  r.serial = "1a2b";
  r.agent = "CN=Agent,O=Example (0x7)";
  r.tls_client = "CN=Agent,O=Example";
  EXPECT_EQ(access_log_line(r),
            "{\"time\":\"2025-12-01T10:00:00.123Z\",\"peer\":\"192.0.2.7:50123\",\"method\":\"POST\","
            "\"path\":\"/ca/rest/certrequests\",\"status\":201,\"latency_ms\":12.345,\"request_id\":\"req-1\","
            "\"serial\":\"1a2b\",\"agent\":\"CN=Agent,O=Example (0x7)\",\"tls_client\":\"CN=Agent,O=Example\"}\n");
  // Fields nobody knows are left out.
  EXPECT_EQ(access_log_line(sample()),
            "{\"time\":\"2025-12-01T10:00:00.123Z\",\"peer\":\"192.0.2.7:50123\",\"method\":\"POST\","
            "\"path\":\"/ca/rest/certrequests\",\"status\":201,\"latency_ms\":12.345,\"request_id\":\"req-1\"}\n");
}

TEST(AccessLogTest, HostilePathStaysOneJsonValue) {
  auto r = sample();
  // Quotes and braces that would forge fields, a newline that would forge a line, a backslash,
  // control characters and bytes that are not UTF-8.
  r.path = "/x\",\"status\":200,\"agent\":\"root\"}\n{\"time\":\"\\\x01\x1b[31m\xff\xfe/";
  r.method = "GET\r\nX: y";
  r.tls_client = "CN=\"quoted\"\\,O=x";
  const std::string line = access_log_line(r);
  ASSERT_TRUE(line.ends_with("\n"));
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line, whatever the path";
  boost::json::error_code ec;
  auto value = boost::json::parse(line, ec);
  ASSERT_FALSE(ec) << ec.message() << ": " << line;
  const auto& o = value.as_object();
  EXPECT_EQ(o.size(), 8u) << line;  // time peer method path status latency_ms request_id tls_client
  EXPECT_EQ(o.at("status").as_int64(), 201) << "the path cannot forge the status";
  EXPECT_FALSE(o.contains("agent"));
  // Everything that was valid UTF-8 reads back exactly; the two stray bytes become U+FFFD.
  EXPECT_EQ(std::string(o.at("path").as_string()),
            std::string("/x\",\"status\":200,\"agent\":\"root\"}\n{\"time\":\"\\\x01\x1b[31m") +
                "\xEF\xBF\xBD\xEF\xBF\xBD/");
  EXPECT_EQ(std::string(o.at("method").as_string()), "GET\r\nX: y");
  EXPECT_EQ(std::string(o.at("tls_client").as_string()), "CN=\"quoted\"\\,O=x");
}

TEST(AccessLogTest, RequestIdsAreKeptOnlyWhenSane) {
  for (const char* sane : {"a", "req-42", "0123456789abcdef.XYZ_-", "A1b2.C3d4"}) {
    SCOPED_TRACE(sane);
    EXPECT_TRUE(is_sane_request_id(sane));
    EXPECT_EQ(choose_request_id(sane), sane);
  }
  EXPECT_TRUE(is_sane_request_id(std::string(64, 'x')));
  for (const std::string& insane : {std::string(), std::string(65, 'x'), std::string("has space"),
                                   std::string("quote\""), std::string("new\nline"), std::string("semi;colon"),
                                   std::string("slash/"), std::string("ü"), std::string("nul\0", 4)}) {
    SCOPED_TRACE(insane);
    EXPECT_FALSE(is_sane_request_id(insane));
    const std::string chosen = choose_request_id(insane);
    EXPECT_NE(chosen, insane);
    EXPECT_TRUE(is_sane_request_id(chosen)) << chosen;
  }
  const std::string a = new_request_id(), b = new_request_id();
  EXPECT_EQ(a.size(), 32u);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos) << a;
  EXPECT_NE(a, b);
}

TEST(AccessLogTest, FileGetsEveryLineInOrderWithMode0640) {
  TempDir dir("ca-access");
  const auto file = dir.path() / "logs" / "access.log";
  {
    auto log = AccessLog::open(file);
    ASSERT_TRUE(log) << log.error().message;
    std::vector<std::jthread> writers;
    for (int t = 0; t < 4; ++t)
      writers.emplace_back([&, t] {
        for (int i = 0; i < 250; ++i) {
          auto r = sample();
          r.request_id = fmt::format("t{}-{}", t, i);
          (*log)->write(r);
        }
      });
  }  // joined, then the log closed: everything buffered is written
  auto lines = lines_of(read_file(file));
  ASSERT_EQ(lines.size(), 1000u);
  std::vector<int> next(4, 0);
  for (const auto& line : lines) {
    auto o = boost::json::parse(line).as_object();
    std::string id(o.at("request_id").as_string());
    const int t = id[1] - '0';
    EXPECT_EQ(id, fmt::format("t{}-{}", t, next[static_cast<std::size_t>(t)]++))
        << "each writer's lines in its order";
  }
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);

  // Appended, not truncated, when opened again.
  {
    auto log = AccessLog::open(file);
    ASSERT_TRUE(log);
    (*log)->write(sample());
  }
  EXPECT_EQ(lines_of(read_file(file)).size(), 1001u);
}

TEST(AccessLogTest, BufferedLinesReachTheFileWithinASecondOrTwo) {
  TempDir dir("ca-access");
  const auto file = dir.path() / "access.log";
  auto log = AccessLog::open(file);
  ASSERT_TRUE(log) << log.error().message;
  (*log)->write(sample());
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  while (read_file(file).empty() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(50ms);
  EXPECT_EQ(lines_of(read_file(file)).size(), 1u) << "flushed without closing the log";
}

TEST(AccessLogTest, UnwritableFolderIsAnIoError) {
  TempDir dir("ca-access");
  write_file(dir.path() / "a-file", "not a folder");
  auto log = AccessLog::open(dir.path() / "a-file" / "logs" / "access.log");
  ASSERT_FALSE(log);
  EXPECT_TRUE(log.error().is(ErrorCode::io)) << log.error().message;
}

}  // namespace
}  // namespace ca::http
