#include "tools/admin.h"

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

namespace larder::tools {
namespace {

net::HttpResponse json_answer(int status, const nlohmann::json& body) {
  net::HttpResponse r;
  r.status = status;
  r.headers = {{"Content-Type", "application/json"}, {"Cache-Control", "no-store"}};
  r.body = body.dump() + "\n";
  return r;
}

}  // namespace

AdminServer::AdminServer(AdminOptions options, obs::Registry* metrics, std::vector<ReadinessCheck> checks)
    : options_(std::move(options)), metrics_(metrics), checks_(std::move(checks)) {}

AdminServer::~AdminServer() {
  stop();
}

Result<std::unique_ptr<AdminServer>> AdminServer::start(AdminOptions options, obs::Registry* metrics,
                                                        std::vector<ReadinessCheck> checks) {
  // Operators' requests are small and few: tight limits, two workers.
  options.listener.limits.max_body_bytes = 1024;
  options.listener.limits.max_connections =
      std::min<std::size_t>(options.listener.limits.max_connections, 64);
  options.listener.limits.worker_threads = 2;
  std::unique_ptr<AdminServer> admin(new AdminServer(options, metrics, std::move(checks)));
  auto http = net::Server::create(
      options.listener,
      [a = admin.get()](const net::HttpRequest& request, std::shared_ptr<net::Responder> responder) {
        a->handle(request, responder);
      });
  if (!http) {
    return make_error(http.error().code, "admin listener: " + http.error().message);
  }
  admin->http_ = std::move(*http);
  if (auto started = admin->http_->start(); !started) {
    return make_error(started.error().code, "admin listener on " + options.listener.host + ":" +
                                                std::to_string(options.listener.port) + ": " +
                                                started.error().message +
                                                " (set [admin] port, or enabled = false)");
  }
  return admin;
}

uint16_t AdminServer::port() const {
  return http_ ? http_->port() : 0;
}

void AdminServer::stop() {
  if (http_) http_->stop();
}

net::HttpResponse AdminServer::readiness() {
  std::lock_guard lock(ready_mu_);
  const auto now = std::chrono::steady_clock::now();
  if (ready_at_ != std::chrono::steady_clock::time_point{} && now - ready_at_ < options_.readiness_cache) {
    return ready_answer_;
  }
  nlohmann::json checks = nlohmann::json::object();
  bool ready = true;
  for (const auto& check : checks_) {
    auto ok = check.run();
    if (ok) {
      checks[check.name] = "ok";
    } else {
      ready = false;
      checks[check.name] = ok.error().message;
      spdlog::warn("admin: not ready: {}: {}", check.name, ok.error().message);
    }
  }
  ready_answer_ = json_answer(ready ? 200 : 503, {{"ready", ready}, {"checks", checks}});
  ready_at_ = std::chrono::steady_clock::now();
  return ready_answer_;
}

void AdminServer::handle(const net::HttpRequest& request, const std::shared_ptr<net::Responder>& responder) {
  if (request.method != "GET" && request.method != "HEAD") {
    auto r = json_answer(405, {{"error", "the admin endpoints answer GET only"}});
    r.headers.emplace_back("Allow", "GET, HEAD");
    responder->respond(std::move(r));
    return;
  }
  const bool draining = draining_.load();
  if (request.path == "/healthz") {
    responder->respond(json_answer(200, {{"status", draining ? "draining" : "ok"}}));
  } else if (request.path == "/readyz") {
    if (draining) {
      responder->respond(json_answer(503, {{"ready", false}, {"draining", true}}));
    } else {
      responder->respond(readiness());
    }
  } else if (request.path == "/metrics" && metrics_ != nullptr) {
    net::HttpResponse r;
    r.headers = {{"Content-Type", obs::Registry::kContentType}, {"Cache-Control", "no-store"}};
    r.body = metrics_->render();
    responder->respond(std::move(r));
  } else if (request.path == "/reloadz" && options_.reload_status) {
    net::HttpResponse r;
    r.headers = {{"Content-Type", "application/json"}, {"Cache-Control", "no-store"}};
    r.body = options_.reload_status() + "\n";
    responder->respond(std::move(r));
  } else {
    responder->respond(json_answer(
        404, {{"error", "not found: the admin listener serves /healthz, /readyz, /reloadz" +
                            std::string(metrics_ != nullptr ? " and /metrics" : " (metrics are off)")}}));
  }
}

}  // namespace larder::tools
