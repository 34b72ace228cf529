#include "authority/audit/refusal_summary.hpp"

#include <chrono>
#include <string>

#include <gtest/gtest.h>

#include "authority/audit/audit_log.hpp"
#include "core/caller_text.hpp"
#include "support/temp_dir.hpp"

namespace ca::authority {
namespace {

using namespace std::chrono_literals;
using ca::testing::read_file;
using ca::testing::TempDir;

int lines_with(const std::string& text, std::string_view needle) {
  int n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

TEST(RefusalSummary, CountsPerReasonAndAddressAndWritesOneRecordPerInterval) {
  TempDir dir("ca-refusals");
  AuditLog log(dir / "audit.log", "test");
  RefusalSummary summary(log, {.interval = 1000ms, .max_keys = 2}, /*background=*/false);
  for (int i = 0; i < 500; ++i) summary.count("enrollment_rejected", "bad_request", "192.0.2.1");
  summary.count("enrollment_rejected", "unauthorized", "192.0.2.1");
  for (int i = 0; i < 7; ++i) summary.count("enrollment_rejected", "bad_request", "192.0.2.2");  // beyond max_keys
  summary.write_due(RefusalSummary::Clock::now());  // the interval has not ended: nothing yet
  log.flush();
  EXPECT_EQ(lines_with(read_file(dir / "audit.log"), "requests_refused"), 0);
  summary.write_due(RefusalSummary::Clock::now() + 2s);
  log.flush();
  const auto text = read_file(dir / "audit.log");
  EXPECT_EQ(lines_with(text, "\"event\":\"requests_refused\""), 1) << text;
  EXPECT_NE(text.find("enrollment_rejected bad_request from 192.0.2.1: 500"), std::string::npos) << text;
  EXPECT_NE(text.find("enrollment_rejected unauthorized from 192.0.2.1: 1"), std::string::npos) << text;
  EXPECT_NE(text.find("others (more than 2 kinds): 7"), std::string::npos) << text;
  EXPECT_NE(text.find("508 refused"), std::string::npos) << text;
  summary.write_now();  // nothing new counted: no record
  log.flush();
  EXPECT_EQ(lines_with(read_file(dir / "audit.log"), "requests_refused"), 1);
}

TEST(CallerText, CutsLongInputAtACharacterBoundaryWithAnEllipsis) {
  EXPECT_EQ(caller_text("short"), "short");
  EXPECT_EQ(caller_text(std::string(500, 'x')), std::string(128, 'x') + "…");
  // "é" is two bytes: a cut inside it backs up to its first byte.
  EXPECT_EQ(caller_text("aé", 2), "a…");
}

}  // namespace
}  // namespace ca::authority
