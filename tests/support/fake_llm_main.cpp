// larder-fake-llm: serves one recorded script (tests/fixtures/llm/*.json) on 127.0.0.1 with
// the loopback fake LLM server the tests use, so a person can run the real `larder ask`
// against running Larder servers with recorded model responses:
//
//   larder-fake-llm --script tests/fixtures/llm/anthropic_e2e_erin_records.json --port-file /tmp/llm.port &
//   ANTHROPIC_API_KEY=dummy larder ask --provider anthropic --base-url http://127.0.0.1:$(cat /tmp/llm.port)
//   ...
//
// The API (anthropic/openai) comes from the script's "api" field. Every request is validated
// as the tests validate it (a malformed one is answered 400). The program exits when every
// scripted reply has been served (after --linger seconds, so a retried request still finds
// the server), on SIGINT/SIGTERM, or after --timeout seconds; it then writes the recorded
// requests (--record FILE, JSON lines) and reports shape violations. Exit status: 0 if every
// reply was served without violations, 1 otherwise, 2 for bad arguments. Test tool only: not
// installed, loopback only.
#include "agent/fake_llm_server.h"

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

namespace {

std::atomic<bool> g_stop{false};

void on_signal(int) {
  g_stop = true;
}

int usage(const std::string& problem) {
  if (!problem.empty()) std::cerr << "larder-fake-llm: " << problem << "\n";
  std::cerr
      << "usage: larder-fake-llm --script FILE [--port-file FILE] [--record FILE] [--api-key KEY]\n"
         "                       [--linger SECONDS] [--timeout SECONDS]\n"
         "  --script FILE     recorded responses: {\"api\": \"anthropic\"|\"openai\", \"responses\": [...]}\n"
         "  --port-file FILE  write the chosen port there (the server binds 127.0.0.1 on a free port)\n"
         "  --record FILE     on exit, write every request (method, path, headers, body, violations) as JSON "
         "lines\n"
         "  --api-key KEY     answer 401 unless the request carries this key\n"
         "  --linger SECONDS  keep serving this long after the last scripted reply (default 1)\n"
         "  --timeout SECONDS give up after this long (default 600)\n";
  return 2;
}

bool parse_seconds(const std::string& text, double* out) {
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || *end != '\0' || !(v >= 0) || v > 86400) return false;
  *out = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string script, port_file, record, api_key;
  double linger = 1, timeout = 600;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      usage("");
      return 0;
    }
    if (i + 1 >= argc) return usage("option " + a + " needs a value (or is unknown)");
    std::string v = argv[++i];
    if (a == "--script")
      script = v;
    else if (a == "--port-file")
      port_file = v;
    else if (a == "--record")
      record = v;
    else if (a == "--api-key")
      api_key = v;
    else if (a == "--linger") {
      if (!parse_seconds(v, &linger)) return usage("--linger must be a number of seconds (0-86400)");
    } else if (a == "--timeout") {
      if (!parse_seconds(v, &timeout)) return usage("--timeout must be a number of seconds (0-86400)");
    } else {
      return usage("unknown option " + a);
    }
  }
  if (script.empty()) return usage("--script is required");

  std::ifstream in(script);
  if (!in) return usage("cannot read " + script);
  std::stringstream ss;
  ss << in.rdbuf();
  auto doc = nlohmann::json::parse(ss.str(), nullptr, false);
  if (!doc.is_object() || !doc.contains("api") || !doc["api"].is_string())
    return usage(script + ": not a script (a JSON object with \"api\" and \"responses\")");
  std::string api_name = doc["api"].get<std::string>();
  if (api_name != "anthropic" && api_name != "openai")
    return usage(script + ": api must be anthropic or openai");
  using larder::testing::FakeLlmServer;
  FakeLlmServer server(api_name == "anthropic" ? FakeLlmServer::Api::Anthropic : FakeLlmServer::Api::OpenAi);
  std::string error;
  if (!server.load_script(script, &error)) return usage(error);
  if (!api_key.empty()) server.set_expected_api_key(api_key);
  if (!server.start(&error)) {
    std::cerr << "larder-fake-llm: " << error << "\n";
    return 1;
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  if (!port_file.empty()) {
    std::string tmp = port_file + ".tmp";
    std::ofstream(tmp) << server.port() << "\n";
    if (std::rename(tmp.c_str(), port_file.c_str()) != 0) {
      std::cerr << "larder-fake-llm: cannot write " << port_file << ": " << std::strerror(errno) << "\n";
      return 1;
    }
  }
  const std::size_t total = server.pending_replies();
  std::cerr << "larder-fake-llm: " << api_name << " API on " << server.base_url() << ", " << total
            << " scripted replies from " << script << "\n";

  using clock = std::chrono::steady_clock;
  const auto started = clock::now();
  std::optional<clock::time_point> drained;
  bool timed_out = false;
  while (!g_stop) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto now = clock::now();
    if (server.pending_replies() == 0) {
      if (!drained) drained = now;
      if (now - *drained >= std::chrono::duration<double>(linger)) break;
    }
    if (now - started >= std::chrono::duration<double>(timeout)) {
      timed_out = true;
      break;
    }
  }
  server.stop();

  auto requests = server.requests();
  if (!record.empty()) {
    std::ofstream out(record);
    for (const auto& r : requests) {
      nlohmann::json headers = nlohmann::json::object();
      for (const auto& [k, v] : r.headers) headers[k] = v;
      nlohmann::json body = nlohmann::json::parse(r.body, nullptr, false);
      nlohmann::json line = {{"method", r.method},
                             {"path", r.path},
                             {"headers", headers},
                             {"body", body.is_discarded() ? nlohmann::json(r.body) : body},
                             {"violations", r.violations}};
      out << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    }
    if (!out) std::cerr << "larder-fake-llm: cannot write " << record << "\n";
  }
  auto violations = server.violations();
  for (const auto& v : violations) std::cerr << "larder-fake-llm: violation: " << v << "\n";
  const std::size_t left = server.pending_replies();
  std::cerr << "larder-fake-llm: " << requests.size() << " requests, " << (total - left) << " of " << total
            << " replies served, " << violations.size() << " violations" << (timed_out ? " (timed out)" : "")
            << "\n";
  return violations.empty() && left == 0 ? 0 : 1;
}
