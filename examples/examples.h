// The example databases Larder ships (examples/<name>/): each is a policy file, a schema and a
// deterministic data generator, compiled into the binary so `larder db setup --example NAME`
// and `larder demo --example NAME` work from anywhere. Nothing outside examples/ names an
// example's tables or columns: Larder itself reads only the policy file (src/policy).
#pragma once

#include "base/result.h"
#include "db/connection.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace larder::examples {

struct SeedReport {
  std::size_t rows = 0;  // rows written, over all tables
  std::chrono::milliseconds copy_time{0};
  std::chrono::milliseconds total_time{0};  // incl. TRUNCATE and ANALYZE
};

struct Example {
  std::string name;         // "healthcare", "saas"
  std::string description;  // one line, for --help and the demo banner
  std::string_view policy;  // examples/<name>/policy.toml
  std::string_view schema;  // examples/<name>/schema.sql: tables and indexes, run as the owner
  std::size_t default_rows = 0;
  std::uint64_t default_seed = 0;
  // Replaces the example's rows with `rows` generated ones (TRUNCATE, COPY, ANALYZE, one
  // transaction) as `admin`, which owns the tables. Same (rows, seed), same data.
  std::function<Result<SeedReport>(const db::ConnParams& admin, std::size_t rows, std::uint64_t seed)> seed;
};

const std::vector<Example>& all();
// The example named `name`; an error listing the valid names otherwise.
Result<const Example*> find(std::string_view name);

}  // namespace larder::examples
