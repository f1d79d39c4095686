// The SQL prompts' logic. Each prompt embeds a description of the schema the caller may
// query (read as the query role, so it lists only what that role can see).
//   generate_sql  {nl_query}              write one PostgreSQL SELECT answering the question
//   validate_nl   {nl_query}              can the question be answered from this schema?
//   justify_sql   {nl_query, sql_query}   does the SQL answer the question? explain
//   generate_vega {nl_query, sql_query}   a Vega-Lite spec for the SQL's result
#pragma once

#include "base/result.h"
#include "policy/policy.h"
#include "tools/db_resources.h"

#include <nlohmann/json.hpp>

#include <string>

namespace larder::tools {

class DbPrompts {
 public:
  // `notes`: what the policy file says about the tables (policy_notes), after the schema.
  DbPrompts(DbResources& resources, std::string notes) : resources_(resources), notes_(std::move(notes)) {}

  // [{name, description, arguments:[{name, description, required}]}]
  static nlohmann::json list();

  // {description, messages:[{role:"user", content:{type:"text", text}}]}
  Result<nlohmann::json> get(const db::RequestContext& ctx, const std::string& name,
                             const nlohmann::json& args);

  // The schema description embedded in every prompt.
  Result<std::string> schema_description(const db::RequestContext& ctx);

 private:
  DbResources& resources_;
  std::string notes_;
};

// The policy file's descriptions as notes for the model: each table and described column,
// masked columns, public tables.
std::string policy_notes(const policy::Policy& policy);

// The description text for a structure() JSON (pure; unit-tested).
std::string describe_schema(const nlohmann::json& structure, const std::string& notes = "");

}  // namespace larder::tools
