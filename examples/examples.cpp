#include "examples/examples.h"

#include "examples/assets.h"
#include "examples/healthcare/demo.h"
#include "examples/healthcare/generate.h"
#include "examples/saas/demo.h"
#include "examples/saas/generate.h"

namespace larder::examples {

const std::vector<Example>& all() {
  static const std::vector<Example> list = [] {
    std::vector<Example> v;
    Example h;
    h.name = "healthcare";
    h.description = "hospital admissions; patients see their own, clinicians their hospital's";
    h.policy = asset("healthcare/policy.toml");
    h.schema = asset("healthcare/schema.sql");
    h.default_rows = kDefaultSeedRows;
    h.default_seed = kDefaultSeed;
    h.seed = [](const db::ConnParams& admin, std::size_t rows, std::uint64_t seed) {
      return seed_health_records(admin, rows, seed);
    };
    h.demo = healthcare::demo();
    v.push_back(std::move(h));
    Example s;
    s.name = "saas";
    s.description = "a multi-tenant SaaS: tenants, users, customers (masked email), invoices, products";
    s.policy = asset("saas/policy.toml");
    s.schema = asset("saas/schema.sql");
    s.default_rows = saas::kDefaultRows;
    s.default_seed = saas::kDefaultSeed;
    s.seed = [](const db::ConnParams& admin, std::size_t rows, std::uint64_t seed) {
      return saas::seed(admin, rows, seed);
    };
    s.demo = saas::demo();
    v.push_back(std::move(s));
    return v;
  }();
  return list;
}

Result<const Example*> find(std::string_view name) {
  std::string names;
  for (const auto& e : all()) {
    if (e.name == name) return &e;
    names += (names.empty() ? "" : ", ") + e.name;
  }
  return Error{"config.invalid", "unknown example \"" + std::string(name) + "\" (examples: " + names + ")",
               ""};
}

}  // namespace larder::examples
