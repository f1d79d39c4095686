// `larder certs`: the PKI for lock 1 (mTLS), kept in a directory (default .larder/certs).
//   larder certs init                                   create the CA (and an empty CRL)
//   larder certs issue server --name N --san 127.0.0.1,localhost
//   larder certs issue client --name N                  one command for a new agent's certificate
//   larder certs revoke <name>                          revoke and rewrite crl.pem
//   larder certs list
#include <chrono>
#include <ctime>
#include <iostream>
#include <memory>
#include <sstream>

#include "base/time.h"
#include "cli/command.h"
#include "cli/input.h"
#include "cli/report.h"
#include "net/pki.h"

namespace larder::cli {
namespace {

using larder::net::pki::CertKind;
using larder::net::pki::CertSpec;
using larder::net::pki::CertStore;

struct CertsOptions {
  std::string dir = ".larder/certs";
  std::string ca_name = "Larder CA";
  std::string name;
  std::string cn;
  std::string sans;
  int days = 825;
};

int fail(const larder::Error& e) {
  return report("certs", e);
}

int run_issue(const CertsOptions& o, CertKind kind) {
  CertStore store(o.dir);
  CertSpec spec;
  spec.kind = kind;
  spec.common_name = o.cn.empty() ? o.name : o.cn;
  spec.sans = split_commas(o.sans);
  if (kind == CertKind::kServer && spec.sans.empty()) spec.sans = {"127.0.0.1", "localhost"};
  if (o.days <= 0) return fail(make_error("usage", "--days must be positive"));
  spec.validity_days = o.days;
  auto entry = store.issue(spec, o.name);
  if (!entry) return fail(entry.error());
  std::cout << "issued " << net::pki::kind_name(kind) << " certificate '" << o.name << "' (serial "
            << entry->serial << ", valid until " << larder::rfc3339_utc(entry->not_after) << ")\n"
            << "  certificate: " << store.cert_path(kind, o.name) << "\n"
            << "  key (0600):  " << store.key_path(kind, o.name) << "\n"
            << "  CA:          " << store.ca_cert_path() << "\n";
  return 0;
}

void define_certs(CLI::App& app, Action& selected) {
  auto opts = std::make_shared<CertsOptions>();
  auto* certs = app.add_subcommand("certs", "Manage the mTLS PKI (CA, server and client certificates, CRL)");
  certs->add_option("--dir", opts->dir, "PKI directory")->capture_default_str();
  certs->require_subcommand(1);
  certs->fallthrough();  // `--dir` may also follow the sub-subcommand

  auto* init = certs->add_subcommand("init", "Create the certificate authority (EC P-256) and an empty CRL");
  init->fallthrough();
  init->add_option("--ca-name", opts->ca_name, "CA common name")->capture_default_str();
  init->callback([opts, &selected] {
    selected = [opts] {
      CertStore store(opts->dir);
      if (auto r = store.init(opts->ca_name); !r) return fail(r.error());
      std::cout << "created CA '" << opts->ca_name << "' in " << opts->dir
                << "\n  certificate: " << store.ca_cert_path() << "\n  key (0600):  " << store.ca_key_path()
                << "\n  CRL:         " << store.crl_path() << "\n";
      return 0;
    };
  });

  auto* issue = certs->add_subcommand("issue", "Issue a server or client certificate signed by the CA");
  issue->require_subcommand(1);
  issue->fallthrough();
  auto* server = issue->add_subcommand("server", "Server certificate (EKU serverAuth)");
  server->fallthrough();
  server->add_option("--name", opts->name, "Name (file name and default CN)")->required();
  server
      ->add_option("--san", opts->sans, "Comma-separated SANs: IPs, DNS names, or DNS:/IP:/URI:/email: forms")
      ->capture_default_str();
  server->add_option("--cn", opts->cn, "Common name (default: --name)");
  server->add_option("--days", opts->days, "Validity in days")->capture_default_str();
  server->callback([opts, &selected] { selected = [opts] { return run_issue(*opts, CertKind::kServer); }; });
  auto* client = issue->add_subcommand("client", "Client certificate for an agent (EKU clientAuth)");
  client->fallthrough();
  client->add_option("--name", opts->name, "Name (file name and default CN, e.g. claude-client)")->required();
  client->add_option("--san", opts->sans, "Comma-separated SANs (optional)");
  client->add_option("--cn", opts->cn, "Common name (default: --name)");
  client->add_option("--days", opts->days, "Validity in days")->capture_default_str();
  client->callback([opts, &selected] { selected = [opts] { return run_issue(*opts, CertKind::kClient); }; });

  auto* revoke =
      certs->add_subcommand("revoke", "Revoke every certificate with this name and rewrite the CRL");
  revoke->fallthrough();
  revoke->add_option("name", opts->name, "Certificate name")->required();
  revoke->callback([opts, &selected] {
    selected = [opts] {
      CertStore store(opts->dir);
      auto r = store.revoke(opts->name);
      if (!r) return fail(r.error());
      for (const auto& e : *r) {
        std::cout << "revoked " << net::pki::kind_name(e.kind) << " certificate '" << e.name << "' (serial "
                  << e.serial << ")\n";
      }
      std::cout << "CRL written to " << store.crl_path() << " (servers load it at start: restart them)\n";
      return 0;
    };
  });

  auto* list = certs->add_subcommand("list", "List issued certificates");
  list->fallthrough();
  list->callback([opts, &selected] {
    selected = [opts] {
      CertStore store(opts->dir);
      if (!store.has_ca()) {
        return fail(make_error("pki.no_ca", "no CA in " + opts->dir + " (run `larder certs init`)"));
      }
      auto entries = store.list();
      if (!entries) return fail(entries.error());
      auto now = std::chrono::system_clock::now();
      std::cout << "KIND    NAME                     SERIAL                            NOT AFTER             "
                   "STATUS\n";
      for (const auto& e : *entries) {
        std::string status = e.revoked_at ? "revoked " + larder::rfc3339_utc(*e.revoked_at)
                                          : (e.not_after < now ? "expired" : "valid");
        std::string name = e.name;
        name.resize(std::max<std::size_t>(name.size(), 24), ' ');
        std::cout << (e.kind == CertKind::kServer ? "server  " : "client  ") << name << " " << e.serial
                  << "  " << larder::rfc3339_utc(e.not_after) << "  " << status << "\n";
      }
      return 0;
    };
  });
}

}  // namespace

LARDER_REGISTER_COMMAND("certs", 20, define_certs);

}  // namespace larder::cli
