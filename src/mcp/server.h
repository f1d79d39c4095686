// mcp::Server — the transport-independent MCP server: registries (tools, resources,
// resource templates, prompts, completions), protocol lifecycle for both eras, and the
// dispatch of one JSON-RPC message at a time. Transports (stdio.h, http_transport.h) feed
// it messages and give it a channel (Outbound) for what goes back.
//
// Eras: a request whose params._meta carries "io.modelcontextprotocol/protocolVersion" is
// served statelessly under the modern revision (2026-07-28). Anything else is legacy:
// `initialize` opens a Session (per stdio process, or per HTTP Mcp-Session-Id) with a
// negotiated revision 2024-11-05 .. 2025-11-25.
//
// Handlers run on the calling thread and may block; they receive a RequestContext with the
// session, the TLS peer, the HTTP headers, the protocol version, `_meta`, cancellation and
// progress/log/client-request helpers.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "base/json.h"
#include "base/result.h"
#include "mcp/cancellation.h"
#include "mcp/json_schema.h"
#include "mcp/jsonrpc.h"
#include "mcp/protocol.h"
#include "mcp/uri_template.h"
#include "net/http.h"
#include "net/peer_identity.h"

namespace larder::mcp {

class Server;
class Session;
class ThreadPool;

// Where messages for one peer go (a stdout writer, an SSE stream, ...). Thread-safe.
class Outbound {
 public:
  virtual ~Outbound() = default;
  // Sends one JSON-RPC message; false if the channel is closed.
  virtual bool send(const json& message) = 0;
};

// Error a handler returns to make the request fail with a JSON-RPC error.
// Codes: "invalid_params" → -32602, "not_found" → resource-not-found, anything else → -32603.
using HandlerError = larder::Error;

// ---------------------------------------------------------------- content helpers
json text_content(std::string text);
json image_content(std::string base64_data, std::string mime_type);
json audio_content(std::string base64_data, std::string mime_type);
json embedded_text_resource(std::string uri, std::string mime_type, std::string text);
json embedded_blob_resource(std::string uri, std::string mime_type, std::string base64_blob);

// ---------------------------------------------------------------- tools
struct Tool {
  std::string name;
  std::string title;  // optional (2025-06-18+)
  std::string description;
  json input_schema = json{{"type", "object"}};
  std::optional<json> output_schema;  // if set, structuredContent is validated against it
  json annotations;                   // null or ToolAnnotations object
  json meta;                          // null or object (tool-level _meta)
};

struct ToolResult {
  json content = json::array();
  std::optional<json> structured_content;
  bool is_error = false;
  json meta;  // null or object; e.g. {"larder/biscuit_token": "..."}
  // Modern era (MRTR) only: ask the client for input; the call becomes an
  // InputRequiredResult and the client retries with inputResponses / requestState.
  std::optional<json> input_requests;
  std::optional<std::string> request_state;

  static ToolResult text(std::string text);
  static ToolResult error(std::string message);
};

class RequestContext;
using ToolHandler = std::function<ToolResult(RequestContext& ctx, const json& arguments)>;

// What a resource reader or a prompt handler produces: its result; a HandlerError, mapped as
// above; or a JSON-RPC error of the handler's own (code, message, data) that the client
// receives as it is, such as an application-level refusal (error_code::kRefused).
class HandlerResult {
 public:
  HandlerResult(json value) : v_(std::move(value)) {}          // NOLINT(google-explicit-constructor)
  HandlerResult(HandlerError error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)
  HandlerResult(RpcError error) : v_(std::move(error)) {}      // NOLINT(google-explicit-constructor)
  HandlerResult(larder::Result<json> result)                   // NOLINT(google-explicit-constructor)
      : v_(result ? std::variant<json, HandlerError, RpcError>(std::move(*result))
                  : std::variant<json, HandlerError, RpcError>(result.error())) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  json& value() { return std::get<0>(v_); }
  const json& value() const { return std::get<0>(v_); }
  json* operator->() { return &value(); }
  json& operator*() { return value(); }
  // The handler's own JSON-RPC error, or nullptr.
  const RpcError* rpc_error() const { return std::get_if<RpcError>(&v_); }
  // The HandlerError, or nullptr.
  const HandlerError* error() const { return std::get_if<HandlerError>(&v_); }

 private:
  std::variant<json, HandlerError, RpcError> v_;
};

// ---------------------------------------------------------------- resources
struct Resource {
  std::string uri;
  std::string name;
  std::string title;
  std::string description;
  std::string mime_type;
  std::optional<std::int64_t> size;
  json annotations;
  json meta;
};
// Returns the `contents` array of a ReadResourceResult.
using ResourceReader = std::function<HandlerResult(RequestContext& ctx, const std::string& uri)>;

struct ResourceTemplate {
  std::string uri_template;
  std::string name;
  std::string title;
  std::string description;
  std::string mime_type;
  json annotations;
  json meta;
};
using TemplateReader = std::function<HandlerResult(RequestContext& ctx, const std::string& uri,
                                                   const std::map<std::string, std::string>& variables)>;

// ---------------------------------------------------------------- prompts
struct PromptArgument {
  std::string name;
  std::string title;
  std::string description;
  bool required = false;
};
struct Prompt {
  std::string name;
  std::string title;
  std::string description;
  std::vector<PromptArgument> arguments;
  json meta;
};
// Returns a GetPromptResult object ({description?, messages:[...]}).
using PromptHandler =
    std::function<HandlerResult(RequestContext& ctx, const std::map<std::string, std::string>& arguments)>;

// completion/complete: `ref` is {type:"ref/prompt",name} or {type:"ref/resource",uri};
// `argument` is {name,value}; `context` is {arguments:{...}} or null. Returns the values.
using CompletionHandler = std::function<std::vector<std::string>(RequestContext& ctx, const json& ref,
                                                                 const json& argument, const json& context)>;

// ---------------------------------------------------------------- session (legacy era)
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Server* server, std::string id, std::shared_ptr<const net::PeerIdentity> peer);
  ~Session();

  const std::string& id() const { return id_; }
  std::shared_ptr<const net::PeerIdentity> peer() const { return peer_; }
  std::string protocol_version() const;
  json client_capabilities() const;
  json client_info() const;
  bool initialized() const;
  LogLevel log_level() const;
  bool subscribed(const std::string& uri) const;

  // Server-initiated messages unrelated to a request (list_changed, resources/updated, logs).
  // Delivered on the session's general channel (stdout, the standalone GET stream, or the
  // legacy SSE stream); buffered by the HTTP transport when no stream is attached.
  bool notify(std::string_view method, const json& params);
  // Server-to-client request on the general channel; waits for the answer.
  larder::Result<json> request(std::string_view method, const json& params,
                               std::chrono::milliseconds timeout);

  // ---- used by transports
  void set_general(std::shared_ptr<Outbound> general);
  std::shared_ptr<Outbound> general() const;
  // Sends `method` through `via` and waits for the client's response (delivered with
  // deliver_response), the timeout, or cancellation.
  larder::Result<json> request_via(Outbound& via, std::string_view method, const json& params,
                                   std::chrono::milliseconds timeout, const CancellationToken* cancel);
  bool deliver_response(const Message& response);
  void cancel_request(const json& request_id);
  void close();  // fails pending client requests, cancels in-flight handlers
  bool closed() const;
  std::chrono::steady_clock::time_point last_activity() const;
  void touch();

 private:
  friend class Server;
  struct Pending;
  Server* server_;
  std::string id_;
  std::shared_ptr<const net::PeerIdentity> peer_;
  mutable std::mutex mutex_;
  std::string protocol_version_;
  json client_capabilities_ = json::object();
  json client_info_ = json::object();
  bool initialize_seen_ = false;
  bool initialized_ = false;
  bool closed_ = false;
  LogLevel log_level_ = LogLevel::kDebug;
  std::vector<std::string> subscriptions_;
  std::shared_ptr<Outbound> general_;
  std::unordered_map<std::string, CancellationToken> in_flight_;
  std::unordered_map<std::string, std::shared_ptr<Pending>> pending_;
  std::int64_t next_request_id_ = 1;
  std::chrono::steady_clock::time_point last_activity_;
};

// ---------------------------------------------------------------- request context
// Everything a transport knows about where a message came from.
struct Origin {
  std::shared_ptr<const net::PeerIdentity> peer;  // null on stdio / plain loopback HTTP
  net::HeaderList headers;                        // empty on stdio
  std::shared_ptr<Outbound> related;              // channel for messages related to this request
  std::string transport = "stdio";                // "stdio", "streamable-http", "sse"
  // Ends the current response stream so the client resumes it (SSE polling, SEP-1699).
  std::function<void()> close_stream;
  // Set by the transport when the client dropped the request (modern: stream closed).
  CancellationToken cancellation;
  // Set by transports that can answer "credentials rejected" (HTTP 401): where a handler's
  // RequestContext::reject_credentials puts its challenge.
  std::shared_ptr<std::string> credentials_challenge;
};

class RequestContext {
 public:
  RequestContext(Server* server, std::shared_ptr<Session> session, const Origin& origin,
                 const Message& request, std::string protocol_version, CancellationToken cancel);

  const std::shared_ptr<Session>& session() const { return session_; }  // null in the modern era
  const std::shared_ptr<const net::PeerIdentity>& peer() const { return origin_.peer; }
  const net::HeaderList& headers() const { return origin_.headers; }
  std::optional<std::string> header(std::string_view name) const;
  const std::string& protocol_version() const { return protocol_version_; }
  bool modern() const;
  const json& request_id() const { return request_.id; }
  const std::string& method() const { return request_.method; }
  const json& params() const { return request_.params; }
  const json& meta() const { return meta_; }  // params._meta, or an empty object
  json client_capabilities() const;
  const std::string& transport() const { return origin_.transport; }

  const CancellationToken& cancellation() const { return cancel_; }
  bool cancelled() const { return cancel_.cancelled(); }

  // The server's own id for this request (16 hex digits, unique per process run): what ties
  // its log line, its audit record and its result's _meta together (ServerOptions::
  // correlation_meta_key). Not the JSON-RPC id, which the client chooses.
  const std::string& correlation_id() const { return correlation_id_; }
  // The W3C trace context the caller sent (`traceparent` header, else params._meta.traceparent),
  // when well formed (version 00, a non-zero trace id and parent id); "" otherwise.
  std::string traceparent() const;

  // notifications/progress, only when the request carried a progressToken.
  void progress(double progress, std::optional<double> total = std::nullopt, std::string message = {});
  // notifications/message related to this request, filtered by the log level.
  void log(LogLevel level, json data, std::string logger = {});
  // Any other notification related to this request.
  void notify(std::string_view method, const json& params);

  // Server-to-client request (sampling/createMessage, elicitation/create, roots/list).
  // Legacy era: sent on this request's stream, waits for the answer. Modern era: the
  // request becomes an entry of an InputRequiredResult (MRTR); when the client retries with
  // inputResponses the handler runs again and this call returns the matching response.
  larder::Result<json> request_client(std::string_view method, const json& params,
                                      std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // Ends this request's response stream now (the client reconnects with Last-Event-ID and
  // receives the rest). No-op where streams are not resumable.
  void close_stream();

  // The credentials the request came with were refused (an invalid, expired or revoked
  // bearer token): over HTTP the answer goes out as 401 with `WWW-Authenticate: <challenge>`
  // (when it is still a plain JSON response). No-op on transports without such a status.
  void reject_credentials(std::string challenge) {
    if (origin_.credentials_challenge) *origin_.credentials_challenge = std::move(challenge);
  }

  // A handler that keeps its own record of the call (an audit log) says so, and the
  // server's on_request observer is told it need not write another.
  void mark_recorded() { recorded_ = true; }
  bool recorded() const { return recorded_; }

  // Internal: the MRTR state of a modern request.
  struct InputRequired {
    json input_requests = json::object();
  };

 private:
  Server* server_;
  std::shared_ptr<Session> session_;
  Origin origin_;
  Message request_;
  std::string protocol_version_;
  json meta_;
  CancellationToken cancel_;
  int client_request_index_ = 0;
  bool recorded_ = false;
  std::string correlation_id_;
  friend class Server;
};

// The trace id (32 hex digits) of a well-formed W3C traceparent, "" when it is not one.
std::string trace_id_of(std::string_view traceparent);

// Thrown inside a handler by request_client in the modern era when input is missing;
// caught by the server and turned into an InputRequiredResult. Handlers must not swallow it
// (catch std::exception is fine: it does not derive from it).
struct InputRequiredSignal {
  json input_requests;
  json state;  // answers so far, sealed into requestState
};
// Thrown when a requestState fails its integrity check (answered with -32602).
struct RequestStateError {};

// One request as the server's on_request observer sees it: who sent it, what it asked, how it
// ended. `name` is the tool name, resource URI or prompt name where the method has one.
struct RequestRecord {
  std::shared_ptr<const net::PeerIdentity> peer;
  std::string transport;
  std::string method;  // empty when the message was refused before it could be read
  std::string name;
  std::optional<int> error_code;  // the JSON-RPC error answered, if any
  bool error_result = false;      // a result with isError (a tool's own error, bad arguments)
  std::string error_message;
  bool recorded_by_handler = false;  // RequestContext::mark_recorded
  // From the request's arrival at the server to its answer (zero for messages refused before
  // they could be read), and the protocol revision it was served under ("" when none yet).
  std::chrono::steady_clock::duration duration{};
  std::string protocol_version;
  std::string correlation_id;  // RequestContext::correlation_id ("" for messages refused unread)
  std::string traceparent;     // RequestContext::traceparent
};

// A handler for a method outside the built-in set (e.g. an extension).
using MethodHandler = std::function<larder::Result<json>(RequestContext& ctx)>;

// ---------------------------------------------------------------- server
struct ServerOptions {
  Implementation info{"larder-mcp", "0.1.0", ""};
  std::string instructions;
  std::size_t page_size = 100;  // items per list page
  std::chrono::milliseconds client_request_timeout{60000};
  // Handlers running at once: the stdio transport's pool; over HTTP, how many of the net
  // workers may run handlers (HttpTransport::kSpareWorkers more stay free for cancellations).
  std::size_t handler_threads = 8;
  std::vector<std::string> versions;  // enabled revisions; empty = all supported
  // Capabilities advertised even when a registry is empty.
  bool advertise_tools = true, advertise_resources = true, advertise_prompts = true;
  bool advertise_logging = true, advertise_completions = true;
  // Input bounds (docs/mcp.md "Limits"): transports refuse JSON nested deeper than
  // max_json_depth before parsing it (-32700), and a JSON-RPC batch (2025-03-26 sessions
  // only) of more than max_batch_size messages (-32600; an empty batch is refused too).
  std::size_t max_json_depth = larder::kMaxJsonDepth;
  // When set, the result of every tools/call, resources/read and prompts/get carries its
  // correlation id as _meta[correlation_meta_key] (RequestContext::correlation_id).
  std::string correlation_meta_key;
  std::size_t max_batch_size = 32;
  // A tool's structuredContent is checked against its outputSchema before it is sent. A relay
  // whose tools are another server's (which checked it already) may turn this off.
  bool validate_tool_output = true;
  std::int64_t cache_ttl_ms = 0;        // modern CacheableResult ttlMs
  std::string cache_scope = "private";  // "public" | "private"
  // Called when a session finishes initialize (legacy) — e.g. to log the client.
  std::function<void(Session&)> on_initialized;
  // Called for client notifications the server does not handle itself.
  std::function<void(const std::shared_ptr<Session>&, const Message&)> on_notification;
  // Told of every request once its answer is built, and of every message refused before it
  // could be dispatched (not JSON, not JSON-RPC, a batch refused): the traffic as an audit log
  // sees it. Returning false (the record could not be kept) turns a successful answer into an
  // error, so nothing is served unrecorded. Runs on the request's thread.
  std::function<bool(const RequestRecord&)> on_request;
  // Hooks for transports that fan out change notifications to stateless listeners.
  std::function<void(std::string_view method)> on_list_changed;
  std::function<void(const std::string& uri)> on_resource_updated;
};

class Server {
 public:
  explicit Server(ServerOptions options = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  const ServerOptions& options() const { return options_; }

  // Registries. Adding/removing after sessions exist sends list_changed to them.
  larder::Result<void> add_tool(Tool tool, ToolHandler handler);
  bool remove_tool(const std::string& name);
  larder::Result<void> add_resource(Resource resource, ResourceReader reader);
  bool remove_resource(const std::string& uri);
  larder::Result<void> add_resource_template(ResourceTemplate resource_template, TemplateReader reader);
  larder::Result<void> add_prompt(Prompt prompt, PromptHandler handler);
  bool remove_prompt(const std::string& name);
  void set_completion_handler(CompletionHandler handler);
  void add_method(std::string method, MethodHandler handler);
  std::vector<Tool> tools() const;
  std::vector<Prompt> prompts() const;

  // Observers of change notifications (list_changed, resources/updated) — used by the HTTP
  // transport to feed stateless subscriptions/listen streams. Called on the changing thread.
  using ChangeListener = std::function<void(std::string_view method, const json& params)>;
  std::size_t add_change_listener(ChangeListener listener);
  void remove_change_listener(std::size_t id);

  // Sends notifications/resources/updated to every session subscribed to `uri`.
  void notify_resource_updated(const std::string& uri);
  // Sends a notification to every initialized session.
  void broadcast(std::string_view method, const json& params);

  // ---- used by transports
  std::shared_ptr<Session> create_session(std::shared_ptr<const net::PeerIdentity> peer);
  std::shared_ptr<Session> find_session(const std::string& id) const;
  void remove_session(const std::string& id);
  std::vector<std::shared_ptr<Session>> sessions() const;

  // Handles one incoming JSON-RPC value (object; arrays are batches, accepted only for
  // 2025-03-26 sessions). Returns what to answer: a response object, an array (batch), or
  // nothing (notifications and responses). Runs handlers on the calling thread.
  std::optional<json> handle(const std::shared_ptr<Session>& session, const json& value,
                             const Origin& origin);
  // For a JSON array: the error response refusing it as a batch (not a 2025-03-26 session,
  // empty, or more than max_batch_size messages; told to on_request like report_refused),
  // or nothing if handle() will serve it. Transports call it to refuse before queueing work.
  std::optional<json> refuse_batch(const std::shared_ptr<Session>& session, const json& batch,
                                   const Origin& origin);
  // Same, for an already classified request.
  json handle_request(const std::shared_ptr<Session>& session, const Message& request, const Origin& origin);
  // A transport refused a message before dispatch (unparseable, oversized, …): tells on_request.
  void report_refused(const Origin& origin, const RpcError& error);
  void handle_notification(const std::shared_ptr<Session>& session, const Message& message);

  // True if this request is to be served under the modern (stateless) revision.
  static bool is_modern_request(const Message& request);
  // The modern protocol version a request declares (empty if none).
  static std::string declared_version(const Message& request);
  bool version_enabled(std::string_view v) const;
  std::vector<std::string> enabled_versions() const;  // newest first
  // True if a modern-era request for `method` would be dispatched (HTTP answers 404 else).
  bool knows_modern_method(const std::string& method) const;
  json capabilities() const;

  // MRTR requestState: an HMAC-sealed JSON object only this server instance can open.
  std::string seal_request_state(const json& state) const;
  json open_request_state(const std::string& sealed) const;  // throws RequestStateError

  // A pool for a transport that must not block its reader (stdio). HTTP needs none: its
  // handlers run on the net worker that holds the request.
  ThreadPool& pool();

 private:
  friend class RequestContext;
  struct ToolEntry {
    Tool tool;
    ToolHandler handler;
    std::optional<JsonSchema> input;
    std::optional<JsonSchema> output;
  };
  struct ResourceEntry {
    Resource resource;
    ResourceReader reader;
  };
  struct TemplateEntry {
    ResourceTemplate resource_template;
    UriTemplate parsed;
    TemplateReader reader;
  };
  struct PromptEntry {
    Prompt prompt;
    PromptHandler handler;
  };

  json answer_request(const std::shared_ptr<Session>& session, const Message& request, const Origin& origin,
                      const std::string& correlation_id, std::string& traceparent, bool& recorded);
  // One row per built-in JSON-RPC method (the table is in server.cpp): dispatch, the
  // capability check, "method not found" and knows_modern_method all read it.
  struct Method;
  static const Method* builtin_method(std::string_view name);
  json dispatch(RequestContext& ctx);
  larder::Result<json> on_initialize(const std::shared_ptr<Session>& session, const Message& request);
  larder::Result<json> on_discover();
  larder::Result<json> on_tools_list(const Message& request, const std::string& version);
  larder::Result<json> on_tools_call(RequestContext& ctx);
  larder::Result<json> on_resources_list(const Message& request);
  larder::Result<json> on_templates_list(const Message& request);
  HandlerResult on_resources_read(RequestContext& ctx);
  larder::Result<json> on_prompts_list(const Message& request);
  HandlerResult on_prompts_get(RequestContext& ctx);
  larder::Result<json> on_complete(RequestContext& ctx);
  larder::Result<json> on_set_level(const std::shared_ptr<Session>& session, const Message& request);
  larder::Result<json> on_subscribe(const std::shared_ptr<Session>& session, const Message& request,
                                    bool subscribe);
  void list_changed(std::string_view method);
  void fire_change(std::string_view method, const json& params);
  MethodHandler find_method(const std::string& method) const;
  json tool_json(const Tool& tool, const std::string& version) const;

  ServerOptions options_;
  mutable std::shared_mutex registry_mutex_;
  std::vector<ToolEntry> tools_;
  std::vector<ResourceEntry> resources_;
  std::vector<TemplateEntry> templates_;
  std::vector<PromptEntry> prompts_;
  CompletionHandler completion_;
  std::unordered_map<std::string, MethodHandler> custom_methods_;
  std::string state_key_;
  std::mutex listeners_mutex_;
  std::map<std::size_t, ChangeListener> listeners_;
  std::size_t next_listener_ = 0;
  mutable std::mutex sessions_mutex_;
  std::unordered_map<std::string, std::shared_ptr<Session>> sessions_;
  std::once_flag pool_once_;
  std::unique_ptr<ThreadPool> pool_;
};

// Error codes for a handler's larder::Error (see HandlerError).
RpcError to_rpc_error(const larder::Error& error, const std::string& version);

// 128+ bits from OpenSSL's CSPRNG, hex encoded (session ids, stream ids).
std::string random_id(std::size_t bytes = 16);

}  // namespace larder::mcp
