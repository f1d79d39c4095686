// Errors of the Datalog layer of libbiscuit, and a small Expected<T, E>.
//
// Two families, kept apart because callers treat them differently:
//  - datalog::Error: the text or the data is wrong (parse error with position, unbound
//    parameter, unknown symbol id, overlapping symbol tables, invalid term...). Fix the input.
//  - datalog::ExecutionError: evaluation failed (an expression error, which aborts the whole
//    authorization, or a run limit). Kinds and names match the reference implementation's
//    `error::Expression` and `error::RunLimit` variants exactly (see kind_name()).
// Nothing in this layer throws; every fallible call returns Expected.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <variant>

namespace biscuit::datalog {

struct Error {
  enum class Code {
    Parse,                  // syntax error; offset/line/column locate it
    UnboundParameter,       // a {name} parameter has no value
    InvalidParameter,       // a parameter value of the wrong kind (e.g. a variable)
    UnknownSymbol,          // a symbol id absent from the symbol table
    UnknownPublicKey,       // a scope's public key index absent from the key table
    SymbolTableOverlap,     // a block redefines a symbol already in the table
    PublicKeyTableOverlap,  // a block redefines a public key already in the table
    InvalidTerm,            // e.g. a set mixing types, a nested set, a variable in a fact
    InvalidRule,            // a rule head variable that no body predicate binds
    Version,                // a feature newer than the block's declared version
    LimitExceeded,          // content beyond a SizeLimits bound (limits.h): too large to evaluate
  };
  Code code = Code::Parse;
  std::string message;
  // Parse errors only: byte offset into the input, 1-based line and column (in bytes).
  std::size_t offset = 0;
  std::size_t line = 0;
  std::size_t column = 0;

  // "line 3, column 7: expected ')'" for parse errors, the message otherwise.
  std::string to_string() const;
};

struct ExecutionError {
  enum class Kind {
    // ---- expression errors (reference: error::Expression) ----
    UnknownSymbol,    // `id` = the symbol id
    UnknownVariable,  // `id` = the variable id
    InvalidType,
    Overflow,
    DivideByZero,
    InvalidStack,
    ShadowedVariable,
    UndefinedExtern,  // `name` = the function name
    ExternEvalError,  // `name` = function, `message` = what it returned
    // ---- run limits (reference: error::RunLimit) ----
    TooManyFacts,
    TooManyIterations,
    Timeout,
    TooMuchMemory,  // RunLimits::max_memory_bytes (no reference equivalent; named like its siblings)
  };
  Kind kind = Kind::InvalidType;
  uint64_t id = 0;
  std::string name;
  std::string message;

  bool is_run_limit() const {
    return kind == Kind::TooManyFacts || kind == Kind::TooManyIterations || kind == Kind::Timeout ||
           kind == Kind::TooMuchMemory;
  }
  // The reference variant name: "Overflow", "InvalidType", "TooManyFacts", ...
  const char* kind_name() const;
  // Human sentence, e.g. "integer overflow", "undefined extern function 'f'".
  std::string to_string() const;
};

// Expected<T, E>: exactly one of a value or an error (a pre-C++23 std::expected).
template <class T, class E>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT
  Expected(E error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  const E& error() const& { return std::get<1>(v_); }
  E&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, E> v_;
};

template <class E>
class [[nodiscard]] Expected<void, E> {
 public:
  Expected() = default;
  Expected(E error) : error_(std::move(error)), ok_(false) {}  // NOLINT
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const E& error() const& { return error_; }
  E&& error() && { return std::move(error_); }

 private:
  E error_{};
  bool ok_ = true;
};

template <class T>
using Result = Expected<T, Error>;
using Status = Expected<void, Error>;

Error make_error(Error::Code code, std::string message);

}  // namespace biscuit::datalog
