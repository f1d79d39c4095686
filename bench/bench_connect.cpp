// What `larder connect` adds to a call: the same `pg_query` (Erin's rows, through all four
// locks of a real LarderService on a throwaway PostgreSQL) called N times sequentially
//   direct: by libmcp's client over mTLS, as any MCP client would;
//   bridged: by a host writing JSON-RPC lines to a `larder connect` process on stdio, which
//            calls the same server over mTLS.
// The bridge's CPU per call is the bridge process's user+system time (/proc/<pid>/stat)
// over the calls, minus the direct client's own CPU per call (the calling thread's CPU
// clock: libmcp's client does its HTTP exchange on the calling thread). The difference is
// what the bridge adds: a stdio hop, a second JSON parse and serialization, the token and
// schema bookkeeping and the last-line secret scan. Wall-clock latency is shown side by side.
//
//   bench_connect [--calls N] [--rows R]
#include "examples/healthcare/demo.h"
#include "mcp/client.h"
#include "support/testbed.h"

#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace larder;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

constexpr const char* kSql = "SELECT * FROM health_records WHERE \"Patient Name\" = 'Erin oRTEga'";

double thread_cpu_us() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

// A process's CPU time in µs: the sum over its threads of the time each spent on a CPU
// (/proc/<pid>/task/*/schedstat, in ns; /proc/<pid>/stat's utime and stime count whole clock
// ticks, 10 ms, too coarse for rounds of a few hundred calls).
double process_cpu_us(pid_t pid) {
  double ns = 0;
  std::error_code ec;
  for (const auto& task : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream in(task.path() / "schedstat");
    double on_cpu = 0;
    if (in >> on_cpu) ns += on_cpu;
  }
  return ns / 1e3;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

// The host side of a bridge process: newline-delimited JSON-RPC over its stdin/stdout.
class BridgeProcess {
 public:
  BridgeProcess(const std::string& larder, const std::vector<std::string>& args) {
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0) throw std::runtime_error("pipe");
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      ::close(in[1]);
      ::close(out[0]);
      std::vector<std::string> argv{larder};
      argv.insert(argv.end(), args.begin(), args.end());
      std::vector<char*> c;
      for (auto& a : argv) c.push_back(a.data());
      c.push_back(nullptr);
      execv(c[0], c.data());
      _exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    to_ = fdopen(in[1], "w");
    from_ = fdopen(out[0], "r");
  }
  ~BridgeProcess() {
    if (to_) fclose(to_);
    int status = 0;
    waitpid(pid_, &status, 0);
    if (from_) fclose(from_);
  }
  pid_t pid() const { return pid_; }
  json request(int id, const std::string& method, const json& params) {
    const std::string line =
        json{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}}.dump();
    fputs(line.c_str(), to_);
    fputc('\n', to_);
    fflush(to_);
    while (true) {
      std::string got;
      char buf[65536];
      while (fgets(buf, sizeof buf, from_)) {
        got += buf;
        if (!got.empty() && got.back() == '\n') break;
      }
      if (got.empty()) throw std::runtime_error("the bridge closed its output");
      json m = json::parse(got);
      if (m.contains("id") && m["id"] == id) return m;
    }
  }
  void notify(const std::string& method) {
    fputs(json{{"jsonrpc", "2.0"}, {"method", method}}.dump().c_str(), to_);
    fputc('\n', to_);
    fflush(to_);
  }

 private:
  pid_t pid_ = -1;
  FILE* to_ = nullptr;
  FILE* from_ = nullptr;
};

}  // namespace

int main(int argc, char** argv) {
  int calls = 2000;
  std::size_t rows = 3000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--calls") == 0) calls = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--rows") == 0) rows = static_cast<std::size_t>(std::atoll(argv[i + 1]));
  }
  spdlog::set_level(spdlog::level::warn);
  const std::string larder = LARDER_BINARY;
  std::unique_ptr<test::Testbed> bed;
  try {
    test::Testbed::Options to;
    to.rows = rows;
    bed = std::make_unique<test::Testbed>(to);
    tools::ServeConfig c = bed->db_config();
    c.transport.client_limits.rate_per_second = 1'000'000;
    c.transport.client_limits.burst = 1'000'000;
    c.pipeline.lineage_limits.rate_per_second = 1'000'000;
    c.pipeline.lineage_limits.burst = 1'000'000;
    bed->db = test::Testbed::start(c);
  } catch (const std::exception& e) {
    std::cerr << "bench_connect: " << e.what() << "\n";
    return 1;
  }
  tools::DemoEnvironment env = bed->environment();
  auto tokens = examples::healthcare::mint_demo_tokens(env, "unused");
  if (!tokens) {
    std::cerr << "bench_connect: " << tokens.error().message << "\n";
    return 1;
  }
  const net::TlsClientConfig tls{env.ca_file, env.claude.cert, env.claude.key, "", false};
  const std::string url = bed->db_url();

  // The lineage's first read taints it; both paths then run with the tainted token.
  std::string token = tokens->erin;
  {
    auto first = mcp::Client::connect_http(url, tls, {{"Authorization", "Bearer " + token}});
    if (!first) return std::cerr << "bench_connect: " << first.error().message << "\n", 1;
    auto r = (*first)->call_tool("pg_query", {{"query", kSql}});
    if (!r || r->value("isError", false)) return std::cerr << "bench_connect: the first call failed\n", 1;
    if ((*r)["_meta"].contains("larder/biscuit_token")) token = (*r)["_meta"]["larder/biscuit_token"];
  }

  // Both paths stay open; rounds alternate between them so that what else the machine does
  // falls on both alike, and the figure is the median of the per-round differences.
  auto client = mcp::Client::connect_http(url, tls, {{"Authorization", "Bearer " + token}});
  if (!client) return std::cerr << "bench_connect: " << client.error().message << "\n", 1;
  const fs::path dir = bed->dir() / "connect-bench";
  fs::create_directories(dir);
  json server = {{"url", url},
                 {"tls", {{"ca", env.ca_file}, {"cert", env.claude.cert}, {"key", env.claude.key}}}};
  std::ofstream(dir / "mcp.json") << json{{"mcpServers", {{"larder-db", server}}}}.dump(2);
  std::ofstream(dir / "token") << token;
  BridgeProcess bridge(larder, {"connect", "--config", (dir / "mcp.json").string(), "--token",
                                "@" + (dir / "token").string(), "--no-token-state"});
  auto init = bridge.request(0, "initialize",
                             {{"protocolVersion", "2025-06-18"},
                              {"capabilities", json::object()},
                              {"clientInfo", {{"name", "bench"}, {"version", "1"}}}});
  if (!init.contains("result")) return std::cerr << "bench_connect: " << init.dump() << "\n", 1;
  bridge.notify("notifications/initialized");
  const json params = {{"name", "pg_query"}, {"arguments", {{"query", kSql}}}};
  int next_id = 1;
  for (int i = 0; i < 50; ++i) {
    (void)(*client)->call_tool("pg_query", {{"query", kSql}});
    (void)bridge.request(next_id++, "tools/call", params);
  }
  if (const char* pause = std::getenv("BENCH_CONNECT_PAUSE")) {
    // Time to attach a profiler to the bridge process.
    std::cerr << "bench_connect: bridge pid " << bridge.pid() << "\n";
    std::this_thread::sleep_for(std::chrono::seconds(std::atoi(pause)));
  }
  const int rounds = 10, per_round = std::max(1, calls / rounds);
  std::vector<double> direct_ms, bridged_ms, direct_cpu, bridged_cpu, added;
  for (int round = 0; round < rounds; ++round) {
    double cpu0 = thread_cpu_us();
    for (int i = 0; i < per_round; ++i) {
      auto t0 = Clock::now();
      auto r = (*client)->call_tool("pg_query", {{"query", kSql}});
      direct_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      if (!r || r->value("isError", false)) return std::cerr << "bench_connect: a direct call failed\n", 1;
    }
    direct_cpu.push_back((thread_cpu_us() - cpu0) / per_round);
    cpu0 = process_cpu_us(bridge.pid());
    for (int i = 0; i < per_round; ++i) {
      auto t0 = Clock::now();
      auto r = bridge.request(next_id++, "tools/call", params);
      bridged_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      if (!r.contains("result") || r["result"].value("isError", false))
        return std::cerr << "bench_connect: a bridged call failed: " << r.dump().substr(0, 300) << "\n", 1;
    }
    bridged_cpu.push_back((process_cpu_us(bridge.pid()) - cpu0) / per_round);
    added.push_back(bridged_cpu.back() - direct_cpu.back());
  }
  const double added_median = percentile(added, 0.5);
  std::printf("pg_query (Erin's rows, four locks), %d rounds of %d sequential calls per path, alternating\n",
              rounds, per_round);
  std::printf("%-10s %22s %10s %10s\n", "path", "client CPU/call (med)", "p50 ms", "p99 ms");
  std::printf("%-10s %19.0f us %10.2f %10.2f\n", "direct", percentile(direct_cpu, 0.5),
              percentile(direct_ms, 0.5), percentile(direct_ms, 0.99));
  std::printf("%-10s %19.0f us %10.2f %10.2f\n", "bridged", percentile(bridged_cpu, 0.5),
              percentile(bridged_ms, 0.5), percentile(bridged_ms, 0.99));
  std::printf(
      "the bridge adds %.0f us of CPU per call (median of the rounds; min %.0f, max %.0f; target: at most "
      "150 us), %.2f ms at p50\n",
      added_median, *std::min_element(added.begin(), added.end()),
      *std::max_element(added.begin(), added.end()),
      percentile(bridged_ms, 0.5) - percentile(direct_ms, 0.5));
  return 0;
}
