// Conformance against the Biscuit specification's samples (eclipse-biscuit/biscuit,
// samples/current): for every validation, verify the token with the samples' root key,
// compare revocation ids and every block (printed code, symbols, public keys, external key,
// version), run the authorizer code and compare `result` and `world` in the samples' JSON
// shape. Every error compares exactly: the whole expected `Err` value (variant and payload)
// against ours.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "biscuit/biscuit.h"

using nlohmann::json;

namespace {

std::string samples_dir() {
  return std::string(LARDER_BISCUIT_SAMPLES_DIR) + "/";
}

biscuit::Bytes read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return biscuit::Bytes(std::istreambuf_iterator<char>(in), {});
}

// The host function test035 needs: one argument -> itself; two equal strings ->
// "equal strings"; two different strings -> "different strings"; anything else is an error.
biscuit::datalog::Expected<biscuit::datalog::ast::Term, std::string> extern_test(
    const biscuit::datalog::ast::Term& left, const std::optional<biscuit::datalog::ast::Term>& right) {
  using biscuit::datalog::ast::Term;
  using biscuit::datalog::ast::TermKind;
  if (!right) return left;
  if (left.is(TermKind::String) && right->is(TermKind::String)) {
    return Term::string(left.as_string() == right->as_string() ? "equal strings" : "different strings");
  }
  return std::string("unsupported argument types");
}

struct Outcome {
  bool ok = true;
  std::vector<std::string> problems;
  void fail(std::string what) {
    ok = false;
    problems.push_back(std::move(what));
  }
};

Outcome run_validation(const json& testcase, const std::string& name, const json& v,
                       const biscuit::PublicKey& root) {
  Outcome out;
  std::string file = testcase["filename"];
  biscuit::Bytes bytes = read_file(samples_dir() + file);
  const json& expected = v["result"];
  auto token = biscuit::Biscuit::from_bytes(bytes, root);
  if (!token) {
    json got = json::parse(token.error().to_json());
    if (!expected.contains("Err")) {
      out.fail("token refused: " + token.error().to_string());
    } else if (got != expected["Err"]) {
      out.fail("error " + got.dump() + "\n   expected " + expected["Err"].dump() + " (" +
               token.error().message + ")");
    }
    return out;
  }
  // Revocation ids.
  std::vector<std::string> ids;
  for (const auto& id : token->revocation_ids()) ids.push_back(biscuit::hex_encode(id));
  if (v.contains("revocation_ids") && json(ids) != v["revocation_ids"]) out.fail("revocation ids differ");
  // Blocks.
  const json& blocks = testcase["token"];
  if (blocks.size() != token->block_count()) {
    out.fail("block count " + std::to_string(token->block_count()) + " != " + std::to_string(blocks.size()));
  } else {
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      const json& b = blocks[i];
      std::string code = token->block_source(i);
      if (code != b["code"].get<std::string>())
        out.fail("block " + std::to_string(i) + " code:\n" + code + "expected:\n" +
                 b["code"].get<std::string>());
      if (json(token->block(i).symbols) != b["symbols"])
        out.fail("block " + std::to_string(i) + " symbols differ");
      std::vector<std::string> keys;
      for (const auto& k : token->block(i).public_keys) keys.push_back(k.print());
      if (json(keys) != b["public_keys"]) out.fail("block " + std::to_string(i) + " public keys differ");
      auto ext = token->block_external_key(i);
      json ext_json = ext ? json(ext->to_string()) : json(nullptr);
      if (ext_json != b["external_key"]) out.fail("block " + std::to_string(i) + " external key differs");
      if (token->block(i).version != b["version"].get<uint32_t>()) {
        out.fail("block " + std::to_string(i) + " version " + std::to_string(token->block(i).version));
      }
    }
  }
  // Authorization.
  biscuit::AuthorizerBuilder builder;
  if (auto r = builder.add_code(v["authorizer_code"].get<std::string>()); !r) {
    out.fail("authorizer code does not parse: " + r.error().to_string());
    return out;
  }
  builder.register_extern("test", extern_test);
  // The reference's 1 ms default would make results depend on machine load (sanitizers,
  // shared CI): no sample exercises the time limit.
  biscuit::RunLimits limits;
  limits.max_time = std::chrono::seconds(10);
  builder.set_limits(limits);
  json got;
  auto authorizer = builder.build(*token);
  if (!authorizer) {
    got = json{{"Err", json::parse(authorizer.error().to_json())}};
  } else {
    auto result = authorizer->authorize();
    got = result ? json{{"Ok", *result}} : json{{"Err", json::parse(result.error().to_json())}};
  }
  if (got != expected) {
    out.fail("result " + got.dump() + "\n   expected " + expected.dump());
  }
  if (!v["world"].is_null()) {
    if (!authorizer) {
      out.fail("no world: the authorizer was not built");
    } else {
      json world = json::parse(biscuit::world_dump_json(authorizer->dump()));
      if (world != v["world"]) out.fail("world " + world.dump(1) + "\n   expected " + v["world"].dump(1));
    }
  }
  (void)name;
  return out;
}

}  // namespace

TEST(BiscuitSamples, AllValidations) {
  std::ifstream in(samples_dir() + "samples.json");
  ASSERT_TRUE(in.good()) << "samples.json not found in " << samples_dir();
  json samples = json::parse(in);
  auto root = biscuit::PublicKey::from_string(samples["root_public_key"].get<std::string>());
  ASSERT_TRUE(root.ok());
  int total = 0, passed = 0;
  for (const auto& testcase : samples["testcases"]) {
    for (const auto& [name, v] : testcase["validations"].items()) {
      ++total;
      Outcome o = run_validation(testcase, name, v, *root);
      if (o.ok) {
        ++passed;
      } else {
        std::string all;
        for (const auto& p : o.problems) all += "\n  - " + p;
        ADD_FAILURE() << testcase["filename"].get<std::string>() << " [" << name << "]" << all;
      }
    }
  }
  std::printf("biscuit samples: %d/%d validations passed\n", passed, total);
  EXPECT_EQ(total, 50);
  EXPECT_EQ(passed, total);
}
