// Reading a token's checks and assertions without running them: for hosts that screen a
// token before they authorize it, size a cache entry by its expiry, or explain a refusal.
//
//   auto token = biscuit::Biscuit::from_base64(text, root);
//   auto expiry = biscuit::block_expiry(*token, 0);            // the authority block's
//   auto summary = biscuit::describe_check(*token, block, i);   // predicates, time bounds
//   static constexpr std::string_view kBinding[] = {"client_cert_sha256"};
//   bool bound = biscuit::some_check_pins(*token, kBinding);
//
// Everything here reads the token as parsed: names are the printed predicate names (each
// block read through its own symbol table, third-party blocks included), dates are instants
// in UTC. Nothing here evaluates Datalog; an answer describes the shape of the code only.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "biscuit/token/token.h"

namespace biscuit {

// The limits one check puts on the authorizer's `time` fact. A query bounds `time` from
// above when it reads `time($t)` and requires `$t <= D` or `$t < D` (or `D >= $t`,
// `D > $t`) for a date D, from below for `$t >= D`, `$t > D` (or `D <= $t`, `D < $t`); its
// tightest such bound counts. A `check if`/`check all` bounds `time` when every query does
// (its `or` alternatives): then by the latest upper bound, the earliest lower bound of
// theirs. A `reject if` bounds nothing (it only records whether it reads `time`).
// Any other shape (an `expiry($e)` fact compared with $t, arithmetic on $t) bounds nothing.
struct TimeBounds {
  std::optional<std::chrono::sys_seconds> not_after;   // the check fails after this instant
  std::optional<std::chrono::sys_seconds> not_before;  // the check fails before this instant
  bool reads_time = false;                             // some query reads `time($t)`
};

// One check of a token, summarised.
struct CheckSummary {
  CheckKind kind = CheckKind::One;
  std::vector<std::string> predicates;  // every predicate its queries read, sorted, no repeats
  TimeBounds time;
};

// The check `index` of block `block` (0: the authority block); nullopt when there is none.
std::optional<CheckSummary> describe_check(const Biscuit& token, std::size_t block, std::size_t index);

// The earliest upper bound that the checks of `block` put on `time` (TimeBounds::not_after
// of each): the last instant at which that block's checks can pass; nullopt when none of its
// checks bounds `time` from above (or there is no such block).
std::optional<std::chrono::sys_seconds> block_expiry(const Biscuit& token, std::size_t block);

// Whether some `check if` of some block can pass only when, in every one of its queries,
// one of `predicates` is present with the query's constant terms: each query reads one of
// them with at least one term and no variable among its terms, e.g.
// `check if client_cert_sha256(hex:…)`. How a host learns that a token is bound to a fact
// only it asserts (a client certificate, an audience).
bool some_check_pins(const Biscuit& token, std::span<const std::string_view> predicates);

// The predicates block `block` asserts: the names of its facts and of its rules' heads,
// each list in the block's order, without repeats (empty for a block that does not exist).
struct BlockAssertions {
  std::vector<std::string> facts;
  std::vector<std::string> rule_heads;
};
BlockAssertions block_assertions(const Biscuit& token, std::size_t block);

}  // namespace biscuit
