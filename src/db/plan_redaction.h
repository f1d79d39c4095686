// What pg_explain may show of PostgreSQL's EXPLAIN (FORMAT JSON) output, and what the cost
// ceiling reads from it.
//
// Plan estimates are computed from the planner's statistics of the whole table, whatever the
// caller may see: "Plan Rows" of `WHERE diagnosis = 'Cancer'`, divided by the unfiltered
// estimate, gives that condition's share of all patients (finding 8). EXPLAIN
// ANALYZE counts rows the RLS filter removed ("Rows Removed by Filter") and rows an index
// found before the filter (a Bitmap Index Scan's "Actual Rows"). So the plan is rebuilt from
// an allow-list: its shape (node types, relations, indexes, conditions, keys) and, for
// ANALYZE, the times and the row counts of nodes whose rows passed every filter. Anything
// else — estimates, widths, costs, planned workers, buffers, heap fetches, memory, any field
// a later PostgreSQL adds — is dropped.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace larder::db {

// EXPLAIN (FORMAT JSON) output ([{"Plan": {...}, ...}]) with only allow-listed fields.
nlohmann::json redact_plan(const nlohmann::json& explain_output);

// The root plan's "Total Cost" in EXPLAIN (FORMAT JSON) text; nullopt when unreadable.
std::optional<double> plan_total_cost(std::string_view explain_json);

// A cost for messages: "850", "3.2e9", "1e7".
std::string format_cost(double cost);
// Its order of magnitude, "1e10" for 6.6e9: what a refusal tells the caller about the planner's
// estimate (an exact estimate is a statistic of the whole table; docs/security-model.md).
std::string format_cost_magnitude(double cost);

}  // namespace larder::db
