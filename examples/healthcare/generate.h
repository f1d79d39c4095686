// The synthetic healthcare data set (its shape: docs/database.md): a
// deterministic generator and a COPY-based loader. The same (rows, seed) always yields the
// same rows. "Erin oRTEga" and "DAvID AndErSON" are guaranteed several admissions each
// (given at least 20 rows).
#pragma once

#include "base/result.h"
#include "db/connection.h"
#include "examples/examples.h"

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace larder::examples {

using db::ConnParams;

inline constexpr std::size_t kDefaultSeedRows = 55'500;
inline constexpr std::uint64_t kDefaultSeed = 20240501;
inline constexpr const char* kErinOrtega = "Erin oRTEga";
inline constexpr const char* kDavidAnderson = "DAvID AndErSON";

struct HealthRecord {
  std::string patient_name;
  int age = 0;
  std::string gender;
  std::string blood_type;
  std::string medical_condition;
  std::string date_of_admission;  // YYYY-MM-DD
  std::string doctor;
  std::string hospital;
  std::string insurance_provider;
  std::int64_t billing_cents = 0;
  int room_number = 0;
  std::string admission_type;
  std::string discharge_date;  // YYYY-MM-DD
  std::string medication;
  std::string test_results;
};

class HealthRecordGenerator {
 public:
  HealthRecordGenerator(std::size_t rows, std::uint64_t seed);
  std::size_t size() const { return rows_; }
  // Row i (0-based) of the data set; deterministic, independent of call order.
  HealthRecord row(std::size_t i) const;

  static const std::vector<std::string>& hospitals();
  static const std::vector<std::string>& medical_conditions();

 private:
  std::size_t rows_;
  std::uint64_t seed_;
  std::size_t patient_pool_;
  std::vector<std::size_t> erin_rows_, david_rows_;
};

// One row in COPY text format (tab-separated, escaped, '\n'-terminated).
void append_copy_line(std::string& out, const HealthRecord& r);

// Replaces the contents of public.health_records with the generated rows (TRUNCATE, COPY,
// ANALYZE) in one transaction. `admin` must be a superuser connection to the database.
Result<SeedReport> seed_health_records(const ConnParams& admin, std::size_t rows = kDefaultSeedRows,
                                       std::uint64_t seed = kDefaultSeed);

}  // namespace larder::examples
