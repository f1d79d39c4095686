#include "net/http.h"

#include <algorithm>
#include <cctype>

#include "net/client.h"

namespace larder::net {

bool valid_header_field(std::string_view name, std::string_view value) {
  constexpr std::string_view kTokenPunctuation = "!#$%&'*+-.^_`|~";
  if (name.empty()) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && kTokenPunctuation.find(c) == std::string_view::npos)
      return false;
  }
  return value.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

std::optional<std::string> find_header(const HeaderList& headers, std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (iequals(k, name)) return v;
  }
  return std::nullopt;
}

std::optional<std::string> HttpRequest::header(std::string_view name) const {
  return find_header(headers, name);
}
std::optional<std::string> ClientResponse::header(std::string_view name) const {
  return find_header(headers, name);
}

}  // namespace larder::net
