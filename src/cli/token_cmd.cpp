// `larder token issue`: one command mints a token an agent can use — a profile's rights and
// facts from the server's configuration ([profiles.<name>]), bound to one client
// certificate and to the server's audience, signed with a root key the configuration
// trusts (its key id set, so keys can rotate), and expiring (the TTL has a default, never
// "forever"). `larder token profiles` lists what a configuration offers. Experts keep
// `larder biscuit ...` for anything else.
#include "base/text.h"
#include "base/time.h"
#include "biscuit/biscuit.h"
#include "cli/command.h"
#include "cli/input.h"
#include "cli/report.h"
#include "cli/token_args.h"
#include "gate/token_profile.h"
#include "net/pki.h"
#include "tools/serve_config.h"

#include <filesystem>
#include <iostream>
#include <memory>

namespace larder::cli {
namespace {

struct TokenOptions {
  std::string config = "larder.toml";
  std::string profile;
  std::vector<std::string> params;
  std::string cert;
  std::string root_key = ".larder/root.key";
  std::vector<std::string> audiences;
  std::string ttl;
  std::string output;
};

int fail(const std::string& message, int status = exit_status::kRefused) {
  return report("token", message, status);
}

std::string profile_names(const tools::ServeConfig& c) {
  std::vector<std::string> names;
  for (const auto& p : c.profiles) names.push_back(p.name);
  return names.empty() ? "none" : join(names);
}

int run_issue(const TokenOptions& o) {
  auto config = tools::load_serve_config(o.config);
  if (!config)
    return fail(config.error().message + " (the server's configuration: --config)",
                exit_status::for_error(config.error()));
  const gate::TokenProfile* profile = config->profile(o.profile);
  if (!profile) {
    return fail(o.config + " defines no profile \"" + o.profile + "\" (it defines: " +
                    profile_names(*config) + "); add [profiles." + o.profile + "] or pick one of those",
                exit_status::kUsage);
  }
  auto params = make_params(o.params);
  if (!params) return fail(params.error().message, exit_status::kUsage);

  auto key_text = read_input(o.root_key);
  if (!key_text) {
    return fail("cannot read the root private key " + o.root_key +
                    " (give it with --root-key; `larder init` writes it)",
                exit_status::kNotFound);
  }
  auto root = parse_private_key(*key_text);
  if (!root) {
    return fail(
        o.root_key + " does not hold a Biscuit private key (ed25519-private/<hex>): " + root.error().message,
        exit_status::kInvalid);
  }

  // The servers must trust the key, and the token names the id they know it by.
  std::optional<uint32_t> key_id;
  bool trusted = false;
  const std::string mine = root->public_key().to_string();
  for (const auto& rk : config->gate.root_keys) {
    auto pk = biscuit::PublicKey::from_string(rk.public_key);
    if (pk && pk->to_string() == mine) {
      key_id = rk.id;
      trusted = true;
      break;
    }
  }
  if (!trusted) {
    return fail("the key in " + o.root_key + " (public key " + mine +
                    ") is not among [biscuit] root_keys of " + o.config +
                    ": the server would refuse every token it signs",
                exit_status::kRefused);
  }

  if (o.cert.empty())
    return fail("--cert is required: the client certificate the token will work over", exit_status::kUsage);
  auto pem = read_input(o.cert);
  if (!pem) return fail("cannot read the client certificate " + o.cert, exit_status::kNotFound);

  gate::IssueRequest request;
  request.profile = profile;
  request.params = std::move(*params);
  request.root = &*root;
  request.root_key_id = key_id;
  request.client_cert_pem = *pem;
  request.audiences = o.audiences.empty() ? std::vector<std::string>{config->gate.audience} : o.audiences;
  if (!o.ttl.empty()) {
    auto ttl = parse_duration(o.ttl);
    if (!ttl) return fail("--ttl: " + ttl.error().message, exit_status::kUsage);
    request.ttl = *ttl;
  }
  auto issued = gate::issue_token(request);
  if (!issued)
    return fail(issued.error().message,
                issued.error().code == "token.issue" ? exit_status::kInvalid : exit_status::kUsage);

  if (o.output.empty() || o.output == "-") {
    std::cout << issued->base64 << "\n";
  } else if (auto w = net::pki::write_file(o.output, issued->base64 + "\n", 0600); !w) {
    return fail("cannot write " + o.output + ": " + w.error().message, exit_status::kNotFound);
  }
  const std::string audiences = join(request.audiences);
  std::cerr << "token issued: profile " << profile->name << ", expires " << rfc3339_utc(issued->expires_at)
            << ", bound to certificate sha256:" << issued->client_cert_sha256.substr(0, 16)
            << "… and audience " << audiences << ", root key id "
            << (key_id ? std::to_string(*key_id) : std::string("none")) << "\n"
            << "revoke it (and every token derived from it) with: larder biscuit revoke "
            << issued->revocation_id << "\n";
  return 0;
}

int run_profiles(const TokenOptions& o) {
  auto config = tools::load_serve_config(o.config);
  if (!config) return fail(config.error().message, exit_status::for_error(config.error()));
  if (config->profiles.empty()) {
    std::cout << o.config << " defines no profile; add [profiles.<name>] (docs/configuration.md)\n";
    return 0;
  }
  for (const auto& p : config->profiles) {
    const std::string rights = join(p.rights);
    std::string params;
    for (const auto& n : p.params) params += " --param " + n + "=<value>";
    std::cout << p.name << (p.description.empty() ? "" : " — " + p.description) << "\n"
              << "  rights: " << rights << "\n"
              << "  ttl:    " << p.ttl.count() << " s (at most " << p.max_ttl.count() << " s)\n";
    if (!params.empty()) std::cout << "  needs: " << params << "\n";
  }
  return 0;
}

void define_token(CLI::App& app, Action& selected) {
  auto o = std::make_shared<TokenOptions>();
  CLI::App* token =
      app.add_subcommand("token", "Issue tokens from the configuration's profiles (bound, expiring)");
  token->require_subcommand(1);
  token->add_option("-c,--config", o->config, "The server's configuration (profiles, root keys, audience)")
      ->capture_default_str();

  CLI::App* issue =
      token->add_subcommand("issue", "Mint a token: a profile's rights, bound to a client certificate");
  issue
      ->add_option("--profile", o->profile,
                   "Profile from [profiles.<name>] (larder token profiles lists them)")
      ->required();
  issue->add_option("--param", o->params, "A value the profile's facts need: name=value[::type]");
  issue->add_option("--cert", o->cert, "Client certificate (PEM) the token will work over")->required();
  issue->add_option("--root-key", o->root_key, "Root private key file")->capture_default_str();
  issue->add_option("--audience", o->audiences,
                    "Server audience(s) (default: the config's [server] audience)");
  issue->add_option("--ttl", o->ttl, "Lifetime, e.g. 30m, 8h, 7d (default: the profile's ttl_s)");
  issue->add_option("-o,--output", o->output, "Write the token here (mode 0600) instead of stdout");
  issue->callback([&selected, o] { selected = [o] { return run_issue(*o); }; });

  CLI::App* profiles = token->add_subcommand("profiles", "List the profiles a configuration offers");
  profiles->callback([&selected, o] { selected = [o] { return run_profiles(*o); }; });
}

}  // namespace

LARDER_REGISTER_COMMAND("token", 35, define_token);

}  // namespace larder::cli
