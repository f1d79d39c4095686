// The setup SQL from data/sql/, compiled into libdb in file-name order:
// 01_roles.sql (cluster-wide, any database), then 02_schema.sql, 03_context.sql and
// 04_policies.sql (inside the healthcare database). Every file is idempotent.
#pragma once

#include <string_view>
#include <vector>

namespace larder::db {

struct SqlAsset {
  std::string_view name;  // e.g. "03_context.sql"
  std::string_view sql;
};

const std::vector<SqlAsset>& setup_sql_assets();

}  // namespace larder::db
