// Attacks on lock 2's cost (finding 4): a holder appends a block whose checks cost seconds
// and gigabytes to evaluate — `check if ({s} + {s} + … 500 times).length() > 0` with a
// 4,000-character `s` is a 15 KB token — and sends it, several times at once. The token need
// not even be valid for the sender's certificate. Each call must be refused at lock biscuit
// while the process's peak memory stays small (the servers run in this process).
#include "attack_env.h"

#include "biscuit/biscuit.h"

#include <gtest/gtest.h>
#include <malloc.h>

#include <cstdio>
#include <fstream>
#include <future>
#include <string>
#include <vector>

namespace larder::attack {
namespace {

constexpr int kConcurrentCalls = 6;
constexpr std::size_t kMaxGrowth = 100u << 20;  // bytes of peak RSS the whole burst may add

// A line of /proc/self/status in bytes ("VmHWM:  123456 kB").
std::size_t status_bytes(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoull(line.substr(field.size() + 1)) * 1024;
  }
  return 0;
}

// Peak RSS from now on: memory the allocator keeps is handed back first (so reusing it would
// show), then the high-water mark is reset to the current RSS when the kernel lets us
// (clear_refs "5"), so an earlier test's peak cannot hide this one's.
std::size_t start_peak_measurement() {
  malloc_trim(0);
  std::ofstream("/proc/self/clear_refs") << "5";
  return status_bytes("VmHWM");
}

std::string concat_code(int n) {
  std::string code = "check if (";
  for (int i = 0; i < n; ++i) code += i ? " + {s}" : "{s}";
  return code + ").length() > 0;";
}

// A fresh patient token (bound to claude-client) with the attacker's block appended: `s`
// (4,000 characters) concatenated `n` times. The attacker's writer lifts its own limits.
std::string attack_token(int n) {
  auto parsed = biscuit::Biscuit::from_base64(fresh_patient_token(), env().root.public_key());
  if (!parsed) throw std::runtime_error("attack token: " + parsed.error().message);
  biscuit::BlockBuilder block;
  block.set_limits(biscuit::datalog::SizeLimits::unlimited());
  auto added = block.add_code(concat_code(n), biscuit::Params().string("s", std::string(4000, 'a')));
  if (!added) throw std::runtime_error("attack token: " + added.error().message);
  auto attenuated = parsed->append(block);
  if (!attenuated) throw std::runtime_error("attack token: " + attenuated.error().message);
  return attenuated->to_base64();
}

std::unique_ptr<mcp::Client> connect_as_other(const std::string& url, const std::string& token) {
  const auto& e = env();
  auto client =
      mcp::Client::connect_http(url, net::TlsClientConfig{e.ca_file, e.other.cert, e.other.key, "", false},
                                {{"Authorization", "Bearer " + token}});
  if (!client) throw std::runtime_error("connect as other-client: " + client.error().message);
  return std::move(*client);
}

// kConcurrentCalls pg_query calls with `token` at once; the results and the peak RSS growth.
struct Burst {
  std::vector<nlohmann::json> results;
  std::size_t growth = 0;
};
Burst burst(const std::string& token, bool as_other_client) {
  std::vector<std::unique_ptr<mcp::Client>> clients;
  for (int i = 0; i < kConcurrentCalls; ++i) {
    clients.push_back(as_other_client ? connect_as_other(env().db_url, token) : connect(env().db_url, token));
  }
  const std::size_t before = start_peak_measurement();
  std::vector<std::future<nlohmann::json>> calls;
  for (auto& c : clients) {
    mcp::Client* client = c.get();
    calls.push_back(std::async(std::launch::async, [client] {
      return call(*client, "pg_query", {{"query", R"(SELECT "Patient Name" FROM health_records LIMIT 1)"}});
    }));
  }
  Burst out;
  for (auto& f : calls) out.results.push_back(f.get());
  const std::size_t after = status_bytes("VmHWM");
  out.growth = after > before ? after - before : 0;
  std::printf("%d concurrent calls: peak RSS %.1f MB -> %.1f MB\n", kConcurrentCalls, before / 1e6,
              after / 1e6);
  return out;
}

// The finding's token itself: refused when the token is verified, before any Datalog runs.
TEST(BiscuitAttack, TheFindingsTokenIsRefusedAtParseTime) {
  const std::string token = attack_token(500);
  EXPECT_LT(token.size(), 24u * 1024);
  auto b = burst(token, false);
  for (const auto& r : b.results) {
    EXPECT_EQ(refused_lock(r), "biscuit") << r.dump();
    EXPECT_NE(r.dump().find("operations"), std::string::npos) << "the refusal names the limit: " << r.dump();
  }
  EXPECT_LT(b.growth, kMaxGrowth) << "peak RSS grew by " << b.growth << " bytes";
}

// Within every parse limit (250 concatenations: 505 operations, ~125 MB of strings per call
// if nothing bounded it): the evaluation budget (memory, and the deadline inside the
// expression) stops each call.
TEST(BiscuitAttack, AnExpensiveBlockWithinTheParseLimitsIsStoppedByTheBudget) {
  const std::string token = attack_token(250);
  auto b = burst(token, false);
  for (const auto& r : b.results) {
    EXPECT_EQ(refused_lock(r), "biscuit") << r.dump();
    EXPECT_NE(r.dump().find("run limit"), std::string::npos) << r.dump();
  }
  EXPECT_LT(b.growth, kMaxGrowth) << "peak RSS grew by " << b.growth << " bytes";
}

// The same token from another client's certificate: its binding check fails on the call's
// facts alone, so it is refused before the expensive check could run at all.
TEST(BiscuitAttack, FromAnotherCertificateTheBindingRefusesFirst) {
  const std::string token = attack_token(250);
  auto b = burst(token, true);
  for (const auto& r : b.results) {
    EXPECT_EQ(refused_lock(r), "biscuit") << r.dump();
    EXPECT_NE(r.dump().find("token is bound to another client certificate"), std::string::npos) << r.dump();
    EXPECT_NE(r.dump().find("check if client_cert_sha256(hex:"), std::string::npos) << r.dump();
  }
  EXPECT_LT(b.growth, kMaxGrowth) << "peak RSS grew by " << b.growth << " bytes";
}

}  // namespace
}  // namespace larder::attack
