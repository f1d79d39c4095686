// `larder audit verify [log] [--config larder.toml]`: checks an audit log's hash chain and
// head file and, given the server's configuration, its anchor in PostgreSQL — so a log whose
// tail was cut and whose head was rewritten to match fails too.
#include "cli/command.h"
#include "cli/report.h"
#include "gate/audit_log.h"
#include "gate/config.h"
#include "gate/taint_ledger.h"
#include "tools/service.h"

#include <unistd.h>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>

namespace {

struct VerifyOptions {
  std::string path;
  std::string config;
};

int run_verify(const VerifyOptions& o) {
  using larder::cli::report;
  namespace exit_status = larder::exit_status;
  std::string path = o.path;
  std::optional<larder::gate::ServeConfig> config;
  if (!o.config.empty()) {
    auto loaded = larder::gate::load_serve_config(o.config);
    if (!loaded) return report("audit verify", loaded.error());
    config = *loaded;
    if (path.empty()) path = config->audit_path;
  }
  if (path.empty()) path = ".larder/audit.jsonl";
  // A log that is not there, or cannot be read, is not a tampered one: it was not checked.
  if (::access(path.c_str(), R_OK) != 0) {
    larder::Error e = larder::cli::file_error("audit log", path);
    if (e.code == "file.not_found") {
      e.message += "; give the log's path, or --config of the server that writes it";
    }
    return report("audit verify", e);
  }
  larder::gate::AuditVerification v;
  if (config) {
    auto params = larder::tools::ledger_connection(*config);
    if (!params) return report("audit verify", params.error());
    auto ledger = std::make_shared<larder::gate::TaintLedger>(*params, larder::gate::TaintLedger::Options{});
    const std::string id = config->audit_anchor_id.empty()
                               ? larder::gate::default_audit_anchor_id(config->audience, config->audit_path)
                               : config->audit_anchor_id;
    v = larder::gate::verify_audit_log(
        path, id, [&](const std::string& log_id) { return ledger->audit_anchor(log_id); });
  } else {
    v = larder::gate::verify_audit_log(path);
  }
  if (v.ok) {
    std::cout << "audit log " << path << ": OK, " << v.records << " records, chain intact"
              << (config ? ", anchored in PostgreSQL" : " (not checked against its anchor: add --config to)")
              << "\n";
    return exit_status::kOk;
  }
  if (v.not_checked) return report("audit verify", *v.not_checked);
  std::cout << "audit log " << path << ": TAMPERED: " << v.problem << "\n";
  return exit_status::kRefused;
}

void define_audit(CLI::App& app, larder::cli::Action& selected) {
  CLI::App* audit = app.add_subcommand("audit", "Audit log tools");
  audit->require_subcommand(1);
  auto o = std::make_shared<VerifyOptions>();
  CLI::App* verify = audit->add_subcommand(
      "verify", "Verify an audit log: hash chain, head file, and (with --config) its anchor in PostgreSQL");
  verify->add_option("log", o->path,
                     "Audit log (JSON lines); default: the config's [audit] path or .larder/audit.jsonl");
  verify->add_option(
      "--config", o->config,
      "The configuration of the server that writes the log: checks the log against its anchor");
  verify->callback([&selected, o] { selected = [o] { return run_verify(*o); }; });
}

}  // namespace

LARDER_REGISTER_COMMAND("audit", 60, define_audit);
