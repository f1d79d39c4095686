// libFuzzer target: SqlGuard::check on arbitrary bytes. It must return a Result (accept or a
// sql_guard.* error) without crashing, hanging or leaking, and an accepted query may only
// report relations from the policy.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "db/sql_guard.h"

namespace {

const larder::db::SqlGuard& guard() {
  static const larder::db::SqlGuard g([] {
    larder::db::GuardPolicy p;
    p.allowed_relations = {"public.health_records", "public.hospitals", "larder_masked.customers"};
    // As a policy file with masked columns sets it: the masking views' schema first, so an
    // unqualified name resolves there before public.
    p.search_path = {"larder_masked", "public"};
    p.max_query_bytes = 20000;    // keep iterations fast; larger inputs only test the size check
    p.verdict_cache_entries = 0;  // every input is parsed and walked
    return p;
  }());
  return g;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view sql(reinterpret_cast<const char*>(data), size);
  auto r = guard().check(sql);
  if (r.ok()) {
    for (const auto& rel : r->relations) {
      if (guard().policy().allowed_relations.count(rel) == 0) std::abort();
    }
    for (const auto& [rel, cols] : r->columns) {
      if (r->relations.count(rel) == 0 || cols.empty()) std::abort();
    }
    if (r->fingerprint.size() != 16 || r->param_count < 0) std::abort();
  } else if (r.error().code.rfind("sql_guard.", 0) != 0 || r.error().message.empty()) {
    std::abort();
  }
  return 0;
}
