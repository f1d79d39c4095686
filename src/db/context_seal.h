// The sealed request context (docs/database.md, "The request context"): what Larder sets in
// a request's transaction as set_config('larder.context', <value>, true), and what the rule
// functions accept (larder_private.context(), made by policy apply):
//   value   = hex(HMAC-SHA256(key, message)) '.' message
//   message = 'larder-ctx-v1.' <key id> '.' {"b":[<pid>,<xact start µs>],"e":<until µs>,"f":<facts>}
// The key is a row of larder_private.context_keys, which the query role cannot read. The
// value is good only in the transaction whose backend pid and start time it names, and only
// until `e` on the server's clock.
#pragma once

#include "base/result.h"

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace larder::db {

// One request-context key: its id (larder_private.context_keys.id) and 32 key bytes.
struct ContextKey {
  int id = 0;
  std::vector<unsigned char> bytes;
};

// The transaction a context is sealed to, as the server reports it (kBindTransactionSql):
// the backend's pid and the transaction's start, as the server prints them, and its clock.
struct TransactionBinding {
  std::string pid;
  std::string xact_us;
  long long now_us = 0;
};

// pid, transaction start and clock now, in microseconds since the epoch: one row.
inline constexpr const char* kBindTransactionSql =
    "SELECT pg_catalog.pg_backend_pid(), "
    "(EXTRACT(epoch FROM pg_catalog.transaction_timestamp()) * 1000000)::bigint, "
    "(EXTRACT(epoch FROM pg_catalog.clock_timestamp()) * 1000000)::bigint";

// The newest key, as the context writer reads it (id, hex of the key bytes).
inline constexpr const char* kContextKeySql =
    "SELECT id, pg_catalog.encode(key, 'hex') FROM larder_private.context_keys ORDER BY id DESC LIMIT 1";

// How long a server seals with the key it read before reading the newest again: a key added
// by `larder policy rotate-key` is in use everywhere within this time.
inline constexpr std::chrono::seconds kContextKeyRefresh{60};

// What larder_private.context() raises for a value it does not accept.
inline constexpr std::string_view kContextRefusedSqlstate = "LX001";

// A key from its id and hex text (kContextKeySql's row); an error unless 32 bytes.
Result<ContextKey> parse_context_key(std::string_view id, std::string_view hex);

// The value to set as larder.context. `facts` is the facts' JSON object, compact.
std::string seal_context(const ContextKey& key, const TransactionBinding& binding, long long until_us,
                         std::string_view facts);

}  // namespace larder::db
