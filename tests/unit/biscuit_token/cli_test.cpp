// `larder biscuit ...` end to end: runs the built binary in a temporary directory.
#include "support/cli_run.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace fs = std::filesystem;

namespace {

using larder::test::CliRun;

class BiscuitCli : public ::testing::Test {
 protected:
  void SetUp() override {
    bin_ = std::string(LARDER_BINARY_DIR) + "/larder";
    if (!fs::exists(bin_)) GTEST_SKIP() << "larder binary not built at " << bin_;
    dir_ = fs::temp_directory_path() / ("larder-biscuit-cli-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  // Arguments are single-quoted for the shell; stderr is discarded unless `merge`.
  CliRun run(const std::vector<std::string>& args, const std::string& stdin_file = "", bool merge = false) {
    std::string cmd = "'" + bin_ + "' biscuit";
    for (const auto& a : args) cmd += " " + larder::test::shell_quote(a);
    if (!stdin_file.empty()) cmd += " < '" + stdin_file + "'";
    return larder::test::run_shell(cmd + (merge ? " 2>&1" : " 2>/dev/null"));
  }
  std::string write(const std::string& name, const std::string& content) {
    auto path = (dir_ / name).string();
    std::ofstream(path) << content;
    return path;
  }
  static std::string line(const std::string& s) { return s.substr(0, s.find('\n')); }
  std::string bin_;
  fs::path dir_;
};

}  // namespace

TEST_F(BiscuitCli, KeypairGenerateAttenuateInspect) {
  for (std::string alg : {"ed25519", "secp256r1"}) {
    auto priv = run({"keypair", "--key-algorithm", alg, "--only-private-key"});
    ASSERT_EQ(priv.status, 0);
    std::string sk = line(priv.out);
    EXPECT_EQ(sk.rfind(alg + "-private/", 0), 0u) << sk;
    auto pub = run({"keypair", "--from-private-key", sk, "--only-public-key"});
    ASSERT_EQ(pub.status, 0);
    std::string pk = line(pub.out);
    EXPECT_EQ(pk.rfind(alg + "/", 0), 0u);

    std::string authority = write("authority.dl", "user({user});\nright({res}, \"read\");\n");
    auto gen = run({"generate", authority, "--private-key", sk, "--param", "user=alice", "--param",
                    "res:string=file1", "--add-ttl", "1h"});
    ASSERT_EQ(gen.status, 0);
    std::string token = write("token.b64", gen.out);

    auto att =
        run({"attenuate", token, "--block", "check if operation({op});", "--param", "op=read::string"});
    ASSERT_EQ(att.status, 0);
    std::string attenuated = write("att.b64", att.out);

    std::string authorizer =
        "resource(\"file1\"); operation(\"read\"); allow if right($r, \"read\"), resource($r);";
    auto ok = run({"inspect", attenuated, "--public-key", pk, "--authorize-with", authorizer,
                   "--include-time", "--json", "--max-time", "10s"});
    ASSERT_EQ(ok.status, 0) << ok.out;
    auto j = nlohmann::json::parse(ok.out);
    EXPECT_EQ(j["blocks"].size(), 2u);
    EXPECT_EQ(j["revocation_ids"].size(), 2u);
    EXPECT_EQ(j["result"], nlohmann::json::parse("{\"Ok\":0}"));
    EXPECT_EQ(j["blocks"][1]["code"], "check if operation(\"read\");\n");
    EXPECT_TRUE(j["world"].contains("facts"));

    // Without time, the TTL check fails: non-zero exit, error tree in `result`.
    auto no_time = run({"inspect", attenuated, "--public-key", pk, "--authorize-with", authorizer, "--json",
                        "--max-time", "10s"});
    EXPECT_EQ(no_time.status, 1);
    auto nj = nlohmann::json::parse(no_time.out);
    EXPECT_TRUE(nj["result"]["Err"]["FailedLogic"].contains("Unauthorized"));

    // Wrong public key: verification fails.
    auto other = line(run({"keypair", "--only-public-key"}).out);
    EXPECT_EQ(run({"inspect", attenuated, "--public-key", other}).status, 1);
    // Text output and stdin.
    auto text = run({"inspect", "-", "--public-key", pk}, attenuated);
    EXPECT_EQ(text.status, 0);
    EXPECT_NE(text.out.find("Authority block:"), std::string::npos);

    // Seal, then attenuation is refused.
    auto sealed = run({"seal", attenuated});
    ASSERT_EQ(sealed.status, 0);
    std::string sealed_file = write("sealed.b64", sealed.out);
    EXPECT_EQ(run({"inspect", sealed_file, "--public-key", pk, "--authorize-with", authorizer,
                   "--include-time", "--max-time", "10s"})
                  .status,
              0);
    EXPECT_NE(run({"attenuate", sealed_file, "--block", "check if true;"}).status, 0);
  }
}

TEST_F(BiscuitCli, ThirdPartyAndRawRoundTrip) {
  std::string sk = line(run({"keypair", "--only-private-key"}).out);
  std::string pk = line(run({"keypair", "--from-private-key", sk, "--only-public-key"}).out);
  std::string tsk = line(run({"keypair", "--key-algorithm", "secp256r1", "--only-private-key"}).out);
  std::string tpk = line(run({"keypair", "--from-private-key", tsk, "--only-public-key"}).out);
  std::string authority = write("a.dl", "right(\"read\");\ncheck if group(\"admin\") trusting {issuer};\n");
  auto gen =
      run({"generate", authority, "--private-key", sk, "--param", "issuer=" + tpk + "::pubkey", "--raw"});
  ASSERT_EQ(gen.status, 0);
  std::string raw = write("t.bin", gen.out);
  auto b64 = run({"attenuate", raw, "--raw-input", "--block", "check if true;"});
  ASSERT_EQ(b64.status, 0);
  std::string token = write("t.b64", b64.out);
  auto req = run({"generate-request", token});
  ASSERT_EQ(req.status, 0);
  std::string req_file = write("req", req.out);
  std::string tsk_file = write("tsk", tsk + "\n");
  auto block = run({"generate-third-party-block", req_file, "--private-key-file", tsk_file, "--block",
                    "group(\"admin\");"});
  ASSERT_EQ(block.status, 0);
  auto appended = run({"append-third-party-block", token, "--block-contents", line(block.out)});
  ASSERT_EQ(appended.status, 0);
  std::string full = write("full.b64", appended.out);
  auto ok = run({"inspect", full, "--public-key", pk, "--authorize-with", "allow if true;", "--json",
                 "--max-time", "10s"});
  ASSERT_EQ(ok.status, 0) << ok.out;
  auto j = nlohmann::json::parse(ok.out);
  EXPECT_EQ(j["blocks"][2]["external_key"], tpk);
  EXPECT_EQ(j["blocks"][2]["version"], 5);
  EXPECT_EQ(
      run({"inspect", token, "--public-key", pk, "--authorize-with", "allow if true;", "--max-time", "10s"})
          .status,
      1);
}

// Exit statuses: the `larder` table (README.md): 2 usage, 3 file not found, 4 not a valid
// token or key.
TEST_F(BiscuitCli, BadInputsFailCleanly) {
  std::string garbage = write("garbage", "this is not a token");
  EXPECT_EQ(run({"inspect", garbage}).status, 4);
  EXPECT_EQ(run({"inspect", (dir_ / "absent.b64").string()}).status, 3);
  EXPECT_EQ(run({"generate", garbage, "--private-key", "ed25519-private/00"}).status, 4);
  std::string sk = line(run({"keypair", "--only-private-key"}).out);
  std::string bad_code = write("bad.dl", "user(");
  auto r = run({"generate", bad_code, "--private-key", sk}, "", true);
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.out.find("larder biscuit:"), std::string::npos);
  std::string unbound = write("unbound.dl", "user({who});");
  EXPECT_EQ(run({"generate", unbound, "--private-key", sk}).status, 2);
  EXPECT_EQ(run({"generate", unbound, "--private-key", sk, "--param", "who=1::nonsense"}).status, 2);
  EXPECT_NE(run({"keypair", "--key-algorithm", "rsa"}).status, 0);
}

// With a key, inspect checks the signatures before it decodes a block: the official samples
// whose signatures fail are reported as such (exit 1), test004's random block included —
// not as a block that does not decode, which is what parsing the unauthenticated bytes first
// would say.
TEST_F(BiscuitCli, InspectChecksSignaturesBeforeDecodingBlocks) {
  const std::string key = "ed25519/1055c750b1a1505937af1537c626ba3263995c33a64758aaafb1275b0312e284";
  const std::string dir = LARDER_BISCUIT_SAMPLES_DIR;
  for (const char* name : {"test002_different_root_key.bc", "test004_random_block.bc",
                           "test005_invalid_signature.bc", "test006_reordered_blocks.bc"}) {
    auto r = run({"inspect", "--raw-input", "--public-key", key, dir + "/" + name}, "", true);
    EXPECT_EQ(r.status, 1) << name << ": " << r.out;
    EXPECT_NE(r.out.find("signature error"), std::string::npos) << name << ": " << r.out;
    EXPECT_EQ(r.out.find("deserialization"), std::string::npos) << name << ": " << r.out;
  }
  // Without a key there is nothing to check first: the random block does not decode.
  auto unkeyed = run({"inspect", "--raw-input", dir + "/test004_random_block.bc"}, "", true);
  EXPECT_EQ(unkeyed.status, 4) << unkeyed.out;
  EXPECT_NE(unkeyed.out.find("deserialization"), std::string::npos) << unkeyed.out;
}
