#include "tools/compliance_tool.h"

#include "base/json.h"
#include "net/client.h"
#include "tools/guarded_call.h"
#include "tools/hipaa.h"

#include <filesystem>

namespace larder::tools {
namespace {

constexpr const char* kToolName = "hipaa_compliance_check";

struct ApiTarget {
  std::string base;    // scheme://host:port
  std::string target;  // /path?query
};

Result<ApiTarget> split_url(const std::string& url) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return make_error("config", "compliance.api_url is not a URL: " + url);
  auto path_start = url.find('/', scheme_end + 3);
  if (path_start == std::string::npos) return ApiTarget{url, "/"};
  return ApiTarget{url.substr(0, path_start), url.substr(path_start)};
}

std::string default_ca_bundle() {
  for (const char* p : {"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"}) {
    if (std::filesystem::exists(p)) return p;
  }
  return {};
}

// POSTs {"text": ...} to the external API; returns a small report of what happened.
nlohmann::json send_to_api(const ComplianceOptions& options, const std::string& text) {
  auto target = split_url(options.api_url);
  if (!target) return {{"sent", false}, {"error", target.error().message}};
  net::TlsClientConfig tls;
  tls.insecure_plain = target->base.rfind("http://", 0) == 0;  // net refuses non-loopback plain HTTP
  tls.ca_file = options.api_ca_file.empty() ? default_ca_bundle() : options.api_ca_file;
  auto client = net::HttpClient::create(target->base, tls);
  if (!client) return {{"sent", false}, {"error", client.error().message}};
  nlohmann::json body = {{"text", text}};
  auto response = (*client)->request("POST", target->target, {{"Content-Type", "application/json"}},
                                     body.dump(), options.api_timeout);
  if (!response) return {{"sent", false}, {"error", response.error().message}};
  nlohmann::json report = {{"sent", true}, {"status", response->status}};
  // The reply lands five levels down in the tool result (result.structuredContent.
  // external_check.response): half the nesting budget keeps the result readable by clients
  // that bound theirs at kMaxJsonDepth.
  auto parsed = parse_json_bounded(response->body, kMaxJsonDepth / 2);
  if (parsed) report["response"] = std::move(*parsed);
  return report;
}

}  // namespace

Result<void> register_compliance_tool(mcp::Server& server, gate::Pipeline& pipeline,
                                      ComplianceOptions options) {
  mcp::Tool tool;
  tool.name = kToolName;
  tool.title = "HIPAA compliance check";
  tool.description =
      "Checks text for HIPAA Safe Harbor identifiers (names, dates, phone and fax numbers, email, SSN, "
      "medical record, health plan and account numbers, addresses and ZIP codes, IPs, URLs, ...). "
      "The text may be sent to an external compliance service, so tokens that have read sensitive data are "
      "refused.";
  tool.input_schema = {
      {"type", "object"},
      {"properties",
       {{"text",
         {{"type", "string"}, {"description", "The text to check"}, {"maxLength", options.max_text_bytes}}},
        {"biscuit_token", biscuit_token_property()}}},
      {"required", {"text"}},
      {"additionalProperties", false}};
  tool.output_schema =
      nlohmann::json{{"type", "object"},
                     {"properties",
                      {{"compliant", {{"type", "boolean"}}},
                       {"identifier_count", {{"type", "integer"}}},
                       {"categories", {{"type", "object"}}},
                       {"findings", {{"type", "array"}}},
                       {"external_check", {{"type", "object"}}}}},
                     {"required", {"compliant", "identifier_count", "categories", "findings"}}};
  tool.annotations = {{"readOnlyHint", true}, {"openWorldHint", true}, {"destructiveHint", false}};

  auto handler = [&pipeline, options](mcp::RequestContext& ctx, const nlohmann::json& arguments) {
    gate::CallFacts facts{"tools/call", kToolName, gate::DataFlow::kEgress, {}, {}};
    return run_guarded_tool(ctx, pipeline, call_request(ctx, arguments, facts),
                            [&](const gate::Admission&) -> BodyResult<ToolBody> {
                              const std::string text = arguments.value("text", "");
                              nlohmann::json report = to_json(scan_hipaa_identifiers(text));
                              if (!options.api_url.empty())
                                report["external_check"] = send_to_api(options, text);
                              ToolBody body;
                              body.result.structured_content = report;
                              body.result.content = nlohmann::json::array({mcp::text_content(report.dump())});
                              return body;
                            });
  };
  return server.add_tool(std::move(tool), handler);
}

}  // namespace larder::tools
