// Lock 2 per call, in process: what the gate spends on one tools/call once the token is
// known — the verification cache hit (Gate::verify) and the authorization (Gate::authorize:
// the server's facts about the call and the client certificate, the policy, the token's
// checks, and reading the row-level-security context), for the token an agent presents
// after its first sensitive read: authority block, certificate binding, taint block.
#include "biscuit/biscuit.h"
#include "examples/examples.h"
#include "gate/attestation.h"
#include "gate/gate.h"
#include "net/peer_identity.h"
#include "policy/policy.h"
#include "tls_test_pki.h"

#include <benchmark/benchmark.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <stdexcept>

using namespace larder;

namespace {

struct Fixture {
  larder::testing::TlsTestPki pki;
  std::unique_ptr<gate::Gate> gate;
  std::string token;  // base64: authority + certificate binding + taint block
  net::PeerIdentity peer;
  gate::CallFacts call{"tools/call",
                       "pg_query",
                       gate::DataFlow::kSensitiveRead,
                       {"health_records"},
                       {{"health_records", {"*"}}}};

  Fixture() {
    auto root = biscuit::KeyPair::generate();
    gate::GateOptions o;
    o.audience = "larder-db";
    o.root_keys = {{std::nullopt, root.public_key().to_string()}};
    // The RLS context of the healthcare example's policy file (patient_name, role, hospital),
    // as `larder serve` reads it.
    auto example = examples::find("healthcare");
    if (!example) throw std::runtime_error(example.error().message);
    auto pol = policy::parse((*example)->policy, "<example healthcare>/policy.toml");
    if (!pol) throw std::runtime_error(pol.error().message);
    o.dimensions = gate::context_dimensions(*pol);
    auto g = gate::Gate::create(o);
    if (!g) throw std::runtime_error(g.error().message);
    gate = std::move(*g);

    biscuit::BiscuitBuilder authority;
    auto expiry = std::chrono::system_clock::now() + std::chrono::hours(24);
    auto added = authority.add_code(
        R"(patient_name({name}); right("pg_query"); right("pg_explain"); right("resources/read");
           check if time($time), $time <= {expiry};)",
        biscuit::Params()
            .string("name", "Erin oRTEga")
            .date("expiry",
                  static_cast<uint64_t>(
                      std::chrono::duration_cast<std::chrono::seconds>(expiry.time_since_epoch()).count())));
    if (!added) throw std::runtime_error("authority code");
    auto minted = authority.build(root.private_key());
    if (!minted) throw std::runtime_error("mint");

    auto client = pki.client("claude-client");
    std::ifstream in(client.cert);
    std::string pem((std::istreambuf_iterator<char>(in)), {});
    auto identity = net::peer_identity_from_pem(pem);
    if (!identity) throw std::runtime_error(identity.error().message);
    peer = *identity;
    auto bound = gate::attest(*minted, pem, {"larder-db"});
    if (!bound) throw std::runtime_error(bound.error().message);
    auto verified = gate->verify(*bound);
    if (!verified) throw std::runtime_error(verified.error().message);
    auto tainted = gate->attenuate_tainted(**verified);
    if (!tainted) throw std::runtime_error(tainted.error().message);
    token = *tainted;
    if (!gate->verify(token)) throw std::runtime_error("verify tainted token");
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

void BM_GateVerifyCached(benchmark::State& state) {
  Fixture& f = fixture();
  for (auto _ : state) {
    auto v = f.gate->verify(f.token);
    if (!v) state.SkipWithError("verify");
    benchmark::DoNotOptimize(v);
  }
}

void BM_GateAuthorize(benchmark::State& state) {
  Fixture& f = fixture();
  auto verified = f.gate->verify(f.token);
  if (!verified) {
    state.SkipWithError("verify");
    return;
  }
  for (auto _ : state) {
    gate::Grant grant;
    auto d = f.gate->authorize(**verified, &f.peer, f.call, std::chrono::system_clock::now(), &grant);
    if (!d.allowed || grant.values("patient_name").size() != 1) state.SkipWithError(d.reason.c_str());
    benchmark::DoNotOptimize(d);
  }
}

}  // namespace

BENCHMARK(BM_GateVerifyCached);
BENCHMARK(BM_GateAuthorize);
BENCHMARK_MAIN();
