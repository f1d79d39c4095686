#include "examples/healthcare/generate.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>

namespace larder::examples {

using namespace larder::db;

namespace {

// splitmix64: a stateless mix so row(i) needs no sequential state.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

class RowRandom {
 public:
  RowRandom(std::uint64_t seed, std::uint64_t row, std::uint64_t stream)
      : state_(mix(seed ^ mix(row * 0x100000001b3ULL + stream))) {}
  std::uint64_t next() { return state_ = mix(state_); }
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }
  int between(int lo, int hi) { return lo + static_cast<int>(below(static_cast<std::size_t>(hi - lo + 1))); }
  bool chance(double p) { return static_cast<double>(next() >> 11) / 9007199254740992.0 < p; }

 private:
  std::uint64_t state_;
};

const std::array<const char*, 96> kFirstNames = {
    "James",   "Mary",    "Robert",  "Patricia", "John",    "Jennifer", "Michael", "Linda",   "David",
    "Elizabeth", "William", "Barbara", "Richard", "Susan",  "Joseph",   "Jessica", "Thomas",  "Sarah",
    "Charles", "Karen",   "Christopher", "Lisa", "Daniel",  "Nancy",    "Matthew", "Betty",   "Anthony",
    "Margaret", "Mark",   "Sandra",  "Donald",  "Ashley",   "Steven",  "Kimberly", "Paul",    "Emily",
    "Andrew",  "Donna",   "Joshua",  "Michelle", "Kenneth", "Carol",    "Kevin",   "Amanda",  "Brian",
    "Dorothy", "George",  "Melissa", "Timothy", "Deborah",  "Ronald",  "Stephanie", "Edward", "Rebecca",
    "Jason",   "Sharon",  "Jeffrey", "Laura",   "Ryan",     "Cynthia", "Jacob",    "Kathleen", "Gary",
    "Amy",     "Nicholas", "Angela", "Eric",    "Shirley",  "Jonathan", "Anna",    "Stephen", "Brenda",
    "Larry",   "Pamela",  "Justin",  "Emma",    "Scott",    "Nicole",  "Brandon",  "Helen",   "Benjamin",
    "Samantha", "Samuel", "Katherine", "Gregory", "Christine", "Frank", "Debra",   "Alexander", "Rachel",
    "Raymond", "Carolyn", "Patrick", "Janet",   "Bobby",    "Leslie"};

const std::array<const char*, 96> kLastNames = {
    "Smith",    "Johnson",  "Williams", "Brown",    "Jones",    "Garcia",   "Miller",   "Davis",
    "Rodriguez", "Martinez", "Hernandez", "Lopez",  "Gonzalez", "Wilson",   "Anderson", "Thomas",
    "Taylor",   "Moore",    "Jackson",  "Martin",   "Lee",      "Perez",    "Thompson", "White",
    "Harris",   "Sanchez",  "Clark",    "Ramirez",  "Lewis",    "Robinson", "Walker",   "Young",
    "Allen",    "King",     "Wright",   "Scott",    "Torres",   "Nguyen",   "Hill",     "Flores",
    "Green",    "Adams",    "Nelson",   "Baker",    "Hall",     "Rivera",   "Campbell", "Mitchell",
    "Carter",   "Roberts",  "Gomez",    "Phillips", "Evans",    "Turner",   "Diaz",     "Parker",
    "Cruz",     "Edwards",  "Collins",  "Reyes",    "Stewart",  "Morris",   "Morales",  "Murphy",
    "Cook",     "Rogers",   "Gutierrez", "Ortiz",   "Morgan",   "Cooper",   "Peterson", "Bailey",
    "Reed",     "Kelly",    "Howard",   "Ramos",    "Kim",      "Cox",      "Ward",     "Richardson",
    "Watson",   "Brooks",   "Chavez",   "Wood",     "James",    "Bennett",  "Gray",     "Mendoza",
    "Ruiz",     "Hughes",   "Price",    "Alvarez",  "Castillo", "Sanders",  "Ortega",   "Terry"};

const std::vector<std::string> kHospitals = {
    "Sons and Miller",          "Kim Inc",                 "Cook PLC",
    "Hernandez Rogers and Vang", "White-White",            "Nunez-Humphrey",
    "Group Middleton",          "Powell Robinson and Valdez", "Sons Rich and",
    "Padilla-Walker",           "Schaefer-Porter",         "Lyons-Blair",
    "Burke, Griffin and Cooper", "Walton LLC",             "Garcia Ltd",
    "Jones Brown and Mitchell", "Smith, Edwards and Obrien", "Larson and Sons",
    "Morris-Arellano",          "Williams-Davis",          "Johnson Group",
    "Houston PLC",              "Henderson-Taylor",        "Rodriguez-Nichols",
    "Wallace-Hamilton",         "Bradley-Parker",          "Fisher Ward and Ross",
    "Clark-Ortiz",              "Young Medical LLC",       "Anderson Health Partners",
    "Northside Baker Inc",      "Castillo and Reyes",      "Mendoza-Grant",
    "Evans, Hughes and Bell",   "Silva Group",             "Ramos-Kelly",
    "Patel Ltd",                "Foster and Sons"};

const std::vector<std::string> kConditions = {"Arthritis", "Asthma", "Cancer", "Diabetes", "Hypertension",
                                              "Obesity"};
const std::array<const char*, 2> kGenders = {"Male", "Female"};
const std::array<const char*, 8> kBloodTypes = {"A+", "A-", "B+", "B-", "AB+", "AB-", "O+", "O-"};
const std::array<const char*, 5> kInsurers = {"Aetna", "Blue Cross", "Cigna", "Medicare", "UnitedHealthcare"};
const std::array<const char*, 3> kAdmissionTypes = {"Elective", "Emergency", "Urgent"};
const std::array<const char*, 5> kMedications = {"Aspirin", "Ibuprofen", "Lipitor", "Paracetamol", "Penicillin"};
const std::array<const char*, 3> kTestResults = {"Abnormal", "Inconclusive", "Normal"};

// Days since 1970-01-01 <-> civil date (proleptic Gregorian).
std::int64_t days_from_civil(int y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

std::string civil_from_days(std::int64_t z) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02u", static_cast<long long>(y + (m <= 2)), m, d);
  return buf;
}

std::string mixed_case(std::string name, RowRandom& rnd) {
  for (std::size_t i = 0; i < name.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(name[i]);
    if (!std::isalpha(c)) continue;
    bool word_start = i == 0 || name[i - 1] == ' ';
    bool upper = word_start ? rnd.chance(0.75) : rnd.chance(0.3);
    name[i] = static_cast<char>(upper ? std::toupper(c) : std::tolower(c));
  }
  return name;
}

std::string proper_name(RowRandom& rnd) {
  return std::string(kFirstNames[rnd.below(kFirstNames.size())]) + " " + kLastNames[rnd.below(kLastNames.size())];
}

void append_escaped(std::string& out, const std::string& v) {
  for (char c : v) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      default: out.push_back(c);
    }
  }
}

}  // namespace

HealthRecordGenerator::HealthRecordGenerator(std::size_t rows, std::uint64_t seed)
    : rows_(rows), seed_(seed), patient_pool_(std::max<std::size_t>(1, rows * 7 / 10)) {
  // Fixed, spread-out rows for the two demo patients: 6 for Erin, 5 for David.
  if (rows >= 20) {
    for (std::size_t k = 0; k < 6; ++k) erin_rows_.push_back(k * rows / 6 + 1);
    for (std::size_t k = 0; k < 5; ++k) david_rows_.push_back(k * rows / 5 + 3);
  } else {
    for (std::size_t k = 0; k < rows; ++k) (k % 2 == 0 ? erin_rows_ : david_rows_).push_back(k);
  }
}

const std::vector<std::string>& HealthRecordGenerator::hospitals() { return kHospitals; }
const std::vector<std::string>& HealthRecordGenerator::medical_conditions() { return kConditions; }

HealthRecord HealthRecordGenerator::row(std::size_t i) const {
  RowRandom rnd(seed_, i, 1);
  HealthRecord r;
  if (std::find(erin_rows_.begin(), erin_rows_.end(), i) != erin_rows_.end()) {
    r.patient_name = kErinOrtega;
  } else if (std::find(david_rows_.begin(), david_rows_.end(), i) != david_rows_.end()) {
    r.patient_name = kDavidAnderson;
  } else {
    // Patients recur: a row picks one of ~0.7*rows patients; the patient's name (and its
    // letter case) is a function of the patient number only.
    std::size_t patient = rnd.below(patient_pool_);
    RowRandom prnd(seed_, patient, 2);
    r.patient_name = mixed_case(proper_name(prnd), prnd);
    if (r.patient_name == kErinOrtega || r.patient_name == kDavidAnderson) r.patient_name += " Jr";
  }
  r.age = rnd.between(13, 89);
  r.gender = kGenders[rnd.below(kGenders.size())];
  r.blood_type = kBloodTypes[rnd.below(kBloodTypes.size())];
  r.medical_condition = kConditions[rnd.below(kConditions.size())];
  static const std::int64_t first_day = days_from_civil(2019, 5, 8);
  static const std::int64_t last_day = days_from_civil(2024, 5, 7);
  std::int64_t admitted = first_day + static_cast<std::int64_t>(rnd.below(static_cast<std::size_t>(last_day - first_day + 1)));
  r.date_of_admission = civil_from_days(admitted);
  r.discharge_date = civil_from_days(admitted + rnd.between(1, 30));
  r.doctor = proper_name(rnd);
  r.hospital = kHospitals[rnd.below(kHospitals.size())];
  r.insurance_provider = kInsurers[rnd.below(kInsurers.size())];
  if (rnd.chance(0.002)) {
    r.billing_cents = -static_cast<std::int64_t>(rnd.below(200'000));  // a few slightly negative, as in the original
  } else {
    r.billing_cents = static_cast<std::int64_t>(rnd.below(5'280'000));
  }
  r.room_number = rnd.between(101, 500);
  r.admission_type = kAdmissionTypes[rnd.below(kAdmissionTypes.size())];
  r.medication = kMedications[rnd.below(kMedications.size())];
  r.test_results = kTestResults[rnd.below(kTestResults.size())];
  return r;
}

void append_copy_line(std::string& out, const HealthRecord& r) {
  auto field = [&out](const std::string& v) {
    append_escaped(out, v);
    out.push_back('\t');
  };
  char billing[32];
  std::int64_t abs_cents = r.billing_cents < 0 ? -r.billing_cents : r.billing_cents;
  std::snprintf(billing, sizeof billing, "%s%lld.%02lld", r.billing_cents < 0 ? "-" : "",
                static_cast<long long>(abs_cents / 100), static_cast<long long>(abs_cents % 100));
  field(r.patient_name);
  field(std::to_string(r.age));
  field(r.gender);
  field(r.blood_type);
  field(r.medical_condition);
  field(r.date_of_admission);
  field(r.doctor);
  field(r.hospital);
  field(r.insurance_provider);
  field(billing);
  field(std::to_string(r.room_number));
  field(r.admission_type);
  field(r.discharge_date);
  field(r.medication);
  append_escaped(out, r.test_results);
  out.push_back('\n');
}

Result<SeedReport> seed_health_records(const ConnParams& admin, std::size_t rows, std::uint64_t seed) {
  auto start = Clock::now();
  auto deadline = start + std::chrono::minutes(10);
  auto conn = admin.connect(deadline);
  if (!conn) return conn.error();
  PGconn* c = conn->get();
  if (auto r = exec_script(c, "BEGIN; TRUNCATE public.health_records RESTART IDENTITY", deadline); !r)
    return r.error();
  auto copy_start = Clock::now();
  PgResult res(PQexec(c,
                      "COPY public.health_records (\"Patient Name\", \"Age\", \"Gender\", \"Blood Type\", "
                      "\"Medical Condition\", \"Date of Admission\", \"Doctor\", \"Hospital\", "
                      "\"Insurance Provider\", \"Billing Amount\", \"Room Number\", \"Admission Type\", "
                      "\"Discharge Date\", \"Medication\", \"Test Results\") FROM STDIN"));
  if (!res || PQresultStatus(res.get()) != PGRES_COPY_IN)
    return error_from_result(res.get(), c, "starting COPY into health_records");
  HealthRecordGenerator gen(rows, seed);
  std::string buf;
  buf.reserve(1 << 17);
  for (std::size_t i = 0; i < rows; ++i) {
    append_copy_line(buf, gen.row(i));
    if (buf.size() >= (1 << 16) || i + 1 == rows) {
      if (PQputCopyData(c, buf.data(), static_cast<int>(buf.size())) != 1)
        return error_from_connection(c, "sending COPY data");
      buf.clear();
    }
  }
  if (PQputCopyEnd(c, nullptr) != 1) return error_from_connection(c, "ending COPY");
  PgResult last;
  while (PgResult r{PQgetResult(c)}) last = std::move(r);
  if (!last || PQresultStatus(last.get()) != PGRES_COMMAND_OK) {
    auto err = error_from_result(last.get(), c, "COPY into health_records");
    (void)exec_script(c, "ROLLBACK", deadline);
    return err;
  }
  auto copy_end = Clock::now();
  if (auto r = exec_script(c, "COMMIT", deadline); !r) return r.error();
  if (auto r = exec_script(c, "ANALYZE public.health_records", deadline); !r) return r.error();
  SeedReport report;
  report.rows = rows;
  report.copy_time = std::chrono::duration_cast<std::chrono::milliseconds>(copy_end - copy_start);
  report.total_time = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  return report;
}

}  // namespace larder::examples
