// Standard MCP authorization on Larder's HTTP listener (MCP 2025-06-18 and 2025-11-25).
// Lock biscuit decides as always; when it refuses a call that came with no token at all, or
// with a token in `Authorization: Bearer` alone, the HTTP answer becomes 401 with a challenge
// (the JSON-RPC body is the refusal it always was: a tool result with isError and the
// decision, or error -32003 for a read or a prompt):
//   - no token (no Authorization, no `biscuit_token` argument):
//       WWW-Authenticate: Bearer resource_metadata="https://<host>/.well-known/oauth-protected-resource/mcp"
//   - an invalid, expired or revoked token, or one bound to another certificate or audience:
//       the same, plus error="invalid_token", error_description="<the reason>".
// A token given as the seed-style `biscuit_token` argument keeps today's answer (HTTP 200 and
// the refusal), and so do requests that need no token (initialize, lists, ping).
// GET /.well-known/oauth-protected-resource (and …/mcp, RFC 9728's path form) describes the
// resource: its URL and audience, bearer tokens in the header, bound to the client
// certificate (RFC 8705).
#pragma once

#include "gate/pipeline.h"
#include "mcp/http_transport.h"
#include "mcp/server.h"

#include <optional>
#include <string>
#include <string_view>

namespace larder::tools {

inline constexpr std::string_view kResourceMetadataPath = "/.well-known/oauth-protected-resource";

// The WWW-Authenticate value: resource_metadata for the listener the request reached, plus
// error and error_description when `error` is not empty (description made header-safe).
std::string bearer_challenge(const std::optional<std::string>& host_header, std::string_view error = {},
                             std::string_view description = {});

// The RFC 9728 documents of a listener serving `audience`, in `options.documents`.
void add_resource_metadata(mcp::HttpTransportOptions& options, std::string audience);

// Where the call's token came from (gate::CallRequest before admission).
enum class TokenSource { kNone, kBearer, kArgument };
TokenSource token_source(const gate::CallRequest& request);

// After a lock refused a call: lock biscuit refusing a missing or bearer-only token makes
// the HTTP answer 401 with the challenge above.
void challenge_refused_credentials(mcp::RequestContext& ctx, TokenSource source,
                                   const gate::Refusal& refusal);

}  // namespace larder::tools
