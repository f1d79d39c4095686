// McpToolHost: the agent's ToolHost over libmcp's client, one mcp::Client per configured
// server (Streamable HTTP with legacy SSE fallback, or stdio), mTLS from the config's tls
// files. The Biscuit token travels two ways: the agent puts it in the `biscuit_token`
// argument of tools that take one, and this host sends `Authorization: Bearer <token>` on
// every HTTP server (unless the config sets Authorization itself). When the TokenStore
// switches to an attenuated token, the next call to a server reconnects it with the new
// header, so header and argument always carry the same token.
#pragma once

#include "agent/config.h"
#include "agent/tool_host.h"

#include <memory>
#include <string>
#include <vector>

namespace larder::mcp {
class Client;
struct ClientOptions;
}  // namespace larder::mcp

namespace larder::agent {

// An MCP client session with one configured server: stdio (command and args), or Streamable
// HTTP with the config's TLS files and headers, plus `Authorization: Bearer <bearer>` when
// `bearer` is not empty. The one place a `mcpServers` entry becomes a connection (larder ask's
// McpToolHost, larder connect's upstreams). Errors are libmcp's and net's, unchanged.
Result<std::unique_ptr<mcp::Client>> connect_server(const McpServerConfig& server, const std::string& bearer,
                                                    const mcp::ClientOptions& options);
// True when the client adds the bearer token itself: an HTTP server whose configured headers
// set no Authorization of their own.
bool sends_bearer(const McpServerConfig& server);

class McpToolHost final : public ToolHost {
 public:
  // Connects to every server (fails with code "mcp.connect" naming the server).
  static Result<std::unique_ptr<McpToolHost>> connect(const McpConfig& config,
                                                      std::shared_ptr<TokenStore> tokens);
  ~McpToolHost() override;

  Result<std::vector<ToolSpec>> list_tools() override;
  Result<ToolOutcome> call_tool(const std::string& server, const std::string& name,
                                nlohmann::json args) override;
  // Ctrl-C: the call is abandoned and the server sent notifications/cancelled (mcp::Client).
  Result<ToolOutcome> call_tool_cancellable(const std::string& server, const std::string& name,
                                            nlohmann::json args, const CancellationToken& cancel) override;
  // Per server: the `generate_sql` prompt if offered, else resources whose URI or name
  // mentions "schema"; plus the server's initialize instructions.
  Result<std::string> schema_context() override;

  // How many times a server was reconnected because the token changed (for tests).
  int reconnects() const { return reconnects_; }

 private:
  struct Connection;
  explicit McpToolHost(std::shared_ptr<TokenStore> tokens);
  Result<void> open(Connection& c);
  Result<Connection*> ready(const std::string& server);

  std::shared_ptr<TokenStore> tokens_;
  std::vector<std::unique_ptr<Connection>> connections_;
  int reconnects_ = 0;
};

}  // namespace larder::agent
