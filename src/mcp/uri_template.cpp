#include "mcp/uri_template.h"

#include <algorithm>
#include <cctype>
#include <functional>

namespace larder::mcp {

UriValue UriValue::of_list(std::vector<std::string> items) {
  UriValue v;
  v.kind = Kind::kList;
  v.list = std::move(items);
  return v;
}

UriValue UriValue::of_map(std::vector<std::pair<std::string, std::string>> pairs) {
  UriValue v;
  v.kind = Kind::kMap;
  v.map = std::move(pairs);
  return v;
}

namespace {

bool is_unreserved(unsigned char c) {
  return std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}
bool is_reserved(unsigned char c) {
  static const std::string_view kReserved = ":/?#[]@!$&'()*+,;=";
  return kReserved.find(static_cast<char>(c)) != std::string_view::npos;
}
bool is_varchar(unsigned char c) {
  return std::isalnum(c) || c == '_' || c == '%' || c == '.';
}

struct OpInfo {
  const char* first;
  const char* sep;
  bool named;
  const char* ifemp;
  bool allow_reserved;
};

OpInfo op_info(char op) {
  switch (op) {
    case '+':
      return {"", ",", false, "", true};
    case '.':
      return {".", ".", false, "", false};
    case '/':
      return {"/", "/", false, "", false};
    case ';':
      return {";", ";", true, "", false};
    case '?':
      return {"?", "&", true, "=", false};
    case '&':
      return {"&", "&", true, "=", false};
    case '#':
      return {"#", ",", false, "", true};
    default:
      return {"", ",", false, "", false};
  }
}

std::string encode(std::string_view s, bool allow_reserved) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (is_unreserved(c) || (allow_reserved && is_reserved(c))) {
      out += static_cast<char>(c);
    } else if (allow_reserved && c == '%' && i + 2 < s.size() &&
               std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
               std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += '%';  // keep an existing pct-encoded triplet
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// Truncates to `n` Unicode code points (RFC 6570 counts characters, not bytes).
std::string prefix_chars(const std::string& s, std::size_t n) {
  std::size_t count = 0, i = 0;
  while (i < s.size() && count < n) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    std::size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    i += len;
    ++count;
  }
  return s.substr(0, std::min(i, s.size()));
}

}  // namespace

std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

larder::Result<UriTemplate> UriTemplate::parse(std::string_view text) {
  UriTemplate t;
  t.text_ = std::string(text);
  std::size_t i = 0;
  std::string literal;
  while (i < text.size()) {
    char c = text[i];
    if (c == '}')
      return larder::make_error("mcp.uri_template", "unbalanced '}' at offset " + std::to_string(i));
    if (c != '{') {
      literal += c;
      ++i;
      continue;
    }
    std::size_t close = text.find('}', i);
    if (close == std::string_view::npos)
      return larder::make_error("mcp.uri_template", "unterminated '{' at offset " + std::to_string(i));
    if (!literal.empty()) {
      t.parts_.push_back(Part{true, literal, 0, {}});
      literal.clear();
    }
    std::string_view body = text.substr(i + 1, close - i - 1);
    Part part;
    part.literal = false;
    if (!body.empty() && std::string_view("+#./;?&").find(body[0]) != std::string_view::npos) {
      part.op = body[0];
      body.remove_prefix(1);
    } else if (!body.empty() && std::string_view("=,!@|").find(body[0]) != std::string_view::npos) {
      return larder::make_error("mcp.uri_template",
                                std::string("reserved operator '") + body[0] + "' in template");
    }
    if (body.empty())
      return larder::make_error("mcp.uri_template", "empty expression at offset " + std::to_string(i));
    std::size_t start = 0;
    while (start <= body.size()) {
      std::size_t comma = body.find(',', start);
      std::string_view spec =
          body.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
      VarSpec v;
      if (!spec.empty() && spec.back() == '*') {
        v.explode = true;
        spec.remove_suffix(1);
      } else if (auto colon = spec.find(':'); colon != std::string_view::npos) {
        std::string_view len = spec.substr(colon + 1);
        if (len.empty() || len.size() > 4 || len[0] == '0')
          return larder::make_error("mcp.uri_template", "bad prefix length in '" + std::string(spec) + "'");
        for (char d : len) {
          if (!std::isdigit(static_cast<unsigned char>(d)))
            return larder::make_error("mcp.uri_template", "bad prefix length in '" + std::string(spec) + "'");
        }
        v.prefix = static_cast<std::size_t>(std::stoul(std::string(len)));
        spec = spec.substr(0, colon);
      }
      if (spec.empty())
        return larder::make_error("mcp.uri_template", "empty variable name in '{" + std::string(body) + "}'");
      for (char ch : spec) {
        if (!is_varchar(static_cast<unsigned char>(ch)))
          return larder::make_error("mcp.uri_template",
                                    "bad character in variable name '" + std::string(spec) + "'");
      }
      v.name = std::string(spec);
      part.vars.push_back(std::move(v));
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
    t.parts_.push_back(std::move(part));
    i = close + 1;
  }
  if (!literal.empty()) t.parts_.push_back(Part{true, literal, 0, {}});
  return t;
}

std::vector<std::string> UriTemplate::variable_names() const {
  std::vector<std::string> names;
  for (const auto& p : parts_) {
    for (const auto& v : p.vars) {
      if (std::find(names.begin(), names.end(), v.name) == names.end()) names.push_back(v.name);
    }
  }
  return names;
}

std::string UriTemplate::expand(const std::map<std::string, UriValue>& variables) const {
  std::string out;
  for (const auto& part : parts_) {
    if (part.literal) {
      out += part.text;
      continue;
    }
    OpInfo info = op_info(part.op);
    bool first = true;
    for (const auto& spec : part.vars) {
      auto it = variables.find(spec.name);
      if (it == variables.end()) continue;
      const UriValue& value = it->second;
      if (value.kind == UriValue::Kind::kList && value.list.empty()) continue;
      if (value.kind == UriValue::Kind::kMap && value.map.empty()) continue;
      out += first ? info.first : info.sep;
      first = false;
      if (value.kind == UriValue::Kind::kString) {
        if (info.named) {
          out += spec.name;
          if (value.string.empty()) {
            out += info.ifemp;
            continue;
          }
          out += '=';
        }
        std::string v = spec.prefix ? prefix_chars(value.string, spec.prefix) : value.string;
        out += encode(v, info.allow_reserved);
        continue;
      }
      if (!spec.explode) {
        if (info.named) out += spec.name + "=";
        bool f = true;
        if (value.kind == UriValue::Kind::kList) {
          for (const auto& item : value.list) {
            if (!f) out += ',';
            f = false;
            out += encode(item, info.allow_reserved);
          }
        } else {
          for (const auto& [k, v] : value.map) {
            if (!f) out += ',';
            f = false;
            out += encode(k, info.allow_reserved) + "," + encode(v, info.allow_reserved);
          }
        }
        continue;
      }
      bool f = true;
      if (value.kind == UriValue::Kind::kList) {
        for (const auto& item : value.list) {
          if (!f) out += info.sep;
          f = false;
          if (info.named) {
            out += spec.name;
            if (item.empty()) {
              out += info.ifemp;
              continue;
            }
            out += '=';
          }
          out += encode(item, info.allow_reserved);
        }
      } else {
        for (const auto& [k, v] : value.map) {
          if (!f) out += info.sep;
          f = false;
          out += encode(k, info.allow_reserved);
          if (info.named && v.empty()) {
            out += info.ifemp;
            continue;
          }
          out += "=" + encode(v, info.allow_reserved);
        }
      }
    }
  }
  return out;
}

namespace {

// Characters an expression of this operator can produce (after its leading `first` char).
bool op_char(char op, unsigned char c) {
  switch (op) {
    case '+':
    case '#':
      return c != 0 && !std::isspace(c);
    case '?':
    case '&':
      return is_unreserved(c) || c == '%' || c == '=' || c == '&' || c == ',';
    case ';':
      return is_unreserved(c) || c == '%' || c == '=' || c == ';' || c == ',';
    case '/':
      return is_unreserved(c) || c == '%' || c == '/' || c == ',';
    case '.':
      return is_unreserved(c) || c == '%' || c == ',';
    default:
      return is_unreserved(c) || c == '%' || c == ',';
  }
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    std::size_t p = s.find(sep, start);
    out.emplace_back(s.substr(start, p == std::string_view::npos ? std::string_view::npos : p - start));
    if (p == std::string_view::npos) break;
    start = p + 1;
  }
  return out;
}

// Assigns the text an expression matched to its variables. Returns false if it cannot fit.
bool bind(const UriTemplate::Part& part, std::string_view text, std::map<std::string, std::string>* vars) {
  OpInfo info = op_info(part.op);
  std::string_view first = info.first;
  if (text.empty()) return true;  // every variable undefined
  if (!first.empty()) {
    if (text.substr(0, first.size()) != first) return false;
    text.remove_prefix(first.size());
  }
  const char sep = info.sep[0];
  std::vector<std::string> items = split(text, sep);
  if (info.named) {
    // name=value pairs; exploded lists repeat the name.
    for (const auto& item : items) {
      auto eq = item.find('=');
      std::string name = item.substr(0, eq);
      std::string value = eq == std::string::npos ? std::string() : item.substr(eq + 1);
      bool known = false;
      for (const auto& spec : part.vars) known = known || spec.name == name;
      if (!known) {
        // An exploded map contributes arbitrary keys; keep them under their own names.
        bool has_explode = false;
        for (const auto& spec : part.vars) has_explode = has_explode || spec.explode;
        if (!has_explode) return false;
      }
      auto& slot = (*vars)[name];
      if (!slot.empty()) slot += ',';
      slot += percent_decode(value);
    }
    return true;
  }
  if (part.vars.size() == 1) {
    const auto& spec = part.vars[0];
    std::string joined;
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (i) joined += ',';
      joined += percent_decode(items[i]);
    }
    if (!spec.explode && sep != ',') {
      if (items.size() != 1) return false;
    }
    (*vars)[spec.name] = joined;
    return true;
  }
  // Several variables: one item each, in order (trailing ones may be undefined).
  if (items.size() > part.vars.size()) {
    // The last variable may be an exploded/list value absorbing the rest.
    if (!part.vars.back().explode && sep != ',') return false;
  }
  for (std::size_t i = 0; i < part.vars.size() && i < items.size(); ++i) {
    if (i + 1 == part.vars.size() && items.size() > part.vars.size()) {
      std::string rest;
      for (std::size_t j = i; j < items.size(); ++j) {
        if (j > i) rest += ',';
        rest += percent_decode(items[j]);
      }
      (*vars)[part.vars[i].name] = rest;
    } else {
      (*vars)[part.vars[i].name] = percent_decode(items[i]);
    }
  }
  return true;
}

}  // namespace

bool UriTemplate::match(std::string_view uri, std::map<std::string, std::string>* variables) const {
  std::map<std::string, std::string> found;
  std::function<bool(std::size_t, std::size_t)> step = [&](std::size_t pi, std::size_t pos) -> bool {
    if (pi == parts_.size()) return pos == uri.size();
    const Part& part = parts_[pi];
    if (part.literal) {
      if (uri.substr(pos, part.text.size()) != part.text) return false;
      return step(pi + 1, pos + part.text.size());
    }
    OpInfo info = op_info(part.op);
    std::string_view lead = info.first;
    // The expression covers [pos, end): empty, or `first` followed by op characters.
    std::size_t max_end = pos;
    if (lead.empty() || uri.substr(pos, lead.size()) == lead) {
      max_end = pos + lead.size();
      while (max_end < uri.size() && op_char(part.op, static_cast<unsigned char>(uri[max_end]))) ++max_end;
    }
    // Prefer the longest match for the last part, shortest non-empty otherwise (keeps
    // following literals free); try all.
    for (std::size_t end = max_end + 1; end-- > pos;) {
      if (end != pos && end < pos + lead.size()) continue;
      std::map<std::string, std::string> saved = found;
      if (bind(part, uri.substr(pos, end - pos), &found) && step(pi + 1, end)) return true;
      found = std::move(saved);
    }
    return false;
  };
  if (!step(0, 0)) return false;
  if (variables) *variables = std::move(found);
  return true;
}

}  // namespace larder::mcp
