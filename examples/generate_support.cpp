#include "examples/generate_support.h"

#include <array>
#include <cstdio>

namespace larder::examples {

using namespace larder::db;

namespace {

const std::array<const char*, 96> kFirstNames = {
    "James",     "Mary",      "Robert",  "Patricia",  "John",        "Jennifer",  "Michael", "Linda",
    "David",     "Elizabeth", "William", "Barbara",   "Richard",     "Susan",     "Joseph",  "Jessica",
    "Thomas",    "Sarah",     "Charles", "Karen",     "Christopher", "Lisa",      "Daniel",  "Nancy",
    "Matthew",   "Betty",     "Anthony", "Margaret",  "Mark",        "Sandra",    "Donald",  "Ashley",
    "Steven",    "Kimberly",  "Paul",    "Emily",     "Andrew",      "Donna",     "Joshua",  "Michelle",
    "Kenneth",   "Carol",     "Kevin",   "Amanda",    "Brian",       "Dorothy",   "George",  "Melissa",
    "Timothy",   "Deborah",   "Ronald",  "Stephanie", "Edward",      "Rebecca",   "Jason",   "Sharon",
    "Jeffrey",   "Laura",     "Ryan",    "Cynthia",   "Jacob",       "Kathleen",  "Gary",    "Amy",
    "Nicholas",  "Angela",    "Eric",    "Shirley",   "Jonathan",    "Anna",      "Stephen", "Brenda",
    "Larry",     "Pamela",    "Justin",  "Emma",      "Scott",       "Nicole",    "Brandon", "Helen",
    "Benjamin",  "Samantha",  "Samuel",  "Katherine", "Gregory",     "Christine", "Frank",   "Debra",
    "Alexander", "Rachel",    "Raymond", "Carolyn",   "Patrick",     "Janet",     "Bobby",   "Leslie"};

const std::array<const char*, 96> kLastNames = {
    "Smith",     "Johnson",  "Williams",  "Brown",    "Jones",    "Garcia",   "Miller",   "Davis",
    "Rodriguez", "Martinez", "Hernandez", "Lopez",    "Gonzalez", "Wilson",   "Anderson", "Thomas",
    "Taylor",    "Moore",    "Jackson",   "Martin",   "Lee",      "Perez",    "Thompson", "White",
    "Harris",    "Sanchez",  "Clark",     "Ramirez",  "Lewis",    "Robinson", "Walker",   "Young",
    "Allen",     "King",     "Wright",    "Scott",    "Torres",   "Nguyen",   "Hill",     "Flores",
    "Green",     "Adams",    "Nelson",    "Baker",    "Hall",     "Rivera",   "Campbell", "Mitchell",
    "Carter",    "Roberts",  "Gomez",     "Phillips", "Evans",    "Turner",   "Diaz",     "Parker",
    "Cruz",      "Edwards",  "Collins",   "Reyes",    "Stewart",  "Morris",   "Morales",  "Murphy",
    "Cook",      "Rogers",   "Gutierrez", "Ortiz",    "Morgan",   "Cooper",   "Peterson", "Bailey",
    "Reed",      "Kelly",    "Howard",    "Ramos",    "Kim",      "Cox",      "Ward",     "Richardson",
    "Watson",    "Brooks",   "Chavez",    "Wood",     "James",    "Bennett",  "Gray",     "Mendoza",
    "Ruiz",      "Hughes",   "Price",     "Alvarez",  "Castillo", "Sanders",  "Ortega",   "Terry"};

}  // namespace

std::span<const char* const> first_names() {
  return kFirstNames;
}
std::span<const char* const> last_names() {
  return kLastNames;
}

std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

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

void append_escaped(std::string& out, std::string_view v) {
  for (char c : v) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out.push_back(c);
    }
  }
}

std::string cents_text(std::int64_t cents) {
  char buf[32];
  const std::int64_t abs_cents = cents < 0 ? -cents : cents;
  std::snprintf(buf, sizeof buf, "%s%lld.%02lld", cents < 0 ? "-" : "",
                static_cast<long long>(abs_cents / 100), static_cast<long long>(abs_cents % 100));
  return buf;
}

void CopyLine::separate() {
  if (!first_) out_.push_back('\t');
  first_ = false;
}

CopyLine& CopyLine::text(std::string_view v) {
  separate();
  append_escaped(out_, v);
  return *this;
}

CopyLine& CopyLine::number(std::int64_t v) {
  separate();
  out_ += std::to_string(v);
  return *this;
}

CopyLine& CopyLine::cents(std::int64_t v) {
  separate();
  out_ += cents_text(v);
  return *this;
}

CopyLine& CopyLine::boolean(bool v) {
  separate();
  out_ += v ? "true" : "false";
  return *this;
}

void CopyLine::end() {
  out_.push_back('\n');
}

Result<std::size_t> truncate_and_copy(PGconn* c, const CopyTarget& target, const RowSource& rows,
                                      Clock::time_point deadline) {
  std::string truncate = "TRUNCATE ";
  truncate.append(target.table);
  if (!target.truncate_options.empty()) truncate.append(" ").append(target.truncate_options);
  if (auto r = exec_script(c, truncate, deadline); !r) return r.error();
  std::string what = "COPY into ";
  what.append(target.table);
  std::string copy = "COPY ";
  copy.append(target.table).append(" (").append(target.columns).append(") FROM STDIN");
  PgResult res(PQexec(c, copy.c_str()));
  if (!res || PQresultStatus(res.get()) != PGRES_COPY_IN)
    return error_from_result(res.get(), c, "starting " + what);
  constexpr std::size_t kChunk = 1 << 16;
  std::string buf;
  buf.reserve(2 * kChunk);
  std::size_t count = 0;
  bool more = true;
  while (more) {
    more = rows(buf);
    if (more) ++count;
    if (!buf.empty() && (buf.size() >= kChunk || !more)) {
      if (PQputCopyData(c, buf.data(), static_cast<int>(buf.size())) != 1)
        return error_from_connection(c, "sending COPY data for " + std::string(target.table));
      buf.clear();
    }
  }
  if (PQputCopyEnd(c, nullptr) != 1) return error_from_connection(c, "ending " + what);
  PgResult last;
  while (PgResult r{PQgetResult(c)}) last = std::move(r);
  if (!last || PQresultStatus(last.get()) != PGRES_COMMAND_OK) return error_from_result(last.get(), c, what);
  return count;
}

}  // namespace larder::examples
