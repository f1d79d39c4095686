#include "net/peer_identity.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include "net/pki.h"

namespace larder::net {
namespace {

std::string sha256_hex(const std::string& bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr);
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += digits[md[i] >> 4];
    out += digits[md[i] & 15];
  }
  return out;
}

TEST(PeerIdentityTest, ExtractsEveryField) {
  auto ca = pki::create_ca("Identity CA");
  ASSERT_TRUE(ca.ok());
  pki::CertSpec spec;
  spec.common_name = "claude-client";
  spec.sans = {"DNS:agent.local", "IP:127.0.0.1", "URI:spiffe://larder/agent", "email:ops@example.org"};
  auto cert = pki::issue_certificate(*ca, spec);
  ASSERT_TRUE(cert.ok()) << cert.error().message;
  auto id = peer_identity_from_pem(cert->cert_pem);
  ASSERT_TRUE(id.ok()) << id.error().message;
  EXPECT_EQ(id->cn, "claude-client");
  EXPECT_EQ(id->sans, (std::vector<std::string>{"DNS:agent.local", "IP:127.0.0.1",
                                                "URI:spiffe://larder/agent", "email:ops@example.org"}));
  auto der = pki::certificate_der(cert->cert_pem);
  ASSERT_TRUE(der.ok());
  EXPECT_EQ(id->cert_sha256, sha256_hex(*der));
  EXPECT_EQ(id->spki_sha256.size(), 64u);
  EXPECT_NE(id->spki_sha256, id->cert_sha256);
  EXPECT_EQ(id->issuer, "CN=Identity CA");
  auto info = pki::inspect_certificate(cert->cert_pem);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(id->serial, info->serial);
  EXPECT_EQ(id->not_after, info->not_after);

  auto from_der = peer_identity_from_der(*der);
  ASSERT_TRUE(from_der.ok());
  EXPECT_EQ(from_der->cert_sha256, id->cert_sha256);
  EXPECT_EQ(from_der->spki_sha256, id->spki_sha256);
}

TEST(PeerIdentityTest, GarbageIsAnError) {
  EXPECT_FALSE(peer_identity_from_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").ok());
  EXPECT_FALSE(peer_identity_from_der(std::string("\x30\x82\x01", 3)).ok());
  EXPECT_FALSE(peer_identity_from_pem("").ok());
}

TEST(PeerAllowedTest, Entries) {
  PeerIdentity p;
  p.cn = "alice";
  p.sans = {"DNS:alice.local", "IP:127.0.0.1"};
  p.cert_sha256 = "00ff" + std::string(60, 'a');
  EXPECT_TRUE(peer_allowed(p, {}));
  EXPECT_TRUE(peer_allowed(p, {"cn:alice"}));
  EXPECT_FALSE(peer_allowed(p, {"cn:Alice"}));
  EXPECT_FALSE(peer_allowed(p, {"cn:bob"}));
  EXPECT_TRUE(peer_allowed(p, {"cn:bob", "san:IP:127.0.0.1"}));
  EXPECT_FALSE(peer_allowed(p, {"san:DNS:bob.local"}));
  EXPECT_TRUE(peer_allowed(p, {"sha256:00FF" + std::string(60, 'A')}));
  EXPECT_TRUE(peer_allowed(p, {"sha256:00:ff:" + std::string(60, 'a')}));
  EXPECT_FALSE(peer_allowed(p, {"sha256:" + std::string(64, 'b')}));
  EXPECT_FALSE(peer_allowed(p, {"alice"}));  // unknown form never matches
  PeerIdentity empty;
  EXPECT_FALSE(peer_allowed(empty, {"cn:"}));
}

}  // namespace
}  // namespace larder::net
