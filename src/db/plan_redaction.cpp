#include "db/plan_redaction.h"

#include <cmath>
#include <cstdio>
#include <string_view>

namespace larder::db {

namespace {

// Fields that describe the plan's shape: what the query text and the schema decide. (Which
// node types the planner chose still depends on statistics: docs/security-model.md.)
bool shape_field(std::string_view key) {
  static constexpr std::string_view kShape[] = {
      "Node Type",
      "Parent Relationship",
      "Subplan Name",
      "Relation Name",
      "Schema",
      "Alias",
      "Index Name",
      "Scan Direction",
      "Join Type",
      "Inner Unique",
      "Strategy",
      "Partial Mode",
      "Parallel Aware",
      "Async Capable",
      "Command",
      "Operation",
      "Sort Key",
      "Presorted Key",
      "Group Key",
      "Grouping Sets",
      "Group Keys",
      "Hash Keys",
      "Filter",
      "Index Cond",
      "Recheck Cond",
      "Join Filter",
      "Hash Cond",
      "Merge Cond",
      "One-Time Filter",
      "TID Cond",
      "Order By",
      "Run Condition",
      "Cache Key",
      "Cache Mode",
      "Function Name",
      "Function Call",
      "Table Function Name",
      "Table Function Call",
      "CTE Name",
      "Tuplestore Name",
      "Sampling Method",
      "Sampling Parameters",
      "Repeatable Seed",
      "Output",
      "Plans",
      "Plan",
  };
  for (auto k : kShape)
    if (k == key) return true;
  return false;
}

// EXPLAIN ANALYZE's own measurements of this execution over the caller's rows.
bool analyze_field(std::string_view key) {
  return key == "Actual Startup Time" || key == "Actual Total Time" || key == "Actual Rows" ||
         key == "Actual Loops" || key == "Planning Time" || key == "Execution Time";
}

// Nodes whose rows have not been through the scan's filters yet (the RLS predicate among
// them): a bitmap index scan returns every index match, visible or not.
bool unfiltered_node(const nlohmann::json& node) {
  auto it = node.find("Node Type");
  if (it == node.end() || !it->is_string()) return true;  // unknown: assume the worst
  const auto& type = it->get_ref<const std::string&>();
  return type == "Bitmap Index Scan" || type == "BitmapAnd" || type == "BitmapOr";
}

nlohmann::json redact(const nlohmann::json& value) {
  if (value.is_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& v : value) out.push_back(redact(v));
    return out;
  }
  if (!value.is_object()) return value;
  nlohmann::json out = nlohmann::json::object();
  const bool unfiltered = value.contains("Node Type") && unfiltered_node(value);
  for (const auto& [key, v] : value.items()) {
    if (shape_field(key)) {
      out[key] = redact(v);
    } else if (analyze_field(key)) {
      if (unfiltered && key == "Actual Rows") continue;
      if (v.is_number()) out[key] = v;
    }
  }
  return out;
}

}  // namespace

nlohmann::json redact_plan(const nlohmann::json& explain_output) {
  return redact(explain_output);
}

std::optional<double> plan_total_cost(std::string_view explain_json) {
  auto j = nlohmann::json::parse(explain_json, nullptr, false);
  if (j.is_discarded() || !j.is_array() || j.empty() || !j[0].is_object()) return std::nullopt;
  auto plan = j[0].find("Plan");
  if (plan == j[0].end() || !plan->is_object()) return std::nullopt;
  auto cost = plan->find("Total Cost");
  if (cost == plan->end() || !cost->is_number()) return std::nullopt;
  double c = cost->get<double>();
  if (!std::isfinite(c) || c < 0) return std::nullopt;
  return c;
}

std::string format_cost(double cost) {
  char buf[64];
  if (cost < 1e6) {
    std::snprintf(buf, sizeof buf, "%.0f", cost);
    return buf;
  }
  std::snprintf(buf, sizeof buf, "%.3g", cost);  // "3.2e+09"
  std::string s = buf;
  auto e = s.find('e');
  if (e == std::string::npos) return s;
  std::string mantissa = s.substr(0, e);
  std::string exponent = s.substr(e + 1);
  if (!exponent.empty() && exponent[0] == '+') exponent.erase(0, 1);
  while (exponent.size() > 1 && exponent[0] == '0') exponent.erase(0, 1);
  return mantissa + "e" + exponent;
}

std::string format_cost_magnitude(double cost) {
  if (!(cost >= 1)) return "1";
  return "1e" + std::to_string(static_cast<int>(std::lround(std::log10(cost))));
}

}  // namespace larder::db
