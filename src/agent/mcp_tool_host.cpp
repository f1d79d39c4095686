#include "agent/mcp_tool_host.h"
#include "base/text.h"

#include "mcp/client.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

namespace larder::agent {

using nlohmann::json;

namespace {

std::string describe(const McpServerConfig& c) {
  return "MCP server '" + c.name + "' (" + (c.transport == McpTransportKind::Stdio ? c.command : c.url) + ")";
}

// Text of a GetPromptResult's messages.
std::string prompt_text(const json& result) {
  std::string out;
  if (!result.is_object() || !result.contains("messages") || !result["messages"].is_array()) return out;
  for (const auto& m : result["messages"]) {
    if (!m.is_object() || !m.contains("content")) continue;
    const json& c = m["content"];
    auto add = [&](const json& block) {
      if (block.is_object() && block.value("type", "") == "text" && block.contains("text") &&
          block["text"].is_string()) {
        if (!out.empty()) out += "\n";
        out += block["text"].get<std::string>();
      }
    };
    if (c.is_array())
      for (const auto& b : c) add(b);
    else
      add(c);
  }
  return out;
}

std::string resource_text(const json& result) {
  std::string out;
  if (!result.is_object() || !result.contains("contents") || !result["contents"].is_array()) return out;
  for (const auto& c : result["contents"])
    if (c.is_object() && c.contains("text") && c["text"].is_string()) {
      if (!out.empty()) out += "\n";
      out += c["text"].get<std::string>();
    }
  return out;
}

}  // namespace

Result<std::unique_ptr<mcp::Client>> connect_server(const McpServerConfig& server, const std::string& bearer,
                                                    const mcp::ClientOptions& options) {
  if (server.transport == McpTransportKind::Stdio) {
    std::vector<std::string> argv{server.command};
    argv.insert(argv.end(), server.args.begin(), server.args.end());
    return mcp::Client::connect_stdio(argv, options);
  }
  net::TlsClientConfig tls;
  if (server.tls) {
    tls.ca_file = server.tls->ca;
    tls.cert_file = server.tls->cert;
    tls.key_file = server.tls->key;
    tls.server_name = server.tls->server_name;
  }
  tls.insecure_plain = server.url.rfind("http://", 0) == 0;  // net/ allows it for loopback only
  net::HeaderList headers(server.headers.begin(), server.headers.end());
  if (!bearer.empty()) headers.emplace_back("Authorization", "Bearer " + bearer);
  return mcp::Client::connect_http(server.url, tls, headers, options);
}

bool sends_bearer(const McpServerConfig& server) {
  return server.transport != McpTransportKind::Stdio &&
         std::none_of(server.headers.begin(), server.headers.end(),
                      [](const auto& h) { return iequals(h.first, "authorization"); });
}

struct McpToolHost::Connection {
  McpServerConfig config;
  std::unique_ptr<mcp::Client> client;
  bool manages_authorization = false;  // we add Authorization (the config did not)
  std::string header_token;            // the token the current session was opened with
};

McpToolHost::McpToolHost(std::shared_ptr<TokenStore> tokens) : tokens_(std::move(tokens)) {}

McpToolHost::~McpToolHost() {
  for (auto& c : connections_)
    if (c->client) c->client->close();
}

Result<void> McpToolHost::open(Connection& c) {
  if (c.client) {
    c.client->close();
    c.client.reset();
  }
  mcp::ClientOptions options;
  options.info = {"larder-ask", LARDER_VERSION, ""};
  c.header_token = tokens_ ? tokens_->current() : "";
  auto client = connect_server(c.config, c.manages_authorization ? c.header_token : std::string(), options);
  if (!client.ok()) {
    const Error& e = client.error();
    // A file mcp.json names (CA, certificate, key) is missing or invalid: the user's to fix,
    // said as such (its exit status is the file's, not an unreachable server's).
    const bool file = e.code.rfind("file.", 0) == 0;
    return make_error(file ? e.code : "mcp.connect",
                      (file ? "" : "cannot connect to ") + describe(c.config) + ": " + e.message, e.detail);
  }
  c.client = std::move(*client);
  return {};
}

Result<std::unique_ptr<McpToolHost>> McpToolHost::connect(const McpConfig& config,
                                                          std::shared_ptr<TokenStore> tokens) {
  std::unique_ptr<McpToolHost> host(
      new McpToolHost(tokens ? std::move(tokens) : std::make_shared<TokenStore>()));
  if (config.servers.empty()) return make_error("mcp.config", "no MCP server configured");
  for (const auto& server : config.servers) {
    auto c = std::make_unique<Connection>();
    c->config = server;
    c->manages_authorization = sends_bearer(server);
    if (auto opened = host->open(*c); !opened.ok()) return opened.error();
    host->connections_.push_back(std::move(c));
  }
  return host;
}

Result<McpToolHost::Connection*> McpToolHost::ready(const std::string& server) {
  for (auto& c : connections_) {
    if (c->config.name != server) continue;
    if (c->manages_authorization && tokens_->current() != c->header_token) {
      // The token changed (attenuated after a sensitive read): a new session carries it.
      if (auto opened = open(*c); !opened.ok()) return opened.error();
      ++reconnects_;
    }
    if (!c->client) {
      if (auto opened = open(*c); !opened.ok()) return opened.error();
    }
    return c.get();
  }
  return make_error("mcp.unknown_server", "no MCP server named '" + server + "' is configured");
}

Result<std::vector<ToolSpec>> McpToolHost::list_tools() {
  std::vector<ToolSpec> out;
  for (auto& c : connections_) {
    auto conn = ready(c->config.name);
    if (!conn.ok()) return conn.error();
    auto tools = (*conn)->client->list_tools();
    if (!tools.ok())
      return make_error("mcp.list_tools",
                        "listing the tools of " + describe(c->config) + " failed: " + tools.error().message);
    for (const auto& t : *tools) {
      if (!t.is_object() || !t.contains("name") || !t["name"].is_string()) {
        spdlog::warn("{} listed a tool without a name; ignored", describe(c->config));
        continue;
      }
      ToolSpec spec;
      spec.server = c->config.name;
      spec.name = t["name"].get<std::string>();
      spec.description = t.contains("description") && t["description"].is_string()
                             ? t["description"].get<std::string>()
                             : "";
      spec.input_schema = t.contains("inputSchema") && t["inputSchema"].is_object()
                              ? t["inputSchema"]
                              : json{{"type", "object"}};
      out.push_back(std::move(spec));
    }
  }
  return out;
}

Result<ToolOutcome> McpToolHost::call_tool(const std::string& server, const std::string& name, json args) {
  return call_tool_cancellable(server, name, std::move(args), CancellationToken());
}

Result<ToolOutcome> McpToolHost::call_tool_cancellable(const std::string& server, const std::string& name,
                                                       json args, const CancellationToken& cancel) {
  if (cancel.cancelled()) return make_error("mcp.cancelled", "tools/call " + name + " was cancelled");
  auto conn = ready(server);
  if (!conn.ok()) return conn.error();
  auto result = (*conn)->client->call_tool(name, std::move(args), nullptr, &cancel);
  if (!result.ok()) return result.error();
  const json& r = *result;
  if (!r.is_object())
    return make_error("mcp.protocol", describe((*conn)->config) + " answered tools/call with a non-object");
  ToolOutcome out;
  out.is_error = r.contains("isError") && r["isError"].is_boolean() && r["isError"].get<bool>();
  out.content = r.contains("content") && r["content"].is_array() ? r["content"] : json::array();
  out.structured = r.contains("structuredContent") ? r["structuredContent"] : json();
  out.meta = r.contains("_meta") ? r["_meta"] : json();
  return out;
}

Result<std::string> McpToolHost::schema_context() {
  std::string out;
  auto append = [&](const std::string& title, const std::string& text) {
    if (text.empty()) return;
    if (!out.empty()) out += "\n\n";
    out += title + ":\n" + text;
  };
  for (auto& c : connections_) {
    auto conn = ready(c->config.name);
    if (!conn.ok()) return conn.error();
    mcp::Client& client = *(*conn)->client;
    append("Instructions from " + c->config.name, client.instructions());
    const json& caps = client.server_capabilities();
    bool found = false;
    if (caps.is_object() && caps.contains("prompts")) {
      auto prompts = client.list_prompts();
      if (prompts.ok()) {
        for (const auto& p : *prompts) {
          if (!p.is_object() || p.value("name", "") != "generate_sql") continue;
          json args = json::object();
          if (p.contains("arguments") && p["arguments"].is_array())
            for (const auto& a : p["arguments"])
              if (a.is_object() && a.value("required", false) && a.contains("name") && a["name"].is_string())
                args[a["name"].get<std::string>()] = "(the user's question follows in the conversation)";
          auto got = client.get_prompt("generate_sql", args);
          if (got.ok()) {
            append("Schema from " + c->config.name, prompt_text(*got));
            found = true;
          } else {
            spdlog::warn("{}: prompts/get generate_sql failed: {}", describe(c->config), got.error().message);
          }
        }
      }
    }
    if (!found && caps.is_object() && caps.contains("resources")) {
      auto resources = client.list_resources();
      if (resources.ok()) {
        for (const auto& r : *resources) {
          if (!r.is_object() || !r.contains("uri") || !r["uri"].is_string()) continue;
          std::string uri = r["uri"].get<std::string>();
          if (ascii_lower(uri + " " + r.value("name", "")).find("schema") == std::string::npos) continue;
          auto read = client.read_resource(uri);
          if (read.ok())
            append("Schema resource " + uri, resource_text(*read));
          else
            spdlog::warn("{}: reading {} failed: {}", describe(c->config), uri, read.error().message);
        }
      }
    }
  }
  return out;
}

}  // namespace larder::agent
