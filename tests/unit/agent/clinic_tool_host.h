// An in-process ToolHost test double (unit tests only): two "servers" shaped like Larder's —
// larder-db with pg_query (takes biscuit_token, answers with pg_query's structuredContent)
// and compliance with send_report (an egress tool that refuses tainted tokens). It records
// every call, and can hand back an attenuated token in _meta like the real server does.
#pragma once

#include "agent/tool_host.h"

#include <string>
#include <vector>

namespace larder::agent::testing {

inline const std::string kRootToken =
    "EpUBCisKBWFsaWNlCgVudXJzZRgDIgkKBwgKEgMYgAgiCQoHCAsSAxiBCDIUCgwKBgiFCBIAEgAKBAgLEgAaIAqWDyRBn1kEzWq4Wd0i"
    "eWnC7Y"
    "RootTokenForTests0123456789";
inline const std::string kTaintedToken =
    "EpUBCisKBWFsaWNlCgVudXJzZRgDIgkKBwgKEgMYgAgiCQoHCAsSAxiBCDIUCgwKBgiFCBIAEgAKBAgLEgAaIAqWDyRBn1kEzWq4Wd0i"
    "eWnC7Y"
    "TaintedTokenAfterRead98765";

struct RecordedCall {
  std::string server, tool;
  nlohmann::json args;
};

class ClinicToolHost : public ToolHost {
 public:
  bool refuse_queries = false;           // pg_query answers isError (a lock refused)
  bool attenuate_on_read = false;        // pg_query returns kTaintedToken in _meta
  bool leak_secrets_in_results = false;  // results echo the token and a PEM key (redaction test)
  std::string schema = "Table admissions(\"Name\" text, \"Medical Condition\" text, \"Age\" int)";
  std::vector<RecordedCall> calls;

  Result<std::vector<ToolSpec>> list_tools() override {
    nlohmann::json pg_schema = {{"type", "object"},
                                {"properties",
                                 {{"sql", {{"type", "string"}, {"description", "one SELECT statement"}}},
                                  {"limit", {{"type", "integer"}, {"minimum", 1}, {"maximum", 1000}}},
                                  {"biscuit_token", {{"type", "string"}}}}},
                                {"required", {"sql", "biscuit_token"}},
                                {"additionalProperties", false}};
    nlohmann::json report_schema = {
        {"type", "object"}, {"properties", {{"to", {{"type", "string"}}}}}, {"required", {"to"}}};
    return std::vector<ToolSpec>{
        {"larder-db", "pg_query", "Run a read-only SQL query", pg_schema},
        {"compliance", "send_report", "Send a report off the machine", report_schema}};
  }

  Result<ToolOutcome> call_tool(const std::string& server, const std::string& name,
                                nlohmann::json args) override {
    calls.push_back({server, name, args});
    ToolOutcome out;
    if (name == "send_report") {
      out.is_error = true;
      out.content = nlohmann::json::array(
          {{{"type", "text"}, {"text", "taint: this token's lineage read sensitive data; egress refused"}}});
      out.meta = {
          {"larder/decision", {{"lock", "taint"}, {"decision", "deny"}, {"reason", "lineage tainted"}}}};
      return out;
    }
    if (refuse_queries) {
      out.is_error = true;
      out.content = nlohmann::json::array(
          {{{"type", "text"}, {"text", "policy: the token does not allow reading admissions"}}});
      out.meta = {{"larder/decision",
                   {{"lock", "policy"}, {"decision", "deny"}, {"reason", "no matching allow policy"}}}};
      return out;
    }
    nlohmann::json structured = {
        {"columns", {{{"name", "condition"}, {"type", "text"}}, {{"name", "patients"}, {"type", "int8"}}}},
        {"rows", {{{"condition", "Diabetes"}, {"patients", 2}}, {{"condition", "Asthma"}, {"patients", 1}}}},
        {"row_count", 2},
        {"truncated", false}};
    std::string text = structured.dump();
    if (leak_secrets_in_results) {
      std::string token = args.value("biscuit_token", "");
      text += " token=" + token +
              " -----BEGIN PRIVATE "
              "KEY-----\nMC4CAQAwBQYDK2VwBCIEIAbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdEFG\n-----END PRIVATE "
              "KEY-----";
      structured["rows"][0]["condition"] = "Diabetes " + token;
      structured["_meta"] = {{"secret", token}};
    }
    out.structured = structured;
    out.content = nlohmann::json::array({{{"type", "text"}, {"text", text}}});
    out.meta = {{"larder/decision",
                 nlohmann::json::array(
                     {{{"lock", "mtls"}, {"decision", "allow"}, {"reason", "client CN claude-client"}},
                      {{"lock", "biscuit"}, {"decision", "allow"}, {"reason", "policy read_admissions"}}})}};
    if (attenuate_on_read) out.meta["larder/biscuit_token"] = kTaintedToken;
    return out;
  }

  Result<std::string> schema_context() override { return schema; }
};

}  // namespace larder::agent::testing
