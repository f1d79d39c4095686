// `larder init`: lays out a whole new deployment in one command — a certificate authority,
// the server's certificate, one client's certificate, an empty CRL, a Biscuit root key, a
// strict configuration (larder.toml, with the default token profiles), a first token for
// the client, and the mcp.json `larder ask` reads. What is already there (a CA, a root key)
// is kept; an existing configuration is never overwritten.
#include "base/files.h"
#include "base/time.h"
#include "biscuit/biscuit.h"
#include "cli/command.h"
#include "cli/input.h"
#include "cli/report.h"
#include "cli/token_args.h"
#include "gate/token_profile.h"
#include "net/pki.h"
#include "tools/serve_config.h"

#include <toml++/toml.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>

namespace larder::cli {
namespace {

namespace fs = std::filesystem;
namespace pki = net::pki;

struct InitOptions {
  std::string config = "larder.toml";
  std::string dir = ".larder";
  std::string server = "larder-db";
  std::string client = "claude-client";
  std::string sans = "127.0.0.1,localhost";
  std::string host = "127.0.0.1";
  uint16_t port = 8443;
  std::string profile = "agent-readonly";
  std::vector<std::string> params;
  std::string ttl;
};

int fail(const std::string& message, int status = exit_status::kRefused) {
  return report("init", message, status);
}

// A TOML string literal (quoted and escaped by toml++).
std::string q(const std::string& s) {
  std::ostringstream out;
  out << toml::value<std::string>(s);
  return out.str();
}

std::string q(const std::vector<std::string>& items) {
  std::string out = "[";
  for (const auto& i : items) out += (out.size() > 1 ? ", " : "") + q(i);
  return out + "]";
}

// `path` as the configuration file's directory sees it.
std::string from(const fs::path& base, const fs::path& path) {
  std::error_code ec;
  fs::path rel = fs::relative(fs::absolute(path), fs::absolute(base), ec);
  return (ec || rel.empty() ? fs::absolute(path) : rel).generic_string();
}

std::string config_text(const InitOptions& o, const fs::path& base, const pki::CertStore& store,
                        const std::string& public_key) {
  std::ostringstream t;
  t << "# Larder configuration, written by `larder init` on " << rfc3339_utc(std::chrono::system_clock::now())
    << ".\n# Every key, its default and its meaning: docs/configuration.md.\n\n"
    << "[server]\nhost = " << q(o.host) << "\nport = " << o.port << "\naudience = " << q(o.server)
    << "                 # tokens bind to it\n\n"
    << "[tls]\ncert = " << q(from(base, store.cert_path(pki::CertKind::kServer, o.server)))
    << "\nkey = " << q(from(base, store.key_path(pki::CertKind::kServer, o.server)))
    << "\nclient_ca = " << q(from(base, store.ca_cert_path()))
    << "\ncrl = " << q(from(base, store.crl_path())) << "\n\n"
    << "[biscuit]\n# The root private key stays with whoever issues tokens (larder token issue --root-key);\n"
    << "# the server only needs the public key. Add a key with a new id to rotate.\n"
    << "root_keys = [{ id = 1, public_key = " << q(public_key) << " }]\n"
    << "require_binding = true           # every token must be bound to a client certificate\n"
    << "require_expiry = true            # ... and expire\n\n"
    << "[database]\nmode = \"embedded\"                 # `larder db init`; or \"url\" with url, writer_url, "
       "ledger_url\n"
    << "dir = " << q(from(base, o.dir)) << "\n\n"
    << "[tools]\nenabled = [\"pg_query\", \"pg_explain\", \"pg_metadata\"]\n"
    << "classes = { pg_query = \"sensitive-read\", pg_metadata = \"sensitive-read\", pg_explain = "
       "\"neutral\" }\n\n"
    << "[audit]\npath = " << q(from(base, fs::path(o.dir) / "audit.jsonl")) << "\n";
  for (const auto& p : gate::default_profiles()) {
    t << "\n[profiles." << p.name << "]\n";
    if (!p.description.empty()) t << "description = " << q(p.description) << "\n";
    t << "rights = " << q(p.rights) << "\n";
    if (!p.facts.empty()) t << "facts = " << q(p.facts) << "\n";
    t << "ttl_s = " << p.ttl.count() << "\nmax_ttl_s = " << p.max_ttl.count() << "\n";
  }
  return t.str();
}

int run_init(const InitOptions& o) {
  std::error_code ec;
  if (fs::exists(o.config, ec)) {
    return fail(o.config +
                    " already exists; larder init never overwrites a configuration (move it away, or pass "
                    "--config for a new file)",
                exit_status::kUsage);
  }
  const fs::path base = fs::absolute(o.config).parent_path();
  const fs::path dir = o.dir;

  // 1. The PKI: CA, server and client certificates, CRL (an existing CA is kept).
  pki::CertStore store((dir / "certs").string());
  if (!store.has_ca()) {
    if (auto r = store.init("Larder CA"); !r) return fail("certificate authority: " + r.error().message);
  }
  if (!fs::exists(store.cert_path(pki::CertKind::kServer, o.server), ec)) {
    pki::CertSpec spec;
    spec.kind = pki::CertKind::kServer;
    spec.common_name = o.server;
    spec.sans = split_commas(o.sans);
    if (auto r = store.issue(spec, o.server); !r) return fail("server certificate: " + r.error().message);
  }
  if (!fs::exists(store.cert_path(pki::CertKind::kClient, o.client), ec)) {
    pki::CertSpec spec;
    spec.common_name = o.client;
    if (auto r = store.issue(spec, o.client); !r) return fail("client certificate: " + r.error().message);
  }
  if (auto r = store.write_crl(); !r) return fail("CRL: " + r.error().message);

  // 2. The Biscuit root key (kept if present).
  const std::string key_path = (dir / "root.key").string();
  std::optional<biscuit::PrivateKey> root;
  if (auto existing = read_input(key_path)) {
    auto parsed = parse_private_key(*existing);
    if (!parsed)
      return fail(key_path + " exists but holds no private key: " + parsed.error().message,
                  exit_status::kInvalid);
    root = std::move(*parsed);
  } else {
    root = biscuit::KeyPair::generate().private_key();
    if (auto w = pki::write_file(key_path, root->to_string() + "\n", 0600); !w) {
      return fail("cannot write " + key_path + ": " + w.error().message, exit_status::kNotFound);
    }
  }

  // 3. The configuration, checked by the same loader the server uses before it is kept.
  const std::string text = config_text(o, base, store, root->public_key().to_string());
  auto parsed = tools::parse_serve_config(text, base.string(), o.config);
  if (!parsed) return fail("the generated configuration does not load (a bug): " + parsed.error().message);
  if (auto w = pki::write_file(o.config, text, 0644); !w)
    return fail("cannot write " + o.config + ": " + w.error().message, exit_status::kNotFound);

  // 4. The first token, bound to the client's certificate.
  const gate::TokenProfile* profile = parsed->profile(o.profile);
  if (!profile)
    return fail("no profile " + o.profile + " (patient, clinician, agent-readonly)", exit_status::kUsage);
  auto params = make_params(o.params);
  if (!params) return fail(params.error().message, exit_status::kUsage);
  auto pem = read_file(store.cert_path(pki::CertKind::kClient, o.client));
  if (!pem) return fail(pem.error().message, exit_status::kNotFound);
  gate::IssueRequest request;
  request.profile = profile;
  request.params = std::move(*params);
  request.root = &*root;
  request.root_key_id = 1;
  request.client_cert_pem = *pem;
  request.audiences = {o.server};
  if (!o.ttl.empty()) {
    auto ttl = parse_duration(o.ttl);
    if (!ttl) return fail("--ttl: " + ttl.error().message, exit_status::kUsage);
    request.ttl = *ttl;
  }
  auto issued = gate::issue_token(request);
  if (!issued) return fail("first token: " + issued.error().message, exit_status::kUsage);
  const std::string token_path = (dir / "tokens" / (o.client + ".b64")).string();
  if (auto w = pki::write_file(token_path, issued->base64 + "\n", 0600); !w) {
    return fail("cannot write " + token_path + ": " + w.error().message, exit_status::kNotFound);
  }

  // 5. mcp.json for `larder ask` (paths relative to the file).
  nlohmann::json tls = {{"ca", from(dir, store.ca_cert_path())},
                        {"cert", from(dir, store.cert_path(pki::CertKind::kClient, o.client))},
                        {"key", from(dir, store.key_path(pki::CertKind::kClient, o.client))}};
  std::string host = o.host == "0.0.0.0" || o.host == "::" ? "127.0.0.1" : o.host;
  nlohmann::json mcp = {
      {"mcpServers",
       {{o.server, {{"url", "https://" + host + ":" + std::to_string(o.port) + "/mcp"}, {"tls", tls}}}}}};
  const std::string mcp_path = (dir / "mcp.json").string();
  if (auto w = pki::write_file(mcp_path, mcp.dump(2) + "\n", 0600); !w) {
    return fail("cannot write " + mcp_path + ": " + w.error().message, exit_status::kNotFound);
  }

  std::cout
      << "larder init: a new deployment\n"
      << "  " << o.config << "   the server's configuration (strict; docs/configuration.md)\n"
      << "  " << store.dir() << "   CA, server certificate " << o.server << ", client certificate "
      << o.client << ", CRL\n"
      << "  " << key_path << "   the Biscuit root private key (id 1; keep it off the server)\n"
      << "  " << token_path << "   a first token (profile " << profile->name << ") for " << o.client
      << ", expires " << rfc3339_utc(issued->expires_at) << "\n"
      << "  " << mcp_path << "   how `larder ask` reaches the server\n"
      << "next:\n"
      << "  larder db init          # embedded PostgreSQL 15 with synthetic records (or set [database] url)\n"
      << "  larder serve            # https://" << host << ":" << o.port << "/mcp\n"
      << "  larder token issue --profile patient --param patient_name=\"Erin oRTEga\" --cert "
      << store.cert_path(pki::CertKind::kClient, o.client) << "\n";
  return 0;
}

void define_init(CLI::App& app, Action& selected) {
  auto o = std::make_shared<InitOptions>();
  CLI::App* init = app.add_subcommand(
      "init",
      "Lay out a new deployment: CA, server and client certificates, root key, config, a first token");
  init->add_option("-c,--config", o->config, "Configuration file to write")->capture_default_str();
  init->add_option("--dir", o->dir, "State directory (certificates, keys, tokens, database)")
      ->capture_default_str();
  init->add_option("--server-name", o->server, "Server certificate name and token audience")
      ->capture_default_str();
  init->add_option("--client", o->client, "The first client's certificate name")->capture_default_str();
  init->add_option("--san", o->sans, "The server certificate's SANs (comma-separated)")
      ->capture_default_str();
  init->add_option("--host", o->host, "Address the server listens on")->capture_default_str();
  init->add_option("--port", o->port, "Port the server listens on")->capture_default_str();
  init->add_option("--profile", o->profile, "Profile of the first token")->capture_default_str();
  init->add_option("--param", o->params, "A value the first token's profile needs: name=value");
  init->add_option("--ttl", o->ttl, "Lifetime of the first token (default: the profile's)");
  init->callback([&selected, o] { selected = [o] { return run_init(*o); }; });
}

}  // namespace

LARDER_REGISTER_COMMAND("init", 5, define_init);

}  // namespace larder::cli
