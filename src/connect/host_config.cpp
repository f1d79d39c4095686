#include "connect/host_config.h"

#include "base/text.h"

#include <nlohmann/json.hpp>

#include <filesystem>

namespace larder::connect {

using nlohmann::json;

namespace {

std::string absolute(const std::string& path) {
  std::error_code ec;
  auto p = std::filesystem::absolute(path, ec);
  return ec ? path : p.lexically_normal().string();
}

}  // namespace

const std::vector<std::string>& host_names() {
  static const std::vector<std::string> names{"claude-desktop", "claude-code", "cursor", "vscode"};
  return names;
}

Result<Host> parse_host(const std::string& name) {
  if (name == "claude-desktop") return Host::kClaudeDesktop;
  if (name == "claude-code") return Host::kClaudeCode;
  if (name == "cursor") return Host::kCursor;
  if (name == "vscode" || name == "vs-code") return Host::kVsCode;
  return make_error("config.host",
                    "unknown MCP host '" + name + "': choose claude-desktop, claude-code, cursor or vscode");
}

std::string host_target(Host host) {
  switch (host) {
    case Host::kClaudeDesktop:
      return "claude_desktop_config.json (Settings > Developer > Edit Config)";
    case Host::kClaudeCode:
      return "a shell (the command registers the server with Claude Code)";
    case Host::kCursor:
      return ".cursor/mcp.json in the project (or ~/.cursor/mcp.json for every project)";
    case Host::kVsCode:
      return ".vscode/mcp.json in the workspace";
  }
  return {};
}

LaunchCommand connect_command(const std::string& program, const std::string& config_path,
                              const std::string& token_file) {
  LaunchCommand c;
  c.program = absolute(program);
  c.args = {"connect", "--config", absolute(config_path), "--token", "@" + absolute(token_file)};
  return c;
}

std::string host_snippet(Host host, const LaunchCommand& command) {
  json server = {{"command", command.program}, {"args", command.args}};
  switch (host) {
    case Host::kClaudeDesktop:
    case Host::kCursor:
      return json{{"mcpServers", {{command.name, server}}}}.dump(2) + "\n";
    case Host::kVsCode: {
      json s = {{"type", "stdio"}, {"command", command.program}, {"args", command.args}};
      return json{{"servers", {{command.name, s}}}}.dump(2) + "\n";
    }
    case Host::kClaudeCode: {
      std::string line = "claude mcp add --transport stdio " + shell_word(command.name) + " -- " +
                         shell_word(command.program);
      for (const auto& a : command.args) line += " " + shell_word(a);
      return line + "\n";
    }
  }
  return {};
}

}  // namespace larder::connect
