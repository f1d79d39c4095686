// The database resources' logic: schema introspection for pgmcp://<database>/ URIs.
//   pgmcp://<database>/                               database structure (schemas, tables, columns)
//   pgmcp://<database>/schemas                        schema list
//   pgmcp://<database>/schemas/{schema}               one schema: its tables
//   pgmcp://<database>/schemas/{schema}/tables/{table}            columns, constraints, indexes
//   pgmcp://<database>/schemas/{schema}/tables/{table}/sample     10 rows (RLS applies)
//   pgmcp://<database>/schemas/{schema}/tables/{table}/rowcount   count(*) of the rows you may see
// Everything runs as the query role under the caller's context: only what that role may
// see is listed, and sample rows and counts are filtered by RLS like any query (both are
// sensitive reads: db_registration classifies them so). No statistic of the whole table is
// shown.
#pragma once

#include "base/result.h"
#include "db/cluster.h"
#include "db/database.h"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace larder::tools {

struct ResourceDescriptor {
  std::string uri;  // a URI, or an RFC 6570 template with {schema} / {table}
  std::string name;
  std::string description;
  std::string mime_type = "application/json";
};

// A parsed pgmcp:// URI.
struct ResourceAddress {
  enum class Kind { database, schemas, schema, table, sample, rowcount };
  Kind kind = Kind::database;
  std::string schema;
  std::string table;
};
// "pgmcp://<database>/" : the resources' URI prefix.
std::string resource_prefix(const std::string& database);
Result<ResourceAddress> parse_resource_uri(const std::string& uri, const std::string& database);

class DbResources {
 public:
  // `name`: the database's name, in every URI (pgmcp://<name>/...).
  DbResources(db::Database& database, std::string name)
      : db_(database), database_(std::move(name)), prefix_(resource_prefix(database_)) {}

  std::vector<ResourceDescriptor> resources() const;  // fixed URIs
  std::vector<ResourceDescriptor> templates() const;  // URI templates
  const std::string& database_name() const { return database_; }

  // The resource's JSON content (the integrator wraps it as {uri, mimeType, text}).
  Result<nlohmann::json> read(const db::RequestContext& ctx, const std::string& uri);

  // One table's description: {schema, table, comment, columns, constraints, indexes}.
  Result<nlohmann::json> describe_table(const db::RequestContext& ctx, const std::string& schema,
                                        const std::string& table);
  // Every visible table with its columns, for prompts and the database resource.
  Result<nlohmann::json> structure(const db::RequestContext& ctx);

 private:
  Result<nlohmann::json> schemas(const db::RequestContext& ctx);
  Result<nlohmann::json> schema(const db::RequestContext& ctx, const std::string& name);
  Result<nlohmann::json> sample(const db::RequestContext& ctx, const std::string& schema,
                                const std::string& table);
  Result<nlohmann::json> rowcount(const db::RequestContext& ctx, const std::string& schema,
                                  const std::string& table);
  // `schema`.`table` as quoted identifiers, once the catalog says the role may select it.
  Result<std::string> selectable_table(const db::RequestContext& ctx, const std::string& schema,
                                       const std::string& table);
  Result<db::QueryResult> catalog(const db::RequestContext& ctx, const char* sql,
                                  const std::vector<db::Param>& params);

  db::Database& db_;
  std::string database_;
  std::string prefix_;
};

}  // namespace larder::tools
