// JSON-RPC 2.0 as MCP uses it: classify an incoming message, build responses and errors.
//
// MCP request ids are strings or integers (never null, never fractional). A message is
// exactly one of request, notification, response (result or error). Batches (JSON arrays)
// exist only in protocol revision 2025-03-26; callers decide whether to accept them.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/json.h"
#include "base/result.h"

namespace larder::mcp {

using json = nlohmann::json;

// Standard JSON-RPC error codes plus the MCP-defined ones.
namespace error_code {
inline constexpr int kParseError = -32700;
inline constexpr int kInvalidRequest = -32600;
inline constexpr int kMethodNotFound = -32601;
inline constexpr int kInvalidParams = -32602;
inline constexpr int kInternalError = -32603;
inline constexpr int kConnectionClosed = -32000;  // implementation-defined range
inline constexpr int kRequestTimeout = -32001;    // implementation-defined range
inline constexpr int kResourceNotFound = -32002;  // 2024-11-05 .. 2025-11-25
// Implementation-defined: the server's own policy refused the request (not a protocol fault);
// `data` says why, in the server's documented shape.
inline constexpr int kRefused = -32003;
// Implementation-defined: too many of this peer's requests are in flight; retry later.
inline constexpr int kBusy = -32004;
inline constexpr int kUrlElicitationRequired = -32042;           // 2025-11-25
inline constexpr int kHeaderMismatch = -32020;                   // 2026-07-28
inline constexpr int kMissingRequiredClientCapability = -32021;  // 2026-07-28
inline constexpr int kUnsupportedProtocolVersion = -32022;       // 2026-07-28
}  // namespace error_code

// A JSON-RPC error object, as carried in an error response.
struct RpcError {
  int code = error_code::kInternalError;
  std::string message;
  std::optional<json> data;

  json to_json() const;
  static RpcError parse_error(std::string detail);
  static RpcError invalid_request(std::string detail);
  static RpcError method_not_found(std::string_view method);
  static RpcError invalid_params(std::string detail);
  static RpcError internal(std::string detail);
};

enum class MessageKind { kRequest, kNotification, kResult, kError };

// One validated JSON-RPC message. `id` is set for requests and responses (it may be null
// only on an error response to an unparseable request).
struct Message {
  MessageKind kind = MessageKind::kRequest;
  json id;  // string or integer for requests; as received for responses
  std::string method;
  json params;     // object, array or null (absent)
  json result;     // kResult
  RpcError error;  // kError

  bool is_request() const { return kind == MessageKind::kRequest; }
  bool is_notification() const { return kind == MessageKind::kNotification; }
  bool is_response() const { return kind == MessageKind::kResult || kind == MessageKind::kError; }
};

// Validates one JSON value as a JSON-RPC 2.0 message. On failure returns the RpcError to
// send back (kInvalidRequest), with the request id when one could be recovered in
// `recovered_id` (else null, as the spec requires).
struct ClassifyFailure {
  RpcError error;
  json recovered_id;  // null when unknown
};
std::variant<Message, ClassifyFailure> classify(const json& value);

// Parses a text body (base/json.h: nesting refused above `max_depth` before a tree is built).
// Returns the parsed JSON value or a -32700 error ("Parse error: JSON nested deeper than 64
// levels", "Parse error: the body is not valid JSON").
std::variant<json, RpcError> parse_json(std::string_view text, std::size_t max_depth = larder::kMaxJsonDepth);

// Builders.
json make_request(const json& id, std::string_view method, const json& params);
json make_notification(std::string_view method, const json& params);
json make_result(const json& id, json result);
json make_error_response(const json& id, const RpcError& error);

// A stable map key for an id (strings and integers never collide: "s:abc" vs "n:1").
std::string id_key(const json& id);

}  // namespace larder::mcp
