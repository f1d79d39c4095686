// Attacks on lock 1's doorway (finding 5): holding the server's connections without ever
// finishing a TLS handshake, and one client certificate flooding the server with calls.
// Each test is the attack, run against the real servers; all traffic goes to 127.0.0.1.
#include "attack_env.h"

#include "net/client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

namespace larder::attack {
namespace {

using namespace std::chrono_literals;

// Both ends of every attacking connection live in this process.
void raise_descriptor_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
}

// Plain TCP connections to 127.0.0.1:port that the attacker holds open; closed on destruction.
class SocketFlood {
 public:
  explicit SocketFlood(uint16_t port) : port_(port) {}
  ~SocketFlood() {
    for (int fd : fds_) ::close(fd);
  }
  // Opens `n` connections, each sending `first_bytes` (possibly nothing); the count opened.
  std::size_t open(std::size_t n, const std::string& first_bytes = "") {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port_);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::size_t opened = 0;
    for (std::size_t i = 0; i < n; ++i) {
      int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      if (fd < 0) break;
      if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        break;
      }
      if (!first_bytes.empty()) (void)::send(fd, first_bytes.data(), first_bytes.size(), MSG_NOSIGNAL);
      fds_.push_back(fd);
      ++opened;
    }
    return opened;
  }

 private:
  uint16_t port_;
  std::vector<int> fds_;
};

// The start of a TLS ClientHello (a record header announcing 512 bytes, the handshake header,
// the version, part of the random) — and then nothing more.
const std::string kPartialClientHello =
    std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11) + "attacker";

std::string pg_query_call(int id, const std::string& sql) {
  return nlohmann::json{{"jsonrpc", "2.0"},
                        {"id", id},
                        {"method", "tools/call"},
                        {"params", {{"name", "pg_query"}, {"arguments", {{"query", sql}}}}}}
      .dump();
}

// Finding 5: 1,100 TCP connections that never start TLS (plus 200 that stop in the middle of
// their ClientHello) made real clients fail until the attacker's sockets timed out. Now the
// oldest of them are closed to admit newcomers: a real call goes through while they are held.
TEST(ConnectionAttack, SocketsThatNeverHandshakeDoNotLockOutARealCall) {
  raise_descriptor_limit();
  auto& db = *bed().db;
  const auto before = db.connection_stats();
  SocketFlood flood(db.port());
  ASSERT_EQ(flood.open(1100), 1100u);
  ASSERT_EQ(flood.open(200, kPartialClientHello), 200u);

  auto client = connect(env().db_url, tokens().erin);
  auto r = call(*client, "pg_query", {{"query", R"(SELECT "Patient Name" FROM health_records LIMIT 1)"}});
  EXPECT_EQ(refused_lock(r), "") << r.dump();
  EXPECT_NE(text_of(r).find("Erin"), std::string::npos) << r.dump();

  const auto after = db.connection_stats();
  EXPECT_GT(after.handshake_evictions, before.handshake_evictions);
  EXPECT_LE(after.handshaking, bed().db_config().limits.max_handshakes);
  EXPECT_EQ(after.refused_at_capacity, before.refused_at_capacity);
}

// One certificate calling faster than its rate is refused with 429, Retry-After and a
// JSON-RPC error naming the limit; another certificate's calls go through meanwhile. (An
// extra server with a low rate: the testbed's servers use the defaults.)
TEST(ConnectionAttack, OneCertificateOverItsRateIsRefusedAndAnotherIsNot) {
  auto config = bed().db_config();
  config.transport.client_limits.rate_per_second = 1;
  config.transport.client_limits.burst = 5;
  config.audit.path = (bed().dir() / "audit-connection-attack.jsonl").string();
  auto server = test::Testbed::start(config);
  const std::string base = "https://127.0.0.1:" + std::to_string(server->port());
  const std::string url = base + "/mcp";

  const std::string token = tokens().erin;
  const std::string sid = raw_session(url, token);  // initialize + initialized: two of the burst
  auto burst = net::HttpClient::create(base, claude_tls());
  ASSERT_TRUE(burst.ok()) << burst.error().message;
  const net::HeaderList headers = {{"Content-Type", "application/json"},
                                   {"Accept", "application/json, text/event-stream"},
                                   {"MCP-Protocol-Version", "2025-06-18"},
                                   {"Authorization", "Bearer " + token},
                                   {"Mcp-Session-Id", sid}};
  int admitted = 0, refused = 0;
  std::optional<net::ClientResponse> refusal;
  for (int i = 0; i < 30; ++i) {
    auto r =
        (*burst)->request("POST", "/mcp", headers,
                          pg_query_call(i + 10, R"(SELECT "Patient Name" FROM health_records LIMIT 1)"), 60s);
    ASSERT_TRUE(r.ok()) << r.error().message;
    if (r->status == 429) {
      ++refused;
      refusal = *r;
    } else {
      EXPECT_EQ(r->status, 200) << r->body;
      ++admitted;
    }
  }
  EXPECT_GE(admitted, 1);
  EXPECT_GE(refused, 10) << "30 calls in a burst of 5 at 1/s";
  ASSERT_TRUE(refusal.has_value());
  EXPECT_NE(refusal->body.find("too many calls per second for this client certificate (limit 1/s, burst 5)"),
            std::string::npos)
      << refusal->body;
  EXPECT_NE(refusal->body.find("\"jsonrpc\":\"2.0\""), std::string::npos) << refusal->body;
  EXPECT_TRUE(refusal->header("retry-after").has_value());

  // env().other, with its own token, while claude-client's bucket is empty.
  auto other = mcp::Client::connect_http(
      url, tls_of(env().other), {{"Authorization", "Bearer " + fresh_patient_token_for(env().other)}});
  ASSERT_TRUE(other.ok()) << other.error().message;
  auto r = call(**other, "pg_query", {{"query", R"(SELECT "Patient Name" FROM health_records LIMIT 1)"}});
  EXPECT_EQ(refused_lock(r), "") << r.dump();
  EXPECT_NE(text_of(r).find("Erin"), std::string::npos) << r.dump();

  EXPECT_GE(server->client_limit_stats().refused_rate, static_cast<uint64_t>(refused));
  server->stop();
}

// Larder's own MCP client (larder ask, larder connect) over its certificate's rate: the 429
// answers the call at once with the server's reason. It used to carry `"id": null` (the limit
// is checked before the body is read), match no pending call, and leave the caller waiting for
// its whole request timeout.
TEST(ConnectionAttack, OurClientOverItsRateGetsTheRefusalAtOnceNotATimeout) {
  auto config = bed().db_config();
  config.transport.client_limits.rate_per_second = 1;
  config.transport.client_limits.burst = 4;
  config.audit.path = (bed().dir() / "audit-connection-attack-client.jsonl").string();
  auto server = test::Testbed::start(config);
  const std::string url = "https://127.0.0.1:" + std::to_string(server->port()) + "/mcp";
  mcp::ClientOptions options;
  options.request_timeout = 30s;
  auto client =
      mcp::Client::connect_http(url, claude_tls(), {{"Authorization", "Bearer " + tokens().erin}}, options);
  ASSERT_TRUE(client.ok()) << client.error().message;
  std::optional<Error> refusal;
  for (int i = 0; i < 10 && !refusal; ++i) {
    const auto started = std::chrono::steady_clock::now();
    auto r =
        (*client)->call_tool("pg_query", {{"query", R"(SELECT "Patient Name" FROM health_records LIMIT 1)"}});
    EXPECT_LT(std::chrono::steady_clock::now() - started, 10s) << "call " << i << " waited for its timeout";
    if (!r) refusal = r.error();
  }
  ASSERT_TRUE(refusal.has_value()) << "10 calls in a burst of 4 at 1/s were all admitted";
  EXPECT_NE(refusal->message.find("too many calls per second for this client certificate"), std::string::npos)
      << refusal->message;
  EXPECT_EQ(refusal->code, "mcp.rpc.-32000") << refusal->message;
  server->stop();
}

// One token lineage calling faster than its rate is refused as lock "limits" — whatever
// connection or session it comes over — before any Datalog runs; another lineage of the
// same certificate is not held back.
TEST(ConnectionAttack, OneLineageOverItsRateIsRefusedAndAnotherIsNot) {
  auto config = bed().db_config();
  config.pipeline.lineage_limits.rate_per_second = 1;
  config.pipeline.lineage_limits.burst = 3;
  config.audit.path = (bed().dir() / "audit-lineage-attack.jsonl").string();
  auto server = test::Testbed::start(config);
  const std::string url = "https://127.0.0.1:" + std::to_string(server->port()) + "/mcp";

  const std::string token = fresh_patient_token();
  int refused = 0;
  std::string reason;
  for (int i = 0; i < 12; ++i) {
    auto client = connect(url, token);  // a new connection and session every time
    auto r = call(*client, "pg_query", {{"query", "SELECT 1"}});
    if (refused_lock(r) == "limits") {
      ++refused;
      reason = text_of(r);
    } else {
      EXPECT_EQ(refused_lock(r), "") << r.dump();
    }
  }
  EXPECT_GE(refused, 6) << "12 calls in a burst of 3 at 1/s";
  EXPECT_NE(reason.find("too many calls per second for this token's lineage (limit 1/s, burst 3)"),
            std::string::npos)
      << reason;

  auto other = connect(url, fresh_patient_token());
  EXPECT_EQ(refused_lock(call(*other, "pg_query", {{"query", "SELECT 1"}})), "");
  server->stop();
}

}  // namespace
}  // namespace larder::attack
