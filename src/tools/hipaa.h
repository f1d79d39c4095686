// HIPAA Safe Harbor identifier detection (45 CFR §164.514(b)(2)) for the compliance
// checker tool. Pattern-based and deliberately conservative: it is a screen that tells a
// user "this text still carries identifiers", not a de-identification guarantee.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace larder::tools {

// One identifier found in the text. `start`/`end` are byte offsets; `masked` shows the
// shape of the value without repeating it (first character kept, the rest replaced).
struct HipaaFinding {
  std::string category;  // "name", "date", "phone", "fax", "email", "ssn", "mrn", "health_plan_number",
                         // "account_number", "license_number", "vehicle_id", "device_id", "url",
                         // "ip_address", "address", "zip_code", "age_over_89"
  size_t start = 0;
  size_t end = 0;
  std::string masked;
};

struct HipaaReport {
  std::vector<HipaaFinding> findings;  // ordered by position, non-overlapping
  bool compliant() const { return findings.empty(); }
};

// Scans `text` for Safe Harbor identifiers.
HipaaReport scan_hipaa_identifiers(std::string_view text);

// The tool's structured result: {compliant, identifier_count, categories{cat: n}, findings[...]}.
nlohmann::json to_json(const HipaaReport& report);

}  // namespace larder::tools
