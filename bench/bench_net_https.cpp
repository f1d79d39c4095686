// HTTPS (mTLS) throughput of a trivial handler: N client threads, each with one keep-alive
// connection, against one server on 127.0.0.1. Also the cost of full vs resumed handshakes.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <ctime>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "net/client.h"
#include "net/server.h"
#include "tls_test_pki.h"

namespace {

using namespace larder::net;

struct Fixture {
  larder::testing::TlsTestPki pki;
  larder::testing::CertFiles client_files;
  std::unique_ptr<Server> server;
  std::string url;

  Fixture() {
    client_files = pki.client("bench-client");
    ServerConfig cfg;
    cfg.tls.cert_file = pki.server().cert;
    cfg.tls.key_file = pki.server().key;
    cfg.tls.client_ca_file = pki.ca_cert();
    cfg.tls.crl_file = pki.crl();
    cfg.limits.worker_threads = 4;
    auto s = Server::create(cfg, [](const HttpRequest& req, std::shared_ptr<Responder> responder) {
      responder->respond(
          HttpResponse{200,
                       {{"Content-Type", "application/json"}},
                       R"({"jsonrpc":"2.0","id":1,"result":{"ok":true,"cn":")" + req.peer->cn + "\"}}"});
    });
    if (!s.ok()) throw std::runtime_error(s.error().message);
    server = std::move(*s);
    if (auto r = server->start(); !r) throw std::runtime_error(r.error().message);
    url = "https://127.0.0.1:" + std::to_string(server->port());
  }
  std::unique_ptr<HttpClient> client() {
    auto c = HttpClient::create(url, {pki.ca_cert(), client_files.cert, client_files.key, "", false});
    if (!c.ok()) throw std::runtime_error(c.error().message);
    return std::move(*c);
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

const std::string kBody = R"({"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}})";

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// N clients, each on its own thread with one keep-alive connection (handshake done before
// timing), 2000 requests in total per iteration.
void BM_ConcurrentKeepAlive(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const int per_client = std::max(1, 2000 / n);
  std::vector<std::unique_ptr<HttpClient>> clients;
  for (int i = 0; i < n; ++i) {
    clients.push_back(fixture().client());
    if (!clients.back()->request("GET", "/", {}, "").ok()) {
      state.SkipWithError("warm-up request failed");
      return;
    }
  }
  double cpu = 0;
  int64_t total = 0;
  for (auto _ : state) {
    std::atomic<bool> failed{false};
    double cpu_start = process_cpu_seconds();
    std::vector<std::thread> threads;
    for (int i = 0; i < n; ++i) {
      threads.emplace_back([&, i] {
        for (int k = 0; k < per_client; ++k) {
          auto r = clients[i]->request("POST", "/mcp", {{"Content-Type", "application/json"}}, kBody);
          if (!r.ok() || r->status != 200) failed = true;
        }
      });
    }
    for (auto& t : threads) t.join();
    cpu += process_cpu_seconds() - cpu_start;
    total += static_cast<int64_t>(n) * per_client;
    if (failed) {
      state.SkipWithError("a request failed");
      return;
    }
  }
  state.counters["requests_per_second"] =
      benchmark::Counter(static_cast<double>(total), benchmark::Counter::kIsRate);
  // Client and server share the process: this is the CPU both sides spend per request.
  state.counters["cpu_us_per_request"] = total ? cpu * 1e6 / static_cast<double>(total) : 0;
}
BENCHMARK(BM_ConcurrentKeepAlive)
    ->Arg(1)
    ->Arg(4)
    ->Arg(16)
    ->Arg(64)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

void BM_FullHandshakePerRequest(benchmark::State& state) {
  for (auto _ : state) {
    auto client = fixture().client();  // fresh client: no session to resume
    auto r = client->request("GET", "/", {}, "");
    if (!r.ok()) {
      state.SkipWithError("request failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FullHandshakePerRequest)->UseRealTime();

void BM_ResumedHandshakePerRequest(benchmark::State& state) {
  auto client = fixture().client();
  (void)client->request("GET", "/", {}, "");
  std::size_t resumed = 0;
  for (auto _ : state) {
    client->disconnect();
    auto r = client->request("GET", "/", {}, "");
    if (!r.ok()) {
      state.SkipWithError("request failed");
      break;
    }
    resumed += client->session_resumed() ? 1 : 0;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["resumed_fraction"] =
      state.iterations() ? static_cast<double>(resumed) / state.iterations() : 0;
}
BENCHMARK(BM_ResumedHandshakePerRequest)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
