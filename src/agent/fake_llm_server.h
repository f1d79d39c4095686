// A loopback HTTP server (plain HTTP on 127.0.0.1) that speaks enough of the Anthropic
// Messages API and the OpenAI Chat Completions API to test Larder's agent: it VALIDATES
// every request's shape (headers, anthropic-version, tool definitions, message
// alternation, tool_result ids answering the previous tool_use ids), replays scripted
// responses in order, and records every request so tests can assert what left the agent.
// A request that breaks the API's rules is answered 400 and listed in violations().
//
// The agent tests use it, and so does `larder demo fake-model` (the recorded-response model
// the demo's printed `larder ask` line talks to when no API key is set): with set_repeat()
// it starts the script over for every new conversation instead of running dry. Namespace
// `testing`: it is a stand-in for a model, never one.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace larder::testing {

struct FakeLlmReply {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // A slow API: the reply is sent this long after the request arrived. If the client hangs
  // up meanwhile (a cancelled request), nothing is sent and abandoned() counts it.
  std::chrono::milliseconds delay{0};
};

struct FakeLlmRequest {
  std::string method;
  std::string path;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  std::vector<std::string> violations;
  std::string header(const std::string& lower_name) const;
};

class FakeLlmServer {
 public:
  enum class Api { Anthropic, OpenAi };

  explicit FakeLlmServer(Api api);
  ~FakeLlmServer();
  FakeLlmServer(const FakeLlmServer&) = delete;
  FakeLlmServer& operator=(const FakeLlmServer&) = delete;

  // Binds 127.0.0.1 on `port` (0: a free one) and starts serving; false (with a message)
  // on failure.
  bool start(std::string* error = nullptr, uint16_t port = 0);
  void stop();
  uint16_t port() const { return port_; }
  // What a provider should use as --base-url ("http://127.0.0.1:P" or "http://127.0.0.1:P/v1").
  std::string base_url() const;

  // When set, a request whose key differs (x-api-key / Authorization: Bearer) gets a 401
  // in the API's error format, without consuming a scripted reply.
  void set_expected_api_key(std::string key);
  void enqueue(FakeLlmReply reply);
  // Loads {"api": "anthropic"|"openai", "responses": [{"status", "headers", "body",
  // "delay_ms"}]} and enqueues its responses. Returns false (with a message) if unreadable or for the other
  // API.
  bool load_script(const std::string& path, std::string* error = nullptr);
  // The same from the script's text; `name` is used in messages.
  bool load_script_text(const std::string& text, const std::string& name, std::string* error = nullptr);
  // Replay the script for ever: a request that opens a conversation (no assistant turn in
  // its messages) gets the first reply, and the script starts over when it runs out. Only
  // the latest 100 requests are kept.
  void set_repeat(bool repeat);

  std::vector<FakeLlmRequest> requests() const;
  std::vector<std::string> violations() const;
  std::size_t pending_replies() const;
  // Delayed replies whose client hung up before the delay was over.
  std::size_t abandoned() const;

  // Shape checks, public so unit tests can feed them bodies directly.
  static std::vector<std::string> validate_anthropic(const FakeLlmRequest& request);
  static std::vector<std::string> validate_openai(const FakeLlmRequest& request);

 private:
  void accept_loop();
  void serve_connection(int fd);
  FakeLlmReply handle(FakeLlmRequest request);

  Api api_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::thread acceptor_;
  mutable std::mutex mu_;
  std::vector<std::thread> connections_;
  std::vector<int> connection_fds_;
  std::vector<FakeLlmReply> script_;
  std::size_t next_ = 0;
  std::vector<FakeLlmRequest> requests_;
  std::string expected_key_;
  bool repeat_ = false;
  bool stopping_ = false;
  std::condition_variable stop_cv_;
  std::size_t abandoned_ = 0;
};

}  // namespace larder::testing
