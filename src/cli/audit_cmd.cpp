// `larder audit verify <log>`: checks the hash chain of an audit log.
#include "cli/command.h"
#include "gate/audit_log.h"

#include <iostream>
#include <memory>

namespace {

void define_audit(CLI::App& app, larder::cli::Action& selected) {
  CLI::App* audit = app.add_subcommand("audit", "Audit log tools");
  audit->require_subcommand(1);
  auto path = std::make_shared<std::string>(".larder/audit.jsonl");
  CLI::App* verify = audit->add_subcommand("verify", "Verify the audit log's hash chain (edits, deletions, reordering)");
  verify->add_option("log", *path, "Audit log (JSON lines)")->capture_default_str();
  verify->callback([&selected, path] {
    selected = [path] {
      auto v = larder::gate::verify_audit_log(*path);
      if (v.ok) {
        std::cout << "audit log " << *path << ": OK, " << v.records << " records, chain intact\n";
        return 0;
      }
      std::cout << "audit log " << *path << ": TAMPERED: " << v.problem << "\n";
      return 1;
    };
  });
}

}  // namespace

LARDER_REGISTER_COMMAND("audit", 60, define_audit);
