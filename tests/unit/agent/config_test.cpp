#include "agent/config.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace larder::agent {
namespace {

TEST(DotEnv, ParsesTheUsualForms) {
  auto r = parse_dotenv(
      "# comment\n"
      "\n"
      "PLAIN=value\n"
      "export EXPORTED=yes\n"
      "  SPACED = padded value   \n"
      "COMMENTED=abc # trailing comment\n"
      "HASH=a#b\n"
      "SINGLE='lit $HOME \\n # not a comment'\n"
      "DOUBLE=\"line1\\nline2 \\\"q\\\" \\$x\" # comment\n"
      "MULTI=\"first\n"
      "second\"\n"
      "EMPTY=\n"
      "EMPTYQ=\"\"\n"
      "URL=https://127.0.0.1:8443/mcp?a=1&b=2\n"
      "WINDOWS=crlf\r\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto& m = *r;
  EXPECT_EQ(m["PLAIN"], "value");
  EXPECT_EQ(m["EXPORTED"], "yes");
  EXPECT_EQ(m["SPACED"], "padded value");
  EXPECT_EQ(m["COMMENTED"], "abc");
  EXPECT_EQ(m["HASH"], "a#b");
  EXPECT_EQ(m["SINGLE"], "lit $HOME \\n # not a comment");
  EXPECT_EQ(m["DOUBLE"], "line1\nline2 \"q\" $x");
  EXPECT_EQ(m["MULTI"], "first\nsecond");
  EXPECT_EQ(m["EMPTY"], "");
  EXPECT_EQ(m["EMPTYQ"], "");
  EXPECT_EQ(m["URL"], "https://127.0.0.1:8443/mcp?a=1&b=2");
  EXPECT_EQ(m["WINDOWS"], "crlf");
  EXPECT_EQ(m.size(), 12u);
}

TEST(DotEnv, ErrorsNameTheLine) {
  struct Case {
    const char* text;
    const char* needle;
  } cases[] = {
      {"A=1\nnot a pair\n", "line 2"},
      {"A=1\nB=\"open\nC=2\n", "unterminated double quote in the value of B"},
      {"1BAD=x\n", "'1BAD' is not a valid variable name"},
      {"A='x' junk\n", "unexpected text after the closing quote of A"},
      {"=x\n", "not a valid variable name"},
  };
  for (const auto& c : cases) {
    auto r = parse_dotenv(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_NE(r.error().message.find(c.needle), std::string::npos) << r.error().message;
  }
}

TEST(DotEnv, EnvironmentWins) {
  setenv("LARDER_TEST_DOTENV_VAR", "from-env", 1);
  Environment env(std::map<std::string, std::string>{{"LARDER_TEST_DOTENV_VAR", "from-file"},
                                                     {"LARDER_TEST_ONLY_FILE", "file"}});
  EXPECT_EQ(env.get("LARDER_TEST_DOTENV_VAR"), "from-env");
  EXPECT_EQ(env.get("LARDER_TEST_ONLY_FILE"), "file");
  EXPECT_FALSE(env.get("LARDER_TEST_NOT_SET_ANYWHERE"));
  unsetenv("LARDER_TEST_DOTENV_VAR");
  EXPECT_EQ(env.get("LARDER_TEST_DOTENV_VAR"), "from-file");
  auto missing = load_environment("/nonexistent/.env");
  EXPECT_TRUE(missing.ok());
}

Result<McpConfig> parse(const std::string& text, const Environment& env = Environment{}) {
  return parse_mcp_config(text, "mcp.json", "/etc/larder", env);
}

TEST(McpConfig, FullExample) {
  Environment env(std::map<std::string, std::string>{{"TOKEN_HDR", "abc"}});
  auto r = parse(R"({"mcpServers": {
      "larder-db": {"url": "https://127.0.0.1:8443/mcp",
                    "tls": {"ca": "certs/ca.pem", "cert": "/abs/client.pem", "key": "certs/client.key"},
                    "headers": {"X-Trace": "t-${TOKEN_HDR}"}},
      "compliance": {"url": "https://127.0.0.1:8444/sse", "type": "sse",
                     "tls": {"ca": "ca.pem", "cert": "c.pem", "key": "c.key", "server_name": "compliance.local"}},
      "local": {"command": "larder", "args": ["serve", "--stdio"], "env": {"A": "b"}},
      "off": {"url": "http://127.0.0.1:1/mcp", "disabled": true}}})",
                 env);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->servers.size(), 3u);
  const auto& db = r->servers[2].name == "larder-db" ? r->servers[2] : r->servers[1];
  // nlohmann::json orders keys: compliance, larder-db, local
  EXPECT_EQ(r->servers[0].name, "compliance");
  EXPECT_EQ(r->servers[0].transport, McpTransportKind::Sse);
  EXPECT_EQ(r->servers[0].tls->server_name, "compliance.local");
  EXPECT_EQ(r->servers[1].name, "larder-db");
  EXPECT_EQ(r->servers[1].tls->ca, "/etc/larder/certs/ca.pem");
  EXPECT_EQ(r->servers[1].tls->cert, "/abs/client.pem");
  ASSERT_EQ(r->servers[1].headers.size(), 1u);
  EXPECT_EQ(r->servers[1].headers[0].second, "t-abc");
  EXPECT_EQ(r->servers[2].transport, McpTransportKind::Stdio);
  EXPECT_EQ(r->servers[2].args.size(), 2u);
  (void)db;
}

TEST(McpConfig, ErrorsNameTheKey) {
  struct Case {
    const char* text;
    const char* needle;
  } cases[] = {
      {"[]", "top level must be a JSON object"},
      {"{", "not valid JSON"},
      {R"({"servers": {}})", "missing key 'mcpServers'"},
      {R"({"mcpServers": []})", "'mcpServers' must be an object"},
      {R"({"mcpServers": {}})", "names no server"},
      {R"({"mcpServers": {"a": 1}})", "mcpServers.a: must be an object"},
      {R"({"mcpServers": {"a": {}}})", "mcpServers.a: needs exactly one of 'url'"},
      {R"({"mcpServers": {"a": {"url": 3}}})", "mcpServers.a.url: must be a string"},
      {R"({"mcpServers": {"a": {"url": "ftp://x"}}})", "mcpServers.a.url: must start with"},
      {R"({"mcpServers": {"a": {"url": "https://x", "tls": {"ca": 1}}}})",
       "mcpServers.a.tls.ca: must be a non-empty string"},
      {R"({"mcpServers": {"a": {"url": "https://x", "tls": {"cert": "c"}}}})",
       "mcpServers.a.tls: 'cert' and 'key'"},
      {R"({"mcpServers": {"a": {"url": "https://x", "tls": {"pem": "c"}}}})",
       "mcpServers.a.tls.pem: unknown key"},
      {R"({"mcpServers": {"a": {"url": "http://x", "tls": {"ca": "c"}}}})",
       "mcpServers.a.tls: TLS files need an https:// url"},
      {R"({"mcpServers": {"a": {"url": "https://x", "headers": {"X": 1}}}})",
       "mcpServers.a.headers.X: must be a string"},
      {R"({"mcpServers": {"a": {"url": "https://x", "headers": {"X Y": "1"}}}})",
       "mcpServers.a.headers.X Y: is not a valid"},
      {R"({"mcpServers": {"a": {"url": "https://x", "headers": {"X": "${NOPE_LARDER_UNSET}"}}}})",
       "mcpServers.a.headers.X: environment variable NOPE_LARDER_UNSET is not set"},
      {R"({"mcpServers": {"a": {"url": "https://x", "type": "websocket"}}})",
       "mcpServers.a.type: unknown transport"},
      {R"({"mcpServers": {"a": {"url": "https://x", "tsl": {}}}})", "mcpServers.a.tsl: unknown key"},
      {R"({"mcpServers": {"a": {"command": "x", "args": [1]}}})", "mcpServers.a.args[0]: must be a string"},
      {R"({"mcpServers": {"a": {"command": "x", "headers": {}}}})",
       "mcpServers.a.headers: only HTTP servers"},
      {R"({"mcpServers": {"a": {"url": "https://x", "disabled": "no"}}})",
       "mcpServers.a.disabled: must be true or false"},
      {R"({"mcpServers": {"a": {"url": "https://x", "disabled": true}}})",
       "every server in 'mcpServers' is disabled"},
  };
  for (const auto& c : cases) {
    auto r = parse(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_NE(r.error().message.find(c.needle), std::string::npos) << c.text << " → " << r.error().message;
    EXPECT_EQ(r.error().message.rfind("mcp.json", 0), 0u) << r.error().message;
  }
}

TEST(McpConfig, MissingFileIsAnError) {
  auto r = load_mcp_config("/nonexistent/mcp.json", Environment{});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("/nonexistent/mcp.json"), std::string::npos);
}

}  // namespace
}  // namespace larder::agent
