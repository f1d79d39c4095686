#include "tools/db_tools.h"

#include <map>
#include <set>

namespace larder::tools {

namespace {

constexpr std::size_t kMaxQueryBytes = 100'000;
constexpr std::size_t kMaxParams = 100;

Result<std::string> query_arg(const nlohmann::json& args) {
  if (!args.is_object()) return make_error("tools.bad_arguments", "arguments must be an object");
  auto it = args.find("query");
  if (it == args.end() || !it->is_string())
    return make_error("tools.bad_arguments", "'query' (a string) is required");
  auto q = it->get<std::string>();
  if (q.find_first_not_of(" \t\r\n") == std::string::npos)
    return make_error("tools.bad_arguments", "'query' is empty");
  if (q.size() > kMaxQueryBytes)
    return make_error("tools.bad_arguments", "'query' is longer than 100000 bytes");
  return q;
}

// A verdict handed in by the caller counts only if it is this database's guard's, on this
// very text.
Result<void> check_verdict(const db::Database& db, const db::GuardedQuery& checked, const std::string& sql) {
  if (checked.sql() != sql || checked.issuer() != &db.guard())
    return make_error("sql_guard.internal",
                      "the guard's verdict is not this database's on this query text; refused");
  return {};
}

// Runs `sql` as guarded SQL: through the verdict the caller already has, or through the
// guard now.
Result<db::QueryResult> run_guarded(db::Database& db, const db::RequestContext& ctx, const std::string& sql,
                                    const std::vector<db::Param>& params, const db::GuardedQuery* checked) {
  if (checked == nullptr) return db.query(ctx, sql, params);
  if (auto ok = check_verdict(db, *checked, sql); !ok) return ok.error();
  return db.query(ctx, *checked, params);
}

Result<bool> analyze_arg(const nlohmann::json& args) {
  auto it = args.find("analyze");
  if (it == args.end() || it->is_null()) return false;
  if (!it->is_boolean()) return make_error("tools.bad_arguments", "'analyze' must be true or false");
  return it->get<bool>();
}

Result<std::vector<db::Param>> params_arg(const nlohmann::json& args) {
  auto it = args.find("params");
  if (it == args.end() || it->is_null()) return std::vector<db::Param>{};
  return params_from_json(*it);
}

}  // namespace

Result<std::vector<db::Param>> params_from_json(const nlohmann::json& params) {
  if (!params.is_array()) return make_error("tools.bad_arguments", "'params' must be an array");
  if (params.size() > kMaxParams) return make_error("tools.bad_arguments", "too many 'params' (max 100)");
  std::vector<db::Param> out;
  for (const auto& p : params) {
    if (p.is_null()) {
      out.emplace_back(std::nullopt);
    } else if (p.is_string()) {
      out.emplace_back(p.get<std::string>());
    } else if (p.is_boolean()) {
      out.emplace_back(p.get<bool>() ? "true" : "false");
    } else if (p.is_number()) {
      out.emplace_back(p.dump());
    } else {
      return make_error("tools.bad_arguments", "'params' values must be strings, numbers, booleans or null");
    }
  }
  return out;
}

std::string logical_type(const std::string& t) {
  static const std::set<std::string> quantitative = {"smallint",         "integer", "bigint", "real",
                                                     "double precision", "numeric", "money",  "oid"};
  static const std::set<std::string> temporal = {"date",
                                                 "time without time zone",
                                                 "time with time zone",
                                                 "timestamp without time zone",
                                                 "timestamp with time zone",
                                                 "interval"};
  std::string base = t.substr(0, t.find('('));
  while (!base.empty() && base.back() == ' ') base.pop_back();
  if (quantitative.count(base) != 0) return "quantitative";
  if (temporal.count(base) != 0) return "temporal";
  return "nominal";
}

Result<nlohmann::json> DbTools::pg_query(const db::RequestContext& ctx_in, const nlohmann::json& args,
                                         const db::GuardedQuery* checked) {
  auto query = query_arg(args);
  if (!query) return query.error();
  auto params = params_arg(args);
  if (!params) return params.error();
  db::RequestContext ctx = ctx_in;
  if (auto it = args.find("max_rows"); it != args.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<long long>() < 1)
      return make_error("tools.bad_arguments", "'max_rows' must be a positive integer");
    ctx.max_rows = std::min<std::size_t>(ctx.max_rows, static_cast<std::size_t>(it->get<long long>()));
  }
  auto r = run_guarded(db_, ctx, *query, *params, checked);
  if (!r) return r.error();
  return r->to_json();
}

Result<nlohmann::json> DbTools::pg_explain(const db::RequestContext& ctx, const nlohmann::json& args,
                                           const db::GuardedQuery* checked) {
  auto query = query_arg(args);
  if (!query) return query.error();
  auto params = params_arg(args);
  if (!params) return params.error();
  auto analyze = analyze_arg(args);
  if (!analyze) return analyze.error();
  // The database checks the text with the guard (one plain SELECT) before adding the fixed
  // EXPLAIN prefix, and redacts the plan: no estimate, cost or statistic of the whole table.
  Result<nlohmann::json> plan = make_error("tools.explain", "not run");
  if (checked != nullptr) {
    if (auto ok = check_verdict(db_, *checked, *query); !ok) return ok.error();
    plan = db_.explain(ctx, *checked, *params, *analyze);
  } else {
    plan = db_.explain(ctx, *query, *params, *analyze);
  }
  if (!plan) return plan.error();
  return nlohmann::json{
      {"plan", std::move(*plan)},
      {"note",
       *analyze ? "EXPLAIN ANALYZE over the rows you may see: actual times and the rows of nodes past every "
                  "filter; estimates, costs and counts of filtered rows are withheld"
                : "the plan's shape only: row, width and cost estimates are withheld (they describe the "
                  "whole table, not the rows you may see)"}};
}

Result<nlohmann::json> DbTools::pg_metadata(const db::RequestContext& ctx, const nlohmann::json& args,
                                            const db::GuardedQuery* checked) {
  auto query = query_arg(args);
  if (!query) return query.error();
  auto params = params_arg(args);
  if (!params) return params.error();
  auto r = run_guarded(db_, ctx, *query, *params, checked);
  if (!r) return r.error();
  nlohmann::json fields = nlohmann::json::array();
  nlohmann::json group_by = nullptr;
  std::size_t best_distinct = 0;
  for (std::size_t c = 0; c < r->columns.size(); ++c) {
    const auto& col = r->columns[c];
    std::string lt = logical_type(col.type);
    nlohmann::json f = {{"name", col.name}, {"type", col.type}, {"logicalType", lt}};
    if (lt == "nominal") {
      std::set<std::string> distinct;
      for (const auto& row : r->rows)
        if (row[c]) distinct.insert(*row[c]);
      f["distinctCount"] = distinct.size();
      // Suggest grouping by the nominal field with the fewest (but more than one) values.
      if (distinct.size() > 1 && distinct.size() <= 50 &&
          (group_by.is_null() || distinct.size() < best_distinct)) {
        group_by = {{"field", col.name}, {"distinctCount", distinct.size()}};
        best_distinct = distinct.size();
      }
    } else {
      std::optional<std::string> min_text, max_text;
      std::optional<double> min_num, max_num;
      for (const auto& row : r->rows) {
        if (!row[c]) continue;
        if (lt == "temporal") {  // ISO-8601 output sorts as text
          if (!min_text || *row[c] < *min_text) min_text = row[c];
          if (!max_text || *row[c] > *max_text) max_text = row[c];
        } else {
          auto v = db::pg_value_to_json(col.oid, row[c]);
          if (!v.is_number()) continue;
          double d = v.get<double>();
          if (!min_num || d < *min_num) min_num = d;
          if (!max_num || d > *max_num) max_num = d;
        }
      }
      if (lt == "temporal") {
        f["min"] = min_text ? nlohmann::json(*min_text) : nlohmann::json(nullptr);
        f["max"] = max_text ? nlohmann::json(*max_text) : nlohmann::json(nullptr);
      } else {
        f["min"] = min_num ? nlohmann::json(*min_num) : nlohmann::json(nullptr);
        f["max"] = max_num ? nlohmann::json(*max_num) : nlohmann::json(nullptr);
      }
    }
    fields.push_back(std::move(f));
  }
  return nlohmann::json{{"fields", std::move(fields)},
                        {"rowCount", r->rows.size()},
                        {"truncated", r->truncated},
                        {"groupBy", std::move(group_by)}};
}

nlohmann::json DbTools::pg_query_input_schema() {
  return {{"type", "object"},
          {"properties",
           {{"query",
             {{"type", "string"}, {"description", "One PostgreSQL SELECT statement; use $1, $2 for values"}}},
            {"params",
             {{"type", "array"},
              {"description", "Values for $1, $2, ... (bound as parameters, never spliced)"},
              {"items", {{"type", {"string", "number", "boolean", "null"}}}}}},
            {"max_rows",
             {{"type", "integer"}, {"minimum", 1}, {"description", "Return at most this many rows"}}}}},
          {"required", {"query"}},
          {"additionalProperties", false}};
}

nlohmann::json DbTools::pg_explain_input_schema() {
  auto s = pg_query_input_schema();
  s["properties"].erase("max_rows");
  s["properties"]["analyze"] = {
      {"type", "boolean"},
      {"description",
       "Run the query and report actual times (EXPLAIN ANALYZE). It reads your rows like pg_query does."}};
  return s;
}

nlohmann::json DbTools::pg_metadata_input_schema() {
  return {
      {"type", "object"},
      {"properties", {{"query", {{"type", "string"}, {"description", "One PostgreSQL SELECT statement"}}}}},
      {"required", {"query"}},
      {"additionalProperties", false}};
}

}  // namespace larder::tools
