#include "net/pki.h"
#include "base/files.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>

#include "tls_test_pki.h"

namespace larder::net::pki {
namespace {

using namespace std::chrono_literals;

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

class PkiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto ca = create_ca("Unit CA");
    ASSERT_TRUE(ca.ok()) << ca.error().message;
    ca_ = new KeyedCertificate(*ca);
  }
  static void TearDownTestSuite() { delete ca_; }
  static KeyedCertificate* ca_;
};
KeyedCertificate* PkiTest::ca_ = nullptr;

TEST_F(PkiTest, CaIsSelfSignedP256WithCaUsages) {
  auto info = inspect_certificate(ca_->cert_pem);
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->subject_cn, "Unit CA");
  EXPECT_EQ(info->issuer, "CN=Unit CA");
  EXPECT_TRUE(info->is_ca);
  EXPECT_TRUE(info->key_cert_sign);
  EXPECT_TRUE(info->crl_sign);
  EXPECT_EQ(info->key_type, "EC prime256v1");
  EXPECT_EQ(info->sha256.size(), 64u);
  EXPECT_NE(ca_->key_pem.find("PRIVATE KEY"), std::string::npos);
}

TEST_F(PkiTest, ServerCertHasServerAuthAndSans) {
  CertSpec spec;
  spec.kind = CertKind::kServer;
  spec.common_name = "srv";
  spec.sans = {"127.0.0.1", "localhost", "DNS:db.internal", "IP:::1"};
  auto cert = issue_certificate(*ca_, spec);
  ASSERT_TRUE(cert.ok()) << cert.error().message;
  auto info = inspect_certificate(cert->cert_pem);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->subject_cn, "srv");
  EXPECT_EQ(info->issuer, "CN=Unit CA");
  EXPECT_FALSE(info->is_ca);
  EXPECT_TRUE(info->has_extended_key_usage);
  EXPECT_TRUE(info->server_auth);
  EXPECT_FALSE(info->client_auth);
  EXPECT_FALSE(info->key_cert_sign);
  EXPECT_TRUE(contains(info->sans, "IP:127.0.0.1"));
  EXPECT_TRUE(contains(info->sans, "DNS:localhost"));
  EXPECT_TRUE(contains(info->sans, "DNS:db.internal"));
  EXPECT_TRUE(contains(info->sans, "IP:::1"));
  EXPECT_EQ(info->key_type, "EC prime256v1");
}

TEST_F(PkiTest, ClientCertHasClientAuthOnly) {
  CertSpec spec;
  spec.common_name = "claude-client";
  auto cert = issue_certificate(*ca_, spec);
  ASSERT_TRUE(cert.ok()) << cert.error().message;
  auto info = inspect_certificate(cert->cert_pem);
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->client_auth);
  EXPECT_FALSE(info->server_auth);
  EXPECT_TRUE(info->sans.empty());
}

TEST_F(PkiTest, ClientCertWithoutClientAuthForTests) {
  CertSpec spec;
  spec.common_name = "no-eku";
  spec.omit_extended_key_usage_for_role = true;
  auto cert = issue_certificate(*ca_, spec);
  ASSERT_TRUE(cert.ok());
  auto info = inspect_certificate(cert->cert_pem);
  ASSERT_TRUE(info.ok());
  EXPECT_FALSE(info->client_auth);
}

TEST_F(PkiTest, ArbitraryValidityWindows) {
  auto now = std::chrono::system_clock::now();
  CertSpec expired;
  expired.common_name = "old";
  expired.not_before = now - 48h;
  expired.not_after = now - 24h;
  auto cert = issue_certificate(*ca_, expired);
  ASSERT_TRUE(cert.ok());
  auto info = inspect_certificate(cert->cert_pem);
  ASSERT_TRUE(info.ok());
  EXPECT_LT(info->not_after, now);
  EXPECT_NEAR(std::chrono::duration_cast<std::chrono::seconds>(info->not_after - (now - 24h)).count(), 0, 2);

  CertSpec future;
  future.common_name = "future";
  future.not_before = now + 24h;
  cert = issue_certificate(*ca_, future);
  ASSERT_TRUE(cert.ok());
  info = inspect_certificate(cert->cert_pem);
  ASSERT_TRUE(info.ok());
  EXPECT_GT(info->not_before, now);

  CertSpec backwards;
  backwards.common_name = "bad";
  backwards.not_before = now;
  backwards.not_after = now - 1h;
  EXPECT_FALSE(issue_certificate(*ca_, backwards).ok());
}

TEST_F(PkiTest, SerialsAreRandomAndDistinct) {
  CertSpec spec;
  spec.common_name = "a";
  auto a = inspect_certificate(issue_certificate(*ca_, spec)->cert_pem);
  auto b = inspect_certificate(issue_certificate(*ca_, spec)->cert_pem);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->serial, b->serial);
  EXPECT_EQ(a->serial.size(), 32u);
}

TEST_F(PkiTest, BadInputsAreRefused) {
  CertSpec spec;
  spec.common_name = "x";
  spec.sans = {"DNS:a,IP:1.2.3.4"};
  EXPECT_EQ(issue_certificate(*ca_, spec).error().code, "pki.san");
  spec.sans = {"IP:not-an-ip"};
  EXPECT_EQ(issue_certificate(*ca_, spec).error().code, "pki.san");
  spec.sans = {};
  spec.common_name = "";
  EXPECT_FALSE(issue_certificate(*ca_, spec).ok());
  KeyedCertificate broken{ca_->cert_pem, "not a key"};
  spec.common_name = "x";
  EXPECT_FALSE(issue_certificate(broken, spec).ok());
  auto other = create_ca("Other");
  ASSERT_TRUE(other.ok());
  KeyedCertificate mismatched{ca_->cert_pem, other->key_pem};
  EXPECT_EQ(issue_certificate(mismatched, spec).error().code, "pki.ca_mismatch");
  EXPECT_FALSE(inspect_certificate("garbage").ok());
}

TEST_F(PkiTest, CrlListsRevokedSerialsAndIsSignedByTheCa) {
  CertSpec spec;
  spec.common_name = "revoke-me";
  auto a = inspect_certificate(issue_certificate(*ca_, spec)->cert_pem);
  auto b = inspect_certificate(issue_certificate(*ca_, spec)->cert_pem);
  ASSERT_TRUE(a.ok() && b.ok());
  auto now = std::chrono::system_clock::now();
  auto crl = create_crl(*ca_, {{a->serial, now}, {b->serial, now}});
  ASSERT_TRUE(crl.ok()) << crl.error().message;
  auto info = inspect_crl(*crl);
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->issuer, "CN=Unit CA");
  EXPECT_EQ(info->revoked_serials.size(), 2u);
  EXPECT_TRUE(contains(info->revoked_serials, a->serial));
  EXPECT_TRUE(contains(info->revoked_serials, b->serial));
  EXPECT_LT(info->last_update, now);
  EXPECT_GT(info->next_update, now);
  EXPECT_TRUE(*crl_signed_by(*crl, ca_->cert_pem));
  auto other = create_ca("Other");
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(*crl_signed_by(*crl, other->cert_pem));
  EXPECT_FALSE(create_crl(*ca_, {{"zz-not-hex", now}}).ok());
}

TEST(CertStoreTest, InitIssueRevokeList) {
  larder::testing::TlsTestPki pki;
  auto& store = pki.store();
  EXPECT_EQ(store.init().error().code, "pki.exists");
  struct stat st {};
  ASSERT_EQ(stat(store.ca_key_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  auto files = pki.client("alice");
  ASSERT_EQ(stat(files.key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto cert = larder::read_file(files.cert);
  ASSERT_TRUE(cert.ok());
  auto info = inspect_certificate(*cert);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->subject_cn, "alice");
  EXPECT_TRUE(info->client_auth);

  CertSpec dup;
  dup.kind = CertKind::kClient;
  EXPECT_EQ(store.issue(dup, "alice").error().code, "pki.exists");
  EXPECT_EQ(store.issue(dup, "../evil").error().code, "pki.name");
  EXPECT_EQ(store.issue(dup, "").error().code, "pki.name");

  auto list = store.list();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);  // server + alice
  auto revoked = store.revoke("alice");
  ASSERT_TRUE(revoked.ok());
  ASSERT_EQ(revoked->size(), 1u);
  EXPECT_EQ((*revoked)[0].serial, info->serial);
  EXPECT_EQ(store.revoke("alice").error().code, "pki.not_found");
  auto crl = larder::read_file(store.crl_path());
  ASSERT_TRUE(crl.ok());
  auto crl_info = inspect_crl(*crl);
  ASSERT_TRUE(crl_info.ok());
  EXPECT_TRUE(contains(crl_info->revoked_serials, info->serial));

  // Re-issuing a revoked name is allowed and gives a new serial.
  auto again = store.issue(dup, "alice");
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_NE(again->serial, info->serial);
  list = store.list();
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 3u);
}

TEST(CertStoreTest, MissingCaIsAClearError) {
  CertStore store("/nonexistent/larder-certs");
  CertSpec spec;
  auto r = store.issue(spec, "x");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("larder certs init"), std::string::npos);
}

}  // namespace
}  // namespace larder::net::pki
