// In-process cost of libmcp's dispatch: parse → classify → schema-validate → handler →
// serialize, for a trivial tool and for one with a validated object argument.
#include <benchmark/benchmark.h>

#include "mcp/server.h"

using namespace larder::mcp;

namespace {

struct Fixture {
  Server server;
  std::shared_ptr<Session> session;
  Origin origin;
  Fixture() {
    (void)server.add_tool(Tool{"noop", "", "", json{{"type", "object"}}, std::nullopt, json(), json()},
                          [](RequestContext&, const json&) { return ToolResult::text("ok"); });
    (void)server.add_tool(
        Tool{
            "query", "", "",
            json::parse(
                R"({"type":"object","properties":{"sql":{"type":"string","maxLength":10000},"limit":{"type":"integer","minimum":1,"maximum":1000}},"required":["sql"]})"),
            std::nullopt, json(), json()},
        [](RequestContext&, const json& a) { return ToolResult::text(a["sql"].get<std::string>()); });
    session = server.create_session(nullptr);
    server.handle(session,
                  make_request(1, "initialize",
                               {{"protocolVersion", "2025-11-25"},
                                {"capabilities", json::object()},
                                {"clientInfo", {{"name", "b"}, {"version", "1"}}}}),
                  origin);
  }
};

void run(benchmark::State& state, const std::string& body) {
  static Fixture f;
  for (auto _ : state) {
    auto parsed = parse_json(body);
    auto r = f.server.handle(f.session, std::get<json>(parsed), f.origin);
    std::string out = r->dump();
    benchmark::DoNotOptimize(out);
  }
}

void BM_ToolsCallNoop(benchmark::State& state) {
  run(state, R"({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"noop","arguments":{}}})");
}
void BM_ToolsCallValidated(benchmark::State& state) {
  run(state,
      R"({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"query","arguments":{"sql":"select name from patients where id = 1","limit":10}}})");
}
void BM_ToolsList(benchmark::State& state) {
  run(state, R"({"jsonrpc":"2.0","id":7,"method":"tools/list"})");
}

}  // namespace

BENCHMARK(BM_ToolsCallNoop);
BENCHMARK(BM_ToolsCallValidated);
BENCHMARK(BM_ToolsList);
BENCHMARK_MAIN();
