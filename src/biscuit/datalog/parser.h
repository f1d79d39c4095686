// Parser for the Biscuit Datalog text language (datalog 3.0 – 3.3), producing ast::.
//
// Grammar and precedence follow the reference parser (lowest to highest):
//   ||   &&   comparisons (< > <= >= === !== == !=, non-associative)   ^   |   &
//   + -   * /   ! (prefix; its operand is an additive expression)   .method()
// Explicit parentheses are kept as a Parens op (so printing reproduces them). `a && b`,
// `a || b` wrap their right operand in a closure; `.any($x -> e)`, `.all($x -> e)` take a
// one-parameter closure; `e.try_or(v)` wraps `e` in a closure. Strings accept the escapes
// \" \\ \n. Comments: `// ...` to end of line and `/* ... */`.
//
// Safety: input must be valid UTF-8 (checked first); nesting (parentheses, methods,
// collections, closures, unary `!`) is bounded by ParseOptions::max_depth; the parser never
// recurses deeper than that and runs in time roughly linear in the input. Every syntax error
// is a datalog::Error with code Parse and a position. What parses is then held to
// ParseOptions::limits (limits.h: expression size and depth, literal sizes; per-block counts
// for parse_block_source only), an error with code LimitExceeded naming the element.
#pragma once

#include <cstddef>
#include <string_view>

#include "biscuit/datalog/ast.h"
#include "biscuit/datalog/errors.h"
#include "biscuit/datalog/limits.h"

namespace biscuit::datalog {

struct ParseOptions {
  // Reject rules whose head uses a variable that no body predicate binds (the reference
  // parser's behaviour). Turn off only to read back tokens produced by other means.
  bool validate_rule_variables = true;
  // Maximum nesting of expressions and collection literals.
  std::size_t max_depth = 64;
  // Maximum input size in bytes.
  std::size_t max_input_bytes = 1 << 20;
  // Expression size and depth, literal sizes, and (blocks only) per-block counts.
  SizeLimits limits;
};

// A block: optional leading `trusting <scopes>;`, then facts, rules and checks, each
// terminated by `;` (the last one may omit it). Policies are an error here.
Result<ast::Source> parse_block_source(std::string_view text, const ParseOptions& options = {});

// Authorizer code: facts, rules, checks and policies (`allow if` / `deny if`).
Result<ast::Source> parse_authorizer_source(std::string_view text, const ParseOptions& options = {});

// Single elements (surrounding whitespace allowed, no trailing `;`).
Result<ast::Fact> parse_fact(std::string_view text, const ParseOptions& options = {});
Result<ast::Rule> parse_rule(std::string_view text, const ParseOptions& options = {});
Result<ast::Check> parse_check(std::string_view text, const ParseOptions& options = {});
Result<ast::Policy> parse_policy(std::string_view text, const ParseOptions& options = {});
Result<ast::Expression> parse_expression(std::string_view text, const ParseOptions& options = {});
Result<ast::Term> parse_term(std::string_view text, const ParseOptions& options = {});

// "ed25519/<hex>" or "secp256r1/<hex>".
Result<PublicKey> parse_public_key(std::string_view text);

// RFC 3339 date-time ("2023-12-28T00:00:00Z", offsets and fractions accepted) to Unix
// seconds; nullopt if invalid or before 1970.
std::optional<uint64_t> parse_rfc3339(std::string_view text);

}  // namespace biscuit::datalog
