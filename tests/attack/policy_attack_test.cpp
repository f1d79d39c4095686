// Trust boundary: the policy file's context. What a client with a valid certificate and a
// token of its own would try against the facts that select rows and unmask columns: grant
// itself a tenant or an unmask right in an attenuation block, smuggle a value of the wrong
// type, and what an operator's mistake would open: a drifted database (a GRANT added by hand)
// served anyway.
#include "attack_env.h"

#include "biscuit/biscuit.h"
#include "examples/examples.h"
#include "examples/saas/generate.h"
#include "gate/gate.h"
#include "policy/apply.h"
#include "policy/policy.h"
#include "tools/service.h"

#include <fstream>

#include <gtest/gtest.h>

#include <filesystem>

namespace larder::attack {
namespace {

using std::chrono::system_clock;

policy::Policy saas_policy() {
  auto e = examples::find("saas");
  if (!e) throw std::runtime_error(e.error().message);
  auto p = policy::parse((*e)->policy, "<example saas>/policy.toml");
  if (!p) throw std::runtime_error(p.error().message);
  return std::move(*p);
}

struct SaasGate {
  biscuit::KeyPair root = biscuit::KeyPair::generate();
  policy::Policy policy = saas_policy();
  std::unique_ptr<gate::Gate> gate;

  SaasGate() {
    gate::GateOptions o;
    o.root_keys.push_back({1, root.public_key().to_string()});
    o.limits.max_time = std::chrono::seconds(5);  // not the 1 ms default: CI runs these under ASan, loaded
    o.dimensions = gate::context_dimensions(policy);
    o.unmask_rights = true;
    auto g = gate::Gate::create(std::move(o));
    if (!g) throw std::runtime_error(g.error().message);
    gate = std::move(*g);
  }

  std::string mint(const std::string& authority, const std::string& attenuation = "") {
    biscuit::BiscuitBuilder b;
    if (auto r = b.add_code(authority); !r) throw std::runtime_error(r.error().message);
    b.set_root_key_id(1);
    auto t = b.build(root.private_key());
    if (!t) throw std::runtime_error(t.error().message);
    if (attenuation.empty()) return t->to_base64();
    biscuit::BlockBuilder block;
    if (auto r = block.add_code(attenuation); !r) throw std::runtime_error(r.error().message);
    auto a = t->append(block);
    if (!a) throw std::runtime_error(a.error().message);
    return a->to_base64();
  }

  gate::Decision call(const std::string& token, gate::Grant* grant) {
    auto v = gate->verify(token);
    if (!v) return gate::Decision{false, gate::Lock::kBiscuit, v.error().message};
    gate::CallFacts facts{"tools/call", "pg_query", gate::DataFlow::kSensitiveRead, {}, {}};
    return gate->authorize(**v, nullptr, facts, system_clock::now(), grant);
  }
};

const std::string kAcme = examples::saas::kAcmeTenant;
const std::string kGlobex = examples::saas::kGlobexTenant;

TEST(PolicyAttack, ATenantAddedInAnAttenuationBlockSelectsNoRows) {
  SaasGate g;
  const auto token = g.mint("right(\"pg_query\"); tenant(\"" + kAcme + "\");",
                            "tenant(\"" + kGlobex + "\"); right(\"unmask\", \"customers.email\");");
  gate::Grant grant;
  auto d = g.call(token, &grant);
  ASSERT_TRUE(d.allowed) << d.reason;
  EXPECT_EQ(grant.values("tenant"), std::vector<std::string>{kAcme});
  EXPECT_TRUE(grant.unmask.empty()) << "an attenuation block cannot grant the unmask right";
}

TEST(PolicyAttack, AFactOfTheWrongTypeIsRefusedByLockBiscuit) {
  SaasGate g;
  for (const std::string& bad :
       std::vector<std::string>{"tenant(\"acme\")", "tenant(\"" + kAcme + "' OR true --\")", "tenant(42)",
                                "tenant(true)", "tenant(2024-01-01T00:00:00Z)"}) {
    gate::Grant grant;
    auto d = g.call(g.mint("right(\"pg_query\"); " + bad + ";"), &grant);
    EXPECT_FALSE(d.allowed) << bad;
    EXPECT_EQ(d.lock, gate::Lock::kBiscuit) << bad;
    EXPECT_NE(d.reason.find("is not a uuid"), std::string::npos) << d.reason;
  }
}

TEST(PolicyAttack, AFactNameTheFileDoesNotDeclareIsNoContext) {
  SaasGate g;
  gate::Grant grant;
  auto d = g.call(g.mint("right(\"pg_query\"); patient_name(\"Erin oRTEga\"); tenant_id(\"" + kAcme + "\");"),
                  &grant);
  ASSERT_TRUE(d.allowed) << d.reason;
  EXPECT_TRUE(grant.values("tenant").empty());
  EXPECT_EQ(grant.facts.count("patient_name"), 0u);
  EXPECT_EQ(grant.facts.count("tenant_id"), 0u);
}

TEST(PolicyAttack, AServerRefusesToServeADriftedDatabase) {
  auto& cluster = bed().cluster();
  cluster.admin_scalar("CREATE TABLE public.staff_salaries (name text, salary int)");
  cluster.admin_scalar("GRANT SELECT ON public.staff_salaries TO patients");
  // The database server's certificate (a server needs one to start), its own audit log.
  auto config = bed().config("larder-db", {{"pg_query", gate::DataFlow::kSensitiveRead}});
  config.audit.path =
      (std::filesystem::path(config.audit.path).parent_path() / "audit-drift-probe.jsonl").string();
  auto refused = tools::LarderService::start(config);
  ASSERT_FALSE(refused.ok()) << "a server started on a database whose query role can read an unexposed table";
  EXPECT_EQ(refused.error().code, "policy.drift");
  EXPECT_NE(refused.error().message.find("public.staff_salaries"), std::string::npos)
      << refused.error().message;
  // Acknowledged, it starts, and still serves only what the guard allows.
  config.allow_drift = true;
  config.insecure_acknowledged.push_back("policy_drift");
  auto started = tools::LarderService::start(config);
  EXPECT_TRUE(started.ok()) << (started.ok() ? "" : started.error().message);
  started = Error{};
  cluster.admin_scalar("DROP TABLE public.staff_salaries");
}

// An operator who turns free-form SQL off ([options] pg_query = false) serves only the
// declared query tools: pg_query and pg_explain are not listed and not callable, whatever the
// token grants, and the declared tool still runs under the token's RLS context.
TEST(PolicyAttack, WithFreeFormSqlOffOnlyTheDeclaredToolsAnswer) {
  auto e = examples::find("healthcare");
  ASSERT_TRUE(e.ok());
  const std::string text = std::string((*e)->policy) + "\n[options]\npg_query = false\n";
  const auto dir = std::filesystem::path(bed().config("larder-db", {}).audit.path).parent_path();
  const auto file = dir / "policy-declared-only.toml";
  std::ofstream(file) << text;
  auto variant = policy::load(file.string());
  ASSERT_TRUE(variant.ok()) << variant.error().message;
  ASSERT_FALSE(variant->pg_query);
  auto& cluster = bed().cluster();
  auto admin = cluster.state().admin().connect(db::Clock::now() + std::chrono::seconds(30));
  ASSERT_TRUE(admin.ok());
  auto applied = policy::apply(*variant, admin->get(), {}, db::Clock::now() + std::chrono::seconds(60));
  ASSERT_TRUE(applied.ok()) << applied.error().message;

  auto config = bed().config(
      "larder-db", {{"pg_query", gate::DataFlow::kSensitiveRead}, {"pg_explain", gate::DataFlow::kNeutral}});
  config.audit.path = (dir / "audit-declared-only.jsonl").string();
  config.policy_path = file.string();
  auto server = tools::LarderService::start(config);
  ASSERT_TRUE(server.ok()) << server.error().message;
  const std::string url = "https://127.0.0.1:" + std::to_string((*server)->port()) + "/mcp";
  const std::string token = fresh_patient_token();
  auto client = connect(url, token);
  auto listed = client->list_tools();
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  std::set<std::string> names;
  for (const auto& t : *listed) names.insert(t.value("name", ""));
  EXPECT_EQ(names.count("pg_query"), 0u);
  EXPECT_EQ(names.count("pg_explain"), 0u);
  EXPECT_EQ(names.count("admissions_by_condition"), 1u);
  auto r = client->call_tool("pg_query", {{"query", "SELECT count(*) FROM health_records"}});
  EXPECT_TRUE(!r.ok() || r->value("isError", false)) << "pg_query answered with free-form SQL off";
  server = Error{};

  // Back to the file the other tests' server uses.
  auto original = policy::parse((*e)->policy, "<example healthcare>/policy.toml");
  ASSERT_TRUE(original.ok());
  auto back = policy::apply(*original, admin->get(), {}, db::Clock::now() + std::chrono::seconds(60));
  ASSERT_TRUE(back.ok()) << back.error().message;
}

}  // namespace
}  // namespace larder::attack
