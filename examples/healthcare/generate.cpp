#include "examples/healthcare/generate.h"

#include "examples/generate_support.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace larder::examples {

using namespace larder::db;

namespace {

const std::vector<std::string> kHospitals = {"Sons and Miller",
                                             "Kim Inc",
                                             "Cook PLC",
                                             "Hernandez Rogers and Vang",
                                             "White-White",
                                             "Nunez-Humphrey",
                                             "Group Middleton",
                                             "Powell Robinson and Valdez",
                                             "Sons Rich and",
                                             "Padilla-Walker",
                                             "Schaefer-Porter",
                                             "Lyons-Blair",
                                             "Burke, Griffin and Cooper",
                                             "Walton LLC",
                                             "Garcia Ltd",
                                             "Jones Brown and Mitchell",
                                             "Smith, Edwards and Obrien",
                                             "Larson and Sons",
                                             "Morris-Arellano",
                                             "Williams-Davis",
                                             "Johnson Group",
                                             "Houston PLC",
                                             "Henderson-Taylor",
                                             "Rodriguez-Nichols",
                                             "Wallace-Hamilton",
                                             "Bradley-Parker",
                                             "Fisher Ward and Ross",
                                             "Clark-Ortiz",
                                             "Young Medical LLC",
                                             "Anderson Health Partners",
                                             "Northside Baker Inc",
                                             "Castillo and Reyes",
                                             "Mendoza-Grant",
                                             "Evans, Hughes and Bell",
                                             "Silva Group",
                                             "Ramos-Kelly",
                                             "Patel Ltd",
                                             "Foster and Sons"};

const std::vector<std::string> kConditions = {"Arthritis", "Asthma",       "Cancer",
                                              "Diabetes",  "Hypertension", "Obesity"};
const std::array<const char*, 2> kGenders = {"Male", "Female"};
const std::array<const char*, 8> kBloodTypes = {"A+", "A-", "B+", "B-", "AB+", "AB-", "O+", "O-"};
const std::array<const char*, 5> kInsurers = {"Aetna", "Blue Cross", "Cigna", "Medicare", "UnitedHealthcare"};
const std::array<const char*, 3> kAdmissionTypes = {"Elective", "Emergency", "Urgent"};
const std::array<const char*, 5> kMedications = {"Aspirin", "Ibuprofen", "Lipitor", "Paracetamol",
                                                 "Penicillin"};
const std::array<const char*, 3> kTestResults = {"Abnormal", "Inconclusive", "Normal"};

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
  const auto first = first_names();
  const auto last = last_names();
  return std::string(first[rnd.below(first.size())]) + " " + last[rnd.below(last.size())];
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

const std::vector<std::string>& HealthRecordGenerator::hospitals() {
  return kHospitals;
}
const std::vector<std::string>& HealthRecordGenerator::medical_conditions() {
  return kConditions;
}

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
  std::int64_t admitted =
      first_day + static_cast<std::int64_t>(rnd.below(static_cast<std::size_t>(last_day - first_day + 1)));
  r.date_of_admission = civil_from_days(admitted);
  r.discharge_date = civil_from_days(admitted + rnd.between(1, 30));
  r.doctor = proper_name(rnd);
  r.hospital = kHospitals[rnd.below(kHospitals.size())];
  r.insurance_provider = kInsurers[rnd.below(kInsurers.size())];
  if (rnd.chance(0.002)) {
    r.billing_cents =
        -static_cast<std::int64_t>(rnd.below(200'000));  // a few slightly negative, as in the original
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
  field(r.patient_name);
  field(std::to_string(r.age));
  field(r.gender);
  field(r.blood_type);
  field(r.medical_condition);
  field(r.date_of_admission);
  field(r.doctor);
  field(r.hospital);
  field(r.insurance_provider);
  field(cents_text(r.billing_cents));
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
  if (auto r = exec_script(c, "BEGIN", deadline); !r) return r.error();
  auto copy_start = Clock::now();
  HealthRecordGenerator gen(rows, seed);
  std::size_t next = 0;
  const RowSource source = [&gen, &next, rows](std::string& out) {
    if (next == rows) return false;
    append_copy_line(out, gen.row(next++));
    return true;
  };
  const CopyTarget target{"public.health_records",
                          "\"Patient Name\", \"Age\", \"Gender\", \"Blood Type\", \"Medical Condition\", "
                          "\"Date of Admission\", \"Doctor\", \"Hospital\", \"Insurance Provider\", "
                          "\"Billing Amount\", \"Room Number\", \"Admission Type\", \"Discharge Date\", "
                          "\"Medication\", \"Test Results\"",
                          "RESTART IDENTITY"};
  auto copied = truncate_and_copy(c, target, source, deadline);
  if (!copied) {
    (void)exec_script(c, "ROLLBACK", deadline);
    return copied.error();
  }
  auto copy_end = Clock::now();
  if (auto r = exec_script(c, "COMMIT", deadline); !r) return r.error();
  if (auto r = exec_script(c, "ANALYZE public.health_records", deadline); !r) return r.error();
  SeedReport report;
  report.rows = *copied;
  report.copy_time = std::chrono::duration_cast<std::chrono::milliseconds>(copy_end - copy_start);
  report.total_time = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  return report;
}

}  // namespace larder::examples
