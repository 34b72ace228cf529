#include "core/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

namespace ca::metrics {

namespace {

bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }

}  // namespace

bool is_valid_metric_name(std::string_view name) {
  if (name.empty() || !(is_name_start(name[0]) || name[0] == ':')) return false;
  return std::ranges::all_of(name, [](char c) { return is_name_char(c) || c == ':'; });
}

bool is_valid_label_name(std::string_view name) {
  // Names beginning with "__" are reserved for Prometheus itself.
  if (name.empty() || !is_name_start(name[0]) || name.starts_with("__")) return false;
  return std::ranges::all_of(name, is_name_char);
}

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string escape_help(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string format_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", value);
}

std::vector<double> latency_buckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

class Family {
 public:
  enum class Type { counter, gauge, histogram };

  Family(Type type, std::string name, std::string help, std::vector<std::string> label_names)
      : type_(type), name_(std::move(name)), help_(std::move(help)), label_names_(std::move(label_names)) {
    if (!is_valid_metric_name(name_)) throw std::invalid_argument("invalid metric name: '" + name_ + "'");
    for (std::size_t i = 0; i < label_names_.size(); ++i) {
      const auto& label = label_names_[i];
      if (!is_valid_label_name(label) || (type_ == Type::histogram && label == "le"))
        throw std::invalid_argument(fmt::format("metric {}: invalid label name '{}'", name_, label));
      if (std::find(label_names_.begin(), label_names_.begin() + static_cast<std::ptrdiff_t>(i), label) !=
          label_names_.begin() + static_cast<std::ptrdiff_t>(i))
        throw std::invalid_argument(fmt::format("metric {}: label '{}' twice", name_, label));
    }
  }

  const std::string& name() const { return name_; }

  void set_bounds(std::vector<double> bounds) {
    if (bounds.empty()) throw std::invalid_argument("histogram " + name_ + " without buckets");
    for (std::size_t i = 0; i < bounds.size(); ++i)
      if (!std::isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1]))
        throw std::invalid_argument("histogram " + name_ + ": bucket bounds must be finite and strictly increasing");
    bounds_ = std::move(bounds);
  }
  void set_collector(std::function<std::vector<GaugeSample>()> collect) { collect_ = std::move(collect); }

  void add(const LabelValues& labels, double amount) {
    check(labels);
    if (!(amount >= 0)) return;  // also NaN
    std::lock_guard lock(mutex_);
    values_[labels] += amount;
  }

  void set(const LabelValues& labels, double value) {
    check(labels);
    std::lock_guard lock(mutex_);
    values_[labels] = value;
  }

  void clear() {
    std::lock_guard lock(mutex_);
    values_.clear();
  }

  void observe(const LabelValues& labels, double value) {
    check(labels);
    // The bucket is the first bound >= value ("le" means less or equal); NaN counts in +Inf only.
    const auto bucket =
        std::isnan(value)
            ? bounds_.size()
            : static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
    std::lock_guard lock(mutex_);
    auto it = histograms_.find(labels);
    if (it == histograms_.end())
      it = histograms_.emplace(labels, HistogramSeries{std::vector<uint64_t>(bounds_.size() + 1, 0)}).first;
    it->second.buckets[bucket] += 1;
    it->second.sum += value;
    it->second.count += 1;
  }

  void render(std::string& out) const {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name_, escape_help(help_), name_,
                       type_ == Type::counter ? "counter"
                       : type_ == Type::gauge ? "gauge"
                                              : "histogram");
    if (collect_) {
      auto samples = collect_();
      std::ranges::sort(samples, {}, &GaugeSample::labels);
      for (const auto& s : samples) {
        if (s.labels.size() != label_names_.size()) continue;  // a collector bug must not break the scrape
        sample_line(out, name_, s.labels, nullptr, s.value);
      }
      return;
    }
    std::lock_guard lock(mutex_);
    if (type_ == Type::histogram) {
      if (histograms_.empty() && label_names_.empty())
        render_histogram(out, {}, HistogramSeries{std::vector<uint64_t>(bounds_.size() + 1, 0)});
      for (const auto& [labels, series] : histograms_) render_histogram(out, labels, series);
      return;
    }
    if (values_.empty() && label_names_.empty()) sample_line(out, name_, {}, nullptr, 0);
    for (const auto& [labels, value] : values_) sample_line(out, name_, labels, nullptr, value);
  }

 private:
  struct HistogramSeries {
    std::vector<uint64_t> buckets;  // per bucket (not cumulative); the last one is +Inf
    double sum = 0;
    uint64_t count = 0;
  };

  void check(const LabelValues& labels) const {
    if (labels.size() != label_names_.size())
      throw std::invalid_argument(
          fmt::format("metric {}: {} label value(s) given, {} expected", name_, labels.size(), label_names_.size()));
  }

  // name{label="value",...,le="bound"} value
  void sample_line(std::string& out, std::string_view name, const LabelValues& labels, const std::string* le,
                   double value) const {
    out += name;
    if (!labels.empty() || le) {
      out += '{';
      for (std::size_t i = 0; i < labels.size(); ++i) {
        if (i) out += ',';
        out += fmt::format("{}=\"{}\"", label_names_[i], escape_label_value(labels[i]));
      }
      if (le) out += fmt::format("{}le=\"{}\"", labels.empty() ? "" : ",", *le);
      out += '}';
    }
    out += ' ';
    out += format_value(value);
    out += '\n';
  }

  void render_histogram(std::string& out, const LabelValues& labels, const HistogramSeries& series) const {
    const std::string bucket_name = name_ + "_bucket";
    uint64_t cumulative = 0;
    for (std::size_t i = 0; i < series.buckets.size(); ++i) {
      cumulative += series.buckets[i];
      const std::string le = i < bounds_.size() ? format_value(bounds_[i]) : "+Inf";
      sample_line(out, bucket_name, labels, &le, static_cast<double>(cumulative));
    }
    sample_line(out, name_ + "_sum", labels, nullptr, series.sum);
    sample_line(out, name_ + "_count", labels, nullptr, static_cast<double>(series.count));
  }

  const Type type_;
  const std::string name_;
  const std::string help_;
  const std::vector<std::string> label_names_;
  std::vector<double> bounds_;
  std::function<std::vector<GaugeSample>()> collect_;
  mutable std::mutex mutex_;
  std::map<LabelValues, double> values_;
  std::map<LabelValues, HistogramSeries> histograms_;
};

void Counter::add(const LabelValues& labels, double amount) { family_.add(labels, amount); }
void Gauge::set(const LabelValues& labels, double value) { family_.set(labels, value); }
void Gauge::clear() { family_.clear(); }
void Histogram::observe(const LabelValues& labels, double value) { family_.observe(labels, value); }

Registry::Registry() = default;
Registry::~Registry() = default;

Family& Registry::add_family(std::unique_ptr<Family> family) {
  std::lock_guard lock(mutex_);
  for (const auto& existing : families_)
    if (existing->name() == family->name())
      throw std::invalid_argument("metric " + family->name() + " registered twice");
  families_.push_back(std::move(family));
  return *families_.back();
}

Counter& Registry::counter(std::string name, std::string help, std::vector<std::string> label_names) {
  auto& family = add_family(
      std::make_unique<Family>(Family::Type::counter, std::move(name), std::move(help), std::move(label_names)));
  std::lock_guard lock(mutex_);
  counters_.push_back(std::unique_ptr<Counter>(new Counter(family)));
  return *counters_.back();
}

Gauge& Registry::gauge(std::string name, std::string help, std::vector<std::string> label_names) {
  auto& family = add_family(
      std::make_unique<Family>(Family::Type::gauge, std::move(name), std::move(help), std::move(label_names)));
  std::lock_guard lock(mutex_);
  gauges_.push_back(std::unique_ptr<Gauge>(new Gauge(family)));
  return *gauges_.back();
}

Histogram& Registry::histogram(std::string name, std::string help, std::vector<double> upper_bounds,
                               std::vector<std::string> label_names) {
  auto family =
      std::make_unique<Family>(Family::Type::histogram, std::move(name), std::move(help), std::move(label_names));
  family->set_bounds(std::move(upper_bounds));
  auto& added = add_family(std::move(family));
  std::lock_guard lock(mutex_);
  histograms_.push_back(std::unique_ptr<Histogram>(new Histogram(added)));
  return *histograms_.back();
}

void Registry::gauge_callback(std::string name, std::string help, std::vector<std::string> label_names,
                              std::function<std::vector<GaugeSample>()> collect) {
  if (!collect) throw std::invalid_argument("gauge " + name + " without a collector");
  auto family = std::make_unique<Family>(Family::Type::gauge, std::move(name), std::move(help), std::move(label_names));
  family->set_collector(std::move(collect));
  add_family(std::move(family));
}

void Registry::gauge_callback(std::string name, std::string help, std::function<double()> collect) {
  if (!collect) throw std::invalid_argument("gauge " + name + " without a collector");
  gauge_callback(std::move(name), std::move(help), {}, [collect = std::move(collect)] {
    return std::vector<GaugeSample>{{{}, collect()}};
  });
}

void Registry::counter_callback(std::string name, std::string help, std::vector<std::string> label_names,
                                std::function<std::vector<GaugeSample>()> collect) {
  if (!collect) throw std::invalid_argument("counter " + name + " without a collector");
  auto family =
      std::make_unique<Family>(Family::Type::counter, std::move(name), std::move(help), std::move(label_names));
  family->set_collector(std::move(collect));
  add_family(std::move(family));
}

std::string Registry::exposition() const {
  std::vector<const Family*> families;
  {
    std::lock_guard lock(mutex_);
    for (const auto& f : families_) families.push_back(f.get());
  }
  // Families are never removed: rendering outside the registry lock lets a slow collector delay
  // only this scrape, never a registration.
  std::string out;
  for (const auto* f : families) f->render(out);
  return out;
}

}  // namespace ca::metrics
