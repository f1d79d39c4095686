// The fixture server for the official MCP conformance suite
// (@modelcontextprotocol/conformance): every tool, resource and prompt the server scenarios
// call, built on libmcp and served over plain HTTP on 127.0.0.1 (loopback dev mode).
//
//   conformance_server [--port N]     prints "PORT=<n>" once listening; stops on SIGTERM/SIGINT
//   conformance_server --stdio        serves the same fixtures over stdio (used by the client tests)
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>

#include "mcp/http_transport.h"
#include "mcp/server.h"
#include "mcp/stdio.h"
#include "modern_fixtures.h"
#include "net/server.h"

using namespace larder;
using namespace larder::mcp;

namespace {

// 1x1 PNG and a minimal WAV (test data the scenarios only check for presence and MIME type).
const char* kPng =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
const char* kWav = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=";

json object_schema(json properties = json::object(), json required = json::array()) {
  json s = {{"type", "object"}, {"properties", std::move(properties)}};
  if (!required.empty()) s["required"] = std::move(required);
  return s;
}

void must(const larder::Result<void>& r) {
  if (!r) {
    std::fprintf(stderr, "conformance_server: %s\n", r.error().message.c_str());
    std::exit(2);
  }
}

void sleep_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

ToolResult from_text(std::string s) {
  return ToolResult::text(std::move(s));
}

// Runs an elicitation and reports the outcome as text.
ToolResult elicit(RequestContext& ctx, json params, const char* prefix) {
  auto r = ctx.request_client("elicitation/create", params);
  if (!r) return from_text(std::string("Elicitation not supported or error: ") + r.error().message);
  return from_text(std::string(prefix) + "action=" + r->value("action", "") +
                   ", content=" + r->value("content", json::object()).dump());
}

void register_tools(Server& s) {
  auto simple = [](const char* name, const char* description, std::function<ToolResult()> body) {
    return std::make_pair(Tool{name, "", description, object_schema(), std::nullopt, json(), json()},
                          ToolHandler([body](RequestContext&, const json&) { return body(); }));
  };
  for (auto& [tool, handler] : {
           simple("test_simple_text", "Tests simple text content response",
                  [] { return from_text("This is a simple text response for testing."); }),
           simple("test_image_content", "Tests image content response",
                  [] {
                    ToolResult r;
                    r.content.push_back(image_content(kPng, "image/png"));
                    return r;
                  }),
           simple("test_audio_content", "Tests audio content response",
                  [] {
                    ToolResult r;
                    r.content.push_back(audio_content(kWav, "audio/wav"));
                    return r;
                  }),
           simple("test_embedded_resource", "Tests embedded resource content response",
                  [] {
                    ToolResult r;
                    r.content.push_back(embedded_text_resource("test://embedded-resource", "text/plain",
                                                               "This is an embedded resource content."));
                    return r;
                  }),
           simple("test_multiple_content_types",
                  "Tests response with multiple content types (text, image, resource)",
                  [] {
                    ToolResult r;
                    r.content.push_back(text_content("Multiple content types test:"));
                    r.content.push_back(image_content(kPng, "image/png"));
                    r.content.push_back(
                        embedded_text_resource("test://mixed-content-resource", "application/json",
                                               json{{"test", "data"}, {"value", 123}}.dump()));
                    return r;
                  }),
           simple("test_error_handling", "Tests error response handling",
                  []() -> ToolResult {
                    throw std::runtime_error("This tool intentionally returns an error for testing");
                  }),
       }) {
    must(s.add_tool(tool, handler));
  }

  must(s.add_tool(Tool{"test_tool_with_logging", "", "Tests tool that emits log messages during execution",
                       object_schema(), std::nullopt, json(), json()},
                  [](RequestContext& ctx, const json&) {
                    ctx.log(LogLevel::kInfo, "Tool execution started");
                    sleep_ms(50);
                    ctx.log(LogLevel::kInfo, "Tool processing data");
                    sleep_ms(50);
                    ctx.log(LogLevel::kInfo, "Tool execution completed");
                    return from_text("Tool with logging executed successfully");
                  }));

  must(s.add_tool(Tool{"test_tool_with_progress", "", "Tests tool that reports progress notifications",
                       object_schema(), std::nullopt, json(), json()},
                  [](RequestContext& ctx, const json&) {
                    for (int step : {0, 50, 100}) {
                      ctx.progress(step, 100, "Completed step " + std::to_string(step) + " of 100");
                      if (step != 100) sleep_ms(50);
                    }
                    json token = ctx.meta().value("progressToken", json(0));
                    return from_text(token.is_string() ? token.get<std::string>() : token.dump());
                  }));

  must(s.add_tool(
      Tool{"test_reconnection", "",
           "Closes the SSE stream mid-call; the result arrives after the client reconnects (SEP-1699)",
           object_schema(), std::nullopt, json(), json()},
      [](RequestContext& ctx, const json&) {
        ctx.close_stream();
        sleep_ms(100);
        return from_text(
            "Reconnection test completed successfully. If you received this, the client properly "
            "reconnected after stream closure.");
      }));

  must(s.add_tool(
      Tool{"test_sampling", "", "Tests server-initiated sampling (LLM completion request)",
           object_schema({{"prompt", {{"type", "string"}, {"description", "The prompt to send to the LLM"}}}},
                         json::array({"prompt"})),
           std::nullopt, json(), json()},
      [](RequestContext& ctx, const json& args) {
        json params = {
            {"messages",
             json::array({{{"role", "user"}, {"content", {{"type", "text"}, {"text", args["prompt"]}}}}})},
            {"maxTokens", 100}};
        auto r = ctx.request_client("sampling/createMessage", params);
        if (!r) return from_text("Sampling not supported or error: " + r.error().message);
        std::string text = "No response";
        if (r->contains("content") && (*r)["content"].is_object() && (*r)["content"].contains("text")) {
          text = (*r)["content"]["text"].get<std::string>();
        }
        return from_text("LLM response: " + text);
      }));

  must(s.add_tool(
      Tool{"test_elicitation", "", "Tests server-initiated elicitation (user input request)",
           object_schema({{"message", {{"type", "string"}, {"description", "The message to show the user"}}}},
                         json::array({"message"})),
           std::nullopt, json(), json()},
      [](RequestContext& ctx, const json& args) {
        json params = {
            {"message", args["message"]},
            {"requestedSchema",
             object_schema({{"response", {{"type", "string"}, {"description", "User's response"}}}},
                           json::array({"response"}))}};
        if (ctx.protocol_version() >= "2025-11-25") params["mode"] = "form";
        return elicit(ctx, params, "User response: ");
      }));

  must(s.add_tool(
      Tool{"test_elicitation_sep1034_defaults", "", "Tests elicitation with default values per SEP-1034",
           object_schema(), std::nullopt, json(), json()},
      [](RequestContext& ctx, const json&) {
        json props = {
            {"name", {{"type", "string"}, {"description", "User name"}, {"default", "John Doe"}}},
            {"age", {{"type", "integer"}, {"description", "User age"}, {"default", 30}}},
            {"score", {{"type", "number"}, {"description", "User score"}, {"default", 95.5}}},
            {"status",
             {{"type", "string"},
              {"description", "User status"},
              {"enum", {"active", "inactive", "pending"}},
              {"default", "active"}}},
            {"verified", {{"type", "boolean"}, {"description", "Verification status"}, {"default", true}}},
        };
        json params = {
            {"mode", "form"},
            {"message", "Please review and update the form fields with defaults"},
            {"requestedSchema", {{"type", "object"}, {"properties", props}, {"required", json::array()}}}};
        return elicit(ctx, params, "Elicitation completed: ");
      }));

  must(s.add_tool(
      Tool{"test_elicitation_sep1330_enums", "",
           "Tests elicitation with enum schema improvements per SEP-1330", object_schema(), std::nullopt,
           json(), json()},
      [](RequestContext& ctx, const json&) {
        auto titled = [](const char* v1, const char* t1, const char* v2, const char* t2, const char* v3,
                         const char* t3) {
          return json::array({{{"const", v1}, {"title", t1}},
                              {{"const", v2}, {"title", t2}},
                              {{"const", v3}, {"title", t3}}});
        };
        json props = {
            {"untitledSingle",
             {{"type", "string"},
              {"description", "Select one option"},
              {"enum", {"option1", "option2", "option3"}}}},
            {"titledSingle",
             {{"type", "string"},
              {"description", "Select one option with titles"},
              {"oneOf",
               titled("value1", "First Option", "value2", "Second Option", "value3", "Third Option")}}},
            {"legacyEnum",
             {{"type", "string"},
              {"description", "Select one option (legacy)"},
              {"enum", {"opt1", "opt2", "opt3"}},
              {"enumNames", {"Option One", "Option Two", "Option Three"}}}},
            {"untitledMulti",
             {{"type", "array"},
              {"description", "Select multiple options"},
              {"minItems", 1},
              {"maxItems", 3},
              {"items", {{"type", "string"}, {"enum", {"option1", "option2", "option3"}}}}}},
            {"titledMulti",
             {{"type", "array"},
              {"description", "Select multiple options with titles"},
              {"minItems", 1},
              {"maxItems", 3},
              {"items",
               {{"anyOf",
                 titled("value1", "First Choice", "value2", "Second Choice", "value3", "Third Choice")}}}}},
        };
        json params = {
            {"mode", "form"},
            {"message", "Please select options from the enum fields"},
            {"requestedSchema", {{"type", "object"}, {"properties", props}, {"required", json::array()}}}};
        return elicit(ctx, params, "Elicitation completed: ");
      }));

  // JSON Schema 2020-12 keywords that must survive tools/list unchanged (SEP-1613, SEP-2106).
  json schema_2020 = json::parse(R"({
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {"address": {"$anchor": "addressDef", "type": "object",
                          "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}},
    "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"},
                   "contactMethod": {"type": "string", "enum": ["phone", "email"]},
                   "phone": {"type": "string"}, "email": {"type": "string"}},
    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
    "then": {"required": ["phone"]},
    "else": {"required": ["email"]},
    "additionalProperties": false
  })");
  must(s.add_tool(Tool{"json_schema_2020_12_tool", "",
                       "Tool with JSON Schema 2020-12 features for conformance testing (SEP-1613)",
                       schema_2020, std::nullopt, json(), json()},
                  [](RequestContext&, const json& args) {
                    return from_text("JSON Schema 2020-12 tool called with: " + args.dump());
                  }));
}

void register_resources(Server& s) {
  auto text_reader = [](std::string mime, std::string text) {
    return [mime, text](RequestContext&, const std::string& uri) -> larder::Result<json> {
      return json::array({{{"uri", uri}, {"mimeType", mime}, {"text", text}}});
    };
  };
  must(s.add_resource(
      Resource{"test://static-text", "static-text", "Static Text Resource",
               "A static text resource for testing", "text/plain", std::nullopt, json(), json()},
      text_reader("text/plain", "This is the content of the static text resource.")));
  must(s.add_resource(
      Resource{"test://static-binary", "static-binary", "Static Binary Resource",
               "A static binary resource (image) for testing", "image/png", std::nullopt, json(), json()},
      [](RequestContext&, const std::string& uri) -> larder::Result<json> {
        return json::array({{{"uri", uri}, {"mimeType", "image/png"}, {"blob", kPng}}});
      }));
  must(s.add_resource(
      Resource{"test://watched-resource", "watched-resource", "Watched Resource",
               "A resource clients can subscribe to", "text/plain", std::nullopt, json(), json()},
      text_reader("text/plain", "Watched resource content")));
  must(s.add_resource_template(
      ResourceTemplate{"test://template/{id}/data", "template", "Resource Template",
                       "A resource template with parameter substitution", "application/json", json(), json()},
      [](RequestContext&, const std::string& uri,
         const std::map<std::string, std::string>& vars) -> larder::Result<json> {
        const std::string id = vars.count("id") ? vars.at("id") : "";
        json body = {{"id", id}, {"templateTest", true}, {"data", "Data for ID: " + id}};
        return json::array({{{"uri", uri}, {"mimeType", "application/json"}, {"text", body.dump()}}});
      }));
}

void register_prompts(Server& s) {
  auto user = [](json content) { return json{{"role", "user"}, {"content", std::move(content)}}; };
  must(s.add_prompt(
      Prompt{"test_simple_prompt", "Simple Test Prompt", "A simple prompt without arguments", {}, json()},
      [user](RequestContext&, const std::map<std::string, std::string>&) -> larder::Result<json> {
        return json{{"messages", json::array({user(text_content("This is a simple prompt for testing."))})}};
      }));
  must(s.add_prompt(
      Prompt{"test_prompt_with_arguments",
             "Prompt With Arguments",
             "A prompt with required arguments",
             {{"arg1", "", "First test argument", true}, {"arg2", "", "Second test argument", true}},
             json()},
      [user](RequestContext&, const std::map<std::string, std::string>& a) -> larder::Result<json> {
        return json{
            {"messages", json::array({user(text_content("Prompt with arguments: arg1='" + a.at("arg1") +
                                                        "', arg2='" + a.at("arg2") + "'"))})}};
      }));
  must(s.add_prompt(
      Prompt{"test_prompt_with_embedded_resource",
             "Prompt With Embedded Resource",
             "A prompt that includes an embedded resource",
             {{"resourceUri", "", "URI of the resource to embed", true}},
             json()},
      [user](RequestContext&, const std::map<std::string, std::string>& a) -> larder::Result<json> {
        return json{
            {"messages", json::array({user(embedded_text_resource(a.at("resourceUri"), "text/plain",
                                                                  "Embedded resource content for testing.")),
                                      user(text_content("Please process the embedded resource above."))})}};
      }));
  must(s.add_prompt(
      Prompt{
          "test_prompt_with_image", "Prompt With Image", "A prompt that includes image content", {}, json()},
      [user](RequestContext&, const std::map<std::string, std::string>&) -> larder::Result<json> {
        return json{{"messages", json::array({user(image_content(kPng, "image/png")),
                                              user(text_content("Please analyze the image above."))})}};
      }));
  s.set_completion_handler([](RequestContext&, const json& ref, const json& argument, const json&) {
    std::vector<std::string> out;
    if (ref.value("name", "") == "test_prompt_with_arguments") {
      const std::string prefix = argument.value("value", "");
      for (std::string v : {"paris", "park", "party", "test", "testing"}) {
        if (v.rfind(prefix, 0) == 0) out.push_back(v);
      }
    }
    return out;
  });
}

}  // namespace

int main(int argc, char** argv) {
  int port = 0;
  bool stdio = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--port") == 0 && i + 1 < argc) port = std::atoi(argv[++i]);
    if (std::strcmp(argv[i], "--stdio") == 0) stdio = true;
  }
  spdlog::set_level(spdlog::level::warn);
  ServerOptions options;
  options.info = {"larder-conformance-server", "0.1.0", "Larder conformance fixture"};
  Server server(options);
  register_tools(server);
  register_resources(server);
  register_prompts(server);
  register_modern_fixtures(server);
  if (stdio) {
    spdlog::set_default_logger(spdlog::stderr_color_mt("stderr"));
    auto r = StdioServerTransport(server, 0, 1).run();
    return r ? 0 : 1;
  }

  HttpTransportOptions http;
  HttpTransport transport(server, http);
  net::ServerConfig config;
  config.host = "127.0.0.1";
  config.port = static_cast<uint16_t>(port);
  config.plain_http = true;
  config.limits.worker_threads = 16;
  auto created = net::Server::create(config, transport.handler());
  if (!created) {
    std::fprintf(stderr, "conformance_server: %s\n", created.error().message.c_str());
    return 1;
  }
  auto& net_server = *created;
  if (auto started = net_server->start(); !started) {
    std::fprintf(stderr, "conformance_server: %s\n", started.error().message.c_str());
    return 1;
  }
  std::cout << "PORT=" << net_server->port() << std::endl;
  net_server->run_until_signal();
  return 0;
}
