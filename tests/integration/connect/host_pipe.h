// The host's end of a connect::Bridge served on a pair of pipes, for tests: writes lines,
// reads messages, keeps every byte the bridge wrote (which must never hold a secret).
#pragma once

#include "connect/bridge.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace larder::connect::test_host {

using nlohmann::json;
using namespace std::chrono_literals;

class HostPipe {
 public:
  explicit HostPipe(Bridge& bridge) {
    int to_bridge[2], from_bridge[2];
    if (::pipe(to_bridge) != 0 || ::pipe(from_bridge) != 0) throw std::runtime_error("pipe");
    in_ = to_bridge[1];
    out_ = from_bridge[0];
    serving_ = std::thread([&bridge, r = to_bridge[0], w = from_bridge[1], this] {
      served_ok_ = bridge.serve_stdio(r, w).ok();
      ::close(r);
      ::close(w);
    });
    reader_ = std::thread([this] {
      char buf[65536];
      std::string pending;
      while (true) {
        ssize_t n = ::read(out_, buf, sizeof buf);
        if (n <= 0) break;
        std::lock_guard lock(mu_);
        bytes_.append(buf, static_cast<std::size_t>(n));
        pending.append(buf, static_cast<std::size_t>(n));
        for (auto nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n')) {
          auto v = json::parse(pending.substr(0, nl), nullptr, false);
          if (v.is_discarded()) not_json_ = true;
          messages_.push_back(v);
          pending.erase(0, nl + 1);
        }
        cv_.notify_all();
      }
      std::lock_guard lock(mu_);
      eof_ = true;
      cv_.notify_all();
    });
  }
  ~HostPipe() {
    close();
    if (serving_.joinable()) serving_.join();
    if (reader_.joinable()) reader_.join();
    ::close(out_);
  }

  void write(const std::string& raw) {
    std::size_t off = 0;
    while (off < raw.size()) {
      ssize_t n = ::write(in_, raw.data() + off, raw.size() - off);
      if (n <= 0) return;
      off += static_cast<std::size_t>(n);
    }
  }
  void send(const json& m) { write(m.dump() + "\n"); }
  void close() {
    if (in_ >= 0) ::close(in_);
    in_ = -1;
  }

  json request(const json& id, const std::string& method, json params = json::object()) {
    send({{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}});
    return wait_response(id);
  }
  json wait_response(const json& id, std::chrono::milliseconds timeout = 20s) {
    return wait_for(
        [&](const json& m) {
          return m.is_object() && m.contains("id") && m["id"] == id && !m.contains("method");
        },
        timeout);
  }
  json wait_for(const std::function<bool(const json&)>& match, std::chrono::milliseconds timeout = 20s) {
    std::unique_lock lock(mu_);
    json found;
    cv_.wait_for(lock, timeout, [&] {
      for (const auto& m : messages_)
        if (match(m)) {
          found = m;
          return true;
        }
      return eof_;
    });
    return found;
  }
  void initialize(const std::string& version = "2025-06-18") {
    json r = request(0, "initialize",
                     {{"protocolVersion", version},
                      {"capabilities", json::object()},
                      {"clientInfo", {{"name", "test-host"}, {"version", "1"}}}});
    ASSERT_TRUE(r.contains("result")) << r.dump();
    send({{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}});
  }
  std::string bytes() {
    std::lock_guard lock(mu_);
    return bytes_;
  }
  std::size_t count(const std::function<bool(const json&)>& match) {
    std::lock_guard lock(mu_);
    return static_cast<std::size_t>(std::count_if(messages_.begin(), messages_.end(), match));
  }
  bool not_json() {
    std::lock_guard lock(mu_);
    return not_json_;
  }
  bool wait_eof(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return eof_; });
  }
  bool served_ok() const { return served_ok_; }

 private:
  int in_ = -1, out_ = -1;
  std::thread serving_, reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string bytes_;
  std::deque<json> messages_;
  bool eof_ = false, not_json_ = false;
  std::atomic<bool> served_ok_{false};
};

// The base64 lines of a PEM file.
inline std::vector<std::string> pem_body_lines(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (line.size() >= 16 && line.rfind("-----", 0) != 0) out.push_back(line);
  return out;
}

// The whole text of a tool result's content items.
inline std::string text(const json& result) {
  std::string out;
  for (const auto& c : result.value("content", json::array())) out += c.value("text", "");
  return out;
}

}  // namespace larder::connect::test_host
