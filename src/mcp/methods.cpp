// The built-in MCP methods: the method table (one row per method, see method_table.h) and
// the handlers of its rows — lifecycle, discovery, tools, resources, prompts, completion,
// logging and subscriptions.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "mcp/encoding.h"
#include "mcp/method_table.h"
#include "mcp/server.h"

namespace larder::mcp {

// ---------------------------------------------------------------- method table
const Server::Method* Server::builtin_method(std::string_view name) {
  using M = Method;
  constexpr bool kCached = true;
  static const M kMethods[] = {
      {"ping", "", M::kLegacy, M::kRequest,
       [](Server&, RequestContext&) -> HandlerResult { return json::object(); }},
      {"server/discover", "", M::kModern, M::kRequest,
       [](Server& s, RequestContext&) -> HandlerResult { return s.on_discover(); }, nullptr, kCached},
      {"tools/list", "tools", M::kEveryEra, M::kRequest,
       [](Server& s, RequestContext& c) -> HandlerResult {
         return s.on_tools_list(c.request_, c.protocol_version_);
       },
       nullptr, kCached},
      {"tools/call", "tools", M::kEveryEra, M::kRequest,
       [](Server& s, RequestContext& c) -> HandlerResult { return s.on_tools_call(c); }},
      {"resources/list", "resources", M::kEveryEra, M::kRequest,
       [](Server& s, RequestContext& c) -> HandlerResult { return s.on_resources_list(c.request_); }, nullptr,
       kCached},
      {"resources/templates/list", "resources", M::kEveryEra, M::kRequest,
       [](Server& s, RequestContext& c) -> HandlerResult { return s.on_templates_list(c.request_); }, nullptr,
       kCached},
      {"resources/read", "resources", M::kEveryEra, M::kRequest,
       [](Server& s, RequestContext& c) -> HandlerResult { return s.on_resources_read(c); }, nullptr,
       kCached},
      {"resources/subscribe", "resources", M::kLegacy, M::kRequest,
       [](Server& s, RequestContext& c) -> HandlerResult {
         return s.on_subscribe(c.session_, c.request_, true);
       }},
      {"resources/unsubscribe", "resources", M::kLegacy, M::kRequest,
       [](Server& s, RequestContext& c) -> HandlerResult {
         return s.on_subscribe(c.session_, c.request_, false);
       }},
      {"prompts/list", "prompts", M::kEveryEra, M::kRequest,
       [](Server& s, RequestContext& c) -> HandlerResult { return s.on_prompts_list(c.request_); }, nullptr,
       kCached},
      {"prompts/get", "prompts", M::kEveryEra, M::kRequest,
       [](Server& s, RequestContext& c) -> HandlerResult { return s.on_prompts_get(c); }},
      {"completion/complete", "completions", M::kEveryEra, M::kRequest,
       [](Server& s, RequestContext& c) -> HandlerResult { return s.on_complete(c); }},
      {"logging/setLevel", "logging", M::kLegacy, M::kRequest,
       [](Server& s, RequestContext& c) -> HandlerResult { return s.on_set_level(c.session_, c.request_); }},
      {"notifications/initialized", "", M::kEveryEra, M::kNotification, nullptr,
       [](Server&, const std::shared_ptr<Session>& session, const Message&) {
         if (!session) return;
         std::lock_guard lock(session->mutex_);
         session->initialized_ = true;
       }},
      {"notifications/cancelled", "", M::kEveryEra, M::kNotification, nullptr,
       [](Server&, const std::shared_ptr<Session>& session, const Message& m) {
         if (session && m.params.is_object() && m.params.contains("requestId"))
           session->cancel_request(m.params["requestId"]);
       }},
  };
  for (const auto& row : kMethods) {
    if (row.name == name) return &row;
  }
  return nullptr;
}

// ---------------------------------------------------------------- handlers
larder::Result<json> Server::on_initialize(const std::shared_ptr<Session>& session, const Message& request) {
  if (!request.params.is_object()) return larder::make_error("invalid_params", "initialize needs params");
  auto pv = request.params.find("protocolVersion");
  if (pv == request.params.end() || !pv->is_string()) {
    return larder::make_error("invalid_params", "initialize needs params.protocolVersion (a string)");
  }
  std::string requested = pv->get<std::string>();
  std::string chosen;
  if (is_legacy_version(requested) && version_enabled(requested)) {
    chosen = requested;
  } else {
    for (auto it = legacy_versions().rbegin(); it != legacy_versions().rend(); ++it) {
      if (version_enabled(*it)) {
        chosen = *it;
        break;
      }
    }
  }
  if (chosen.empty()) {
    return larder::make_error(
        "invalid_params",
        "this server only serves the stateless revision; supported: " + json(enabled_versions()).dump());
  }
  {
    std::lock_guard lock(session->mutex_);
    if (session->initialize_seen_)
      return larder::make_error("invalid_request", "the session is already initialized");
    session->initialize_seen_ = true;
    session->protocol_version_ = chosen;
    if (auto c = request.params.find("capabilities"); c != request.params.end() && c->is_object())
      session->client_capabilities_ = *c;
    if (auto c = request.params.find("clientInfo"); c != request.params.end() && c->is_object())
      session->client_info_ = *c;
  }
  json info = {{"name", options_.info.name}, {"version", options_.info.version}};
  if (!options_.info.title.empty() && chosen >= kVersion2025_06_18) info["title"] = options_.info.title;
  json result = {{"protocolVersion", chosen}, {"capabilities", capabilities()}, {"serverInfo", info}};
  if (!options_.instructions.empty()) result["instructions"] = options_.instructions;
  if (options_.on_initialized) options_.on_initialized(*session);
  return result;
}

larder::Result<json> Server::on_discover() {
  json caps = capabilities();
  caps.erase("logging");
  if (caps.contains("resources")) caps["resources"].erase("subscribe");
  json result = {{"supportedVersions", enabled_versions()}, {"capabilities", caps}};
  if (!options_.instructions.empty()) result["instructions"] = options_.instructions;
  return result;
}

namespace {

std::string encode_cursor(std::size_t offset) {
  return base64_encode("o:" + std::to_string(offset));
}

std::optional<std::size_t> decode_cursor(const json& params) {
  if (!params.is_object()) return 0;
  auto it = params.find("cursor");
  if (it == params.end() || it->is_null()) return 0;
  if (!it->is_string()) return std::nullopt;
  auto raw = base64_decode(it->get<std::string>());
  if (!raw || raw->size() < 3 || raw->rfind("o:", 0) != 0) return std::nullopt;
  std::size_t offset = 0;
  for (std::size_t i = 2; i < raw->size(); ++i) {
    char c = (*raw)[i];
    if (c < '0' || c > '9' || offset > (1u << 30)) return std::nullopt;
    offset = offset * 10 + static_cast<std::size_t>(c - '0');
  }
  return offset;
}

// Slices `all` into the page selected by the request's cursor.
larder::Result<json> paginate(std::vector<json> all, const json& params, std::size_t page_size,
                              const char* field) {
  auto offset = decode_cursor(params);
  if (!offset || *offset > all.size()) return larder::make_error("invalid_params", "invalid cursor");
  json result;
  json items = json::array();
  std::size_t end = std::min(all.size(), *offset + std::max<std::size_t>(page_size, 1));
  for (std::size_t i = *offset; i < end; ++i) items.push_back(std::move(all[i]));
  result[field] = std::move(items);
  if (end < all.size()) result["nextCursor"] = encode_cursor(end);
  return result;
}

void put_if(json& j, const char* key, const std::string& value) {
  if (!value.empty()) j[key] = value;
}

}  // namespace

json Server::tool_json(const Tool& tool, const std::string& version) const {
  json j = {{"name", tool.name}, {"inputSchema", tool.input_schema}};
  if (version >= kVersion2025_06_18) put_if(j, "title", tool.title);
  put_if(j, "description", tool.description);
  if (tool.output_schema && version >= kVersion2025_06_18) j["outputSchema"] = *tool.output_schema;
  if (tool.annotations.is_object() && version >= kVersion2025_03_26) j["annotations"] = tool.annotations;
  if (tool.meta.is_object()) j["_meta"] = tool.meta;
  return j;
}

larder::Result<json> Server::on_tools_list(const Message& request, const std::string& version) {
  std::vector<json> all;
  {
    std::shared_lock lock(registry_mutex_);
    for (const auto& e : tools_) all.push_back(tool_json(e.tool, version));
  }
  return paginate(std::move(all), request.params, options_.page_size, "tools");
}

larder::Result<json> Server::on_tools_call(RequestContext& ctx) {
  const json& params = ctx.params();
  if (!params.is_object() || !params.contains("name") || !params["name"].is_string()) {
    return larder::make_error("invalid_params", "tools/call needs params.name (a string)");
  }
  const std::string name = params["name"].get<std::string>();
  json arguments = json::object();
  if (auto a = params.find("arguments"); a != params.end() && !a->is_null()) {
    if (!a->is_object())
      return larder::make_error("invalid_params", "tools/call params.arguments must be an object");
    arguments = *a;
  }
  ToolHandler handler;
  std::optional<JsonSchema> input, output;
  {
    std::shared_lock lock(registry_mutex_);
    auto it =
        std::find_if(tools_.begin(), tools_.end(), [&](const ToolEntry& e) { return e.tool.name == name; });
    if (it == tools_.end()) return larder::make_error("invalid_params", "Unknown tool: " + name);
    handler = it->handler;
    input = it->input;
    output = it->output;
  }
  const bool errors_as_results = ctx.protocol_version() >= kVersion2025_11_25;
  if (input) {
    auto valid = input->validate(arguments);
    if (!valid) {
      std::string message = "Invalid arguments for tool " + name + ": " + valid.error().message;
      if (errors_as_results) {
        ToolResult r = ToolResult::error(message);
        return json{{"content", r.content}, {"isError", true}};
      }
      return larder::make_error("invalid_params", message);
    }
  }
  ToolResult result;
  try {
    result = handler(ctx, arguments);
  } catch (const InputRequiredSignal&) {
    throw;
  } catch (const RequestStateError&) {
    throw;
  } catch (const MissingCapabilitySignal&) {
    throw;
  } catch (const std::exception& e) {
    result = ToolResult::error(e.what());
  }
  if (result.input_requests || result.request_state) {
    json ir = {{"resultType", "input_required"}};
    if (result.input_requests) ir["inputRequests"] = *result.input_requests;
    if (result.request_state) ir["requestState"] = *result.request_state;
    return ir;
  }
  if (output && !result.is_error && options_.validate_tool_output) {
    if (!result.structured_content) {
      return larder::make_error("internal",
                                "tool " + name + " has an outputSchema but returned no structuredContent");
    }
    auto valid = output->validate(*result.structured_content);
    if (!valid)
      return larder::make_error(
          "internal", "tool " + name + " output does not match its outputSchema: " + valid.error().message);
  }
  json j = {{"content", std::move(result.content)}};
  if (result.structured_content) j["structuredContent"] = std::move(*result.structured_content);
  if (result.is_error) j["isError"] = true;
  if (result.meta.is_object()) j["_meta"] = std::move(result.meta);
  return j;
}

larder::Result<json> Server::on_resources_list(const Message& request) {
  std::vector<json> all;
  {
    std::shared_lock lock(registry_mutex_);
    for (const auto& e : resources_) {
      const Resource& r = e.resource;
      json j = {{"uri", r.uri}, {"name", r.name}};
      put_if(j, "title", r.title);
      put_if(j, "description", r.description);
      put_if(j, "mimeType", r.mime_type);
      if (r.size) j["size"] = *r.size;
      if (r.annotations.is_object()) j["annotations"] = r.annotations;
      if (r.meta.is_object()) j["_meta"] = r.meta;
      all.push_back(std::move(j));
    }
  }
  return paginate(std::move(all), request.params, options_.page_size, "resources");
}

larder::Result<json> Server::on_templates_list(const Message& request) {
  std::vector<json> all;
  {
    std::shared_lock lock(registry_mutex_);
    for (const auto& e : templates_) {
      const ResourceTemplate& t = e.resource_template;
      json j = {{"uriTemplate", t.uri_template}, {"name", t.name}};
      put_if(j, "title", t.title);
      put_if(j, "description", t.description);
      put_if(j, "mimeType", t.mime_type);
      if (t.annotations.is_object()) j["annotations"] = t.annotations;
      if (t.meta.is_object()) j["_meta"] = t.meta;
      all.push_back(std::move(j));
    }
  }
  return paginate(std::move(all), request.params, options_.page_size, "resourceTemplates");
}

HandlerResult Server::on_resources_read(RequestContext& ctx) {
  const json& params = ctx.params();
  if (!params.is_object() || !params.contains("uri") || !params["uri"].is_string()) {
    return larder::make_error("invalid_params", "resources/read needs params.uri (a string)");
  }
  const std::string uri = params["uri"].get<std::string>();
  ResourceReader reader;
  TemplateReader treader;
  std::map<std::string, std::string> vars;
  {
    std::shared_lock lock(registry_mutex_);
    for (const auto& e : resources_) {
      if (e.resource.uri == uri) {
        reader = e.reader;
        break;
      }
    }
    if (!reader) {
      for (const auto& t : templates_) {
        if (t.parsed.match(uri, &vars)) {
          treader = t.reader;
          break;
        }
      }
    }
  }
  if (!reader && !treader) return larder::make_error("not_found", "Resource not found: " + uri);
  HandlerResult contents = reader ? reader(ctx, uri) : treader(ctx, uri, vars);
  if (!contents) return contents;
  if (contents->is_object() && contents->contains("resultType")) return *contents;  // MRTR passthrough
  if (!contents->is_array())
    return larder::make_error("internal", "resource reader for " + uri + " did not return a contents array");
  return json{{"contents", std::move(*contents)}};
}

larder::Result<json> Server::on_prompts_list(const Message& request) {
  std::vector<json> all;
  {
    std::shared_lock lock(registry_mutex_);
    for (const auto& e : prompts_) {
      const Prompt& p = e.prompt;
      json j = {{"name", p.name}};
      put_if(j, "title", p.title);
      put_if(j, "description", p.description);
      if (!p.arguments.empty()) {
        json args = json::array();
        for (const auto& a : p.arguments) {
          json aj = {{"name", a.name}, {"required", a.required}};
          put_if(aj, "title", a.title);
          put_if(aj, "description", a.description);
          args.push_back(std::move(aj));
        }
        j["arguments"] = std::move(args);
      }
      if (p.meta.is_object()) j["_meta"] = p.meta;
      all.push_back(std::move(j));
    }
  }
  return paginate(std::move(all), request.params, options_.page_size, "prompts");
}

HandlerResult Server::on_prompts_get(RequestContext& ctx) {
  const json& params = ctx.params();
  if (!params.is_object() || !params.contains("name") || !params["name"].is_string()) {
    return larder::make_error("invalid_params", "prompts/get needs params.name (a string)");
  }
  const std::string name = params["name"].get<std::string>();
  std::map<std::string, std::string> args;
  if (auto a = params.find("arguments"); a != params.end() && !a->is_null()) {
    if (!a->is_object())
      return larder::make_error("invalid_params", "prompts/get params.arguments must be an object");
    for (auto& [k, v] : a->items()) {
      if (!v.is_string())
        return larder::make_error("invalid_params", "prompt argument '" + k + "' must be a string");
      args[k] = v.get<std::string>();
    }
  }
  PromptHandler handler;
  Prompt prompt;
  {
    std::shared_lock lock(registry_mutex_);
    auto it = std::find_if(prompts_.begin(), prompts_.end(),
                           [&](const PromptEntry& e) { return e.prompt.name == name; });
    if (it == prompts_.end()) return larder::make_error("invalid_params", "Unknown prompt: " + name);
    handler = it->handler;
    prompt = it->prompt;
  }
  for (const auto& a : prompt.arguments) {
    if (a.required && !args.count(a.name)) {
      return larder::make_error("invalid_params", "prompt '" + name + "' needs argument '" + a.name + "'");
    }
  }
  HandlerResult result = handler(ctx, args);
  if (!result) return result;
  if (!result->is_object())
    return larder::make_error("internal", "prompt handler for " + name + " did not return an object");
  return result;
}

larder::Result<json> Server::on_complete(RequestContext& ctx) {
  const json& params = ctx.params();
  if (!params.is_object() || !params.contains("ref") || !params["ref"].is_object() ||
      !params.contains("argument") || !params["argument"].is_object()) {
    return larder::make_error("invalid_params",
                              "completion/complete needs params.ref and params.argument (objects)");
  }
  const json& ref = params["ref"];
  const std::string type = ref.value("type", "");
  if (type != "ref/prompt" && type != "ref/resource") {
    return larder::make_error("invalid_params", "completion ref.type must be ref/prompt or ref/resource");
  }
  CompletionHandler handler;
  {
    std::shared_lock lock(registry_mutex_);
    handler = completion_;
    if (type == "ref/prompt") {
      const std::string name = ref.value("name", "");
      bool found = std::any_of(prompts_.begin(), prompts_.end(),
                               [&](const PromptEntry& e) { return e.prompt.name == name; });
      if (!found && !handler) return larder::make_error("invalid_params", "Unknown prompt: " + name);
    }
  }
  std::vector<std::string> values;
  if (handler) values = handler(ctx, ref, params["argument"], params.value("context", json()));
  const std::size_t total = values.size();
  if (values.size() > 100) values.resize(100);
  return json{{"completion", {{"values", values}, {"total", total}, {"hasMore", total > 100}}}};
}

larder::Result<json> Server::on_set_level(const std::shared_ptr<Session>& session, const Message& request) {
  if (!request.params.is_object() || !request.params.contains("level") ||
      !request.params["level"].is_string()) {
    return larder::make_error("invalid_params", "logging/setLevel needs params.level (a string)");
  }
  auto level = parse_log_level(request.params["level"].get<std::string>());
  if (!level)
    return larder::make_error("invalid_params",
                              "unknown log level '" + request.params["level"].get<std::string>() + "'");
  std::lock_guard lock(session->mutex_);
  session->log_level_ = *level;
  return json::object();
}

larder::Result<json> Server::on_subscribe(const std::shared_ptr<Session>& session, const Message& request,
                                          bool subscribe) {
  if (!request.params.is_object() || !request.params.contains("uri") || !request.params["uri"].is_string()) {
    return larder::make_error("invalid_params", request.method + " needs params.uri (a string)");
  }
  const std::string uri = request.params["uri"].get<std::string>();
  std::lock_guard lock(session->mutex_);
  auto& subs = session->subscriptions_;
  auto it = std::find(subs.begin(), subs.end(), uri);
  if (subscribe && it == subs.end()) subs.push_back(uri);
  if (!subscribe && it != subs.end()) subs.erase(it);
  return json::object();
}

}  // namespace larder::mcp
