// The HTTPS server and client against each other with a real throwaway PKI on 127.0.0.1:
// lock 1 refusals, limits, hostile bytes, streaming, resumption and graceful stop.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>

#include <malloc.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <csignal>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

#include "base/files.h"
#include "net/client.h"
#include "net/pki.h"
#include "net/server.h"
#include "support/wait.h"
#include "tls_test_pki.h"

namespace larder::net {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;
using namespace std::chrono_literals;
using larder::testing::CertFiles;
using larder::testing::TlsTestPki;

// A raw connection for sending hostile bytes; every operation is bounded by a timeout.
class RawConn {
 public:
  RawConn(uint16_t port, const std::string& ca, const CertFiles* client, bool tls)
      : ctx_(ssl::context::tls_client) {
    tcp::socket sock(ioc_);
    boost::system::error_code ec;
    sock.connect({asio::ip::make_address("127.0.0.1"), port}, ec);
    connected_ = !ec;
    if (!tls) {
      plain_.emplace(std::move(sock));
      return;
    }
    ctx_.load_verify_file(ca);
    if (client != nullptr) {
      ctx_.use_certificate_chain_file(client->cert);
      ctx_.use_private_key_file(client->key, ssl::context::pem);
    }
    tls_.emplace(std::move(sock), ctx_);
    std::optional<boost::system::error_code> r;
    tls_->async_handshake(ssl::stream_base::client, [&](boost::system::error_code e) { r = e; });
    run(r, 10s);
    handshake_ok_ = r && !*r;
  }
  bool connected() const { return connected_; }
  bool handshake_ok() const { return handshake_ok_; }

  bool write(std::string_view data) {
    std::optional<boost::system::error_code> r;
    auto cb = [&](boost::system::error_code e, std::size_t) { r = e; };
    if (tls_)
      asio::async_write(*tls_, asio::buffer(data), cb);
    else
      asio::async_write(*plain_, asio::buffer(data), cb);
    run(r, 10s);
    return r && !*r;
  }
  // Reads until the peer closes or `timeout` passes; `closed` says which.
  std::string read_until_close(std::chrono::milliseconds timeout, bool* closed) {
    std::string out;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    *closed = false;
    while (std::chrono::steady_clock::now() < deadline) {
      std::optional<boost::system::error_code> r;
      char buf[4096];
      std::size_t got = 0;
      auto cb = [&](boost::system::error_code e, std::size_t n) {
        r = e;
        got = n;
      };
      if (tls_)
        tls_->async_read_some(asio::buffer(buf), cb);
      else
        plain_->async_read_some(asio::buffer(buf), cb);
      run(r,
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()));
      if (!r) break;
      out.append(buf, got);
      if (*r) {
        *closed = true;
        break;
      }
    }
    return out;
  }
  // Reads until `needle` has been seen `count` times, the peer closes, or `timeout`.
  std::string read_until(std::string_view needle, int count, std::chrono::milliseconds timeout) {
    std::string out;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    auto seen = [&] {
      int n = 0;
      for (auto pos = out.find(needle); pos != std::string::npos; pos = out.find(needle, pos + 1)) ++n;
      return n;
    };
    while (seen() < count && std::chrono::steady_clock::now() < deadline) {
      std::optional<boost::system::error_code> r;
      char buf[4096];
      std::size_t got = 0;
      auto cb = [&](boost::system::error_code e, std::size_t n) {
        r = e;
        got = n;
      };
      if (tls_)
        tls_->async_read_some(asio::buffer(buf), cb);
      else
        plain_->async_read_some(asio::buffer(buf), cb);
      run(r,
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()));
      if (!r) break;
      out.append(buf, got);
      if (*r) break;
    }
    return out;
  }
  void close() {
    boost::system::error_code ec;
    socket().close(ec);
  }

 private:
  tcp::socket& socket() { return tls_ ? tls_->next_layer() : *plain_; }
  void run(std::optional<boost::system::error_code>& r, std::chrono::milliseconds timeout) {
    ioc_.restart();
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!r && std::chrono::steady_clock::now() < deadline)
      ioc_.run_one_for(deadline - std::chrono::steady_clock::now());
    if (!r) {
      boost::system::error_code ec;
      socket().close(ec);
      ioc_.restart();
      ioc_.run();
    }
  }
  asio::io_context ioc_;
  ssl::context ctx_;
  std::optional<tcp::socket> plain_;
  std::optional<ssl::stream<tcp::socket>> tls_;
  bool connected_ = false;
  bool handshake_ok_ = false;
};

std::string sha256_of_der_cert_file(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return {};
  X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (cert == nullptr) return {};
  unsigned char* der = nullptr;
  int len = i2d_X509(cert, &der);
  X509_free(cert);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  EVP_Digest(der, static_cast<std::size_t>(len), md, &md_len, EVP_sha256(), nullptr);
  OPENSSL_free(der);
  std::string hex;
  static const char* digits = "0123456789abcdef";
  for (unsigned i = 0; i < md_len; ++i) {
    hex += digits[md[i] >> 4];
    hex += digits[md[i] & 15];
  }
  return hex;
}

class NetServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_ = new TlsTestPki();
    pki::CertSpec alice;
    alice.sans = {"URI:spiffe://larder/alice", "DNS:alice.local"};
    alice_ = new CertFiles(pki_->client("alice", alice));
    bob_ = new CertFiles(pki_->client("bob"));
    auto now = std::chrono::system_clock::now();
    pki::CertSpec expired;
    expired.not_before = now - 72h;
    expired.not_after = now - 24h;
    expired_ = new CertFiles(pki_->client("expired", expired));
    pki::CertSpec future;
    future.not_before = now + 24h;
    future_ = new CertFiles(pki_->client("future", future));
    pki::CertSpec no_eku;
    no_eku.omit_extended_key_usage_for_role = true;
    no_eku_ = new CertFiles(pki_->client("no-eku", no_eku));
    revoked_ = new CertFiles(pki_->client("revoked"));
    pki_->revoke("revoked");
    other_pki_ = new TlsTestPki("Some Other CA");
    stranger_ = new CertFiles(other_pki_->client("alice"));  // same CN, wrong CA
  }
  static void TearDownTestSuite() {
    for (auto* p : {alice_, bob_, expired_, future_, no_eku_, revoked_, stranger_}) delete p;
    delete pki_;
    delete other_pki_;
  }

  void TearDown() override {
    if (server_) server_->stop();
    for (auto& t : threads_) t.join();
  }

  ServerConfig tls_config() {
    ServerConfig cfg;
    cfg.tls.cert_file = pki_->server().cert;
    cfg.tls.key_file = pki_->server().key;
    cfg.tls.client_ca_file = pki_->ca_cert();
    cfg.limits.worker_threads = 4;
    return cfg;
  }

  // Default handler: records the peer, answers "hello <cn>"; a few special paths.
  HttpHandler default_handler() {
    return [this](const HttpRequest& req, std::shared_ptr<Responder> responder) {
      calls_.fetch_add(1);
      {
        std::lock_guard lock(mu_);
        last_request_ = req;
      }
      if (req.path == "/throw") throw std::runtime_error("boom");
      if (req.path == "/drop") return;  // never answers: the server must send 500
      std::string who = req.peer ? req.peer->cn : "plain";
      responder->respond(
          HttpResponse{200,
                       {{"Content-Type", "text/plain"}, {"X-Echo-Len", std::to_string(req.body.size())}},
                       "hello " + who});
    };
  }

  void start(ServerConfig cfg, HttpHandler handler = nullptr) {
    auto s = Server::create(std::move(cfg), handler ? std::move(handler) : default_handler());
    ASSERT_TRUE(s.ok()) << s.error().message;
    server_ = std::move(*s);
    auto r = server_->start();
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_NE(server_->port(), 0);
  }

  std::string url() const { return "https://127.0.0.1:" + std::to_string(server_->port()); }

  std::unique_ptr<HttpClient> client(const CertFiles* files, std::string server_name = "") {
    TlsClientConfig cfg;
    cfg.ca_file = pki_->ca_cert();
    if (files != nullptr) {
      cfg.cert_file = files->cert;
      cfg.key_file = files->key;
    }
    cfg.server_name = std::move(server_name);
    auto c = HttpClient::create(url(), cfg);
    EXPECT_TRUE(c.ok()) << c.error().message;
    return c.ok() ? std::move(*c) : nullptr;
  }

  void expect_refused(const CertFiles* files, const char* what) {
    int before = calls_.load();
    auto c = client(files);
    ASSERT_TRUE(c);
    auto r = c->request("GET", "/", {}, "", 10s);
    EXPECT_FALSE(r.ok()) << what << ": got status " << (r.ok() ? r->status : 0);
    if (!r.ok()) {
      EXPECT_NE(r.error().code, "net.timeout") << what << ": " << r.error().message;
    }
    EXPECT_EQ(calls_.load(), before) << what << ": handler must never run";
  }

  void expect_served(const CertFiles* files = alice_) {
    auto c = client(files);
    ASSERT_TRUE(c);
    auto r = c->request("GET", "/ping", {}, "", 20s);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->status, 200);
  }

  void wait_for_connections(std::size_t n) {
    test::wait_until([&] { return server_->connection_count() >= n; }, 20s, 2ms);
  }

  // The CRL watcher's clock (ServerConfig::crl_clock): it moves only when a test advances it.
  void use_crl_clock(ServerConfig& cfg) {
    cfg.crl_clock = [this] {
      return std::chrono::steady_clock::time_point(std::chrono::steady_clock::duration(crl_clock_.load()));
    };
  }
  void advance_crl_clock(std::chrono::steady_clock::duration d) { crl_clock_.fetch_add(d.count()); }

  static constexpr std::size_t kIdleSockets = 1100;
  static constexpr std::size_t kHalfOpenSockets = 200;
  // The start of a ClientHello: a record header announcing 512 bytes, the handshake header,
  // the version and part of the random — and then nothing.
  static inline const std::string kPartialClientHello =
      std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11) + std::string(40, '\x5a');

  // Every connection here costs this process two descriptors (both ends).
  static void raise_descriptor_limit() {
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
      lim.rlim_cur = lim.rlim_max;
      ::setrlimit(RLIMIT_NOFILE, &lim);
    }
  }
  void open_idle_sockets(asio::io_context& ioc, std::vector<tcp::socket>& out, std::size_t n) {
    tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), server_->port());
    for (std::size_t i = 0; i < n; ++i) {
      out.emplace_back(ioc);
      boost::system::error_code ec;
      out.back().connect(ep, ec);
      ASSERT_FALSE(ec) << "connection " << i << ": " << ec.message();
    }
  }
  void open_half_open_sockets(asio::io_context& ioc, std::vector<tcp::socket>& out, std::size_t n) {
    const std::size_t first = out.size();
    open_idle_sockets(ioc, out, n);
    for (std::size_t i = first; i < out.size(); ++i) {
      boost::system::error_code ec;
      asio::write(out[i], asio::buffer(kPartialClientHello), ec);
      ASSERT_FALSE(ec) << ec.message();
    }
  }
  // True once the server closed `sock` (EOF or reset), false if it is still open after `wait`.
  static bool closed_by_peer(tcp::socket& sock, std::chrono::milliseconds wait) {
    pollfd p{sock.native_handle(), POLLIN | POLLRDHUP, 0};
    if (::poll(&p, 1, static_cast<int>(wait.count())) <= 0) return false;
    char byte;
    return ::recv(sock.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT) <= 0;
  }
  // Bytes allocated on the heap by the whole process (every arena, mmapped chunks too).
  static std::size_t heap_in_use() {
    struct mallinfo2 m = ::mallinfo2();
    return m.uordblks + m.hblkhd;
  }

  static TlsTestPki* pki_;
  static TlsTestPki* other_pki_;
  static CertFiles *alice_, *bob_, *expired_, *future_, *no_eku_, *revoked_, *stranger_;
  std::atomic<std::chrono::steady_clock::rep> crl_clock_{std::chrono::steady_clock::duration(1h).count()};
  std::unique_ptr<Server> server_;
  std::atomic<int> calls_{0};
  std::mutex mu_;
  HttpRequest last_request_;
  std::vector<std::thread> threads_;
};
TlsTestPki* NetServerTest::pki_ = nullptr;
TlsTestPki* NetServerTest::other_pki_ = nullptr;
CertFiles *NetServerTest::alice_, *NetServerTest::bob_, *NetServerTest::expired_, *NetServerTest::future_,
    *NetServerTest::no_eku_, *NetServerTest::revoked_, *NetServerTest::stranger_;

TEST_F(NetServerTest, ValidClientIsServedAndHandlerSeesItsIdentity) {
  start(tls_config());
  auto c = client(alice_);
  ASSERT_TRUE(c);
  auto r = c->request("POST", "/mcp?x=1", {{"Content-Type", "application/json"}}, R"({"a":1})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hello alice");
  EXPECT_EQ(r->header("x-echo-len"), "7");
  std::lock_guard lock(mu_);
  const auto& req = last_request_;
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.target, "/mcp?x=1");
  EXPECT_EQ(req.path, "/mcp");
  EXPECT_EQ(req.query, "x=1");
  EXPECT_EQ(req.body, R"({"a":1})");
  EXPECT_EQ(req.header("content-type"), "application/json");
  EXPECT_TRUE(req.tls);
  EXPECT_EQ(req.remote_address.rfind("127.0.0.1:", 0), 0u) << req.remote_address;
  ASSERT_TRUE(req.peer);
  EXPECT_EQ(req.peer->cn, "alice");
  EXPECT_EQ(req.peer->sans, (std::vector<std::string>{"URI:spiffe://larder/alice", "DNS:alice.local"}));
  EXPECT_EQ(req.peer->cert_sha256, sha256_of_der_cert_file(alice_->cert));
  EXPECT_EQ(req.peer->issuer, "CN=Larder Test CA");
  EXPECT_EQ(req.peer->spki_sha256.size(), 64u);
  auto info = pki::inspect_certificate(*larder::read_file(alice_->cert));
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(req.peer->serial, info->serial);
}

TEST_F(NetServerTest, KeepAliveReusesOneConnectionAndResumptionWorksOnReconnect) {
  start(tls_config());
  auto c = client(alice_);
  ASSERT_TRUE(c);
  for (int i = 0; i < 5; ++i) {
    auto r = c->request("GET", "/", {}, "");
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  EXPECT_EQ(c->connect_count(), 1);
  EXPECT_FALSE(c->session_resumed());
  c->disconnect();
  auto r = c->request("GET", "/", {}, "");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(c->connect_count(), 2);
  EXPECT_TRUE(c->session_resumed());
  std::lock_guard lock(mu_);
  ASSERT_TRUE(last_request_.peer);  // the identity survives resumption
  EXPECT_EQ(last_request_.peer->cn, "alice");
}

TEST_F(NetServerTest, ClientVerifiesServerNameAndIp) {
  start(tls_config());
  auto ok = client(alice_, "localhost");
  ASSERT_TRUE(ok);
  EXPECT_TRUE(ok->request("GET", "/", {}, "").ok());
  auto wrong = client(alice_, "evil.example");
  ASSERT_TRUE(wrong);
  auto r = wrong->request("GET", "/", {}, "");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "tls.handshake");
  // A client trusting another CA refuses our server.
  TlsClientConfig cfg{other_pki_->ca_cert(), alice_->cert, alice_->key, "", false};
  auto other = HttpClient::create(url(), cfg);
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE((*other)->request("GET", "/", {}, "").ok());
}

TEST_F(NetServerTest, RefusedAtHandshake) {
  auto cfg = tls_config();
  cfg.tls.crl_file = pki_->crl();
  start(cfg);
  expect_served(alice_);
  expect_refused(nullptr, "no client certificate");
  expect_refused(stranger_, "certificate from another CA");
  expect_refused(expired_, "expired certificate");
  expect_refused(future_, "not-yet-valid certificate");
  expect_refused(revoked_, "revoked certificate");
  expect_refused(no_eku_, "certificate without clientAuth");
  expect_served(bob_);
}

TEST_F(NetServerTest, RevokedIsAcceptedWithoutCrlButRefusedWithIt) {
  start(tls_config());
  expect_served(revoked_);  // proves the CRL is what refuses it below
  server_->stop();
  auto cfg = tls_config();
  cfg.tls.crl_file = pki_->crl();
  start(cfg);
  expect_refused(revoked_, "revoked certificate");
}

TEST_F(NetServerTest, ARevocationTakesEffectWithoutARestart) {
  CertFiles carol = pki_->client("carol");
  auto cfg = tls_config();
  cfg.tls.crl_file = pki_->crl();
  use_crl_clock(cfg);
  start(cfg);
  auto open = client(&carol);
  ASSERT_TRUE(open);
  auto first = open->request("GET", "/ping", {}, "", 20s);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(first->status, 200);

  pki_->revoke("carol");  // what `larder certs revoke carol` does: a new CRL file
  // The file is looked at no more than once a second (on the watcher's clock): not yet.
  auto early = open->request("GET", "/ping", {}, "", 20s);
  ASSERT_TRUE(early.ok()) << early.error().message;
  EXPECT_EQ(early->status, 200) << "the CRL file was looked at again within a second";
  advance_crl_clock(1100ms);
  int before = calls_.load();
  auto again = open->request("GET", "/ping", {}, "", 20s);  // the connection admitted before
  if (again.ok()) {
    EXPECT_EQ(again->status, 403);
    EXPECT_NE(again->body.find("revoked"), std::string::npos) << again->body;
  }
  EXPECT_EQ(calls_.load(), before) << "the handler must not run for a revoked certificate";
  expect_refused(&carol, "certificate revoked after the server started");
  expect_served(alice_);

  // A CRL file that cannot be parsed keeps the list loaded before (never a silent "no CRL").
  std::string saved;
  {
    std::ifstream in(pki_->crl());
    saved.assign(std::istreambuf_iterator<char>(in), {});
  }
  {
    std::ofstream out(pki_->crl(), std::ios::trunc);
    out << "not a CRL\n";
  }
  advance_crl_clock(1100ms);
  expect_refused(&carol, "revoked, while the CRL file is unreadable");
  expect_served(alice_);
  std::ofstream(pki_->crl(), std::ios::trunc) << saved;
}

TEST_F(NetServerTest, AllowList) {
  auto cfg = tls_config();
  cfg.tls.allowed_clients = {"cn:alice", "sha256:" + sha256_of_der_cert_file(bob_->cert)};
  start(cfg);
  expect_served(alice_);
  expect_served(bob_);
  expect_refused(no_eku_, "valid CA but no clientAuth");
  expect_refused(stranger_, "same CN, other CA");
  server_->stop();
  cfg.tls.allowed_clients = {"san:URI:spiffe://larder/alice"};
  start(cfg);
  expect_served(alice_);
  expect_refused(bob_, "not on the allow-list");
}

// reload_tls (a configuration reload): all or nothing, and for new connections; a connection
// already open is checked against the new allow-list at its next request.
TEST_F(NetServerTest, ReloadTlsIsAllOrNothingAndAppliesToNewConnections) {
  auto cfg = tls_config();
  start(cfg);
  auto open_bob = client(bob_);
  ASSERT_TRUE(open_bob);
  auto first = open_bob->request("GET", "/ping", {}, "", 20s);
  ASSERT_TRUE(first.ok()) << first.error().message;

  // A key that does not belong to the certificate, beside a narrower allow-list: refused
  // whole, nothing changes.
  auto bad = cfg.tls;
  bad.allowed_clients = {"cn:alice"};
  bad.key_file = pki_->store().key_path(pki::CertKind::kClient, "alice");
  EXPECT_FALSE(server_->reload_tls(bad).ok());
  expect_served(bob_);

  auto good = cfg.tls;
  good.allowed_clients = {"cn:alice"};
  auto reloaded = server_->reload_tls(good);
  ASSERT_TRUE(reloaded.ok()) << reloaded.error().message;
  expect_served(alice_);
  expect_refused(bob_, "taken off the allow-list by a reload");
  auto again = open_bob->request("GET", "/ping", {}, "", 20s);
  EXPECT_TRUE(!again.ok() || again->status == 403) << (again.ok() ? again->body : again.error().message);
}

TEST_F(NetServerTest, BodyTooLargeGets413AndHeaderTooLarge431) {
  auto cfg = tls_config();
  cfg.limits.max_body_bytes = 1024;
  cfg.limits.max_header_bytes = 4096;
  start(cfg);
  auto c = client(alice_);
  ASSERT_TRUE(c);
  auto r = c->request("POST", "/", {}, std::string(1024, 'x'));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 200);
  r = c->request("POST", "/", {}, std::string(64 * 1024, 'x'));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(r->header("connection"), "close");
  r = c->request("GET", "/", {{"X-Big", std::string(8000, 'a')}}, "");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 431);
  // Chunked upload over the limit is refused too.
  RawConn raw(server_->port(), pki_->ca_cert(), alice_, true);
  ASSERT_TRUE(raw.handshake_ok());
  std::string chunked = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 4; ++i) chunked += "200\r\n" + std::string(512, 'y') + "\r\n";
  chunked += "0\r\n\r\n";
  raw.write(chunked);
  bool closed = false;
  auto out = raw.read_until_close(10s, &closed);
  EXPECT_EQ(out.rfind("HTTP/1.1 413", 0), 0u) << out;
  expect_served();
}

TEST_F(NetServerTest, MalformedHttpGets400AndServerKeepsServing) {
  start(tls_config());
  for (std::string bad :
       {std::string("NOT HTTP AT ALL\r\n\r\n"), std::string("GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n"),
        std::string("GET / HTTP/1.1\r\nBad Header\r\n\r\n"),
        std::string("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx")}) {
    RawConn raw(server_->port(), pki_->ca_cert(), alice_, true);
    ASSERT_TRUE(raw.handshake_ok());
    raw.write(bad);
    bool closed = false;
    auto out = raw.read_until_close(10s, &closed);
    EXPECT_EQ(out.rfind("HTTP/1.1 400", 0), 0u) << out;
    EXPECT_TRUE(closed);
  }
  EXPECT_EQ(calls_.load(), 0);
  expect_served();
}

TEST_F(NetServerTest, GarbageAndTruncatedTlsDoNotHurtTheServer) {
  auto cfg = tls_config();
  cfg.limits.request_timeout = 1000ms;
  cfg.limits.handshake_timeout = 1000ms;
  start(cfg);
  std::string noise;
  for (int i = 0; i < 8192; ++i) noise.push_back(static_cast<char>((i * 7919 + 13) & 0xff));
  const std::string inputs[] = {
      noise,
      "GET / HTTP/1.1\r\nHost: x\r\n\r\n",                              // plain HTTP on the TLS port
      std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11),  // ClientHello cut short
      std::string("\x16\x03\x03\x40\x00", 5) + std::string(100, '\0'),  // record claiming 16 KiB
      std::string("\x17\x03\x03\x00\x20", 5) + std::string(32, 'A'),    // app data before handshake
  };
  for (const auto& bytes : inputs) {
    RawConn raw(server_->port(), "", nullptr, false);
    ASSERT_TRUE(raw.connected());
    raw.write(bytes);
    bool closed = false;
    auto out = raw.read_until_close(10s, &closed);
    EXPECT_TRUE(closed);
    EXPECT_EQ(out.find("HTTP/1.1 200"), std::string::npos);
  }
  {
    RawConn cut(server_->port(), "", nullptr, false);  // close mid-record
    cut.write(std::string("\x16\x03\x01\x02\x00\x01", 6));
    cut.close();
  }
  // A TLS client that vanishes after the handshake.
  {
    RawConn gone(server_->port(), pki_->ca_cert(), alice_, true);
    EXPECT_TRUE(gone.handshake_ok());
    gone.write("GET / HT");
    gone.close();
  }
  expect_served();
  EXPECT_EQ(calls_.load(), 1);
  EXPECT_GE(server_->stats().handshake_failures, 3u);  // noise, plain HTTP, app data: at once
}

TEST_F(NetServerTest, SlowlorisIsCutOffAfterRequestTimeout) {
  auto cfg = tls_config();
  cfg.limits.request_timeout = 300ms;
  cfg.limits.idle_timeout = 30s;
  start(cfg);
  RawConn raw(server_->port(), pki_->ca_cert(), alice_, true);
  ASSERT_TRUE(raw.handshake_ok());
  std::string request = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + std::string(200, 'z') + "\r\n\r\n";
  bool write_failed = false;
  // Far slower than request_timeout allows: at least 50 ms per byte, ~13 s for the whole request.
  for (char ch : request) {
    if (!raw.write(std::string_view(&ch, 1))) {
      write_failed = true;
      break;
    }
    std::this_thread::sleep_for(50ms);
    if (server_->connection_count() == 0) break;
  }
  bool closed = false;
  auto out = raw.read_until_close(10s, &closed);
  EXPECT_TRUE(closed || write_failed);
  EXPECT_EQ(out.find("HTTP/1.1 200"), std::string::npos);
  EXPECT_EQ(calls_.load(), 0);
  expect_served();
}

// Finding 5: sockets that never finish a TLS handshake — silent ones and ones that stop in
// the middle of their ClientHello — are closed oldest first once max_handshakes of them are
// held, so a real client is admitted however many of them arrived before it. No timeout is
// needed for that (handshake_timeout is far away here).
TEST_F(NetServerTest, IdleAndHalfOpenSocketsCannotStarveARealClient) {
  raise_descriptor_limit();
  auto cfg = tls_config();
  cfg.limits.handshake_timeout = 120s;
  start(cfg);
  asio::io_context ioc;
  std::vector<tcp::socket> held;
  held.reserve(kIdleSockets + kHalfOpenSockets);
  open_idle_sockets(ioc, held, kIdleSockets);
  open_half_open_sockets(ioc, held, kHalfOpenSockets);
  expect_served();  // admitted behind all of them: it is the newest handshake, never evicted
  auto s = server_->stats();
  EXPECT_LE(s.handshaking, cfg.limits.max_handshakes);
  EXPECT_GE(s.handshake_evictions, kIdleSockets + kHalfOpenSockets - cfg.limits.max_handshakes);
  EXPECT_EQ(s.handshake_timeouts, 0u);
  EXPECT_EQ(s.refused_at_capacity, 0u);
  for (auto& sock : held) sock.close();
}

// What a pending handshake costs: no TLS state until the ClientHello record is complete, and
// then only the bytes that arrived. (A full OpenSSL + Asio stream is over 70 KiB.)
TEST_F(NetServerTest, PendingHandshakesAreSmall) {
  raise_descriptor_limit();
  auto cfg = tls_config();
  cfg.limits.handshake_timeout = 120s;
  cfg.limits.max_handshakes = kIdleSockets + kHalfOpenSockets + 10;  // every one is kept
  start(cfg);
  expect_served();  // warm up: contexts, pools, the first session
  ASSERT_TRUE(test::wait_until([&] { return server_->stats().established == 0; }, 5s, 2ms));
  const std::size_t before = heap_in_use();
  asio::io_context ioc;
  std::vector<tcp::socket> held;
  held.reserve(kIdleSockets + kHalfOpenSockets);
  open_idle_sockets(ioc, held, kIdleSockets);
  open_half_open_sockets(ioc, held, kHalfOpenSockets);
  test::wait_until([&] { return server_->stats().handshaking >= held.size(); }, 10s, 2ms);
  ASSERT_EQ(server_->stats().handshaking, held.size());
  const std::size_t after = heap_in_use();
  const double per_socket = after > before ? static_cast<double>(after - before) / held.size() : 0;
  std::printf("heap per pending handshake (server and client side): %.0f bytes\n", per_socket);
  EXPECT_LT(per_socket, 8192.0);
  for (auto& sock : held) sock.close();
}

TEST_F(NetServerTest, HandshakeDeadlineClosesSilentAndStalledSockets) {
  auto cfg = tls_config();
  cfg.limits.handshake_timeout = 300ms;
  cfg.limits.request_timeout = 60s;  // the handshake has its own deadline
  std::mutex timeouts_mu;
  std::condition_variable timeouts_cv;
  int timeouts = 0;
  cfg.on_handshake = [&](std::string_view outcome, std::chrono::steady_clock::duration) {
    if (outcome != "timeout") return;
    std::lock_guard lock(timeouts_mu);
    ++timeouts;
    timeouts_cv.notify_all();
  };
  start(cfg);
  RawConn silent(server_->port(), "", nullptr, false);
  RawConn stalled(server_->port(), "", nullptr, false);
  ASSERT_TRUE(silent.connected());
  ASSERT_TRUE(stalled.connected());
  ASSERT_TRUE(stalled.write(kPartialClientHello));
  bool closed = false;
  silent.read_until_close(10s, &closed);
  EXPECT_TRUE(closed);
  closed = false;
  stalled.read_until_close(10s, &closed);
  EXPECT_TRUE(closed);
  {
    std::unique_lock lock(timeouts_mu);
    EXPECT_TRUE(timeouts_cv.wait_for(lock, 10s, [&] { return timeouts >= 2; }));
  }
  EXPECT_EQ(server_->stats().handshake_timeouts, 2u);
  expect_served();
}

TEST_F(NetServerTest, TheOldestHandshakeIsEvictedFirst) {
  auto cfg = tls_config();
  cfg.limits.max_handshakes = 3;
  cfg.limits.handshake_timeout = 60s;
  start(cfg);
  asio::io_context ioc;
  std::vector<tcp::socket> conns;
  auto open_one = [&] {  // one at a time, so the server accepts them in this order
    const auto accepted = server_->stats().accepted;
    open_idle_sockets(ioc, conns, 1);
    test::wait_until([&] { return server_->stats().accepted != accepted; }, 5s, 2ms);
  };
  for (int i = 0; i < 3; ++i) open_one();
  EXPECT_EQ(server_->stats().handshaking, 3u);
  EXPECT_EQ(server_->stats().handshake_evictions, 0u);
  open_one();  // the 4th closes the 1st
  EXPECT_TRUE(closed_by_peer(conns[0], 10s));
  open_one();  // the 5th closes the 2nd
  EXPECT_TRUE(closed_by_peer(conns[1], 10s));
  for (std::size_t i = 2; i < 5; ++i) EXPECT_FALSE(closed_by_peer(conns[i], 200ms)) << i;
  auto s = server_->stats();
  EXPECT_EQ(s.handshake_evictions, 2u);
  EXPECT_EQ(s.handshaking, 3u);
}

// max_handshakes is about connections that are not authenticated yet: an established
// keep-alive connection stays, however many handshakes pile up behind it.
TEST_F(NetServerTest, AnAuthenticatedConnectionIsNeverEvicted) {
  auto cfg = tls_config();
  cfg.limits.max_handshakes = 2;
  cfg.limits.handshake_timeout = 60s;
  start(cfg);
  auto c = client(alice_);
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->request("GET", "/", {}, "").ok());
  asio::io_context ioc;
  std::vector<tcp::socket> held;
  open_idle_sockets(ioc, held, 50);
  test::wait_until([&] { return server_->stats().accepted >= 51; }, 5s, 2ms);
  auto r = c->request("GET", "/", {}, "");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(c->connect_count(), 1) << "the established connection was closed";
  auto s = server_->stats();
  EXPECT_EQ(s.established, 1u);
  EXPECT_LE(s.handshaking, 2u);
  EXPECT_GE(s.handshake_evictions, 48u);
  for (auto& sock : held) sock.close();
}

// max_connections counts authenticated connections; sockets still in their handshake do not
// take their places.
TEST_F(NetServerTest, MaxConnectionsCountsAuthenticatedConnections) {
  auto cfg = tls_config();
  cfg.limits.max_connections = 2;
  cfg.limits.handshake_timeout = 60s;
  start(cfg);
  asio::io_context ioc;
  std::vector<tcp::socket> idle;
  open_idle_sockets(ioc, idle, 5);
  auto a = client(alice_);
  auto b = client(bob_);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->request("GET", "/", {}, "").ok());
  ASSERT_TRUE(b->request("GET", "/", {}, "").ok());
  EXPECT_EQ(server_->stats().established, 2u);
  expect_refused(alice_, "over max_connections");
  EXPECT_GE(server_->stats().refused_at_capacity, 1u);
  a.reset();  // closes its connection
  test::wait_until([&] { return server_->stats().established <= 1; }, 5s, 2ms);
  expect_served();
  auto r = b->request("GET", "/", {}, "");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(b->connect_count(), 1);
  for (auto& s : idle) s.close();
}

TEST_F(NetServerTest, IdleKeepAliveConnectionIsClosedAndClientReconnects) {
  auto cfg = tls_config();
  cfg.limits.idle_timeout = 200ms;
  start(cfg);
  auto c = client(alice_);
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->request("GET", "/", {}, "").ok());
  EXPECT_TRUE(test::wait_until([&] { return server_->connection_count() == 0; }, 5s, 2ms));
  auto r = c->request("GET", "/", {}, "");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(c->connect_count(), 2);
  EXPECT_TRUE(c->session_resumed());
}

TEST_F(NetServerTest, HandlerFailuresAnswer500) {
  start(tls_config());
  auto c = client(alice_);
  ASSERT_TRUE(c);
  auto r = c->request("GET", "/throw", {}, "");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 500);
  r = c->request("GET", "/drop", {}, "");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 500);
  r = c->request("GET", "/", {}, "");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
}

TEST_F(NetServerTest, InvalidResponseHeadersBecome500) {
  start(tls_config(), [](const HttpRequest&, std::shared_ptr<Responder> responder) {
    responder->respond(HttpResponse{200, {{"X-Bad", "a\r\nInjected: yes"}}, "x"});
  });
  auto c = client(alice_);
  auto r = c->request("GET", "/", {}, "");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 500);
  EXPECT_FALSE(r->header("Injected").has_value());
}

TEST_F(NetServerTest, SseStreamDeliversEventsAndOnCloseFiresWhenClientLeaves) {
  auto closed = std::make_shared<std::promise<void>>();
  auto writer_saw_closed = std::make_shared<std::atomic<bool>>(false);
  start(tls_config(), [this, closed, writer_saw_closed](const HttpRequest& req,
                                                        std::shared_ptr<Responder> responder) {
    if (req.path != "/sse") {
      responder->respond(HttpResponse{404, {}, "no"});
      return;
    }
    auto stream =
        responder->start_stream(200, {{"Content-Type", "text/event-stream"}, {"Cache-Control", "no-cache"}});
    stream->on_close([closed] { closed->set_value(); });
    std::lock_guard lock(mu_);
    threads_.emplace_back([stream, writer_saw_closed] {
      for (int i = 0; i < 3000; ++i) {
        if (!stream->write("id: " + std::to_string(i) + "\ndata: {\"n\":" + std::to_string(i) + "}\n\n")) {
          writer_saw_closed->store(true);
          return;
        }
        std::this_thread::sleep_for(10ms);
      }
    });
  });
  auto c = client(alice_);
  ASSERT_TRUE(c);
  std::string received;
  std::optional<ClientResponse> head;
  auto status = c->request_stream(
      "GET", "/sse", {{"Accept", "text/event-stream"}}, "", [&](const ClientResponse& h) { head = h; },
      [&](std::string_view chunk) {
        received.append(chunk);
        return received.find("data: {\"n\":3}") == std::string::npos;
      },
      20s);
  ASSERT_TRUE(status.ok()) << status.error().message;
  EXPECT_EQ(*status, 200);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->header("content-type"), "text/event-stream");
  EXPECT_NE(received.find("id: 0\ndata: {\"n\":0}\n\n"), std::string::npos);
  EXPECT_EQ(closed->get_future().wait_for(20s), std::future_status::ready)
      << "on_close must fire after the client left";
}

TEST_F(NetServerTest, StreamTimeoutAfterHeadersIsANormalEnd) {
  std::vector<std::shared_ptr<ResponseStream>> streams;
  std::mutex streams_mu;
  auto closed = std::make_shared<std::promise<void>>();
  start(tls_config(), [&, closed](const HttpRequest&, std::shared_ptr<Responder> responder) {
    auto stream = responder->start_stream(200, {{"Content-Type", "text/event-stream"}});
    stream->on_close([closed] { closed->set_value(); });
    stream->write(": open\n\n");
    std::lock_guard lock(streams_mu);
    streams.push_back(stream);  // kept open, silent
  });
  auto c = client(alice_);
  ASSERT_TRUE(c);
  std::string got;
  auto status = c->request_stream(
      "GET", "/sse", {}, "", nullptr,
      [&](std::string_view d) {
        got.append(d);
        return true;
      },
      300ms);
  ASSERT_TRUE(status.ok()) << status.error().message;
  EXPECT_EQ(*status, 200);
  EXPECT_EQ(got, ": open\n\n");
  EXPECT_EQ(closed->get_future().wait_for(10s), std::future_status::ready);
  std::lock_guard lock(streams_mu);
  ASSERT_EQ(streams.size(), 1u);
  EXPECT_TRUE(streams[0]->is_closed());
  EXPECT_FALSE(streams[0]->write("late"));
}

TEST_F(NetServerTest, StreamClosedByHandlerEndsResponseAndConnectionIsReused) {
  // Shared with the callbacks: the last one may run after this body returned (at stop()).
  auto on_close_calls = std::make_shared<std::atomic<int>>(0);
  auto first_close = std::make_shared<std::promise<void>>();
  start(tls_config(),
        [on_close_calls, first_close](const HttpRequest& req, std::shared_ptr<Responder> responder) {
          if (req.path == "/plain") {
            responder->respond(HttpResponse{200, {}, "plain"});
            return;
          }
          auto stream = responder->start_stream(200, {{"Content-Type", "text/event-stream"}});
          stream->on_close([on_close_calls, first_close] {
            if (on_close_calls->fetch_add(1) == 0) first_close->set_value();
          });
          for (int i = 0; i < 3; ++i) EXPECT_TRUE(stream->write("data: " + std::to_string(i) + "\n\n"));
          EXPECT_TRUE(stream->write(""));  // empty writes are ignored, not a terminator
          stream->close();
          stream->close();
        });
  auto c = client(alice_);
  ASSERT_TRUE(c);
  std::string received;
  auto status = c->request_stream(
      "POST", "/stream", {}, "{}", nullptr,
      [&](std::string_view chunk) {
        received.append(chunk);
        return true;
      },
      20s);
  ASSERT_TRUE(status.ok()) << status.error().message;
  EXPECT_EQ(received, "data: 0\n\ndata: 1\n\ndata: 2\n\n");
  auto r = c->request("GET", "/plain", {}, "");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->body, "plain");
  EXPECT_EQ(c->connect_count(), 1);
  EXPECT_EQ(first_close->get_future().wait_for(10s), std::future_status::ready);
  EXPECT_EQ(on_close_calls->load(), 1);
  // The whole stream arrives with the buffered client API too.
  auto whole = c->request("GET", "/stream", {}, "");
  ASSERT_TRUE(whole.ok()) << whole.error().message;
  EXPECT_EQ(whole->body, "data: 0\n\ndata: 1\n\ndata: 2\n\n");
}

TEST_F(NetServerTest, PlainHttpOnlyOnLoopback) {
  ServerConfig cfg;
  cfg.plain_http = true;
  cfg.host = "0.0.0.0";
  auto s = Server::create(cfg, default_handler());
  ASSERT_TRUE(s.ok());
  auto r = (*s)->start();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "net.plain_not_loopback");
  cfg.host = "192.0.2.10";
  s = Server::create(cfg, default_handler());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)->start().error().code, "net.plain_not_loopback");
  // TLS without a client CA is refused at create(): lock 1 is not optional.
  ServerConfig no_ca = tls_config();
  no_ca.tls.client_ca_file.clear();
  EXPECT_FALSE(Server::create(no_ca, default_handler()).ok());

  cfg.host = "127.0.0.1";
  start(cfg);
  TlsClientConfig plain;
  plain.insecure_plain = true;
  auto c = HttpClient::create("http://127.0.0.1:" + std::to_string(server_->port()), plain);
  ASSERT_TRUE(c.ok());
  auto resp = (*c)->request("GET", "/", {}, "");
  ASSERT_TRUE(resp.ok()) << resp.error().message;
  EXPECT_EQ(resp->body, "hello plain");
  std::lock_guard lock(mu_);
  EXPECT_FALSE(last_request_.tls);
  EXPECT_FALSE(last_request_.peer);
}

TEST_F(NetServerTest, BadTlsConfigNamesTheFile) {
  auto cfg = tls_config();
  cfg.tls.cert_file = "/nonexistent/server.crt";
  auto s = Server::create(cfg, default_handler());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("/nonexistent/server.crt"), std::string::npos);
  cfg = tls_config();
  cfg.tls.key_file = pki_->store().key_path(pki::CertKind::kClient, "alice");  // wrong key
  EXPECT_FALSE(Server::create(cfg, default_handler()).ok());
  cfg = tls_config();
  cfg.tls.crl_file = pki_->ca_cert();  // not a CRL
  EXPECT_FALSE(Server::create(cfg, default_handler()).ok());
}

TEST_F(NetServerTest, GracefulStopCompletesInFlightRequest) {
  auto entered = std::make_shared<std::promise<void>>();
  start(tls_config(), [entered](const HttpRequest&, std::shared_ptr<Responder> responder) {
    entered->set_value();
    std::this_thread::sleep_for(300ms);
    responder->respond(HttpResponse{200, {}, "done"});
  });
  auto c = client(alice_);
  ASSERT_TRUE(c);
  auto result = std::async(std::launch::async, [&] { return c->request("GET", "/slow", {}, "", 20s); });
  ASSERT_EQ(entered->get_future().wait_for(20s), std::future_status::ready);
  server_->stop();
  auto r = result.get();
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "done");
  EXPECT_EQ(r->header("connection"), "close");
  EXPECT_EQ(server_->connection_count(), 0u);
  server_.reset();
}

TEST_F(NetServerTest, ManyConcurrentClients) {
  auto cfg = tls_config();
  cfg.limits.io_threads = 2;
  start(cfg);
  std::atomic<int> ok{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 8; ++t) {
    ts.emplace_back([&] {
      auto c = client(alice_);
      if (!c) return;
      for (int i = 0; i < 25; ++i) {
        auto r = c->request("POST", "/", {}, std::string(100, 'q'));
        if (r.ok() && r->status == 200) ok.fetch_add(1);
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), 200);
}

TEST_F(NetServerTest, RunUntilSignalReturnsWhenStoppedElsewhere) {
  start(tls_config());
  auto waiter = std::async(std::launch::async, [this] { server_->run_until_signal(); });
  expect_served();
  for (int i = 0; i < 100 && waiter.wait_for(10ms) != std::future_status::ready; ++i) server_->stop();
  EXPECT_EQ(waiter.wait_for(20s), std::future_status::ready);
}

TEST(NetSignalTest, RunUntilSignalStopsOnSigterm) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        // Ignored until run_until_signal installs its handler, so an early signal is harmless.
        std::signal(SIGTERM, SIG_IGN);
        int code = 1;
        {
          TlsTestPki pki;
          ServerConfig cfg;
          cfg.tls.cert_file = pki.server().cert;
          cfg.tls.key_file = pki.server().key;
          cfg.tls.client_ca_file = pki.ca_cert();
          auto s =
              Server::create(cfg, [](const HttpRequest&, std::shared_ptr<Responder> r) { r->respond({}); });
          if (s.ok() && (*s)->start().ok()) {
            std::thread([] {
              for (;;) {
                std::this_thread::sleep_for(50ms);
                ::kill(::getpid(), SIGTERM);
              }
            }).detach();
            (*s)->run_until_signal();
            code = (*s)->connection_count() == 0 ? 0 : 2;
          }
        }
        std::_Exit(code);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST_F(NetServerTest, PipelinedRequestsAreAnsweredInOrder) {
  start(tls_config());
  RawConn raw(server_->port(), pki_->ca_cert(), alice_, true);
  ASSERT_TRUE(raw.handshake_ok());
  raw.write(
      "GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /c "
      "HTTP/1.1\r\nHost: x\r\n\r\n");
  auto out = raw.read_until("hello alice", 3, 20s);
  std::size_t first = out.find("X-Echo-Len: 0"), second = out.find("X-Echo-Len: 3"),
              third = out.rfind("X-Echo-Len: 0");
  ASSERT_NE(second, std::string::npos) << out;
  EXPECT_LT(first, second);
  EXPECT_LT(second, third);
  EXPECT_EQ(calls_.load(), 3);
}

TEST_F(NetServerTest, ExpectContinueAndHead) {
  start(tls_config());
  RawConn raw(server_->port(), pki_->ca_cert(), alice_, true);
  ASSERT_TRUE(raw.handshake_ok());
  raw.write("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  auto interim = raw.read_until("\r\n\r\n", 1, 10s);
  EXPECT_EQ(interim, "HTTP/1.1 100 Continue\r\n\r\n");
  raw.write("12345");
  auto out = raw.read_until("hello alice", 1, 10s);
  EXPECT_EQ(out.rfind("HTTP/1.1 200", 0), 0u) << out;
  EXPECT_NE(out.find("X-Echo-Len: 5"), std::string::npos) << out;
  raw.write("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
  auto head = raw.read_until("\r\n\r\n", 1, 10s);
  EXPECT_EQ(head.rfind("HTTP/1.1 200", 0), 0u) << head;
  EXPECT_NE(head.find("Content-Length: 11"), std::string::npos) << head;
  raw.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  auto next = raw.read_until("hello alice", 1, 10s);
  EXPECT_EQ(next.rfind("HTTP/1.1 200", 0), 0u) << "HEAD must not have sent a body: " << next;
}

}  // namespace
}  // namespace larder::net
