// Every block of every official sample: parse its printed `code` against the right symbol
// table, check the new symbols / public keys / version, print it back identically. Then a
// minimal authorizer built only from the Datalog layer (the real one lives in the token
// half of libbiscuit) evaluates every validation and must reproduce the sample's `world`
// dump and `result` (for results that come from Datalog: Ok, FailedLogic, Execution).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "biscuit/datalog/convert.h"
#include "biscuit/datalog/parser.h"
#include "biscuit/datalog/printer.h"
#include "biscuit/datalog/world.h"

namespace biscuit::datalog {
namespace {

using nlohmann::json;

json load_samples() {
  std::ifstream in(std::string(LARDER_BISCUIT_SAMPLES_DIR) + "/samples.json");
  EXPECT_TRUE(in.good()) << "samples.json not found under " << LARDER_BISCUIT_SAMPLES_DIR;
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str());
}

const json& samples() {
  static const json j = load_samples();
  return j;
}

ParseOptions lenient() {
  ParseOptions o;
  o.validate_rule_variables = false;  // test018 carries a rule the reference parser refuses
  return o;
}

struct LoadedBlock {
  Block block;
  SymbolTable table;  // the table the block is interned against (incl. its own symbols)
  std::optional<PublicKey> external_key;
};

// Parses and builds the token's blocks like a token reader would after verification.
std::vector<LoadedBlock> load_token(const json& tc, std::vector<std::string>* failures) {
  std::vector<LoadedBlock> out;
  SymbolTable token;
  const auto& blocks = tc["token"];
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    const json& b = blocks[i];
    const std::string where = tc["filename"].get<std::string>() + " block " + std::to_string(i);
    const bool third_party = !b["external_key"].is_null();
    SymbolTable base = third_party ? SymbolTable() : token;
    auto src = parse_block_source(b["code"].get<std::string>(), lenient());
    if (!src) {
      failures->push_back(where + ": parse error: " + src.error().to_string());
      return {};
    }
    auto block = build_block(*src, base);
    if (!block) {
      failures->push_back(where + ": build error: " + block.error().to_string());
      return {};
    }
    if (block->symbols != b["symbols"].get<std::vector<std::string>>()) {
      failures->push_back(where + ": symbols differ: " + json(block->symbols).dump() + " vs " +
                          b["symbols"].dump());
    }
    std::vector<std::string> keys;
    for (const auto& k : block->public_keys) keys.push_back(k.print());
    if (keys != b["public_keys"].get<std::vector<std::string>>()) {
      failures->push_back(where + ": public keys differ: " + json(keys).dump());
    }
    uint32_t version = block->version;
    if (third_party) version = std::max<uint32_t>(version, 5);
    if (version != b["version"].get<uint32_t>()) {
      failures->push_back(where + ": version " + std::to_string(version) + " expected " +
                          b["version"].dump());
    }
    auto st = check_version(*block, b["version"].get<uint32_t>());
    if (!st) failures->push_back(where + ": check_version: " + st.error().message);
    SymbolTable full = base;
    EXPECT_TRUE(full.extend(block->symbols)) << where;
    EXPECT_TRUE(full.extend_keys(block->public_keys)) << where;
    const std::string printed = print_block_code(*block, full);
    if (printed != b["code"].get<std::string>()) {
      failures->push_back(where + ": printed code differs:\n" + printed + "---- expected:\n" +
                          b["code"].get<std::string>());
    }
    LoadedBlock lb{*block, full, std::nullopt};
    if (third_party) {
      auto key = parse_public_key(b["external_key"].get<std::string>());
      EXPECT_TRUE(key.ok()) << where;
      if (key) lb.external_key = *key;
    } else {
      token = full;
    }
    out.push_back(std::move(lb));
  }
  return out;
}

TEST(BiscuitSamples, EveryBlockParsesAndPrintsBackIdentically) {
  const json& j = samples();
  ASSERT_EQ(j["testcases"].size(), 38u);
  std::vector<std::string> failures;
  std::size_t blocks = 0;
  for (const auto& tc : j["testcases"]) {
    blocks += load_token(tc, &failures).size();
  }
  EXPECT_GE(blocks, 60u);
  for (const auto& f : failures) ADD_FAILURE() << f;
}

TEST(BiscuitSamples, AuthorizerCodeParsesAndPrintsBackIdentically) {
  std::size_t n = 0;
  for (const auto& tc : samples()["testcases"]) {
    for (const auto& [name, v] : tc["validations"].items()) {
      const std::string code = v["authorizer_code"].get<std::string>();
      if (code.empty()) continue;
      auto src = parse_authorizer_source(code);
      ASSERT_TRUE(src.ok()) << tc["filename"] << " " << name << ": " << src.error().to_string();
      EXPECT_EQ(print_authorizer_code(*src), code) << tc["filename"] << " " << name;
      ++n;
    }
  }
  EXPECT_GE(n, 40u);
}

// ------------------------------------------------------------- minimal authorizer

json failed_check_json(bool authorizer, uint64_t block, std::size_t check_id, const std::string& rule) {
  if (authorizer) return json{{"Authorizer", {{"check_id", check_id}, {"rule", rule}}}};
  return json{{"Block", {{"block_id", block}, {"check_id", check_id}, {"rule", rule}}}};
}

json execution_json(const ExecutionError& e) {
  if (e.is_run_limit()) return json{{"Err", {{"RunLimit", e.kind_name()}}}};
  return json{{"Err", {{"Execution", e.kind_name()}}}};
}

struct Outcome {
  json result;
  json world;
};

Outcome authorize(const std::vector<LoadedBlock>& blocks, const std::string& authorizer_code) {
  SymbolTable symbols = blocks.empty() ? SymbolTable() : SymbolTable();
  // Authorizer table = token table (first-party symbols and keys).
  for (const auto& b : blocks) {
    if (!b.external_key) {
      symbols.extend(b.block.symbols);
      symbols.extend_keys(b.block.public_keys);
    }
  }
  std::map<uint64_t, std::vector<uint64_t>> key_blocks;
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    if (blocks[i].external_key) key_blocks[symbols.insert_key(*blocks[i].external_key)].push_back(i);
  }
  World world;
  world.set_extern_functions(
      {{"test",
        [](const ast::Term& l, const std::optional<ast::Term>& r) -> Expected<ast::Term, std::string> {
          if (!r) return l;
          if (l.is(ast::TermKind::String) && r->is(ast::TermKind::String)) {
            return ast::Term::string(l.as_string() == r->as_string() ? "equal strings" : "different strings");
          }
          return std::string("unsupported arguments");
        }}});
  // Blocks, translated into the authorizer's table.
  std::vector<std::vector<Check>> block_checks;
  std::vector<std::vector<Scope>> block_scopes;
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    const LoadedBlock& b = blocks[i];
    std::vector<Check> checks;
    for (const auto& f : b.block.facts) {
      auto t = translate(f, b.table, symbols);
      EXPECT_TRUE(t.ok());
      world.add_fact(OriginSet{i}, *t);
    }
    std::vector<Scope> scopes;
    for (const auto& s : b.block.scopes) {
      auto a = to_ast(s, b.table);
      EXPECT_TRUE(a.ok());
      scopes.push_back(*intern(*a, symbols));
    }
    const TrustedOrigins block_trust =
        TrustedOrigins::from_scopes(scopes, TrustedOrigins::defaults(), i, key_blocks);
    for (const auto& r : b.block.rules) {
      auto t = translate(r, b.table, symbols);
      EXPECT_TRUE(t.ok());
      world.add_rule(i, TrustedOrigins::from_scopes(t->scopes, block_trust, i, key_blocks), *t);
    }
    for (const auto& c : b.block.checks) {
      auto t = translate(c, b.table, symbols);
      EXPECT_TRUE(t.ok());
      checks.push_back(*t);
    }
    block_checks.push_back(std::move(checks));
    block_scopes.push_back(std::move(scopes));
  }
  auto src = parse_authorizer_source(authorizer_code);
  EXPECT_TRUE(src.ok()) << src.error().to_string();
  const TrustedOrigins auth_trust =
      TrustedOrigins::from_scopes({}, TrustedOrigins::defaults(), kAuthorizerBlock, key_blocks);
  for (const auto& f : src->facts) world.add_fact(OriginSet::authorizer(), *intern(f, symbols));
  for (const auto& r : src->rules) {
    Rule rule = *intern(r, symbols);
    world.add_rule(kAuthorizerBlock,
                   TrustedOrigins::from_scopes(rule.scopes, auth_trust, kAuthorizerBlock, key_blocks), rule);
  }
  std::vector<Check> auth_checks;
  for (const auto& c : src->checks) auth_checks.push_back(*intern(c, symbols));
  std::vector<Policy> policies;
  for (const auto& p : src->policies) policies.push_back(*intern(p, symbols));

  Outcome out;
  auto dump = [&] {
    std::vector<BlockChecks> bc;
    for (std::size_t i = 0; i < block_checks.size(); ++i) bc.push_back({i, block_checks[i]});
    bc.push_back({kAuthorizerBlock, auth_checks});
    WorldDump d = dump_world(world, symbols, bc, policies);
    json w;
    w["facts"] = json::array();
    for (const auto& g : d.facts) {
      json origin = json::array();
      for (const auto& o : g.origin) origin.push_back(o ? json(*o) : json(nullptr));
      w["facts"].push_back({{"origin", origin}, {"facts", g.facts}});
    }
    w["rules"] = json::array();
    for (const auto& g : d.rules) w["rules"].push_back({{"origin", g.origin}, {"rules", g.rules}});
    w["checks"] = json::array();
    for (const auto& g : d.checks) w["checks"].push_back({{"origin", g.origin}, {"checks", g.checks}});
    w["policies"] = d.policies;
    return w;
  };

  RunLimits limits;
  limits.max_time = std::chrono::seconds(5);  // tests never depend on timing
  auto run = world.run(symbols, limits);
  if (!run) {
    out.result = execution_json(run.error());
    out.world = dump();
    return out;
  }
  json failed = json::array();
  auto eval_check = [&](const Check& c, uint64_t block,
                        const TrustedOrigins& base) -> Expected<bool, ExecutionError> {
    for (const auto& q : c.queries) {
      const TrustedOrigins t = TrustedOrigins::from_scopes(q.scopes, base, block, key_blocks);
      Expected<bool, ExecutionError> r = false;
      switch (c.kind) {
        case CheckKind::One:
          r = world.query_match(q, t, symbols);
          break;
        case CheckKind::All:
          r = world.query_match_all(q, t, symbols);
          break;
        case CheckKind::Reject: {
          auto m = world.query_match(q, t, symbols);
          if (m)
            r = !*m;
          else
            r = std::move(m).error();
          break;
        }
      }
      if (!r) return r;
      if (*r) return true;
    }
    return false;
  };
  auto fail_exec = [&](const ExecutionError& e) {
    out.result = execution_json(e);
    out.world = dump();
    return out;
  };
  for (std::size_t i = 0; i < auth_checks.size(); ++i) {
    auto r = eval_check(auth_checks[i], kAuthorizerBlock, auth_trust);
    if (!r) return fail_exec(r.error());
    if (!*r) failed.push_back(failed_check_json(true, 0, i, print_check(auth_checks[i], symbols)));
  }
  auto block_trust = [&](std::size_t i) {
    return TrustedOrigins::from_scopes(block_scopes[i], TrustedOrigins::defaults(), i, key_blocks);
  };
  if (!blocks.empty()) {
    for (std::size_t j = 0; j < block_checks[0].size(); ++j) {
      auto r = eval_check(block_checks[0][j], 0, block_trust(0));
      if (!r) return fail_exec(r.error());
      if (!*r) failed.push_back(failed_check_json(false, 0, j, print_check(block_checks[0][j], symbols)));
    }
  }
  std::optional<std::pair<bool, std::size_t>> policy;
  for (std::size_t i = 0; i < policies.size() && !policy; ++i) {
    for (const auto& q : policies[i].queries) {
      auto r = world.query_match(
          q, TrustedOrigins::from_scopes(q.scopes, auth_trust, kAuthorizerBlock, key_blocks), symbols);
      if (!r) return fail_exec(r.error());
      if (*r) {
        policy = {policies[i].kind == PolicyKind::Allow, i};
        break;
      }
    }
  }
  for (std::size_t i = 1; i < blocks.size(); ++i) {
    for (std::size_t j = 0; j < block_checks[i].size(); ++j) {
      auto r = eval_check(block_checks[i][j], i, block_trust(i));
      if (!r) return fail_exec(r.error());
      if (!*r) failed.push_back(failed_check_json(false, i, j, print_check(block_checks[i][j], symbols)));
    }
  }
  if (policy && policy->first && failed.empty()) {
    out.result = json{{"Ok", policy->second}};
  } else if (!policy) {
    out.result = json{{"Err", {{"FailedLogic", {{"NoMatchingPolicy", {{"checks", failed}}}}}}}};
  } else {
    out.result = json{
        {"Err",
         {{"FailedLogic",
           {{"Unauthorized",
             {{"policy", {{policy->first ? "Allow" : "Deny", policy->second}}}, {"checks", failed}}}}}}}};
  }
  out.world = dump();
  return out;
}

TEST(BiscuitSamples, EngineReproducesWorldsAndResults) {
  std::size_t compared = 0;
  for (const auto& tc : samples()["testcases"]) {
    std::vector<std::string> failures;
    const auto blocks = load_token(tc, &failures);
    ASSERT_TRUE(failures.empty()) << failures.front();
    for (const auto& [name, v] : tc["validations"].items()) {
      if (v["world"].is_null()) continue;  // format errors: not the Datalog layer's business
      Outcome o = authorize(blocks, v["authorizer_code"].get<std::string>());
      EXPECT_EQ(o.result, v["result"]) << tc["filename"] << " [" << name << "]";
      EXPECT_EQ(o.world, v["world"]) << tc["filename"] << " [" << name << "]\nours: " << o.world.dump(1)
                                     << "\nexpected: " << v["world"].dump(1);
      ++compared;
    }
  }
  EXPECT_EQ(compared, 44u);
}

TEST(BiscuitSamples, UnboundHeadVariableIsDetected) {
  // test018: the authorizer must refuse this block rule (InvalidBlockRule).
  for (const auto& tc : samples()["testcases"]) {
    if (tc["filename"] != "test018_unbound_variables_in_rule.bc") continue;
    std::vector<std::string> failures;
    const auto blocks = load_token(tc, &failures);
    ASSERT_EQ(blocks.size(), 2u);
    ASSERT_EQ(blocks[1].block.rules.size(), 1u);
    EXPECT_FALSE(head_variables_bound(blocks[1].block.rules[0]));
    EXPECT_EQ(print_rule(blocks[1].block.rules[0], blocks[1].table),
              "operation($unbound, \"read\") <- operation($any1, $any2)");
    // The strict parser refuses it.
    EXPECT_FALSE(parse_block_source(tc["token"][1]["code"].get<std::string>()).ok());
  }
}

}  // namespace
}  // namespace biscuit::datalog
