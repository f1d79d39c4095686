#include "db/config.h"

#include <cstdlib>

namespace larder::db {

std::filesystem::path state_file_path(const std::filesystem::path& state_dir) {
  return state_dir / "db.json";
}

Result<DatabaseConfig> database_config_from_environment(const std::filesystem::path& state_dir) {
  DatabaseConfig cfg;
  const char* url = std::getenv("DATABASE_URL");
  if (url != nullptr && url[0] != '\0') {
    const char* writer = std::getenv("LARDER_CONTEXT_WRITER_URL");
    if (writer == nullptr || writer[0] == '\0')
      return make_error(
          "db.config",
          "DATABASE_URL is set but LARDER_CONTEXT_WRITER_URL is not: the RLS context is written by "
          "the larder_context_writer role on a separate connection");
    auto q = ConnParams::parse(url);
    if (!q) return q.error();
    auto w = ConnParams::parse(writer);
    if (!w) return w.error();
    cfg.query = *q;
    cfg.writer = *w;
    return cfg;
  }
  auto state = ClusterState::load(state_file_path(state_dir));
  if (!state) return state.error();
  cfg.query = state->query();
  cfg.writer = state->writer();
  return cfg;
}

}  // namespace larder::db
