// larder::obs — metrics for Prometheus: counters, gauges and histograms, each a family of
// series told apart by label values, rendered in the text exposition format (version 0.0.4,
// what every Prometheus server and agent scrapes).
//
// Recording is cheap and thread-safe: a series is found under its family's shared lock (a
// short map lookup; threads recording at once do not wait for each other), then updated with
// atomics. A series' reference stays valid as long as its family: hot paths keep it. Every family holds at
// most `max_series` series; label values beyond that are counted in one series whose labels all say "other",
// so no request can grow a family without bound (callers also map values from outside to a known set first).
// Names follow Prometheus conventions: base units (seconds, bytes), counters end in `_total`, histograms
// expose `_bucket` (cumulative, with `le`), `_sum` and `_count`.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

namespace larder::obs {

using LabelValues = std::vector<std::string>;

inline constexpr std::size_t kDefaultMaxSeries = 512;

class Counter {
 public:
  void inc(double by = 1) { value_.fetch_add(by, std::memory_order_relaxed); }
  // Mirrors a count a module keeps itself (monotonic there), read at scrape time.
  void mirror(double total) { value_.store(total, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Gauge {
 public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void inc(double by = 1) { value_.fetch_add(by, std::memory_order_relaxed); }
  void dec(double by = 1) { value_.fetch_sub(by, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  explicit Histogram(const std::vector<double>* bounds);
  void observe(double v);
  // Cumulative counts per bound (the last is +Inf), the sum and the count, read together.
  struct Snapshot {
    std::vector<std::uint64_t> cumulative;
    double sum = 0;
    std::uint64_t count = 0;
  };
  Snapshot snapshot() const;

 private:
  const std::vector<double>* bounds_;                      // the family's, ascending
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // per bound, + one for +Inf
  std::atomic<double> sum_{0};
  std::atomic<std::uint64_t> count_{0};
};

enum class Kind { kCounter, kGauge, kHistogram };

// One metric name with its label names; series are created on first use.
template <class Series>
class Family {
 public:
  Family(std::string name, std::string help, std::vector<std::string> label_names, Kind kind,
         std::vector<double> bounds = {}, std::size_t max_series = kDefaultMaxSeries);
  // The series with these label values (as many as label names; missing ones are "").
  Series& with(const LabelValues& values);
  Series& with(std::initializer_list<std::string_view> values);

  const std::string& name() const { return name_; }
  void render(std::string& out) const;

 private:
  Series& make(LabelValues values);
  std::string name_, help_;
  std::vector<std::string> label_names_;
  Kind kind_;
  std::vector<double> bounds_;
  std::size_t max_series_;
  mutable std::shared_mutex mu_;  // shared to find a series, exclusive to add one
  std::map<LabelValues, std::unique_ptr<Series>> series_;
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

// Bounds for latencies in seconds: 100 µs to 60 s, finer where Larder's calls fall (1-50 ms).
const std::vector<double>& latency_buckets();

class Registry {
 public:
  CounterFamily& counter(std::string name, std::string help, std::vector<std::string> label_names = {});
  GaugeFamily& gauge(std::string name, std::string help, std::vector<std::string> label_names = {});
  HistogramFamily& histogram(std::string name, std::string help, std::vector<std::string> label_names,
                             std::vector<double> bounds = latency_buckets());
  // Runs before every render, in the order added: sets gauges (and counters mirrored from a
  // module's own statistics) from snapshots taken at scrape time.
  void on_collect(std::function<void()> refresh);

  // The text exposition format, families in the order they were registered.
  std::string render();
  static constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

 private:
  std::mutex mu_;
  std::vector<std::unique_ptr<CounterFamily>> counters_;
  std::vector<std::unique_ptr<GaugeFamily>> gauges_;
  std::vector<std::unique_ptr<HistogramFamily>> histograms_;
  std::vector<std::function<void(std::string&)>> order_;  // renders, in registration order
  std::vector<std::function<void()>> collectors_;
};

}  // namespace larder::obs
