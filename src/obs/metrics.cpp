#include "obs/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace larder::obs {
namespace {

// A sample value as Prometheus reads it: integers without a fraction, +Inf/-Inf/NaN spelled out.
void append_number(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else if (v == std::floor(v) && std::fabs(v) < 1e15) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f", v);
    out += buf;
  } else {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    out += buf;
  }
}

// Label values escape backslash, double quote and line feed; HELP text backslash and line feed.
void append_escaped(std::string& out, std::string_view text, bool quote) {
  for (char c : text) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '"':
        out += quote ? "\\\"" : "\"";
        break;
      default:
        out += c;
    }
  }
}

void append_labels(std::string& out, const std::vector<std::string>& names, const LabelValues& values,
                   std::string_view extra_name = {}, std::string_view extra_value = {}) {
  if (names.empty() && extra_name.empty()) return;
  out += '{';
  bool first = true;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (!first) out += ',';
    first = false;
    out += names[i];
    out += "=\"";
    append_escaped(out, i < values.size() ? std::string_view(values[i]) : std::string_view(), true);
    out += '"';
  }
  if (!extra_name.empty()) {
    if (!first) out += ',';
    out += extra_name;
    out += "=\"";
    out += extra_value;
    out += '"';
  }
  out += '}';
}

const char* type_name(Kind k) {
  switch (k) {
    case Kind::kCounter:
      return "counter";
    case Kind::kGauge:
      return "gauge";
    case Kind::kHistogram:
      return "histogram";
  }
  return "untyped";
}

template <class Series>
std::unique_ptr<Series> new_series(const std::vector<double>* bounds) {
  if constexpr (std::is_same_v<Series, Histogram>) {
    return std::make_unique<Histogram>(bounds);
  } else {
    (void)bounds;
    return std::make_unique<Series>();
  }
}

}  // namespace

Histogram::Histogram(const std::vector<double>* bounds)
    : bounds_(bounds), buckets_(new std::atomic<std::uint64_t>[bounds->size() + 1]) {
  for (std::size_t i = 0; i <= bounds_->size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double v) {
  const auto it = std::lower_bound(bounds_->begin(), bounds_->end(), v);  // first bound >= v
  buckets_[static_cast<std::size_t>(it - bounds_->begin())].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.cumulative.resize(bounds_->size() + 1);
  std::uint64_t running = 0;
  for (std::size_t i = 0; i <= bounds_->size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = running;
  }
  // The count is the +Inf bucket, so the two always agree in one scrape.
  s.count = running;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

template <class Series>
Family<Series>::Family(std::string name, std::string help, std::vector<std::string> label_names, Kind kind,
                       std::vector<double> bounds, std::size_t max_series)
    : name_(std::move(name)),
      help_(std::move(help)),
      label_names_(std::move(label_names)),
      kind_(kind),
      bounds_(std::move(bounds)),
      max_series_(std::max<std::size_t>(1, max_series)) {}

template <class Series>
Series& Family<Series>::make(LabelValues values) {
  values.resize(label_names_.size());
  {
    std::shared_lock lock(mu_);
    if (auto it = series_.find(values); it != series_.end()) return *it->second;
  }
  std::unique_lock lock(mu_);
  if (auto it = series_.find(values); it != series_.end()) return *it->second;
  if (series_.size() + 1 >= max_series_) {
    // The last slot is kept for everything beyond the bound.
    values.assign(label_names_.size(), "other");
    if (auto it = series_.find(values); it != series_.end()) return *it->second;
  }
  auto& slot = series_[std::move(values)];
  slot = new_series<Series>(&bounds_);
  return *slot;
}

template <class Series>
Series& Family<Series>::with(const LabelValues& values) {
  return make(values);
}

template <class Series>
Series& Family<Series>::with(std::initializer_list<std::string_view> values) {
  LabelValues v;
  v.reserve(values.size());
  for (auto s : values) v.emplace_back(s);
  return make(std::move(v));
}

template <class Series>
void Family<Series>::render(std::string& out) const {
  out += "# HELP ";
  out += name_;
  out += ' ';
  append_escaped(out, help_, false);
  out += "\n# TYPE ";
  out += name_;
  out += ' ';
  out += type_name(kind_);
  out += '\n';
  std::shared_lock lock(mu_);
  for (const auto& [values, series] : series_) {
    if constexpr (std::is_same_v<Series, Histogram>) {
      const auto snap = series->snapshot();
      std::string le;
      for (std::size_t i = 0; i <= bounds_.size(); ++i) {
        le.clear();
        if (i < bounds_.size()) {
          append_number(le, bounds_[i]);
        } else {
          le = "+Inf";
        }
        out += name_;
        out += "_bucket";
        append_labels(out, label_names_, values, "le", le);
        out += ' ';
        append_number(out, static_cast<double>(snap.cumulative[i]));
        out += '\n';
      }
      out += name_;
      out += "_sum";
      append_labels(out, label_names_, values);
      out += ' ';
      append_number(out, snap.sum);
      out += '\n';
      out += name_;
      out += "_count";
      append_labels(out, label_names_, values);
      out += ' ';
      append_number(out, static_cast<double>(snap.count));
      out += '\n';
    } else {
      out += name_;
      append_labels(out, label_names_, values);
      out += ' ';
      append_number(out, series->value());
      out += '\n';
    }
  }
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

const std::vector<double>& latency_buckets() {
  static const std::vector<double> b{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                     0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30,    60};
  return b;
}

CounterFamily& Registry::counter(std::string name, std::string help, std::vector<std::string> label_names) {
  std::lock_guard lock(mu_);
  counters_.push_back(std::make_unique<CounterFamily>(std::move(name), std::move(help),
                                                      std::move(label_names), Kind::kCounter));
  auto* f = counters_.back().get();
  order_.push_back([f](std::string& out) { f->render(out); });
  return *f;
}

GaugeFamily& Registry::gauge(std::string name, std::string help, std::vector<std::string> label_names) {
  std::lock_guard lock(mu_);
  gauges_.push_back(
      std::make_unique<GaugeFamily>(std::move(name), std::move(help), std::move(label_names), Kind::kGauge));
  auto* f = gauges_.back().get();
  order_.push_back([f](std::string& out) { f->render(out); });
  return *f;
}

HistogramFamily& Registry::histogram(std::string name, std::string help, std::vector<std::string> label_names,
                                     std::vector<double> bounds) {
  std::sort(bounds.begin(), bounds.end());
  bounds.erase(std::unique(bounds.begin(), bounds.end()), bounds.end());
  std::lock_guard lock(mu_);
  histograms_.push_back(std::make_unique<HistogramFamily>(
      std::move(name), std::move(help), std::move(label_names), Kind::kHistogram, std::move(bounds)));
  auto* f = histograms_.back().get();
  order_.push_back([f](std::string& out) { f->render(out); });
  return *f;
}

void Registry::on_collect(std::function<void()> refresh) {
  std::lock_guard lock(mu_);
  collectors_.push_back(std::move(refresh));
}

std::string Registry::render() {
  std::lock_guard lock(mu_);  // one scrape at a time; recording does not take this lock
  for (const auto& c : collectors_) c();
  std::string out;
  out.reserve(16 * 1024);
  for (const auto& r : order_) r(out);
  return out;
}

}  // namespace larder::obs
