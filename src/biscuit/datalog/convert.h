// Between the text level (ast::) and the interned level (datalog types), and the checks a
// decoded block must pass.
//
// Interning order (reproduces the reference's new-symbol lists exactly):
//   block: facts, then rules, then checks, then block scopes;
//   rule: head (name, terms), body predicates, expressions (ops in order; a closure's
//         parameters before its body), scopes (public keys into the key table);
//   term: sets and maps in ast order (see ast.h), arrays in order, map key before value.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "biscuit/datalog/ast.h"
#include "biscuit/datalog/errors.h"
#include "biscuit/datalog/types.h"

namespace biscuit::datalog {

// ---- text -> interned (parameters must already be bound: UnboundParameter otherwise) ----
Result<Term> intern(const ast::Term& term, SymbolTable& symbols);
Result<Predicate> intern(const ast::Predicate& predicate, SymbolTable& symbols);
Result<Fact> intern(const ast::Fact& fact, SymbolTable& symbols);
Result<Expression> intern(const ast::Expression& expression, SymbolTable& symbols);
Result<Scope> intern(const ast::Scope& scope, SymbolTable& symbols);
Result<Rule> intern(const ast::Rule& rule, SymbolTable& symbols);
Result<Check> intern(const ast::Check& check, SymbolTable& symbols);
Result<Policy> intern(const ast::Policy& policy, SymbolTable& symbols);

// Builds a block from source against the table of the token so far (`base` = defaults +
// previous first-party blocks' symbols and keys; a fresh SymbolTable for a third-party
// block). `base` is not modified; the block carries the symbols and keys it adds, and
// version = minimum_version(block). Policies in `source` are an error.
Result<Block> build_block(const ast::Source& source, const SymbolTable& base,
                          std::optional<std::string> context = std::nullopt);

// ---- interned -> text (UnknownSymbol / UnknownPublicKey on dangling ids) ----
Result<ast::Term> to_ast(const Term& term, const SymbolTable& symbols);
Result<ast::Predicate> to_ast(const Predicate& predicate, const SymbolTable& symbols);
Result<ast::Fact> to_ast(const Fact& fact, const SymbolTable& symbols);
Result<ast::Expression> to_ast(const Expression& expression, const SymbolTable& symbols);
Result<ast::Scope> to_ast(const Scope& scope, const SymbolTable& symbols);
Result<ast::Rule> to_ast(const Rule& rule, const SymbolTable& symbols);
Result<ast::Check> to_ast(const Check& check, const SymbolTable& symbols);
Result<ast::Policy> to_ast(const Policy& policy, const SymbolTable& symbols);
// A term as seen by expression evaluation (symbols may live in the temporary overlay).
Result<ast::Term> to_ast(const Term& term, const TemporarySymbols& symbols);
// Extern function results: parameters are an error (UnboundParameter).
Result<Term> intern(const ast::Term& term, TemporarySymbols& symbols);

// Re-interns from one table into another (third-party blocks into the authorizer's table).
Result<Fact> translate(const Fact& fact, const SymbolTable& from, SymbolTable& to);
Result<Rule> translate(const Rule& rule, const SymbolTable& from, SymbolTable& to);
Result<Check> translate(const Check& check, const SymbolTable& from, SymbolTable& to);

// ---- versions ----
// The lowest block version that can carry this content (3, 4 or 6): 6 for `reject if`,
// null, closures (&&, ||, .any, .all, .try_or), ==/!=, .type(), extern calls; 4 for
// scopes, `check all`, bitwise ops, `!==`; else 3. Arrays, maps and .get() do not raise it.
uint32_t minimum_version(const Block& block);
// Version error if `block` uses a feature newer than `version` (the declared one).
Status check_version(const Block& block, uint32_t version);

// ---- structural validation of decoded data ----
// InvalidTerm unless: facts contain no variables (anywhere); every set (anywhere, including
// in rules and expressions) holds elements of one kind, no sets and no variables.
// (Dangling symbol ids and key indices are not errors, as in the reference: they print as
// "<id?>" / "<unknown public key id>" and fail evaluation with UnknownSymbol.)
Status validate_block(const Block& block);
// The same rules for one term; `in_fact` forbids variables anywhere.
Status validate_term(const Term& term, bool in_fact);

// The reference's "invalid block rule" test: true if every head variable appears in a body
// predicate.
bool head_variables_bound(const Rule& rule);

}  // namespace biscuit::datalog
