// connect::Bridge — what `larder connect` runs: one local MCP server on stdio, for an MCP host
// (Claude Desktop, Claude Code, Cursor, VS Code, the Inspector) to launch as a command, in
// front of one or more Larder servers reached over mTLS (docs/connect.md).
//
// The bridge holds what the host must never see: the client certificate's key (the TLS
// files of the mcpServers config) and the Biscuit token. It sends the token as
// `Authorization: Bearer` (and in the `biscuit_token` argument of tools that take one),
// removes `biscuit_token` from every input schema it shows, takes the attenuated token out
// of every result's _meta, and checks every line it writes that no token it ever held is in
// it. One token lineage serves every upstream: when a server hands back an attenuated token,
// every later call to every upstream carries it, and it is kept in a file (mode 0600) so a
// restart of the host does not fall back to a pre-taint copy.
//
// Names: a tool or prompt keeps its name unless two upstreams offer the same one; then each
// becomes "<server>__<name>". A resource URI or template that two upstreams share becomes
// "<server>+<uri>". (<server> is the mcpServers key, with any character outside
// [A-Za-z0-9_-] replaced by '_' for names and by '-' for URI prefixes.)
#pragma once

#include "agent/config.h"
#include "agent/tool_host.h"
#include "base/result.h"
#include "mcp/server.h"

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace larder::connect {

struct BridgeOptions {
  agent::McpConfig config;
  std::string token;        // the configured token (empty only for servers that need none)
  std::string token_state;  // file keeping the lineage's current token; empty: not kept
  mcp::Implementation info{"larder-connect", LARDER_VERSION, ""};
  std::size_t max_in_flight = 32;  // host requests running at once; more are answered "busy"
  std::size_t max_message = 4u << 20;
  std::size_t handler_threads = 8;
  std::size_t page_size = 100;  // items per page of the lists the host asks for
  // Reaching an upstream again (restarted server, closed session): attempts with a delay
  // that doubles from `backoff` up to `max_backoff`.
  int reconnect_attempts = 6;
  std::chrono::milliseconds backoff{100};
  std::chrono::milliseconds max_backoff{3000};
  std::chrono::milliseconds request_timeout{120000};
};

// The file that keeps the current token of the lineage that `initial_token` starts:
// <state_dir>/connect-<first 16 hex digits of SHA-256(initial_token)>.token.
std::string token_state_path(const std::string& state_dir, const std::string& initial_token);
// $XDG_STATE_HOME/larder, else $HOME/.local/state/larder, else ".larder".
std::string default_state_dir();

class Bridge {
 public:
  // Connects to every upstream and lists what each offers; fails naming the server that
  // could not be reached (after the reconnect attempts).
  static Result<std::unique_ptr<Bridge>> start(BridgeOptions options);
  ~Bridge();
  Bridge(const Bridge&) = delete;
  Bridge& operator=(const Bridge&) = delete;

  mcp::Server& server();
  // Serves the host on (in_fd, out_fd) until its input closes.
  Result<void> serve_stdio(int in_fd = 0, int out_fd = 1);

  std::string current_token() const;
  int reconnects() const;

  struct Impl;

 private:
  explicit Bridge(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace larder::connect
