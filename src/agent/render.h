// What `larder ask` prints: the SQL the model wrote (--show-sql), result rows as an aligned
// table, lock decisions (--verbose), tool errors, and the model's answer — or one JSON
// object (--json). Widths are measured in terminal columns (UTF-8 aware: combining marks
// take none, East Asian wide characters two).
#pragma once

#include "agent/agent.h"

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace larder::agent {

struct RenderOptions {
  bool color = false;        // ANSI colour (only when stdout is a terminal)
  bool show_sql = false;
  bool verbose = false;
  std::size_t max_column_width = 40;  // wider cells are cut and end with "…"
};

std::size_t display_width(std::string_view utf8);
// Cuts `utf8` to at most `width` columns, ending with "…" when something was cut.
std::string truncate_to_width(std::string_view utf8, std::size_t width);

// Table from pg_query structuredContent {columns:[{name,type}], rows:[{..}|[..]], row_count,
// truncated}. Returns "" when `structured` has no rows/columns shape.
std::string render_table(const nlohmann::json& structured, const RenderOptions& options);

std::string render_run(const AgentRun& run, const RenderOptions& options);
nlohmann::json run_to_json(const AgentRun& run);

}  // namespace larder::agent
