// Printing Datalog exactly as the reference does (the samples' `code`, `world` and check
// texts in `result`):
//  - no parentheses are added: only explicit Parens ops print `( )`;
//  - `===`/`!==` strict, `==`/`!=` lenient, eager and/or as `&&!`/`||!`;
//  - a closure prints `$p -> body` (or just `body` without parameters);
//  - sets/maps print in Term order (strings by symbol id at the interned level, by text at
//    the ast level), the empty set as `{,}`; dates as RFC 3339 UTC ("...Z"), or
//    "<invalid date>" past year 9999; bytes as hex:<lowercase>; unknown symbols as "<id?>";
//  - rule bodies: predicates, then expressions, then ` trusting <scopes>`;
//  - block-level scopes are not printed in block code.
// One deliberate difference: inside string literals `"` and `\` are escaped (`\"`, `\\`)
// so printed text always parses back to the same value (the reference prints them raw,
// which is ambiguous). No sample contains either character.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "biscuit/datalog/ast.h"
#include "biscuit/datalog/types.h"
#include "biscuit/datalog/world.h"

namespace biscuit::datalog {

// ---- interned level ----
std::string print_term(const Term& term, const SymbolTable& symbols);
std::string print_predicate(const Predicate& predicate, const SymbolTable& symbols);
std::string print_fact(const Fact& fact, const SymbolTable& symbols);
std::string print_expression(const Expression& expression, const SymbolTable& symbols);
std::string print_scope(const Scope& scope, const SymbolTable& symbols);
std::string print_rule_body(const Rule& rule, const SymbolTable& symbols);
std::string print_rule(const Rule& rule, const SymbolTable& symbols);  // "head <- body"
std::string print_check(const Check& check, const SymbolTable& symbols);
std::string print_policy(const Policy& policy, const SymbolTable& symbols);
// Facts, rules, checks, each followed by ";\n" (the samples' `code`).
std::string print_block_code(const Block& block, const SymbolTable& symbols);

// ---- text level ----
std::string print(const ast::Term& term);
std::string print(const ast::Predicate& predicate);
std::string print(const ast::Fact& fact);
std::string print(const ast::Expression& expression);
std::string print(const ast::Scope& scope);
std::string print(const ast::Rule& rule);
std::string print(const ast::Check& check);
std::string print(const ast::Policy& policy);
// Block source: `trusting ...;` line if scopes, then facts, rules, checks (";\n" each).
std::string print_block_source(const ast::Source& source);
// Authorizer code as the reference's dump_code (the samples' `authorizer_code`): facts,
// rules, checks, policies, each followed by ";\n", a blank line after each non-empty group
// except policies.
std::string print_authorizer_code(const ast::Source& source);

// ---- shared helpers ----
std::string format_date(uint64_t seconds);  // RFC 3339 "YYYY-MM-DDTHH:MM:SSZ"
std::string hex_encode(const std::vector<uint8_t>& bytes);

// ---- world dump (the samples' validations.*.world) ----
struct WorldDump {
  struct FactGroup {
    std::vector<std::optional<uint64_t>> origin;  // sorted; nullopt = authorizer (first)
    std::vector<std::string> facts;               // sorted
  };
  struct RuleGroup {
    uint64_t origin;                 // block index, kAuthorizerBlock for the authorizer
    std::vector<std::string> rules;  // sorted
  };
  struct CheckGroup {
    uint64_t origin;
    std::vector<std::string> checks;  // sorted
  };
  std::vector<FactGroup> facts;       // sorted by (origin, facts)
  std::vector<RuleGroup> rules;       // ascending origin, non-empty groups only
  std::vector<CheckGroup> checks;     // ascending origin, non-empty groups only
  std::vector<std::string> policies;  // in order
};

struct BlockChecks {
  uint64_t origin;  // block index or kAuthorizerBlock
  std::vector<Check> checks;
};

// Builds the dump from the world's facts and rules (printed with `symbols`), the checks of
// each block and of the authorizer, and the policies (printed with `symbols`).
WorldDump dump_world(const World& world, const SymbolTable& symbols, const std::vector<BlockChecks>& checks,
                     const std::vector<Policy>& policies);

}  // namespace biscuit::datalog
