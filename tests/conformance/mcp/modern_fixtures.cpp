// Fixtures for the stateless 2026-07-28 scenarios of the conformance suite (0.2.0 alpha):
// multi round-trip requests (InputRequiredResult), capability and logging probes, list
// change triggers for subscriptions/listen, and a tool with an x-mcp-header parameter.
#include "modern_fixtures.h"

#include <atomic>
#include <string>

namespace larder::mcp {

namespace {

json elicitation(std::string message, const char* field, const char* type = "string") {
  return json{{"method", "elicitation/create"},
              {"params",
               {{"message", std::move(message)},
                {"requestedSchema",
                 {{"type", "object"},
                  {"properties", {{field, {{"type", type}}}}},
                  {"required", json::array({field})}}}}}};
}

json sampling(std::string text, int max_tokens) {
  return json{
      {"method", "sampling/createMessage"},
      {"params",
       {{"messages",
         json::array({{{"role", "user"}, {"content", {{"type", "text"}, {"text", std::move(text)}}}}})},
        {"maxTokens", max_tokens}}}};
}

json roots() {
  return json{{"method", "roots/list"}, {"params", json::object()}};
}

// The response to `key` in this retry's inputResponses, if the client sent one.
std::optional<json> response_for(RequestContext& ctx, const std::string& key) {
  const json& p = ctx.params();
  if (!p.is_object()) return std::nullopt;
  auto r = p.find("inputResponses");
  if (r == p.end() || !r->is_object()) return std::nullopt;
  auto it = r->find(key);
  if (it == r->end() || !it->is_object()) return std::nullopt;
  return *it;
}

ToolResult need(json requests, std::optional<std::string> state = std::nullopt) {
  ToolResult r;
  r.input_requests = std::move(requests);
  r.request_state = std::move(state);
  return r;
}

std::string text_of_sampling(const json& r) {
  if (r.contains("content") && r["content"].is_object()) return r["content"].value("text", "");
  return "";
}

Tool simple_tool(const char* name, const char* description, json schema = json{{"type", "object"}}) {
  return Tool{name, "", description, std::move(schema), std::nullopt, json(), json()};
}

}  // namespace

void register_modern_fixtures(Server& s) {
  auto add = [&s](Tool t, ToolHandler h) { (void)s.add_tool(std::move(t), std::move(h)); };

  add(simple_tool("test_input_required_result_elicitation", "MRTR: asks for the user's name"),
      [](RequestContext& ctx, const json&) {
        auto r = response_for(ctx, "user_name");
        if (!r || !r->contains("content") || !(*r)["content"].is_object() ||
            !(*r)["content"].contains("name")) {
          return need({{"user_name", elicitation("What is your name?", "name")}});
        }
        return ToolResult::text("Hello, " + (*r)["content"]["name"].get<std::string>() + "!");
      });

  add(simple_tool("test_input_required_result_sampling", "MRTR: asks the client's model a question"),
      [](RequestContext& ctx, const json&) {
        auto r = response_for(ctx, "capital_question");
        if (!r) return need({{"capital_question", sampling("What is the capital of France?", 100)}});
        return ToolResult::text("The model answered: " + text_of_sampling(*r));
      });

  add(simple_tool("test_input_required_result_list_roots", "MRTR: asks for the client's roots"),
      [](RequestContext& ctx, const json&) {
        auto r = response_for(ctx, "client_roots");
        if (!r || !r->contains("roots")) return need({{"client_roots", roots()}});
        std::string uris;
        for (const auto& root : (*r)["roots"])
          uris += (uris.empty() ? "" : ", ") + root.value("uri", std::string());
        return ToolResult::text("Client roots: " + uris);
      });

  add(simple_tool("test_input_required_result_request_state", "MRTR: round-trips a sealed requestState"),
      [&s](RequestContext& ctx, const json&) {
        auto r = response_for(ctx, "confirm");
        const std::string state = ctx.params().value("requestState", "");
        if (!r || state.empty()) {
          return need({{"confirm", elicitation("Please confirm", "ok", "boolean")}},
                      s.seal_request_state({{"step", "confirm"}}));
        }
        json opened = s.open_request_state(state);  // throws on tampering → -32602
        if (opened.value("step", "") != "confirm") throw RequestStateError{};
        return ToolResult::text("state-ok: confirmed");
      });

  add(simple_tool("test_input_required_result_multiple_inputs", "MRTR: several input requests at once"),
      [&s](RequestContext& ctx, const json&) {
        auto name = response_for(ctx, "user_name");
        auto greeting = response_for(ctx, "greeting");
        auto client_roots = response_for(ctx, "client_roots");
        const std::string state = ctx.params().value("requestState", "");
        if (!name || !greeting || !client_roots || state.empty()) {
          return need({{"user_name", elicitation("What is your name?", "name")},
                       {"greeting", sampling("Generate a greeting", 50)},
                       {"client_roots", roots()}},
                      s.seal_request_state({{"step", "multiple"}}));
        }
        s.open_request_state(state);
        return ToolResult::text("Received all inputs: name, greeting, roots");
      });

  add(simple_tool("test_input_required_result_multi_round", "MRTR: two rounds of questions"),
      [&s](RequestContext& ctx, const json&) {
        const std::string state = ctx.params().value("requestState", "");
        json opened = state.empty() ? json::object() : s.open_request_state(state);
        const int round = opened.value("round", 1);
        if (round == 1) {
          auto r = response_for(ctx, "step1");
          if (!r || state.empty())
            return need({{"step1", elicitation("Step 1: What is your name?", "name")}},
                        s.seal_request_state({{"round", 1}}));
          std::string name = (*r)["content"].value("name", "");
          return need({{"step2", elicitation("Step 2: What is your favorite color?", "color")}},
                      s.seal_request_state({{"round", 2}, {"name", name}}));
        }
        auto r = response_for(ctx, "step2");
        if (!r) return need({{"step2", elicitation("Step 2: What is your favorite color?", "color")}}, state);
        return ToolResult::text("Done: " + opened.value("name", std::string()) + " likes " +
                                (*r)["content"].value("color", std::string()));
      });

  add(simple_tool("test_input_required_result_tampered_state", "MRTR: integrity-protected requestState"),
      [&s](RequestContext& ctx, const json&) {
        const std::string state = ctx.params().value("requestState", "");
        if (state.empty()) {
          return need({{"confirm", elicitation("Please confirm", "ok", "boolean")}},
                      s.seal_request_state({{"step", "tamper-check"}}));
        }
        s.open_request_state(state);  // a modified state fails its HMAC → -32602
        return ToolResult::text("state verified");
      });

  add(simple_tool("test_input_required_result_capabilities", "MRTR: only asks for what the client declared"),
      [](RequestContext& ctx, const json&) {
        json caps = ctx.client_capabilities();
        json requests = json::object();
        if (caps.contains("elicitation") && !response_for(ctx, "user_name"))
          requests["user_name"] = elicitation("What is your name?", "name");
        if (caps.contains("sampling") && !response_for(ctx, "greeting"))
          requests["greeting"] = sampling("Generate a greeting", 50);
        if (caps.contains("roots") && !response_for(ctx, "client_roots")) requests["client_roots"] = roots();
        if (!requests.empty()) return need(requests);
        return ToolResult::text("Completed with the declared capabilities");
      });

  add(simple_tool("test_missing_capability", "Needs the client's sampling capability"),
      [](RequestContext& ctx, const json&) {
        auto r = ctx.request_client("sampling/createMessage", sampling("hello", 10)["params"]);
        return r ? ToolResult::text(text_of_sampling(*r)) : ToolResult::error(r.error().message);
      });

  add(simple_tool("test_streaming_elicitation",
                  "Streams progress, then asks for input (MRTR, never an independent request)"),
      [](RequestContext& ctx, const json&) {
        ctx.progress(0, 1, "starting");
        ctx.notify("notifications/message", {{"level", "info"}, {"data", "ignored unless logLevel"}});
        auto r =
            ctx.request_client("elicitation/create", elicitation("Continue?", "ok", "boolean")["params"]);
        return r ? ToolResult::text("continued") : ToolResult::error(r.error().message);
      });

  add(simple_tool("test_logging_tool", "Logs at info level (sent only when the request sets a log level)"),
      [](RequestContext& ctx, const json&) {
        ctx.log(LogLevel::kInfo, "log line from test_logging_tool");
        return ToolResult::text("logged");
      });

  static std::atomic<int> generation{0};
  add(simple_tool("test_trigger_tool_change", "Adds a tool, so tools/list changes"),
      [&s](RequestContext&, const json&) {
        const std::string name = "dynamic_tool_" + std::to_string(++generation);
        (void)s.add_tool(simple_tool(name.c_str(), "Registered by test_trigger_tool_change"),
                         [](RequestContext&, const json&) { return ToolResult::text("dynamic"); });
        return ToolResult::text("added " + name);
      });
  add(simple_tool("test_trigger_prompt_change", "Adds a prompt, so prompts/list changes"),
      [&s](RequestContext&, const json&) {
        const std::string name = "dynamic_prompt_" + std::to_string(++generation);
        (void)s.add_prompt(
            Prompt{name, "", "Registered by test_trigger_prompt_change", {}, json()},
            [](RequestContext&, const std::map<std::string, std::string>&) -> larder::Result<json> {
              return json{
                  {"messages", json::array({{{"role", "user"}, {"content", text_content("dynamic")}}})}};
            });
        return ToolResult::text("added " + name);
      });

  add(simple_tool("test_custom_headers", "Mirrors region into the Mcp-Param-Region header (SEP-2243)",
                  json{{"type", "object"},
                       {"properties",
                        {{"region", {{"type", "string"}, {"x-mcp-header", "Region"}}},
                         {"query", {{"type", "string"}}}}},
                       {"required", json::array({"region"})}}),
      [](RequestContext&, const json& args) {
        return ToolResult::text("region=" + args.value("region", std::string()));
      });

  (void)s.add_prompt(
      Prompt{"test_input_required_result_prompt", "", "MRTR on prompts/get", {}, json()},
      [](RequestContext& ctx, const std::map<std::string, std::string>&) -> larder::Result<json> {
        auto r = response_for(ctx, "user_context");
        if (!r) {
          return json{{"resultType", "input_required"},
                      {"inputRequests",
                       {{"user_context", elicitation("What context should the prompt use?", "context")}}}};
        }
        std::string c = (*r).contains("content") ? (*r)["content"].value("context", std::string()) : "";
        return json{
            {"messages", json::array({{{"role", "user"}, {"content", text_content("Context: " + c)}}})}};
      });
}

}  // namespace larder::mcp
