// The instance gauges: serials left in the ranges, and the group-commit hook feeding histograms.
#include "authority/instance/instance_metrics.hpp"

#include <ctime>
#include <map>
#include <string>

#include <gtest/gtest.h>

namespace ca::authority {
namespace {

TEST(InstanceMetricsTest, SerialsRemainingCountsTheRestOfTheCurrentRangeAndTheStandby) {
  RangeState s;
  EXPECT_EQ(serials_remaining(s), 0u);
  s.current = store::NumberRange{100, 199};
  s.next = 100;
  EXPECT_EQ(serials_remaining(s), 100u);
  s.next = 199;
  EXPECT_EQ(serials_remaining(s), 1u);
  s.next = 200;  // used up
  EXPECT_EQ(serials_remaining(s), 0u);
  s.standby = store::NumberRange{1000, 1049};
  EXPECT_EQ(serials_remaining(s), 50u);
  s.next = 150;
  EXPECT_EQ(serials_remaining(s), 100u);
}

TEST(InstanceMetricsTest, GaugesReadReadinessAndTheCachedContextCsns) {
  bool healthy = true;
  ReadinessMonitor readiness({{"probe", [&]() -> Status {
                                 if (healthy) return ok();
                                 return fail(Error::unavailable("down"));
                               }}},
                             {});
  const auto csn = [](std::chrono::system_clock::time_point t) {
    std::time_t secs = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char text[32];
    std::strftime(text, sizeof text, "%Y%m%d%H%M%S", &tm);
    return std::string(text) + ".000000Z#000000#001#000000";
  };
  const auto now = std::chrono::system_clock::now();
  ContextCsnMonitor csns([&]() -> Result<std::map<int, std::string>> {
    return std::map<int, std::string>{{1, csn(now - std::chrono::seconds(30))}, {7, csn(now)}};
  }, std::chrono::hours(1));
  metrics::Registry registry;
  register_instance_metrics(registry, {.readiness = &readiness, .context_csns = &csns});

  std::string text = registry.exposition();
  EXPECT_NE(text.find("# TYPE ca_ready gauge\nca_ready 0\n"), std::string::npos) << "never checked: not ready\n" << text;
  EXPECT_NE(text.find("# TYPE ca_replication_context_csn_age_seconds gauge\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("ca_replication_context_csn_age_seconds{"), std::string::npos)
      << "no sample before the first read\n" << text;

  readiness.run_once();
  csns.refresh();
  text = registry.exposition();
  EXPECT_NE(text.find("ca_ready 1\n"), std::string::npos) << text;
  const auto age_of = [&](const std::string& sid) {
    const std::string key = "ca_replication_context_csn_age_seconds{server_id=\"" + sid + "\"} ";
    const auto at = text.find(key);
    return at == std::string::npos ? -1.0 : std::stod(text.substr(at + key.size()));
  };
  EXPECT_GE(age_of("1"), 29.0);
  EXPECT_LT(age_of("1"), 60.0);
  EXPECT_GE(age_of("7"), 0.0);
  EXPECT_LT(age_of("7"), 30.0);

  healthy = false;
  readiness.run_once();
  EXPECT_NE(registry.exposition().find("ca_ready 0\n"), std::string::npos);
}

}  // namespace
}  // namespace ca::authority
