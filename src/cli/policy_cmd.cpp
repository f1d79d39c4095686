// `larder policy plan | apply | check`: the policy file against a database (docs/policy.md).
//   plan   prints the SQL apply would run, what it would remove, and what this administrator
//          cannot do (notes); nothing is changed
//   apply  runs it in one transaction (twice changes nothing; a failure changes nothing)
//   check  lists every difference between the live database and the file; exit 1 on drift
//   rotate-key   adds a new request-context key (servers use it within a minute)
//   retire-keys  deletes the keys older than the newest, once it is old enough to be in use
// The file: --policy FILE, --example NAME, or the configuration's [policy]. The database:
// --admin-url, or the configuration's embedded cluster (its superuser).
#include "base/exit_status.h"
#include "cli/command.h"
#include "cli/report.h"
#include "db/cluster.h"
#include "db/config.h"
#include "db/context_seal.h"
#include "examples/examples.h"
#include "policy/apply.h"
#include "tools/serve_config.h"
#include "tools/service.h"

#include <cstdlib>
#include <iostream>
#include <memory>

namespace larder::cli {
namespace {

struct PolicyOptions {
  std::string config;
  std::string policy_file;
  std::string example;
  std::string admin_url;
  std::string state_dir;
  int min_age_s = 120;
};

Result<policy::Policy> chosen_policy(const PolicyOptions& o, tools::ServeConfig* config_out) {
  if (!o.policy_file.empty()) return policy::load(o.policy_file);
  if (!o.example.empty()) {
    auto e = examples::find(o.example);
    if (!e) return e.error();
    return policy::parse((*e)->policy, "<example " + (*e)->name + ">/policy.toml");
  }
  tools::ServeConfig c;
  if (!o.config.empty()) {
    auto loaded = tools::load_serve_config(o.config);
    if (!loaded) return loaded.error();
    c = *loaded;
  }
  if (config_out != nullptr) *config_out = c;
  return tools::load_served_policy(c);
}

// The administrator's connection to the database the policy is for.
Result<db::PgConn> admin_connection(const PolicyOptions& o, const tools::ServeConfig& c,
                                    db::Clock::time_point deadline) {
  std::string url = o.admin_url;
  if (url.empty())
    if (const char* env = std::getenv("LARDER_ADMIN_URL")) url = env;
  if (!url.empty()) {
    auto p = db::ConnParams::parse(url);
    if (!p) return p.error();
    return p->connect(deadline);
  }
  const std::string dir = !o.state_dir.empty() ? o.state_dir : c.database_dir;
  auto st = db::ClusterState::load(db::state_file_path(dir));
  if (!st)
    return Error{
        "config.invalid",
        "no database to work on: pass --admin-url (a role with CREATEROLE that owns the exposed tables, or a "
        "superuser) or run inside a directory with an embedded cluster (" +
            dir + "): " + st.error().message,
        ""};
  return st->admin().connect(deadline);
}

// rotate-key / retire-keys: the request-context keys (docs/database.md, "Rotating the context
// key"). They need the administrator's connection, not the policy file.
int run_keys(const PolicyOptions& o, const std::string& action) {
  tools::ServeConfig c;
  if (!o.config.empty()) {
    auto loaded = tools::load_serve_config(o.config);
    if (!loaded) return report("policy", loaded.error());
    c = *loaded;
  }
  const auto deadline = db::Clock::now() + std::chrono::minutes(1);
  auto conn = admin_connection(o, c, deadline);
  if (!conn) return report("policy", conn.error());
  if (action == "rotate-key") {
    auto id = policy::add_context_key(conn->get(), deadline);
    if (!id) return report("policy", id.error());
    std::cout << "policy rotate-key: added request-context key " << *id
              << "; every server seals with it within " << db::kContextKeyRefresh.count()
              << " s. Retire the older keys after that with `larder policy "
              << "retire-keys`\n";
    return exit_status::kOk;
  }
  auto r = policy::retire_context_keys(conn->get(), std::chrono::seconds(o.min_age_s), deadline);
  if (!r) return report("policy", r.error());
  if (r->retired == 0 && r->newest_age.count() < o.min_age_s) {
    std::cout << "policy retire-keys: nothing retired: the newest key (" << r->newest << ") is "
              << r->newest_age.count() << " s old, and servers may still seal with an older key until it is "
              << o.min_age_s << " s old; run this again then\n";
    return exit_status::kRefused;
  }
  std::cout << "policy retire-keys: retired " << r->retired << " key(s); key " << r->newest << " remains\n";
  return exit_status::kOk;
}

int run(const PolicyOptions& o, const std::string& action) {
  if (action == "rotate-key" || action == "retire-keys") return run_keys(o, action);
  tools::ServeConfig c;
  auto pol = chosen_policy(o, &c);
  if (!pol) return report("policy", pol.error());
  const auto deadline = db::Clock::now() + std::chrono::minutes(2);
  auto conn = admin_connection(o, c, deadline);
  if (!conn) return report("policy", conn.error());
  if (action == "check") {
    auto drift = policy::check(*pol, conn->get(), deadline);
    if (!drift) return report("policy", drift.error());
    if (drift->empty()) {
      std::cout << "policy check: the database matches " << pol->file << "\n";
      return exit_status::kOk;
    }
    std::cout << "policy check: " << drift->size() << " difference(s) between the database and " << pol->file
              << ":\n";
    for (const auto& d : *drift) std::cout << "  - " << d << "\n";
    std::cout << "run `larder policy apply` to make the database match the file\n";
    return exit_status::kRefused;
  }
  if (action == "plan") {
    auto plan = policy::plan(*pol, conn->get(), deadline);
    if (!plan) return report("policy", plan.error());
    std::cout << plan->render();
    return exit_status::kOk;
  }
  auto applied = policy::apply(*pol, conn->get(), policy::ApplyOptions{}, deadline);
  if (!applied) return report("policy", applied.error());
  if (applied->up_to_date) {
    std::cout << "policy apply: the database already matches " << pol->file << "; nothing changed\n";
  } else {
    std::cout << "policy apply: " << applied->statements.size()
              << " statements applied in one transaction from " << pol->file << "\n";
    for (const auto& r : applied->removals) std::cout << "  removed: " << r << "\n";
  }
  for (const auto& n : applied->notes) std::cout << "  note: " << n << "\n";
  return exit_status::kOk;
}

void define(CLI::App& app, Action& selected) {
  auto* cmd = app.add_subcommand("policy", "Plan, apply or check the policy file against the database");
  cmd->require_subcommand(1);
  auto opts = std::make_shared<PolicyOptions>();
  for (const char* action : {"plan", "apply", "check", "rotate-key", "retire-keys"}) {
    const std::string name = action;
    const bool keys = name == "rotate-key" || name == "retire-keys";
    const std::string help =
        name == "plan"         ? "Print the SQL apply would run; change nothing"
        : name == "apply"      ? "Make the database match the file, in one transaction"
        : name == "check"      ? "List differences between the database and the file (exit 1 on drift)"
        : name == "rotate-key" ? "Add a new request-context key (servers use it within a minute)"
                               : "Delete the request-context keys older than the newest, once it is in use";
    auto* sub = cmd->add_subcommand(action, help);
    sub->add_option("--config", opts->config, "larder.toml whose [policy] and [database] to use");
    if (!keys) {
      sub->add_option("--policy", opts->policy_file, "The policy file (instead of the configuration's)");
      sub->add_option("--example", opts->example, "A compiled-in example's policy file: healthcare or saas");
    }
    if (name == "retire-keys")
      sub->add_option("--min-age", opts->min_age_s,
                      "Seconds the newest key must have existed (default 120: every server has read it)")
          ->check(CLI::Range(0, 86400));
    sub->add_option(
        "--admin-url", opts->admin_url,
        "Administrator connection (or LARDER_ADMIN_URL): CREATEROLE and owner of the exposed tables");
    sub->add_option("--state-dir", opts->state_dir,
                    "The embedded cluster's state directory (default .larder)");
    std::string a = action;
    sub->callback([&selected, opts, a] { selected = [opts, a] { return run(*opts, a); }; });
  }
}

}  // namespace

LARDER_REGISTER_COMMAND("policy", 35, define);

}  // namespace larder::cli
