// base/encoding.h: SHA-256 (FIPS 180-2 vectors, raw and hex), hex and Base64 (RFC 4648 vectors,
// both alphabets, with and without padding, malformed input refused).
#include "base/encoding.h"

#include <gtest/gtest.h>

#include <string>

namespace larder {
namespace {

TEST(Digest, Sha256MatchesTheStandardVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  const std::string raw = sha256("abc");
  ASSERT_EQ(raw.size(), 32u);
  EXPECT_EQ(static_cast<unsigned char>(raw[0]), 0xba);
  EXPECT_EQ(static_cast<unsigned char>(raw[31]), 0xad);
  EXPECT_EQ(sha256(std::string(1, '\0')), sha256(std::string_view("\0", 1)));
}

TEST(Encoding, HexRoundTripsAndRefusesWhatIsNotHex) {
  EXPECT_EQ(hex_encode(std::string("\x00\x01\xab\xff", 4)), "0001abff");
  EXPECT_EQ(hex_encode(""), "");
  EXPECT_EQ(hex_decode("0001ABff"), std::string("\x00\x01\xab\xff", 4));
  EXPECT_FALSE(hex_decode("abc"));
  EXPECT_FALSE(hex_decode("zz"));
  EXPECT_FALSE(hex_decode("00 1"));
}

TEST(Encoding, Base64MatchesRfc4648AndAcceptsBothAlphabets) {
  const std::pair<const char*, const char*> vectors[] = {{"", ""},
                                                         {"f", "Zg=="},
                                                         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},
                                                         {"foob", "Zm9vYg=="},
                                                         {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(base64_encode(plain), encoded);
    EXPECT_EQ(base64_decode(encoded), std::string(plain)) << encoded;
  }
  EXPECT_EQ(base64_decode("Zg"), "f");                           // without padding
  EXPECT_EQ(base64_decode("-_8"), std::string("\xfb\xff", 2));   // URL-safe
  EXPECT_EQ(base64_decode("+/8="), std::string("\xfb\xff", 2));  // standard
  EXPECT_FALSE(base64_decode("Zm9v!"));                          // another character
  EXPECT_FALSE(base64_decode("Z"));                              // a wrong length
  EXPECT_FALSE(base64_decode("+_8="));                           // both alphabets
}

}  // namespace
}  // namespace larder
