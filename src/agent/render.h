// What `larder ask` prints: the SQL the model wrote (--show-sql), result rows as an aligned
// table, lock decisions (--verbose), tool errors, and the model's answer — or one JSON
// object (--json). Widths are measured in terminal columns (UTF-8 aware: combining marks
// take none, East Asian wide characters two); text is never cut inside a UTF-8 sequence.
//
// With a `width` (the terminal's), no line of a table, answer or error is wider: columns
// share the width (wide cells are cut with "…"), a table whose columns cannot fit even so is
// printed one record at a time ("column | value" lines), and prose is word-wrapped. The SQL
// is left as the model wrote it, to copy.
#pragma once

#include "agent/agent.h"

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace larder::agent {

struct RenderOptions {
  bool color = false;  // ANSI colour (only when stdout is a terminal)
  bool show_sql = false;
  bool verbose = false;
  std::size_t max_column_width = 40;  // wider cells are cut and end with "…"; 0: no limit
  std::size_t width = 0;              // fit this many terminal columns; 0: no limit (--wide, pipes)
};

std::size_t display_width(std::string_view utf8);
// Cuts `utf8` to at most `width` columns, ending with "…" when something was cut.
std::string truncate_to_width(std::string_view utf8, std::size_t width);
// Word-wraps each line of `utf8` to at most `width` columns (a longer word is broken between
// characters); width 0 leaves it as it is. Keeps the trailing newline state of the input.
std::string wrap_to_width(std::string_view utf8, std::size_t width);

// Table from pg_query structuredContent {columns:[{name,type}], rows:[{..}|[..]], row_count,
// truncated}. Returns "" when `structured` has no rows/columns shape.
std::string render_table(const nlohmann::json& structured, const RenderOptions& options);

std::string render_run(const AgentRun& run, const RenderOptions& options);
nlohmann::json run_to_json(const AgentRun& run);

}  // namespace larder::agent
