// larder::Result<T> — the error-carrying return value used across Larder's modules
// (net, mcp, db, gate, tools, agent). libbiscuit keeps its own error tree and does not
// include this header, so it can be published alone.
//
// Invariant: a Result holds exactly one of a value or an Error. Errors say what failed and,
// where useful, what to do about it; `code` is a module-specific machine-readable tag.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace larder {

struct Error {
  std::string code;     // short machine tag, e.g. "tls.handshake", "db.timeout"
  std::string message;  // human sentence: what failed and what to do
  // The underlying library's own words (an OpenSSL error chain, libpq's message): for logs
  // and `--verbose`, never the top-level message a user reads.
  std::string detail;
};

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

 private:
  std::variant<T, Error> v_;
};

// Result<void>: success carries nothing.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT(google-explicit-constructor)
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

inline Error make_error(std::string code, std::string message, std::string detail = {}) {
  return Error{std::move(code), std::move(message), std::move(detail)};
}

}  // namespace larder
