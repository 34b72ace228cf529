// The Prometheus text exposition of core/metrics: exact text for a small registry, escaping,
// cumulative histogram buckets, names the format refuses, gauges computed at scrape time.
#include "core/metrics.hpp"

#include <atomic>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace ca::metrics {
namespace {

TEST(MetricsTest, ExpositionOfASmallRegistryIsExact) {
  Registry registry;
  auto& requests = registry.counter("app_requests_total", "Requests served.", {"route", "status"});
  auto& temperature = registry.gauge("app_temperature_celsius", "Current temperature.");
  auto& latency = registry.histogram("app_latency_seconds", "Request latency.", {0.1, 0.5, 1}, {"route"});
  requests.add({"/b", "200"});
  requests.add({"/a", "404"}, 2);
  requests.add({"/b", "200"}, 0.5);
  temperature.set({}, -3.25);
  latency.observe({"/a"}, 0.05);
  latency.observe({"/a"}, 0.5);  // on a bound: "le" means less than or equal
  latency.observe({"/a"}, 7);

  EXPECT_EQ(registry.exposition(),
            "# HELP app_requests_total Requests served.\n"
            "# TYPE app_requests_total counter\n"
            "app_requests_total{route=\"/a\",status=\"404\"} 2\n"
            "app_requests_total{route=\"/b\",status=\"200\"} 1.5\n"
            "# HELP app_temperature_celsius Current temperature.\n"
            "# TYPE app_temperature_celsius gauge\n"
            "app_temperature_celsius -3.25\n"
            "# HELP app_latency_seconds Request latency.\n"
            "# TYPE app_latency_seconds histogram\n"
            "app_latency_seconds_bucket{route=\"/a\",le=\"0.1\"} 1\n"
            "app_latency_seconds_bucket{route=\"/a\",le=\"0.5\"} 2\n"
            "app_latency_seconds_bucket{route=\"/a\",le=\"1\"} 2\n"
            "app_latency_seconds_bucket{route=\"/a\",le=\"+Inf\"} 3\n"
            "app_latency_seconds_sum{route=\"/a\"} 7.55\n"
            "app_latency_seconds_count{route=\"/a\"} 3\n");
}

TEST(MetricsTest, UnlabelledFamiliesShowZeroBeforeAnyRecord) {
  Registry registry;
  registry.counter("jobs_total", "Jobs.");
  registry.histogram("job_seconds", "Job time.", {1, 2});
  registry.counter("labelled_total", "Labelled, never recorded.", {"kind"});
  EXPECT_EQ(registry.exposition(),
            "# HELP jobs_total Jobs.\n"
            "# TYPE jobs_total counter\n"
            "jobs_total 0\n"
            "# HELP job_seconds Job time.\n"
            "# TYPE job_seconds histogram\n"
            "job_seconds_bucket{le=\"1\"} 0\n"
            "job_seconds_bucket{le=\"2\"} 0\n"
            "job_seconds_bucket{le=\"+Inf\"} 0\n"
            "job_seconds_sum 0\n"
            "job_seconds_count 0\n"
            "# HELP labelled_total Labelled, never recorded.\n"
            "# TYPE labelled_total counter\n");
}

TEST(MetricsTest, HistogramBucketsAreCumulativeAndCountEveryObservation) {
  Registry registry;
  auto& h = registry.histogram("h_seconds", "h", {1, 2, 4, 8});
  const std::vector<double> values{0.5, 1, 1.5, 3, 3, 5, 9, 100, -1};
  for (double v : values) h.observe({}, v);
  const std::string text = registry.exposition();
  // -1, 0.5, 1 | 1.5 | 3, 3 | 5 | 9, 100
  for (const auto& [le, expected] : std::vector<std::pair<std::string, int>>{
           {"1", 3}, {"2", 4}, {"4", 6}, {"8", 7}, {"+Inf", 9}}) {
    SCOPED_TRACE(le);
    EXPECT_NE(text.find("h_seconds_bucket{le=\"" + le + "\"} " + std::to_string(expected) + "\n"), std::string::npos)
        << text;
  }
  EXPECT_NE(text.find("h_seconds_count 9\n"), std::string::npos) << text;
  EXPECT_NE(text.find("h_seconds_sum 122\n"), std::string::npos) << text;
}

TEST(MetricsTest, NanObservationCountsOnlyInTheInfBucket) {
  Registry registry;
  auto& h = registry.histogram("n_seconds", "n", {1});
  h.observe({}, std::nan(""));
  const std::string text = registry.exposition();
  EXPECT_NE(text.find("n_seconds_bucket{le=\"1\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("n_seconds_bucket{le=\"+Inf\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("n_seconds_sum NaN\n"), std::string::npos) << text;
}

TEST(MetricsTest, LabelValuesAndHelpAreEscaped) {
  EXPECT_EQ(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(escape_label_value("plain /path {x}"), "plain /path {x}");
  EXPECT_EQ(escape_help("line1\nline2 \\ \"quoted\""), "line1\\nline2 \\\\ \"quoted\"");

  Registry registry;
  auto& c = registry.counter("escaped_total", "Help with a \\ and\na newline.", {"path"});
  c.add({"/x\"}\n{y=\"z\\"});
  EXPECT_EQ(registry.exposition(),
            "# HELP escaped_total Help with a \\\\ and\\na newline.\n"
            "# TYPE escaped_total counter\n"
            "escaped_total{path=\"/x\\\"}\\n{y=\\\"z\\\\\"} 1\n");
}

TEST(MetricsTest, ValuesUseTheFormatsSpellings) {
  EXPECT_EQ(format_value(3), "3");
  EXPECT_EQ(format_value(0.25), "0.25");
  EXPECT_EQ(format_value(-2.5), "-2.5");
  EXPECT_EQ(format_value(1e21), "1e+21");
  EXPECT_EQ(format_value(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_value(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(format_value(std::nan("")), "NaN");
}

TEST(MetricsTest, NamesTheFormatRefusesAreRejected) {
  EXPECT_TRUE(is_valid_metric_name("ca_http_requests_total"));
  EXPECT_TRUE(is_valid_metric_name("job:rate5m"));
  EXPECT_TRUE(is_valid_metric_name("_x"));
  for (const char* bad : {"", "1abc", "with-dash", "with space", "é"}) {
    SCOPED_TRACE(bad);
    EXPECT_FALSE(is_valid_metric_name(bad));
  }
  EXPECT_TRUE(is_valid_label_name("server_id"));
  for (const char* bad : {"", "__reserved", "a:b", "9x", "a-b"}) {
    SCOPED_TRACE(bad);
    EXPECT_FALSE(is_valid_label_name(bad));
  }

  Registry registry;
  EXPECT_THROW(registry.counter("bad-name", "x"), std::invalid_argument);
  EXPECT_THROW(registry.counter("ok_total", "x", {"__name"}), std::invalid_argument);
  EXPECT_THROW(registry.counter("ok_total", "x", {"a", "a"}), std::invalid_argument);
  EXPECT_THROW(registry.histogram("h", "x", {1}, {"le"}), std::invalid_argument);
  EXPECT_THROW(registry.histogram("h", "x", {2, 1}), std::invalid_argument);
  EXPECT_THROW(registry.histogram("h", "x", {}), std::invalid_argument);
  registry.counter("once_total", "x");
  EXPECT_THROW(registry.gauge("once_total", "x"), std::invalid_argument);
  auto& labelled = registry.counter("labelled_total", "x", {"a", "b"});
  EXPECT_THROW(labelled.add({"only one"}), std::invalid_argument);
  // The failed registrations left nothing behind.
  EXPECT_EQ(registry.exposition(),
            "# HELP once_total x\n# TYPE once_total counter\nonce_total 0\n"
            "# HELP labelled_total x\n# TYPE labelled_total counter\n");
}

TEST(MetricsTest, CountersNeverGoDownAndGaugesCanBeCleared) {
  Registry registry;
  auto& c = registry.counter("c_total", "c");
  c.add({}, 5);
  c.add({}, -3);
  c.add({}, std::nan(""));
  auto& g = registry.gauge("g", "g", {"k"});
  g.set({"old"}, 1);
  g.clear();
  g.set({"new"}, 2);
  EXPECT_EQ(registry.exposition(), "# HELP c_total c\n# TYPE c_total counter\nc_total 5\n"
                                   "# HELP g g\n# TYPE g gauge\ng{k=\"new\"} 2\n");
}

TEST(MetricsTest, CallbackGaugesAreEvaluatedAtEveryScrape) {
  Registry registry;
  std::atomic<int> value{1};
  registry.gauge_callback("live_value", "Read at scrape time.", [&] { return static_cast<double>(value.load()); });
  std::vector<GaugeSample> per_server;
  registry.gauge_callback("lag_seconds", "By server.", {"server_id"}, [&] { return per_server; });

  EXPECT_EQ(registry.exposition(), "# HELP live_value Read at scrape time.\n# TYPE live_value gauge\nlive_value 1\n"
                                   "# HELP lag_seconds By server.\n# TYPE lag_seconds gauge\n");
  value = 42;
  per_server = {{{"2"}, 0.5}, {{"1"}, 12}};
  EXPECT_EQ(registry.exposition(), "# HELP live_value Read at scrape time.\n# TYPE live_value gauge\nlive_value 42\n"
                                   "# HELP lag_seconds By server.\n# TYPE lag_seconds gauge\n"
                                   "lag_seconds{server_id=\"1\"} 12\nlag_seconds{server_id=\"2\"} 0.5\n");
}

TEST(MetricsTest, ConcurrentRecordingLosesNothing) {
  Registry registry;
  auto& c = registry.counter("hits_total", "hits", {"worker"});
  auto& h = registry.histogram("work_seconds", "work", {0.5});
  constexpr int kThreads = 8, kEach = 5000;
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&, t] {
        for (int i = 0; i < kEach; ++i) {
          c.add({std::to_string(t % 2)});
          h.observe({}, i % 2 ? 0.25 : 1.0);
          if (i % 500 == 0) (void)registry.exposition();  // scrapes while recording
        }
      });
  }
  const std::string text = registry.exposition();
  EXPECT_NE(text.find("hits_total{worker=\"0\"} 20000\n"), std::string::npos) << text;
  EXPECT_NE(text.find("hits_total{worker=\"1\"} 20000\n"), std::string::npos) << text;
  EXPECT_NE(text.find("work_seconds_bucket{le=\"0.5\"} 20000\n"), std::string::npos) << text;
  EXPECT_NE(text.find("work_seconds_count 40000\n"), std::string::npos) << text;
}

}  // namespace
}  // namespace ca::metrics
