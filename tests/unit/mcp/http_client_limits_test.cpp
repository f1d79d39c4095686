// The HTTP transport's per-client-certificate limits (finding 5), driven through
// HttpTransport::handle with requests as net::Server would hand them over — no sockets: a
// peer identity per certificate and a Responder that records the answer.
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "mcp/http_transport.h"
#include "mcp/server.h"

namespace larder::mcp {
namespace {

using namespace std::chrono_literals;

class RecordingResponder final : public net::Responder {
 public:
  void respond(net::HttpResponse response) override { answer_.set_value(std::move(response)); }
  std::shared_ptr<net::ResponseStream> start_stream(int, net::HeaderList) override {
    ADD_FAILURE() << "no stream expected here";
    answer_.set_value(net::HttpResponse{599, {}, "stream"});
    return nullptr;
  }
  std::future<net::HttpResponse> answer() { return answer_.get_future(); }

 private:
  std::promise<net::HttpResponse> answer_;
};

// A gate a tool waits at, so calls stay in flight until the test opens it.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  int waiting = 0;
  void wait() {
    std::unique_lock lock(mu);
    ++waiting;
    cv.notify_all();
    cv.wait_for(lock, 30s, [&] { return open; });
  }
  void wait_for_waiters(int n) {
    std::unique_lock lock(mu);
    cv.wait_for(lock, 30s, [&] { return waiting >= n; });
  }
  void release() {
    std::lock_guard lock(mu);
    open = true;
    cv.notify_all();
  }
};

class HttpClientLimitsTest : public ::testing::Test {
 protected:
  void SetUp() override { spdlog::set_level(spdlog::level::warn); }

  void start(CallLimiter::Options limits, std::size_t handler_threads = 4) {
    ServerOptions o;
    o.handler_threads = handler_threads;
    server_ = std::make_unique<Server>(o);
    auto gate = gate_;
    ASSERT_TRUE(server_
                    ->add_tool(Tool{"wait", "", "", json{{"type", "object"}}, std::nullopt, json(), json()},
                               [gate](RequestContext&, const json&) {
                                 gate->wait();
                                 return ToolResult::text("done");
                               })
                    .ok());
    HttpTransportOptions t;
    t.client_limits = limits;
    transport_ = std::make_unique<HttpTransport>(*server_, t);
  }
  void TearDown() override {
    gate_->release();
    join_workers();
    transport_.reset();
    server_.reset();
  }

  static std::shared_ptr<const net::PeerIdentity> peer(const std::string& name) {
    auto p = std::make_shared<net::PeerIdentity>();
    p->cn = name;
    p->cert_sha256 = std::string(64, name[0]);
    return p;
  }
  // Sends a request and returns the future answer (not waited for). `returned`, when given,
  // is set once HttpTransport::handle has returned to the worker that called it.
  std::future<net::HttpResponse> send(const std::shared_ptr<const net::PeerIdentity>& who,
                                      const std::string& method, const std::string& body,
                                      const std::string& session = "",
                                      std::shared_ptr<std::promise<void>> returned = nullptr) {
    net::HttpRequest req;
    req.method = method;
    req.target = req.path = "/mcp";
    req.headers = {{"Host", "127.0.0.1"},
                   {"Content-Type", "application/json"},
                   {"Accept", "application/json, text/event-stream"}};
    if (!session.empty()) req.headers.emplace_back("Mcp-Session-Id", session);
    req.body = body;
    req.peer = who;
    req.tls = who != nullptr;
    auto responder = std::make_shared<RecordingResponder>();
    auto answer = responder->answer();
    // On a thread of its own, as a net worker would: a call's handler runs where it arrives.
    workers_.emplace_back([this, req = std::move(req), responder, returned] {
      transport_->handle(req, responder);
      if (returned) returned->set_value();
    });
    return answer;
  }
  void join_workers() {
    for (auto& w : workers_) w.join();
    workers_.clear();
  }
  static net::HttpResponse get(std::future<net::HttpResponse>& f) {
    EXPECT_EQ(f.wait_for(30s), std::future_status::ready);
    return f.get();
  }
  // initialize + initialized; returns the session id.
  std::string open_session(const std::shared_ptr<const net::PeerIdentity>& who) {
    auto init = send(who, "POST",
                     make_request(1, "initialize",
                                  {{"protocolVersion", "2025-06-18"},
                                   {"capabilities", json::object()},
                                   {"clientInfo", {{"name", "t"}, {"version", "1"}}}})
                         .dump());
    auto r = get(init);
    EXPECT_EQ(r.status, 200) << r.body;
    auto sid = net::find_header(r.headers, "Mcp-Session-Id");
    EXPECT_TRUE(sid.has_value());
    auto note =
        send(who, "POST", R"({"jsonrpc":"2.0","method":"notifications/initialized"})", sid.value_or(""));
    EXPECT_EQ(get(note).status, 202);
    return sid.value_or("");
  }
  static std::string call_wait(int id) {
    return make_request(id, "tools/call", {{"name", "wait"}, {"arguments", json::object()}}).dump();
  }

  std::shared_ptr<Gate> gate_ = std::make_shared<Gate>();
  std::unique_ptr<Server> server_;
  std::unique_ptr<HttpTransport> transport_;
  std::vector<std::thread> workers_;
};

TEST_F(HttpClientLimitsTest, ConcurrentCallsOfOneCertificateAreCappedUntilTheyAreAnswered) {
  CallLimiter::Options limits;
  limits.max_concurrent = 2;
  start(limits);
  const auto alice = peer("alice"), bob = peer("bob");
  const std::string sid = open_session(alice);
  auto first = send(alice, "POST", call_wait(10), sid);
  auto second = send(alice, "POST", call_wait(11), sid);
  gate_->wait_for_waiters(2);

  auto third = send(alice, "POST", call_wait(12), sid);
  auto refused = get(third);  // answered at once, while the two calls still run
  EXPECT_EQ(refused.status, 429);
  EXPECT_EQ(net::find_header(refused.headers, "Retry-After"), "1");
  auto body = json::parse(refused.body);
  EXPECT_EQ(body["error"]["message"],
            "Too Many Requests: too many concurrent calls for this client certificate (limit 2)");
  EXPECT_EQ(body["error"]["data"]["limit"], "concurrent_calls_per_client");
  EXPECT_TRUE(body["id"].is_null());

  // Another certificate is not affected.
  const std::string bob_sid = open_session(bob);
  auto bobs = send(bob, "POST", call_wait(20), bob_sid);
  gate_->wait_for_waiters(3);

  gate_->release();
  for (auto* f : {&first, &second, &bobs}) EXPECT_EQ(get(*f).status, 200);
  auto again = send(alice, "POST", call_wait(13), sid);  // the slots were given back
  EXPECT_EQ(get(again).status, 200);

  auto s = transport_->client_limit_stats();
  EXPECT_EQ(s.refused_concurrency, 1u);
  EXPECT_EQ(s.keys, 2u);
}

// The slot is given back before the answer is sent: a client that sends its next call as
// soon as it has read an answer is never refused for the call before.
TEST_F(HttpClientLimitsTest, ASlotIsFreeByTheTimeItsAnswerArrives) {
  CallLimiter::Options limits;
  limits.max_concurrent = 1;
  start(limits);
  gate_->release();  // "wait" returns at once
  const auto alice = peer("alice");
  const std::string sid = open_session(alice);
  for (int i = 0; i < 300; ++i) {
    auto r =
        send(alice, "POST",
             i % 2 == 0 ? call_wait(100 + i) : make_request(100 + i, "ping", json::object()).dump(), sid);
    ASSERT_EQ(get(r).status, 200) << "call " << i;
    auto note = send(alice, "POST",
                     R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":0}})", sid);
    ASSERT_EQ(get(note).status, 202) << "notification " << i;
  }
  EXPECT_EQ(transport_->client_limit_stats().refused_concurrency, 0u);
}

// At most handler_threads handlers run at once on the workers that hold their requests; a call
// over that is queued and its worker returns at once (free for a notifications/cancelled or a
// client's answer), and the queued call runs when a running one finishes.
TEST_F(HttpClientLimitsTest, CallsBeyondHandlerThreadsQueueAndTheirWorkerReturns) {
  start(CallLimiter::Options{}, /*handler_threads=*/1);
  const auto alice = peer("alice");
  const std::string sid = open_session(alice);
  auto first = send(alice, "POST", call_wait(10), sid);
  gate_->wait_for_waiters(1);

  auto returned = std::make_shared<std::promise<void>>();
  auto done = returned->get_future();
  auto second = send(alice, "POST", call_wait(11), sid, returned);
  ASSERT_EQ(done.wait_for(10s), std::future_status::ready) << "the worker of a queued call was kept";
  auto note = send(alice, "POST",
                   R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":99}})", sid);
  EXPECT_EQ(get(note).status, 202);  // served while the one handler slot is taken
  {
    std::lock_guard lock(gate_->mu);
    EXPECT_EQ(gate_->waiting, 1) << "a second handler ran beyond handler_threads = 1";
  }
  gate_->release();
  EXPECT_EQ(get(first).status, 200);
  EXPECT_EQ(get(second).status, 200);  // run by the worker that finished the first
}

TEST_F(HttpClientLimitsTest, CallsPerSecondOfOneCertificateAreCappedWithABurst) {
  CallLimiter::Options limits;
  limits.rate_per_second = 0.01;  // one token every 100 s: nothing refills during the test
  limits.burst = 3;
  start(limits);
  const auto alice = peer("alice"), bob = peer("bob");
  const std::string sid = open_session(alice);  // two requests of the burst
  auto ping = send(alice, "POST", make_request(2, "ping", json::object()).dump(), sid);
  EXPECT_EQ(get(ping).status, 200);

  auto over = send(alice, "POST", make_request(3, "ping", json::object()).dump(), sid);
  auto refused = get(over);
  EXPECT_EQ(refused.status, 429);
  EXPECT_EQ(net::find_header(refused.headers, "Retry-After"), "100");
  auto body = json::parse(refused.body);
  EXPECT_EQ(
      body["error"]["message"],
      "Too Many Requests: too many calls per second for this client certificate (limit 0.01/s, burst 3)");
  EXPECT_EQ(body["error"]["data"]["limit"], "calls_per_second_per_client");
  EXPECT_EQ(body["error"]["data"]["retryAfterSeconds"], 100);

  open_session(bob);  // bob's own bucket
  auto s = transport_->client_limit_stats();
  EXPECT_EQ(s.refused_rate, 1u);
  EXPECT_EQ(s.admitted, 5u);
}

TEST_F(HttpClientLimitsTest, NoLimitsByDefaultAndNoneWithoutAPeer) {
  start(CallLimiter::Options{});
  for (int i = 0; i < 50; ++i) {
    auto r = send(peer("alice"), "GET", "");
    EXPECT_NE(get(r).status, 429);
  }
  join_workers();
  transport_.reset();
  CallLimiter::Options tight;
  tight.rate_per_second = 0.01;
  tight.burst = 1;
  start(tight);
  for (int i = 0; i < 5; ++i) {
    auto r = send(nullptr, "GET", "");  // plain HTTP (loopback development): no certificate to count
    EXPECT_NE(get(r).status, 429);
  }
  EXPECT_EQ(transport_->client_limit_stats().keys, 0u);
}

}  // namespace
}  // namespace larder::mcp
