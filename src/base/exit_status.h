// The exit statuses of every `larder` subcommand, and the one mapping from an Error's code to
// its status. Documented in README.md ("Exit statuses") and `larder --help`; the CLI
// (src/cli/report.h) and `larder ask` (src/agent/ask.h) both use this table.
#pragma once

#include "base/result.h"

#include <string_view>

namespace larder::exit_status {

inline constexpr int kOk = 0;           // done
inline constexpr int kRefused = 1;      // refused, verification failed, tampered, internal failure
inline constexpr int kUsage = 2;        // bad flags, arguments or configuration
inline constexpr int kNotFound = 3;     // a file that does not exist or cannot be read
inline constexpr int kInvalid = 4;      // not a valid certificate, key, token or file format
inline constexpr int kUnavailable = 5;  // a service is unreachable: PostgreSQL, an MCP server, the LLM API
inline constexpr int kCredentialsRejected = 6;  // the LLM API rejected the key (HTTP 401/403)
inline constexpr int kMaxSteps = 7;       // larder ask: --max-steps reached while the model wanted tools
inline constexpr int kToolError = 8;      // larder ask: answered, but the last tool call was refused
inline constexpr int kIncomplete = 9;     // larder ask: the model stopped at its output limit or refused
inline constexpr int kInterrupted = 130;  // larder ask: Ctrl-C cancelled the question (128 + SIGINT)

// The table as `larder --help` prints it.
inline constexpr const char* kTable =
    "Exit statuses:\n"
    "  0  done\n"
    "  1  refused: verification failed, a lock refused, a log is tampered, an internal failure\n"
    "  2  usage or configuration error\n"
    "  3  file not found or unreadable\n"
    "  4  not a valid certificate, key, token or file format\n"
    "  5  service unavailable: PostgreSQL, an MCP server or the LLM API cannot be reached\n"
    "  6  the LLM API rejected the key\n"
    "  7  larder ask: --max-steps reached\n"
    "  8  larder ask: answered, but the last tool call was refused\n"
    "  9  larder ask: the model stopped at its output limit or refused\n"
    "130  larder ask: Ctrl-C cancelled the question, or left the prompt\n";

// The status of a failure with this error code.
inline int for_error(const Error& e) {
  const std::string_view c = e.code;
  auto starts = [&](std::string_view prefix) { return c.substr(0, prefix.size()) == prefix; };
  if (c == "file.not_found" || c == "file.unreadable" || c == "pki.no_ca" || c == "pki.not_found")
    return kNotFound;
  if (starts("file.") || starts("key.") || c == "tls.bad_certificate" || c == "token.invalid" ||
      c == "pki.ca_mismatch")
    return kInvalid;
  if (c.size() > 10 && c.substr(c.size() - 10) == ".cancelled") return kInterrupted;
  if (c == "llm.auth") return kCredentialsRejected;
  if (c == "agent.max_steps") return kMaxSteps;
  if (starts("config.") || c == "usage") return kUsage;
  if (starts("llm.") || starts("mcp") || starts("net.") || starts("tls.") || c == "db.unavailable" ||
      c == "db.auth" || c == "taint.ledger_unavailable")
    return kUnavailable;
  return kRefused;
}

}  // namespace larder::exit_status
