// mcp::Client — an MCP client over Streamable HTTP (mTLS through net::HttpClient, custom
// headers such as Authorization; falls back to the legacy HTTP+SSE transport when the
// server answers the initialize POST with 400/404/405, as the 2025-03-26 compatibility rules
// describe) or over stdio (spawns the server process). Server-to-client requests
// (sampling, elicitation, roots) and notifications reach the application via callbacks.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "mcp/cancellation.h"
#include "mcp/jsonrpc.h"
#include "mcp/protocol.h"
#include "net/client.h"

namespace larder::mcp {

struct ClientOptions {
  Implementation info{"larder-mcp-client", "0.1.0", ""};
  json capabilities = json::object();           // e.g. {"sampling":{}, "roots":{}, "elicitation":{}}
  std::string protocol_version = "2025-11-25";  // what initialize asks for
  std::chrono::milliseconds request_timeout{60000};
  // Answers a server-to-client request (method, params) → result, or an Error (sent back as
  // a JSON-RPC error). Unset: every such request is answered "method not found".
  std::function<larder::Result<json>(const std::string& method, const json& params)> on_request;
  // Notifications from the server (progress, logging, list_changed, resources/updated).
  std::function<void(const std::string& method, const json& params)> on_notification;
  // Streamable HTTP: also open the standalone GET stream for server-initiated notifications.
  bool listen = false;
  // Messages from the server nested deeper than this are refused unparsed (base/json.h):
  // a JSON answer fails the call, an SSE event or stdio line is dropped with a warning.
  std::size_t max_json_depth = larder::kMaxJsonDepth;
};

class ClientTransport;

class Client {
 public:
  // `url` is the MCP endpoint, e.g. "https://127.0.0.1:8443/mcp" (or a legacy "/sse" URL).
  static larder::Result<std::unique_ptr<Client>> connect_http(std::string url, net::TlsClientConfig tls,
                                                              net::HeaderList headers = {},
                                                              ClientOptions options = {});
  // argv[0] is run via execvp; the server's stderr is inherited.
  static larder::Result<std::unique_ptr<Client>> connect_stdio(std::vector<std::string> argv,
                                                               ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const std::string& protocol_version() const { return protocol_version_; }
  const json& server_info() const { return server_info_; }
  const json& server_capabilities() const { return server_capabilities_; }
  const std::string& instructions() const { return instructions_; }
  std::string transport_name() const;  // "streamable-http", "sse" or "stdio"

  // A raw request: the result object, or an Error ("mcp.rpc.<code>" with the server's message).
  // With `cancel`: when it fires before the answer, the request is abandoned at once (an
  // answer still streaming over HTTP is dropped with its connection), the server is sent
  // notifications/cancelled with the request id, and the error is "mcp.cancelled".
  larder::Result<json> request(const std::string& method, json params = json::object(),
                               const CancellationToken* cancel = nullptr);
  larder::Result<void> notify(const std::string& method, json params = json::object());

  larder::Result<void> ping();
  larder::Result<std::vector<json>> list_tools();  // follows nextCursor
  larder::Result<json> call_tool(const std::string& name, json arguments = json::object(),
                                 json meta = nullptr, const CancellationToken* cancel = nullptr);
  larder::Result<std::vector<json>> list_resources();
  larder::Result<std::vector<json>> list_resource_templates();
  larder::Result<json> read_resource(const std::string& uri);
  larder::Result<std::vector<json>> list_prompts();
  larder::Result<json> get_prompt(const std::string& name, json arguments = json::object());
  larder::Result<json> complete(json ref, json argument);
  larder::Result<void> set_log_level(LogLevel level);
  larder::Result<void> subscribe(const std::string& uri);

  // Ends the session (HTTP DELETE / closes the child's stdin and reaps it).
  void close();

  struct Core;

 private:
  Client() = default;
  larder::Result<void> initialize();
  larder::Result<std::vector<json>> list_all(const std::string& method, const char* field);

  std::shared_ptr<Core> core_;
  std::unique_ptr<ClientTransport> transport_;
  std::string protocol_version_;
  json server_info_;
  json server_capabilities_;
  std::string instructions_;
};

}  // namespace larder::mcp
