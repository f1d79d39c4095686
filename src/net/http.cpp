#include "net/http.h"

#include <algorithm>
#include <cctype>

#include "net/client.h"

namespace larder::net {

std::optional<std::string> find_header(const HeaderList& headers, std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() && std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
        })) {
      return v;
    }
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
