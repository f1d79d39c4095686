#include "net/http.h"

#include <gtest/gtest.h>

#include "net/client.h"

namespace larder::net {
namespace {

TEST(HttpTest, HeaderLookupIsCaseInsensitiveFirstMatch) {
  HttpRequest req;
  req.headers = {{"Content-Type", "application/json"}, {"X-Dup", "1"}, {"x-dup", "2"}};
  EXPECT_EQ(req.header("content-type"), "application/json");
  EXPECT_EQ(req.header("X-DUP"), "1");
  EXPECT_FALSE(req.header("missing").has_value());
  ClientResponse resp;
  resp.headers = {{"mcp-session-id", "abc"}};
  EXPECT_EQ(resp.header("Mcp-Session-Id"), "abc");
}

TEST(HttpTest, CaseInsensitiveEqualityIsAsciiOnly) {
  EXPECT_TRUE(iequals("Content-Length", "content-LENGTH"));
  EXPECT_TRUE(iequals("", ""));
  EXPECT_FALSE(iequals("close", "closed"));
  EXPECT_FALSE(iequals("keep-alive", "keep_alive"));
}

TEST(HttpTest, HeaderFieldsAreTokensWithSafeValues) {
  EXPECT_TRUE(valid_header_field("Mcp-Session-Id", "abc"));
  EXPECT_TRUE(valid_header_field("X-Odd!#$%&'*+.^_`|~", "value with spaces and : colons"));
  EXPECT_TRUE(valid_header_field("Empty-Value", ""));
  EXPECT_FALSE(valid_header_field("", "x"));
  EXPECT_FALSE(valid_header_field("Bad Name", "x"));
  EXPECT_FALSE(valid_header_field("Bad:Name", "x"));
  EXPECT_FALSE(valid_header_field(std::string_view("Nul\0Name", 8), "x"));
  EXPECT_FALSE(valid_header_field("X-Injected", "a\r\nSet-Cookie: y"));
  EXPECT_FALSE(valid_header_field("X-Injected", "a\nb"));
  EXPECT_FALSE(valid_header_field("X-Nul", std::string_view("a\0b", 3)));
}

TEST(HttpClientConfigTest, RefusesBadUrlsAndPlainWithoutOptIn) {
  EXPECT_EQ(HttpClient::create("ftp://127.0.0.1:1", {}).error().code, "net.config");
  EXPECT_EQ(HttpClient::create("http://127.0.0.1:1", {}).error().code, "net.config");
  EXPECT_EQ(HttpClient::create("https://127.0.0.1:1", {}).error().code, "net.config");  // no CA
  EXPECT_EQ(HttpClient::create("https://127.0.0.1:x", {"/nonexistent", "", "", "", false}).error().code,
            "net.config");
  TlsClientConfig plain;
  plain.insecure_plain = true;
  EXPECT_TRUE(HttpClient::create("http://127.0.0.1:1", plain).ok());
}

}  // namespace
}  // namespace larder::net
