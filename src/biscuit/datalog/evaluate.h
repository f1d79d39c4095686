// Expression evaluation (datalog 3.0 – 3.3), with the reference's semantics and errors:
//  - integer arithmetic is checked (Overflow, DivideByZero); bitwise & | ^ on integers;
//  - `===`/`!==` (Equal/NotEqual) are strict: operands of different kinds are InvalidType
//    (sets are compared by value either way); `==`/`!=` are lenient: different kinds give
//    false/true;
//  - strings: starts_with, ends_with, contains (linear time), matches (RE2, unanchored, an
//    invalid regex is false; a pattern above 4 KiB, or a text × program above 2^22 steps,
//    is refused as a Timeout before it runs), length in UTF-8 bytes, `+` concatenates (the
//    result is interned in the TemporarySymbols overlay);
//  - sets: contains (element or subset), intersection, union, length; arrays: contains,
//    starts_with, ends_with, get (out of range or negative: null), length; maps: contains
//    (key), get (missing: null), length; .any/.all over sets, arrays and maps (a map
//    element is the array [key, value]);
//  - && || are lazy (their right side is a closure), .try_or(v) returns v if its left
//    closure fails with any error; a closure parameter already bound is ShadowedVariable;
//  - .type() returns "integer" "string" "date" "bytes" "bool" "set" "null" "array" "map";
//  - `extern::name` calls the host function registered under `name` (UndefinedExtern if
//    none; its error string becomes ExternEvalError).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "biscuit/datalog/ast.h"
#include "biscuit/datalog/errors.h"
#include "biscuit/datalog/types.h"

namespace biscuit::datalog {

// A host function: `left.extern::name()` calls it with (left, nullopt),
// `left.extern::name(right)` with (left, right). Return the result term or an error text.
using ExternFunction = std::function<Expected<ast::Term, std::string>(const ast::Term& left,
                                                                      const std::optional<ast::Term>& right)>;
using ExternFunctions = std::map<std::string, ExternFunction, std::less<>>;

// Variable bindings for one evaluation: (variable id, value). Values are borrowed.
using Bindings = std::vector<std::pair<uint32_t, const Term*>>;

// What one evaluation may cost (shared by the expressions a rule tests for one binding).
//  - deadline: checked inside the evaluation: every 64 operations (counting the operations
//    of closure bodies run by .any/.all), and before every operation whose cost grows with
//    its operands (string concatenation, contains, starts_with/ends_with, matches, union,
//    intersection, comparisons of bytes/collections, extern calls). Past it: Timeout.
//  - memory: bytes the evaluation may still create, decremented as it creates them: strings
//    (concatenation, extern results), sets (union, intersection) and extern results, charged
//    before they are built. Beyond it: TooMuchMemory.
struct EvalBudget {
  std::optional<std::chrono::steady_clock::time_point> deadline;
  std::size_t memory = std::numeric_limits<std::size_t>::max();
  uint64_t ops = 0;  // operations run so far
};

// Evaluates `expression` to a term. `externs` may be null (every extern call then fails
// with UndefinedExtern).
Expected<Term, ExecutionError> evaluate(const Expression& expression, const Bindings& bindings,
                                        TemporarySymbols& symbols, const ExternFunctions* externs,
                                        EvalBudget& budget);
// The same with only a deadline (no memory budget).
Expected<Term, ExecutionError> evaluate(
    const Expression& expression, const Bindings& bindings, TemporarySymbols& symbols,
    const ExternFunctions* externs,
    std::optional<std::chrono::steady_clock::time_point> deadline = std::nullopt);

}  // namespace biscuit::datalog
