#include "agent/redaction.h"

#include "agent/tool_host.h"

#include <algorithm>
#include <cctype>

namespace larder::agent {

TokenStore::TokenStore(std::string initial) {
  if (!initial.empty()) {
    current_ = initial;
    known_.push_back(std::move(initial));
  }
}

std::string TokenStore::current() const {
  std::lock_guard lock(mu_);
  return current_;
}

bool TokenStore::empty() const {
  std::lock_guard lock(mu_);
  return current_.empty();
}

bool TokenStore::replace(const std::string& token) {
  std::lock_guard lock(mu_);
  if (token.empty() || token == current_) return false;
  current_ = token;
  if (std::find(known_.begin(), known_.end(), token) == known_.end()) known_.push_back(token);
  ++switches_;
  return true;
}

std::vector<std::string> TokenStore::known() const {
  std::lock_guard lock(mu_);
  return known_;
}

int TokenStore::switches() const {
  std::lock_guard lock(mu_);
  return switches_;
}

void Redactor::add_secret(std::string secret) {
  if (secret.size() < 8) return;
  if (std::find(secrets_.begin(), secrets_.end(), secret) != secrets_.end()) return;
  secrets_.push_back(std::move(secret));
  // Longest first, so a secret that contains another is replaced whole.
  std::sort(secrets_.begin(), secrets_.end(),
            [](const auto& a, const auto& b) { return a.size() > b.size(); });
}

void Redactor::add_secrets(const std::vector<std::string>& secrets) {
  for (const auto& s : secrets) add_secret(s);
}

namespace {

bool is_b64(unsigned char c) {
  return std::isalnum(c) || c == '+' || c == '/' || c == '-' || c == '_' || c == '=';
}

// A run of base64 characters long enough to be a serialized token or key. Mixed case and at
// least one digit, so long words or identifiers in data are not mistaken for one.
bool token_shaped(std::string_view run) {
  if (run.size() < kTokenShapedRun) return false;
  bool upper = false, lower = false, digit = false;
  for (unsigned char c : run) {
    upper |= std::isupper(c) != 0;
    lower |= std::islower(c) != 0;
    digit |= std::isdigit(c) != 0;
  }
  return upper && lower && digit;
}

std::string replace_literals(std::string text, const std::vector<std::string>& secrets) {
  for (const auto& s : secrets) {
    size_t pos = 0;
    while ((pos = text.find(s, pos)) != std::string::npos) {
      text.replace(pos, s.size(), kRedacted);
      pos += std::char_traits<char>::length(kRedacted);
    }
  }
  return text;
}

std::string replace_pem(std::string text) {
  size_t pos = 0;
  while ((pos = text.find("-----BEGIN ", pos)) != std::string::npos) {
    size_t end_marker = text.find("-----END ", pos);
    size_t end = end_marker == std::string::npos ? std::string::npos : text.find("-----", end_marker + 9);
    size_t stop = end == std::string::npos ? text.size() : end + 5;
    text.replace(pos, stop - pos, kRedacted);
    pos += std::char_traits<char>::length(kRedacted);
  }
  return text;
}

std::string replace_token_shaped(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    if (!is_b64(static_cast<unsigned char>(text[i]))) {
      out.push_back(text[i++]);
      continue;
    }
    size_t j = i;
    while (j < text.size() && is_b64(static_cast<unsigned char>(text[j]))) ++j;
    std::string_view run(text.data() + i, j - i);
    if (token_shaped(run))
      out += kRedacted;
    else
      out.append(run);
    i = j;
  }
  return out;
}

}  // namespace

std::string Redactor::redact(std::string_view text) const {
  return replace_token_shaped(replace_pem(replace_literals(std::string(text), secrets_)));
}

nlohmann::json Redactor::redact_json(const nlohmann::json& value) const {
  if (value.is_string()) return redact(value.get_ref<const std::string&>());
  if (value.is_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& v : value) out.push_back(redact_json(v));
    return out;
  }
  if (value.is_object()) {
    nlohmann::json out = nlohmann::json::object();
    for (auto it = value.begin(); it != value.end(); ++it) {
      if (it.key() == "_meta") continue;
      out[redact(it.key())] = redact_json(it.value());
    }
    return out;
  }
  return value;
}

bool Redactor::contains_known_secret(std::string_view text) const {
  for (const auto& s : secrets_)
    if (text.find(s) != std::string_view::npos) return true;
  return false;
}

bool Redactor::contains_secret(std::string_view text) const {
  if (contains_known_secret(text)) return true;
  std::string t(text);
  return replace_pem(t) != t || replace_token_shaped(t) != t;
}

}  // namespace larder::agent
