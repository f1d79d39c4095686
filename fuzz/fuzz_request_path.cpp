// libFuzzer target for the whole MCP request path, in process and without sockets:
//   HTTP head + body → mcp::HttpTransport (routing, Origin/Host, sessions, Streamable HTTP,
//   stateless 2026-07-28 headers, legacy HTTP+SSE) → JSON-RPC parse (bounded nesting) →
//   mcp::Server dispatch (lifecycle, batches, tools/resources/prompts) → argument schema
//   validation (valijson, Larder's pg_query and hipaa_compliance_check schemas) → a tool
//   handler doing what Larder's handlers do first: token extraction (tools::call_request,
//   gate::bearer_token, the biscuit_token argument), lock 2 (gate::Gate verify + authorize),
//   then a body (echo without the token; the HIPAA scanner).
//
// Input: up to 8 HTTP requests separated by a line "%%". Each is "METHOD TARGET" on the
// first line, "Name: value" header lines, an empty line, then the body. Two placeholders are
// replaced before a request is handed over: $SESSION (the last session id the transport gave
// out: an Mcp-Session-Id header or a legacy /sse endpoint's sessionId) and $TOKEN (a valid
// token signed by the fixed root key, granting echo, pg_query and hipaa_compliance_check).
//
// Oracles: no crash, leak or sanitizer report; every request is answered (a response, a
// stream, or at worst a dropped responder) within 20 s; every JSON answer is JSON; once the
// input's streams are closed and its sessions deleted, no session is left behind; the
// per-certificate concurrency limit (as large as an input) never refuses, so no slot leaks.
#include "base/json.h"
#include "biscuit/biscuit.h"
#include "examples/examples.h"
#include "gate/gate.h"
#include "mcp/http_transport.h"
#include "mcp/server.h"
#include "mcp/thread_pool.h"
#include "policy/policy.h"
#include "support/fake_responder.h"
#include "tools/db_tools.h"
#include "tools/guarded_call.h"
#include "tools/hipaa.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

using larder::mcp::json;
namespace mcp = larder::mcp;
namespace gate = larder::gate;
namespace tools = larder::tools;
namespace net = larder::net;
namespace test = larder::test;

constexpr std::size_t kMaxRequests = 8;
constexpr auto kAnswerTimeout = std::chrono::seconds(20);

[[noreturn]] void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz_request_path: %s: %s\n", what, detail.substr(0, 2000).c_str());
  std::abort();
}

const biscuit::KeyPair& root() {
  static const biscuit::KeyPair kp(
      *biscuit::PrivateKey::from_bytes(biscuit::Algorithm::Ed25519, biscuit::Bytes(32, 7)));
  return kp;
}

struct World {
  std::unique_ptr<gate::Gate> gate;
  std::string token;  // $TOKEN
  std::shared_ptr<const net::PeerIdentity> peer;
  std::unique_ptr<mcp::Server> server;
  std::unique_ptr<mcp::HttpTransport> transport;
};

// Lock 2 as gate::Pipeline::admit runs it (without the ledger and the audit log): the token
// from the Authorization header, else from the biscuit_token argument; verify; authorize.
std::optional<std::string> admit(World& w, mcp::RequestContext& ctx, const json& arguments,
                                 gate::CallFacts facts) {
  gate::CallRequest request = tools::call_request(ctx, arguments, facts);
  std::optional<std::string> token = gate::bearer_token(request.authorization);
  if (!token && request.authorization) return "the Authorization header is not a Bearer token";
  if (!token && request.argument_token && !request.argument_token->empty()) token = request.argument_token;
  if (!token) return "no Biscuit token";
  auto verified = w.gate->verify(*token);
  if (!verified) return verified.error().message;
  gate::Grant grant;
  // A fixed clock: the same input always meets the same decision.
  const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1'750'000'000));
  auto decision = w.gate->authorize(**verified, request.peer.get(), request.facts, now, &grant);
  if (!decision.allowed) return decision.reason;
  return std::nullopt;
}

World& world() {
  static World* w = [] {
    spdlog::set_level(spdlog::level::off);
    auto* out = new World();
    gate::GateOptions options;
    options.audience = "larder-db";
    options.root_keys.push_back({1, root().public_key().to_string()});
    options.policy_code = gate::default_policy_code();
    // The healthcare example's RLS context (its policy file's facts), as `larder serve` reads it:
    // every admitted call also reads patient_name/role/hospital from the token.
    {
      auto example = larder::examples::find("healthcare");
      if (!example) fail("example", example.error().message);
      auto pol = larder::policy::parse((*example)->policy, "<example healthcare>/policy.toml");
      if (!pol) fail("policy", pol.error().message);
      options.dimensions = gate::context_dimensions(*pol);
    }
    auto g = gate::Gate::create(options);
    if (!g) fail("gate", g.error().message);
    out->gate = std::move(*g);

    biscuit::BiscuitBuilder builder;
    builder.set_root_key_id(1);
    if (!builder
             .add_code(
                 R"(patient_name("Erin oRTEga"); right("echo"); right("pg_query"); right("hipaa_compliance_check");)")
             .ok()) {
      fail("token", "add_code");
    }
    auto token = builder.build(root().private_key());
    if (!token) fail("token", token.error().message);
    out->token = token->to_base64();

    auto peer = std::make_shared<net::PeerIdentity>();
    peer->cn = "claude-client";
    peer->cert_sha256 = std::string(64, 'a');
    peer->spki_sha256 = std::string(64, 'b');
    peer->issuer = "CN=Larder CA";
    out->peer = peer;

    mcp::ServerOptions server_options;
    server_options.info = {"larder", "0.1.0", "Larder"};
    server_options.handler_threads = 1;  // FIFO: a task posted last runs after every earlier one
    server_options.max_batch_size = 4;
    // What the audit log sees (every request, every refusal); a tool called "unrecordable"
    // plays a failed audit write (its answer must turn into an error).
    server_options.on_request = [](const mcp::RequestRecord& r) { return r.name != "unrecordable"; };
    out->server = std::make_unique<mcp::Server>(server_options);
    World& wr = *out;

    auto with_token = [](json schema) {
      schema["properties"]["biscuit_token"] = tools::biscuit_token_property();
      return schema;
    };
    // pg_query's schema, and a body that echoes what a DB tool would see.
    mcp::Tool query{"pg_query",   "Run a read-only SQL query",
                    "",           with_token(tools::DbTools::pg_query_input_schema()),
                    std::nullopt, json{{"readOnlyHint", true}},
                    json()};
    (void)wr.server->add_tool(query, [&wr](mcp::RequestContext& ctx, const json& args) {
      gate::CallFacts facts{"tools/call", "pg_query", gate::DataFlow::kSensitiveRead, {}, {}};
      if (auto refused = admit(wr, ctx, args, facts)) return mcp::ToolResult::error("biscuit: " + *refused);
      ctx.log(mcp::LogLevel::kInfo, json{{"query", args.value("query", "")}});
      ctx.progress(1, 1, "done");
      mcp::ToolResult r = mcp::ToolResult::text(tools::without_token(args).dump());
      r.structured_content = json{{"columns", json::array()}, {"rows", json::array()}, {"row_count", 0}};
      return r;
    });
    // hipaa_compliance_check's schema and its scanner.
    mcp::Tool hipaa{"hipaa_compliance_check",
                    "HIPAA compliance check",
                    "",
                    json{{"type", "object"},
                         {"properties",
                          {{"text", {{"type", "string"}, {"maxLength", 65536}}},
                           {"biscuit_token", tools::biscuit_token_property()}}},
                         {"required", {"text"}},
                         {"additionalProperties", false}},
                    json{{"type", "object"}, {"required", {"compliant", "identifier_count"}}},
                    json(),
                    json()};
    (void)wr.server->add_tool(hipaa, [&wr](mcp::RequestContext& ctx, const json& args) {
      gate::CallFacts facts{"tools/call", "hipaa_compliance_check", gate::DataFlow::kEgress, {}, {}};
      if (auto refused = admit(wr, ctx, args, facts)) return mcp::ToolResult::error("biscuit: " + *refused);
      json report = tools::to_json(tools::scan_hipaa_identifiers(args.value("text", "")));
      mcp::ToolResult r = mcp::ToolResult::text(report.dump());
      r.structured_content = report;
      return r;
    });
    // A tool with an x-mcp-header parameter (stateless Mcp-Param-* checks) and a nested schema.
    mcp::Tool echo{
        "echo",
        "",
        "",
        json::parse(R"({"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"},)"
                    R"("n":{"type":"number","x-mcp-header":"N"},"nested":{"type":"object","properties":)"
                    R"({"list":{"type":"array","items":{"type":["string","integer"]},"maxItems":8}}}}})"),
        std::nullopt,
        json(),
        json()};
    (void)wr.server->add_tool(echo, [&wr](mcp::RequestContext& ctx, const json& args) {
      gate::CallFacts facts{"tools/call", "echo", gate::DataFlow::kNeutral, {}, {}};
      if (auto refused = admit(wr, ctx, args, facts)) return mcp::ToolResult::error("biscuit: " + *refused);
      return mcp::ToolResult::text(args.dump());
    });
    (void)wr.server->add_resource(
        mcp::Resource{"larder://catalog/tables", "tables", "", "", "application/json", std::nullopt, json(),
                      json()},
        [](mcp::RequestContext&, const std::string& uri) -> larder::Result<json> {
          return json::array({{{"uri", uri}, {"mimeType", "application/json"}, {"text", "[]"}}});
        });
    (void)wr.server->add_resource_template(
        mcp::ResourceTemplate{"larder://sample/{schema}/{table}", "sample", "", "", "application/json",
                              json(), json()},
        [](mcp::RequestContext&, const std::string& uri,
           const std::map<std::string, std::string>& vars) -> larder::Result<json> {
          return json::array({{{"uri", uri}, {"text", json(vars).dump()}}});
        });
    (void)wr.server->add_prompt(
        mcp::Prompt{"explore", "", "", {{"table", "", "", true}}, json()},
        [](mcp::RequestContext&, const std::map<std::string, std::string>& args) -> larder::Result<json> {
          return json{
              {"messages",
               json::array({{{"role", "user"},
                             {"content",
                              {{"type", "text"}, {"text", args.count("table") ? args.at("table") : ""}}}}})}};
        });

    mcp::HttpTransportOptions transport_options;
    transport_options.max_sessions = 64;
    transport_options.max_streams_per_session = 4;
    transport_options.replay_events_per_stream = 16;
    // Per-certificate concurrency as large as an input's request count: a correct transport
    // never refuses one of ours, so a refusal means a slot was not given back.
    transport_options.client_limits.max_concurrent = kMaxRequests;
    out->transport = std::make_unique<mcp::HttpTransport>(*out->server, transport_options);
    return out;
  }();
  return *w;
}

struct RawRequest {
  std::string method, target;
  net::HeaderList headers;
  std::string body;
};

void replace_all(std::string& s, std::string_view from, const std::string& to) {
  for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
}

std::vector<RawRequest> split_requests(std::string_view input) {
  std::vector<RawRequest> out;
  while (!input.empty() && out.size() < kMaxRequests) {
    std::size_t sep = input.find("\n%%\n");
    std::string_view one = input.substr(0, sep);
    input = sep == std::string_view::npos ? std::string_view() : input.substr(sep + 4);
    RawRequest r;
    std::size_t eol = one.find('\n');
    std::string_view line = one.substr(0, eol);
    one = eol == std::string_view::npos ? std::string_view() : one.substr(eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::size_t sp = line.find(' ');
    r.method = std::string(line.substr(0, sp));
    if (sp != std::string_view::npos) {
      std::string_view target = line.substr(sp + 1);
      target = target.substr(0, target.find(' '));  // drop " HTTP/1.1"
      r.target = std::string(target);
    }
    if (r.target.empty()) r.target = "/mcp";
    while (!one.empty()) {
      eol = one.find('\n');
      std::string_view h = one.substr(0, eol);
      one = eol == std::string_view::npos ? std::string_view() : one.substr(eol + 1);
      if (!h.empty() && h.back() == '\r') h.remove_suffix(1);
      if (h.empty()) break;
      std::size_t colon = h.find(':');
      if (colon == std::string_view::npos) continue;
      std::string_view value = h.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      r.headers.emplace_back(std::string(h.substr(0, colon)), std::string(value));
    }
    r.body = std::string(one);
    out.push_back(std::move(r));
  }
  return out;
}

// Every JSON answer must be JSON: a plain body, or each SSE data line.
void check_answer(test::Exchange& e) {
  std::lock_guard lock(e.mutex);
  auto content_type = net::find_header(e.responded ? e.response.headers : e.stream_headers, "Content-Type");
  if (e.responded && content_type && *content_type == "application/json") {
    if (nlohmann::json::parse(e.response.body, nullptr, false).is_discarded())
      fail("answer is not JSON", e.response.body);
  }
  if (e.responded && (e.response.status < 200 || e.response.status > 599))
    fail("bad status", std::to_string(e.response.status));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  World& w = world();
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string session;
  std::vector<std::shared_ptr<test::Exchange>> exchanges;
  std::vector<std::shared_ptr<test::FakeResponder>> responders;  // to close their streams at the end

  for (auto& raw : split_requests(input)) {
    for (auto& [name, value] : raw.headers) {
      replace_all(value, "$SESSION", session);
      replace_all(value, "$TOKEN", w.token);
    }
    replace_all(raw.target, "$SESSION", session);
    replace_all(raw.body, "$TOKEN", w.token);
    const bool is_get = raw.method == "GET";
    auto body = larder::parse_json_bounded(raw.body);
    const bool is_listen =
        body && body->is_object() && body->value("method", json()) == "subscriptions/listen";
    net::HttpRequest request = test::make_http_request(raw.method, raw.target, raw.headers, raw.body);
    request.peer = w.peer;
    request.tls = true;

    auto exchange = std::make_shared<test::Exchange>();
    auto responder = std::make_shared<test::FakeResponder>(exchange);
    w.transport->handle(request, responder);
    responders.push_back(responder);
    exchanges.push_back(exchange);
    responder.reset();
    // Long-lived streams (GET, subscriptions/listen) stay open until the end of the input;
    // everything else must be answered.
    if (!(is_get || is_listen) && !exchange->wait(kAnswerTimeout))
      fail("request never answered", raw.method + " " + raw.target);
    check_answer(*exchange);
    if (std::getenv("FUZZ_REQUEST_PATH_VERBOSE")) {  // to see what a seed reaches
      std::fprintf(stderr, "%s %s -> %d %s\n", raw.method.c_str(), raw.target.c_str(), exchange->status(),
                   exchange->body().substr(0, 400).c_str());
    }

    if (auto sid = exchange->header("Mcp-Session-Id")) session = *sid;
    if (is_get) {
      std::string body = exchange->body();
      auto at = body.find("sessionId=");
      if (at != std::string::npos) session = body.substr(at + 10, body.find_first_of("\r\n", at) - at - 10);
    }
  }

  // Close every stream (legacy SSE sessions end with theirs), let the handler thread finish
  // what the input queued, delete every session an answer named, and check none is left.
  auto drain = [&w] {
    std::promise<void> drained;
    if (!w.server->pool().post([&drained] { drained.set_value(); })) return;
    if (drained.get_future().wait_for(kAnswerTimeout) != std::future_status::ready)
      fail("handler thread stuck", "");
  };
  for (auto& r : responders) {
    if (auto stream = r->stream()) stream->close();
  }
  drain();
  for (auto& r : responders) {
    if (auto stream = r->stream()) stream->close();  // streams a handler started meanwhile
  }
  responders.clear();
  for (const auto& e : exchanges) {
    auto sid = e->header("Mcp-Session-Id");
    if (!sid) continue;
    auto exchange = std::make_shared<test::Exchange>();
    w.transport->handle(
        test::make_http_request("DELETE", "/mcp", {{"Host", "localhost"}, {"Mcp-Session-Id", *sid}}, ""),
        std::make_shared<test::FakeResponder>(exchange));
  }
  drain();
  if (w.transport->client_limit_stats().refused_concurrency != 0)
    fail("a client concurrency slot leaked", "");
  if (w.transport->session_count() != 0)
    fail("sessions left behind", std::to_string(w.transport->session_count()));
  return 0;
}
