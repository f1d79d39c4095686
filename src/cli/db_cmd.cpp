// `larder db init|start|stop|status|psql|seed|setup`: the embedded PostgreSQL cluster with
// one of the example databases (examples/), applied through its policy file
// (.larder/pg, state in .larder/db.json, mode 0600) or an existing server (--admin-url,
// --database-url / DATABASE_URL).
#include "cli/command.h"
#include "cli/report.h"
#include "db/cluster.h"
#include "db/config.h"
#include "examples/examples.h"
#include "policy/setup.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>

namespace larder::cli {
namespace {

namespace fs = std::filesystem;

struct DbOptions {
  std::string state_dir = db::kDefaultStateDir;
  std::string data_dir;  // default <state_dir>/pg
  std::string admin_url;
  std::string database_url;
  std::string query_password;
  std::string writer_password;
  std::string example;     // default: the state file's, else "healthcare"
  std::size_t rows = 0;    // 0: the example's default
  std::uint64_t seed = 0;  // 0: the example's default
  bool no_seed = false;
  bool no_fsync = false;
  bool admin = false;
  bool immediate = false;
};

int fail(const Error& e) {
  return report("db", e);
}

fs::path state_path(const DbOptions& o) {
  return db::state_file_path(o.state_dir);
}

Result<db::ClusterState> load_state(const DbOptions& o) {
  return db::ClusterState::load(state_path(o));
}

// The admin connection: --admin-url, else the embedded cluster's superuser.
Result<db::ConnParams> admin_params(const DbOptions& o, db::ClusterState* state_out = nullptr) {
  if (!o.admin_url.empty()) return db::ConnParams::parse(o.admin_url);
  auto st = load_state(o);
  if (!st) return st.error();
  if (state_out != nullptr) *state_out = *st;
  return st->admin();
}

// The example to set up or seed: --example, else the one the state file records, else healthcare.
Result<const examples::Example*> chosen_example(const DbOptions& o, const db::ClusterState* st) {
  std::string name = o.example;
  if (name.empty() && st != nullptr) name = st->example;
  return examples::find(name.empty() ? "healthcare" : name);
}

Result<policy::Policy> example_policy(const examples::Example& e) {
  return policy::parse(e.policy, "<example " + e.name + ">/policy.toml");
}

int seed_example(const examples::Example& e, const db::ConnParams& target, const DbOptions& o) {
  auto rep = e.seed(target, o.rows != 0 ? o.rows : e.default_rows, o.seed != 0 ? o.seed : e.default_seed);
  if (!rep) return fail(rep.error());
  std::cout << "seed: " << rep->rows << " rows in " << rep->total_time.count() << " ms (COPY "
            << rep->copy_time.count() << " ms)\n";
  return 0;
}

int do_setup_and_seed(const db::ConnParams& admin, policy::SetupOptions so, const examples::Example& e,
                      const DbOptions& o, bool seed) {
  auto pol = example_policy(e);
  if (!pol) return fail(pol.error());
  so.schema_sql = std::string(e.schema);
  auto plan = policy::setup_database(admin, *pol, so);
  if (!plan) return fail(plan.error());
  std::cout << "setup: the " << e.name << " example's schema, and its policy file applied to database "
            << so.database << " (roles, grants, RLS context and policies; `larder policy plan --example "
            << e.name << "` shows the SQL)\n";
  for (const auto& note : plan->notes) std::cout << "  note: " << note << "\n";
  if (seed) {
    auto target = admin;
    target.set("dbname", so.database);
    return seed_example(e, target, o);
  }
  return 0;
}

int cmd_init(const DbOptions& o) {
  fs::path state_file = state_path(o);
  if (fs::exists(state_file)) {
    return fail(make_error(
        "refused",
        state_file.string() + " exists; the cluster is already initialised (use `larder db start`)"));
  }
  std::error_code ec;
  fs::create_directories(o.state_dir, ec);
  // The server user must traverse the state directory to reach its data directory; the
  // state file inside stays 0600.
  ::chmod(o.state_dir.c_str(), 0711);
  auto example = chosen_example(o, nullptr);
  if (!example) return fail(example.error());
  auto pol = example_policy(**example);
  if (!pol) return fail(pol.error());
  db::ClusterOptions co;
  co.durable = !o.no_fsync;
  fs::path data_dir = o.data_dir.empty() ? fs::path(o.state_dir) / "pg" : fs::path(o.data_dir);
  auto st = db::EmbeddedCluster::init(data_dir, co);
  if (!st) return fail(st.error());
  st->example = (*example)->name;
  st->database = (*example)->name;
  st->query_user = pol->roles.query;
  st->writer_user = pol->roles.writer;
  if (auto r = st->save(state_file); !r) return fail(r.error());
  if (auto r = db::EmbeddedCluster::start(*st); !r) return fail(r.error());
  if (auto r = st->save(state_file); !r) return fail(r.error());
  std::cout << "initialised PostgreSQL in " << st->data_dir << ", listening on 127.0.0.1:" << st->port
            << "\n";
  policy::SetupOptions so;
  so.database = st->database;
  so.query_password = st->query_password;
  so.writer_password = st->writer_password;
  int rc = do_setup_and_seed(st->admin("postgres"), so, **example, o, !o.no_seed);
  if (rc == 0) std::cout << "state: " << state_file.string() << " (mode 0600)\n";
  return rc;
}

int cmd_start(const DbOptions& o) {
  auto st = load_state(o);
  if (!st) return fail(st.error());
  auto running = db::EmbeddedCluster::running(*st);
  if (running && *running) {
    std::cout << "already running on 127.0.0.1:" << st->port << "\n";
    return 0;
  }
  if (auto r = db::EmbeddedCluster::start(*st); !r) return fail(r.error());
  if (auto r = st->save(state_path(o)); !r) return fail(r.error());
  std::cout << "started on 127.0.0.1:" << st->port << "\n";
  return 0;
}

int cmd_stop(const DbOptions& o) {
  auto st = load_state(o);
  if (!st) return fail(st.error());
  auto running = db::EmbeddedCluster::running(*st);
  if (running && !*running) {
    std::cout << "not running\n";
    return 0;
  }
  if (auto r = db::EmbeddedCluster::stop(*st, o.immediate); !r) return fail(r.error());
  std::cout << "stopped\n";
  return 0;
}

int cmd_status(const DbOptions& o) {
  std::string url = o.database_url;
  if (url.empty())
    if (const char* env = std::getenv("DATABASE_URL")) url = env;
  if (!url.empty()) {
    auto p = db::ConnParams::parse(url);
    if (!p) return fail(p.error());
    auto c = p->connect(db::Clock::now() + std::chrono::seconds(5));
    std::cout << "server " << p->describe() << ": " << (c ? "reachable" : c.error().message) << "\n";
    return c ? 0 : 3;
  }
  auto st = load_state(o);
  if (!st) return fail(st.error());
  auto running = db::EmbeddedCluster::running(*st);
  if (!running) return fail(running.error());
  std::cout << "data directory: " << st->data_dir << "\n"
            << "state file:     " << state_path(o).string() << "\n"
            << "listening:      127.0.0.1:" << st->port << "\n"
            << "database:       " << st->database << "\n"
            << "example:        " << (st->example.empty() ? "healthcare" : st->example) << "\n"
            << "query role:     " << st->query_user << "\n"
            << "status:         " << (*running ? "running" : "stopped") << "\n";
  if (*running) {
    auto c = st->query().connect(db::Clock::now() + std::chrono::seconds(5));
    std::cout << "query role login: " << (c ? "ok" : c.error().message) << "\n";
    return c ? exit_status::kOk : exit_status::kUnavailable;
  }
  return exit_status::kUnavailable;  // stopped
}

int cmd_psql(const DbOptions& o, const std::vector<std::string>& extra) {
  db::ConnParams p;
  std::string url = o.database_url;
  if (url.empty())
    if (const char* env = std::getenv("DATABASE_URL")) url = env;
  if (!url.empty()) {
    auto parsed = db::ConnParams::parse(url);
    if (!parsed) return fail(parsed.error());
    p = *parsed;
  } else {
    auto st = load_state(o);
    if (!st) return fail(st.error());
    p = o.admin ? st->admin() : st->query();
  }
  // The password goes through the environment, not the command line (visible in ps).
  db::ConnParams without_password;
  for (const auto& [k, v] : p.pairs()) {
    if (k == "password") {
      ::setenv("PGPASSWORD", v.c_str(), 1);
    } else {
      without_password.set(k, v);
    }
  }
  std::string conninfo = without_password.to_conninfo();
  std::vector<std::string> args = {"psql", conninfo};
  args.insert(args.end(), extra.begin(), extra.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::execvp("psql", argv.data());
  return fail(make_error("file.not_found", "cannot run psql: not found (install postgresql-client-15)"));
}

int cmd_seed(const DbOptions& o) {
  db::ClusterState st;
  auto admin = admin_params(o, &st);
  if (!admin) return fail(admin.error());
  auto example = chosen_example(o, o.admin_url.empty() ? &st : nullptr);
  if (!example) return fail(example.error());
  if (o.admin_url.empty()) admin->set("dbname", st.database);
  return seed_example(**example, *admin, o);
}

int cmd_setup(const DbOptions& o) {
  db::ClusterState st;
  auto admin = admin_params(o, &st);
  if (!admin) return fail(admin.error());
  auto example = chosen_example(o, o.admin_url.empty() ? &st : nullptr);
  if (!example) return fail(example.error());
  policy::SetupOptions so;
  if (o.admin_url.empty()) {
    so.database = st.database;
    so.query_password = st.query_password;
    so.writer_password = st.writer_password;
  } else {
    auto db = admin->get("dbname");
    so.database = db ? std::string(*db) : (*example)->name;
    std::string qp = o.query_password, wp = o.writer_password;
    if (qp.empty())
      if (const char* e = std::getenv("LARDER_DB_QUERY_PASSWORD")) qp = e;
    if (wp.empty())
      if (const char* e = std::getenv("LARDER_DB_WRITER_PASSWORD")) wp = e;
    if (!qp.empty()) so.query_password = qp;
    if (!wp.empty()) so.writer_password = wp;
  }
  return do_setup_and_seed(*admin, so, **example, o, false);
}

void define(CLI::App& app, Action& selected) {
  auto* db = app.add_subcommand("db", "Embedded PostgreSQL with an example database (schema, policy, data)");
  db->require_subcommand(1);
  auto opts = std::make_shared<DbOptions>();
  auto extra = std::make_shared<std::vector<std::string>>();
  db->add_option("--state-dir", opts->state_dir, "Directory of the state file db.json and the data directory")
      ->capture_default_str();

  const std::string example_help =
      "Example database: healthcare or saas (default: the state file's, else healthcare)";
  auto* init = db->add_subcommand("init", "initdb + start (127.0.0.1, free port) + setup + seed");
  init->add_option("--data-dir", opts->data_dir, "Data directory (default <state-dir>/pg)");
  init->add_option("--example", opts->example, example_help);
  init->add_option("--rows", opts->rows, "Rows to seed (default: the example's)");
  init->add_flag("--no-seed", opts->no_seed, "Do not load the synthetic data");
  init->add_flag("--no-fsync", opts->no_fsync, "fsync=off (throwaway clusters only)");
  init->callback([&selected, opts] { selected = [opts] { return cmd_init(*opts); }; });

  auto* start = db->add_subcommand("start", "Start the embedded cluster");
  start->callback([&selected, opts] { selected = [opts] { return cmd_start(*opts); }; });

  auto* stop = db->add_subcommand("stop", "Stop the embedded cluster");
  stop->add_flag("--immediate", opts->immediate, "Immediate shutdown (no checkpoint)");
  stop->callback([&selected, opts] { selected = [opts] { return cmd_stop(*opts); }; });

  auto* status =
      db->add_subcommand("status", "Show the cluster state (exit 5 when stopped: service unavailable)");
  status->add_option("--database-url", opts->database_url,
                     "Check an existing server instead (or DATABASE_URL)");
  status->callback([&selected, opts] { selected = [opts] { return cmd_status(*opts); }; });

  auto* psql = db->add_subcommand("psql", "psql as the query role, or --admin");
  psql->add_flag("--admin", opts->admin, "Connect as the superuser instead");
  psql->add_option("--database-url", opts->database_url, "Connect to this server instead (or DATABASE_URL)");
  psql->add_option("args", *extra, "Extra psql arguments (after --)");
  psql->callback([&selected, opts, extra] { selected = [opts, extra] { return cmd_psql(*opts, *extra); }; });

  auto* seed =
      db->add_subcommand("seed", "Replace the example's rows with N deterministic synthetic ones (COPY)");
  seed->add_option("--example", opts->example, example_help);
  seed->add_option("--rows", opts->rows, "Rows (default: the example's)")->check(CLI::Range(1, 100'000'000));
  seed->add_option("--seed", opts->seed, "Generator seed (default: the example's)");
  seed->add_option("--admin-url", opts->admin_url,
                   "Superuser URL of an existing server (default: embedded cluster)");
  seed->callback([&selected, opts] { selected = [opts] { return cmd_seed(*opts); }; });

  auto* setup = db->add_subcommand(
      "setup",
      "Create an example's database and schema and apply its policy file (idempotent; for your own "
      "database use `larder policy apply`)");
  setup->add_option("--example", opts->example, example_help);
  setup->add_option("--admin-url", opts->admin_url,
                    "Superuser URL of an existing server (default: embedded cluster)");
  setup->add_option("--query-password", opts->query_password,
                    "Password for the query role (or LARDER_DB_QUERY_PASSWORD)");
  setup->add_option("--writer-password", opts->writer_password,
                    "Password for the context writer role (or LARDER_DB_WRITER_PASSWORD)");
  setup->callback([&selected, opts] { selected = [opts] { return cmd_setup(*opts); }; });
}

}  // namespace

LARDER_REGISTER_COMMAND("db", 30, define);

}  // namespace larder::cli
