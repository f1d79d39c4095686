// The pieces every HTTP endpoint shares: JSON and empty answers, the Origin/Host check
// (DNS-rebinding protection), the per-client-certificate call limits, and the Origin a
// handler is told about.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "base/text.h"
#include "mcp/http_internal.h"

namespace larder::mcp {

namespace {

// host part of "host:port", "[v6]:port", "host".
std::string host_only(std::string_view host_port) {
  if (!host_port.empty() && host_port[0] == '[') {
    auto close = host_port.find(']');
    return ascii_lower(host_port.substr(0, close == std::string_view::npos ? host_port.size() : close + 1));
  }
  auto colon = host_port.rfind(':');
  if (colon != std::string_view::npos && host_port.find(':') == colon)
    return ascii_lower(host_port.substr(0, colon));
  return ascii_lower(host_port);
}

bool loopback_name(const std::string& host) {
  return host == "localhost" || host == "127.0.0.1" || host == "[::1]" || host == "::1";
}

}  // namespace

const HeaderList kSseHeaders = {{"Content-Type", "text/event-stream"},
                                {"Cache-Control", "no-cache, no-transform"},
                                {"X-Accel-Buffering", "no"}};

net::HttpResponse json_response(int status, const json& body, HeaderList extra) {
  net::HttpResponse r;
  r.status = status;
  r.headers = std::move(extra);
  r.headers.emplace_back("Content-Type", "application/json");
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

net::HttpResponse rpc_error_response(int status, int code, std::string message, const json& id,
                                     std::optional<json> data) {
  return json_response(status, make_error_response(id, RpcError{code, std::move(message), std::move(data)}));
}

net::HttpResponse empty_response(int status, HeaderList extra) {
  net::HttpResponse r;
  r.status = status;
  r.headers = std::move(extra);
  return r;
}

std::string trim(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return std::string(v);
}

std::string method_of(const json& body) {
  if (!body.is_object()) return {};
  auto it = body.find("method");
  return it != body.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::optional<net::HttpResponse> HttpTransport::Impl::check_origin_and_host(const net::HttpRequest& req) {
  if (auto origin = req.header("Origin")) {
    bool ok = false;
    if (!options.allowed_origins.empty()) {
      ok = std::find(options.allowed_origins.begin(), options.allowed_origins.end(), *origin) !=
           options.allowed_origins.end();
    } else {
      std::string o = ascii_lower(*origin);
      for (const char* scheme : {"http://", "https://"}) {
        if (o.rfind(scheme, 0) == 0)
          ok = ok || loopback_name(host_only(o.substr(std::string_view(scheme).size())));
      }
    }
    if (!ok)
      return rpc_error_response(403, error_code::kConnectionClosed,
                                "Forbidden: Origin '" + *origin + "' is not allowed");
  }
  auto host = req.header("Host");
  if (!host)
    return rpc_error_response(400, error_code::kConnectionClosed, "Bad Request: missing Host header");
  bool ok = false;
  if (!options.allowed_hosts.empty()) {
    std::string h = ascii_lower(*host);
    for (const auto& allowed : options.allowed_hosts) {
      std::string a = ascii_lower(allowed);
      ok = ok || a == h || a == host_only(h);
    }
  } else {
    ok = loopback_name(host_only(*host));
  }
  if (!ok)
    return rpc_error_response(403, error_code::kConnectionClosed,
                              "Forbidden: Host '" + *host + "' is not allowed");
  return std::nullopt;
}

// The per-client-certificate limits, before anything else is looked at: every request
// spends a token of its certificate's bucket and holds one of its concurrency slots until
// it is answered (a JSON-RPC call: until its result is sent). A refusal costs the worker
// a hash lookup: 429, Retry-After, and a JSON-RPC error naming the limit. Requests without
// a peer (plain HTTP on loopback) are not limited.
std::variant<Call, net::HttpResponse> HttpTransport::Impl::admit_call(const net::HttpRequest& req) {
  if (!client_limiter.enabled() || !req.peer) return Call();
  auto permit = client_limiter.try_acquire(req.peer->cert_sha256);
  if (permit) return std::make_shared<CallSlot>(std::move(permit));
  const auto retry_s = std::max<int64_t>(1, (permit.retry_after().count() + 999) / 1000);
  const bool concurrency = permit.refused_by() == CallLimiter::Limit::kConcurrency;
  spdlog::debug("mcp: refused a request of client certificate {}…: {}", req.peer->cert_sha256.substr(0, 16),
                client_limiter.describe(permit, "it"));
  auto r = rpc_error_response(
      429, error_code::kConnectionClosed,
      "Too Many Requests: " + client_limiter.describe(permit, "this client certificate"), nullptr,
      json{{"limit", concurrency ? "concurrent_calls_per_client" : "calls_per_second_per_client"},
           {"retryAfterSeconds", retry_s}});
  r.headers.emplace_back("Retry-After", std::to_string(retry_s));
  return r;
}

Origin HttpTransport::Impl::make_origin(const net::HttpRequest& req, std::shared_ptr<Outbound> related,
                                        const char* transport) {
  Origin o;
  o.peer = req.peer;
  o.headers = req.headers;
  o.related = std::move(related);
  o.transport = transport;
  return o;
}

}  // namespace larder::mcp
