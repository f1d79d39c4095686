// The synthetic multi-tenant SaaS data set (examples/saas/schema.sql): tenants, their users
// and customers, the customers' invoices and invoice lines, and a shared product catalogue.
// A deterministic generator and a COPY-based loader: the same (rows, seed) always yields the
// same bytes.
//
// `rows` is the number of invoices. The other tables scale with it:
//   tenants        kTenants.size() (8), fixed: the seed does not change them
//   products       kProductCount (25), fixed
//   users          max(2 * tenants, rows / 100); the first user of each tenant is its admin
//   customers      max(rows / 8, kFixedCustomers)
//   invoices       rows
//   invoice_lines  1 to 5 per invoice (about 3 * rows)
// At kDefaultRows: 8 tenants, 25 products, 200 users, 2,500 customers, 20,000 invoices and
// kDefaultInvoiceLines invoice lines.
//
// Fixed rows the tests and the demo rely on (given rows >= kFixedCustomers, so that each of
// these customers has an invoice):
//   customers 1..5 belong to Acme, 6 to Globex, 7 to Initech; invoice i (i = 1..7) is customer
//   i's, and every invoice has at least one line;
//   customer 1 is kAcmeCustomerName / kAcmeCustomerEmail / kAcmeCustomerPhone with the
//   internal note kAcmeCustomerNotes; invoice 1 (kAcmeOverdueInvoice) is unpaid and overdue
//   on kAsOf.
// Every value is fictional: emails are at example.com/.net/.org (customers) or at
// <tenant>.example (users); phone numbers are in the 555-0100..555-0199 range reserved for
// fiction.
#pragma once

#include "base/result.h"
#include "db/connection.h"
#include "examples/examples.h"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace larder::examples::saas {

inline constexpr std::size_t kDefaultRows = 20'000;  // invoices
inline constexpr std::uint64_t kDefaultSeed = 20250630;
// invoice_lines at (kDefaultRows, kDefaultSeed).
inline constexpr std::size_t kDefaultInvoiceLines = 59'802;

// The day the data set describes: nothing is created or issued after it; an unpaid invoice
// due before it is overdue.
inline constexpr const char* kAsOf = "2025-06-30";

struct Tenant {
  const char* id;          // uuid
  const char* name;        // unique
  const char* plan;        // free, team, business, enterprise
  const char* created_on;  // YYYY-MM-DD
  const char* domain;      // its users' email domain
  int weight;              // share of the generated customers and users, in percent
};

inline constexpr const char* kAcmeTenant = "6c09ed4c-60a4-46d7-88e4-1a8e1862e5e0";
inline constexpr const char* kAcmeName = "Acme Corporation";
inline constexpr const char* kGlobexTenant = "1b4f2a92-e851-4dfa-9100-b9a2c19bf48c";
inline constexpr const char* kGlobexName = "Globex Corporation";
inline constexpr const char* kInitechTenant = "239c1d95-fdae-477a-a536-a99d8c2fdd72";
inline constexpr const char* kInitechName = "Initech";

// Every tenant, in the order they are written (Acme, Globex and Initech first).
inline constexpr std::array<Tenant, 8> kTenants = {{
    {kAcmeTenant, kAcmeName, "enterprise", "2018-03-12", "acme.example", 30},
    {kGlobexTenant, kGlobexName, "business", "2019-01-07", "globex.example", 20},
    {kInitechTenant, kInitechName, "team", "2019-09-23", "initech.example", 14},
    {"b4803856-bd55-462e-a7a8-f6612d19a1f6", "Umbrella Health", "enterprise", "2020-02-17",
     "umbrella.example", 10},
    {"3ce54e56-8443-4ce0-818c-78ff819aca71", "Hooli", "business", "2020-11-02", "hooli.example", 9},
    {"d3eaaffc-f83c-4b0e-8a11-e17f370bd743", "Vandelay Industries", "team", "2021-05-19", "vandelay.example",
     7},
    {"89c5bd5d-aaf6-4c18-9d03-4f517a978af7", "Stark Logistics", "business", "2022-04-04", "stark.example", 6},
    {"bed1f8e3-e68a-4061-add6-91b075fdbb69", "Wonka Confections", "free", "2023-08-28", "wonka.example", 4},
}};

inline constexpr std::size_t kProductCount = 25;  // products 1..25, SKUs LRD-1001..LRD-1025

// Customers 1..kAcmeCustomers are Acme's; kGlobexCustomer is Globex's, kInitechCustomer
// Initech's; the rest are spread over the tenants by weight.
inline constexpr std::size_t kAcmeCustomers = 5;
inline constexpr std::int64_t kGlobexCustomer = 6;
inline constexpr std::int64_t kInitechCustomer = 7;
inline constexpr std::size_t kFixedCustomers = 7;

inline constexpr std::int64_t kAcmeCustomerId = 1;
inline constexpr const char* kAcmeCustomerName = "Marisol Okafor";
inline constexpr const char* kAcmeCustomerEmail = "marisol.okafor@example.com";
inline constexpr const char* kAcmeCustomerPhone = "+1-212-555-0142";
inline constexpr const char* kAcmeCustomerNotes =
    "Credit limit raised to 50,000 after the 2024 review; do not chase before the 15th.";
inline constexpr std::int64_t kAcmeOverdueInvoice = 1;  // customer 1's, unpaid, due before kAsOf

// Rows per table for `rows` invoices (invoice_lines depends on the seed: see copy_text).
std::size_t user_count(std::size_t rows);
std::size_t customer_count(std::size_t rows);

// One table's generated rows in COPY text format, in load order (tenants, products, users,
// customers, invoices, invoice_lines: every table after the ones it references).
struct TableText {
  std::string table;    // "public.customers"
  std::string columns;  // the COPY column list: "id, tenant_id, ..."
  std::string text;     // the rows, one '\n'-terminated line each
  std::size_t rows = 0;
};
// The whole data set in memory (tests; the loader streams the same bytes instead).
std::vector<TableText> copy_text(std::size_t rows, std::uint64_t seed);

// Replaces the rows of the six tables with the generated ones in one transaction (TRUNCATE
// ... CASCADE and COPY per table, parents first), commits, then ANALYZEs them. `admin` must
// own the tables (or be a superuser). SeedReport::rows counts the rows of all six tables.
Result<SeedReport> seed(const db::ConnParams& admin, std::size_t rows = kDefaultRows,
                        std::uint64_t seed = kDefaultSeed);

}  // namespace larder::examples::saas
