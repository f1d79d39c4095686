// Where the server finds its database: DATABASE_URL (query role `patients`) plus
// LARDER_CONTEXT_WRITER_URL (role larder_context_writer) for an existing server, or else the
// state file of the embedded cluster (<state_dir>/db.json, written by `larder db init`).
// Connection strings never come from clients.
#pragma once

#include "base/result.h"
#include "db/cluster.h"
#include "db/database.h"

#include <filesystem>

namespace larder::db {

inline constexpr const char* kDefaultStateDir = ".larder";

std::filesystem::path state_file_path(const std::filesystem::path& state_dir);

Result<DatabaseConfig> database_config_from_environment(
    const std::filesystem::path& state_dir = kDefaultStateDir);

}  // namespace larder::db
