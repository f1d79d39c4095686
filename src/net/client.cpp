// The HTTPS client: synchronous calls over Asio's asynchronous operations, each bounded by
// a deadline (run_one_for on a private io_context, then cancel by closing the socket).
#include "net/client.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include <arpa/inet.h>

#include <array>
#include <limits>
#include <optional>

#include "net/openssl_util.h"

namespace larder::net {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {
constexpr std::uint64_t kMaxResponseBody = 256ull << 20;

}  // namespace

struct HttpClient::Impl {
  bool tls = true;
  std::string host;  // as in the URL, without brackets
  std::string host_header;
  std::string port;
  std::string prefix;  // path prefix from the base URL ("" or "/x")
  TlsClientConfig cfg;
  asio::io_context ioc{1};
  std::unique_ptr<ssl::context> ctx;
  std::optional<tcp::socket> plain;
  std::optional<ssl::stream<tcp::socket>> secure;
  beast::flat_buffer buffer;
  SSL_SESSION* saved_session = nullptr;
  bool resumed = false;
  int connects = 0;
  std::string request_head;
  std::function<bool()> interrupt;  // set_interrupt()

  ~Impl() {
    drop();
    if (saved_session != nullptr) SSL_SESSION_free(saved_session);
  }

  bool connected() const { return plain.has_value() || secure.has_value(); }

  tcp::socket& socket() { return secure ? secure->next_layer() : *plain; }

  void drop() {
    beast::error_code ec;
    if (secure) {
      // Freeing an SSL that never sent close_notify marks its session unusable; we end the
      // connection on purpose (idle, unwanted stream), so keep the session resumable. Failed
      // handshakes and fatal alerts have already invalidated theirs inside OpenSSL.
      SSL_set_shutdown(secure->native_handle(), SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
      secure->next_layer().close(ec);
      secure.reset();
    }
    if (plain) {
      plain->close(ec);
      plain.reset();
    }
    buffer.clear();
  }

  // Runs one asynchronous operation until it completes or `deadline` passes (then the
  // connection is dropped and timed_out returned).
  template <class Start>
  beast::error_code run(Start&& start, Clock::time_point deadline) {
    std::optional<beast::error_code> result;
    start([&result](beast::error_code ec, auto&&...) { result = ec; });
    ioc.restart();
    bool interrupted = false;
    while (!result) {
      auto now = Clock::now();
      if (now >= deadline) break;
      if (interrupt && interrupt()) {
        interrupted = true;
        break;
      }
      auto slice = deadline - now;
      if (interrupt) slice = std::min<Clock::duration>(slice, std::chrono::milliseconds(50));
      ioc.run_one_for(slice);
    }
    if (!result) {
      beast::error_code ec;
      if (connected()) socket().close(ec);
      ioc.restart();
      ioc.run();  // let the cancelled operation finish
      drop();
      return interrupted ? asio::error::operation_aborted : asio::error::timed_out;
    }
    return *result;
  }

  template <class F>
  auto with_stream(F&& f) {
    if (secure) return f(*secure);
    return f(*plain);
  }

  // Asio keeps its own pointer in the SSL "app data" slot, so ours lives in an ex_data index.
  static int ex_index() {
    static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return index;
  }
  static int on_new_session(SSL* ssl, SSL_SESSION* session) {
    auto* self = static_cast<Impl*>(SSL_get_ex_data(ssl, ex_index()));
    if (self == nullptr) return 0;
    if (self->saved_session != nullptr) SSL_SESSION_free(self->saved_session);
    self->saved_session = session;
    return 1;  // we keep the reference
  }

  larder::Result<void> connect(Clock::time_point deadline) {
    drop();
    resumed = false;
    tcp::resolver resolver(ioc);
    beast::error_code ec;
    auto endpoints = resolver.resolve(host, port, ec);
    if (ec || endpoints.empty()) {
      return make_error("net.resolve", "cannot resolve " + host + ": " + (ec ? ec.message() : "no address"));
    }
    if (!tls) {
      for (const auto& e : endpoints) {
        if (!e.endpoint().address().is_loopback()) {
          return make_error("net.plain_not_loopback",
                            "plain http:// is only allowed to a loopback address, not " + host);
        }
      }
    }
    tcp::socket sock(ioc);
    ec = run([&](auto handler) { asio::async_connect(sock, endpoints, handler); }, deadline);
    if (ec) {
      return make_error(ec == asio::error::timed_out ? "net.timeout" : "net.connect",
                        "cannot connect to " + host + ":" + port + ": " + ec.message());
    }
    sock.set_option(tcp::no_delay(true), ec);
    ++connects;
    if (!tls) {
      plain.emplace(std::move(sock));
      return {};
    }
    secure.emplace(std::move(sock), *ctx);
    SSL* ssl = secure->native_handle();
    SSL_set_ex_data(ssl, ex_index(), this);
    const std::string& name = cfg.server_name.empty() ? host : cfg.server_name;
    unsigned char ipbuf[16];
    bool is_ip =
        inet_pton(AF_INET, name.c_str(), ipbuf) == 1 || inet_pton(AF_INET6, name.c_str(), ipbuf) == 1;
    if (is_ip) {
      if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str()) != 1) {
        drop();
        return make_error("net.config", "bad server IP '" + name + "'");
      }
    } else {
      SSL_set_tlsext_host_name(ssl, name.c_str());
      if (SSL_set1_host(ssl, name.c_str()) != 1) {
        drop();
        return make_error("net.config", "bad server name '" + name + "'");
      }
    }
    if (saved_session != nullptr) SSL_set_session(ssl, saved_session);
    ec = run([&](auto handler) { secure->async_handshake(ssl::stream_base::client, handler); }, deadline);
    if (ec) {
      long verify = SSL_get_verify_result(ssl);
      std::string detail = ec.message();
      if (verify != X509_V_OK) detail += " (" + std::string(X509_verify_cert_error_string(verify)) + ")";
      drop();
      return make_error(ec == asio::error::timed_out ? "net.timeout" : "tls.handshake",
                        "TLS handshake with " + host + ":" + port + " failed: " + detail);
    }
    resumed = SSL_session_reused(ssl) == 1;
    return {};
  }

  larder::Result<void> build_head(const std::string& method, const std::string& target,
                                  const HeaderList& headers, const std::string& body) {
    if (method.empty() || method.find_first_of(" \r\n") != std::string::npos) {
      return make_error("net.request", "invalid HTTP method '" + method + "'");
    }
    std::string full = prefix + target;
    if (full.empty() || full.find_first_of(" \r\n") != std::string::npos) {
      return make_error("net.request", "invalid request target '" + target + "'");
    }
    request_head.clear();
    request_head += method;
    request_head += ' ';
    request_head += full;
    request_head += " HTTP/1.1\r\n";
    bool has_host = false;
    for (const auto& [name, value] : headers) {
      if (!valid_header_field(name, value)) return make_error("net.request", "invalid header '" + name + "'");
      if (iequals(name, "content-length") || iequals(name, "transfer-encoding")) continue;
      if (iequals(name, "host")) has_host = true;
      request_head += name;
      request_head += ": ";
      request_head += value;
      request_head += "\r\n";
    }
    if (!has_host) {
      request_head += "Host: ";
      request_head += host_header;
      request_head += "\r\n";
    }
    if (!body.empty() || (method != "GET" && method != "HEAD" && method != "DELETE" && method != "OPTIONS")) {
      request_head += "Content-Length: ";
      request_head += std::to_string(body.size());
      request_head += "\r\n";
    }
    request_head += "\r\n";
    return {};
  }

  beast::error_code send(const std::string& body, Clock::time_point deadline) {
    if (body.size() <= 64 * 1024) {  // one TLS record, one syscall
      request_head += body;
      auto ec = run(
          [&](auto handler) {
            with_stream([&](auto& s) { asio::async_write(s, asio::buffer(request_head), handler); });
          },
          deadline);
      request_head.resize(request_head.size() - body.size());  // the head is reused on a retry
      return ec;
    }
    std::array<asio::const_buffer, 2> bufs{asio::buffer(request_head), asio::buffer(body)};
    return run([&](auto handler) { with_stream([&](auto& s) { asio::async_write(s, bufs, handler); }); },
               deadline);
  }

  static bool retryable(const beast::error_code& ec) {
    return ec == http::error::end_of_stream || ec == asio::error::eof ||
           ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
           ec == asio::ssl::error::stream_truncated || ec == http::error::partial_message;
  }

  static Error io_error(const beast::error_code& ec, const std::string& what) {
    if (ec == asio::error::operation_aborted) return make_error("net.cancelled", what + ": cancelled");
    return make_error(ec == asio::error::timed_out ? "net.timeout" : "net.io", what + ": " + ec.message());
  }

  template <class Fields>
  static HeaderList headers_of(const Fields& fields) {
    HeaderList out;
    for (const auto& f : fields) {
      auto n = f.name_string();
      auto v = f.value();
      out.emplace_back(std::string(n.data(), n.size()), std::string(v.data(), v.size()));
    }
    return out;
  }
};

HttpClient::HttpClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpClient::~HttpClient() = default;

larder::Result<std::unique_ptr<HttpClient>> HttpClient::create(std::string base_url, TlsClientConfig tls) {
  auto impl = std::make_unique<Impl>();
  std::string_view url(base_url);
  if (url.starts_with("https://")) {
    impl->tls = true;
    url.remove_prefix(8);
  } else if (url.starts_with("http://")) {
    if (!tls.insecure_plain) {
      return make_error("net.config",
                        "plain http:// needs TlsClientConfig::insecure_plain (loopback development only)");
    }
    impl->tls = false;
    url.remove_prefix(7);
  } else {
    return make_error("net.config",
                      "base URL '" + base_url + "' must start with https:// (or http:// for loopback)");
  }
  auto slash = url.find('/');
  std::string_view authority = url.substr(0, slash);
  if (slash != std::string_view::npos) {
    impl->prefix = std::string(url.substr(slash));
    while (!impl->prefix.empty() && impl->prefix.back() == '/') impl->prefix.pop_back();
  }
  impl->host_header = std::string(authority);
  if (authority.starts_with("[")) {
    auto close = authority.find(']');
    if (close == std::string_view::npos)
      return make_error("net.config", "bad IPv6 host in '" + base_url + "'");
    impl->host = std::string(authority.substr(1, close - 1));
    auto rest = authority.substr(close + 1);
    impl->port = rest.starts_with(":") ? std::string(rest.substr(1)) : (impl->tls ? "443" : "80");
  } else {
    auto colon = authority.rfind(':');
    impl->host = std::string(authority.substr(0, colon));
    impl->port = colon == std::string_view::npos ? (impl->tls ? "443" : "80")
                                                 : std::string(authority.substr(colon + 1));
  }
  if (impl->host.empty() || impl->port.empty() ||
      impl->port.find_first_not_of("0123456789") != std::string::npos) {
    return make_error("net.config", "cannot parse host and port from '" + base_url + "'");
  }
  impl->cfg = std::move(tls);
  if (impl->tls) {
    const auto& cfg = impl->cfg;
    if (cfg.ca_file.empty()) return make_error("net.config", "https:// needs ca_file to verify the server");
    impl->ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
    SSL_CTX* c = impl->ctx->native_handle();
    SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
    if (SSL_CTX_load_verify_locations(c, cfg.ca_file.c_str(), nullptr) != 1) {
      return detail::file_load_error("CA bundle", cfg.ca_file, "PEM certificate bundle");
    }
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
    X509_VERIFY_PARAM_set_purpose(SSL_CTX_get0_param(c), X509_PURPOSE_SSL_SERVER);
    if (!cfg.cert_file.empty() || !cfg.key_file.empty()) {
      // The key first, so that a key of another certificate is named as such (server.cpp).
      if (SSL_CTX_use_PrivateKey_file(c, cfg.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
        return detail::file_load_error("client key", cfg.key_file, "PEM private key");
      }
      if (SSL_CTX_use_certificate_chain_file(c, cfg.cert_file.c_str()) != 1) {
        return detail::file_load_error("client certificate", cfg.cert_file, "PEM certificate (chain)");
      }
      if (SSL_CTX_check_private_key(c) != 1) {
        return make_error(
            "file.invalid",
            "client key " + cfg.key_file + " does not belong to the certificate " + cfg.cert_file,
            detail::openssl_errors(""));
      }
    }
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(c, &Impl::on_new_session);
  }
  return std::unique_ptr<HttpClient>(new HttpClient(std::move(impl)));
}

larder::Result<ClientResponse> HttpClient::request(std::string method, std::string target, HeaderList headers,
                                                   std::string body, std::chrono::milliseconds timeout) {
  auto& im = *impl_;
  auto deadline = Clock::now() + timeout;
  if (auto r = im.build_head(method, target, headers, body); !r) return r.error();
  for (int attempt = 0;; ++attempt) {
    bool reused = im.connected();
    if (!reused) {
      if (auto r = im.connect(deadline); !r) return r.error();
    }
    auto ec = im.send(body, deadline);
    if (ec && reused && attempt == 0 && Impl::retryable(ec)) {
      im.drop();
      continue;
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxResponseBody);
    parser.header_limit(1 << 20);
    if (method == "HEAD") parser.skip(true);
    // Even if the write failed, the server may have answered first (e.g. 413 before the body).
    auto rec = im.connected()
                   ? im.run(
                         [&](auto handler) {
                           im.with_stream([&](auto& s) { http::async_read(s, im.buffer, parser, handler); });
                         },
                         deadline)
                   : ec;
    if (rec) {
      bool nothing = !parser.got_some();
      im.drop();
      if (nothing && reused && attempt == 0 && Impl::retryable(rec)) continue;
      return Impl::io_error(ec ? ec : rec, ec ? "sending the request failed" : "reading the response failed");
    }
    auto& msg = parser.get();
    ClientResponse out;
    out.status = static_cast<int>(msg.result_int());
    out.headers = Impl::headers_of(msg);
    out.body = std::move(msg.body());
    if (!msg.keep_alive() || ec) im.drop();
    return out;
  }
}

larder::Result<int> HttpClient::request_stream(std::string method, std::string target, HeaderList headers,
                                               std::string body,
                                               std::function<void(const ClientResponse& head)> on_headers,
                                               std::function<bool(std::string_view chunk)> on_data,
                                               std::chrono::milliseconds timeout) {
  auto& im = *impl_;
  auto deadline = Clock::now() + timeout;
  if (auto r = im.build_head(method, target, headers, body); !r) return r.error();
  std::optional<http::response_parser<http::buffer_body>> parser;
  for (int attempt = 0;; ++attempt) {
    bool reused = im.connected();
    if (!reused) {
      if (auto r = im.connect(deadline); !r) return r.error();
    }
    auto ec = im.send(body, deadline);
    if (ec && reused && attempt == 0 && Impl::retryable(ec)) {
      im.drop();
      continue;
    }
    parser.emplace();
    parser->body_limit(std::numeric_limits<std::uint64_t>::max());
    parser->header_limit(1 << 20);
    auto rec =
        im.connected()
            ? im.run(
                  [&](auto handler) {
                    im.with_stream([&](auto& s) { http::async_read_header(s, im.buffer, *parser, handler); });
                  },
                  deadline)
            : ec;
    if (rec) {
      bool nothing = !parser->got_some();
      im.drop();
      if (nothing && reused && attempt == 0 && Impl::retryable(rec)) continue;
      return Impl::io_error(ec ? ec : rec, ec ? "sending the request failed" : "reading the response failed");
    }
    break;
  }
  auto& msg = parser->get();
  ClientResponse head;
  head.status = static_cast<int>(msg.result_int());
  head.headers = Impl::headers_of(msg);
  bool keep = msg.keep_alive();
  if (on_headers) on_headers(head);
  std::array<char, 16384> chunk;
  while (!parser->is_done()) {
    msg.body().data = chunk.data();
    msg.body().size = chunk.size();
    auto ec = im.run(
        [&](auto handler) {
          im.with_stream([&](auto& s) { http::async_read_some(s, im.buffer, *parser, handler); });
        },
        deadline);
    if (ec == http::error::need_buffer) ec = {};
    if (ec == asio::error::timed_out)
      return head.status;  // the caller's time is up: a normal end (run() dropped the connection)
    if (ec) {
      im.drop();
      return Impl::io_error(ec, "reading the response stream failed");
    }
    std::size_t n = chunk.size() - msg.body().size;
    if (n > 0 && on_data && !on_data(std::string_view(chunk.data(), n))) {
      im.drop();  // the rest of the response is unwanted; this connection cannot be reused
      return head.status;
    }
  }
  if (!keep) im.drop();
  return head.status;
}

void HttpClient::set_interrupt(std::function<bool()> check) {
  impl_->interrupt = std::move(check);
}
bool HttpClient::session_resumed() const {
  return impl_->resumed;
}
void HttpClient::disconnect() {
  impl_->drop();
}
int HttpClient::connect_count() const {
  return impl_->connects;
}

}  // namespace larder::net
