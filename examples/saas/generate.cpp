#include "examples/saas/generate.h"

#include "examples/generate_support.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <functional>
#include <utility>

namespace larder::examples::saas {

using namespace larder::db;

namespace {

// Independent draws for the same row number (RowRandom's stream).
constexpr std::uint64_t kUserStream = 11;
constexpr std::uint64_t kCustomerStream = 12;
constexpr std::uint64_t kInvoiceStream = 13;
constexpr std::uint64_t kLineStream = 14;

struct Product {
  const char* name;
  std::int64_t price_cents;
};

const std::array<Product, kProductCount> kProducts = {{
    {"Starter plan (monthly)", 2'900},    {"Team plan (monthly)", 9'900},
    {"Business plan (monthly)", 29'900},  {"Enterprise plan (monthly)", 149'900},
    {"Starter plan (annual)", 29'000},    {"Team plan (annual)", 99'000},
    {"Business plan (annual)", 299'000},  {"Additional seat (monthly)", 1'200},
    {"Additional seat (annual)", 12'000}, {"Extra storage, 100 GB", 2'000},
    {"Extra storage, 1 TB", 15'000},      {"Priority support", 19'900},
    {"Premium support", 49'900},          {"Onboarding workshop", 120'000},
    {"Data migration", 250'000},          {"Custom integration (hour)", 18'000},
    {"Training session", 45'000},         {"API calls, 1M", 4'900},
    {"SMS notifications, 1k", 1'500},     {"Email notifications, 100k", 2'500},
    {"Single sign-on add-on", 9'900},     {"Audit log retention, 1 year", 7'900},
    {"Sandbox environment", 14'900},      {"Dedicated IP address", 3'900},
    {"Consulting day", 140'000},
}};

const std::array<const char*, 3> kCustomerDomains = {"example.com", "example.net", "example.org"};
const std::array<const char*, 10> kAreaCodes = {"212", "206", "303", "312", "404",
                                                "415", "512", "602", "617", "713"};
const std::array<int, 5> kPaymentTermsDays = {14, 30, 30, 45, 60};
const std::array<const char*, 12> kNotes = {
    "",
    "",
    "",
    "Pays late; call the finance contact before sending reminders.",
    "Key account: renewal negotiated directly with their CFO.",
    "Asked not to be contacted by phone.",
    "Disputed an invoice in 2023; settled with a credit note.",
    "Tax-exempt; certificate on file.",
    "Referred by an existing customer; 10% discount promised for year one.",
    "Prefers paper invoices by post.",
    "Payment plan agreed: three instalments.",
    "Under collections review; escalate before extending credit.",
};

std::int64_t day(const char* yyyy_mm_dd) {
  int y = 0;
  unsigned m = 0, d = 0;
  std::sscanf(yyyy_mm_dd, "%d-%u-%u", &y, &m, &d);
  return days_from_civil(y, m, d);
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// A random version-4 UUID from the row's random numbers.
std::string uuid(RowRandom& rnd) {
  const std::uint64_t hi = (rnd.next() & ~0xF000ULL) | 0x4000ULL;
  const std::uint64_t lo = (rnd.next() & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;
  char buf[40];
  std::snprintf(
      buf, sizeof buf, "%08llx-%04llx-%04llx-%04llx-%012llx", static_cast<unsigned long long>(hi >> 32),
      static_cast<unsigned long long>((hi >> 16) & 0xFFFF), static_cast<unsigned long long>(hi & 0xFFFF),
      static_cast<unsigned long long>(lo >> 48), static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFULL));
  return buf;
}

// A tenant index drawn by the tenants' weights.
std::size_t weighted_tenant(RowRandom& rnd) {
  int total = 0;
  for (const auto& t : kTenants) total += t.weight;
  int r = static_cast<int>(rnd.below(static_cast<std::size_t>(total)));
  for (std::size_t i = 0; i < kTenants.size(); ++i) {
    if (r < kTenants[i].weight) return i;
    r -= kTenants[i].weight;
  }
  return 0;
}

struct Person {
  std::string first, last;
};

Person person(RowRandom& rnd) {
  const auto first = first_names();
  const auto last = last_names();
  Person p;
  p.first = first[rnd.below(first.size())];
  p.last = last[rnd.below(last.size())];
  return p;
}

struct UserRow {
  std::string id;
  std::size_t tenant = 0;
  std::string email, full_name;
  bool is_admin = false;
};

struct CustomerRow {
  std::int64_t id = 0;
  std::size_t tenant = 0;
  std::string name, email, phone, notes;
  std::int64_t created_on = 0;
};

struct InvoiceRow {
  std::int64_t id = 0, customer_id = 0;
  std::int64_t issued_on = 0, due_on = 0;
  bool paid = false;
};

struct LineRow {
  std::int64_t product_id = 0;
  int quantity = 0;
  std::int64_t amount_cents = 0;
};

class Generator {
 public:
  Generator(std::size_t rows, std::uint64_t seed)
      : invoices_(rows), users_(user_count(rows)), customers_(customer_count(rows)), seed_(seed) {}

  std::size_t invoices() const { return invoices_; }
  std::size_t users() const { return users_; }
  std::size_t customers() const { return customers_; }

  // User i (0-based): the first kTenants.size() are the tenants' admins, in tenant order.
  UserRow user(std::size_t i) const {
    RowRandom rnd(seed_, i, kUserStream);
    UserRow u;
    u.id = uuid(rnd);
    if (i < kTenants.size()) {
      u.tenant = i;
      u.is_admin = true;
    } else {
      u.tenant = weighted_tenant(rnd);
      u.is_admin = rnd.chance(0.1);
    }
    const Person p = person(rnd);
    u.full_name = p.first + " " + p.last;
    u.email = lower(p.first) + "." + lower(p.last) + "@" + kTenants[u.tenant].domain;
    return u;
  }

  // Customer `id` (1-based).
  CustomerRow customer(std::int64_t id) const {
    RowRandom rnd(seed_, static_cast<std::uint64_t>(id), kCustomerStream);
    CustomerRow c;
    c.id = id;
    if (id <= static_cast<std::int64_t>(kAcmeCustomers)) {
      c.tenant = 0;
    } else if (id == kGlobexCustomer) {
      c.tenant = 1;
    } else if (id == kInitechCustomer) {
      c.tenant = 2;
    } else {
      c.tenant = weighted_tenant(rnd);
    }
    const Person p = person(rnd);
    c.name = p.first + " " + p.last;
    c.email = lower(p.first) + "." + lower(p.last);
    if (rnd.chance(0.3)) c.email += std::to_string(rnd.between(1, 99));
    c.email += std::string("@") + kCustomerDomains[rnd.below(kCustomerDomains.size())];
    char phone[32];
    std::snprintf(phone, sizeof phone, "+1-%s-555-01%02d", kAreaCodes[rnd.below(kAreaCodes.size())],
                  rnd.between(0, 99));
    c.phone = phone;
    c.notes = kNotes[rnd.below(kNotes.size())];
    // Created after its tenant, at least 60 days before kAsOf.
    const std::int64_t first = day(kTenants[c.tenant].created_on);
    const std::int64_t last = day(kAsOf) - 60;
    c.created_on = first + static_cast<std::int64_t>(rnd.below(static_cast<std::size_t>(last - first + 1)));
    if (id == kAcmeCustomerId) {
      c.name = kAcmeCustomerName;
      c.email = kAcmeCustomerEmail;
      c.phone = kAcmeCustomerPhone;
      c.notes = kAcmeCustomerNotes;
      c.created_on = day("2021-04-14");
    }
    return c;
  }

  // Invoice `id` (1-based); its total is the sum of lines(id).
  InvoiceRow invoice(std::int64_t id) const {
    RowRandom rnd(seed_, static_cast<std::uint64_t>(id), kInvoiceStream);
    InvoiceRow inv;
    inv.id = id;
    if (id <= static_cast<std::int64_t>(kFixedCustomers)) {
      inv.customer_id = id;
    } else {
      inv.customer_id = 1 + static_cast<std::int64_t>(rnd.below(customers_));
    }
    const std::int64_t as_of = day(kAsOf);
    const std::int64_t created = customer(inv.customer_id).created_on;
    inv.issued_on =
        created + static_cast<std::int64_t>(rnd.below(static_cast<std::size_t>(as_of - created + 1)));
    inv.due_on = inv.issued_on + kPaymentTermsDays[rnd.below(kPaymentTermsDays.size())];
    // Most invoices get paid, nearly all of those overdue by more than a year.
    const double paid = inv.due_on >= as_of ? 0.3 : as_of - inv.due_on > 365 ? 0.985 : 0.85;
    inv.paid = rnd.chance(paid);
    if (id == kAcmeOverdueInvoice) {
      inv.issued_on = as_of - 75;
      inv.due_on = as_of - 45;
      inv.paid = false;
    }
    return inv;
  }

  // The lines of invoice `id`: 1 to 5.
  std::vector<LineRow> lines(std::int64_t invoice_id) const {
    RowRandom rnd(seed_, static_cast<std::uint64_t>(invoice_id), kLineStream);
    std::vector<LineRow> out(static_cast<std::size_t>(rnd.between(1, 5)));
    for (auto& l : out) {
      l.product_id = 1 + static_cast<std::int64_t>(rnd.below(kProducts.size()));
      l.quantity = rnd.chance(0.6) ? 1 : rnd.between(2, 12);
      l.amount_cents = l.quantity * kProducts[static_cast<std::size_t>(l.product_id - 1)].price_cents;
    }
    return out;
  }

  std::int64_t total_cents(std::int64_t invoice_id) const {
    std::int64_t total = 0;
    for (const auto& l : lines(invoice_id)) total += l.amount_cents;
    return total;
  }

 private:
  std::size_t invoices_, users_, customers_;
  std::uint64_t seed_;
};

// A RowSource for rows 0..n-1 of `row`.
RowSource indexed(std::size_t n, std::function<void(std::string&, std::size_t)> row) {
  return [n, row = std::move(row), next = std::size_t{0}](std::string& out) mutable {
    if (next == n) return false;
    row(out, next++);
    return true;
  };
}

// invoice_lines: the lines of invoices 1..n in order, numbered from 1.
RowSource invoice_lines(const Generator& g) {
  struct State {
    std::int64_t invoice = 0;  // the invoice whose lines are pending
    std::vector<LineRow> pending;
    std::size_t next = 0;  // in pending
    std::int64_t id = 0;   // of the last line written
  };
  return [&g, s = State{}](std::string& out) mutable {
    while (s.next == s.pending.size()) {
      if (s.invoice == static_cast<std::int64_t>(g.invoices())) return false;
      s.pending = g.lines(++s.invoice);
      s.next = 0;
    }
    const LineRow& l = s.pending[s.next++];
    CopyLine(out)
        .number(++s.id)
        .number(s.invoice)
        .number(l.product_id)
        .number(l.quantity)
        .cents(l.amount_cents)
        .end();
    return true;
  };
}

struct Table {
  CopyTarget target;
  RowSource rows;
};

// The six tables in load order; the sources read `g`, which must outlive them.
std::vector<Table> tables(const Generator& g) {
  std::vector<Table> out;
  out.push_back({{"public.tenants", "id, name, plan, created_on", "CASCADE"},
                 indexed(kTenants.size(), [](std::string& o, std::size_t i) {
                   const Tenant& t = kTenants[i];
                   CopyLine(o).text(t.id).text(t.name).text(t.plan).text(t.created_on).end();
                 })});
  out.push_back({{"public.products", "id, sku, name, price", "CASCADE"},
                 indexed(kProducts.size(), [](std::string& o, std::size_t i) {
                   const auto id = static_cast<std::int64_t>(i + 1);
                   CopyLine(o)
                       .number(id)
                       .text("LRD-" + std::to_string(1000 + id))
                       .text(kProducts[i].name)
                       .cents(kProducts[i].price_cents)
                       .end();
                 })});
  out.push_back({{"public.users", "id, tenant_id, email, full_name, is_admin", "CASCADE"},
                 indexed(g.users(), [&g](std::string& o, std::size_t i) {
                   const UserRow u = g.user(i);
                   CopyLine(o)
                       .text(u.id)
                       .text(kTenants[u.tenant].id)
                       .text(u.email)
                       .text(u.full_name)
                       .boolean(u.is_admin)
                       .end();
                 })});
  out.push_back(
      {{"public.customers", "id, tenant_id, name, email, phone, internal_notes, created_on", "CASCADE"},
       indexed(g.customers(), [&g](std::string& o, std::size_t i) {
         const CustomerRow c = g.customer(static_cast<std::int64_t>(i + 1));
         CopyLine(o)
             .number(c.id)
             .text(kTenants[c.tenant].id)
             .text(c.name)
             .text(c.email)
             .text(c.phone)
             .text(c.notes)
             .text(civil_from_days(c.created_on))
             .end();
       })});
  out.push_back({{"public.invoices", "id, customer_id, number, issued_on, due_on, total, paid", "CASCADE"},
                 indexed(g.invoices(), [&g](std::string& o, std::size_t i) {
                   const InvoiceRow inv = g.invoice(static_cast<std::int64_t>(i + 1));
                   const std::string issued = civil_from_days(inv.issued_on);
                   char number[40];
                   std::snprintf(number, sizeof number, "INV-%.4s-%06lld", issued.c_str(),
                                 static_cast<long long>(inv.id));
                   CopyLine(o)
                       .number(inv.id)
                       .number(inv.customer_id)
                       .text(number)
                       .text(issued)
                       .text(civil_from_days(inv.due_on))
                       .cents(g.total_cents(inv.id))
                       .boolean(inv.paid)
                       .end();
                 })});
  out.push_back({{"public.invoice_lines", "id, invoice_id, product_id, quantity, amount", "CASCADE"},
                 invoice_lines(g)});
  return out;
}

}  // namespace

std::size_t user_count(std::size_t rows) {
  return std::max<std::size_t>(2 * kTenants.size(), rows / 100);
}
std::size_t customer_count(std::size_t rows) {
  return std::max<std::size_t>(rows / 8, kFixedCustomers);
}

std::vector<TableText> copy_text(std::size_t rows, std::uint64_t seed) {
  const Generator g(rows, seed);
  std::vector<TableText> out;
  for (auto& t : tables(g)) {
    TableText text;
    text.table = t.target.table;
    text.columns = t.target.columns;
    while (t.rows(text.text)) ++text.rows;
    out.push_back(std::move(text));
  }
  return out;
}

Result<SeedReport> seed(const ConnParams& admin, std::size_t rows, std::uint64_t seed) {
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::minutes(10);
  auto conn = admin.connect(deadline);
  if (!conn) return conn.error();
  PGconn* c = conn->get();
  if (auto r = exec_script(c, "BEGIN", deadline); !r) return r.error();
  const Generator g(rows, seed);
  SeedReport report;
  std::string analyze = "ANALYZE ";
  const auto copy_start = Clock::now();
  for (auto& t : tables(g)) {
    auto copied = truncate_and_copy(c, t.target, t.rows, deadline);
    if (!copied) {
      (void)exec_script(c, "ROLLBACK", deadline);
      return copied.error();
    }
    report.rows += *copied;
    if (analyze.back() != ' ') analyze += ", ";
    analyze += t.target.table;
  }
  const auto copy_end = Clock::now();
  if (auto r = exec_script(c, "COMMIT", deadline); !r) return r.error();
  if (auto r = exec_script(c, analyze, deadline); !r) return r.error();
  report.copy_time = std::chrono::duration_cast<std::chrono::milliseconds>(copy_end - copy_start);
  report.total_time = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  return report;
}

}  // namespace larder::examples::saas
