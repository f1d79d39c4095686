#include "agent/fake_llm_server.h"
#include "base/files.h"
#include "base/text.h"

#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

namespace larder::testing {

using nlohmann::json;

namespace {

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// ^[a-zA-Z0-9_-]{1,64}$
bool valid_tool_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(),
                     [](unsigned char c) { return std::isalnum(c) || c == '_' || c == '-'; });
}

const char* reason_phrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    case 529:
      return "Overloaded";
    default:
      return "Status";
  }
}

bool send_all(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

std::string anthropic_error(const std::string& type, const std::string& message) {
  return json{{"type", "error"}, {"error", {{"type", type}, {"message", message}}}}.dump();
}

std::string openai_error(const std::string& type, const std::string& message) {
  return json{{"error", {{"message", message}, {"type", type}, {"code", nullptr}}}}.dump();
}

void check_tool_schema(const json& schema, const std::string& where, std::vector<std::string>& v) {
  if (!schema.is_object()) {
    v.push_back(where + " must be an object");
    return;
  }
  if (schema.value("type", "") != "object") v.push_back(where + ".type must be \"object\"");
  if (schema.contains("properties") && !schema["properties"].is_object())
    v.push_back(where + ".properties must be an object");
  if (schema.contains("required") && !schema["required"].is_array())
    v.push_back(where + ".required must be an array");
}

}  // namespace

std::string FakeLlmRequest::header(const std::string& lower_name) const {
  for (const auto& [k, val] : headers)
    if (k == lower_name) return val;
  return "";
}

std::vector<std::string> FakeLlmServer::validate_anthropic(const FakeLlmRequest& r) {
  std::vector<std::string> v;
  if (r.method != "POST") v.push_back("method must be POST, got " + r.method);
  if (r.path != "/v1/messages") v.push_back("path must be /v1/messages, got " + r.path);
  if (r.header("x-api-key").empty()) v.push_back("missing x-api-key header");
  if (r.header("anthropic-version") != "2023-06-01")
    v.push_back("anthropic-version must be 2023-06-01, got '" + r.header("anthropic-version") + "'");
  if (r.header("content-type").rfind("application/json", 0) != 0)
    v.push_back("content-type must be application/json");
  if (!r.header("authorization").empty())
    v.push_back("Anthropic requests must not carry an Authorization header");
  json body = json::parse(r.body, nullptr, false);
  if (!body.is_object()) {
    v.push_back("body is not a JSON object");
    return v;
  }
  static const std::set<std::string> kTop = {"model", "max_tokens",     "messages",    "system",
                                             "tools", "tool_choice",    "temperature", "top_p",
                                             "top_k", "stop_sequences", "stream",      "metadata"};
  for (auto it = body.begin(); it != body.end(); ++it)
    if (!kTop.count(it.key())) v.push_back("unknown top-level field '" + it.key() + "'");
  if (!body.contains("model") || !body["model"].is_string() || body["model"].get<std::string>().empty())
    v.push_back("model must be a non-empty string");
  if (!body.contains("max_tokens") || !body["max_tokens"].is_number_integer() ||
      body["max_tokens"].get<long>() < 1)
    v.push_back("max_tokens must be a positive integer");
  if (body.contains("system") && !body["system"].is_string() && !body["system"].is_array())
    v.push_back("system must be a string or an array of text blocks");
  if (body.contains("tools")) {
    if (!body["tools"].is_array()) {
      v.push_back("tools must be an array");
    } else {
      std::set<std::string> names;
      for (size_t i = 0; i < body["tools"].size(); ++i) {
        const json& t = body["tools"][i];
        std::string where = "tools[" + std::to_string(i) + "]";
        if (!t.is_object()) {
          v.push_back(where + " must be an object");
          continue;
        }
        for (auto it = t.begin(); it != t.end(); ++it)
          if (it.key() != "name" && it.key() != "description" && it.key() != "input_schema" &&
              it.key() != "cache_control")
            v.push_back(where + " has unknown field '" + it.key() + "'");
        std::string name = t.contains("name") && t["name"].is_string() ? t["name"].get<std::string>() : "";
        if (!valid_tool_name(name))
          v.push_back(where + ".name '" + name + "' must match ^[a-zA-Z0-9_-]{1,64}$");
        if (!names.insert(name).second) v.push_back(where + ".name '" + name + "' is not unique");
        if (t.contains("description") && !t["description"].is_string())
          v.push_back(where + ".description must be a string");
        if (!t.contains("input_schema"))
          v.push_back(where + ".input_schema is required");
        else
          check_tool_schema(t["input_schema"], where + ".input_schema", v);
      }
    }
  }
  if (!body.contains("messages") || !body["messages"].is_array() || body["messages"].empty()) {
    v.push_back("messages must be a non-empty array");
    return v;
  }
  const json& msgs = body["messages"];
  std::vector<std::string> open_tool_uses;  // ids the next user turn must answer
  for (size_t i = 0; i < msgs.size(); ++i) {
    const json& m = msgs[i];
    std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
      v.push_back(where + " needs a role");
      continue;
    }
    std::string role = m["role"].get<std::string>();
    std::string expected = i % 2 == 0 ? "user" : "assistant";
    if (role != expected)
      v.push_back(where + ".role must be " + expected + " (roles alternate, starting with user), got " +
                  role);
    if (!m.contains("content")) {
      v.push_back(where + ".content is required");
      continue;
    }
    const json& c = m["content"];
    if (c.is_string()) {
      if (!open_tool_uses.empty()) v.push_back(where + " must answer tool_use ids with tool_result blocks");
      open_tool_uses.clear();
      continue;
    }
    if (!c.is_array() || c.empty()) {
      v.push_back(where + ".content must be a string or a non-empty array of blocks");
      continue;
    }
    std::vector<std::string> answered;
    bool seen_other = false;
    std::vector<std::string> new_uses;
    for (size_t k = 0; k < c.size(); ++k) {
      const json& b = c[k];
      std::string bw = where + ".content[" + std::to_string(k) + "]";
      std::string type = b.is_object() ? b.value("type", "") : "";
      if (type == "text") {
        if (!b.contains("text") || !b["text"].is_string())
          v.push_back(bw + ".text must be a string");
        else if (b["text"].get<std::string>().empty())
          v.push_back(bw + ".text must not be empty");
        seen_other = true;
      } else if (type == "tool_use") {
        if (role != "assistant") v.push_back(bw + ": tool_use only in assistant turns");
        if (!b.contains("id") || !b["id"].is_string())
          v.push_back(bw + ".id must be a string");
        else
          new_uses.push_back(b["id"].get<std::string>());
        if (!b.contains("name") || !b["name"].is_string()) v.push_back(bw + ".name must be a string");
        if (!b.contains("input") || !b["input"].is_object()) v.push_back(bw + ".input must be an object");
        seen_other = true;
      } else if (type == "tool_result") {
        if (role != "user") v.push_back(bw + ": tool_result only in user turns");
        if (seen_other) v.push_back(bw + ": tool_result blocks must come first in the user turn");
        std::string id = b.contains("tool_use_id") && b["tool_use_id"].is_string()
                             ? b["tool_use_id"].get<std::string>()
                             : "";
        if (std::find(open_tool_uses.begin(), open_tool_uses.end(), id) == open_tool_uses.end())
          v.push_back(bw + ".tool_use_id '" + id +
                      "' does not match a tool_use id of the previous assistant turn");
        answered.push_back(id);
        if (b.contains("content") && !b["content"].is_string() && !b["content"].is_array())
          v.push_back(bw + ".content must be a string or an array of blocks");
        if (b.contains("is_error") && !b["is_error"].is_boolean())
          v.push_back(bw + ".is_error must be a boolean");
      } else {
        v.push_back(bw + ": unknown block type '" + type + "'");
      }
    }
    if (role == "user") {
      for (const auto& id : open_tool_uses)
        if (std::find(answered.begin(), answered.end(), id) == answered.end())
          v.push_back(where + " does not answer tool_use id '" + id + "' with a tool_result");
      open_tool_uses.clear();
    } else {
      open_tool_uses = new_uses;
    }
  }
  if (msgs.back().is_object() && msgs.back().value("role", "") != "user")
    v.push_back("the last message must be a user turn");
  return v;
}

std::vector<std::string> FakeLlmServer::validate_openai(const FakeLlmRequest& r) {
  std::vector<std::string> v;
  if (r.method != "POST") v.push_back("method must be POST, got " + r.method);
  if (r.path != "/v1/chat/completions") v.push_back("path must be /v1/chat/completions, got " + r.path);
  if (r.header("content-type").rfind("application/json", 0) != 0)
    v.push_back("content-type must be application/json");
  std::string auth = r.header("authorization");
  if (!auth.empty() && auth.rfind("Bearer ", 0) != 0) v.push_back("Authorization must be 'Bearer <key>'");
  json body = json::parse(r.body, nullptr, false);
  if (!body.is_object()) {
    v.push_back("body is not a JSON object");
    return v;
  }
  if (!body.contains("model") || !body["model"].is_string() || body["model"].get<std::string>().empty())
    v.push_back("model must be a non-empty string");
  if (body.contains("max_tokens") &&
      (!body["max_tokens"].is_number_integer() || body["max_tokens"].get<long>() < 1))
    v.push_back("max_tokens must be a positive integer");
  if (body.contains("tools")) {
    if (!body["tools"].is_array()) {
      v.push_back("tools must be an array");
    } else {
      std::set<std::string> names;
      for (size_t i = 0; i < body["tools"].size(); ++i) {
        const json& t = body["tools"][i];
        std::string where = "tools[" + std::to_string(i) + "]";
        if (!t.is_object() || t.value("type", "") != "function" || !t.contains("function") ||
            !t["function"].is_object()) {
          v.push_back(where + " must be {\"type\":\"function\",\"function\":{...}}");
          continue;
        }
        const json& f = t["function"];
        std::string name = f.contains("name") && f["name"].is_string() ? f["name"].get<std::string>() : "";
        if (!valid_tool_name(name))
          v.push_back(where + ".function.name '" + name + "' must match ^[a-zA-Z0-9_-]{1,64}$");
        if (!names.insert(name).second) v.push_back(where + ".function.name '" + name + "' is not unique");
        if (f.contains("description") && !f["description"].is_string())
          v.push_back(where + ".function.description must be a string");
        if (f.contains("parameters")) check_tool_schema(f["parameters"], where + ".function.parameters", v);
      }
    }
  }
  if (!body.contains("messages") || !body["messages"].is_array() || body["messages"].empty()) {
    v.push_back("messages must be a non-empty array");
    return v;
  }
  std::vector<std::string> open_calls;
  bool seen_user = false;
  const json& msgs = body["messages"];
  for (size_t i = 0; i < msgs.size(); ++i) {
    const json& m = msgs[i];
    std::string where = "messages[" + std::to_string(i) + "]";
    std::string role =
        m.is_object() && m.contains("role") && m["role"].is_string() ? m["role"].get<std::string>() : "";
    if (role == "system") {
      if (i != 0) v.push_back(where + ": the system message must come first");
      if (!m.contains("content") || !m["content"].is_string())
        v.push_back(where + ".content must be a string");
    } else if (role == "user") {
      if (!open_calls.empty())
        v.push_back(where + ": tool_calls " + open_calls.front() + " not answered by a tool message");
      open_calls.clear();
      if (!m.contains("content") || (!m["content"].is_string() && !m["content"].is_array()))
        v.push_back(where + ".content must be a string");
      seen_user = true;
    } else if (role == "assistant") {
      if (!seen_user) v.push_back(where + ": an assistant message before any user message");
      if (!open_calls.empty())
        v.push_back(where + ": tool_calls " + open_calls.front() + " not answered by a tool message");
      open_calls.clear();
      bool has_content = m.contains("content") && m["content"].is_string();
      if (m.contains("content") && !m["content"].is_string() && !m["content"].is_null())
        v.push_back(where + ".content must be a string or null");
      if (m.contains("tool_calls")) {
        if (!m["tool_calls"].is_array() || m["tool_calls"].empty()) {
          v.push_back(where + ".tool_calls must be a non-empty array");
        } else {
          for (size_t k = 0; k < m["tool_calls"].size(); ++k) {
            const json& tc = m["tool_calls"][k];
            std::string tw = where + ".tool_calls[" + std::to_string(k) + "]";
            if (!tc.is_object() || !tc.contains("id") || !tc["id"].is_string()) {
              v.push_back(tw + ".id must be a string");
              continue;
            }
            open_calls.push_back(tc["id"].get<std::string>());
            if (tc.value("type", "") != "function") v.push_back(tw + ".type must be \"function\"");
            if (!tc.contains("function") || !tc["function"].is_object() || !tc["function"].contains("name") ||
                !tc["function"].contains("arguments") || !tc["function"]["arguments"].is_string())
              v.push_back(tw + ".function needs a name and arguments as a JSON string");
          }
        }
      } else if (!has_content) {
        v.push_back(where + ": an assistant message needs content or tool_calls");
      }
    } else if (role == "tool") {
      std::string id = m.contains("tool_call_id") && m["tool_call_id"].is_string()
                           ? m["tool_call_id"].get<std::string>()
                           : "";
      auto it = std::find(open_calls.begin(), open_calls.end(), id);
      if (it == open_calls.end())
        v.push_back(where + ".tool_call_id '" + id + "' does not answer a pending tool call");
      else
        open_calls.erase(it);
      if (!m.contains("content") || !m["content"].is_string())
        v.push_back(where + ".content must be a string");
    } else {
      v.push_back(where + ": unknown role '" + role + "'");
    }
  }
  if (!open_calls.empty()) v.push_back("tool call " + open_calls.front() + " was never answered");
  return v;
}

FakeLlmServer::FakeLlmServer(Api api) : api_(api) {}

FakeLlmServer::~FakeLlmServer() {
  stop();
}

std::string FakeLlmServer::base_url() const {
  std::string url = "http://127.0.0.1:" + std::to_string(port_);
  return api_ == Api::OpenAi ? url + "/v1" : url;
}

void FakeLlmServer::set_expected_api_key(std::string key) {
  std::lock_guard lock(mu_);
  expected_key_ = std::move(key);
}

void FakeLlmServer::enqueue(FakeLlmReply reply) {
  std::lock_guard lock(mu_);
  script_.push_back(std::move(reply));
}

bool FakeLlmServer::load_script(const std::string& path, std::string* error) {
  auto text = read_file(path);
  if (!text) {
    if (error) *error = path + ": cannot read the file";
    return false;
  }
  return load_script_text(*text, path, error);
}

void FakeLlmServer::set_repeat(bool repeat) {
  std::lock_guard lock(mu_);
  repeat_ = repeat;
}

bool FakeLlmServer::load_script_text(const std::string& text, const std::string& name, std::string* error) {
  json doc = json::parse(text, nullptr, false);
  auto fail = [&](const std::string& m) {
    if (error) *error = name + ": " + m;
    return false;
  };
  if (!doc.is_object()) return fail("not a readable JSON object");
  std::string api = doc.value("api", "");
  if (api != (api_ == Api::Anthropic ? "anthropic" : "openai"))
    return fail("script is for api '" + api + "'");
  if (!doc.contains("responses") || !doc["responses"].is_array()) return fail("missing 'responses' array");
  for (const auto& r : doc["responses"]) {
    FakeLlmReply reply;
    reply.status = r.value("status", 200);
    if (r.contains("headers") && r["headers"].is_object())
      for (auto it = r["headers"].begin(); it != r["headers"].end(); ++it)
        reply.headers.emplace_back(it.key(), it.value().get<std::string>());
    reply.body =
        r.contains("body") ? (r["body"].is_string() ? r["body"].get<std::string>() : r["body"].dump()) : "";
    if (r.contains("delay_ms") && r["delay_ms"].is_number_unsigned())
      reply.delay = std::chrono::milliseconds(r["delay_ms"].get<std::uint64_t>());
    enqueue(std::move(reply));
  }
  return true;
}

std::vector<FakeLlmRequest> FakeLlmServer::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

std::vector<std::string> FakeLlmServer::violations() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (size_t i = 0; i < requests_.size(); ++i)
    for (const auto& v : requests_[i].violations)
      out.push_back("request " + std::to_string(i + 1) + ": " + v);
  return out;
}

std::size_t FakeLlmServer::abandoned() const {
  std::lock_guard lock(mu_);
  return abandoned_;
}

std::size_t FakeLlmServer::pending_replies() const {
  std::lock_guard lock(mu_);
  return script_.size() - next_;
}

bool FakeLlmServer::start(std::string* error, uint16_t port) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) {
    if (error) *error = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 16) != 0) {
    if (error) *error = "bind/listen on 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(errno);
    ::close(listen_fd_);
    listen_fd_ = -1;
    return false;
  }
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
  return true;
}

void FakeLlmServer::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ || listen_fd_ < 0) return;
    stopping_ = true;
    stop_cv_.notify_all();
    for (int fd : connection_fds_) ::shutdown(fd, SHUT_RDWR);
  }
  ::shutdown(listen_fd_, SHUT_RDWR);
  if (acceptor_.joinable()) acceptor_.join();
  ::close(listen_fd_);
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mu_);
    threads.swap(connections_);
  }
  for (auto& t : threads) t.join();
}

void FakeLlmServer::accept_loop() {
  for (;;) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR) continue;
      return;  // shut down
    }
    std::lock_guard lock(mu_);
    if (stopping_) {
      ::close(fd);
      return;
    }
    timeval tv{10, 0};  // a stuck client cannot hang the test forever
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    connection_fds_.push_back(fd);
    connections_.emplace_back([this, fd] { serve_connection(fd); });
  }
}

void FakeLlmServer::serve_connection(int fd) {
  std::string buffer;
  char chunk[8192];
  for (;;) {
    size_t header_end;
    while ((header_end = buffer.find("\r\n\r\n")) == std::string::npos) {
      ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) goto done;
      buffer.append(chunk, static_cast<size_t>(n));
      if (buffer.size() > (1u << 20)) goto done;
    }
    {
      FakeLlmRequest request;
      std::istringstream head(buffer.substr(0, header_end));
      std::string line;
      std::getline(head, line);
      std::istringstream first(line);
      std::string target, version;
      first >> request.method >> target >> version;
      request.path = target.substr(0, target.find('?'));
      size_t content_length = 0;
      bool close_after = false;
      while (std::getline(head, line)) {
        auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        std::string name = ascii_lower(trim(line.substr(0, colon)));
        std::string value = trim(line.substr(colon + 1));
        if (name == "content-length") content_length = std::stoul(value);
        if (name == "connection" && ascii_lower(value) == "close") close_after = true;
        request.headers.emplace_back(name, value);
      }
      buffer.erase(0, header_end + 4);
      while (buffer.size() < content_length) {
        ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0) goto done;
        buffer.append(chunk, static_cast<size_t>(n));
      }
      request.body = buffer.substr(0, content_length);
      buffer.erase(0, content_length);
      FakeLlmReply reply = handle(std::move(request));
      if (reply.delay.count() > 0) {
        // Wait out the delay, watching for the client to hang up (readable with 0 bytes).
        const auto until = std::chrono::steady_clock::now() + reply.delay;
        bool gone = false;
        while (!gone && std::chrono::steady_clock::now() < until) {
          {
            std::unique_lock lock(mu_);
            if (stop_cv_.wait_for(lock, std::chrono::milliseconds(20), [this] { return stopping_; }))
              goto done;
          }
          pollfd p{fd, POLLIN, 0};
          char peek;
          if (::poll(&p, 1, 0) > 0 &&
              (::recv(fd, &peek, 1, MSG_PEEK | MSG_DONTWAIT) == 0 || (p.revents & (POLLHUP | POLLERR))))
            gone = true;
        }
        if (gone) {
          std::lock_guard lock(mu_);
          ++abandoned_;
          goto done;
        }
      }
      std::string out =
          "HTTP/1.1 " + std::to_string(reply.status) + " " + reason_phrase(reply.status) + "\r\n";
      out +=
          "Content-Type: application/json\r\nContent-Length: " + std::to_string(reply.body.size()) + "\r\n";
      for (const auto& [k, val] : reply.headers) out += k + ": " + val + "\r\n";
      if (close_after) out += "Connection: close\r\n";
      out += "\r\n" + reply.body;
      if (!send_all(fd, out) || close_after) goto done;
    }
  }
done:
  std::lock_guard lock(mu_);
  connection_fds_.erase(std::remove(connection_fds_.begin(), connection_fds_.end(), fd),
                        connection_fds_.end());
  ::close(fd);
}

FakeLlmReply FakeLlmServer::handle(FakeLlmRequest request) {
  const bool anthropic = api_ == Api::Anthropic;
  request.violations = anthropic ? validate_anthropic(request) : validate_openai(request);
  std::lock_guard lock(mu_);
  std::string key = anthropic ? request.header("x-api-key") : request.header("authorization");
  std::string expected = anthropic ? expected_key_ : (expected_key_.empty() ? "" : "Bearer " + expected_key_);
  const bool bad_key = !expected_key_.empty() && key != expected;
  const std::vector<std::string> violations = request.violations;
  if (repeat_ && violations.empty()) {
    // A conversation's first request has no assistant turn yet: it gets the first reply.
    json body = json::parse(request.body, nullptr, false);
    bool opens = body.is_object() && body.contains("messages") && body["messages"].is_array();
    if (opens) {
      for (const auto& m : body["messages"]) opens &= !(m.is_object() && m.value("role", "") == "assistant");
    }
    if (opens || next_ >= script_.size()) next_ = 0;
    if (requests_.size() >= 100) requests_.erase(requests_.begin());
  }
  requests_.push_back(std::move(request));
  if (bad_key) {
    return {401,
            {},
            anthropic ? anthropic_error("authentication_error", "invalid x-api-key")
                      : openai_error("invalid_request_error", "Incorrect API key provided")};
  }
  if (!violations.empty()) {
    std::string msg = "fake server: " + violations.front();
    return {400,
            {},
            anthropic ? anthropic_error("invalid_request_error", msg)
                      : openai_error("invalid_request_error", msg)};
  }
  if (next_ >= script_.size()) {
    requests_.back().violations.push_back("no scripted reply left for this request");
    return {500,
            {},
            anthropic ? anthropic_error("api_error", "fake server: script exhausted")
                      : openai_error("server_error", "fake server: script exhausted")};
  }
  return script_[next_++];
}

}  // namespace larder::testing
