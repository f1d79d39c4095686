// The example databases Larder ships (examples/<name>/): each is a policy file, a schema, a
// deterministic data generator and a demo, compiled into the binary so `larder db setup
// --example NAME` and `larder demo --example NAME` work from anywhere. Nothing outside
// examples/ names an example's tables or columns: Larder itself reads only the policy file
// (src/policy), and `larder demo` (src/cli/demo_cmd.cpp) runs whatever the example's Demo
// says (tests/unit/examples/names_outside_examples_test.cpp checks src/ for their names).
#pragma once

#include "base/result.h"
#include "db/connection.h"
#include "gate/token_profile.h"
#include "tools/demo_scenarios.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace larder::examples {

struct SeedReport {
  std::size_t rows = 0;  // rows written, over all tables
  std::chrono::milliseconds copy_time{0};
  std::chrono::milliseconds total_time{0};  // incl. TRUNCATE and ANALYZE
};

// A token `larder demo` mints for an example: a profile (its rights and its facts' templates)
// with a value for each `{placeholder}`, bound to claude-client's certificate and to both demo
// servers, expiring in 30 days, written to <dir>/tokens/<name>.b64.
struct DemoToken {
  std::string name;   // the file's name, and the key the scenarios find the token by
  std::string label;  // printed: "Erin oRTEga (patient)"
  gate::TokenProfile profile;
  std::map<std::string, std::string> params;  // placeholder -> value (a string term)
};

// The demo's tokens as minted: name -> base64.
using MintedTokens = std::map<std::string, std::string>;

// An example's part of `larder demo` (examples/<name>/demo.cpp). The demo sets up the embedded
// cluster with the example (`larder db init --example NAME`), the database and compliance
// servers with `[policy] example = "NAME"`, then asks the example for its tokens and runs its
// scenarios.
struct Demo {
  std::vector<std::string> banner;  // printed first: what this demo shows, one line each
  // The tokens to mint. `admin` is a superuser connection to the example's database (a
  // token's values may come from the data, such as the busiest hospital).
  std::function<Result<std::vector<DemoToken>>(const db::ConnParams& admin)> tokens;
  // Every scenario in order, each handed to `on_outcome` as soon as it is decided.
  std::function<std::vector<tools::ScenarioOutcome>(
      const tools::DemoEnvironment& env, const MintedTokens& tokens,
      const std::function<void(const tools::ScenarioOutcome&)>& on_outcome)>
      scenarios;
  // What the demo prints to try afterwards: a `larder ask` line asking `question` and a curl
  // call running `try_sql` through pg_query, both with the token `try_token`.
  std::string try_token;
  std::string question;
  std::string try_sql;
  // Recorded Anthropic responses answering `question` (`larder demo fake-model` replays them,
  // so the printed ask line works without an API key); empty: the example has none.
  std::string_view model_script;
  std::string model_script_name;  // where they come from, for messages
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
  // `larder demo --example NAME`.
  Demo demo;
};

const std::vector<Example>& all();
// The example named `name`; an error listing the valid names otherwise.
Result<const Example*> find(std::string_view name);

}  // namespace larder::examples
