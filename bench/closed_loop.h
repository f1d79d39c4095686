// Closed-loop load for the benchmark programs: N client threads, each set up first (its own
// connection), released together, each issuing its next call as soon as the previous one
// answered, for a fixed time. Reports throughput and latency percentiles.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

namespace larder::bench {

struct LoadFigures {
  int clients = 0;
  std::size_t calls = 0;  // successful calls
  double rps = 0, p50_us = 0, p99_us = 0;
  int failures = 0;
  std::string first_failure;
};

// One client's call: nullopt on success, else why it failed.
using Call = std::function<std::optional<std::string>()>;
// Sets up client `index` (e.g. connects); returns its call, or an error text.
using Setup = std::function<std::variant<Call, std::string>(int index)>;

inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

inline LoadFigures run_closed_loop(int clients, double seconds, const Setup& setup) {
  using Clock = std::chrono::steady_clock;
  LoadFigures f;
  f.clients = clients;
  std::vector<std::vector<double>> latencies(static_cast<std::size_t>(clients));
  std::atomic<int> ready{0}, failures{0};
  std::atomic<bool> go{false};
  std::mutex failure_mu;
  auto fail = [&](const std::string& why) {
    std::lock_guard lock(failure_mu);
    if (f.first_failure.empty()) f.first_failure = why;
    failures++;
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      auto made = setup(t);
      ready++;
      if (auto* error = std::get_if<std::string>(&made)) {
        fail(*error);
        return;
      }
      const Call& call = std::get<Call>(made);
      while (!go) std::this_thread::yield();
      auto& lat = latencies[static_cast<std::size_t>(t)];
      const auto end = Clock::now() + std::chrono::duration<double>(seconds);
      while (Clock::now() < end) {
        const auto start = Clock::now();
        auto failed = call();
        const auto stop = Clock::now();
        if (failed) {
          fail(*failed);
          continue;
        }
        lat.push_back(std::chrono::duration<double, std::micro>(stop - start).count());
      }
    });
  }
  while (ready < clients) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const auto t0 = Clock::now();
  go = true;
  for (auto& th : threads) th.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  f.calls = all.size();
  f.rps = static_cast<double>(all.size()) / elapsed;
  f.p50_us = percentile(all, 0.50);
  f.p99_us = percentile(all, 0.99);
  f.failures = failures;
  return f;
}

}  // namespace larder::bench
