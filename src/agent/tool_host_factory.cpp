// The ToolHostFactory `larder ask` uses. Kept out of larder_agent_core so the core (and its
// unit tests) never depends on libmcp.
#include "agent/ask.h"

#ifdef LARDER_AGENT_HAS_MCP
#include "agent/mcp_tool_host.h"
#endif

namespace larder::agent {

ToolHostFactory default_tool_host_factory() {
  return [](const McpConfig& config, std::shared_ptr<TokenStore> tokens,
            const Environment&) -> Result<std::unique_ptr<ToolHost>> {
#ifdef LARDER_AGENT_HAS_MCP
    auto host = McpToolHost::connect(config, std::move(tokens));
    if (!host.ok()) return host.error();
    return std::unique_ptr<ToolHost>(std::move(*host));
#else
    (void)config;
    (void)tokens;
    return make_error("mcp.unavailable",
                      "this larder was built without libmcp (src/mcp), so it cannot reach MCP servers");
#endif
  };
}

}  // namespace larder::agent
