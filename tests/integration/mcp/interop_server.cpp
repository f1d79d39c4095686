// An mTLS MCP server on libmcp for the interop tests (official TypeScript SDK clients) and
// the load benchmark. Creates a throwaway PKI in --pki DIR:
//   ca.crt  server.crt/.key (127.0.0.1)  client.crt/.key  rogue-ca.crt  rogue.crt/.key
// (rogue.* is a client certificate from another CA, which the handshake must refuse), then
// serves Streamable HTTP on /mcp and legacy HTTP+SSE on /sse over TLS requiring client
// certificates. Prints "READY <port>" once listening; stops on SIGTERM/SIGINT.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "mcp/http_transport.h"
#include "mcp/server.h"
#include "net/pki.h"
#include "net/server.h"

using namespace larder;
using namespace larder::mcp;
namespace pki = larder::net::pki;

namespace {

pki::CertSpec spec(pki::CertKind kind, std::string cn, std::vector<std::string> sans) {
  pki::CertSpec s;
  s.kind = kind;
  s.common_name = std::move(cn);
  s.sans = std::move(sans);
  return s;
}

int fail(const std::string& what) {
  std::fprintf(stderr, "mcp_interop_server: %s\n", what.c_str());
  return 1;
}

larder::Result<void> make_pki(const std::string& dir) {
  auto ca = pki::create_ca("Larder Interop CA");
  if (!ca) return ca.error();
  auto server = pki::issue_certificate(
      *ca, spec(pki::CertKind::kServer, "localhost", {"IP:127.0.0.1", "DNS:localhost"}));
  if (!server) return server.error();
  auto client = pki::issue_certificate(*ca, spec(pki::CertKind::kClient, "interop-client", {}));
  if (!client) return client.error();
  auto rogue_ca = pki::create_ca("Some Other CA");
  if (!rogue_ca) return rogue_ca.error();
  auto rogue = pki::issue_certificate(*rogue_ca, spec(pki::CertKind::kClient, "interop-client", {}));
  if (!rogue) return rogue.error();
  for (auto& [name, content, mode] :
       std::vector<std::tuple<std::string, std::string, unsigned>>{{"ca.crt", ca->cert_pem, 0644},
                                                                   {"server.crt", server->cert_pem, 0644},
                                                                   {"server.key", server->key_pem, 0600},
                                                                   {"client.crt", client->cert_pem, 0644},
                                                                   {"client.key", client->key_pem, 0600},
                                                                   {"rogue-ca.crt", rogue_ca->cert_pem, 0644},
                                                                   {"rogue.crt", rogue->cert_pem, 0644},
                                                                   {"rogue.key", rogue->key_pem, 0600}}) {
    if (auto w = pki::write_file(dir + "/" + name, content, mode); !w) return w.error();
  }
  return {};
}

void register_fixtures(Server& server) {
  (void)server.add_tool(
      Tool{"echo", "Echo", "Returns its text argument",
           json::parse(R"({"type":"object","properties":{"text":{"type":"string"}},"required":["text"]})"),
           std::nullopt, json{{"readOnlyHint", true}}, json()},
      [](RequestContext& ctx, const json& args) {
        ToolResult r = ToolResult::text(args["text"].get<std::string>());
        // Who called: the TLS peer the handshake authenticated.
        r.meta = {{"larder/peer_cn", ctx.peer() ? ctx.peer()->cn : ""}};
        return r;
      });
  (void)server.add_tool(
      Tool{
          "add", "Add", "Adds two integers",
          json::parse(
              R"({"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"integer"}},"required":["a","b"]})"),
          json::parse(R"({"type":"object","properties":{"sum":{"type":"integer"}},"required":["sum"]})"),
          json(), json()},
      [](RequestContext&, const json& args) {
        const auto sum = args["a"].get<std::int64_t>() + args["b"].get<std::int64_t>();
        ToolResult r = ToolResult::text(std::to_string(sum));
        r.structured_content = json{{"sum", sum}};
        return r;
      });
  (void)server.add_tool(Tool{"noop", "", "Does nothing (load benchmark)", json{{"type", "object"}},
                             std::nullopt, json(), json()},
                        [](RequestContext&, const json&) { return ToolResult::text("ok"); });
  (void)server.add_tool(
      Tool{
          "ask_llm", "", "Asks the client to sample a completion",
          json::parse(R"({"type":"object","properties":{"prompt":{"type":"string"}},"required":["prompt"]})"),
          std::nullopt, json(), json()},
      [](RequestContext& ctx, const json& args) {
        auto r = ctx.request_client(
            "sampling/createMessage",
            {{"messages", json::array({{{"role", "user"}, {"content", text_content(args["prompt"])}}})},
             {"maxTokens", 50}});
        if (!r) return ToolResult::error(r.error().message);
        return ToolResult::text("model said: " + (*r)["content"].value("text", std::string()));
      });
  (void)server.add_resource(
      Resource{"larder://readme", "readme", "Readme", "", "text/plain", std::nullopt, json(), json()},
      [](RequestContext&, const std::string& uri) -> larder::Result<json> {
        return json::array({{{"uri", uri}, {"mimeType", "text/plain"}, {"text", "hello from libmcp"}}});
      });
  (void)server.add_prompt(
      Prompt{"greet", "", "Greets someone", {{"name", "", "Who", true}}, json()},
      [](RequestContext&, const std::map<std::string, std::string>& a) -> larder::Result<json> {
        return json{{"messages",
                     json::array({{{"role", "user"}, {"content", text_content("Hello, " + a.at("name"))}}})}};
      });
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  int port = 0;
  std::size_t workers = 8;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--pki") && i + 1 < argc)
      dir = argv[++i];
    else if (!std::strcmp(argv[i], "--port") && i + 1 < argc)
      port = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--workers") && i + 1 < argc)
      workers = static_cast<std::size_t>(std::atoi(argv[++i]));
  }
  if (dir.empty()) return fail("usage: mcp_interop_server --pki DIR [--port N] [--workers N]");
  spdlog::set_level(spdlog::level::warn);
  if (auto made = make_pki(dir); !made) return fail(made.error().message);

  ServerOptions options;
  options.handler_threads = workers;
  options.info = {"larder-interop", "0.1.0", ""};
  Server server(options);
  register_fixtures(server);
  HttpTransport transport(server);

  net::ServerConfig config;
  config.host = "127.0.0.1";
  config.port = static_cast<uint16_t>(port);
  config.tls.cert_file = dir + "/server.crt";
  config.tls.key_file = dir + "/server.key";
  config.tls.client_ca_file = dir + "/ca.crt";
  config.limits.worker_threads = workers + HttpTransport::kSpareWorkers;
  config.limits.max_body_bytes = 256 * 1024;
  auto created = net::Server::create(config, transport.handler());
  if (!created) return fail(created.error().message);
  if (auto started = (*created)->start(); !started) return fail(started.error().message);
  std::cout << "READY " << (*created)->port() << std::endl;
  (*created)->run_until_signal();
  return 0;
}
