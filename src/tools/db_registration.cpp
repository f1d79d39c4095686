#include "tools/db_registration.h"

#include "db/sql_guard.h"
#include "tools/db_prompts.h"
#include "tools/db_resources.h"
#include "tools/db_tools.h"
#include "tools/guarded_call.h"

#include <algorithm>
#include <chrono>

namespace larder::tools {

class DbService {
 public:
  DbService(gate::Pipeline& pipeline, const gate::ServeConfig& config, db::Database& database, DbServiceOptions options)
      : pipeline(pipeline),
        config(config),
        database(database),
        options(options),
        tools(database),
        resources(database),
        prompts(resources) {}

  gate::Pipeline& pipeline;
  const gate::ServeConfig& config;
  db::Database& database;
  DbServiceOptions options;
  DbTools tools;
  DbResources resources;
  DbPrompts prompts;

  db::RequestContext context(const gate::Admission& admission) const {
    db::RequestContext ctx;
    ctx.patient_names = admission.grant.patient_names;
    ctx.roles = admission.grant.roles;
    ctx.hospitals = admission.grant.hospitals;
    ctx.deadline = std::chrono::steady_clock::now() + options.statement_timeout;
    ctx.max_rows = options.max_rows;
    ctx.max_bytes = options.max_result_bytes;
    ctx.guard_enabled = true;  // the guard is never off on a served path
    return ctx;
  }

  gate::CallFacts facts(const std::string& method, const std::string& name) const {
    return gate::CallFacts{method, name, config.data_flow(name), {}, {}};
  }
};

namespace {

// "public.health_records" → "health_records": the public schema is the default namespace
// in the vocabulary tokens use; other schemas keep their qualifier.
std::string fact_name(const std::string& relation) {
  constexpr std::string_view kPublic = "public.";
  if (relation.rfind(kPublic, 0) == 0) return relation.substr(kPublic.size());
  return relation;
}

Error body_error(const Error& e) {
  // Guard refusals are lock 3's; everything else from the database is the database's, and a
  // statement that reached the server (db.statement) has read the data.
  if (e.code.rfind("sql_guard", 0) == 0) return make_error("lock:sql-guard", e.message);
  if (e.code == "db.statement") return make_error(kDataReached, e.message);
  if (db::is_unavailable(e)) return make_error(kUnavailable, e.message);
  return make_error("lock:database", e.message);
}

nlohmann::json with_token_property(nlohmann::json schema) {
  if (!schema.contains("properties")) schema["properties"] = nlohmann::json::object();
  schema["properties"]["biscuit_token"] = biscuit_token_property();
  return schema;
}

bool explain_runs_query(const nlohmann::json& arguments) {
  if (!arguments.is_object()) return false;
  auto it = arguments.find("analyze");
  return it != arguments.end() && !it->is_null() && !(it->is_boolean() && !it->get<bool>());
}

using ToolLogic = Result<nlohmann::json> (DbTools::*)(const db::RequestContext&, const nlohmann::json&,
                                                      const db::GuardedQuery*);

mcp::ToolResult run_sql_tool(DbService& s, mcp::RequestContext& ctx, const nlohmann::json& arguments,
                             const std::string& name, ToolLogic logic) {
  gate::CallFacts facts = s.facts("tools/call", name);
  // EXPLAIN ANALYZE runs the query: the call reads rows, whatever pg_explain is classed as.
  // Decided before admission, so a refused call is refused as the read it would be (anything
  // but an absent, null or false `analyze` counts; the tool refuses non-booleans anyway).
  if (name == "pg_explain" && explain_runs_query(arguments)) facts.flow = gate::DataFlow::kSensitiveRead;
  gate::CallRequest request = call_request(ctx, arguments, std::move(facts));
  const std::string sql = arguments.value("query", "");
  auto guard_started = std::chrono::steady_clock::now();
  auto guarded = s.database.guard().check(sql);
  request.timings.guard_us = gate::micros_since(guard_started);
  if (guarded) {
    for (const auto& relation : guarded->relations) request.facts.tables.insert(fact_name(relation));
    for (const auto& [relation, cols] : guarded->columns) request.facts.columns[fact_name(relation)] = cols;
    request.sql_fingerprint = guarded->fingerprint;
  }
  return run_guarded_tool(s.pipeline, std::move(request), [&](const gate::Admission& admission) -> Result<ToolBody> {
    // A query the guard refused is refused only once the caller is known to be entitled to
    // ask (so the guard's verdict is not an oracle for unauthenticated callers).
    if (!guarded) return make_error("lock:sql-guard", guarded.error().message);
    auto produced = (s.tools.*logic)(s.context(admission), without_token(arguments), &*guarded);
    if (!produced) return body_error(produced.error());
    ToolBody body;
    if (produced->contains("row_count") && (*produced)["row_count"].is_number_integer()) {
      body.rows = (*produced)["row_count"].get<int64_t>();
    } else if (produced->contains("rowCount") && (*produced)["rowCount"].is_number_integer()) {
      body.rows = (*produced)["rowCount"].get<int64_t>();
    }
    body.result.content = nlohmann::json::array({mcp::text_content(produced->dump())});
    body.result.structured_content = std::move(*produced);
    return body;
  });
}

}  // namespace

Result<std::shared_ptr<DbService>> register_db_service(mcp::Server& server, gate::Pipeline& pipeline,
                                                       const gate::ServeConfig& config, db::Database& database,
                                                       DbServiceOptions options) {
  auto service = std::make_shared<DbService>(pipeline, config, database, options);
  DbService& s = *service;
  auto enabled = [&](const std::string& name) {
    return config.tools.empty() || std::find(config.tools.begin(), config.tools.end(), name) != config.tools.end();
  };

  struct SqlTool {
    const char* name;
    const char* title;
    const char* description;
    nlohmann::json schema;
    ToolLogic logic;
  };
  const SqlTool sql_tools[] = {
      {"pg_query", "Run a read-only SQL query",
       "Runs one read-only PostgreSQL SELECT against the healthcare database and returns the rows you are "
       "entitled to see (row-level security applies). Returns {columns, rows, row_count, truncated}.",
       DbTools::pg_query_input_schema(), &DbTools::pg_query},
      {"pg_explain", "Explain a SQL query",
       "Returns PostgreSQL's query plan (EXPLAIN, FORMAT JSON) for one SELECT: its shape (nodes, relations, "
       "indexes, conditions) without row or cost estimates, without running it — unless analyze is true "
       "(EXPLAIN ANALYZE: actual times; it reads your rows like pg_query).",
       DbTools::pg_explain_input_schema(), &DbTools::pg_explain},
      {"pg_metadata", "Visualization metadata for a query",
       "Describes each field a SELECT returns: logical type (quantitative, temporal, nominal), distinct counts "
       "for nominal fields, ranges for temporal ones, the row count and a suggested grouping.",
       DbTools::pg_metadata_input_schema(), &DbTools::pg_metadata},
  };
  for (const auto& t : sql_tools) {
    if (!enabled(t.name)) continue;
    mcp::Tool tool;
    tool.name = t.name;
    tool.title = t.title;
    tool.description = t.description;
    tool.input_schema = with_token_property(t.schema);
    tool.annotations = {{"readOnlyHint", true}, {"destructiveHint", false}, {"idempotentHint", true},
                        {"openWorldHint", false}};
    std::string name = t.name;
    ToolLogic logic = t.logic;
    auto added = server.add_tool(std::move(tool), [&s, name, logic](mcp::RequestContext& ctx, const nlohmann::json& args) {
      return run_sql_tool(s, ctx, args, name, logic);
    });
    if (!added) return added.error();
  }

  // Resources: catalog descriptions and table samples, all through the pipeline.
  auto read_resource = [&s](mcp::RequestContext& ctx, const std::string& uri) -> Result<nlohmann::json> {
    gate::CallFacts facts = s.facts("resources/read", uri);
    auto address = parse_resource_uri(uri);
    if (address && (address->kind == ResourceAddress::Kind::sample ||
                    address->kind == ResourceAddress::Kind::rowcount)) {
      facts.flow = gate::DataFlow::kSensitiveRead;  // rows (or their count) leave the database
      facts.tables.insert(address->schema == "public" ? address->table : address->schema + "." + address->table);
    } else if (facts.flow == gate::DataFlow::kEgress) {
      facts.flow = gate::DataFlow::kNeutral;  // catalog descriptions: unconfigured URIs are not egress
    }
    return run_guarded_read(
        s.pipeline, call_request(ctx, nlohmann::json::object(), facts),
        [&](const gate::Admission& admission, std::optional<int64_t>& rows) -> Result<nlohmann::json> {
          auto content = s.resources.read(s.context(admission), uri);
          if (!content) return body_error(content.error());
          if (content->contains("rows") && (*content)["rows"].is_array()) rows = (*content)["rows"].size();
          return nlohmann::json::array(
              {{{"uri", uri}, {"mimeType", "application/json"}, {"text", content->dump(2)}}});
        });
  };
  for (const auto& r : DbResources::resources()) {
    mcp::Resource resource;
    resource.uri = r.uri;
    resource.name = r.name;
    resource.description = r.description;
    resource.mime_type = r.mime_type;
    auto added = server.add_resource(std::move(resource), read_resource);
    if (!added) return added.error();
  }
  for (const auto& r : DbResources::templates()) {
    mcp::ResourceTemplate tmpl;
    tmpl.uri_template = r.uri;
    tmpl.name = r.name;
    tmpl.description = r.description;
    tmpl.mime_type = r.mime_type;
    auto added = server.add_resource_template(
        std::move(tmpl), [read_resource](mcp::RequestContext& ctx, const std::string& uri,
                                         const std::map<std::string, std::string>&) { return read_resource(ctx, uri); });
    if (!added) return added.error();
  }

  // Prompts: each embeds the schema the caller may see.
  for (const auto& p : DbPrompts::list()) {
    mcp::Prompt prompt;
    prompt.name = p.value("name", "");
    prompt.description = p.value("description", "");
    for (const auto& a : p.value("arguments", nlohmann::json::array())) {
      prompt.arguments.push_back({a.value("name", ""), "", a.value("description", ""), a.value("required", false)});
    }
    std::string name = prompt.name;
    auto added = server.add_prompt(
        std::move(prompt), [&s, name](mcp::RequestContext& ctx, const std::map<std::string, std::string>& arguments) {
          nlohmann::json args = nlohmann::json::object();
          for (const auto& [k, v] : arguments) args[k] = v;
          gate::CallFacts facts = s.facts("prompts/get", name);
          if (facts.flow == gate::DataFlow::kEgress) facts.flow = gate::DataFlow::kNeutral;
          return run_guarded_read(s.pipeline, call_request(ctx, nlohmann::json::object(), facts),
                                  [&](const gate::Admission& admission, std::optional<int64_t>&) -> Result<nlohmann::json> {
                                    auto got = s.prompts.get(s.context(admission), name, args);
                                    if (!got) return body_error(got.error());
                                    return got;
                                  });
        });
    if (!added) return added.error();
  }
  return service;
}

}  // namespace larder::tools
