// Expression evaluation (datalog 3.0 – 3.3), with the reference's semantics and errors:
//  - integer arithmetic is checked (Overflow, DivideByZero); bitwise & | ^ on integers;
//  - `===`/`!==` (Equal/NotEqual) are strict: operands of different kinds are InvalidType
//    (sets are compared by value either way); `==`/`!=` are lenient: different kinds give
//    false/true;
//  - strings: starts_with, ends_with, contains, matches (RE2, unanchored, an invalid regex
//    is false), length in UTF-8 bytes, `+` concatenates (the result is interned in the
//    TemporarySymbols overlay);
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
#include <functional>
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
using ExternFunction = std::function<Expected<ast::Term, std::string>(
    const ast::Term& left, const std::optional<ast::Term>& right)>;
using ExternFunctions = std::map<std::string, ExternFunction, std::less<>>;

// Variable bindings for one evaluation: (variable id, value). Values are borrowed.
using Bindings = std::vector<std::pair<uint32_t, const Term*>>;

// Evaluates `expression` to a term. `externs` may be null (every extern call then fails
// with UndefinedExtern). With a `deadline`, .any/.all loops (whose nesting can multiply
// work) stop with Timeout once it has passed.
Expected<Term, ExecutionError> evaluate(
    const Expression& expression, const Bindings& bindings, TemporarySymbols& symbols,
    const ExternFunctions* externs,
    std::optional<std::chrono::steady_clock::time_point> deadline = std::nullopt);

}  // namespace biscuit::datalog
