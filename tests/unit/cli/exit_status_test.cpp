// `larder`'s exit statuses and failure messages (README.md, "Exit statuses"), end to end:
// runs the built binary in a temporary directory, as biscuit_cli_test does.
#include "base/exit_status.h"
#include "support/cli_run.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;

namespace {

using larder::test::CliRun;  // out: stdout and stderr together

class LarderCli : public ::testing::Test {
 protected:
  void SetUp() override {
    bin_ = std::string(LARDER_BINARY_DIR) + "/larder";
    if (!fs::exists(bin_)) GTEST_SKIP() << "larder binary not built at " << bin_;
    dir_ = fs::temp_directory_path() / ("larder-cli-exit-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  // Runs `larder <args>` in the temporary directory; `env` is prepended (NAME=value ...).
  CliRun run(const std::vector<std::string>& args, const std::string& env = "") {
    std::string cmd = "cd '" + dir_.string() + "' && " + env + " '" + bin_ + "'";
    for (const auto& a : args) cmd += " " + larder::test::shell_quote(a);
    return larder::test::run_shell(cmd + " 2>&1 </dev/null");
  }
  std::string write(const std::string& name, const std::string& content) {
    auto path = (dir_ / name).string();
    std::ofstream(path) << content;
    return path;
  }
  static std::string line(const std::string& s) { return s.substr(0, s.find('\n')); }
  // No OpenSSL error chain ("error:0A000…:SSL routines::…") at the top level.
  static bool has_openssl_chain(const std::string& s) {
    return s.find("routines") != std::string::npos || s.find("error:0") != std::string::npos;
  }
  std::string bin_;
  fs::path dir_;
};

TEST_F(LarderCli, HelpDocumentsTheExitStatuses) {
  auto r = run({"--help"});
  EXPECT_EQ(r.status, larder::exit_status::kOk);
  EXPECT_NE(r.out.find("Exit statuses:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("3  file not found or unreadable"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--verbose"), std::string::npos) << r.out;
  EXPECT_EQ(run({"--no-such-flag"}).status, larder::exit_status::kUsage);
  EXPECT_EQ(run({"audit", "verify", "--no-such-flag"}).status, larder::exit_status::kUsage);
}

TEST_F(LarderCli, AuditVerifyOfAMissingLogSaysNotFoundNeverTampered) {
  auto r = run({"audit", "verify", (dir_ / "missing.jsonl").string()});
  EXPECT_EQ(r.status, larder::exit_status::kNotFound) << r.out;
  EXPECT_NE(r.out.find("not found"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("TAMPERED"), std::string::npos) << r.out;
  // The default path, absent in a fresh directory: the same.
  auto d = run({"audit", "verify"});
  EXPECT_EQ(d.status, larder::exit_status::kNotFound) << d.out;
  EXPECT_EQ(d.out.find("TAMPERED"), std::string::npos) << d.out;
  // A missing --config is a missing file too.
  auto c = run({"audit", "verify", "--config", (dir_ / "missing.toml").string()});
  EXPECT_EQ(c.status, larder::exit_status::kNotFound) << c.out;
  EXPECT_NE(c.out.find("not found"), std::string::npos) << c.out;
  // A log that is there and broken is tampered (status 1).
  auto t = run({"audit", "verify", write("broken.jsonl", "{\"seq\":7}\n")});
  EXPECT_EQ(t.status, larder::exit_status::kRefused) << t.out;
  EXPECT_NE(t.out.find("TAMPERED"), std::string::npos) << t.out;
}

TEST_F(LarderCli, AMissingKeyFileInMcpJsonIsFileNotFoundWithoutOpenSslChain) {
  ASSERT_EQ(run({"certs", "--dir", "pki", "init"}).status, 0);
  auto issued = run({"certs", "--dir", "pki", "issue", "client", "--name", "agent"});
  ASSERT_EQ(issued.status, 0) << issued.out;
  const std::string ca = (dir_ / "pki" / "ca.crt").string();
  const std::string cert = (dir_ / "pki" / "client" / "agent.crt").string();
  ASSERT_TRUE(fs::exists(ca) && fs::exists(cert)) << issued.out;
  const std::string missing_key = (dir_ / "pki" / "client" / "gone.key").string();
  write("mcp.json", R"({"mcpServers":{"larder-db":{"url":"https://127.0.0.1:9/mcp","tls":{"ca":")" + ca +
                        R"(","cert":")" + cert + R"(","key":")" + missing_key + R"("}}}})");
  // A provider that never answers is never reached: the MCP server's files fail first.
  const std::string env = "ANTHROPIC_API_KEY=test-key LARDER_BASE_URL=http://127.0.0.1:9";
  auto r = run({"ask", "how many patients?", "--config", "mcp.json", "--token", "t"}, env);
  EXPECT_EQ(r.status, larder::exit_status::kNotFound) << r.out;
  EXPECT_NE(r.out.find(missing_key), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("not found"), std::string::npos) << r.out;
  EXPECT_FALSE(has_openssl_chain(r.out)) << r.out;

  // A key file that is there but is not a key: invalid (4); OpenSSL's words only with --verbose.
  const std::string bogus_key = write("bogus.key", "not a key\n");
  write("mcp.json", R"({"mcpServers":{"larder-db":{"url":"https://127.0.0.1:9/mcp","tls":{"ca":")" + ca +
                        R"(","cert":")" + cert + R"(","key":")" + bogus_key + R"("}}}})");
  auto bad = run({"ask", "how many patients?", "--config", "mcp.json", "--token", "t"}, env);
  EXPECT_EQ(bad.status, larder::exit_status::kInvalid) << bad.out;
  EXPECT_NE(bad.out.find("is not a valid PEM private key"), std::string::npos) << bad.out;
  EXPECT_FALSE(has_openssl_chain(bad.out)) << bad.out;
  auto verbose = run({"ask", "how many patients?", "--config", "mcp.json", "--token", "t", "--verbose"}, env);
  EXPECT_EQ(verbose.status, larder::exit_status::kInvalid) << verbose.out;
  EXPECT_NE(verbose.out.find("detail:"), std::string::npos) << verbose.out;
}

TEST_F(LarderCli, AnInvalidCertificateIsInvalidInputWithoutOpenSslChain) {
  auto sk = run({"biscuit", "keypair", "--only-private-key"});
  ASSERT_EQ(sk.status, 0) << sk.out;
  auto pk = run({"biscuit", "keypair", "--from-private-key", line(sk.out), "--only-public-key"});
  ASSERT_EQ(pk.status, 0) << pk.out;
  auto token = run({"biscuit", "generate", write("authority.dl", "right(\"pg_query\");\n"), "--private-key",
                    line(sk.out)});
  ASSERT_EQ(token.status, 0) << token.out;
  const std::string token_file = write("token.b64", token.out);
  const std::string notes = write("notes.txt", "this is not a certificate\n");
  const std::vector<std::string> attest = {"biscuit", "attest",       token_file,  "--cert",
                                           notes,     "--public-key", line(pk.out)};
  auto r = run(attest);
  EXPECT_EQ(r.status, larder::exit_status::kInvalid) << r.out;
  EXPECT_NE(r.out.find("certificate " + notes + " is not a valid certificate"), std::string::npos) << r.out;
  EXPECT_FALSE(has_openssl_chain(r.out)) << r.out;
  std::vector<std::string> verbose = {"--verbose"};
  verbose.insert(verbose.end(), attest.begin(), attest.end());
  auto v = run(verbose);
  EXPECT_EQ(v.status, larder::exit_status::kInvalid) << v.out;
  EXPECT_NE(v.out.find("detail:"), std::string::npos) << v.out;
  // A certificate file that is not there: not found.
  auto gone = run({"biscuit", "attest", token_file, "--cert", (dir_ / "gone.pem").string(), "--public-key",
                   line(pk.out)});
  EXPECT_EQ(gone.status, larder::exit_status::kNotFound) << gone.out;
  EXPECT_NE(gone.out.find("not found"), std::string::npos) << gone.out;
  // A token from another root key: refused (1), in words, not "Verification equation".
  auto other_sk = run({"biscuit", "keypair", "--only-private-key"});
  auto other_pk = run({"biscuit", "keypair", "--from-private-key", line(other_sk.out), "--only-public-key"});
  auto wrong = run({"biscuit", "attest", token_file, "--cert", notes, "--public-key", line(other_pk.out)});
  EXPECT_EQ(wrong.status, larder::exit_status::kRefused) << wrong.out;
  EXPECT_NE(wrong.out.find("unknown or retired root key"), std::string::npos) << wrong.out;
  EXPECT_EQ(wrong.out.find("Verification equation"), std::string::npos) << wrong.out;
}

}  // namespace
