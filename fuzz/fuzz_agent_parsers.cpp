// Everything `larder ask` reads from outside — LLM API replies, .env files, mcpServers JSON,
// tool results it redacts and renders, tool arguments it checks — must give a Result or a
// string, never a crash, hang or leak.
#include "agent/anthropic.h"
#include "agent/config.h"
#include "agent/openai.h"
#include "agent/redaction.h"
#include "agent/render.h"
#include "agent/schema_check.h"
#include "base/json.h"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace larder::agent;
  const std::string text(reinterpret_cast<const char*>(data), size);
  (void)parse_anthropic_response(text);
  (void)parse_openai_response(text);
  (void)parse_dotenv(text);
  (void)parse_mcp_config(text, "fuzz.json", "/tmp", Environment{});
  (void)anthropic_error_message(HttpReply{400, {}, text});
  (void)openai_error_message(HttpReply{400, {}, text});
  Redactor redactor;
  redactor.add_secret("fuzz-secret-123");
  (void)redactor.redact(text);
  (void)truncate_to_width(text, size % 50);
  // What the agent renders, redacts and checks arrived through a bounded parse (base/json.h).
  auto parsed = larder::parse_json_bounded(text);
  if (parsed) {
    const nlohmann::json& doc = *parsed;
    RenderOptions options;
    options.max_column_width = 1 + size % 40;
    (void)render_table(doc, options);
    (void)redactor.redact_json(doc);
    (void)check_against_schema(doc, doc);
  }
  return 0;
}
