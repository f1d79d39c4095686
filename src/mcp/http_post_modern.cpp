// Streamable HTTP POST in the stateless revision (2026-07-28): no session; the
// MCP-Protocol-Version, Mcp-Method, Mcp-Name and Mcp-Param-* headers are checked against the
// body, subscriptions/listen opens a long-lived stream, and the handler runs here, on the net
// worker holding the request.
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <vector>

#include "mcp/encoding.h"
#include "mcp/http_internal.h"
#include "mcp/http_streams.h"

namespace larder::mcp {

namespace {

// Canonical, padded, standard-alphabet Base64 only (SEP-2243 rejects anything else).
std::optional<std::string> strict_base64(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/' ||
              (c == '=' && i + 2 >= text.size());
    if (!ok) return std::nullopt;
  }
  auto decoded = base64_decode(text);
  if (!decoded || base64_encode(*decoded) != text) return std::nullopt;
  return decoded;
}

// Decodes the `=?base64?...?=` sentinel form of Mcp-Name / Mcp-Param-* values.
std::optional<std::string> decode_header_value(const std::string& raw) {
  const std::string v = trim(raw);
  if (v.size() >= 11 && v.rfind("=?base64?", 0) == 0 && v.compare(v.size() - 2, 2, "?=") == 0) {
    return strict_base64(std::string_view(v).substr(9, v.size() - 11));
  }
  for (unsigned char c : v) {
    if ((c < 0x20 && c != '\t') || c > 0x7e) return std::nullopt;
  }
  return v;
}

// HTTP status for a stateless-era JSON-RPC answer.
int modern_status(const json& response) {
  if (!response.is_object() || !response.contains("error")) return 200;
  const int code = response["error"].value("code", 0);
  if (code == error_code::kMethodNotFound) return 404;
  if (code == error_code::kHeaderMismatch || code == error_code::kUnsupportedProtocolVersion ||
      code == error_code::kMissingRequiredClientCapability) {
    return 400;
  }
  return 200;
}

}  // namespace

void HttpTransport::Impl::post_modern(const net::HttpRequest& req, const Message& m,
                                      std::shared_ptr<net::Responder> responder, const Call& call) {
  auto mismatch = [&](std::string why) {
    responder->respond(rpc_error_response(400, error_code::kHeaderMismatch, "Header mismatch: " + why, m.id));
  };
  auto invalid_meta = [&](std::string why) {
    responder->respond(rpc_error_response(400, error_code::kInvalidParams, "Invalid params: " + why, m.id));
  };
  const json* meta = nullptr;
  if (m.params.is_object()) {
    if (auto it = m.params.find("_meta"); it != m.params.end() && it->is_object()) meta = &*it;
  }
  if (!meta) return invalid_meta("params._meta is required in protocol revision 2026-07-28");
  auto mv = meta->find(meta_key::kProtocolVersion);
  if (mv == meta->end() || !mv->is_string())
    return invalid_meta("_meta[\"" + std::string(meta_key::kProtocolVersion) + "\"] is required");
  auto mc = meta->find(meta_key::kClientCapabilities);
  if (mc == meta->end() || !mc->is_object()) {
    return invalid_meta("_meta[\"" + std::string(meta_key::kClientCapabilities) +
                        "\"] is required (an object)");
  }
  const std::string version = mv->get<std::string>();
  auto pv = req.header("MCP-Protocol-Version");
  if (!pv) return mismatch("the MCP-Protocol-Version header is required");
  if (trim(*pv) != version)
    return mismatch("MCP-Protocol-Version header '" + trim(*pv) + "' does not match _meta version '" +
                    version + "'");
  if (!server.version_enabled(version) || !is_modern_version(version)) {
    return responder->respond(
        rpc_error_response(400, error_code::kUnsupportedProtocolVersion, "Unsupported protocol version", m.id,
                           json{{"supported", server.enabled_versions()}, {"requested", version}}));
  }
  auto method = req.header("Mcp-Method");
  if (!method) return mismatch("the Mcp-Method header is required");
  if (trim(*method) != m.method)
    return mismatch("Mcp-Method header '" + trim(*method) + "' does not match body method '" + m.method +
                    "'");
  if (m.method == "tools/call" || m.method == "resources/read" || m.method == "prompts/get") {
    const char* field = m.method == "resources/read" ? "uri" : "name";
    auto name = req.header("Mcp-Name");
    if (!name) return mismatch("the Mcp-Name header is required for " + m.method);
    auto decoded = decode_header_value(*name);
    if (!decoded) return mismatch("the Mcp-Name header value is malformed");
    const json* body_value = m.params.is_object() && m.params.contains(field) ? &m.params[field] : nullptr;
    if (!body_value || !body_value->is_string() || body_value->get<std::string>() != *decoded) {
      return mismatch("Mcp-Name header value '" + *decoded + "' does not match body " + field);
    }
    if (m.method == "tools/call") {
      if (auto why = check_param_headers(req, m)) return mismatch(*why);
    }
  }
  if (m.method == "subscriptions/listen") return listen(req, m, std::move(responder));
  if (!server.knows_modern_method(m.method)) {
    return responder->respond(
        rpc_error_response(404, error_code::kMethodNotFound, "Method not found: " + m.method, m.id));
  }
  CancellationToken cancel;
  const bool stream = options.always_stream;
  auto channel =
      std::make_shared<RequestChannel>(responder, nullptr, HeaderList{}, options, /*resumable=*/false,
                                       /*priming=*/false, cancel);
  if (stream) channel->start_stream();
  Origin origin = make_origin(req, channel, "streamable-http");
  origin.cancellation = cancel;
  origin.credentials_challenge = channel->challenge();
  // The handler runs here, on the net worker that holds the request (one hop), or queued
  // behind the handlers already running when all of ServerOptions::handler_threads are.
  handlers.run([self = shared_from_this(), m, origin = std::move(origin), channel, call] {
    json r = self->server.handle_request(nullptr, m, origin);
    if (call) call->release();
    const int status = modern_status(r);
    channel->finish(r.is_null() ? std::nullopt : std::optional<json>(std::move(r)), status);
  });
}

// subscriptions/listen (2026-07-28): a long-lived SSE response carrying the change
// notifications the client opted in to, each tagged with the subscription id.
void HttpTransport::Impl::listen(const net::HttpRequest&, const Message& m,
                                 std::shared_ptr<net::Responder> responder) {
  json filter = m.params.value("notifications", json());
  if (!filter.is_object()) {
    return responder->respond(
        rpc_error_response(400, error_code::kInvalidParams,
                           "Invalid params: params.notifications (an object) is required", m.id));
  }
  json caps = server.capabilities();
  json honored = json::object();
  for (const char* k : {"toolsListChanged", "promptsListChanged", "resourcesListChanged"}) {
    const char* cap = k[0] == 't' ? "tools" : k[0] == 'p' ? "prompts" : "resources";
    if (filter.contains(k) && filter[k].is_boolean() && filter[k].get<bool>() && caps.contains(cap))
      honored[k] = true;
  }
  std::vector<std::string> uris;
  if (auto r = filter.find("resourceSubscriptions");
      r != filter.end() && r->is_array() && caps.contains("resources")) {
    for (const auto& u : *r) {
      if (u.is_string()) uris.push_back(u.get<std::string>());
    }
    honored["resourceSubscriptions"] = uris;
  }
  auto stream = responder->start_stream(200, kSseHeaders);
  const json subscription_id = m.id;
  auto tagged = [subscription_id](std::string_view method, json params) {
    if (!params.is_object()) params = json::object();
    params["_meta"][std::string(meta_key::kSubscriptionId)] = subscription_id;
    return format_sse_event(
        "", "message",
        make_notification(method, params).dump(-1, ' ', false, json::error_handler_t::replace));
  };
  stream->write(tagged("notifications/subscriptions/acknowledged", json{{"notifications", honored}}));
  auto id = server.add_change_listener([stream, honored, uris, tagged](std::string_view method,
                                                                       const json& params) {
    bool wanted =
        (method == "notifications/tools/list_changed" && honored.value("toolsListChanged", false)) ||
        (method == "notifications/prompts/list_changed" && honored.value("promptsListChanged", false)) ||
        (method == "notifications/resources/list_changed" && honored.value("resourcesListChanged", false));
    if (method == "notifications/resources/updated") {
      const std::string uri = params.value("uri", "");
      wanted = std::find(uris.begin(), uris.end(), uri) != uris.end();
    }
    if (wanted) stream->write(tagged(method, params));
  });
  std::weak_ptr<Impl> weak = shared_from_this();
  stream->on_close([weak, id] {
    if (auto self = weak.lock()) self->server.remove_change_listener(id);
  });
}

// Mcp-Param-{Name} headers must match the arguments a tool's schema marks x-mcp-header.
std::optional<std::string> HttpTransport::Impl::check_param_headers(const net::HttpRequest& req,
                                                                    const Message& m) {
  const std::string tool_name =
      m.params.contains("name") && m.params["name"].is_string() ? m.params["name"].get<std::string>() : "";
  json schema;
  for (const auto& t : server.tools()) {
    if (t.name == tool_name) schema = t.input_schema;
  }
  if (!schema.is_object()) return std::nullopt;
  json args = m.params.contains("arguments") && m.params["arguments"].is_object() ? m.params["arguments"]
                                                                                  : json::object();
  // Walk properties chains only (x-mcp-header is valid only there).
  std::vector<std::pair<std::vector<std::string>, const json*>> stack{{{}, &schema}};
  while (!stack.empty()) {
    auto [path, node] = stack.back();
    stack.pop_back();
    auto props = node->find("properties");
    if (props == node->end() || !props->is_object()) continue;
    for (auto& [key, sub] : props->items()) {
      if (!sub.is_object()) continue;
      std::vector<std::string> sub_path = path;
      sub_path.push_back(key);
      if (auto h = sub.find("x-mcp-header"); h != sub.end() && h->is_string()) {
        const json* value = &args;
        for (const auto& p : sub_path) {
          if (!value->is_object() || !value->contains(p)) {
            value = nullptr;
            break;
          }
          value = &(*value)[p];
        }
        const std::string header_name = "Mcp-Param-" + h->get<std::string>();
        auto header = req.header(header_name);
        if (!value || value->is_null()) {
          continue;  // the header is not expected; a stray one is ignored
        }
        if (!header) return header_name + " header is required (the argument is present in the body)";
        auto decoded = decode_header_value(*header);
        if (!decoded) return header_name + " header value contains invalid characters";
        std::string expected;
        if (value->is_string()) {
          expected = value->get<std::string>();
        } else if (value->is_boolean()) {
          expected = value->get<bool>() ? "true" : "false";
        } else if (value->is_number()) {
          // Compare numerically: "42" and 42.0 are equal.
          char* end = nullptr;
          double h_num = std::strtod(decoded->c_str(), &end);
          if (end == decoded->c_str() || *end != '\0' || h_num != value->get<double>()) {
            return header_name + " header value '" + *decoded + "' does not match the body";
          }
          continue;
        } else {
          return header_name + " designates a non-primitive argument";
        }
        if (*decoded != expected)
          return header_name + " header value '" + *decoded + "' does not match the body";
      }
      stack.push_back({sub_path, &sub});
    }
  }
  return std::nullopt;
}

}  // namespace larder::mcp
