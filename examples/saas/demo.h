// The saas example's demo (`larder demo --example saas`): a tenant's administrator sees only
// the tenant's customers, invoices and invoice lines; another tenant's user cannot see them;
// a customer's email reads masked unless the token may unmask it; the declared tool
// unpaid_invoices is granted per tool; reading only the public product catalogue does not
// taint while reading customers does; the base table behind a mask is refused. Then the
// scenarios every example runs (tools/demo_scenarios.h).
#pragma once

#include "examples/examples.h"

#include <functional>
#include <string>
#include <vector>

namespace larder::examples::saas {

// The demo's tokens (examples/examples.h, DemoToken), each for one tenant (tenant(...)):
//   "acme-admin"   Acme's administrator (profile tenant-admin): the query tools and unpaid_invoices;
//   "globex-user"  a user of Globex (profile tenant-user): the query tools, not unpaid_invoices;
//   "support"      a support engineer at Acme (profile support-engineer): the query tools and
//                  unmask:customers.email, i.e. right("unmask", "customers.email").
// Every profile also grants resources/read, prompts/get and the egress tool.
std::vector<DemoToken> demo_tokens();

// Every scenario of the saas demo, in order; `tokens` holds the three above by name.
std::vector<tools::ScenarioOutcome> run_demo_scenarios(
    const tools::DemoEnvironment& env, const MintedTokens& tokens,
    const std::function<void(const tools::ScenarioOutcome&)>& on_outcome);

// The example's Demo (examples.cpp).
Demo demo();

}  // namespace larder::examples::saas
