// `larder audit verify [log or directory] [--config larder.toml]`: checks an audit log's hash
// chain — across its rotated files, in order, with the retention boundary — and head file
// and, given the server's configuration, its anchor in PostgreSQL — so a log whose tail was
// cut and whose head was rewritten to match fails too.
#include "cli/command.h"
#include "cli/report.h"
#include "gate/audit_log.h"
#include "gate/taint_ledger.h"
#include "tools/serve_config.h"
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
  std::optional<larder::tools::ServeConfig> config;
  if (!o.config.empty()) {
    auto loaded = larder::tools::load_serve_config(o.config);
    if (!loaded) return report("audit verify", loaded.error());
    config = *loaded;
    if (path.empty()) path = config->audit.path;
  }
  if (path.empty()) path = ".larder/audit.jsonl";
  // A log that is not there, or cannot be read, is not a tampered one: it was not checked.
  auto resolved = larder::gate::resolve_audit_log_path(path);
  if (!resolved) return report("audit verify", resolved.error());
  if (::access(resolved->c_str(), R_OK) != 0 && larder::gate::rotated_audit_files(*resolved).empty() &&
      ::access((*resolved + ".head").c_str(), F_OK) != 0) {
    larder::Error e = larder::cli::file_error("audit log", *resolved);
    if (e.code == "file.not_found") {
      e.message += "; give the log's path (or its directory), or --config of the server that writes it";
    }
    return report("audit verify", e);
  }
  larder::gate::AuditVerification v;
  if (config) {
    auto params = larder::tools::ledger_connection(*config);
    if (!params) return report("audit verify", params.error());
    auto ledger = std::make_shared<larder::gate::TaintLedger>(*params, larder::gate::TaintLedger::Options{});
    const std::string id = config->audit.anchor_id.empty() ? larder::gate::default_audit_anchor_id(
                                                                 config->gate.audience, config->audit.path)
                                                           : config->audit.anchor_id;
    v = larder::gate::verify_audit_log(
        path, id, [&](const std::string& log_id) { return ledger->audit_anchor(log_id); });
  } else {
    v = larder::gate::verify_audit_log(path);
  }
  if (v.ok) {
    std::cout << "audit log " << *resolved << ": OK, " << v.records << " records";
    if (v.files > 1) std::cout << " in " << v.files << " files";
    if (v.first_seq > 1) {
      std::cout << " (" << v.first_seq << " to " << v.last_seq << "; records 1 to " << v.first_seq - 1
                << " deleted by retention, as the log records)";
    }
    std::cout << ", chain intact"
              << (config ? ", anchored in PostgreSQL" : " (not checked against its anchor: add --config to)")
              << "\n";
    return exit_status::kOk;
  }
  if (v.not_checked) return report("audit verify", *v.not_checked);
  std::cout << "audit log " << *resolved << ": TAMPERED: " << v.problem << "\n";
  return exit_status::kRefused;
}

void define_audit(CLI::App& app, larder::cli::Action& selected) {
  CLI::App* audit = app.add_subcommand("audit", "Audit log tools");
  audit->require_subcommand(1);
  auto o = std::make_shared<VerifyOptions>();
  CLI::App* verify = audit->add_subcommand(
      "verify",
      "Verify an audit log: hash chain across its rotated files (a missing, reordered or renamed file fails; "
      "records deleted by retention only as the log's retention records say), head file, and (with --config) "
      "its anchor in PostgreSQL");
  verify->add_option(
      "log", o->path,
      "Audit log (JSON lines): its active file's path (the rotated <log>.<first seq> files beside "
      "it are read too) or the directory holding it; default: the config's [audit] path or "
      ".larder/audit.jsonl");
  verify->add_option(
      "--config", o->config,
      "The configuration of the server that writes the log: checks the log against its anchor");
  verify->callback([&selected, o] { selected = [o] { return run_verify(*o); }; });
}

}  // namespace

LARDER_REGISTER_COMMAND("audit", 60, define_audit);
