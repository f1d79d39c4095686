#include "mcp/server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <random>

#include "mcp/encoding.h"
#include "mcp/method_table.h"
#include "mcp/thread_pool.h"

namespace larder::mcp {

// ================================================================ content helpers
json text_content(std::string text) {
  return json{{"type", "text"}, {"text", std::move(text)}};
}
json image_content(std::string data, std::string mime) {
  return json{{"type", "image"}, {"data", std::move(data)}, {"mimeType", std::move(mime)}};
}
json audio_content(std::string data, std::string mime) {
  return json{{"type", "audio"}, {"data", std::move(data)}, {"mimeType", std::move(mime)}};
}
json embedded_text_resource(std::string uri, std::string mime, std::string text) {
  return json{
      {"type", "resource"},
      {"resource", {{"uri", std::move(uri)}, {"mimeType", std::move(mime)}, {"text", std::move(text)}}}};
}
json embedded_blob_resource(std::string uri, std::string mime, std::string blob) {
  return json{
      {"type", "resource"},
      {"resource", {{"uri", std::move(uri)}, {"mimeType", std::move(mime)}, {"blob", std::move(blob)}}}};
}

ToolResult ToolResult::text(std::string text) {
  ToolResult r;
  r.content.push_back(text_content(std::move(text)));
  return r;
}

ToolResult ToolResult::error(std::string message) {
  ToolResult r = text(std::move(message));
  r.is_error = true;
  return r;
}

RpcError to_rpc_error(const larder::Error& error, const std::string& version) {
  if (error.code == "invalid_params" || error.code.rfind("invalid_params.", 0) == 0) {
    return RpcError{error_code::kInvalidParams, error.message, std::nullopt};
  }
  if (error.code == "invalid_request")
    return RpcError{error_code::kInvalidRequest, error.message, std::nullopt};
  if (error.code == "not_found") {
    const bool modern = is_modern_version(version);
    return RpcError{modern ? error_code::kInvalidParams : error_code::kResourceNotFound, error.message,
                    std::nullopt};
  }
  if (error.code == "missing_capability") {
    return RpcError{error_code::kMissingRequiredClientCapability, error.message, std::nullopt};
  }
  return RpcError{error_code::kInternalError, error.message, std::nullopt};
}

// ================================================================ session
struct Session::Pending {
  std::mutex mutex;
  std::condition_variable cv;
  bool done = false;
  std::optional<json> result;
  std::optional<RpcError> error;
};

Session::Session(Server* server, std::string id, std::shared_ptr<const net::PeerIdentity> peer)
    : server_(server),
      id_(std::move(id)),
      peer_(std::move(peer)),
      last_activity_(std::chrono::steady_clock::now()) {}

Session::~Session() = default;

std::string Session::protocol_version() const {
  std::lock_guard lock(mutex_);
  return protocol_version_;
}
json Session::client_capabilities() const {
  std::lock_guard lock(mutex_);
  return client_capabilities_;
}
json Session::client_info() const {
  std::lock_guard lock(mutex_);
  return client_info_;
}
bool Session::initialized() const {
  std::lock_guard lock(mutex_);
  return initialize_seen_;
}
LogLevel Session::log_level() const {
  std::lock_guard lock(mutex_);
  return log_level_;
}
bool Session::subscribed(const std::string& uri) const {
  std::lock_guard lock(mutex_);
  return std::find(subscriptions_.begin(), subscriptions_.end(), uri) != subscriptions_.end();
}
void Session::set_general(std::shared_ptr<Outbound> general) {
  std::lock_guard lock(mutex_);
  general_ = std::move(general);
}
std::shared_ptr<Outbound> Session::general() const {
  std::lock_guard lock(mutex_);
  return general_;
}
bool Session::closed() const {
  std::lock_guard lock(mutex_);
  return closed_;
}
std::chrono::steady_clock::time_point Session::last_activity() const {
  std::lock_guard lock(mutex_);
  return last_activity_;
}
void Session::touch() {
  std::lock_guard lock(mutex_);
  last_activity_ = std::chrono::steady_clock::now();
}

bool Session::notify(std::string_view method, const json& params) {
  auto g = general();
  if (!g) return false;
  return g->send(make_notification(method, params));
}

larder::Result<json> Session::request(std::string_view method, const json& params,
                                      std::chrono::milliseconds timeout) {
  auto g = general();
  if (!g)
    return larder::make_error("mcp.no_channel", "the session has no channel for server-to-client requests");
  return request_via(*g, method, params, timeout, nullptr);
}

larder::Result<json> Session::request_via(Outbound& via, std::string_view method, const json& params,
                                          std::chrono::milliseconds timeout,
                                          const CancellationToken* cancel) {
  auto pending = std::make_shared<Pending>();
  json id;
  {
    std::lock_guard lock(mutex_);
    if (closed_) return larder::make_error("mcp.closed", "the session is closed");
    id = next_request_id_++;
    pending_[id_key(id)] = pending;
  }
  auto forget = [&] {
    std::lock_guard lock(mutex_);
    pending_.erase(id_key(id));
  };
  if (!via.send(make_request(id, method, params))) {
    forget();
    return larder::make_error("mcp.closed",
                              "the client's channel is closed; cannot send " + std::string(method));
  }
  if (cancel) {
    std::weak_ptr<Pending> weak = pending;
    cancel->on_cancel([weak] {
      if (auto p = weak.lock()) {
        std::lock_guard lock(p->mutex);
        p->cv.notify_all();
      }
    });
  }
  std::unique_lock lock(pending->mutex);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool done = pending->cv.wait_until(lock, deadline,
                                     [&] { return pending->done || (cancel && cancel->cancelled()); });
  if (!done || !pending->done) {
    lock.unlock();
    forget();
    const bool was_cancelled = cancel && cancel->cancelled();
    via.send(make_notification(
        "notifications/cancelled",
        json{{"requestId", id}, {"reason", was_cancelled ? "request cancelled" : "timed out"}}));
    if (was_cancelled) return larder::make_error("mcp.cancelled", std::string(method) + " was cancelled");
    return larder::make_error("mcp.timeout", "the client did not answer " + std::string(method) + " within " +
                                                 std::to_string(timeout.count()) + " ms");
  }
  if (pending->error) {
    return larder::make_error("mcp.client_error", "the client answered " + std::string(method) +
                                                      " with error " + std::to_string(pending->error->code) +
                                                      ": " + pending->error->message);
  }
  return *pending->result;
}

bool Session::deliver_response(const Message& response) {
  std::shared_ptr<Pending> pending;
  {
    std::lock_guard lock(mutex_);
    auto it = pending_.find(id_key(response.id));
    if (it == pending_.end()) return false;
    pending = it->second;
    pending_.erase(it);
  }
  std::lock_guard lock(pending->mutex);
  if (response.kind == MessageKind::kResult) {
    pending->result = response.result;
  } else {
    pending->error = response.error;
  }
  pending->done = true;
  pending->cv.notify_all();
  return true;
}

void Session::cancel_request(const json& request_id) {
  CancellationToken token;
  {
    std::lock_guard lock(mutex_);
    auto it = in_flight_.find(id_key(request_id));
    if (it == in_flight_.end()) return;
    token = it->second;
  }
  token.cancel();
}

void Session::close() {
  std::unordered_map<std::string, CancellationToken> in_flight;
  std::unordered_map<std::string, std::shared_ptr<Pending>> pending;
  {
    std::lock_guard lock(mutex_);
    if (closed_) return;
    closed_ = true;
    in_flight.swap(in_flight_);
    pending.swap(pending_);
    general_.reset();
  }
  for (auto& [k, token] : in_flight) token.cancel();
  for (auto& [k, p] : pending) {
    std::lock_guard lock(p->mutex);
    p->error = RpcError{error_code::kConnectionClosed, "session closed", std::nullopt};
    p->done = true;
    p->cv.notify_all();
  }
}

// ================================================================ request context
RequestContext::RequestContext(Server* server, std::shared_ptr<Session> session, const Origin& origin,
                               const Message& request, std::string protocol_version, CancellationToken cancel)
    : server_(server),
      session_(std::move(session)),
      origin_(origin),
      request_(request),
      protocol_version_(std::move(protocol_version)),
      cancel_(std::move(cancel)) {
  if (request_.params.is_object()) {
    if (auto it = request_.params.find("_meta"); it != request_.params.end() && it->is_object()) meta_ = *it;
  }
  if (!meta_.is_object()) meta_ = json::object();
}

std::optional<std::string> RequestContext::header(std::string_view name) const {
  return net::find_header(origin_.headers, name);
}

bool RequestContext::modern() const {
  return is_modern_version(protocol_version_);
}

json RequestContext::client_capabilities() const {
  if (modern()) {
    auto it = meta_.find(meta_key::kClientCapabilities);
    return it != meta_.end() && it->is_object() ? *it : json::object();
  }
  return session_ ? session_->client_capabilities() : json::object();
}

void RequestContext::notify(std::string_view method, const json& params) {
  if (cancel_.cancelled() || !origin_.related) return;
  origin_.related->send(make_notification(method, params));
}

void RequestContext::progress(double progress, std::optional<double> total, std::string message) {
  auto it = meta_.find("progressToken");
  if (it == meta_.end() || !(it->is_string() || it->is_number_integer())) return;
  json params = {{"progressToken", *it}, {"progress", progress}};
  if (total) params["total"] = *total;
  if (!message.empty()) params["message"] = std::move(message);
  notify("notifications/progress", params);
}

void RequestContext::log(LogLevel level, json data, std::string logger) {
  LogLevel threshold = LogLevel::kDebug;
  if (modern()) {
    // Modern: only when this request asked for logs, at its level.
    auto it = meta_.find(meta_key::kLogLevel);
    if (it == meta_.end() || !it->is_string()) return;
    auto parsed = parse_log_level(it->get<std::string>());
    if (!parsed) return;
    threshold = *parsed;
  } else if (session_) {
    threshold = session_->log_level();
  }
  if (level < threshold) return;
  json params = {{"level", log_level_name(level)}, {"data", std::move(data)}};
  if (!logger.empty()) params["logger"] = std::move(logger);
  notify("notifications/message", params);
}

void RequestContext::close_stream() {
  if (origin_.close_stream) origin_.close_stream();
}

namespace {

const char* capability_for(std::string_view method) {
  if (method == "sampling/createMessage") return "sampling";
  if (method == "elicitation/create") return "elicitation";
  if (method == "roots/list") return "roots";
  return nullptr;
}

}  // namespace

larder::Result<json> RequestContext::request_client(std::string_view method, const json& params,
                                                    std::chrono::milliseconds timeout) {
  if (const char* cap = capability_for(method)) {
    json caps = client_capabilities();
    if (!caps.contains(cap)) {
      if (modern()) throw MissingCapabilitySignal{cap, std::string(method)};
      return larder::make_error("missing_capability", "the client did not declare the '" + std::string(cap) +
                                                          "' capability needed for " + std::string(method));
    }
  }
  if (modern()) {
    // MRTR: answers arrive as inputResponses on a retry of this request, earlier rounds'
    // answers travel in the sealed requestState.
    const std::string key = "mcp-input-" + std::to_string(client_request_index_++);
    auto rs = request_.params.find("requestState");
    if (rs != request_.params.end() && !rs->is_string()) throw RequestStateError{};
    json known =
        server_->open_request_state(rs == request_.params.end() ? std::string() : rs->get<std::string>());
    if (auto r = request_.params.find("inputResponses"); r != request_.params.end() && r->is_object()) {
      for (auto& [k, v] : r->items()) {
        if (k.rfind("mcp-input-", 0) == 0) known[k] = v;
      }
    }
    if (auto it = known.find(key); it != known.end()) return *it;
    throw InputRequiredSignal{json{{key, {{"method", method}, {"params", params}}}}, known};
  }
  if (!session_)
    return larder::make_error("mcp.no_session", "no session to send " + std::string(method) + " on");
  if (!origin_.related) return session_->request(method, params, timeout);
  return session_->request_via(*origin_.related, method, params, timeout, &cancel_);
}

// ================================================================ server
Server::Server(ServerOptions options) : options_(std::move(options)), state_key_(random_id(32)) {}

Server::~Server() {
  for (auto& s : sessions()) s->close();
  if (pool_) pool_->shutdown();
}

ThreadPool& Server::pool() {
  std::call_once(pool_once_, [this] { pool_ = std::make_unique<ThreadPool>(options_.handler_threads); });
  return *pool_;
}

bool Server::version_enabled(std::string_view v) const {
  const auto& list = options_.versions.empty() ? supported_versions() : options_.versions;
  return std::find(list.begin(), list.end(), v) != list.end();
}

std::vector<std::string> Server::enabled_versions() const {
  std::vector<std::string> out;
  for (const auto& v : supported_versions()) {
    if (version_enabled(v)) out.push_back(v);
  }
  return out;
}

std::string Server::seal_request_state(const json& state) const {
  const std::string payload = base64_encode(state.dump());
  return payload + "." + base64_encode(hmac_sha256(state_key_, payload));
}

json Server::open_request_state(const std::string& sealed) const {
  if (sealed.empty()) return json::object();
  auto dot = sealed.rfind('.');
  if (dot == std::string::npos) throw RequestStateError{};
  const std::string payload = sealed.substr(0, dot);
  auto mac = base64_decode(sealed.substr(dot + 1));
  if (!mac || !constant_time_equal(*mac, hmac_sha256(state_key_, payload))) throw RequestStateError{};
  auto raw = base64_decode(payload);
  if (!raw) throw RequestStateError{};
  auto state = larder::parse_json_bounded(*raw, options_.max_json_depth);
  if (!state || !state->is_object()) throw RequestStateError{};
  return std::move(*state);
}

json Server::capabilities() const {
  std::shared_lock lock(registry_mutex_);
  json caps = json::object();
  if (options_.advertise_tools || !tools_.empty()) caps["tools"] = {{"listChanged", true}};
  if (options_.advertise_resources || !resources_.empty() || !templates_.empty()) {
    caps["resources"] = {{"subscribe", true}, {"listChanged", true}};
  }
  if (options_.advertise_prompts || !prompts_.empty()) caps["prompts"] = {{"listChanged", true}};
  if (options_.advertise_logging) caps["logging"] = json::object();
  if (options_.advertise_completions || completion_) caps["completions"] = json::object();
  return caps;
}

// ---------------------------------------------------------------- registries
larder::Result<void> Server::add_tool(Tool tool, ToolHandler handler) {
  if (tool.name.empty()) return larder::make_error("mcp.tool", "a tool needs a name");
  if (!handler) return larder::make_error("mcp.tool", "tool '" + tool.name + "' needs a handler");
  if (!tool.input_schema.is_object())
    return larder::make_error("mcp.tool", "tool '" + tool.name + "': inputSchema must be an object");
  ToolEntry entry{tool, std::move(handler), std::nullopt, std::nullopt};
  auto input = JsonSchema::compile(tool.input_schema);
  if (!input) return larder::make_error("mcp.tool", "tool '" + tool.name + "': " + input.error().message);
  entry.input = std::move(*input);
  if (tool.output_schema) {
    auto output = JsonSchema::compile(*tool.output_schema);
    if (!output)
      return larder::make_error("mcp.tool",
                                "tool '" + tool.name + "' outputSchema: " + output.error().message);
    entry.output = std::move(*output);
  }
  {
    std::unique_lock lock(registry_mutex_);
    for (const auto& t : tools_) {
      if (t.tool.name == tool.name)
        return larder::make_error("mcp.tool", "tool '" + tool.name + "' is already registered");
    }
    tools_.push_back(std::move(entry));
  }
  list_changed("notifications/tools/list_changed");
  return {};
}

bool Server::remove_tool(const std::string& name) {
  {
    std::unique_lock lock(registry_mutex_);
    auto it =
        std::find_if(tools_.begin(), tools_.end(), [&](const ToolEntry& e) { return e.tool.name == name; });
    if (it == tools_.end()) return false;
    tools_.erase(it);
  }
  list_changed("notifications/tools/list_changed");
  return true;
}

std::vector<Tool> Server::tools() const {
  std::shared_lock lock(registry_mutex_);
  std::vector<Tool> out;
  for (const auto& e : tools_) out.push_back(e.tool);
  return out;
}

std::vector<Prompt> Server::prompts() const {
  std::shared_lock lock(registry_mutex_);
  std::vector<Prompt> out;
  for (const auto& e : prompts_) out.push_back(e.prompt);
  return out;
}

larder::Result<void> Server::add_resource(Resource resource, ResourceReader reader) {
  if (resource.uri.empty() || resource.name.empty())
    return larder::make_error("mcp.resource", "a resource needs a uri and a name");
  if (!reader) return larder::make_error("mcp.resource", "resource '" + resource.uri + "' needs a reader");
  {
    std::unique_lock lock(registry_mutex_);
    for (const auto& r : resources_) {
      if (r.resource.uri == resource.uri)
        return larder::make_error("mcp.resource", "resource '" + resource.uri + "' is already registered");
    }
    resources_.push_back({std::move(resource), std::move(reader)});
  }
  list_changed("notifications/resources/list_changed");
  return {};
}

bool Server::remove_resource(const std::string& uri) {
  {
    std::unique_lock lock(registry_mutex_);
    auto it = std::find_if(resources_.begin(), resources_.end(),
                           [&](const ResourceEntry& e) { return e.resource.uri == uri; });
    if (it == resources_.end()) return false;
    resources_.erase(it);
  }
  list_changed("notifications/resources/list_changed");
  return true;
}

larder::Result<void> Server::add_resource_template(ResourceTemplate resource_template,
                                                   TemplateReader reader) {
  if (resource_template.name.empty())
    return larder::make_error("mcp.resource", "a resource template needs a name");
  if (!reader)
    return larder::make_error("mcp.resource",
                              "template '" + resource_template.uri_template + "' needs a reader");
  auto parsed = UriTemplate::parse(resource_template.uri_template);
  if (!parsed) return larder::make_error("mcp.resource", parsed.error().message);
  {
    std::unique_lock lock(registry_mutex_);
    templates_.push_back({std::move(resource_template), std::move(*parsed), std::move(reader)});
  }
  list_changed("notifications/resources/list_changed");
  return {};
}

larder::Result<void> Server::add_prompt(Prompt prompt, PromptHandler handler) {
  if (prompt.name.empty()) return larder::make_error("mcp.prompt", "a prompt needs a name");
  if (!handler) return larder::make_error("mcp.prompt", "prompt '" + prompt.name + "' needs a handler");
  {
    std::unique_lock lock(registry_mutex_);
    for (const auto& p : prompts_) {
      if (p.prompt.name == prompt.name)
        return larder::make_error("mcp.prompt", "prompt '" + prompt.name + "' is already registered");
    }
    prompts_.push_back({std::move(prompt), std::move(handler)});
  }
  list_changed("notifications/prompts/list_changed");
  return {};
}

bool Server::remove_prompt(const std::string& name) {
  {
    std::unique_lock lock(registry_mutex_);
    auto it = std::find_if(prompts_.begin(), prompts_.end(),
                           [&](const PromptEntry& e) { return e.prompt.name == name; });
    if (it == prompts_.end()) return false;
    prompts_.erase(it);
  }
  list_changed("notifications/prompts/list_changed");
  return true;
}

void Server::set_completion_handler(CompletionHandler handler) {
  std::unique_lock lock(registry_mutex_);
  completion_ = std::move(handler);
}

void Server::list_changed(std::string_view method) {
  broadcast(method, json::object());
  if (options_.on_list_changed) options_.on_list_changed(method);
  fire_change(method, json::object());
}

std::size_t Server::add_change_listener(ChangeListener listener) {
  std::lock_guard lock(listeners_mutex_);
  listeners_[++next_listener_] = std::move(listener);
  return next_listener_;
}

void Server::remove_change_listener(std::size_t id) {
  std::lock_guard lock(listeners_mutex_);
  listeners_.erase(id);
}

void Server::fire_change(std::string_view method, const json& params) {
  std::vector<ChangeListener> copy;
  {
    std::lock_guard lock(listeners_mutex_);
    for (auto& [id, l] : listeners_) copy.push_back(l);
  }
  for (auto& l : copy) l(method, params);
}

void Server::broadcast(std::string_view method, const json& params) {
  for (auto& s : sessions()) {
    if (s->initialized()) s->notify(method, params);
  }
}

void Server::notify_resource_updated(const std::string& uri) {
  for (auto& s : sessions()) {
    if (s->subscribed(uri)) s->notify("notifications/resources/updated", json{{"uri", uri}});
  }
  if (options_.on_resource_updated) options_.on_resource_updated(uri);
  fire_change("notifications/resources/updated", json{{"uri", uri}});
}

// ---------------------------------------------------------------- sessions
std::shared_ptr<Session> Server::create_session(std::shared_ptr<const net::PeerIdentity> peer) {
  auto session = std::make_shared<Session>(this, random_id(16), std::move(peer));
  std::lock_guard lock(sessions_mutex_);
  sessions_[session->id()] = session;
  return session;
}

std::shared_ptr<Session> Server::find_session(const std::string& id) const {
  std::lock_guard lock(sessions_mutex_);
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : it->second;
}

void Server::remove_session(const std::string& id) {
  std::shared_ptr<Session> s;
  {
    std::lock_guard lock(sessions_mutex_);
    auto it = sessions_.find(id);
    if (it == sessions_.end()) return;
    s = it->second;
    sessions_.erase(it);
  }
  s->close();
}

std::vector<std::shared_ptr<Session>> Server::sessions() const {
  std::lock_guard lock(sessions_mutex_);
  std::vector<std::shared_ptr<Session>> out;
  out.reserve(sessions_.size());
  for (auto& [id, s] : sessions_) out.push_back(s);
  return out;
}

// ---------------------------------------------------------------- dispatch
bool Server::is_modern_request(const Message& request) {
  return !declared_version(request).empty();
}

std::string Server::declared_version(const Message& request) {
  if (!request.params.is_object()) return {};
  auto meta = request.params.find("_meta");
  if (meta == request.params.end() || !meta->is_object()) return {};
  auto v = meta->find(meta_key::kProtocolVersion);
  if (v == meta->end() || !v->is_string()) return {};
  return v->get<std::string>();
}

std::optional<json> Server::refuse_batch(const std::shared_ptr<Session>& session, const json& batch,
                                         const Origin& origin) {
  if (!batch.is_array()) return std::nullopt;
  std::optional<RpcError> e;
  if (!session || session->protocol_version() != kVersion2025_03_26) {
    e = RpcError::invalid_request("JSON-RPC batches are only allowed in protocol revision 2025-03-26");
  } else if (batch.empty()) {
    e = RpcError::invalid_request("empty batch");
  } else if (batch.size() > options_.max_batch_size) {
    e = RpcError::invalid_request("a batch of " + std::to_string(batch.size()) +
                                  " messages exceeds the limit of " +
                                  std::to_string(options_.max_batch_size));
  }
  if (!e) return std::nullopt;
  report_refused(origin, *e);
  return make_error_response(nullptr, *e);
}

std::optional<json> Server::handle(const std::shared_ptr<Session>& session, const json& value,
                                   const Origin& origin) {
  if (value.is_array()) {
    if (auto refused = refuse_batch(session, value, origin)) return refused;
    json responses = json::array();
    for (const auto& item : value) {
      if (item.is_array()) {
        responses.push_back(make_error_response(nullptr, RpcError::invalid_request("nested batch")));
        continue;
      }
      Origin item_origin = origin;
      item_origin.cancellation = CancellationToken();  // each request cancels on its own
      if (auto r = handle(session, item, item_origin)) responses.push_back(std::move(*r));
    }
    if (responses.empty()) return std::nullopt;
    return responses;
  }
  auto classified = classify(value);
  if (auto* failure = std::get_if<ClassifyFailure>(&classified)) {
    report_refused(origin, failure->error);
    return make_error_response(failure->recovered_id, failure->error);
  }
  const Message& m = std::get<Message>(classified);
  switch (m.kind) {
    case MessageKind::kRequest: {
      json r = handle_request(session, m, origin);
      if (r.is_null()) return std::nullopt;
      return r;
    }
    case MessageKind::kNotification:
      handle_notification(session, m);
      return std::nullopt;
    case MessageKind::kResult:
    case MessageKind::kError:
      if (session && !session->deliver_response(m)) {
        spdlog::debug("mcp: response to unknown request {} ignored", m.id.dump());
      }
      return std::nullopt;
  }
  return std::nullopt;
}

void Server::handle_notification(const std::shared_ptr<Session>& session, const Message& m) {
  if (const Method* row = builtin_method(m.method); row && row->kind == Method::kNotification) {
    return row->notification(*this, session, m);
  }
  if (options_.on_notification) options_.on_notification(session, m);
}

namespace {

// 64 random bits as 16 hex digits: unique enough to find one request among a process's.
std::string new_correlation_id() {
  thread_local std::mt19937_64 rng{
      std::random_device{}() ^
      static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count())};
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

bool lower_hex(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(),
                                   [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

std::string trace_id_of(std::string_view tp) {
  // version "00": 00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>, ids not all zero.
  if (tp.size() != 55 || tp.substr(0, 3) != "00-" || tp[35] != '-' || tp[52] != '-') return "";
  const auto trace = tp.substr(3, 32), parent = tp.substr(36, 16), flags = tp.substr(53, 2);
  if (!lower_hex(trace) || !lower_hex(parent) || !lower_hex(flags)) return "";
  if (trace.find_first_not_of('0') == std::string_view::npos) return "";
  if (parent.find_first_not_of('0') == std::string_view::npos) return "";
  return std::string(trace);
}

std::string RequestContext::traceparent() const {
  if (auto h = header("traceparent"); h && !trace_id_of(*h).empty()) return *h;
  if (auto it = meta_.find("traceparent"); it != meta_.end() && it->is_string()) {
    const auto& v = it->get_ref<const std::string&>();
    if (!trace_id_of(v).empty()) return v;
  }
  return "";
}

json Server::handle_request(const std::shared_ptr<Session>& session, const Message& request,
                            const Origin& origin) {
  bool recorded = false;
  const auto started = std::chrono::steady_clock::now();
  const std::string correlation = new_correlation_id();
  std::string traceparent;
  json response = answer_request(session, request, origin, correlation, traceparent, recorded);
  const bool a_call =
      request.method == "tools/call" || request.method == "resources/read" || request.method == "prompts/get";
  if (a_call && !options_.correlation_meta_key.empty() && response.is_object()) {
    if (auto result = response.find("result"); result != response.end() && result->is_object()) {
      json& meta = (*result)["_meta"];
      if (meta.is_null()) meta = json::object();
      if (meta.is_object()) meta[options_.correlation_meta_key] = correlation;
    }
  }
  if (!options_.on_request) return response;
  RequestRecord record;
  record.correlation_id = correlation;
  record.traceparent = std::move(traceparent);
  record.duration = std::chrono::steady_clock::now() - started;
  record.protocol_version = is_modern_request(request) ? declared_version(request)
                            : session                  ? session->protocol_version()
                                                       : std::string();
  record.peer = origin.peer;
  record.transport = origin.transport;
  record.method = request.method;
  if (request.params.is_object()) {
    const char* key = request.method == "resources/read" ? "uri" : "name";
    if (auto it = request.params.find(key); it != request.params.end() && it->is_string())
      record.name = it->get<std::string>();
  }
  record.recorded_by_handler = recorded;
  if (response.is_null()) {
    record.error_message = "cancelled by the client";
  } else if (auto e = response.find("error"); e != response.end() && e->is_object()) {
    record.error_code = e->value("code", 0);
    record.error_message = e->value("message", "");
  } else if (auto result = response.find("result");
             result != response.end() && result->is_object() && result->value("isError", false)) {
    record.error_result = true;
    for (const auto& item : result->value("content", json::array())) {
      if (item.is_object() && item.value("type", "") == "text")
        record.error_message += item.value("text", "");
    }
  }
  if (!options_.on_request(record) && !record.error_code && !response.is_null()) {
    return make_error_response(
        request.id, RpcError{error_code::kInternalError,
                             "the audit log is unavailable; the request was not carried out", std::nullopt});
  }
  return response;
}

void Server::report_refused(const Origin& origin, const RpcError& error) {
  if (!options_.on_request) return;
  RequestRecord record;
  record.peer = origin.peer;
  record.transport = origin.transport;
  record.error_code = error.code;
  record.error_message = error.message;
  options_.on_request(record);
}

json Server::answer_request(const std::shared_ptr<Session>& session, const Message& request,
                            const Origin& origin, const std::string& correlation_id, std::string& traceparent,
                            bool& recorded) {
  std::string version;
  std::shared_ptr<Session> effective;
  if (is_modern_request(request)) {
    version = declared_version(request);
    const json& meta = request.params["_meta"];
    if (!meta.contains(meta_key::kClientCapabilities) ||
        !meta[std::string(meta_key::kClientCapabilities)].is_object()) {
      return make_error_response(
          request.id, RpcError::invalid_params("_meta[\"" + std::string(meta_key::kClientCapabilities) +
                                               "\"] is required (an object)"));
    }
    if (!is_modern_version(version) || !version_enabled(version)) {
      RpcError e{error_code::kUnsupportedProtocolVersion, "Unsupported protocol version",
                 json{{"supported", enabled_versions()}, {"requested", version}}};
      return make_error_response(request.id, e);
    }
  } else {
    if (request.method == "initialize") {
      if (!session)
        return make_error_response(request.id,
                                   RpcError::invalid_request("initialize needs a transport session"));
      auto r = on_initialize(session, request);
      if (!r) return make_error_response(request.id, to_rpc_error(r.error(), ""));
      return make_result(request.id, std::move(*r));
    }
    if (!session || !session->initialized()) {
      if (request.method == "ping") return make_result(request.id, json::object());
      if (request.method == "server/discover") {
        return make_error_response(request.id, RpcError{error_code::kInvalidRequest,
                                                        "server/discover needs _meta[\"" +
                                                            std::string(meta_key::kProtocolVersion) + "\"]",
                                                        json{{"supported", enabled_versions()}}});
      }
      return make_error_response(
          request.id, RpcError::invalid_request("the session is not initialized; send initialize first"));
    }
    version = session->protocol_version();
    effective = session;
  }

  CancellationToken cancel = origin.cancellation;
  const std::string key = id_key(request.id);
  if (effective) {
    std::lock_guard lock(effective->mutex_);
    effective->in_flight_[key] = cancel;
    effective->last_activity_ = std::chrono::steady_clock::now();
  }
  RequestContext ctx(this, effective, origin, request, version, cancel);
  ctx.correlation_id_ = correlation_id;
  traceparent = ctx.traceparent();
  json response = dispatch(ctx);
  recorded = ctx.recorded();
  if (effective) {
    std::lock_guard lock(effective->mutex_);
    effective->in_flight_.erase(key);
  }
  if (cancel.cancelled()) return nullptr;  // a cancelled request gets no response
  return response;
}

json Server::dispatch(RequestContext& ctx) {
  const Message& request = ctx.request_;
  const std::string& version = ctx.protocol_version_;
  const std::string& method = request.method;
  const bool modern = is_modern_version(version);
  const Method* row = builtin_method(method);
  const bool builtin = row && row->serves(modern, capabilities());
  HandlerResult result = json::object();
  try {
    if (builtin) {
      result = row->request(*this, ctx);
    } else if (auto custom = find_method(method)) {
      result = custom(ctx);
    } else {
      return make_error_response(request.id, RpcError::method_not_found(method));
    }
  } catch (const InputRequiredSignal& signal) {
    json ir = {{"resultType", "input_required"}, {"inputRequests", signal.input_requests}};
    if (!signal.state.empty()) ir["requestState"] = seal_request_state(signal.state);
    result = std::move(ir);
  } catch (const RequestStateError&) {
    return make_error_response(request.id,
                               RpcError::invalid_params("requestState is invalid or was tampered with"));
  } catch (const MissingCapabilitySignal& missing) {
    return make_error_response(
        request.id, RpcError{error_code::kMissingRequiredClientCapability,
                             "Missing required client capability: " + missing.capability + " (needed for " +
                                 missing.method + ")",
                             json{{"requiredCapabilities", {{missing.capability, json::object()}}}}});
  } catch (const json::type_error& e) {
    // A field of the wrong JSON type in the request (e.g. a number where a string belongs).
    return make_error_response(
        request.id,
        RpcError::invalid_params(std::string("a parameter has the wrong type (") + e.what() + ")"));
  } catch (const std::exception& e) {
    spdlog::warn("mcp: {} failed: {}", method, e.what());
    return make_error_response(request.id, RpcError::internal(e.what()));
  }
  if (const RpcError* own = result.rpc_error()) return make_error_response(request.id, *own);
  if (const HandlerError* e = result.error())
    return make_error_response(request.id, to_rpc_error(*e, version));
  json out = std::move(*result);
  if (modern && out.is_object()) {
    if (!out.contains("resultType")) out["resultType"] = "complete";
    if (out["resultType"] == "complete") {
      if (row && row->cacheable) {
        if (!out.contains("ttlMs")) out["ttlMs"] = options_.cache_ttl_ms;
        if (!out.contains("cacheScope")) out["cacheScope"] = options_.cache_scope;
      }
    }
    json& meta = out["_meta"];
    if (!meta.is_object()) meta = json::object();
    meta[meta_key::kServerInfo] = {{"name", options_.info.name}, {"version", options_.info.version}};
  }
  return make_result(request.id, std::move(out));
}

MethodHandler Server::find_method(const std::string& method) const {
  std::shared_lock lock(registry_mutex_);
  auto it = custom_methods_.find(method);
  return it == custom_methods_.end() ? MethodHandler() : it->second;
}

bool Server::knows_modern_method(const std::string& method) const {
  if (const Method* row = builtin_method(method);
      row && row->kind == Method::kRequest && row->exists_in(true))
    return true;
  return static_cast<bool>(find_method(method));
}

void Server::add_method(std::string method, MethodHandler handler) {
  std::unique_lock lock(registry_mutex_);
  custom_methods_[std::move(method)] = std::move(handler);
}

}  // namespace larder::mcp
