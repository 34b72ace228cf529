#pragma once
// Metrics in the Prometheus text exposition format, version 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/): a registry of metric families —
// counters, gauges, histograms with fixed buckets — and gauges computed when scraped.
//
// Families are registered at start-up; a name or label that the format does not allow, or a name
// registered twice, throws std::invalid_argument (a programming error, like a malformed route).
// Recording is thread-safe and cheap: one mutex per family, no allocation for a series that
// exists already. Label values are given in the order of the family's label names; a call with the
// wrong number of values throws std::invalid_argument as well.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace ca::metrics {

using LabelValues = std::vector<std::string>;

// The content type of exposition().
inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

// Bucket upper bounds (seconds) that suit request latencies from a millisecond to a minute.
std::vector<double> latency_buckets();

class Family;

// A monotonically increasing count.
class Counter {
 public:
  // amount must be >= 0 (a negative amount is ignored: counters never go down).
  void add(const LabelValues& labels, double amount = 1);

 private:
  friend class Registry;
  explicit Counter(Family& family) : family_(family) {}
  Family& family_;
};

// A value that goes up and down, set by the code that knows it.
class Gauge {
 public:
  void set(const LabelValues& labels, double value);
  // Forgets every series (e.g. before setting the current set of label values again).
  void clear();

 private:
  friend class Registry;
  explicit Gauge(Family& family) : family_(family) {}
  Family& family_;
};

// Observations counted into fixed buckets (cumulative in the exposition), with their sum and count.
class Histogram {
 public:
  void observe(const LabelValues& labels, double value);

 private:
  friend class Registry;
  explicit Histogram(Family& family) : family_(family) {}
  Family& family_;
};

// One sample of a gauge computed at scrape time.
struct GaugeSample {
  LabelValues labels;
  double value = 0;
};

class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // The returned references live as long as the registry.
  Counter& counter(std::string name, std::string help, std::vector<std::string> label_names = {});
  Gauge& gauge(std::string name, std::string help, std::vector<std::string> label_names = {});
  // upper_bounds: strictly increasing and finite; the +Inf bucket is implicit.
  Histogram& histogram(std::string name, std::string help, std::vector<double> upper_bounds,
                       std::vector<std::string> label_names = {});
  // Evaluated at every scrape, on the scraping thread: must be cheap and must not block (read a
  // cached value). Returning no sample leaves the family without samples for that scrape.
  void gauge_callback(std::string name, std::string help, std::vector<std::string> label_names,
                      std::function<std::vector<GaugeSample>()> collect);
  // The same for one unlabelled value.
  void gauge_callback(std::string name, std::string help, std::function<double()> collect);
  // A counter kept elsewhere (an atomic of the component that counts), read at every scrape.
  void counter_callback(std::string name, std::string help, std::vector<std::string> label_names,
                        std::function<std::vector<GaugeSample>()> collect);

  // Every family in registration order, series sorted by label values.
  std::string exposition() const;

 private:
  Family& add_family(std::unique_ptr<Family> family);

  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Family>> families_;
  std::vector<std::unique_ptr<Counter>> counters_;
  std::vector<std::unique_ptr<Gauge>> gauges_;
  std::vector<std::unique_ptr<Histogram>> histograms_;
};

// Exposed for tests: the text forms the format prescribes.
bool is_valid_metric_name(std::string_view name);
bool is_valid_label_name(std::string_view name);
std::string escape_label_value(std::string_view value);  // backslash, double quote, newline
std::string escape_help(std::string_view help);          // backslash, newline
std::string format_value(double value);                  // shortest round-trip; +Inf, -Inf, NaN

}  // namespace ca::metrics
