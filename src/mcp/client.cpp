#include "mcp/client.h"
#include "base/text.h"

#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <variant>

#include "mcp/sse.h"
#include "mcp/stdio.h"
#include "mcp/thread_pool.h"

namespace larder::mcp {

// ================================================================ core (transport-independent)
// Matches responses to pending requests and dispatches server-initiated messages.
struct Client::Core : std::enable_shared_from_this<Client::Core> {
  ClientOptions options;
  std::mutex mutex;
  std::condition_variable cv;
  std::int64_t next_id = 1;
  struct Slot {
    bool done = false;
    json response;
  };
  std::unordered_map<std::string, std::shared_ptr<Slot>> pending;
  std::function<larder::Result<void>(const json&)> send;  // set by the client once the transport is up
  // A send that gives up when `cancel` fires (Streamable HTTP: the POST carries the answer,
  // so the request is abandoned with it); unset where sending never waits for the answer.
  std::function<larder::Result<void>(const json&, const CancellationToken&)> send_cancellable;
  ThreadPool callbacks{2};
  std::atomic<bool> closed{false};

  // Everything the transport receives comes through here.
  void on_message(const json& value) {
    if (value.is_array()) {
      // A batch response: its items are messages (a nested array is not).
      for (const auto& v : value) {
        if (v.is_array()) {
          spdlog::warn("mcp client: ignoring a nested batch from the server");
        } else {
          on_message(v);
        }
      }
      return;
    }
    auto classified = classify(value);
    if (!std::holds_alternative<Message>(classified)) {
      spdlog::warn("mcp client: ignoring a malformed message from the server");
      return;
    }
    const Message& m = std::get<Message>(classified);
    if (m.is_response()) {
      std::lock_guard lock(mutex);
      auto it = pending.find(id_key(m.id));
      if (it == pending.end()) return;
      it->second->done = true;
      it->second->response = value;
      pending.erase(it);
      cv.notify_all();
      return;
    }
    if (m.is_notification()) {
      if (options.on_notification) options.on_notification(m.method, m.params);
      return;
    }
    // A server-to-client request: answer off the reader thread.
    callbacks.post([this, m] {
      json reply;
      if (m.method == "ping") {
        reply = make_result(m.id, json::object());
      } else if (!options.on_request) {
        reply = make_error_response(m.id, RpcError::method_not_found(m.method));
      } else {
        auto r = options.on_request(m.method, m.params);
        reply = r ? make_result(m.id, std::move(*r))
                  : make_error_response(
                        m.id, RpcError{error_code::kInternalError, r.error().message, std::nullopt});
      }
      if (send && !closed) {
        if (auto s = send(reply); !s)
          spdlog::warn("mcp client: could not answer {}: {}", m.method, s.error().message);
      }
    });
  }

  larder::Result<json> call(const std::string& method, const json& params,
                            const CancellationToken* cancel = nullptr) {
    auto slot = std::make_shared<Slot>();
    json id;
    {
      std::lock_guard lock(mutex);
      id = next_id++;
      pending[id_key(id)] = slot;
    }
    if (cancel) {
      std::weak_ptr<Core> weak = weak_from_this();
      cancel->on_cancel([weak] {
        if (auto self = weak.lock()) {
          std::lock_guard lock(self->mutex);
          self->cv.notify_all();
        }
      });
    }
    // Cancelled before the answer: forget the request and tell the server
    // (notifications/cancelled, MCP 2025-06-18 "Cancellation"); a late answer is ignored.
    auto abandon = [&]() -> larder::Result<json> {
      {
        std::lock_guard lock(mutex);
        pending.erase(id_key(id));
      }
      if (!closed)
        (void)send(make_notification("notifications/cancelled",
                                     {{"requestId", id}, {"reason", "cancelled by the user"}}));
      return larder::make_error("mcp.cancelled", method + " was cancelled");
    };
    auto request = make_request(id, method, params);
    auto sent = cancel && send_cancellable ? send_cancellable(request, *cancel) : send(request);
    if (!sent) {
      if (cancel && cancel->cancelled()) return abandon();
      std::lock_guard lock(mutex);
      pending.erase(id_key(id));
      return sent.error();
    }
    std::unique_lock lock(mutex);
    auto finished = [&] { return slot->done || closed.load() || (cancel && cancel->cancelled()); };
    if (!cv.wait_for(lock, options.request_timeout, finished) || !slot->done) {
      if (cancel && cancel->cancelled() && !slot->done) {
        lock.unlock();
        return abandon();
      }
      pending.erase(id_key(id));
      lock.unlock();
      (void)send(make_notification("notifications/cancelled", {{"requestId", id}, {"reason", "timed out"}}));
      return larder::make_error("mcp.timeout", method + ": no response from the server within " +
                                                   std::to_string(options.request_timeout.count()) + " ms");
    }
    const json& r = slot->response;
    if (r.contains("error")) {
      const json& e = r["error"];
      // The error's data (a refusal's decision, say) as JSON text in `detail`.
      return larder::make_error("mcp.rpc." + std::to_string(e.value("code", 0)),
                                method + " failed: " + e.value("message", std::string("(no message)")),
                                e.contains("data") ? e["data"].dump() : std::string());
    }
    return r.value("result", json::object());
  }

  void fail_all() {
    std::lock_guard lock(mutex);
    closed = true;
    cv.notify_all();
  }
};

// ================================================================ transports
class ClientTransport {
 public:
  virtual ~ClientTransport() = default;
  virtual larder::Result<void> send(const json& message) = 0;
  virtual void close() = 0;
  virtual std::string name() const = 0;
  virtual void set_protocol_version(const std::string&) {}
};

namespace {

// Where a transport hands the text it receives: parsed under the client's nesting limit
// (base/json.h) and delivered to the core. Text that is not JSON, or nests too deeply, is
// not delivered (a request waiting for it times out; the refusal is logged).
struct Inbox {
  std::function<void(const json&)> deliver;
  std::size_t max_depth = larder::kMaxJsonDepth;

  larder::Result<json> parse(std::string_view text) const {
    return larder::parse_json_bounded(text, max_depth);
  }
  void text(std::string_view text) const {
    auto v = parse(text);
    if (!v) {
      spdlog::warn("mcp client: ignoring a message from the server: {}", v.error().message);
      return;
    }
    deliver(*v);
  }
};

struct ParsedUrl {
  std::string base;  // scheme://host:port
  std::string path;  // /mcp?x
};

larder::Result<ParsedUrl> parse_url(const std::string& url) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return larder::make_error("mcp.url", "not an absolute URL: " + url);
  auto path_start = url.find('/', scheme_end + 3);
  ParsedUrl p;
  p.base = url.substr(0, path_start);
  p.path = path_start == std::string::npos ? "/" : url.substr(path_start);
  return p;
}

// A small pool of HTTP connections (net::HttpClient is one connection, not thread-safe).
class ConnectionPool {
 public:
  ConnectionPool(std::string base, net::TlsClientConfig tls) : base_(std::move(base)), tls_(std::move(tls)) {}
  larder::Result<std::unique_ptr<net::HttpClient>> acquire() {
    {
      std::lock_guard lock(mutex_);
      if (!idle_.empty()) {
        auto c = std::move(idle_.back());
        idle_.pop_back();
        return c;
      }
    }
    return net::HttpClient::create(base_, tls_);
  }
  void release(std::unique_ptr<net::HttpClient> c) {
    std::lock_guard lock(mutex_);
    if (idle_.size() < 8) idle_.push_back(std::move(c));
  }

 private:
  std::string base_;
  net::TlsClientConfig tls_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<net::HttpClient>> idle_;
};

// ---------------------------------------------------------------- Streamable HTTP
class StreamableHttpTransport : public ClientTransport {
 public:
  StreamableHttpTransport(ParsedUrl url, net::TlsClientConfig tls, net::HeaderList headers, Inbox inbox)
      : url_(std::move(url)),
        pool_(url_.base, tls),
        tls_(std::move(tls)),
        headers_(std::move(headers)),
        inbox_(std::move(inbox)) {}
  ~StreamableHttpTransport() override { close(); }

  std::string name() const override { return "streamable-http"; }
  void set_protocol_version(const std::string& v) override {
    std::lock_guard lock(mutex_);
    protocol_version_ = v;
  }

  // Returns the HTTP status of the POST (for the legacy fallback decision).
  larder::Result<int> post(const json& message, const CancellationToken* cancel = nullptr) {
    auto conn = pool_.acquire();
    if (!conn) return conn.error();
    if (cancel) (*conn)->set_interrupt([cancel] { return cancel->cancelled(); });
    net::HeaderList headers = headers_;
    headers.emplace_back("Content-Type", "application/json");
    headers.emplace_back("Accept", "application/json, text/event-stream");
    {
      std::lock_guard lock(mutex_);
      if (!session_id_.empty()) headers.emplace_back("Mcp-Session-Id", session_id_);
      if (!protocol_version_.empty()) headers.emplace_back("MCP-Protocol-Version", protocol_version_);
    }
    bool sse = false;
    std::string json_body;
    SseParser parser([this](const SseEvent& e) {
      if (e.data.empty()) return;
      inbox_.text(e.data);
    });
    int status = 0;
    auto r = (*conn)->request_stream(
        "POST", url_.path, headers, message.dump(),
        [&](const net::ClientResponse& head) {
          status = head.status;
          if (auto sid = head.header("Mcp-Session-Id")) {
            std::lock_guard lock(mutex_);
            session_id_ = *sid;
          }
          auto ct = head.header("Content-Type");
          sse = ct && ascii_lower(*ct).find("text/event-stream") != std::string::npos;
        },
        [&](std::string_view chunk) {
          if (sse) return parser.feed(chunk);
          json_body.append(chunk);
          return json_body.size() < (64u << 20);
        },
        std::chrono::hours(1));
    if (!r) return r.error();
    if (cancel) {
      (*conn)->set_interrupt(nullptr);
      // Cancelled while the answer streamed: the rest of it is unwanted, and so is the connection.
      if (cancel->cancelled()) return larder::make_error("mcp.cancelled", "cancelled");
    }
    pool_.release(std::move(*conn));
    if (!sse && !json_body.empty() && status / 100 == 2) {
      auto v = inbox_.parse(json_body);
      if (!v) {
        return larder::make_error(
            "mcp.http",
            "the server answered with " +
                (v.error().code == "json.too_deep" ? v.error().message : std::string("invalid JSON")));
      }
      inbox_.deliver(*v);
    } else if (status >= 400 && !json_body.empty()) {
      // JSON-RPC errors come with 4xx statuses too; deliver them so the caller sees the code.
      auto v = inbox_.parse(json_body);
      // A refusal the server makes before it reads the body (its per-client limits: 429;
      // overload: 503) cannot name the request's id and says null: it answers this request,
      // which otherwise would wait for an answer that never comes.
      if (v && v->is_object() && v->contains("error") && v->contains("id") && (*v)["id"].is_null() &&
          (status == 429 || status == 503) && message.contains("id") && message.contains("method"))
        (*v)["id"] = message["id"];
      // A 401 may carry the request's whole answer (a refusal as a result: MCP authorization).
      const bool answer = v && v->is_object() && v->contains("id") && !(*v)["id"].is_null() &&
                          (v->contains("error") || (status == 401 && v->contains("result")));
      if (answer) inbox_.deliver(*v);
      if (!answer && (status == 401 || status == 403) && message.contains("id") && message.contains("method"))
        return unauthorized(status);
    } else if ((status == 401 || status == 403) && message.contains("id") && message.contains("method")) {
      return unauthorized(status);
    }
    return status;
  }

  // Nothing answers the request: it fails now rather than at the request timeout.
  static larder::Error unauthorized(int status) {
    return larder::make_error("mcp.unauthorized", "the server refused the credentials (HTTP " +
                                                      std::to_string(status) + "): check the token");
  }

  larder::Result<void> send(const json& message) override { return send(message, nullptr); }
  larder::Result<void> send(const json& message, const CancellationToken* cancel) {
    auto status = post(message, cancel);
    if (!status) return status.error();
    if (*status == 404 && has_session())
      return larder::make_error("mcp.session", "the server no longer knows this session (HTTP 404)");
    if (*status >= 400 && !(message.contains("id") && message.contains("method"))) {
      return larder::make_error("mcp.http",
                                "the server refused the message with HTTP " + std::to_string(*status));
    }
    return {};
  }

  bool has_session() {
    std::lock_guard lock(mutex_);
    return !session_id_.empty();
  }

  void start_listening() {
    listener_ = std::thread([this] {
      std::string last_event_id;
      int failures = 0;
      while (!stopping_ && failures < 5) {
        auto conn = net::HttpClient::create(url_.base, tls_);
        if (!conn) return;
        // close() ends the wait at once (within the 50 ms an interrupt check takes).
        (*conn)->set_interrupt([this] { return stopping_.load(); });
        net::HeaderList headers = headers_;
        headers.emplace_back("Accept", "text/event-stream");
        {
          std::lock_guard lock(mutex_);
          headers.emplace_back("Mcp-Session-Id", session_id_);
          if (!protocol_version_.empty()) headers.emplace_back("MCP-Protocol-Version", protocol_version_);
        }
        if (!last_event_id.empty()) headers.emplace_back("Last-Event-ID", last_event_id);
        SseParser parser([&](const SseEvent& e) {
          if (!e.id.empty()) last_event_id = e.id;
          if (e.data.empty()) return;
          inbox_.text(e.data);
        });
        int status = 0;
        auto r = (*conn)->request_stream(
            "GET", url_.path, headers, "", [&](const net::ClientResponse& h) { status = h.status; },
            [&](std::string_view chunk) { return !stopping_ && parser.feed(chunk); },
            std::chrono::seconds(30));
        if (status == 405 || (status >= 400 && status != 409)) return;  // no standalone stream offered
        if (!r) ++failures;
      }
    });
  }

  void close() override {
    if (closed_.exchange(true)) return;
    stopping_ = true;
    if (listener_.joinable()) listener_.join();
    std::string sid;
    {
      std::lock_guard lock(mutex_);
      sid = session_id_;
    }
    if (!sid.empty()) {
      if (auto conn = pool_.acquire()) {
        net::HeaderList headers = headers_;
        headers.emplace_back("Mcp-Session-Id", sid);
        (void)(*conn)->request("DELETE", url_.path, headers, "", std::chrono::seconds(5));
      }
    }
  }

 private:
  ParsedUrl url_;
  ConnectionPool pool_;
  net::TlsClientConfig tls_;
  net::HeaderList headers_;
  Inbox inbox_;
  std::mutex mutex_;
  std::string session_id_;
  std::string protocol_version_;
  std::thread listener_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> closed_{false};
};

// ---------------------------------------------------------------- legacy HTTP+SSE (2024-11-05)
class LegacySseTransport : public ClientTransport {
 public:
  LegacySseTransport(ParsedUrl url, net::TlsClientConfig tls, net::HeaderList headers, Inbox inbox)
      : url_(std::move(url)),
        pool_(url_.base, tls),
        tls_(std::move(tls)),
        headers_(std::move(headers)),
        inbox_(std::move(inbox)) {}
  ~LegacySseTransport() override { close(); }
  std::string name() const override { return "sse"; }

  larder::Result<void> open() {
    auto conn = net::HttpClient::create(url_.base, tls_);
    if (!conn) return conn.error();
    reader_conn_ = std::move(*conn);
    reader_ = std::thread([this] {
      net::HeaderList headers = headers_;
      headers.emplace_back("Accept", "text/event-stream");
      SseParser parser([this](const SseEvent& e) {
        if (e.event == "endpoint") {
          std::lock_guard lock(mutex_);
          endpoint_ = e.data;
          cv_.notify_all();
          return;
        }
        if (e.data.empty()) return;
        inbox_.text(e.data);
      });
      int status = 0;
      auto r = reader_conn_->request_stream(
          "GET", url_.path, headers, "", [&](const net::ClientResponse& h) { status = h.status; },
          [&](std::string_view chunk) { return !stopping_ && parser.feed(chunk); }, std::chrono::hours(24));
      std::lock_guard lock(mutex_);
      ended_ = true;
      if (!r)
        error_ = r.error().message;
      else if (status != 200)
        error_ = "GET " + url_.path + " answered HTTP " + std::to_string(status);
      cv_.notify_all();
    });
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, std::chrono::seconds(15), [this] { return !endpoint_.empty() || ended_; });
    if (endpoint_.empty()) {
      return larder::make_error("mcp.sse", "the legacy SSE endpoint did not announce its message endpoint" +
                                               (error_.empty() ? std::string() : ": " + error_));
    }
    // The endpoint may be absolute or relative; it must stay on the same origin.
    if (endpoint_.find("://") != std::string::npos) {
      auto parsed = parse_url(endpoint_);
      if (!parsed || parsed->base != url_.base)
        return larder::make_error("mcp.sse", "the server announced a cross-origin endpoint");
      endpoint_ = parsed->path;
    }
    return {};
  }

  larder::Result<void> send(const json& message) override {
    std::string endpoint;
    {
      std::lock_guard lock(mutex_);
      if (ended_)
        return larder::make_error(
            "mcp.sse", "the SSE stream has ended" + (error_.empty() ? std::string() : ": " + error_));
      endpoint = endpoint_;
    }
    auto conn = pool_.acquire();
    if (!conn) return conn.error();
    net::HeaderList headers = headers_;
    headers.emplace_back("Content-Type", "application/json");
    auto r = (*conn)->request("POST", endpoint, headers, message.dump());
    if (!r) return r.error();
    pool_.release(std::move(*conn));
    if (r->status / 100 != 2)
      return larder::make_error("mcp.sse",
                                "POST " + endpoint + " answered HTTP " + std::to_string(r->status));
    return {};
  }

  void close() override {
    if (closed_.exchange(true)) return;
    stopping_ = true;
    // Make the server write something so the reader notices it should stop.
    if (!ended_) (void)send(make_request("close-probe", "ping", nullptr));
    if (reader_.joinable()) reader_.join();
  }

 private:
  ParsedUrl url_;
  ConnectionPool pool_;
  net::TlsClientConfig tls_;
  net::HeaderList headers_;
  Inbox inbox_;
  std::unique_ptr<net::HttpClient> reader_conn_;
  std::thread reader_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::string endpoint_;
  std::string error_;
  bool ended_ = false;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> closed_{false};
};

// ---------------------------------------------------------------- stdio (child process)
class StdioClientTransport : public ClientTransport {
 public:
  explicit StdioClientTransport(Inbox inbox) : inbox_(std::move(inbox)) {}
  ~StdioClientTransport() override { close(); }
  std::string name() const override { return "stdio"; }

  larder::Result<void> spawn(const std::vector<std::string>& argv) {
    if (argv.empty()) return larder::make_error("mcp.stdio", "no command to run");
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0) return larder::make_error("mcp.stdio", "pipe() failed");
    if (pipe2(out, O_CLOEXEC) != 0) {
      ::close(in[0]);
      ::close(in[1]);
      return larder::make_error("mcp.stdio", "pipe() failed");
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_ = fork();
    if (pid_ < 0) return larder::make_error("mcp.stdio", "fork() failed");
    if (pid_ == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      execvp(args[0], args.data());
      _exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    to_child_ = in[1];
    from_child_ = out[0];
    writer_ = std::make_unique<LineWriter>(to_child_);
    reader_ = std::thread([this] {
      LineReader reader(from_child_);
      std::string line;
      while (true) {
        auto st = reader.next(&line);
        if (st == LineReader::Status::kEof || st == LineReader::Status::kError) break;
        if (st != LineReader::Status::kLine) continue;
        inbox_.text(line);
      }
    });
    return {};
  }

  larder::Result<void> send(const json& message) override {
    if (!writer_ || !writer_->send(message))
      return larder::make_error("mcp.stdio", "the server process is gone");
    return {};
  }

  void close() override {
    if (closed_.exchange(true) || pid_ <= 0) return;
    if (writer_) writer_->mark_closed();
    ::close(to_child_);
    // Give the server a moment to exit on EOF, then insist.
    for (int i = 0; i < 50; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      for (int i = 0; i < 50 && waitpid(pid_, nullptr, WNOHANG) != pid_; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      if (waitpid(pid_, nullptr, WNOHANG) == 0) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
      }
    }
    if (reader_.joinable()) reader_.join();
    ::close(from_child_);
  }

 private:
  Inbox inbox_;
  pid_t pid_ = -1;
  int to_child_ = -1, from_child_ = -1;
  std::unique_ptr<LineWriter> writer_;
  std::thread reader_;
  std::atomic<bool> closed_{false};
};

}  // namespace

// ================================================================ client
larder::Result<std::unique_ptr<Client>> Client::connect_http(std::string url, net::TlsClientConfig tls,
                                                             net::HeaderList headers, ClientOptions options) {
  auto parsed = parse_url(url);
  if (!parsed) return parsed.error();
  std::unique_ptr<Client> client(new Client());
  client->core_ = std::make_shared<Core>();
  client->core_->options = options;
  std::weak_ptr<Core> weak = client->core_;
  Inbox deliver{[weak](const json& v) {
                  if (auto c = weak.lock()) c->on_message(v);
                },
                options.max_json_depth};
  auto http = std::make_unique<StreamableHttpTransport>(*parsed, tls, headers, deliver);
  StreamableHttpTransport* raw = http.get();
  client->transport_ = std::move(http);
  client->core_->send = [raw](const json& m) { return raw->send(m); };
  client->core_->send_cancellable = [raw](const json& m, const CancellationToken& c) {
    return raw->send(m, &c);
  };

  // Probe with initialize; a 400/404/405 means a legacy HTTP+SSE server (2025-03-26 §compat).
  auto init = client->initialize();
  if (init) {
    if (options.listen) raw->start_listening();
    return client;
  }
  if (init.error().code != "mcp.legacy_fallback") return init.error();
  spdlog::info(
      "mcp client: {} did not accept a Streamable HTTP initialize; trying the legacy HTTP+SSE transport",
      url);
  client->transport_.reset();
  auto legacy = std::make_unique<LegacySseTransport>(*parsed, tls, headers, deliver);
  if (auto opened = legacy->open(); !opened) return opened.error();
  LegacySseTransport* lraw = legacy.get();
  client->transport_ = std::move(legacy);
  client->core_->send = [lraw](const json& m) { return lraw->send(m); };
  client->core_->send_cancellable = nullptr;
  if (options.protocol_version > "2024-11-05") client->core_->options.protocol_version = "2024-11-05";
  if (auto again = client->initialize(); !again) return again.error();
  return client;
}

larder::Result<std::unique_ptr<Client>> Client::connect_stdio(std::vector<std::string> argv,
                                                              ClientOptions options) {
  std::unique_ptr<Client> client(new Client());
  client->core_ = std::make_shared<Core>();
  client->core_->options = options;
  std::weak_ptr<Core> weak = client->core_;
  auto transport = std::make_unique<StdioClientTransport>(Inbox{[weak](const json& v) {
                                                                  if (auto c = weak.lock()) c->on_message(v);
                                                                },
                                                                options.max_json_depth});
  if (auto s = transport->spawn(argv); !s) return s.error();
  StdioClientTransport* raw = transport.get();
  client->transport_ = std::move(transport);
  client->core_->send = [raw](const json& m) { return raw->send(m); };
  if (auto init = client->initialize(); !init) return init.error();
  return client;
}

Client::~Client() {
  close();
}

void Client::close() {
  if (!core_) return;
  if (transport_) transport_->close();
  core_->fail_all();
  core_->callbacks.shutdown();
}

std::string Client::transport_name() const {
  return transport_ ? transport_->name() : "";
}

larder::Result<void> Client::initialize() {
  json params = {
      {"protocolVersion", core_->options.protocol_version},
      {"capabilities", core_->options.capabilities},
      {"clientInfo", {{"name", core_->options.info.name}, {"version", core_->options.info.version}}}};
  // The Streamable HTTP probe needs the status code: send it directly.
  if (auto* http = dynamic_cast<StreamableHttpTransport*>(transport_.get())) {
    auto slot = std::make_shared<Core::Slot>();
    json id;
    {
      std::lock_guard lock(core_->mutex);
      id = core_->next_id++;
      core_->pending[id_key(id)] = slot;
    }
    auto status = http->post(make_request(id, "initialize", params));
    if (!status) return status.error();
    if (*status == 400 || *status == 404 || *status == 405) {
      std::lock_guard lock(core_->mutex);
      if (!slot->done) {
        core_->pending.erase(id_key(id));
        return larder::make_error("mcp.legacy_fallback",
                                  "initialize answered HTTP " + std::to_string(*status));
      }
    }
    if (*status / 100 != 2 && !slot->done) {
      return larder::make_error("mcp.http", "initialize answered HTTP " + std::to_string(*status));
    }
    std::unique_lock lock(core_->mutex);
    core_->cv.wait_for(lock, core_->options.request_timeout, [&] { return slot->done; });
    if (!slot->done) return larder::make_error("mcp.timeout", "initialize: no response");
    if (slot->response.contains("error")) {
      return larder::make_error(
          "mcp.rpc." + std::to_string(slot->response["error"].value("code", 0)),
          "initialize failed: " + slot->response["error"].value("message", std::string()));
    }
    json result = slot->response.value("result", json::object());
    lock.unlock();
    protocol_version_ = result.value("protocolVersion", "");
    server_info_ = result.value("serverInfo", json::object());
    server_capabilities_ = result.value("capabilities", json::object());
    instructions_ = result.value("instructions", "");
    if (!is_legacy_version(protocol_version_)) {
      return larder::make_error("mcp.version", "the server chose protocol version '" + protocol_version_ +
                                                   "', which this client does not speak");
    }
    http->set_protocol_version(protocol_version_);
    return notify("notifications/initialized");
  }
  auto r = core_->call("initialize", params);
  if (!r) return r.error();
  protocol_version_ = r->value("protocolVersion", "");
  server_info_ = r->value("serverInfo", json::object());
  server_capabilities_ = r->value("capabilities", json::object());
  instructions_ = r->value("instructions", "");
  if (!is_legacy_version(protocol_version_)) {
    return larder::make_error("mcp.version", "the server chose protocol version '" + protocol_version_ +
                                                 "', which this client does not speak");
  }
  return notify("notifications/initialized");
}

larder::Result<json> Client::request(const std::string& method, json params,
                                     const CancellationToken* cancel) {
  return core_->call(method, params, cancel);
}

larder::Result<void> Client::notify(const std::string& method, json params) {
  return core_->send(make_notification(method, params));
}

larder::Result<void> Client::ping() {
  auto r = request("ping");
  if (!r) return r.error();
  return {};
}

larder::Result<std::vector<json>> Client::list_all(const std::string& method, const char* field) {
  std::vector<json> out;
  json params = json::object();
  for (int page = 0; page < 10000; ++page) {
    auto r = request(method, params);
    if (!r) return r.error();
    if (auto items = r->find(field); items != r->end() && items->is_array()) {
      for (auto& i : *items) out.push_back(i);
    }
    auto next = r->find("nextCursor");
    if (next == r->end() || !next->is_string()) return out;
    params = {{"cursor", *next}};
  }
  return larder::make_error("mcp.pagination", method + " did not stop paginating");
}

larder::Result<std::vector<json>> Client::list_tools() {
  return list_all("tools/list", "tools");
}
larder::Result<std::vector<json>> Client::list_resources() {
  return list_all("resources/list", "resources");
}
larder::Result<std::vector<json>> Client::list_resource_templates() {
  return list_all("resources/templates/list", "resourceTemplates");
}
larder::Result<std::vector<json>> Client::list_prompts() {
  return list_all("prompts/list", "prompts");
}

larder::Result<json> Client::call_tool(const std::string& name, json arguments, json meta,
                                       const CancellationToken* cancel) {
  json params = {{"name", name}, {"arguments", std::move(arguments)}};
  if (meta.is_object()) params["_meta"] = std::move(meta);
  return request("tools/call", params, cancel);
}

larder::Result<json> Client::read_resource(const std::string& uri) {
  return request("resources/read", {{"uri", uri}});
}

larder::Result<json> Client::get_prompt(const std::string& name, json arguments) {
  return request("prompts/get", {{"name", name}, {"arguments", std::move(arguments)}});
}

larder::Result<json> Client::complete(json ref, json argument) {
  return request("completion/complete", {{"ref", std::move(ref)}, {"argument", std::move(argument)}});
}

larder::Result<void> Client::set_log_level(LogLevel level) {
  auto r = request("logging/setLevel", {{"level", log_level_name(level)}});
  if (!r) return r.error();
  return {};
}

larder::Result<void> Client::subscribe(const std::string& uri) {
  auto r = request("resources/subscribe", {{"uri", uri}});
  if (!r) return r.error();
  return {};
}

}  // namespace larder::mcp
