// The snippets that add `larder connect` to an MCP host, ready to paste: each host's own file
// format (Claude Desktop's claude_desktop_config.json, Cursor's .cursor/mcp.json, VS Code's
// .vscode/mcp.json) or command (Claude Code's `claude mcp add`). The README shows them;
// `larder connect --print-config HOST` and `larder demo` print them with real paths.
#pragma once

#include "base/result.h"

#include <string>
#include <vector>

namespace larder::connect {

enum class Host { kClaudeDesktop, kClaudeCode, kCursor, kVsCode };

// "claude-desktop", "claude-code", "cursor", "vscode".
const std::vector<std::string>& host_names();
Result<Host> parse_host(const std::string& name);
// Where the host reads the snippet from (a file, or "a shell" for Claude Code).
std::string host_target(Host host);

// How the host starts the bridge: `program` (an absolute path) and its arguments.
struct LaunchCommand {
  std::string name = "larder";  // the server's name in the host
  std::string program;
  std::vector<std::string> args;
};

// The arguments of `larder connect` for an mcpServers file and a token file, as absolute paths.
LaunchCommand connect_command(const std::string& program, const std::string& config_path,
                              const std::string& token_file);

std::string host_snippet(Host host, const LaunchCommand& command);

}  // namespace larder::connect
