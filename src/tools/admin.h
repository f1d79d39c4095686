// AdminServer: the operators' listener of one `larder serve` instance, apart from the MCP
// listener (docs/operations.md):
//   GET /healthz  200 {"status":"ok"} while the process serves ({"status":"draining"}, still
//                 200, once a graceful stop began);
//   GET /readyz   200 {"ready":true,"checks":{...}} when every readiness check passes, else
//                 503 naming each failing check's cause; 503 {"ready":false,"draining":true}
//                 while stopping, so a balancer takes the instance out first;
//   GET /metrics  the Prometheus text exposition (404 when metrics are off);
//   GET /reloadz  the last configuration reload's outcome (JSON: attempt, generation, ok,
//                 error, at, restart_needed; docs/operations.md, "Reload").
// Plain HTTP on a loopback address, or mTLS with an allow-list of operator certificates
// (net::Server enforces both). Nothing here reads a request body, and no answer carries a
// token, a key, a query or a row.
#pragma once

#include "base/result.h"
#include "net/server.h"
#include "obs/metrics.h"

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace larder::tools {

// One readiness check: its name, and what it runs (an error's message says the cause).
struct ReadinessCheck {
  std::string name;
  std::function<Result<void>()> run;
};

struct AdminOptions {
  net::ServerConfig listener;  // host, port, plain_http or tls with allowed_clients, limits
  std::chrono::milliseconds readiness_cache{1000};
  std::function<std::string()> reload_status;  // /reloadz's JSON body; none: 404
};

class AdminServer {
 public:
  // `metrics` may be null (metrics off: /metrics answers 404).
  static Result<std::unique_ptr<AdminServer>> start(AdminOptions options, obs::Registry* metrics,
                                                    std::vector<ReadinessCheck> checks);
  ~AdminServer();
  uint16_t port() const;
  void set_draining() { draining_.store(true); }
  void stop();

 private:
  AdminServer(AdminOptions options, obs::Registry* metrics, std::vector<ReadinessCheck> checks);
  void handle(const net::HttpRequest& request, const std::shared_ptr<net::Responder>& responder);
  net::HttpResponse readiness();

  AdminOptions options_;
  obs::Registry* metrics_;
  std::vector<ReadinessCheck> checks_;
  std::atomic<bool> draining_{false};
  std::mutex ready_mu_;  // one readiness run at a time; the others wait for its verdict
  std::chrono::steady_clock::time_point ready_at_{};
  net::HttpResponse ready_answer_;
  std::unique_ptr<net::Server> http_;
};

}  // namespace larder::tools
