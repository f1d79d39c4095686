#include "tools/db_resources.h"

#include "policy/policy.h"

#include <cctype>

namespace larder::tools {

namespace {

// Tables the query role may SELECT, in schemas it may use (system schemas excluded).
constexpr const char* kVisibleTables =
    "SELECT n.nspname AS schema, c.relname AS table, c.relkind::text AS kind, "
    "pg_catalog.obj_description(c.oid, 'pg_class') AS comment "
    "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') "
    "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%' "
    "AND pg_catalog.has_schema_privilege(n.oid, 'USAGE') "
    "AND pg_catalog.has_any_column_privilege(c.oid, 'SELECT') ";

constexpr const char* kColumns =
    "SELECT a.attname AS name, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type, "
    "NOT a.attnotnull AS nullable, pg_catalog.pg_get_expr(d.adbin, d.adrelid) AS default, "
    "pg_catalog.col_description(a.attrelid, a.attnum) AS comment, "
    "a.attidentity <> '' AS identity "
    "FROM pg_catalog.pg_attribute a "
    "JOIN pg_catalog.pg_class c ON c.oid = a.attrelid JOIN pg_catalog.pg_namespace n ON n.oid = "
    "c.relnamespace "
    "LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
    "WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped "
    "AND pg_catalog.has_column_privilege(c.oid, a.attnum, 'SELECT') ORDER BY a.attnum";

constexpr const char* kConstraints =
    "SELECT k.conname AS name, CASE k.contype WHEN 'p' THEN 'PRIMARY KEY' WHEN 'u' THEN 'UNIQUE' "
    "WHEN 'f' THEN 'FOREIGN KEY' WHEN 'c' THEN 'CHECK' WHEN 'x' THEN 'EXCLUDE' ELSE k.contype::text END AS "
    "type, "
    "pg_catalog.pg_get_constraintdef(k.oid) AS definition "
    "FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class c ON c.oid = k.conrelid "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = $1 AND c.relname = $2 AND pg_catalog.has_any_column_privilege(c.oid, 'SELECT') ORDER "
    "BY k.conname";

constexpr const char* kIndexes =
    "SELECT i.relname AS name, pg_catalog.pg_get_indexdef(x.indexrelid) AS definition, x.indisunique AS "
    "unique "
    "FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid "
    "JOIN pg_catalog.pg_class c ON c.oid = x.indrelid JOIN pg_catalog.pg_namespace n ON n.oid = "
    "c.relnamespace "
    "WHERE n.nspname = $1 AND c.relname = $2 AND pg_catalog.has_any_column_privilege(c.oid, 'SELECT') ORDER "
    "BY i.relname";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> percent_decode(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      int hi = i + 1 < s.size() ? hex_value(s[i + 1]) : -1;
      int lo = i + 2 < s.size() ? hex_value(s[i + 2]) : -1;
      if (hi < 0 || lo < 0) return make_error("tools.bad_uri", "bad percent-escape in resource URI");
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  if (out.empty() || out.size() > 63 * 4 || out.find('\0') != std::string::npos)
    return make_error("tools.bad_uri", "bad name in resource URI");
  return out;
}

nlohmann::json rows_as_objects(const db::QueryResult& r) {
  return r.to_json()["rows"];
}

}  // namespace

std::string resource_prefix(const std::string& database) {
  return "pgmcp://" + database + "/";
}

Result<ResourceAddress> parse_resource_uri(const std::string& uri, const std::string& database) {
  std::string prefix = resource_prefix(database);
  if (uri == "pgmcp://" + database) return ResourceAddress{};
  if (uri.rfind(prefix, 0) != 0) return make_error("tools.not_found", "unknown resource " + uri);
  std::string rest = uri.substr(prefix.size());
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  std::vector<std::string> parts;
  if (!rest.empty()) {
    std::size_t start = 0;
    while (true) {
      auto slash = rest.find('/', start);
      parts.push_back(rest.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
      if (slash == std::string::npos) break;
      start = slash + 1;
    }
  }
  ResourceAddress a;
  if (parts.empty()) return a;
  if (parts[0] != "schemas") return make_error("tools.not_found", "unknown resource " + uri);
  if (parts.size() == 1) {
    a.kind = ResourceAddress::Kind::schemas;
    return a;
  }
  auto schema = percent_decode(parts[1]);
  if (!schema) return schema.error();
  a.schema = *schema;
  if (parts.size() == 2) {
    a.kind = ResourceAddress::Kind::schema;
    return a;
  }
  if (parts[2] != "tables" || parts.size() < 4 || parts.size() > 5)
    return make_error("tools.not_found", "unknown resource " + uri);
  auto table = percent_decode(parts[3]);
  if (!table) return table.error();
  a.table = *table;
  if (parts.size() == 4) {
    a.kind = ResourceAddress::Kind::table;
  } else if (parts[4] == "sample") {
    a.kind = ResourceAddress::Kind::sample;
  } else if (parts[4] == "rowcount") {
    a.kind = ResourceAddress::Kind::rowcount;
  } else {
    return make_error("tools.not_found", "unknown resource " + uri);
  }
  return a;
}

std::vector<ResourceDescriptor> DbResources::resources() const {
  return {{prefix_, database_ + " database",
           "Structure of the " + database_ + " database: schemas, tables, columns"},
          {prefix_ + "schemas", "schemas", "Schemas with tables you may query"}};
}

std::vector<ResourceDescriptor> DbResources::templates() const {
  return {{prefix_ + "schemas/{schema}", "schema", "Tables of one schema"},
          {prefix_ + "schemas/{schema}/tables/{table}", "table",
           "One table: columns (PostgreSQL types), constraints, indexes"},
          {prefix_ + "schemas/{schema}/tables/{table}/sample", "table sample",
           "Up to 10 rows of the table (row-level security applies)"},
          {prefix_ + "schemas/{schema}/tables/{table}/rowcount", "row count",
           "Number of rows of the table you may see (row-level security applies)"}};
}

Result<db::QueryResult> DbResources::catalog(const db::RequestContext& ctx_in, const char* sql,
                                             const std::vector<db::Param>& params) {
  db::RequestContext ctx = ctx_in;
  ctx.max_rows = 10'000;
  ctx.max_bytes = 8 * 1024 * 1024;
  auto r = db_.query_trusted(ctx, sql, params);
  if (!r) return r.error();
  if (r->truncated) return make_error("tools.too_large", "catalog listing too large");
  return r;
}

Result<nlohmann::json> DbResources::read(const db::RequestContext& ctx, const std::string& uri) {
  auto a = parse_resource_uri(uri, database_);
  if (!a) return a.error();
  switch (a->kind) {
    case ResourceAddress::Kind::database:
      return structure(ctx);
    case ResourceAddress::Kind::schemas:
      return schemas(ctx);
    case ResourceAddress::Kind::schema:
      return schema(ctx, a->schema);
    case ResourceAddress::Kind::table:
      return describe_table(ctx, a->schema, a->table);
    case ResourceAddress::Kind::sample:
      return sample(ctx, a->schema, a->table);
    case ResourceAddress::Kind::rowcount:
      return rowcount(ctx, a->schema, a->table);
  }
  return make_error("tools.not_found", "unknown resource " + uri);
}

Result<nlohmann::json> DbResources::schemas(const db::RequestContext& ctx) {
  std::string sql = std::string("SELECT DISTINCT t.schema FROM (") + kVisibleTables + ") t ORDER BY 1";
  auto r = catalog(ctx, sql.c_str(), {});
  if (!r) return r.error();
  nlohmann::json list = nlohmann::json::array();
  for (const auto& row : r->rows)
    list.push_back({{"name", *row[0]}, {"uri", prefix_ + "schemas/" + *row[0]}});
  return nlohmann::json{{"database", database_}, {"schemas", std::move(list)}};
}

Result<nlohmann::json> DbResources::schema(const db::RequestContext& ctx, const std::string& name) {
  std::string sql = std::string("SELECT t.table, t.kind, t.comment FROM (") + kVisibleTables +
                    "AND n.nspname = $1) t ORDER BY 1";
  auto r = catalog(ctx, sql.c_str(), {name});
  if (!r) return r.error();
  if (r->rows.empty())
    return make_error("tools.not_found", "no schema '" + name + "' with tables you may query");
  nlohmann::json tables = nlohmann::json::array();
  for (const auto& row : r->rows) {
    tables.push_back({{"name", *row[0]},
                      {"kind", *row[1] == "v" ? "view" : "table"},
                      {"comment", row[2] ? nlohmann::json(*row[2]) : nlohmann::json(nullptr)},
                      {"uri", prefix_ + "schemas/" + name + "/tables/" + *row[0]}});
  }
  return nlohmann::json{{"schema", name}, {"tables", std::move(tables)}};
}

Result<nlohmann::json> DbResources::describe_table(const db::RequestContext& ctx, const std::string& schema,
                                                   const std::string& table) {
  auto cols = catalog(ctx, kColumns, {schema, table});
  if (!cols) return cols.error();
  if (cols->rows.empty())
    return make_error("tools.not_found", "no table " + schema + "." + table + " that you may query");
  auto cons = catalog(ctx, kConstraints, {schema, table});
  if (!cons) return cons.error();
  auto idx = catalog(ctx, kIndexes, {schema, table});
  if (!idx) return idx.error();
  std::string comment_sql =
      std::string("SELECT t.comment FROM (") + kVisibleTables + "AND n.nspname = $1 AND c.relname = $2) t";
  auto comment = catalog(ctx, comment_sql.c_str(), {schema, table});
  if (!comment) return comment.error();
  nlohmann::json c = nullptr;
  if (!comment->rows.empty() && comment->rows[0][0]) c = *comment->rows[0][0];
  return nlohmann::json{{"schema", schema},
                        {"table", table},
                        {"comment", c},
                        {"columns", rows_as_objects(*cols)},
                        {"constraints", rows_as_objects(*cons)},
                        {"indexes", rows_as_objects(*idx)}};
}

Result<nlohmann::json> DbResources::structure(const db::RequestContext& ctx) {
  std::string sql =
      std::string("SELECT t.schema, t.table, t.comment FROM (") + kVisibleTables + ") t ORDER BY 1, 2";
  auto r = catalog(ctx, sql.c_str(), {});
  if (!r) return r.error();
  nlohmann::json schemas_json = nlohmann::json::object();
  for (const auto& row : r->rows) {
    auto cols = catalog(ctx, kColumns, {*row[0], *row[1]});
    if (!cols) return cols.error();
    nlohmann::json columns = nlohmann::json::array();
    for (const auto& col : cols->rows) {
      nlohmann::json c = {{"name", *col[0]}, {"type", *col[1]}};
      if (col.size() > 4 && col[4]) c["comment"] = *col[4];  // COMMENT ON COLUMN
      columns.push_back(std::move(c));
    }
    nlohmann::json table = {{"name", *row[1]}, {"columns", std::move(columns)}};
    if (row[2]) table["comment"] = *row[2];  // COMMENT ON TABLE
    schemas_json[*row[0]].push_back(std::move(table));
  }
  nlohmann::json list = nlohmann::json::array();
  for (auto& [name, tables] : schemas_json.items()) list.push_back({{"name", name}, {"tables", tables}});
  return nlohmann::json{{"database", database_}, {"schemas", std::move(list)}};
}

Result<std::string> DbResources::selectable_table(const db::RequestContext& ctx, const std::string& schema,
                                                  const std::string& table) {
  // The table must exist and be selectable (checked with parameters); only then are the
  // names used, as quoted identifiers.
  std::string sql =
      std::string("SELECT 1 FROM (") + kVisibleTables + "AND n.nspname = $1 AND c.relname = $2) t";
  auto exists = catalog(ctx, sql.c_str(), {schema, table});
  if (!exists) return exists.error();
  if (exists->rows.empty())
    return make_error("tools.not_found", "no table " + schema + "." + table + " that you may query");
  return policy::quote_qualified(schema, table);
}

Result<nlohmann::json> DbResources::sample(const db::RequestContext& ctx_in, const std::string& schema,
                                           const std::string& table) {
  auto relation = selectable_table(ctx_in, schema, table);
  if (!relation) return relation.error();
  db::RequestContext ctx = ctx_in;
  ctx.max_rows = std::min<std::size_t>(ctx.max_rows, 10);
  // The columns the query role may read (a table may grant only some: column privileges).
  auto cols = catalog(ctx_in, kColumns, {schema, table});
  if (!cols) return cols.error();
  std::string list;
  for (const auto& row : cols->rows) {
    if (!row.empty() && row[0]) list += (list.empty() ? "" : ", ") + policy::quote_ident(*row[0]);
  }
  if (list.empty()) return make_error("tools.not_found", "no readable column in " + schema + "." + table);
  auto r = db_.query_trusted(ctx, "SELECT " + list + " FROM " + *relation + " LIMIT 10");
  if (!r) return r.error();
  auto j = r->to_json();
  j["schema"] = schema;
  j["table"] = table;
  return j;
}

Result<nlohmann::json> DbResources::rowcount(const db::RequestContext& ctx, const std::string& schema,
                                             const std::string& table) {
  // A real count under the caller's RLS context, like the sample: a statistic of the whole
  // table (pg_class.reltuples) would tell how many rows the caller may not see.
  auto relation = selectable_table(ctx, schema, table);
  if (!relation) return relation.error();
  auto r = db_.query_trusted(ctx, "SELECT count(*) FROM " + *relation);
  if (!r) return r.error();
  if (r->rows.size() != 1 || r->rows[0].size() != 1 || !r->rows[0][0])
    return make_error("tools.not_found", "no count for " + schema + "." + table);
  return nlohmann::json{{"schema", schema},
                        {"table", table},
                        {"row_count", db::pg_value_to_json(r->columns[0].oid, r->rows[0][0])},
                        {"note", "rows of the table you may see (row-level security applies)"}};
}

}  // namespace larder::tools
