// Keys, signatures and encodings: round trips, text forms, strict verification
// (constructed non-canonical and small-order inputs) and, when LARDER_WYCHEPROOF_DIR points
// at a C2SP/wycheproof checkout, the Wycheproof Ed25519 and ECDSA P-256/SHA-256 vectors.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "biscuit/crypto/encoding.h"
#include "biscuit/crypto/keys.h"
#include "biscuit/format/signature.h"

using namespace biscuit;

namespace {
Bytes bytes_of(std::string_view s) {
  return Bytes(s.begin(), s.end());
}
Bytes unhex(std::string_view h) {
  auto b = hex_decode(h);
  EXPECT_TRUE(b.has_value()) << h;
  return b.value_or(Bytes{});
}
}  // namespace

TEST(Encoding, HexRoundTrip) {
  Bytes b = {0x00, 0x01, 0xab, 0xff};
  EXPECT_EQ(hex_encode(b), "0001abff");
  EXPECT_EQ(*hex_decode("0001ABff"), b);
  EXPECT_FALSE(hex_decode("abc").has_value());
  EXPECT_FALSE(hex_decode("zz").has_value());
}

TEST(Encoding, Base64UrlPaddedOutUnpaddedIn) {
  for (std::size_t n = 0; n < 20; ++n) {
    Bytes b(n);
    for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(i * 37 + 250);
    std::string enc = base64url_encode(b);
    EXPECT_EQ(enc.size() % 4, 0u);
    EXPECT_EQ(*base64url_decode(enc), b);
    std::string unpadded = enc.substr(0, enc.find('='));
    EXPECT_EQ(*base64url_decode(unpadded), b);
  }
  EXPECT_EQ(base64url_encode(bytes_of("\xfb\xff")), "-_8=");
  EXPECT_FALSE(base64url_decode("+/8=").has_value());  // standard alphabet is rejected
  EXPECT_FALSE(base64url_decode("a").has_value());
  EXPECT_FALSE(base64url_decode("ab=c").has_value());
  EXPECT_FALSE(base64url_decode("-_9=").has_value());  // non-zero trailing bits
}

TEST(Keys, Ed25519RoundTripAndTextForms) {
  KeyPair kp = KeyPair::generate(Algorithm::Ed25519);
  Bytes msg = bytes_of("hello");
  auto sig = kp.sign(msg);
  ASSERT_TRUE(sig.ok());
  EXPECT_EQ(sig->size(), 64u);
  EXPECT_TRUE(kp.public_key().verify(msg, *sig));
  Bytes other = bytes_of("hellp");
  EXPECT_FALSE(kp.public_key().verify(other, *sig));

  std::string priv = kp.private_key().to_string();
  EXPECT_EQ(priv.rfind("ed25519-private/", 0), 0u);
  for (const std::string& text : {priv, kp.private_key().to_hex(), "ed25519/" + kp.private_key().to_hex()}) {
    auto back = PrivateKey::from_string(text);
    ASSERT_TRUE(back.ok()) << text;
    EXPECT_EQ(back->public_key(), kp.public_key());
  }
  auto pub = PublicKey::from_string(kp.public_key().to_string());
  ASSERT_TRUE(pub.ok());
  EXPECT_EQ(*pub, kp.public_key());
  auto bare = PublicKey::from_string(kp.public_key().to_hex());
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(*bare, kp.public_key());
  EXPECT_FALSE(PublicKey::from_string("rsa/00").ok());
  EXPECT_FALSE(PublicKey::from_string("ed25519/00").ok());
  EXPECT_FALSE(PrivateKey::from_string("ed25519-private/zz").ok());
}

TEST(Keys, Ed25519KnownAnswerFromSamples) {
  // The shared samples' root key pair.
  auto priv = PrivateKey::from_string("99e87b0e9158531eeeb503ff15266e2b23c2a2507b138c9d1b1f2ab458df2d61");
  ASSERT_TRUE(priv.ok());
  EXPECT_EQ(priv->public_key().to_hex(), "1055c750b1a1505937af1537c626ba3263995c33a64758aaafb1275b0312e284");
}

TEST(Keys, Ed25519RejectsNonCanonicalS) {
  KeyPair kp = KeyPair::generate(Algorithm::Ed25519);
  Bytes msg = bytes_of("strict verification");
  Bytes sig = *kp.sign(msg);
  ASSERT_TRUE(kp.public_key().verify(msg, sig));
  // S' = S + L (little-endian). Same point equation, non-canonical scalar: must be refused.
  const Bytes L = unhex("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
  Bytes forged = sig;
  unsigned carry = 0;
  for (int i = 0; i < 32; ++i) {
    unsigned v = forged[32 + i] + L[i] + carry;
    forged[32 + i] = static_cast<uint8_t>(v & 0xff);
    carry = v >> 8;
  }
  ASSERT_EQ(carry, 0u);
  EXPECT_FALSE(kp.public_key().verify(msg, forged));
  // Wrong sizes never verify.
  EXPECT_FALSE(kp.public_key().verify(msg, Bytes(sig.begin(), sig.begin() + 63)));
}

TEST(Keys, Ed25519RejectsSmallOrderKeysAndR) {
  // The 8 small-order points of edwards25519 (canonical encodings): identity, order 2,
  // two of order 4 and four of order 8.
  const char* small_order[] = {
      "0100000000000000000000000000000000000000000000000000000000000000",
      "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
      "0000000000000000000000000000000000000000000000000000000000000000",
      "0000000000000000000000000000000000000000000000000000000000000080",
      "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
      "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
      "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
      "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
  };
  Bytes msg = bytes_of("any message");
  for (const char* hex : small_order) {
    auto pk = PublicKey::from_bytes(Algorithm::Ed25519, unhex(hex));
    ASSERT_TRUE(pk.ok());
    // R = identity, S = 0 satisfies [S]B = R + [h]A whenever [h]A is the identity, which a
    // cofactor-less lenient verifier accepts for A = identity: strict verification refuses all.
    for (const char* r : small_order) {
      Bytes sig = unhex(r);
      sig.resize(64, 0);
      EXPECT_FALSE(pk->verify(msg, sig)) << "pk " << hex << " R " << r;
    }
  }
  // A legitimate key with a small-order R is refused too.
  KeyPair kp = KeyPair::generate();
  for (const char* r : small_order) {
    Bytes sig = unhex(r);
    sig.resize(64, 0);
    EXPECT_FALSE(kp.public_key().verify(msg, sig));
  }
}

TEST(Keys, P256RoundTripAndTextForms) {
  KeyPair kp = KeyPair::generate(Algorithm::Secp256r1);
  EXPECT_EQ(kp.public_key().bytes().size(), 33u);
  EXPECT_TRUE(kp.public_key().bytes()[0] == 2 || kp.public_key().bytes()[0] == 3);
  Bytes msg = bytes_of("p256");
  auto sig = kp.sign(msg);
  ASSERT_TRUE(sig.ok());
  EXPECT_EQ((*sig)[0], 0x30);  // DER SEQUENCE
  EXPECT_TRUE(kp.public_key().verify(msg, *sig));
  EXPECT_FALSE(kp.public_key().verify(bytes_of("p257"), *sig));
  std::string priv = kp.private_key().to_string();
  EXPECT_EQ(priv.rfind("secp256r1-private/", 0), 0u);
  auto back = PrivateKey::from_string(priv);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->public_key(), kp.public_key());
  auto bare = PrivateKey::from_string(kp.private_key().to_hex(), Algorithm::Secp256r1);
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->public_key(), kp.public_key());
  auto pub = PublicKey::from_string(kp.public_key().to_string());
  ASSERT_TRUE(pub.ok());
  EXPECT_EQ(*pub, kp.public_key());
  EXPECT_TRUE(pub->verify(msg, *sig));

  // Non-DER encodings of the same signature are refused: BER long-form length.
  Bytes ber;
  ber.push_back(0x30);
  ber.push_back(0x81);
  for (std::size_t i = 1; i < sig->size(); ++i) ber.push_back((*sig)[i]);
  EXPECT_FALSE(kp.public_key().verify(msg, ber));
  Bytes trailing = *sig;
  trailing.push_back(0);
  EXPECT_FALSE(kp.public_key().verify(msg, trailing));
  // Invalid scalars and points.
  EXPECT_FALSE(PrivateKey::from_bytes(Algorithm::Secp256r1, Bytes(32, 0)).ok());
  EXPECT_FALSE(PrivateKey::from_bytes(Algorithm::Secp256r1, Bytes(32, 0xff)).ok());
  Bytes bad_point(33, 0xff);
  bad_point[0] = 2;
  EXPECT_FALSE(PublicKey::from_bytes(Algorithm::Secp256r1, bad_point).ok());
  EXPECT_FALSE(PublicKey::from_bytes(Algorithm::Secp256r1, Bytes(65, 4)).ok());
  // An Ed25519 signature never verifies under a P-256 key, nor the reverse.
  KeyPair ed = KeyPair::generate();
  EXPECT_FALSE(kp.public_key().verify(msg, *ed.sign(msg)));
  EXPECT_FALSE(ed.public_key().verify(msg, *sig));
}

TEST(SignaturePayload, Layouts) {
  Bytes block = {1, 2};
  Bytes key = {9};
  EXPECT_EQ(format::block_payload_v0(block, std::nullopt, Algorithm::Secp256r1, key),
            (Bytes{1, 2, 1, 0, 0, 0, 9}));
  Bytes ext = {7};
  EXPECT_EQ(format::block_payload_v0(block, format::ByteView(ext), Algorithm::Ed25519, key),
            (Bytes{1, 2, 7, 0, 0, 0, 0, 9}));
  Bytes p = format::block_payload_v1(block, Algorithm::Ed25519, key, format::ByteView(ext), std::nullopt);
  std::string expected(
      "\0BLOCK\0\0VERSION\0\x01\0\0\0\0PAYLOAD\0\x01\x02\0ALGORITHM\0\0\0\0\0\0NEXTKEY\0\x09\0PREVSIG\0\x07",
      sizeof("\0BLOCK\0\0VERSION\0\x01\0\0\0\0PAYLOAD\0\x01\x02\0ALGORITHM\0\0\0\0\0\0NEXTKEY\0\x09\0PREVSIG"
             "\0\x07") -
          1);
  EXPECT_EQ(std::string(p.begin(), p.end()), expected);
  Bytes e = format::external_payload(block, ext);
  std::string expected_ext("\0EXTERNAL\0\0VERSION\0\x01\0\0\0\0PAYLOAD\0\x01\x02\0PREVSIG\0\x07",
                           sizeof("\0EXTERNAL\0\0VERSION\0\x01\0\0\0\0PAYLOAD\0\x01\x02\0PREVSIG\0\x07") - 1);
  EXPECT_EQ(std::string(e.begin(), e.end()), expected_ext);
}

// ---------------------------------------------------------------- Wycheproof

namespace {
std::filesystem::path wycheproof_dir() {
  const char* dir = std::getenv("LARDER_WYCHEPROOF_DIR");
  return dir ? std::filesystem::path(dir) : std::filesystem::path();
}

std::optional<nlohmann::json> load_vectors(const std::string& name) {
  auto root = wycheproof_dir();
  for (auto sub : {"testvectors_v1", "testvectors", ""}) {
    auto p = root / sub / name;
    if (std::filesystem::exists(p)) {
      std::ifstream in(p);
      return nlohmann::json::parse(in);
    }
  }
  return std::nullopt;
}
}  // namespace

TEST(Wycheproof, Ed25519) {
  if (wycheproof_dir().empty())
    GTEST_SKIP() << "set LARDER_WYCHEPROOF_DIR to a C2SP/wycheproof checkout to run";
  auto vectors = load_vectors("ed25519_test.json");
  ASSERT_TRUE(vectors) << "ed25519_test.json not found under " << wycheproof_dir();
  int passed = 0, total = 0;
  for (const auto& group : (*vectors)["testGroups"]) {
    auto pk = PublicKey::from_bytes(Algorithm::Ed25519, unhex(group["publicKey"]["pk"].get<std::string>()));
    for (const auto& t : group["tests"]) {
      ++total;
      std::string result = t["result"];
      bool ok = pk.ok() && pk->verify(unhex(t["msg"].get<std::string>()), unhex(t["sig"].get<std::string>()));
      bool expect_valid = result == "valid";
      if (result == "acceptable" || ok == expect_valid) {
        ++passed;
      } else {
        ADD_FAILURE() << "tcId " << t["tcId"] << " expected " << result << " got " << ok;
      }
    }
  }
  std::printf("wycheproof ed25519: %d/%d passed\n", passed, total);
  EXPECT_EQ(passed, total);
}

TEST(Wycheproof, EcdsaP256Sha256Der) {
  if (wycheproof_dir().empty())
    GTEST_SKIP() << "set LARDER_WYCHEPROOF_DIR to a C2SP/wycheproof checkout to run";
  auto vectors = load_vectors("ecdsa_secp256r1_sha256_test.json");
  ASSERT_TRUE(vectors) << "ecdsa_secp256r1_sha256_test.json not found under " << wycheproof_dir();
  int passed = 0, total = 0;
  for (const auto& group : (*vectors)["testGroups"]) {
    const auto& key = group.contains("publicKey") ? group["publicKey"] : group["key"];
    Bytes uncompressed = unhex(key["uncompressed"].get<std::string>());
    Result<PublicKey> pk = make_error(ErrorCode::InvalidKey, "not an uncompressed point");
    if (uncompressed.size() == 65 && uncompressed[0] == 4) {
      Bytes compressed(uncompressed.begin(), uncompressed.begin() + 33);
      compressed[0] = (uncompressed[64] & 1) ? 3 : 2;
      pk = PublicKey::from_bytes(Algorithm::Secp256r1, compressed);
    }
    for (const auto& t : group["tests"]) {
      ++total;
      std::string result = t["result"];
      bool ok = pk.ok() && pk->verify(unhex(t["msg"].get<std::string>()), unhex(t["sig"].get<std::string>()));
      if (result == "acceptable" || ok == (result == "valid")) {
        ++passed;
      } else {
        ADD_FAILURE() << "tcId " << t["tcId"] << " (" << t["comment"] << ") expected " << result << " got "
                      << ok;
      }
    }
  }
  std::printf("wycheproof ecdsa p256 sha256: %d/%d passed\n", passed, total);
  EXPECT_EQ(passed, total);
}
