// Registers the database server's MCP surface — pg_query, pg_explain, pg_metadata, the
// pgmcp://healthcare/ resources and the SQL prompts — with every call running through the
// four-lock pipeline (guarded_call.h). The SQL guard runs before authorization so the
// relations and columns a query touches become authorizer facts (`table("health_records")`,
// `column("health_records", "Age")`): a token can restrict what it may read.
#pragma once

#include "base/result.h"
#include "db/database.h"
#include "gate/config.h"
#include "gate/pipeline.h"
#include "mcp/server.h"

#include <memory>

namespace larder::tools {

struct DbServiceOptions {
  std::chrono::milliseconds statement_timeout{10000};
  std::size_t max_rows = 1000;
  std::size_t max_result_bytes = 4 << 20;
  bool sql_guard = true;
};

class DbService;  // owns DbTools / DbResources / DbPrompts and the guard

// Keeps what the handlers use alive as long as the returned object lives (it must outlive
// the server's use of the handlers).
Result<std::shared_ptr<DbService>> register_db_service(mcp::Server& server, gate::Pipeline& pipeline,
                                                       const gate::ServeConfig& config, db::Database& database,
                                                       DbServiceOptions options);

}  // namespace larder::tools
