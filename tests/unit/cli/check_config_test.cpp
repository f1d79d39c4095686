// `larder serve --check-config`, end to end: the built binary checks a configuration made by
// `larder init` (real certificates and root key) and every file it names, says
// "configuration OK" or the first problem in the user's words, and starts nothing. The
// database URLs name a host that does not resolve: an attempt to connect would fail.
#include "base/exit_status.h"
#include "support/cli_run.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace {

using larder::test::CliRun;  // out: stdout and stderr together

class CheckConfig : public ::testing::Test {
 protected:
  void SetUp() override {
    bin_ = std::string(LARDER_BINARY_DIR) + "/larder";
    if (!fs::exists(bin_)) GTEST_SKIP() << "larder binary not built at " << bin_;
    dir_ = fs::temp_directory_path() / ("larder-check-config-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    ASSERT_EQ(run({"init", "--port", "0"}).status, 0);
    std::ifstream in(dir_ / "larder.toml");
    std::stringstream text;
    text << in.rdbuf();
    init_toml_ = text.str();
    // A server of an existing PostgreSQL (mode = "url") instead of `larder db init`'s cluster.
    url_toml_ = replace(init_toml_, "mode = \"embedded\"",
                        "mode = \"url\"\n"
                        "url = \"postgresql://larder_query@db.invalid/app\"\n"
                        "writer_url = \"postgresql://larder_context_writer@db.invalid/app\"\n"
                        "ledger_url = \"postgresql://larder_gate@db.invalid/app\"");
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  CliRun run(const std::vector<std::string>& args) {
    std::string cmd = "cd '" + dir_.string() + "' && '" + bin_ + "'";
    for (const auto& a : args) cmd += " " + larder::test::shell_quote(a);
    return larder::test::run_shell(cmd + " 2>&1 </dev/null");
  }
  // `larder serve --check-config` on `toml`, written beside init's files.
  CliRun check(const std::string& toml) {
    std::ofstream(dir_ / "check.toml") << toml;
    return run({"serve", "--check-config", "--config", "check.toml"});
  }
  static std::string replace(std::string text, const std::string& from, const std::string& to) {
    auto at = text.find(from);
    EXPECT_NE(at, std::string::npos) << "no \"" << from << "\" in\n" << text;
    if (at != std::string::npos) text.replace(at, from.size(), to);
    return text;
  }
  static bool has(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }
  std::string bin_;
  fs::path dir_;
  std::string init_toml_, url_toml_;
};

TEST_F(CheckConfig, AGoodConfigurationIsOkAndNothingStarts) {
  auto r = check(url_toml_);
  EXPECT_EQ(r.status, larder::exit_status::kOk) << r.out;
  EXPECT_TRUE(has(r.out, "check.toml: configuration OK")) << r.out;
  EXPECT_TRUE(has(r.out, "the database was not contacted")) << r.out;
  // No audit log opened, no pid or log file written.
  EXPECT_FALSE(fs::exists(dir_ / ".larder" / "audit.jsonl"));
  EXPECT_FALSE(fs::exists(dir_ / ".larder" / "larder-db.pid"));
}

TEST_F(CheckConfig, ItIsTheFlagOfServeAndListedInItsHelp) {
  auto r = run({"serve", "--help"});
  EXPECT_EQ(r.status, 0);
  EXPECT_TRUE(has(r.out, "--check-config")) << r.out;
}

TEST_F(CheckConfig, AMissingConfigurationFileIsNotFound) {
  auto r = run({"serve", "--check-config", "--config", "nowhere.toml"});
  EXPECT_EQ(r.status, larder::exit_status::kNotFound) << r.out;
  EXPECT_TRUE(has(r.out, "config file nowhere.toml: not found")) << r.out;
  EXPECT_FALSE(has(r.out, "configuration OK")) << r.out;
}

TEST_F(CheckConfig, AnEmbeddedClusterThatWasNeverCreatedIsNamedWithTheFix) {
  auto r = check(init_toml_);
  EXPECT_EQ(r.status, larder::exit_status::kUsage) << r.out;
  EXPECT_TRUE(has(r.out, "database.dir: no embedded cluster state")) << r.out;
  EXPECT_TRUE(has(r.out, "run `larder db init` first")) << r.out;
}

TEST_F(CheckConfig, AMissingCertificateIsNamedByItsKey) {
  auto r = check(replace(url_toml_, ".larder/certs/server/larder-db.crt", ".larder/certs/server/gone.crt"));
  EXPECT_EQ(r.status, larder::exit_status::kUsage) << r.out;
  EXPECT_TRUE(has(r.out, "larder serve: tls.cert: file not found:")) << r.out;
  EXPECT_TRUE(has(r.out, "gone.crt")) << r.out;
}

// What loading the configuration alone does not see: the key exists but is another one.
TEST_F(CheckConfig, AKeyThatIsNotTheCertificatesIsRefusedWithoutOpenSslChain) {
  auto r = check(
      replace(url_toml_, ".larder/certs/server/larder-db.key", ".larder/certs/client/claude-client.key"));
  EXPECT_EQ(r.status, larder::exit_status::kInvalid) << r.out;
  EXPECT_TRUE(has(r.out, "does not belong to the certificate")) << r.out;
  EXPECT_FALSE(has(r.out, "routines")) << r.out;
}

TEST_F(CheckConfig, ARootKeyThatIsNotAKeyIsNamed) {
  auto r = check(replace(url_toml_, "ed25519/", "ed25519/zz"));
  EXPECT_EQ(r.status, larder::exit_status::kUsage) << r.out;
  EXPECT_TRUE(has(r.out, "root key ed25519/zz")) << r.out;
}

TEST_F(CheckConfig, ABiscuitPolicyThatDoesNotParseIsRefused) {
  std::ofstream(dir_ / "broken.datalog") << "allow if right(\n";
  auto r = check(replace(url_toml_, "[biscuit]\n", "[biscuit]\npolicy_file = \"broken.datalog\"\n"));
  EXPECT_EQ(r.status, larder::exit_status::kUsage) << r.out;
  // Named by its key and file (as start() and a reload name it).
  EXPECT_TRUE(has(r.out, "larder serve: biscuit.policy_file ")) << r.out;
  EXPECT_TRUE(has(r.out, "broken.datalog: line 2")) << r.out;
}

TEST_F(CheckConfig, ADatabaseUrlThatIsNotOneIsNamed) {
  auto r =
      check(replace(url_toml_, "url = \"postgresql://larder_query@db.invalid/app\"", "url = \"db.invalid\""));
  EXPECT_NE(r.status, larder::exit_status::kOk) << r.out;
  EXPECT_TRUE(has(r.out, "database.url:")) << r.out;
}

}  // namespace
