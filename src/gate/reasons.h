// Refusal reasons in the user's words: what was refused, why, and what to do about it.
// The lock that refused stays typed (gate::Lock); these are only the sentences, one place
// for each kind, shared by the gate (lock 2), the pipeline (revocation, taint ledger) and
// the CLI. They never carry rows or secrets: only what the caller already holds (its
// token's own checks and ids) and what the server says about itself (its audience).
#pragma once

#include "net/peer_identity.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace larder::gate {

// Lock taint: an allowed call whose audit record could not be written (a full disk, an audit
// anchor PostgreSQL has not taken for longer than its max lag) is not carried out; the log's
// own error goes to the server's log, not to the caller.
inline constexpr const char* kAuditUnavailableReason =
    "audit log unavailable: the call could not be recorded, so its result is withheld; retry later";

// "42 s", "5 min", "2 h 5 min", "3 days 4 h" (the magnitude of `span`; never negative).
std::string describe_span(std::chrono::system_clock::duration span);
// "2026-12-03 21:26:35 UTC".
std::string describe_utc(std::chrono::system_clock::time_point t);

// Lock biscuit: the token's validity period.
std::string expired_reason(std::chrono::system_clock::time_point expired_at,
                           std::chrono::system_clock::time_point now);
std::string not_yet_valid_reason(std::chrono::system_clock::time_point valid_from,
                                 std::chrono::system_clock::time_point now);
std::string outside_validity_reason(const std::string& check);  // a time check of a shape without a date
// Lock biscuit: the token is bound to another client certificate (`peer`: this connection's,
// null when there is none) or to another server (`audience`: this server's).
std::string other_certificate_reason(const net::PeerIdentity* peer, const std::string& check);
std::string other_audience_reason(const std::string& audience, const std::string& check);
// Lock biscuit: any other check of the token's block `block` failed.
std::string failed_check_reason(std::size_t block, const std::string& check);
// Lock biscuit: signed by a root key this server does not trust (`key_id` as the token names
// it; nullopt when it names none), or its signature does not verify under the key it names.
std::string unknown_root_key_reason(std::optional<uint32_t> key_id, bool several_keys_trusted);
std::string bad_signature_reason(std::optional<uint32_t> key_id);
// Lock biscuit: an appended block's signature (`block`; nullopt: the seal) does not verify.
std::string altered_token_reason(std::optional<uint32_t> block);
// Lock biscuit: the token's revocation id is on the revocation list.
std::string revoked_reason(const std::string& revocation_id);
// Lock taint: the token carries the taint block (`tainted_token_reason`) or its lineage is
// in the taint ledger (`tainted_lineage_reason`); `tool` is the egress tool refused.
std::string tainted_token_reason(const std::string& tool);
std::string tainted_lineage_reason(const std::string& tool);

// The kind of a refusal, for metrics and logs: a short, stable word from a closed set, told
// from the lock's name (gate::lock_name) and the reason sentence made by the functions above
// (and by the other locks' own sentences). "other" when none fits. Never carries the sentence.
//   mtls: no_certificate | biscuit: missing, not_bearer, malformed, expired, not_yet_valid,
//   validity, other_certificate, other_audience, failed_check, unknown_root_key, bad_signature,
//   altered, revoked, reserved_predicate | policy: denied | taint: tainted | limits: concurrency,
//   rate | sql-guard: refused | database: unavailable, timeout, too_costly, cancelled, shutdown,
//   statement.
const char* refusal_kind(std::string_view lock, std::string_view reason);

}  // namespace larder::gate
