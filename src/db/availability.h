// Availability: whether PostgreSQL answers, as one server sees it — the one place that
// decides what a database outage looks like to a client and to the operator.
//
// A client hears kUnavailableReason and nothing else: no host, port, database, role or
// libpq message. The operator hears it in the log, once per outage: the first failed round
// trip logs a warning with its details, the first successful one after it logs that the
// database is back (info); the calls in between log nothing. One instance is shared by every
// component of a server that talks to PostgreSQL (the query pool, the taint ledger and the
// revocation list), so an outage is one outage however many of them notice it.
#pragma once

#include "base/result.h"

#include <atomic>
#include <string>

namespace larder::db {

// The refusal reason of every call made while PostgreSQL cannot be reached.
inline constexpr const char* kUnavailableReason = "database unavailable, retry later";

// True when `e` says PostgreSQL could not be reached or the connection was lost before a
// statement was sent (codes db.unavailable and db.auth), not that a statement failed.
bool is_unavailable(const Error& e);

class Availability {
 public:
  // `name` prefixes the log lines (the server's audience, e.g. "larder-db").
  explicit Availability(std::string name = "larder");

  // A round trip failed because the database is unreachable: logged (warn, with `cause`'s
  // message) only when this starts an outage.
  void failed(const Error& cause);
  // A round trip succeeded: logged (info) only when this ends an outage.
  void succeeded();
  bool down() const { return down_.load(std::memory_order_acquire); }

 private:
  std::string name_;
  std::atomic<bool> down_{false};
};

}  // namespace larder::db
