// libbiscuit token benchmarks: parse + verify + authorize of the tokens Larder uses, the
// signature-verification floor for the same signatures (libsodium alone), a 10,000-fact
// world with a two-predicate join, token creation and attenuation.
//
// `bench_biscuit --export DIR` writes the benchmark tokens, root key and authorizer code to
// DIR (for bench/biscuit_wasm_bench.mjs, which times biscuit-wasm on the same bytes) and exits.
#include <benchmark/benchmark.h>
#include <sodium.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "biscuit/biscuit.h"
#include "biscuit/format/signature.h"

using namespace biscuit;

namespace {

const char* kAuthority =
    "user(\"alice\"); role(\"nurse\"); right(\"patients\", \"read\"); expiry(2030-01-01T00:00:00Z);\n"
    "check if time($t), expiry($e), $t <= $e;\n";
const char* kCertHex = "3b1f5a0e4c7d9e2a6b8c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a";
const char* kAuthorizer2 =
    "time(2026-01-01T00:00:00Z); operation(\"read\"); resource(\"patients\");\n"
    "allow if right($r, \"read\"), resource($r);\n";
const char* kAuthorizer3 =
    "time(2026-01-01T00:00:00Z); operation(\"read\"); resource(\"patients\");\n"
    "client_cert_sha256(hex:3b1f5a0e4c7d9e2a6b8c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a);\n"
    "server_audience(\"larder-db\"); tool_egress(false);\n"
    "allow if right($r, \"read\"), resource($r);\n";

struct Fixture {
  KeyPair root;
  Bytes two_block;
  Bytes three_block;
  AuthorizerBuilder auth2, auth3;

  Fixture() {
    Bytes seed(32, 7);
    root = KeyPair(*PrivateKey::from_bytes(Algorithm::Ed25519, seed));
    BiscuitBuilder b;
    must(b.add_code(kAuthority));
    Biscuit authority = *b.build(root.private_key());
    BlockBuilder att;
    must(att.add_code("check if operation(\"read\");"));
    two_block = authority.append(att)->to_bytes();
    BlockBuilder cert;
    must(cert.add_code("check if client_cert_sha256({cert}); check if server_audience(\"larder-db\");",
                       Params().bytes("cert", *hex_decode(kCertHex))));
    BlockBuilder taint;
    must(taint.add_code("sensitive_data(true); check if tool_egress(false);"));
    three_block = authority.append(cert)->append(taint)->to_bytes();
    must(auth2.add_code(kAuthorizer2));
    must(auth3.add_code(kAuthorizer3));
    // Sanity: both authorize.
    if (!authorize(two_block, auth2) || !authorize(three_block, auth3)) {
      std::cerr << "benchmark tokens do not authorize\n";
      std::abort();
    }
  }
  static void must(const Result<void>& r) {
    if (!r) {
      std::cerr << r.error().to_string() << "\n";
      std::abort();
    }
  }
  bool authorize(const Bytes& bytes, const AuthorizerBuilder& ab) const {
    auto token = Biscuit::from_bytes(bytes, root.public_key());
    if (!token) return false;
    auto a = ab.build(*token);
    return a && a->authorize().ok();
  }
};

const Fixture& fixture() {
  static const Fixture f;
  return f;
}

// Per iteration: parse + verify the token, parse the authorizer code, build, authorize
// (what biscuit_wasm_bench.mjs times in biscuit-wasm, whose builders are single-use).
// One parse + verify + authorize, as a service does for a token it has not seen.
void verify_and_authorize(const Bytes& bytes, const char* code, benchmark::State& state) {
  auto token = Biscuit::from_bytes(bytes, fixture().root.public_key());
  AuthorizerBuilder ab;
  if (!token || !ab.add_code(code)) state.SkipWithError("token or authorizer code");
  auto a = std::move(ab).build(*token);
  auto r = a->authorize();
  benchmark::DoNotOptimize(r);
}

void parse_verify_authorize(benchmark::State& state, const Bytes& bytes, const char* code) {
  for (auto _ : state) verify_and_authorize(bytes, code, state);
}

void BM_ParseVerifyAuthorize_2Block(benchmark::State& state) {
  parse_verify_authorize(state, fixture().two_block, kAuthorizer2);
}
void BM_ParseVerifyAuthorize_3Block(benchmark::State& state) {
  parse_verify_authorize(state, fixture().three_block, kAuthorizer3);
}

// The floor: libsodium verifying exactly the token's signatures over the same payloads.
// With the proof, also the one scalar multiplication any conformant verifier performs on an
// unsealed token: deriving the proof secret's public key to match it with the last next key.
struct CryptoFloor {
  struct Sig {
    Bytes payload, signature, key;
  };
  std::vector<Sig> sigs;
  Bytes secret;

  explicit CryptoFloor(const Bytes& bytes) {
    auto env = *format::Envelope::parse(bytes);
    Bytes key = fixture().root.public_key().bytes();
    for (std::size_t i = 0; i < env.block_count(); ++i) {
      const auto& b = env.block(i);
      sigs.push_back(
          {format::block_payload_v0(b.block, std::nullopt, b.next_key.algorithm(), b.next_key.bytes()),
           b.signature, key});
      key = b.next_key.bytes();
    }
    secret = env.next_secret->bytes();
  }
  void signatures(benchmark::State& state) const {
    int ok = 0;
    for (const auto& s : sigs)
      ok += crypto_sign_verify_detached(s.signature.data(), s.payload.data(), s.payload.size(),
                                        s.key.data()) == 0;
    if (ok != static_cast<int>(sigs.size())) state.SkipWithError("signature did not verify");
    benchmark::DoNotOptimize(ok);
  }
  void proof() const {
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    crypto_sign_seed_keypair(pk, sk, secret.data());
    benchmark::DoNotOptimize(pk);
  }
};

void crypto_floor(benchmark::State& state, const Bytes& bytes, bool proof = false) {
  const CryptoFloor floor(bytes);
  for (auto _ : state) {
    if (proof) floor.proof();
    floor.signatures(state);
  }
}
void BM_CryptoFloor_2Block(benchmark::State& state) {
  crypto_floor(state, fixture().two_block);
}
void BM_CryptoFloor_3Block(benchmark::State& state) {
  crypto_floor(state, fixture().three_block);
}
void BM_CryptoFloorWithProof_2Block(benchmark::State& state) {
  crypto_floor(state, fixture().two_block, true);
}
void BM_CryptoFloorWithProof_3Block(benchmark::State& state) {
  crypto_floor(state, fixture().three_block, true);
}

// Ours against the floor, interleaved: every iteration times one parse + verify + authorize,
// then the floor's signature checks, then the proof derivation, back to back, so a burst of
// noise on a shared machine lands on both sides of the ratio. Counters: µs of each part
// (means) and the ratios ours / floor and ours / (floor + proof).
void over_floor(benchmark::State& state, const Bytes& bytes, const char* code) {
  using Clock = std::chrono::steady_clock;
  const CryptoFloor floor(bytes);
  Clock::duration ours{}, sigs{}, proof{};
  for (auto _ : state) {
    const auto t0 = Clock::now();
    verify_and_authorize(bytes, code, state);
    const auto t1 = Clock::now();
    floor.signatures(state);
    const auto t2 = Clock::now();
    floor.proof();
    const auto t3 = Clock::now();
    ours += t1 - t0;
    sigs += t2 - t1;
    proof += t3 - t2;
  }
  const double n = static_cast<double>(state.iterations());
  auto us = [n](Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count() / n; };
  state.counters["larder_us"] = us(ours);
  state.counters["floor_us"] = us(sigs);
  state.counters["floor_proof_us"] = us(sigs + proof);
  state.counters["x_floor"] = us(ours) / us(sigs);
  state.counters["x_floor_proof"] = us(ours) / us(sigs + proof);
}
void BM_OverFloor_2Block(benchmark::State& state) {
  over_floor(state, fixture().two_block, kAuthorizer2);
}
void BM_OverFloor_3Block(benchmark::State& state) {
  over_floor(state, fixture().three_block, kAuthorizer3);
}

// 10,000 facts (5,000 users + 5,000 grants) and a rule joining them.
void BM_World10kJoin(benchmark::State& state) {
  std::string code;
  for (int i = 0; i < 5000; ++i) {
    code += "user(" + std::to_string(i) + ", \"u" + std::to_string(i) + "\");\n";
    code += "grant(" + std::to_string(i) + ", \"table" + std::to_string(i % 50) + "\");\n";
  }
  code += "can($name, $table) <- user($id, $name), grant($id, $table);\n";
  code += "allow if can(\"u4999\", \"table49\");\n";
  AuthorizerBuilder ab;
  Fixture::must(ab.add_code(code));
  RunLimits limits;
  limits.max_facts = 100000;
  limits.max_time = std::chrono::seconds(10);
  ab.set_limits(limits);
  for (auto _ : state) {
    auto a = ab.build();
    auto r = a->authorize();
    if (!r) state.SkipWithError(r.error().to_string().c_str());
    benchmark::DoNotOptimize(r);
  }
}

void BM_CreateToken(benchmark::State& state) {
  const Fixture& f = fixture();
  BiscuitBuilder b;
  Fixture::must(b.add_code(kAuthority));
  for (auto _ : state) {
    auto t = b.build(f.root.private_key());
    benchmark::DoNotOptimize(t);
  }
}

void BM_Attenuate(benchmark::State& state) {
  const Fixture& f = fixture();
  auto token = *Biscuit::from_bytes(f.two_block, f.root.public_key());
  BlockBuilder taint;
  Fixture::must(taint.add_code("sensitive_data(true); check if tool_egress(false);"));
  for (auto _ : state) {
    auto t = token.append(taint);
    benchmark::DoNotOptimize(t);
  }
}

BENCHMARK(BM_ParseVerifyAuthorize_2Block);
BENCHMARK(BM_ParseVerifyAuthorize_3Block);
BENCHMARK(BM_CryptoFloor_2Block);
BENCHMARK(BM_CryptoFloor_3Block);
BENCHMARK(BM_CryptoFloorWithProof_2Block);
BENCHMARK(BM_CryptoFloorWithProof_3Block);
BENCHMARK(BM_OverFloor_2Block);
BENCHMARK(BM_OverFloor_3Block);
BENCHMARK(BM_World10kJoin)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CreateToken);
BENCHMARK(BM_Attenuate);

int export_fixture(const std::string& dir) {
  const Fixture& f = fixture();
  std::filesystem::create_directories(dir);
  auto put = [&](const char* name, const std::string& content) {
    std::ofstream(dir + "/" + name) << content;
  };
  put("root.pub", f.root.public_key().to_string());
  put("token2.b64", base64url_encode(f.two_block));
  put("token3.b64", base64url_encode(f.three_block));
  put("authorizer2.dl", kAuthorizer2);
  put("authorizer3.dl", kAuthorizer3);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (sodium_init() < 0) return 1;
  if (argc == 3 && std::strcmp(argv[1], "--export") == 0) return export_fixture(argv[2]);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
