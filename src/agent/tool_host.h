// ToolHost: what the agent loop needs from the MCP side — the tools of every configured
// server, a way to call one, and the schema text for the system prompt. McpToolHost
// (mcp_tool_host.h) implements it over mcp::Client; the loop knows nothing of transports.
#pragma once

#include "base/cancellation.h"
#include "base/result.h"

#include <nlohmann/json.hpp>

#include <mutex>
#include <string>
#include <vector>

namespace larder::agent {

struct ToolSpec {
  std::string server;  // key in mcpServers
  std::string name;    // MCP tool name
  std::string description;
  nlohmann::json input_schema;  // as the server published it (may contain biscuit_token)
};

// An MCP CallToolResult, split into its parts.
struct ToolOutcome {
  bool is_error = false;
  nlohmann::json content = nlohmann::json::array();  // MCP content blocks
  nlohmann::json structured;                         // structuredContent (null if absent)
  nlohmann::json meta;                               // _meta (null if absent)
};

class ToolHost {
 public:
  virtual ~ToolHost() = default;
  virtual Result<std::vector<ToolSpec>> list_tools() = 0;
  // `args` already carries biscuit_token when the tool takes one; transports that carry the
  // token in Authorization read it from the TokenStore they were given.
  virtual Result<ToolOutcome> call_tool(const std::string& server, const std::string& name,
                                        nlohmann::json args) = 0;
  // The same, abandoned when `cancel` fires (error "mcp.cancelled"). Hosts that can stop a
  // call in flight override it (McpToolHost: notifications/cancelled); this default only
  // refuses to start a call that is already cancelled.
  virtual Result<ToolOutcome> call_tool_cancellable(const std::string& server, const std::string& name,
                                                    nlohmann::json args, const CancellationToken& cancel) {
    if (cancel.cancelled()) return make_error("mcp.cancelled", "tools/call " + name + " was cancelled");
    return call_tool(server, name, std::move(args));
  }
  // Schema description for the system prompt (the generate_sql prompt / schema resource).
  // May be empty when no server offers one.
  virtual Result<std::string> schema_context() = 0;
};

// The Biscuit token of one lineage. The agent starts it with the configured token and
// replaces it when a server hands back an attenuated one (_meta["larder/biscuit_token"]).
// Every token ever held stays in known() so redaction can recognise it. Thread-safe.
class TokenStore {
 public:
  explicit TokenStore(std::string initial = {});
  std::string current() const;
  bool empty() const;
  // Switch to `token` (no-op for an empty string or the current one). Returns true if changed.
  bool replace(const std::string& token);
  std::vector<std::string> known() const;
  int switches() const;

 private:
  mutable std::mutex mu_;
  std::string current_;
  std::vector<std::string> known_;
  int switches_ = 0;
};

}  // namespace larder::agent
