#include "gate/config.h"
#include "gate/gate.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace larder::gate {
namespace {

namespace fs = std::filesystem;

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("larder-config-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    for (const char* f : {"server.pem", "server.key", "ca.pem", "crl.pem", "policy.datalog"}) {
      std::ofstream(dir_ / f) << "x";
    }
  }
  void TearDown() override { fs::remove_all(dir_); }

  Result<ServeConfig> parse(const std::string& extra, bool with_tls = true) {
    std::string text = R"([biscuit]
root_keys = [{ id = 1, public_key = "ed25519/1055c750b1a1505937af1537c626ba3263995c33a64758aaafb1275b0312e284" }]
)";
    if (with_tls) text += "[tls]\ncert = \"server.pem\"\nkey = \"server.key\"\nclient_ca = \"ca.pem\"\n";
    return parse_serve_config(text + extra, dir_.string(), "larder.toml");
  }
  fs::path dir_;
};

TEST_F(ConfigTest, MinimalConfigHasSafeDefaults) {
  auto c = parse("");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->host, "127.0.0.1");
  EXPECT_EQ(c->audience, "larder-db");
  EXPECT_FALSE(c->plain_http);
  EXPECT_TRUE(c->sql_guard);
  EXPECT_TRUE(c->taint_enabled);
  EXPECT_EQ(c->tls_cert, (dir_ / "server.pem").string());  // relative to the config file
  ASSERT_EQ(c->root_keys.size(), 1u);
  EXPECT_EQ(*c->root_keys[0].id, 1u);
  EXPECT_EQ(c->data_flow("never-configured"), DataFlow::kEgress);  // fail closed
  EXPECT_EQ(c->context_lease.count(), 30000);
}

TEST_F(ConfigTest, FullConfig) {
  auto c = parse(R"(
[server]
host = "127.0.0.1"
port = 9443
audience = "larder-compliance"
[tools]
enabled = ["hipaa_compliance_check"]
classes = { hipaa_compliance_check = "egress", pg_query = "sensitive-read", pg_explain = "neutral" }
[rls]
patient_name = "patient"
[database]
context_lease_ms = 0
[taint]
[audit]
path = "audit/log.jsonl"
fsync = true
[limits]
max_body_bytes = 65536
[compliance]
api_url = "http://127.0.0.1:9999/check"
)");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->port, 9443);
  EXPECT_EQ(c->audience, "larder-compliance");
  EXPECT_EQ(c->data_flow("pg_query"), DataFlow::kSensitiveRead);
  EXPECT_EQ(c->data_flow("hipaa_compliance_check"), DataFlow::kEgress);
  EXPECT_EQ(c->data_flow("pg_explain"), DataFlow::kNeutral);
  EXPECT_EQ(c->rls_patient_name, "patient");
  EXPECT_EQ(c->context_lease.count(), 0);
  EXPECT_TRUE(c->audit_fsync);
  EXPECT_EQ(c->max_body_bytes, 65536u);
  EXPECT_EQ(c->compliance_api_url, "http://127.0.0.1:9999/check");
}

struct BadCase {
  std::string toml;
  std::string key;
  bool with_tls = true;
};

TEST_F(ConfigTest, ErrorsNameTheKey) {
  const std::vector<BadCase> cases = {
      {"[server]\nprot = 1\n", "server.prot"},
      // A taint entry that outlived no token could be the taint bypass of finding 2: gone.
      {"[taint]\ndefault_ttl_s = 3600\n", "taint.default_ttl_s"},
      {"[server]\nport = 70000\n", "server.port"},
      {"[server]\nport = \"8443\"\n", "server.port"},
      {"[server]\nhost = \"0.0.0.0\"\nplain_http = true\n", "server.plain_http"},
      {"[server]\naudience = \"\"\n", "server.audience"},
      {"[tls]\ncert = \"missing.pem\"\nkey = \"server.key\"\nclient_ca = \"ca.pem\"\n", "tls.cert", false},
      {"[tls]\ncert = \"server.pem\"\nkey = \"server.key\"\n", "tls.client_ca", false},
      {"[tls]\ncert = \"server.pem\"\nkey = \"server.key\"\nclient_ca = \"ca.pem\"\nallowed_clients = [\"bob\"]\n",
       "tls.allowed_clients[0]", false},
      {"[tools]\nclasses = { pg_query = \"secret\" }\n", "tools.classes.pg_query"},
      {"[database]\nmode = \"cloud\"\n", "database.mode"},
      {"[database]\nmode = \"url\"\n", "database.url"},
      {"[database]\ncontext_lease_ms = -1\n", "database.context_lease_ms"},
      {"[audit]\npath = \"\"\n", "audit.path"},
      {"[biscuit]\npolicy_file = \"nope.datalog\"\n", "biscuit"},  // duplicate table is a syntax error
      {"[compliance]\napi_url = \"ftp://x\"\n", "compliance.api_url"},
      {"[limits]\nworker_threads = 0\n", "limits.worker_threads"},
      {"[mystery]\nx = 1\n", "mystery"},
      {"[rls]\npatient_name = \"x) <- y(\"\n", "rls.patient_name"},
  };
  for (const auto& bad : cases) {
    auto c = parse(bad.toml, bad.with_tls);
    ASSERT_FALSE(c.ok()) << bad.toml;
    EXPECT_NE(c.error().message.find(bad.key), std::string::npos) << c.error().message;
  }
}

TEST_F(ConfigTest, BiscuitMemoryBudget) {
  auto defaults = parse("");
  ASSERT_TRUE(defaults.ok()) << defaults.error().message;
  EXPECT_EQ(defaults->max_memory_bytes, std::size_t{8} << 20);
  EXPECT_EQ(gate_options_from(*defaults, "").limits.max_memory_bytes, std::size_t{8} << 20);
  const std::string keys =
      "root_keys = [{ id = 1, public_key = "
      "\"ed25519/1055c750b1a1505937af1537c626ba3263995c33a64758aaafb1275b0312e284\" }]\n";
  auto set = parse_serve_config(
      "[server]\nplain_http = true\n[biscuit]\n" + keys + "max_memory_bytes = 1048576\n", dir_.string());
  ASSERT_TRUE(set.ok()) << set.error().message;
  EXPECT_EQ(set->max_memory_bytes, std::size_t{1} << 20);
  EXPECT_EQ(gate_options_from(*set, "").limits.max_memory_bytes, std::size_t{1} << 20);
  for (const char* bad :
       {"max_memory_bytes = 100\n", "max_memory_bytes = \"8MB\"\n", "max_memory_bytes = -1\n"}) {
    auto c = parse_serve_config("[server]\nplain_http = true\n[biscuit]\n" + keys + bad, dir_.string());
    ASSERT_FALSE(c.ok()) << bad;
    EXPECT_NE(c.error().message.find("biscuit.max_memory_bytes"), std::string::npos) << c.error().message;
  }
}

TEST_F(ConfigTest, RootKeysAreRequiredAndUnique) {
  auto none = parse_serve_config("[server]\nplain_http = true\n", dir_.string());
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("biscuit.root_keys"), std::string::npos);
  auto dup = parse_serve_config(R"([server]
plain_http = true
[biscuit]
root_keys = [{ id = 1, public_key = "ed25519/aa" }, { id = 1, public_key = "ed25519/bb" }]
)", dir_.string());
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.error().message.find("biscuit.root_keys[1].id"), std::string::npos) << dup.error().message;
}

TEST_F(ConfigTest, SyntaxErrorsCarryThePosition) {
  auto c = parse_serve_config("[server\nport = 1\n", dir_.string(), "larder.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, "config.syntax");
  EXPECT_NE(c.error().message.find("larder.toml:1:"), std::string::npos) << c.error().message;
}

TEST_F(ConfigTest, MissingFile) {
  auto c = load_serve_config((dir_ / "absent.toml").string());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("absent.toml"), std::string::npos);
}

}  // namespace
}  // namespace larder::gate
