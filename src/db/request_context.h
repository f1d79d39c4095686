// What one request may see and how long it may take. Built by the gate from facts proven
// by the caller's token — never from anything the SQL text or the model says.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace larder::db {

struct RequestContext {
  // RLS context. A row is visible when its "Patient Name" is in patient_names, or when its
  // "Hospital" is in hospitals and one of roles is a clinical role (clinician, doctor,
  // nurse). All empty: zero rows.
  std::vector<std::string> patient_names;
  std::vector<std::string> roles;
  std::vector<std::string> hospitals;

  // Absolute deadline for the whole call (pool wait + query). Default-constructed: the
  // database's default timeout from now.
  std::chrono::steady_clock::time_point deadline{};

  std::size_t max_rows = 1000;          // more rows: truncated = true
  // More result bytes than this, counted as the JSON answer spends them (each value with its
  // column name, escapes included): truncated = true. A single larger value is never returned.
  std::size_t max_bytes = 1024 * 1024;

  // The SQL guard (lock 3). Only tests of the database layer itself turn it off.
  bool guard_enabled = true;
};

}  // namespace larder::db
