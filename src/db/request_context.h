// What one request may see and how long it may take. Built by the gate from facts proven
// by the caller's token — never from anything the SQL text or the model says.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "base/cancellation.h"

namespace larder::db {

struct RequestContext {
  // RLS context: fact name -> the tuples the caller's token proves, each value in
  // PostgreSQL's text input form. The policy file's row rules read them (policy/apply.h);
  // a fact with no tuple matches no row. All empty: zero rows of every non-public table.
  std::map<std::string, std::vector<std::vector<std::string>>> facts;
  // The unmask rights the token proves (right("unmask", "<table>.<column>")): masked columns
  // this request reads in clear.
  std::vector<std::string> unmask;

  // Adds the one-argument tuple name(value).
  void add(const std::string& name, std::string value) { facts[name].push_back({std::move(value)}); }

  // Absolute deadline for the whole call (pool wait + query). Default-constructed: the
  // database's default timeout from now.
  std::chrono::steady_clock::time_point deadline{};
  // The caller gave up (notifications/cancelled): a statement still running is cancelled in
  // PostgreSQL at once (within kCancelPoll), as it would be at the deadline.
  CancellationToken cancel;
  // The server is stopping and its drain time ran out: cancelled the same way, and said so.
  CancellationToken stopping;

  std::size_t max_rows = 1000;  // more rows: truncated = true
  // More result bytes than this, counted as the JSON answer spends them (each value with its
  // column name, escapes included): truncated = true. A single larger value is never returned.
  std::size_t max_bytes = 4 << 20;

  // The SQL guard (lock 3). Only tests of the database layer itself turn it off.
  bool guard_enabled = true;
};

}  // namespace larder::db
