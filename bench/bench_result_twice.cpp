// What sending a pg_query answer once would save. Today the tool serializes its result tree
// into the text content (`mcp::text_content(produced->dump())`, src/tools/db_registration.cpp)
// and hands the same tree over as `structuredContent`; the HTTP transport then serializes the
// whole response (src/mcp/http_transport.cpp: dump with error_handler_t::replace), the text
// escaped once more as a JSON string. Timed here, on a result as Larder writes it:
//   BM_TextDump        the first serialization (the tree into the text content);
//   BM_ResponseToday   the transport's dump of the response carrying both;
//   BM_ResponseOnce    the same response with structuredContent alone;
//   BM_ResponseText    the same response with the text content alone.
// Saved per call by sending structuredContent alone: BM_TextDump + (Today - Once); the
// `bytes` counter is the response body's size each way.
//
//   bench_result_twice [--result FILE --label NAME] [Google Benchmark flags]
// FILE: a structuredContent JSON as Larder answered it (bench/peer_compare.sh captures one per
// query); without it, a synthetic answer of 1 and 6 rows of the healthcare table.
#include "mcp/server.h"

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

using nlohmann::json;

namespace {

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

json response(const json* text_of, const json* structured) {
  json result = json::object();
  result["content"] = json::array();
  if (text_of != nullptr) result["content"].push_back(larder::mcp::text_content(text_of->dump()));
  if (structured != nullptr) result["structuredContent"] = *structured;
  return {{"jsonrpc", "2.0"}, {"id", 12345}, {"result", std::move(result)}};
}

// A pg_query answer of `rows` rows of health_records, shaped as Larder's (columns, rows, count).
json synthetic(int rows) {
  const std::vector<std::string> cols = {"id",
                                         "Patient Name",
                                         "Age",
                                         "Gender",
                                         "Blood Type",
                                         "Medical Condition",
                                         "Date of Admission",
                                         "Doctor",
                                         "Hospital",
                                         "Insurance Provider",
                                         "Billing Amount",
                                         "Room Number",
                                         "Admission Type",
                                         "Discharge Date",
                                         "Medication",
                                         "Test Results"};
  json columns = json::array();
  for (const auto& c : cols) columns.push_back({{"name", c}, {"type", c == "id" ? "int8" : "text"}});
  json out_rows = json::array();
  for (int i = 0; i < rows; ++i)
    out_rows.push_back({1000 + i, "Erin oRTEga", 42, "Female", "A+", "Diabetes",
                        "2023-01-0" + std::to_string(i % 9 + 1), "Matthew Smith", "Sons and Miller",
                        "Blue Cross", 18856.28, 328, "Urgent", "2023-01-12", "Paracetamol", "Normal"});
  return {{"columns", std::move(columns)},
          {"rows", std::move(out_rows)},
          {"row_count", rows},
          {"truncated", false}};
}

void text_dump(benchmark::State& st, const json& sc) {
  for (auto _ : st) {
    std::string s = sc.dump();
    benchmark::DoNotOptimize(s);
  }
  st.counters["bytes"] = static_cast<double>(sc.dump().size());
}

void response_dump(benchmark::State& st, const json& r) {
  for (auto _ : st) {
    std::string s = dump(r);
    benchmark::DoNotOptimize(s);
  }
  st.counters["bytes"] = static_cast<double>(dump(r).size());
}

void register_for(const std::string& label, const json& sc) {
  auto today = std::make_shared<json>(response(&sc, &sc));
  auto once = std::make_shared<json>(response(nullptr, &sc));
  auto text = std::make_shared<json>(response(&sc, nullptr));
  auto tree = std::make_shared<json>(sc);
  benchmark::RegisterBenchmark(("BM_TextDump/" + label).c_str(),
                               [tree](benchmark::State& st) { text_dump(st, *tree); });
  benchmark::RegisterBenchmark(("BM_ResponseToday/" + label).c_str(),
                               [today](benchmark::State& st) { response_dump(st, *today); });
  benchmark::RegisterBenchmark(("BM_ResponseOnce/" + label).c_str(),
                               [once](benchmark::State& st) { response_dump(st, *once); });
  benchmark::RegisterBenchmark(("BM_ResponseText/" + label).c_str(),
                               [text](benchmark::State& st) { response_dump(st, *text); });
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> rest{argv[0]};
  std::string file, label = "captured";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--result" && i + 1 < argc) {
      file = argv[++i];
    } else if (a == "--label" && i + 1 < argc) {
      label = argv[++i];
    } else {
      rest.push_back(argv[i]);
    }
  }
  if (file.empty()) {
    register_for("synthetic_1row", synthetic(1));
    register_for("synthetic_6rows", synthetic(6));
  } else {
    std::ifstream in(file);
    std::stringstream ss;
    ss << in.rdbuf();
    json sc = json::parse(ss.str(), nullptr, false);
    if (!in || sc.is_discarded() || !sc.is_object()) {
      std::cerr << "bench_result_twice: " << file << ": not a JSON object\n";
      return 1;
    }
    register_for(label, sc);
  }
  int n = static_cast<int>(rest.size());
  benchmark::Initialize(&n, rest.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
