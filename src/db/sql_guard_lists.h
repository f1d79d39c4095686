// Internal to the SQL guard: the fixed lists behind SqlGuard's decisions (functions that are
// never callable, types a cast may target). The policy-dependent lists live in GuardPolicy.
#pragma once

#include <string_view>

namespace larder::db::guard_lists {

// Functions refused whatever the policy says: they change session state, sleep, read files,
// reach other servers, touch large objects or sequences, signal backends, or dump catalogs.
bool is_always_denied_function(std::string_view name);

// Type names (as the parser spells them, e.g. "int4", "float8", "timestamptz") that casts
// and column definition lists may use. The reg* types, oid, xml and pg_* types are absent.
bool is_allowed_cast_type(std::string_view name);

}  // namespace larder::db::guard_lists
