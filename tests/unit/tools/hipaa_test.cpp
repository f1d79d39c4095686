#include "tools/hipaa.h"

#include <gtest/gtest.h>

#include <set>

namespace larder::tools {
namespace {

std::multiset<std::string> categories(std::string_view text) {
  std::multiset<std::string> out;
  for (const auto& f : scan_hipaa_identifiers(text).findings) out.insert(f.category);
  return out;
}

bool has(std::string_view text, const std::string& category) {
  return categories(text).count(category) > 0;
}

TEST(Hipaa, CleanClinicalTextIsCompliant) {
  EXPECT_TRUE(scan_hipaa_identifiers("Average billing for Diabetes patients rose 4% in 2023.").compliant());
  EXPECT_TRUE(scan_hipaa_identifiers("Most common condition: Arthritis; most common medication: Lipitor.")
                  .compliant());
  EXPECT_TRUE(scan_hipaa_identifiers("").compliant());
}

TEST(Hipaa, DatasetNamesWithMixedCase) {
  EXPECT_TRUE(has("Records for Erin oRTEga show hypertension.", "name"));
  EXPECT_TRUE(has("DAvID AndErSON was admitted", "name"));
  EXPECT_TRUE(has(R"({"Patient Name": "Bobby JacksOn", "Age": 30})", "name"));
  EXPECT_TRUE(has("Patient: John Smith, follow-up", "name"));
  EXPECT_TRUE(has("seen by Dr. Matthew Smith", "name"));
}

TEST(Hipaa, ContactAndNumbers) {
  EXPECT_TRUE(has("call (555) 123-4567 tomorrow", "phone"));
  EXPECT_TRUE(has("phone 555-123-4567", "phone"));
  EXPECT_TRUE(has("Fax: 555.987.6543", "fax"));
  EXPECT_TRUE(has("mail erin.ortega@example.org", "email"));
  EXPECT_TRUE(has("SSN 123-45-6789", "ssn"));
  EXPECT_TRUE(has("MRN: 00123456", "mrn"));
  EXPECT_TRUE(has("Account #: 99881234", "account_number"));
  EXPECT_TRUE(has("member id: XJ-99123", "health_plan_number"));
  EXPECT_TRUE(has("License number: D1234567", "license_number"));
  EXPECT_TRUE(has("serial number: SN-88812", "device_id"));
  EXPECT_TRUE(has("VIN 1HGCM82633A004352", "vehicle_id"));
}

TEST(Hipaa, NetworkIdentifiers) {
  EXPECT_TRUE(has("from 192.168.10.23 at night", "ip_address"));
  EXPECT_TRUE(has("see https://portal.example.org/patient/42", "url"));
  EXPECT_FALSE(has("version 1.2.3 released", "ip_address"));
}

TEST(Hipaa, DatesAndAges) {
  EXPECT_TRUE(has("admitted 2024-01-31", "date"));
  EXPECT_TRUE(has("admitted 1/31/2024", "date"));
  EXPECT_TRUE(has("admitted January 31, 2024", "date"));
  EXPECT_TRUE(has("admitted 31 Jan 2024", "date"));
  EXPECT_TRUE(has("Age: 93", "age_over_89"));
  EXPECT_TRUE(has("a 95-year-old woman", "age_over_89"));
  EXPECT_FALSE(has("Age: 45", "age_over_89"));
}

TEST(Hipaa, Geography) {
  EXPECT_TRUE(has("lives at 1234 Elm Street", "address"));
  EXPECT_TRUE(has("zip code 02139", "zip_code"));
  EXPECT_TRUE(has("Boston, MA 02139", "zip_code"));
}

TEST(Hipaa, FindingsAreOrderedMaskedAndDoNotOverlap) {
  std::string text = "Erin oRTEga, SSN 123-45-6789, email erin@example.org";
  auto report = scan_hipaa_identifiers(text);
  ASSERT_GE(report.findings.size(), 3u);
  size_t last_end = 0;
  for (const auto& f : report.findings) {
    EXPECT_GE(f.start, last_end);
    EXPECT_LE(f.end, text.size());
    last_end = f.end;
    EXPECT_EQ(f.masked.size(), f.end - f.start);
    EXPECT_NE(f.masked, text.substr(f.start, f.end - f.start));  // never echoes the value back
  }
  auto j = to_json(report);
  EXPECT_FALSE(j["compliant"].get<bool>());
  EXPECT_EQ(j["identifier_count"].get<size_t>(), report.findings.size());
  EXPECT_EQ(j["categories"]["ssn"], 1);
}

TEST(Hipaa, HostileInputStaysLinear) {
  std::string big(1 << 20, 'a');
  big += " 123-45-6789";
  EXPECT_TRUE(has(big, "ssn"));
  std::string binary("\x00\xff\xfe Erin oRTEga \x80", 18);
  EXPECT_NO_THROW(scan_hipaa_identifiers(binary));
}

}  // namespace
}  // namespace larder::tools
