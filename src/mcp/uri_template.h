// RFC 6570 URI Templates (levels 1-4) for MCP resource templates: expansion, and the
// reverse direction MCP needs — matching a concrete URI against a template to recover the
// variable values a resource handler receives.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace larder::mcp {

// A variable value: a string, a list, or an associative list (ordered key/value pairs).
struct UriValue {
  enum class Kind { kString, kList, kMap } kind = Kind::kString;
  std::string string;
  std::vector<std::string> list;
  std::vector<std::pair<std::string, std::string>> map;

  UriValue() = default;
  UriValue(std::string s) : string(std::move(s)) {}  // NOLINT(google-explicit-constructor)
  UriValue(const char* s) : string(s) {}             // NOLINT(google-explicit-constructor)
  static UriValue of_list(std::vector<std::string> items);
  static UriValue of_map(std::vector<std::pair<std::string, std::string>> pairs);
};

class UriTemplate {
 public:
  // Parses a template; fails ("mcp.uri_template") on unbalanced braces, unknown operators,
  // bad variable names or prefix lengths.
  static larder::Result<UriTemplate> parse(std::string_view text);

  const std::string& text() const { return text_; }
  // Names of all variables, in order of first appearance.
  std::vector<std::string> variable_names() const;

  // Expands with the given variables; undefined variables are omitted (RFC 6570 §3.2.1).
  std::string expand(const std::map<std::string, UriValue>& variables) const;

  // Matches a concrete URI; on success returns each variable's decoded value (list and
  // exploded values are joined with ','). Returns false when the URI does not fit.
  bool match(std::string_view uri, std::map<std::string, std::string>* variables) const;

  struct VarSpec {
    std::string name;
    std::size_t prefix = 0;  // 0 = none
    bool explode = false;
  };
  struct Part {
    bool literal = true;
    std::string text;  // literal text
    char op = 0;       // 0, '+', '#', '.', '/', ';', '?', '&'
    std::vector<VarSpec> vars;
  };

 private:
  std::string text_;
  std::vector<Part> parts_;
};

// Percent-decodes; invalid escapes are kept literally.
std::string percent_decode(std::string_view s);

}  // namespace larder::mcp
