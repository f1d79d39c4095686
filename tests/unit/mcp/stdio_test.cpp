#include "mcp/stdio.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <thread>

namespace larder::mcp {
namespace {

// Runs a StdioServerTransport on pipes and talks to it line by line.
class StdioTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(pipe(to_server_), 0);
    ASSERT_EQ(pipe(from_server_), 0);
    ServerOptions o;
    server_ = std::make_unique<Server>(o);
    ASSERT_TRUE(server_
                    ->add_tool(Tool{"hello", "", "", json{{"type", "object"}}, std::nullopt, json(), json()},
                               [](RequestContext& ctx, const json&) {
                                 auto roots = ctx.request_client("roots/list", json::object());
                                 return ToolResult::text(roots
                                                             ? (*roots)["roots"][0]["uri"].get<std::string>()
                                                             : roots.error().message);
                               })
                    .ok());
    transport_ = std::make_unique<StdioServerTransport>(*server_, to_server_[0], from_server_[1]);
    thread_ = std::thread([this] { result_ = transport_->run(); });
    reader_ = std::make_unique<LineReader>(from_server_[0]);
  }
  void TearDown() override {
    if (to_server_[1] >= 0) close(to_server_[1]);
    if (thread_.joinable()) thread_.join();
    close(to_server_[0]);
    close(from_server_[0]);
    close(from_server_[1]);
  }
  void send(const std::string& line) {
    std::string l = line + "\n";
    ASSERT_EQ(write(to_server_[1], l.data(), l.size()), static_cast<ssize_t>(l.size()));
  }
  json receive() {
    std::string line;
    EXPECT_EQ(reader_->next(&line), LineReader::Status::kLine);
    return json::parse(line);
  }

  int to_server_[2]{-1, -1}, from_server_[2]{-1, -1};
  std::unique_ptr<Server> server_;
  std::unique_ptr<StdioServerTransport> transport_;
  std::unique_ptr<LineReader> reader_;
  std::thread thread_;
  larder::Result<void> result_;
};

TEST_F(StdioTest, FullExchangeWithServerToClientRequest) {
  send(
      R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{"roots":{}},"clientInfo":{"name":"t","version":"1"}}})");
  EXPECT_EQ(receive()["result"]["protocolVersion"], "2025-06-18");
  send(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
  send(R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"hello"}})");
  json req = receive();
  ASSERT_EQ(req["method"], "roots/list");
  send(make_result(req["id"], {{"roots", json::array({{{"uri", "file:///data"}}})}}).dump());
  json done = receive();
  EXPECT_EQ(done["id"], 2);
  EXPECT_EQ(done["result"]["content"][0]["text"], "file:///data");
}

TEST_F(StdioTest, HostileLinesGetErrorsAndTheServerKeepsServing) {
  send("this is not json");
  EXPECT_EQ(receive()["error"]["code"], error_code::kParseError);
  send(R"({"jsonrpc":"2.0","id":5,"method":42})");
  json r = receive();
  EXPECT_EQ(r["error"]["code"], error_code::kInvalidRequest);
  EXPECT_EQ(r["id"], 5);
  send("[1,2]");
  EXPECT_EQ(receive()["error"]["code"], error_code::kInvalidRequest);
  send("");  // blank lines are ignored
  send(R"({"jsonrpc":"2.0","id":6,"method":"ping"})");
  EXPECT_EQ(receive()["id"], 6);
  send(
      R"({"jsonrpc":"2.0","id":7,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}})");
  json d = receive();
  EXPECT_EQ(d["result"]["resultType"], "complete");
}

TEST(LineReader, ReportsOversizedRecordsAndContinues) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::string big(300, 'x');
  std::string data = big + "\nshort\nlast";
  ASSERT_EQ(write(fds[1], data.data(), data.size()), static_cast<ssize_t>(data.size()));
  close(fds[1]);
  LineReader reader(fds[0], 100);
  std::string line;
  EXPECT_EQ(reader.next(&line), LineReader::Status::kOversized);
  EXPECT_EQ(reader.next(&line), LineReader::Status::kLine);
  EXPECT_EQ(line, "short");
  EXPECT_EQ(reader.next(&line), LineReader::Status::kLine);
  EXPECT_EQ(line, "last");
  EXPECT_EQ(reader.next(&line), LineReader::Status::kEof);
  close(fds[0]);
}

}  // namespace
}  // namespace larder::mcp
