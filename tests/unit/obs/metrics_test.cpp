// larder::obs: the exposition text (types, escaping, cumulative buckets), bounded label sets,
// collectors, and recording from many threads at once.
#include "obs/metrics.h"

#include <gtest/gtest.h>

#include <limits>
#include <thread>
#include <vector>

namespace larder::obs {
namespace {

TEST(Metrics, CountersGaugesAndHistogramsRenderAsTheTextFormat) {
  Registry r;
  r.counter("larder_calls_total", "Calls.", {"tool", "outcome"}).with({"pg_query", "allow"}).inc(3);
  r.gauge("larder_connections", "Open.", {"state"}).with({"established"}).set(2);
  auto& h = r.histogram("larder_stage_duration_seconds", "Stages.", {"stage"}, {0.001, 0.01});
  h.with({"verify"}).observe(0.0005);
  h.with({"verify"}).observe(0.005);
  h.with({"verify"}).observe(5);
  const std::string text = r.render();
  EXPECT_NE(text.find("# HELP larder_calls_total Calls.\n# TYPE larder_calls_total counter\n"
                      "larder_calls_total{tool=\"pg_query\",outcome=\"allow\"} 3\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE larder_connections gauge\nlarder_connections{state=\"established\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("larder_stage_duration_seconds_bucket{stage=\"verify\",le=\"0.001\"} 1\n"
                      "larder_stage_duration_seconds_bucket{stage=\"verify\",le=\"0.01\"} 2\n"
                      "larder_stage_duration_seconds_bucket{stage=\"verify\",le=\"+Inf\"} 3\n"
                      "larder_stage_duration_seconds_sum{stage=\"verify\"} 5.0054999999999996\n"
                      "larder_stage_duration_seconds_count{stage=\"verify\"} 3\n"),
            std::string::npos)
      << text;
}

TEST(Metrics, LabelValuesAndHelpAreEscaped) {
  Registry r;
  r.counter("c_total", "a \\ b\nc", {"v"}).with({"quote\" back\\ nl\n"}).inc();
  const std::string text = r.render();
  EXPECT_NE(text.find("# HELP c_total a \\\\ b\\nc\n"), std::string::npos) << text;
  EXPECT_NE(text.find("c_total{v=\"quote\\\" back\\\\ nl\\n\"} 1\n"), std::string::npos) << text;
}

TEST(Metrics, AFamilyHoldsAtMostItsBoundAndCountsTheRestAsOther) {
  Family<Counter> f("f_total", "", {"name"}, Kind::kCounter, {}, 8);
  for (int i = 0; i < 1000; ++i) f.with({"name-" + std::to_string(i)}).inc();
  std::string out;
  f.render(out);
  std::size_t series = 0;
  for (std::size_t at = out.find("\nf_total{"); at != std::string::npos; at = out.find("\nf_total{", at + 1))
    ++series;
  EXPECT_EQ(series, 8u) << out;
  EXPECT_NE(out.find("f_total{name=\"other\"} 993\n"), std::string::npos) << out;
}

TEST(Metrics, CollectorsRunBeforeEachRenderAndCountersMayMirrorAModulesCount) {
  Registry r;
  auto& mirrored = r.counter("m_total", "");
  int scrapes = 0;
  r.on_collect([&] { mirrored.with({}).mirror(++scrapes * 10); });
  r.render();
  EXPECT_NE(r.render().find("m_total 20\n"), std::string::npos);
}

TEST(Metrics, RecordingFromManyThreadsLosesNothing) {
  Registry r;
  auto& c = r.counter("n_total", "", {"k"});
  auto& h = r.histogram("d_seconds", "", {}, {1});
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10000; ++i) {
        c.with({t % 2 ? "a" : "b"}).inc();
        h.with({}).observe(0.5);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.with({"a"}).value() + c.with({"b"}).value(), 80000);
  EXPECT_EQ(h.with({}).snapshot().count, 80000u);
  EXPECT_EQ(h.with({}).snapshot().cumulative[0], 80000u);
}

TEST(Metrics, SpecialValuesAreSpelledAsPrometheusReadsThem) {
  Registry r;
  auto& g = r.gauge("g", "", {"k"});
  g.with({"nan"}).set(std::numeric_limits<double>::quiet_NaN());
  g.with({"inf"}).set(std::numeric_limits<double>::infinity());
  g.with({"big"}).set(1e20);
  const std::string text = r.render();
  EXPECT_NE(text.find("g{k=\"nan\"} NaN\n"), std::string::npos) << text;
  EXPECT_NE(text.find("g{k=\"inf\"} +Inf\n"), std::string::npos) << text;
  EXPECT_NE(text.find("g{k=\"big\"} 1e+20\n"), std::string::npos) << text;
}

}  // namespace
}  // namespace larder::obs
