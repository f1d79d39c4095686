// MCP load generator: N concurrent sessions over HTTPS with mutual TLS, each calling a
// trivial tool in a loop; reports requests/s and p50/p99 latency. Works against any
// Streamable HTTP MCP server (ours: mcp_interop_server; the TypeScript SDK's:
// bench/mcp_ts_server.mjs). bench/mcp_load.sh runs the whole comparison.
//
//   bench_mcp_load --url https://127.0.0.1:PORT/mcp --pki DIR [--sessions N] [--seconds S]
//                  [--tool noop] [--reconnect] [--idle N]
// --reconnect  drops the connection after every call, so each call pays a TLS handshake
//              (resumed: the client keeps its TLS session ticket).
// --idle N     opens N initialized sessions, prints READY, and holds them until stdin closes
//              (mcp_load.sh measures the server's memory per idle session this way).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "closed_loop.h"
#include "net/client.h"

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace net = larder::net;

namespace {

struct Options {
  std::string url;
  std::string pki;
  int sessions = 1;
  double seconds = 5;
  std::string tool = "noop";
  bool reconnect = false;
  int idle = 0;
};

struct Session {
  std::unique_ptr<net::HttpClient> http;
  std::string path;
  std::string id;
  std::string version;
};

std::pair<std::string, std::string> split_url(const std::string& url) {
  auto p = url.find('/', url.find("://") + 3);
  return {url.substr(0, p), p == std::string::npos ? "/" : url.substr(p)};
}

net::HeaderList headers(const Session& s) {
  net::HeaderList h = {{"Content-Type", "application/json"},
                       {"Accept", "application/json, text/event-stream"}};
  if (!s.id.empty()) h.emplace_back("Mcp-Session-Id", s.id);
  if (!s.version.empty()) h.emplace_back("MCP-Protocol-Version", s.version);
  return h;
}

// The JSON-RPC response from a JSON or SSE body.
json response_of(const std::string& body) {
  if (!body.empty() && body[0] == '{') return json::parse(body, nullptr, false);
  json last;
  std::size_t pos = 0;
  while ((pos = body.find("data: ", pos)) != std::string::npos) {
    auto end = body.find('\n', pos);
    json v = json::parse(body.substr(pos + 6, end - pos - 6), nullptr, false);
    if (!v.is_discarded() && v.contains("id")) last = v;
    pos = end;
  }
  return last;
}

bool open_session(const Options& o, Session& s) {
  auto [base, path] = split_url(o.url);
  net::TlsClientConfig tls{o.pki + "/ca.crt", o.pki + "/client.crt", o.pki + "/client.key", "", false};
  auto c = net::HttpClient::create(base, tls);
  if (!c) {
    std::cerr << "connect: " << c.error().message << "\n";
    return false;
  }
  s.http = std::move(*c);
  s.path = path;
  json init = {{"jsonrpc", "2.0"},
               {"id", 0},
               {"method", "initialize"},
               {"params",
                {{"protocolVersion", "2025-06-18"},
                 {"capabilities", json::object()},
                 {"clientInfo", {{"name", "bench"}, {"version", "1"}}}}}};
  auto r = s.http->request("POST", s.path, headers(s), init.dump());
  if (!r || r->status != 200) {
    std::cerr << "initialize failed: " << (r ? std::to_string(r->status) + " " + r->body : r.error().message)
              << "\n";
    return false;
  }
  s.id = r->header("Mcp-Session-Id").value_or("");
  s.version = response_of(r->body)["result"].value("protocolVersion", "2025-06-18");
  auto n = s.http->request("POST", s.path, headers(s),
                           R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
  return n && n->status / 100 == 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--url")
      o.url = next();
    else if (a == "--pki")
      o.pki = next();
    else if (a == "--sessions")
      o.sessions = std::atoi(next().c_str());
    else if (a == "--seconds")
      o.seconds = std::atof(next().c_str());
    else if (a == "--tool")
      o.tool = next();
    else if (a == "--reconnect")
      o.reconnect = true;
    else if (a == "--idle")
      o.idle = std::atoi(next().c_str());
  }
  if (o.url.empty() || o.pki.empty()) {
    std::cerr << "usage: bench_mcp_load --url URL --pki DIR [--sessions N] [--seconds S] [--tool NAME] "
                 "[--reconnect] [--idle N]\n";
    return 2;
  }
  if (o.idle > 0) {
    std::vector<Session> held(static_cast<std::size_t>(o.idle));
    for (auto& s : held) {
      if (!open_session(o, s)) return 1;
    }
    std::cout << "READY " << o.idle << std::endl;
    std::string line;
    while (std::getline(std::cin, line)) {
    }
    return 0;
  }

  std::atomic<int> resumed{0}, reconnects{0};
  auto figures = larder::bench::run_closed_loop(
      o.sessions, o.seconds, [&](int) -> std::variant<larder::bench::Call, std::string> {
        auto s = std::make_shared<Session>();
        if (!open_session(o, *s)) return std::string("session setup failed");
        auto id = std::make_shared<long>(1);
        return larder::bench::Call([&o, &resumed, &reconnects, s, id]() -> std::optional<std::string> {
          json call = {{"jsonrpc", "2.0"},
                       {"id", (*id)++},
                       {"method", "tools/call"},
                       {"params", {{"name", o.tool}, {"arguments", json::object()}}}};
          auto r = s->http->request("POST", s->path, headers(*s), call.dump());
          if (!r || r->status != 200 || !response_of(r->body).contains("result"))
            return std::string("call failed");
          if (o.reconnect) {
            if (s->http->session_resumed()) resumed++;
            reconnects++;
            s->http->disconnect();
          }
          return std::nullopt;
        });
      });
  std::printf(
      "sessions=%d calls=%zu rps=%.0f p50_us=%.0f p99_us=%.0f failures=%d%s\n", o.sessions, figures.calls,
      figures.rps, figures.p50_us, figures.p99_us, figures.failures,
      o.reconnect
          ? (" resumed=" + std::to_string(resumed.load()) + "/" + std::to_string(reconnects.load())).c_str()
          : "");
  return figures.failures > 0 && figures.calls == 0 ? 1 : 0;
}
