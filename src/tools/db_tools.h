// The database tools' logic — pg_query, pg_explain, pg_metadata — as pure functions of the
// caller's RequestContext (built by the gate from the token) and the tool arguments. MCP
// registration lives elsewhere; these return the tool's structured result or an Error.
// Every tool that takes SQL passes it through the SQL guard (lock 3) before it runs.
// No tool accepts a connection string: the Database is fixed at server start.
#pragma once

#include "base/result.h"
#include "db/database.h"
#include "db/request_context.h"

#include <nlohmann/json.hpp>

namespace larder::tools {

class DbTools {
 public:
  explicit DbTools(db::Database& database) : db_(database) {}

  // `checked`, when given, is the database guard's verdict on args["query"] (the server's
  // registration checks the SQL before authorization, for the table facts); the SQL is then
  // not parsed again. Without it the tool runs the guard itself.

  // {query, params?, max_rows?} -> {columns:[{name,type}], rows:[{...}], row_count, truncated}
  Result<nlohmann::json> pg_query(const db::RequestContext& ctx, const nlohmann::json& args,
                                  const db::GuardedQuery* checked = nullptr);
  // {query, params?, analyze?} -> {plan: <EXPLAIN (FORMAT JSON) output, redacted>, note}:
  // the plan's shape without estimates or costs (db::redact_plan). analyze = true runs the
  // query (EXPLAIN ANALYZE, under the cost ceiling): the caller must treat it as a sensitive
  // read (db_registration classifies the call before admission).
  Result<nlohmann::json> pg_explain(const db::RequestContext& ctx, const nlohmann::json& args,
                                    const db::GuardedQuery* checked = nullptr);
  // {query} -> {fields:[{name,type,logicalType,distinctCount?,min?,max?}], rowCount, truncated, groupBy}
  Result<nlohmann::json> pg_metadata(const db::RequestContext& ctx, const nlohmann::json& args,
                                     const db::GuardedQuery* checked = nullptr);

  // JSON Schemas of the arguments, for registration (the biscuit_token argument, filled in
  // by our agent and never by a model, is not part of them).
  static nlohmann::json pg_query_input_schema();
  static nlohmann::json pg_explain_input_schema();
  static nlohmann::json pg_metadata_input_schema();

 private:
  db::Database& db_;
};

// "quantitative" (numeric types), "temporal" (date/time types) or "nominal" (the rest).
std::string logical_type(const std::string& pg_type);

// Tool arguments -> libpq text parameters: null, strings, numbers, booleans.
Result<std::vector<db::Param>> params_from_json(const nlohmann::json& params);

}  // namespace larder::tools
