// Registers the database server's MCP surface — pg_query, pg_explain, pg_metadata (free-form
// SQL unless the policy file turns it off), the policy file's declared query tools, the
// pgmcp://<database>/ resources and the SQL prompts — with every call running through the
// four-lock pipeline (guarded_call.h). The SQL guard runs before authorization so the
// relations and columns a query touches become authorizer facts (`table("accounts")`,
// `column("accounts", "email")`, by the policy file's names): a token can restrict what it
// may read. A query that reads only relations the file classes public does not taint.
#pragma once

#include "base/cancellation.h"

#include "base/result.h"
#include "db/database.h"
#include "db/request_context.h"
#include "gate/pipeline.h"
#include "mcp/server.h"
#include "policy/policy.h"

#include <memory>
#include <string>
#include <vector>

namespace larder::tools {

struct ServeConfig;

struct DbServiceOptions {
  // Rows and bytes of rows per answer ([database] max_rows, max_result_bytes): more are cut
  // and the answer says truncated. The database's own defaults (db::RequestContext). Each
  // statement's timeout is the database's (DatabaseConfig::default_timeout).
  std::size_t max_rows = db::RequestContext{}.max_rows;
  std::size_t max_result_bytes = db::RequestContext{}.max_bytes;
  // Cancelled when the server stops and its drain time ran out: every statement still running
  // is cancelled in PostgreSQL, and the call is refused (and audited) saying so.
  CancellationToken stopping;
};

class DbService;  // owns DbTools / DbResources / DbPrompts and the guard

// Keeps what the handlers use alive as long as the returned object lives (it must outlive
// the server's use of the handlers).
Result<std::shared_ptr<DbService>> register_db_service(mcp::Server& server, gate::Pipeline& pipeline,
                                                       const ServeConfig& config, db::Database& database,
                                                       const policy::Policy& policy,
                                                       const std::string& database_name,
                                                       DbServiceOptions options);

// A configuration reload: the [tools] classes of `config` decide the data flow of the calls
// that start from now on (calls in flight keep theirs), and its [tools] enabled switches
// pg_query, pg_explain and pg_metadata on and off (tools/list_changed; a call in flight
// finishes). Tools the policy file turns off stay off.
void reload_db_service(DbService& service, const ServeConfig& config);
// The tools reload_db_service may switch (the policy file's free-form SQL permitting).
std::vector<std::string> switchable_tools(const DbService& service);

}  // namespace larder::tools
