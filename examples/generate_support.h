// What the example data generators share (examples/<name>/generate.cpp): a stateless
// per-row random source, civil-date arithmetic, COPY text-format encoding, and the loader
// that replaces one table's rows with a generator's through COPY. Generated values travel
// only as COPY data: no SQL is ever built from them.
#pragma once

#include "base/result.h"
#include "db/connection.h"

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

namespace larder::examples {

// splitmix64: a stateless mix, so a row's values need no sequential state.
std::uint64_t mix(std::uint64_t x);

// The random numbers of one row: a function of (seed, row, stream) only, so row i comes out
// the same whatever is generated before it. `stream` separates independent draws for the
// same row number (e.g. a patient's name and an admission's details).
class RowRandom {
 public:
  RowRandom(std::uint64_t seed, std::uint64_t row, std::uint64_t stream)
      : state_(mix(seed ^ mix(row * 0x100000001b3ULL + stream))) {}
  std::uint64_t next() { return state_ = mix(state_); }
  // Uniform in [0, n); n > 0.
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }
  // Uniform in [lo, hi]; lo <= hi.
  int between(int lo, int hi) { return lo + static_cast<int>(below(static_cast<std::size_t>(hi - lo + 1))); }
  // True with probability p.
  bool chance(double p) { return static_cast<double>(next() >> 11) / 9007199254740992.0 < p; }

 private:
  std::uint64_t state_;
};

// Common US first and last names (96 each, ASCII letters only), in a fixed order.
std::span<const char* const> first_names();
std::span<const char* const> last_names();

// Days since 1970-01-01 <-> civil date (proleptic Gregorian).
std::int64_t days_from_civil(int y, unsigned m, unsigned d);
// "YYYY-MM-DD".
std::string civil_from_days(std::int64_t days);

// Appends `v` escaped for COPY's text format (backslash, tab, newline, carriage return).
void append_escaped(std::string& out, std::string_view v);
// An amount in cents as a numeric literal with two decimals: -1234 -> "-12.34".
std::string cents_text(std::int64_t cents);

// One line of COPY text: fields separated by tabs, escaped, '\n'-terminated by end().
//   CopyLine(out).number(id).text(name).boolean(paid).end();
class CopyLine {
 public:
  explicit CopyLine(std::string& out) : out_(out) {}
  CopyLine& text(std::string_view v);
  CopyLine& number(std::int64_t v);
  CopyLine& cents(std::int64_t v);  // numeric(…, 2)
  CopyLine& boolean(bool v);
  void end();

 private:
  void separate();
  std::string& out_;
  bool first_ = true;
};

// Appends the next row to `out` in COPY text format ('\n'-terminated) and returns true, or
// returns false (appending nothing) when the table has no more rows.
using RowSource = std::function<bool(std::string& out)>;

// Where one table's rows go. The names are the example's own constants (never values):
// `table` is schema-qualified, `columns` is the COPY column list.
struct CopyTarget {
  std::string_view table;             // "public.customers"
  std::string_view columns;           // "id, tenant_id, name"
  std::string_view truncate_options;  // after TRUNCATE <table>: "RESTART IDENTITY", "CASCADE" or ""
};

// Inside the transaction open on `conn`: TRUNCATE the table, then COPY every row `rows`
// produces into it (sent in chunks of about 64 KiB). Returns the number of rows copied. On
// error the transaction is left failed; the caller drops the connection, which rolls it back.
Result<std::size_t> truncate_and_copy(PGconn* conn, const CopyTarget& target, const RowSource& rows,
                                      db::Clock::time_point deadline);

}  // namespace larder::examples
