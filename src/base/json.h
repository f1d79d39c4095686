// Bounded JSON input. Every JSON text Larder reads from outside — HTTP bodies, SSE events,
// stdio lines, the MCP client's responses, LLM API replies, tool arguments given as text,
// configuration files, json/jsonb values from PostgreSQL — goes through parse_json_bounded().
//
// Why: nlohmann's parser is iterative, but copying, comparing, dumping and schema-validating
// a value recurse once per nesting level, so a 300 KB body nested 150,000 levels deep
// overflows a thread's stack. The nesting is therefore measured on the text, before any tree
// is built, by a single non-recursive pass that skips strings (with their escapes): brackets
// inside a string do not count.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <limits>
#include <string>
#include <string_view>

#include "base/result.h"

namespace larder {

// The default nesting limit for JSON read from outside: an MCP request uses 3 levels
// (message, params, arguments), so tool arguments keep 61.
inline constexpr std::size_t kMaxJsonDepth = 64;

// The deepest nesting of arrays and objects in `text` ("1" → 0, "[]" → 1, {"a":[{}]} → 3),
// counting stops as soon as it exceeds `stop_above`. Outside strings only; a backslash in a
// string escapes the next byte. Does not validate: for any text nlohmann accepts, the result
// is the depth of the tree it would build; for other text it is some number and the parser
// refuses the text anyway.
inline std::size_t json_nesting_depth(std::string_view text,
                                      std::size_t stop_above = std::numeric_limits<std::size_t>::max()) {
  std::size_t depth = 0;
  std::size_t deepest = 0;
  bool in_string = false;
  const std::size_t n = text.size();
  for (std::size_t i = 0; i < n; ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped byte, whatever it is
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        if (++depth > deepest) {
          deepest = depth;
          if (deepest > stop_above) return deepest;
        }
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;
        break;
      default:
        break;
    }
  }
  return deepest;
}

// The message of a too-deep refusal: "JSON nested deeper than 64 levels".
inline std::string json_too_deep_message(std::size_t max_depth) {
  return "JSON nested deeper than " + std::to_string(max_depth) + " levels";
}

// Parses `text` (one complete JSON value, nothing after it) if it nests at most `max_depth`
// levels. Errors: "json.too_deep" (json_too_deep_message) or "json.invalid" ("not valid JSON").
inline Result<nlohmann::json> parse_json_bounded(std::string_view text,
                                                 std::size_t max_depth = kMaxJsonDepth) {
  if (json_nesting_depth(text, max_depth) > max_depth)
    return make_error("json.too_deep", json_too_deep_message(max_depth));
  nlohmann::json value = nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) return make_error("json.invalid", "not valid JSON");
  return value;
}

}  // namespace larder
