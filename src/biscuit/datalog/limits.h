// Size limits on Datalog content, checked before anything is evaluated.
//
// A token is attacker-controlled input: without limits one 15 KB attenuation block such as
// `check if ({s} + {s} + ... 500 times).length() > 0` makes a single authorization run for
// seconds and allocate gigabytes. These limits bound what one block (or one piece of text a
// person typed) may contain; the evaluation budget (RunLimits::max_memory_bytes and the
// deadline inside expression evaluation, see world.h / evaluate.h) bounds what running it
// may cost. The defaults are far above anything the specification's samples or Larder's own
// tokens and policies use (the largest sample expression has 15 operations, the longest
// symbol 18 bytes, the largest block 28 facts or 39 checks).
//
// Enforced on: every block a token carries (Biscuit::from_bytes / from_base64 /
// from_bytes_unverified, third-party blocks) through ParseLimits::datalog; blocks being built
// (BlockBuilder::set_limits, so a writer never produces what a default reader refuses); the
// text parser (ParseOptions::limits) for blocks, policies, checks, rules, facts and
// expressions typed by people. Per-block counts apply to blocks only, not to authorizer
// code (the server's own, e.g. a 10,000-fact world).
#pragma once

#include <cstddef>

#include "biscuit/datalog/ast.h"
#include "biscuit/datalog/errors.h"
#include "biscuit/datalog/types.h"

namespace biscuit::datalog {

struct SizeLimits {
  // ---- each expression ----
  // Operations (values, operators, closures), closure bodies included.
  std::size_t max_expression_ops = 512;
  // Deepest evaluation stack the expression can reach; a closure's stack counts on top of
  // the stack that holds the closure (so it also bounds the evaluator's recursion).
  std::size_t max_expression_depth = 128;
  // ---- each literal ----
  std::size_t max_string_bytes = 16 * 1024;    // a string (on the wire: every symbol of a block)
  std::size_t max_bytes_length = 16 * 1024;    // a `hex:` bytes value
  std::size_t max_collection_elements = 1024;  // a set, array or map (entries)
  // ---- each block ----
  std::size_t max_block_facts = 1024;
  std::size_t max_block_rules = 256;
  std::size_t max_block_checks = 256;
  // Every term of the block's facts, rules and checks: predicate arguments, values in
  // expressions, each element of a collection.
  std::size_t max_block_terms = 16 * 1024;

  // No limit at all (for tests that build hostile tokens, and for trusted tooling).
  static SizeLimits unlimited();
};

// Interned blocks (decoded from a token, or built): every limit, including the per-block
// counts. Strings are checked through the block's own symbol list (`block.symbols`).
// Errors: LimitExceeded, naming the element ("check 2, expression 0: 999 operations, above
// the limit of 512").
Status check_limits(const Block& block, const SizeLimits& limits);

// Text level (after parsing; parameters count as one term). `is_block`: apply the per-block
// counts (block source); false for authorizer code.
Status check_limits(const ast::Source& source, const SizeLimits& limits, bool is_block);
Status check_limits(const ast::Fact& fact, const SizeLimits& limits);
Status check_limits(const ast::Rule& rule, const SizeLimits& limits);
Status check_limits(const ast::Check& check, const SizeLimits& limits);
Status check_limits(const ast::Policy& policy, const SizeLimits& limits);
Status check_limits(const ast::Expression& expression, const SizeLimits& limits);
Status check_limits(const ast::Term& term, const SizeLimits& limits);

}  // namespace biscuit::datalog
