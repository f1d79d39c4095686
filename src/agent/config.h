// Configuration for `larder ask`:
//  * the de-facto `mcpServers` JSON format (Claude Desktop, Cursor, ...) extended with TLS
//    client files:
//      {"mcpServers": {"larder-db": {"url": "https://127.0.0.1:8443/mcp",
//                                    "tls": {"ca": "ca.pem", "cert": "c.pem", "key": "c.key"},
//                                    "headers": {"X-Client": "ask"}},
//                      "local": {"command": "larder", "args": ["serve", "--stdio"], "env": {}}}}
//    relative TLS paths are resolved against the config file's directory; "${VAR}" in url,
//    headers, args and env values expands from the Environment;
//  * environment variables, from the process environment or a `.env` file (the process
//    environment wins).
#pragma once

#include "agent/http.h"
#include "base/result.h"

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace larder::agent {

// Parses .env text: `KEY=value`, `export KEY=value`, '#' comments (whole-line, or after
// whitespace in unquoted values), single quotes (literal), double quotes (\n \t \" \\ \$
// escapes, may span lines), blank lines. Errors name the line.
Result<std::map<std::string, std::string>> parse_dotenv(std::string_view text);

class Environment {
 public:
  Environment() = default;
  explicit Environment(std::map<std::string, std::string> dotenv) : dotenv_(std::move(dotenv)) {}
  // Process environment first, then the .env values.
  std::optional<std::string> get(const std::string& name) const;
  std::string get_or(const std::string& name, const std::string& fallback) const;

 private:
  std::map<std::string, std::string> dotenv_;
};

// Reads `path` if it exists (a missing file is an empty .env; an unreadable or malformed one
// is an error).
Result<Environment> load_environment(const std::string& dotenv_path);

struct TlsFiles {
  std::string ca, cert, key;  // absolute or relative to the working directory after loading
  std::string server_name;    // optional SNI / verification name override
};

enum class McpTransportKind { StreamableHttp, Sse, Stdio };

struct McpServerConfig {
  std::string name;
  McpTransportKind transport = McpTransportKind::StreamableHttp;
  std::string url;
  std::optional<TlsFiles> tls;
  HeaderList headers;
  std::string command;                     // stdio
  std::vector<std::string> args;           // stdio
  std::map<std::string, std::string> env;  // stdio
};

struct McpConfig {
  std::vector<McpServerConfig> servers;
};

// `source` names the file in error messages; `base_dir` resolves relative TLS paths.
Result<McpConfig> parse_mcp_config(std::string_view text, const std::string& source,
                                   const std::string& base_dir, const Environment& env);
Result<McpConfig> load_mcp_config(const std::string& path, const Environment& env);

// The servers a command talks to: `config_path` (--config) if given, else <state_dir>/mcp.json
// if it exists, else one server "larder-db" at PG_MCP_URL (TLS files from MCP_TLS_CA,
// MCP_TLS_CERT, MCP_TLS_KEY). None of these: an error saying how to configure one.
Result<McpConfig> resolve_mcp_config(const std::string& config_path, const std::string& state_dir,
                                     const Environment& env);

// The Biscuit token a command presents: `option` (--token: the token, or @FILE), else
// BISCUIT_TOKEN; surrounding whitespace removed. Without one (and without `no_token`), an
// error saying where tokens come from; `no_token` together with a token is an error too.
Result<std::string> resolve_token(const std::string& option, bool no_token, const Environment& env);

// Expands ${NAME} from `env`; an unknown name is an error naming `where`.
Result<std::string> expand_env(const std::string& value, const Environment& env, const std::string& where);

}  // namespace larder::agent
