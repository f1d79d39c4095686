// biscuit::Error — the precise error tree of libbiscuit, and biscuit::Result<T>.
//
// The tree mirrors what the reference implementation reports (and what the shared
// samples print in their `result`): a category (Format, FailedLogic, Execution, RunLimit,
// Language, Token), a code inside it, and structured data for authorization failures
// (which policy matched, which checks failed, in evaluation order). `to_json()` renders
// the error in the samples' JSON shape, e.g.
//   {"FailedLogic":{"Unauthorized":{"policy":{"Allow":0},"checks":[{"Block":{...}}]}}}
// libbiscuit never throws across its API: every fallible call returns a Result.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace biscuit {

enum class ErrorCode {
  // ---- Format: bytes, protobuf, keys, signatures ----
  InvalidSignature,        // a signature does not verify
  InvalidSignatureFormat,  // signature bytes are not a valid encoding (e.g. bad DER)
  SealedSignature,         // the final signature of a sealed token does not verify
  EmptyKeys,               // a token without blocks or keys
  UnknownPublicKey,        // no root key for the token's root key id
  Deserialization,         // the outer protobuf envelope is malformed
  Serialization,           // cannot serialize
  BlockDeserialization,    // a block's protobuf is malformed or semantically invalid
  BlockSerialization,
  Version,                        // block version outside the supported range / feature too new
  InvalidSignatureSize,           // (reported as BlockSignatureDeserializationError in samples)
  BlockSignatureDeserialization,  // a block's signature has the wrong size
  InvalidKeySize,
  InvalidKey,  // key bytes are not a valid point / scalar
  UnknownExternalKey,
  UnknownSymbol,
  ExistingPublicKey,
  SymbolTableOverlap,  // a block redefines an existing symbol
  PublicKeyTableOverlap,
  // ---- Token-level misuse ----
  AppendOnSealed,  // cannot append to a sealed token
  AlreadySealed,
  InvalidBlockIndex,
  InvalidArgument,  // bad input to an API (parameters, hex, base64, key text)
  // ---- Datalog language (parse errors, missing parameters) ----
  Language,
  // ---- Authorization outcome ----
  Unauthorized,      // checks failed and/or a deny policy matched
  NoMatchingPolicy,  // checks may have failed; no policy matched
  InvalidBlockRule,  // a rule with an unbound head variable
  // ---- Evaluation ----
  Execution,  // expression error; `detail` holds the kind ("Overflow", ...)
  TooManyFacts,
  TooManyIterations,
  Timeout,        // RunLimits::max_time, checked inside expressions too
  TooMuchMemory,  // RunLimits::max_memory_bytes (facts + what expressions create)
  Internal,
};

// One failed check, in the order the authorizer evaluated them.
struct FailedCheck {
  bool authorizer = false;  // true: an authorizer check; false: a check of block `block_id`
  uint32_t block_id = 0;
  uint32_t check_id = 0;
  std::string rule;  // the check as printed Datalog
  bool operator==(const FailedCheck&) const = default;
};

struct MatchedPolicy {
  bool allow = true;
  std::size_t index = 0;
  bool operator==(const MatchedPolicy&) const = default;
};

struct Error {
  ErrorCode code = ErrorCode::Internal;
  std::string message;  // human sentence: what failed
  // Execution: the expression error kind ("Overflow", "InvalidType", "DivideByZero", ...),
  // and for kinds that carry data (UndefinedExtern, ExternEvalError, UnknownSymbol,
  // UnknownVariable) the reference's JSON value of that data (e.g. "\"f\"").
  // InvalidSignature, BlockSignatureDeserialization: the reference's payload text, which
  // to_json() renders in place of `message` (e.g. "signature error: Verification equation
  // was not satisfied"; `message` also names the block).
  std::string detail;
  std::string detail_data;
  // Unauthorized: the matched (deny, or allow with failed checks) policy. NoMatchingPolicy: none.
  std::optional<MatchedPolicy> policy;
  std::vector<FailedCheck> checks;
  // InvalidBlockRule: the rule's index within its block (the reference's first field) and
  // the printed rule; `message` names the block.
  uint32_t rule_id = 0;
  std::string rule;
  // InvalidSignature: the block whose signature does not verify (0: the authority block,
  // signed by the root key), when one block is to blame.
  std::optional<uint32_t> block;

  // "Format", "FailedLogic", "Execution", "RunLimit", "Language", "Token".
  const char* category() const;
  // The error in the samples' JSON shape (the `Err` value).
  std::string to_json() const;
  // Multi-line human rendering, including failed checks.
  std::string to_string() const;
};

Error make_error(ErrorCode code, std::string message);
// `s` as a JSON string literal (quotes and escapes included).
std::string json_quote(const std::string& s);

// Result<T>: exactly one of a value or an Error.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  const Error& error() const { return std::get<1>(v_); }
  Error&& take_error() { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT(google-explicit-constructor)
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }
  Error&& take_error() { return std::move(error_); }

 private:
  Error error_;
  bool ok_ = true;
};

}  // namespace biscuit
