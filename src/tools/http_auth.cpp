#include "tools/http_auth.h"

namespace larder::tools {

using nlohmann::json;

namespace {

// RFC 6750 §3: error_description is printable ASCII without '"' and '\'.
std::string header_safe(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (c == '"' || c == '\\')
      out += '\'';
    else if (c >= 0x20 && c <= 0x7e)
      out += static_cast<char>(c);
    else if (c == '\n' || c == '\t')
      out += ' ';
  }
  return out.size() > 300 ? out.substr(0, 300) : out;
}

std::string base_url(const std::optional<std::string>& host_header) {
  return "https://" + (host_header && !host_header->empty() ? *host_header : std::string("localhost"));
}

}  // namespace

std::string bearer_challenge(const std::optional<std::string>& host_header, std::string_view error,
                             std::string_view description) {
  std::string c =
      "Bearer resource_metadata=\"" + base_url(host_header) + std::string(kResourceMetadataPath) + "/mcp\"";
  if (!error.empty()) {
    c += ", error=\"" + header_safe(error) + "\"";
    if (!description.empty()) c += ", error_description=\"" + header_safe(description) + "\"";
  }
  return c;
}

void add_resource_metadata(mcp::HttpTransportOptions& options, std::string audience) {
  auto document = [audience](const net::HttpRequest& req) {
    return json{{"resource", base_url(req.header("Host")) + "/mcp"},
                {"resource_name", "Larder (" + audience + ")"},
                {"bearer_methods_supported", {"header"}},
                // RFC 8705: tokens are bound to the client certificate the handshake proved.
                {"tls_client_certificate_bound_access_tokens", true},
                // Larder's own: the audience a token must name, and the token format.
                {"larder_audience", audience},
                {"larder_token_format", "biscuit-v3"}};
  };
  options.documents[std::string(kResourceMetadataPath)] = document;
  options.documents[std::string(kResourceMetadataPath) + "/mcp"] = document;
}

TokenSource token_source(const gate::CallRequest& request) {
  if (request.argument_token) return TokenSource::kArgument;
  return request.authorization ? TokenSource::kBearer : TokenSource::kNone;
}

void challenge_refused_credentials(mcp::RequestContext& ctx, TokenSource source,
                                   const gate::Refusal& refusal) {
  if (refusal.lock != gate::Lock::kBiscuit || source == TokenSource::kArgument) return;
  if (source == TokenSource::kNone)
    ctx.reject_credentials(bearer_challenge(ctx.header("Host")));
  else
    ctx.reject_credentials(bearer_challenge(ctx.header("Host"), "invalid_token", refusal.reason));
}

}  // namespace larder::tools
