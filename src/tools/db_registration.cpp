#include "tools/db_registration.h"

#include "db/sql_guard.h"
#include "policy/policy.h"
#include "tools/db_prompts.h"
#include "tools/db_resources.h"
#include "tools/db_tools.h"
#include "tools/guarded_call.h"
#include "tools/serve_config.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <mutex>

namespace larder::tools {

class DbService {
 public:
  DbService(gate::Pipeline& pipeline, const ServeConfig& config, db::Database& database,
            const policy::Policy& policy, std::string database_name, DbServiceOptions options)
      : pipeline(pipeline),
        database(database),
        policy(policy),
        options(options),
        tools(database),
        resources(database, std::move(database_name)),
        prompts(resources, policy_notes(policy)),
        config_(std::make_shared<const ServeConfig>(config)) {}

  gate::Pipeline& pipeline;
  db::Database& database;
  const policy::Policy& policy;
  DbServiceOptions options;
  DbTools tools;
  DbResources resources;
  DbPrompts prompts;
  // Declared query tools: name -> the template as the guard accepted it at start.
  std::map<std::string, std::pair<const policy::QueryTool*, db::GuardedQuery>> declared;
  // pg_query, pg_explain, pg_metadata as far as the policy file allows them, served or not:
  // a reload's [tools] enabled switches them on and off (reload_db_service).
  mcp::Server* server = nullptr;
  std::map<std::string, std::pair<mcp::Tool, mcp::ToolHandler>> switchable;

  // `cancel`: the MCP request's (the caller's notifications/cancelled stops the statement).
  db::RequestContext context(const gate::Admission& admission, const CancellationToken& cancel) const {
    db::RequestContext ctx;
    ctx.cancel = cancel;
    ctx.stopping = options.stopping;
    ctx.facts = admission.grant.facts;
    ctx.unmask = admission.grant.unmask;
    ctx.deadline = std::chrono::steady_clock::now() + database.config().default_timeout;
    ctx.max_rows = options.max_rows;
    ctx.max_bytes = options.max_result_bytes;
    ctx.guard_enabled = true;  // the guard is never off on a served path
    return ctx;
  }

  // The configuration whose [tools] classes decide each call's data flow: a reload swaps it
  // (a call reads it once, before admission).
  std::shared_ptr<const ServeConfig> config() const {
    std::lock_guard lock(config_mu_);
    return config_;
  }
  void set_config(std::shared_ptr<const ServeConfig> config) {
    std::lock_guard lock(config_mu_);
    config_ = std::move(config);
  }

  gate::CallFacts facts(const std::string& method, const std::string& name) const {
    return gate::CallFacts{method, name, config()->data_flow(name), {}, {}};
  }

  // The name tokens use for a relation the guard reported: the policy's short name
  // ("accounts" for public.accounts and for its masking view).
  std::string fact_name(const std::string& relation) const {
    if (const policy::Relation* r = policy.behind(relation)) return r->short_name();
    constexpr std::string_view kPublic = "public.";
    if (relation.rfind(kPublic, 0) == 0) return relation.substr(kPublic.size());
    return relation;
  }

  // A sensitive read that touches only relations the policy classes public reads nothing
  // sensitive: it neither taints the lineage nor counts as a sensitive read.
  gate::DataFlow flow_for(gate::DataFlow configured, const db::GuardedQuery& q) const {
    if (configured != gate::DataFlow::kSensitiveRead) return configured;
    for (const auto& relation : q.relations) {
      const policy::Relation* r = policy.behind(relation);
      if (r == nullptr || r->sensitivity != policy::Sensitivity::kPublic) return configured;
    }
    return gate::DataFlow::kNeutral;
  }

  void add_relations(gate::CallRequest& request, const db::GuardedQuery& q) const {
    for (const auto& relation : q.relations) request.facts.tables.insert(fact_name(relation));
    for (const auto& [relation, cols] : q.columns) request.facts.columns[fact_name(relation)] = cols;
    request.sql_fingerprint = q.fingerprint;
  }

 private:
  mutable std::mutex config_mu_;
  std::shared_ptr<const ServeConfig> config_;  // guarded by config_mu_
};

void reload_db_service(DbService& service, const ServeConfig& config) {
  service.set_config(std::make_shared<const ServeConfig>(config));
  const auto served = service.server->tools();
  for (const auto& [name, entry] : service.switchable) {
    const bool wanted = config.tools.empty() ||
                        std::find(config.tools.begin(), config.tools.end(), name) != config.tools.end();
    const bool serving =
        std::any_of(served.begin(), served.end(), [&, n = name](const mcp::Tool& t) { return t.name == n; });
    if (wanted && !serving) {
      if (auto added = service.server->add_tool(entry.first, entry.second); !added)
        spdlog::error("reload: cannot serve {}: {}", name, added.error().message);
    } else if (!wanted && serving) {
      service.server->remove_tool(name);
    }
  }
}

std::vector<std::string> switchable_tools(const DbService& service) {
  std::vector<std::string> out;
  for (const auto& [name, entry] : service.switchable) out.push_back(name);
  return out;
}

namespace {

BodyFailure body_error(const Error& e) {
  // Guard refusals are lock 3's; everything else from the database is the database's, and a
  // statement that reached the server (db.statement) has read the data — as has one whose
  // sealed context the database refused (db.bad_context: the SQL had started), counted so
  // for taint even when the refusal came before it (a context Larder would not seal).
  using Reach = BodyFailure::Reach;
  if (e.code.rfind("sql_guard", 0) == 0) return {gate::Lock::kSqlGuard, Reach::kNothingSent, e.message};
  if (e.code == "db.statement" || e.code == "db.bad_context")
    return {gate::Lock::kDatabase, Reach::kDataReached, e.message};
  if (db::is_unavailable(e)) return {gate::Lock::kDatabase, Reach::kUnavailable, e.message};
  return {gate::Lock::kDatabase, Reach::kNothingSent, e.message};
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
    s.add_relations(request, *guarded);
    request.facts.flow = s.flow_for(request.facts.flow, *guarded);
  }
  return run_guarded_tool(
      ctx, s.pipeline, std::move(request), [&](const gate::Admission& admission) -> BodyResult<ToolBody> {
        // A query the guard refused is refused only once the caller is known to be entitled to
        // ask (so the guard's verdict is not an oracle for unauthenticated callers).
        if (!guarded)
          return BodyFailure{gate::Lock::kSqlGuard, BodyFailure::Reach::kNothingSent,
                             guarded.error().message};
        auto produced =
            (s.tools.*logic)(s.context(admission, ctx.cancellation()), without_token(arguments), &*guarded);
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

// A declared tool's arguments as typed parameters ($1.. in declaration order): each checked
// against its declared type; an absent optional one is NULL.
Result<std::vector<db::Param>> declared_params(const policy::QueryTool& tool, const nlohmann::json& args) {
  std::vector<db::Param> out;
  if (!args.is_object()) return make_error("tools.bad_arguments", "arguments must be an object");
  for (auto it = args.begin(); it != args.end(); ++it) {
    if (it.key() == "biscuit_token") continue;
    bool known = false;
    for (const auto& p : tool.params) known |= p.name == it.key();
    if (!known) return make_error("tools.bad_arguments", "unknown argument '" + it.key() + "'");
  }
  for (const auto& p : tool.params) {
    auto it = args.find(p.name);
    if (it == args.end() || it->is_null()) {
      if (p.required) return make_error("tools.bad_arguments", "'" + p.name + "' is required");
      out.push_back(std::nullopt);
      continue;
    }
    std::string text;
    using policy::ValueType;
    if (p.type == ValueType::kBoolean) {
      if (!it->is_boolean())
        return make_error("tools.bad_arguments", "'" + p.name + "' must be true or false");
      text = it->get<bool>() ? "true" : "false";
    } else if (p.type == ValueType::kInteger || p.type == ValueType::kBigint) {
      if (!it->is_number_integer())
        return make_error("tools.bad_arguments", "'" + p.name + "' must be an integer");
      text = it->dump();
    } else {
      if (!it->is_string()) return make_error("tools.bad_arguments", "'" + p.name + "' must be a string");
      text = it->get<std::string>();
    }
    if (!policy::valid_value(p.type, text) || text.size() > 4096)
      return make_error("tools.bad_arguments",
                        "'" + p.name + "' is not a valid " + std::string(policy::to_string(p.type)));
    out.push_back(std::move(text));
  }
  return out;
}

nlohmann::json declared_schema(const policy::QueryTool& tool) {
  nlohmann::json props = nlohmann::json::object();
  nlohmann::json required = nlohmann::json::array();
  for (const auto& p : tool.params) {
    nlohmann::json prop;
    using policy::ValueType;
    switch (p.type) {
      case ValueType::kBoolean:
        prop["type"] = "boolean";
        break;
      case ValueType::kInteger:
        prop["type"] = "integer";
        prop["minimum"] = std::numeric_limits<std::int32_t>::min();
        prop["maximum"] = std::numeric_limits<std::int32_t>::max();
        break;
      case ValueType::kBigint:
        prop["type"] = "integer";
        break;
      case ValueType::kUuid:
        prop["type"] = "string";
        prop["format"] = "uuid";
        break;
      case ValueType::kDate:
        prop["type"] = "string";
        prop["format"] = "date";
        break;
      case ValueType::kText:
        prop["type"] = "string";
        prop["maxLength"] = 4096;
        break;
    }
    if (!p.description.empty()) prop["description"] = p.description;
    props[p.name] = std::move(prop);
    if (p.required) required.push_back(p.name);
  }
  return {{"type", "object"}, {"properties", std::move(props)}, {"required", std::move(required)}};
}

mcp::ToolResult run_declared_tool(DbService& s, mcp::RequestContext& ctx, const nlohmann::json& arguments,
                                  const std::string& name) {
  const auto& [tool, guarded] = s.declared.at(name);
  // Unknown to the configuration's classes: sensitive unless every relation it reads is public.
  gate::CallFacts facts{"tools/call", name, s.flow_for(gate::DataFlow::kSensitiveRead, guarded), {}, {}};
  gate::CallRequest request = call_request(ctx, arguments, std::move(facts));
  s.add_relations(request, guarded);
  return run_guarded_tool(
      ctx, s.pipeline, std::move(request), [&](const gate::Admission& admission) -> BodyResult<ToolBody> {
        auto params = declared_params(*tool, arguments);
        if (!params) return body_error(params.error());
        auto produced = s.database.query(s.context(admission, ctx.cancellation()), guarded, *params);
        if (!produced) return body_error(produced.error());
        ToolBody body;
        body.rows = static_cast<int64_t>(produced->rows.size());
        auto json = produced->to_json();
        body.result.content = nlohmann::json::array({mcp::text_content(json.dump())});
        body.result.structured_content = std::move(json);
        return body;
      });
}

}  // namespace

Result<std::shared_ptr<DbService>> register_db_service(mcp::Server& server, gate::Pipeline& pipeline,
                                                       const ServeConfig& config, db::Database& database,
                                                       const policy::Policy& policy,
                                                       const std::string& database_name,
                                                       DbServiceOptions options) {
  auto service = std::make_shared<DbService>(pipeline, config, database, policy, database_name, options);
  DbService& s = *service;
  s.server = &server;
  // Free-form SQL only when the policy file allows it ([options] pg_query).
  auto allowed = [&](const std::string& name) {
    return !((name == "pg_query" || name == "pg_explain") && !policy.pg_query);
  };
  auto enabled = [&](const std::string& name) {
    return config.tools.empty() ||
           std::find(config.tools.begin(), config.tools.end(), name) != config.tools.end();
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
       "Runs one read-only PostgreSQL SELECT against the database and returns the rows you are "
       "entitled to see (row-level security applies). Returns {columns, rows, row_count, truncated}.",
       DbTools::pg_query_input_schema(), &DbTools::pg_query},
      {"pg_explain", "Explain a SQL query",
       "Returns PostgreSQL's query plan (EXPLAIN, FORMAT JSON) for one SELECT: its shape (nodes, relations, "
       "indexes, conditions) without row or cost estimates, without running it — unless analyze is true "
       "(EXPLAIN ANALYZE: actual times; it reads your rows like pg_query).",
       DbTools::pg_explain_input_schema(), &DbTools::pg_explain},
      {"pg_metadata", "Visualization metadata for a query",
       "Describes each field a SELECT returns: logical type (quantitative, temporal, nominal), distinct "
       "counts "
       "for nominal fields, ranges for temporal ones, the row count and a suggested grouping.",
       DbTools::pg_metadata_input_schema(), &DbTools::pg_metadata},
  };
  for (const auto& t : sql_tools) {
    if (!allowed(t.name)) continue;
    mcp::Tool tool;
    tool.name = t.name;
    tool.title = t.title;
    tool.description = t.description;
    tool.input_schema = with_token_property(t.schema);
    tool.annotations = {{"readOnlyHint", true},
                        {"destructiveHint", false},
                        {"idempotentHint", true},
                        {"openWorldHint", false}};
    std::string name = t.name;
    ToolLogic logic = t.logic;
    mcp::ToolHandler handler = [&s, name, logic](mcp::RequestContext& ctx, const nlohmann::json& args) {
      return run_sql_tool(s, ctx, args, name, logic);
    };
    s.switchable[name] = {tool, handler};
    if (!enabled(name)) continue;
    auto added = server.add_tool(std::move(tool), std::move(handler));
    if (!added) return added.error();
  }

  // Declared query tools: their SQL passes the guard once, here; a template it refuses stops
  // the server with the file, line and key.
  const auto builtin = known_tools();
  for (const auto& t : policy.tools) {
    const policy::Where& where = t.where;
    if (std::find(builtin.begin(), builtin.end(), t.name) != builtin.end())
      return policy::policy_error(where, "a declared tool may not take the name of a built-in tool");
    auto guarded = database.guard().check(t.sql);
    if (!guarded)
      return policy::policy_error(policy::Where{where.file, where.line, where.key + ".sql"},
                                  "the SQL guard refuses this query: " + guarded.error().message);
    if (guarded->param_count != static_cast<int>(t.params.size()))
      return policy::policy_error(where, "the SQL uses $1..$" + std::to_string(guarded->param_count) +
                                             " but " + std::to_string(t.params.size()) +
                                             " parameter(s) are declared");
    s.declared.emplace(t.name, std::make_pair(&t, std::move(*guarded)));
    mcp::Tool tool;
    tool.name = t.name;
    tool.description = t.description;
    tool.input_schema = with_token_property(declared_schema(t));
    tool.annotations = {{"readOnlyHint", true},
                        {"destructiveHint", false},
                        {"idempotentHint", true},
                        {"openWorldHint", false}};
    std::string name = t.name;
    auto added =
        server.add_tool(std::move(tool), [&s, name](mcp::RequestContext& ctx, const nlohmann::json& args) {
          return run_declared_tool(s, ctx, args, name);
        });
    if (!added) return added.error();
  }

  // Resources: catalog descriptions and table samples, all through the pipeline.
  auto read_resource = [&s](mcp::RequestContext& ctx, const std::string& uri) -> mcp::HandlerResult {
    gate::CallFacts facts = s.facts("resources/read", uri);
    auto address = parse_resource_uri(uri, s.resources.database_name());
    if (address && (address->kind == ResourceAddress::Kind::sample ||
                    address->kind == ResourceAddress::Kind::rowcount)) {
      facts.flow = gate::DataFlow::kSensitiveRead;  // rows (or their count) leave the database
      facts.tables.insert(s.fact_name(address->schema + "." + address->table));
      if (const policy::Relation* r = s.policy.behind(address->schema + "." + address->table);
          r != nullptr && r->sensitivity == policy::Sensitivity::kPublic)
        facts.flow = gate::DataFlow::kNeutral;
    } else if (facts.flow == gate::DataFlow::kEgress) {
      facts.flow = gate::DataFlow::kNeutral;  // catalog descriptions: unconfigured URIs are not egress
    }
    return run_guarded_read(
        ctx, s.pipeline, call_request(ctx, nlohmann::json::object(), facts),
        [&](const gate::Admission& admission, std::optional<int64_t>& rows) -> BodyResult<nlohmann::json> {
          auto content = s.resources.read(s.context(admission, ctx.cancellation()), uri);
          if (!content) return body_error(content.error());
          if (content->contains("rows") && (*content)["rows"].is_array()) rows = (*content)["rows"].size();
          return nlohmann::json::array(
              {{{"uri", uri}, {"mimeType", "application/json"}, {"text", content->dump(2)}}});
        });
  };
  for (const auto& r : s.resources.resources()) {
    mcp::Resource resource;
    resource.uri = r.uri;
    resource.name = r.name;
    resource.description = r.description;
    resource.mime_type = r.mime_type;
    auto added = server.add_resource(std::move(resource), read_resource);
    if (!added) return added.error();
  }
  for (const auto& r : s.resources.templates()) {
    mcp::ResourceTemplate tmpl;
    tmpl.uri_template = r.uri;
    tmpl.name = r.name;
    tmpl.description = r.description;
    tmpl.mime_type = r.mime_type;
    auto added = server.add_resource_template(
        std::move(tmpl),
        [read_resource](mcp::RequestContext& ctx, const std::string& uri,
                        const std::map<std::string, std::string>&) { return read_resource(ctx, uri); });
    if (!added) return added.error();
  }

  // Prompts: each embeds the schema the caller may see.
  for (const auto& p : DbPrompts::list()) {
    mcp::Prompt prompt;
    prompt.name = p.value("name", "");
    prompt.description = p.value("description", "");
    for (const auto& a : p.value("arguments", nlohmann::json::array())) {
      prompt.arguments.push_back(
          {a.value("name", ""), "", a.value("description", ""), a.value("required", false)});
    }
    std::string name = prompt.name;
    auto added = server.add_prompt(
        std::move(prompt),
        [&s, name](mcp::RequestContext& ctx, const std::map<std::string, std::string>& arguments) {
          nlohmann::json args = nlohmann::json::object();
          for (const auto& [k, v] : arguments) args[k] = v;
          gate::CallFacts facts = s.facts("prompts/get", name);
          if (facts.flow == gate::DataFlow::kEgress) facts.flow = gate::DataFlow::kNeutral;
          return run_guarded_read(
              ctx, s.pipeline, call_request(ctx, nlohmann::json::object(), facts),
              [&](const gate::Admission& admission, std::optional<int64_t>&) -> BodyResult<nlohmann::json> {
                auto got = s.prompts.get(s.context(admission, ctx.cancellation()), name, args);
                if (!got) return body_error(got.error());
                return std::move(*got);
              });
        });
    if (!added) return added.error();
  }
  return service;
}

}  // namespace larder::tools
