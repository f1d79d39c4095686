#include "cli/token_args.h"

#include "biscuit/biscuit.h"
#include "biscuit/datalog/parser.h"

#include <cctype>
#include <stdexcept>

namespace larder::cli {
namespace {

Error usage(const std::string& message) {
  return make_error("usage", message);
}

}  // namespace

Result<std::chrono::seconds> parse_duration(const std::string& text) {
  if (text.empty()) return usage("empty duration");
  long long total = 0, current = 0;
  bool digits = false;
  for (char c : text) {
    if (c >= '0' && c <= '9') {
      current = current * 10 + (c - '0');
      if (current > 100LL * 365 * 86400) return usage("duration too large: " + text);
      digits = true;
      continue;
    }
    if (!digits) return usage("invalid duration: " + text + " (e.g. 90s, 15m, 8h, 2d, 1w)");
    long long unit = c == 's'   ? 1
                     : c == 'm' ? 60
                     : c == 'h' ? 3600
                     : c == 'd' ? 86400
                     : c == 'w' ? 604800
                                : 0;
    if (!unit) return usage("invalid duration unit in " + text + " (use s, m, h, d, w)");
    total += current * unit;
    if (total > 100LL * 365 * 86400) return usage("duration too large: " + text);
    current = 0;
    digits = false;
  }
  total += current;
  return std::chrono::seconds(total);
}

Result<void> add_param(biscuit::Params& params, const std::string& spec) {
  std::string name, value, type = "string";
  auto eq = spec.find('=');
  if (eq == std::string::npos) return usage("--param needs name=value[::type]: " + spec);
  name = spec.substr(0, eq);
  value = spec.substr(eq + 1);
  if (auto colon = name.find(':'); colon != std::string::npos) {
    type = name.substr(colon + 1);
    name = name.substr(0, colon);
  } else if (auto dc = value.rfind("::"); dc != std::string::npos) {
    type = value.substr(dc + 2);
    value = value.substr(0, dc);
  }
  if (name.empty()) return usage("--param without a name: " + spec);
  if (type == "string") {
    params.string(name, value);
  } else if (type == "integer" || type == "int") {
    try {
      std::size_t used = 0;
      long long v = std::stoll(value, &used);
      if (used != value.size()) throw std::invalid_argument("trailing");
      params.integer(name, v);
    } catch (const std::exception&) {
      return usage("--param " + name + ": not an integer: " + value);
    }
  } else if (type == "date") {
    auto d = biscuit::datalog::parse_rfc3339(value);
    if (!d) return usage("--param " + name + ": not an RFC 3339 date: " + value);
    params.date(name, *d);
  } else if (type == "bytes") {
    std::string hex = value.rfind("hex:", 0) == 0 ? value.substr(4) : value;
    auto b = biscuit::hex_decode(hex);
    if (!b) return usage("--param " + name + ": not hex bytes: " + value);
    params.bytes(name, *b);
  } else if (type == "bool") {
    if (value != "true" && value != "false") return usage("--param " + name + ": bool must be true or false");
    params.boolean(name, value == "true");
  } else if (type == "pubkey" || type == "public_key") {
    auto key = biscuit::PublicKey::from_string(value);
    if (!key) return usage("--param " + name + ": " + key.error().message);
    params.public_key(name, *key);
  } else {
    return usage("--param " + name + ": unknown type " + type +
                 " (string, integer, date, bytes, bool, pubkey)");
  }
  return {};
}

Result<biscuit::Params> make_params(const std::vector<std::string>& specs) {
  biscuit::Params p;
  for (const auto& s : specs) {
    if (auto r = add_param(p, s); !r) return r.error();
  }
  return p;
}

Result<biscuit::PrivateKey> parse_private_key(std::string k, biscuit::Algorithm bare) {
  if (auto at = k.find("Private key:"); at != std::string::npos) {
    auto end = k.find('\n', at);
    k = k.substr(at + 12, end == std::string::npos ? std::string::npos : end - at - 12);
  }
  auto space = [](unsigned char c) { return std::isspace(c) != 0; };
  while (!k.empty() && space(k.back())) k.pop_back();
  while (!k.empty() && space(k.front())) k.erase(k.begin());
  if (k.empty()) return usage("empty private key");
  auto key = biscuit::PrivateKey::from_string(k, bare);
  if (!key) return make_error("key.invalid", key.error().message);
  return std::move(*key);
}

}  // namespace larder::cli
