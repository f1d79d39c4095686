#include "tools/hipaa.h"
#include "base/text.h"

#include <re2/re2.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>

namespace larder::tools {
namespace {

struct Pattern {
  const char* category;
  std::unique_ptr<RE2> re;
  int group;  // capture group holding the identifier (0 = whole match)
};

std::unique_ptr<RE2> compile(const char* pattern) {
  RE2::Options options;
  options.set_log_errors(false);
  auto re = std::make_unique<RE2>(pattern, options);
  // The table is fixed at build time: a pattern that does not compile is a programming error.
  if (!re->ok()) throw std::logic_error(std::string("HIPAA pattern does not compile: ") + re->error());
  return re;
}

// Order matters only for overlap resolution: earlier categories win on equal spans.
const std::vector<Pattern>& patterns() {
  static const std::vector<Pattern> table = [] {
    std::vector<Pattern> t;
    auto add = [&](const char* category, const char* pattern, int group = 0) {
      t.push_back({category, compile(pattern), group});
    };
    add("email", R"re((?i)\b[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}\b)re");
    add("url", R"re((?i)\b(?:https?|ftp)://[^\s<>"']+|\bwww\.[a-z0-9-]+\.[a-z]{2,}[^\s<>"']*)re");
    add("ssn", R"re(\b\d{3}-\d{2}-\d{4}\b)re");
    add("ssn", R"re((?i)\b(?:ssn|social security(?: number| no\.?)?)\s*[:#]?\s*(\d{9})\b)re", 1);
    add("fax",
        R"re((?i)\bfax\s*(?:no\.?|number|#)?\s*[:#]?\s*((?:\+?1[\s.-]?)?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]?\d{4})\b)re",
        1);
    add("phone", R"re((?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\b\d{3}[\s.-])\d{3}[\s.-]\d{4}\b)re");
    add("ip_address", R"re(\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b)re");
    add("ip_address", R"re((?i)\b(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}\b)re");
    add("mrn", R"re((?i)\b(?:mrn|medical record(?: number| no\.?| #)?)\s*[:#]?\s*([a-z0-9-]{4,})\b)re", 1);
    add("health_plan_number",
        R"re((?i)\b(?:member id|policy(?: number| no\.?| #)?|beneficiary(?: number| id)?|health plan(?: id| number)?|insurance id)\s*[:#]?\s*([a-z0-9-]{4,})\b)re",
        1);
    add("account_number", R"re((?i)\b(?:account|acct)(?: number| no\.?| #)?\s*[:#]?\s*([a-z0-9-]{4,})\b)re",
        1);
    add("license_number",
        R"re((?i)\b(?:license|licence|certificate|dea)(?: number| no\.?| #)?\s*[:#]?\s*([a-z0-9-]{5,})\b)re",
        1);
    add("vehicle_id", R"re((?i)\b(?:vin\s*[:#]?\s*)?([a-hj-npr-z0-9]{17})\b)re", 1);
    add("vehicle_id", R"re((?i)\b(?:license plate|plate(?: number| no\.?)?)\s*[:#]?\s*([a-z0-9-]{2,8})\b)re",
        1);
    add("device_id",
        R"re((?i)\b(?:serial(?: number| no\.?)?|device id|imei|udi)\s*[:#]?\s*([a-z0-9-]{5,})\b)re", 1);
    add("date",
        R"re(\b(?:19|20)\d{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\b)re");
    add("date", R"re(\b(?:0?[1-9]|1[0-2])[/.-](?:0?[1-9]|[12]\d|3[01])[/.-](?:19|20)?\d{2}\b)re");
    add("date",
        R"re((?i)\b(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|jun(?:e)?|jul(?:y)?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s+(?:19|20)\d{2}\b)re");
    add("date",
        R"re((?i)\b\d{1,2}\s+(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|jun(?:e)?|jul(?:y)?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?\s+(?:19|20)\d{2}\b)re");
    add("address",
        R"re((?i)\b\d{1,6}\s+(?:[a-z0-9.]+\s+){1,4}(?:street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|way|place|pl|terrace|circle|parkway|pkwy|highway|hwy)\b\.?)re");
    add("address", R"re((?i)\b(?:p\.?\s?o\.?\s+box)\s+\d+\b)re");
    add("zip_code", R"re((?i)\b(?:zip(?: code)?|postal code)\s*[:#]?\s*(\d{5}(?:-\d{4})?)\b)re", 1);
    add("zip_code", R"re(\b[A-Z]{2}\s+(\d{5}(?:-\d{4})?)\b)re", 1);
    add("age_over_89", R"re((?i)\b(?:age[d]?\s*[:=]?\s*|"age"\s*:\s*)(9\d|1[0-4]\d)\b)re", 1);
    add("age_over_89", R"re((?i)\b(9\d|1[0-4]\d)[\s-]*(?:years?|yrs?)[\s-]*old\b)re", 1);
    // Names: after a label or title, or as a JSON "... name" field; and mixed-case pairs.
    add("name",
        R"re((?i)\b(?:patient(?: name)?|name|doctor|physician|nurse|dr\.?|mr\.?|mrs\.?|ms\.?|miss)\s*[:=]?\s*"?((?-i:[A-Za-z][a-zA-Z'-]+)(?:\s+(?-i:[A-Za-z][a-zA-Z'-]+)){1,2}))re",
        1);
    add("name",
        R"re((?i)"(?:patient name|name|doctor|patient|full name|first name|last name)"\s*:\s*"([^"]{2,80})")re",
        1);
    add("name",
        R"re(\b([A-Z][a-z]+(?:[A-Z][a-zA-Z]*)?\s+[A-Za-z]*[a-z][A-Z][a-zA-Z]*|[A-Za-z]*[a-z][A-Z][a-zA-Z]*\s+[A-Za-z][a-zA-Z]+)\b)re",
        1);
    add("name", R"re(\b([A-Z][a-z]{1,15}\s+(?:[A-Z]\.\s+)?[A-Z][a-z]{1,20}(?:-[A-Z][a-z]+)?)\b)re", 1);
    return t;
  }();
  return table;
}

// Capitalised pairs that are ordinary phrases in medical text, not names.
bool is_common_phrase(std::string_view candidate) {
  static const std::set<std::string> words = {"the",
                                              "this",
                                              "that",
                                              "these",
                                              "those",
                                              "patient",
                                              "patients",
                                              "medical",
                                              "condition",
                                              "blood",
                                              "type",
                                              "date",
                                              "admission",
                                              "discharge",
                                              "test",
                                              "results",
                                              "insurance",
                                              "provider",
                                              "billing",
                                              "amount",
                                              "room",
                                              "number",
                                              "hospital",
                                              "doctor",
                                              "medication",
                                              "gender",
                                              "age",
                                              "name",
                                              "male",
                                              "female",
                                              "normal",
                                              "abnormal",
                                              "inconclusive",
                                              "elective",
                                              "emergency",
                                              "urgent",
                                              "cancer",
                                              "diabetes",
                                              "asthma",
                                              "arthritis",
                                              "hypertension",
                                              "obesity",
                                              "aspirin",
                                              "ibuprofen",
                                              "lipitor",
                                              "paracetamol",
                                              "penicillin",
                                              "aetna",
                                              "blue",
                                              "cross",
                                              "cigna",
                                              "medicare",
                                              "unitedhealthcare",
                                              "please",
                                              "send",
                                              "check",
                                              "report",
                                              "summary",
                                              "total",
                                              "average",
                                              "records",
                                              "record",
                                              "compliance",
                                              "hipaa",
                                              "safe",
                                              "harbor",
                                              "health",
                                              "care",
                                              "new",
                                              "york",
                                              "united",
                                              "states",
                                              "january",
                                              "february",
                                              "march",
                                              "april",
                                              "may",
                                              "june",
                                              "july",
                                              "august",
                                              "september",
                                              "october",
                                              "november",
                                              "december",
                                              "monday",
                                              "tuesday",
                                              "wednesday",
                                              "thursday",
                                              "friday",
                                              "saturday",
                                              "sunday",
                                              "select",
                                              "from",
                                              "where",
                                              "group",
                                              "order",
                                              "and",
                                              "or",
                                              "with",
                                              "for",
                                              "ward",
                                              "clinic",
                                              "center",
                                              "general",
                                              "memorial",
                                              "regional",
                                              "county",
                                              "first",
                                              "last",
                                              "all",
                                              "some",
                                              "any",
                                              "no",
                                              "yes",
                                              "not",
                                              "query",
                                              "data",
                                              "table",
                                              "sql"};
  size_t pos = 0;
  while (pos < candidate.size()) {
    size_t space = candidate.find_first_of(" \t\n", pos);
    const std::string word = ascii_lower(
        candidate.substr(pos, space == std::string_view::npos ? std::string_view::npos : space - pos));
    if (!word.empty() && words.count(word)) return true;
    if (space == std::string_view::npos) break;
    pos = candidate.find_first_not_of(" \t\n", space);
    if (pos == std::string_view::npos) break;
  }
  return false;
}

std::string mask(std::string_view value) {
  std::string out;
  bool first = true;
  for (unsigned char c : value) {
    if (first && std::isalnum(c)) {
      out.push_back(static_cast<char>(c));
      first = false;
    } else if (std::isalnum(c) || c >= 0x80) {
      out.push_back('*');
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

}  // namespace

HipaaReport scan_hipaa_identifiers(std::string_view text) {
  std::vector<HipaaFinding> candidates;
  for (const auto& p : patterns()) {
    const int groups = p.re->NumberOfCapturingGroups();
    std::vector<re2::StringPiece> match(static_cast<size_t>(groups) + 1);
    size_t pos = 0;
    while (pos <= text.size() && p.re->Match(re2::StringPiece(text.data(), text.size()), pos, text.size(),
                                             RE2::UNANCHORED, match.data(), groups + 1)) {
      const re2::StringPiece whole = match[0];
      const re2::StringPiece hit = match[static_cast<size_t>(p.group)];
      size_t whole_end = static_cast<size_t>(whole.data() - text.data()) + whole.size();
      if (hit.data() != nullptr && !hit.empty()) {
        std::string_view value(hit.data(), hit.size());
        bool keep = true;
        if (std::string_view(p.category) == "name") keep = !is_common_phrase(value);
        if (keep) {
          size_t start = static_cast<size_t>(hit.data() - text.data());
          candidates.push_back({p.category, start, start + hit.size(), mask(value)});
        }
      }
      pos = whole.empty() ? whole_end + 1 : whole_end;
    }
  }
  // Keep the earliest, then longest, non-overlapping findings.
  std::stable_sort(candidates.begin(), candidates.end(), [](const HipaaFinding& a, const HipaaFinding& b) {
    if (a.start != b.start) return a.start < b.start;
    return (a.end - a.start) > (b.end - b.start);
  });
  HipaaReport report;
  size_t covered_until = 0;
  for (auto& c : candidates) {
    if (!report.findings.empty() && c.start < covered_until) continue;
    covered_until = c.end;
    report.findings.push_back(std::move(c));
  }
  return report;
}

nlohmann::json to_json(const HipaaReport& report) {
  std::map<std::string, int> categories;
  nlohmann::json findings = nlohmann::json::array();
  for (const auto& f : report.findings) {
    ++categories[f.category];
    findings.push_back({{"category", f.category}, {"start", f.start}, {"end", f.end}, {"masked", f.masked}});
  }
  return {{"compliant", report.compliant()},
          {"identifier_count", report.findings.size()},
          {"categories", categories},
          {"findings", findings}};
}

}  // namespace larder::tools
