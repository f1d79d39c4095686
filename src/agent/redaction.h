// Keeps secrets away from the LLM provider. A Redactor knows the literal secrets of a run
// (every Biscuit token the TokenStore held, configured MCP header values, the API keys of
// other providers) and also recognises secret-shaped text it was never told about: PEM
// blocks (certificates, keys) and long base64/base64url runs (serialized Biscuit tokens).
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace larder::agent {

inline constexpr const char* kRedacted = "[redacted]";

class Redactor {
 public:
  void add_secret(std::string secret);  // ignored if shorter than 8 characters
  void add_secrets(const std::vector<std::string>& secrets);

  std::string redact(std::string_view text) const;
  // Deep copy with every string redacted and every "_meta" member removed.
  nlohmann::json redact_json(const nlohmann::json& value) const;
  // True if `text` contains any known secret or secret-shaped run.
  bool contains_secret(std::string_view text) const;
  // True if `text` contains one of the literal secrets (the fail-closed check on every
  // request body before it leaves for the provider).
  bool contains_known_secret(std::string_view text) const;
  const std::vector<std::string>& secrets() const { return secrets_; }

 private:
  std::vector<std::string> secrets_;
};

// Long runs of base64/base64url characters (at least this many) are treated as tokens.
inline constexpr std::size_t kTokenShapedRun = 96;

}  // namespace larder::agent
