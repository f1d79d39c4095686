// Larder's own token verbs next to the biscuit-cli compatible ones:
//   larder biscuit attest  — bind a token to a client certificate and server audiences
//   larder biscuit revoke  — add a revocation id to the shared revocation list
#include "biscuit/biscuit.h"
#include "biscuit/token/token.h"
#include "cli/command.h"
#include "cli/input.h"
#include "cli/report.h"
#include "gate/attestation.h"
#include "gate/reasons.h"
#include "gate/taint_ledger.h"
#include "tools/serve_config.h"
#include "tools/service.h"

#include <cctype>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>

namespace larder::cli {
namespace {

std::string slurp(const std::string& path, std::string_view what) {
  auto text = read_input(path);
  if (!text) throw Failure{file_error(what, path)};
  return *text;
}

[[noreturn]] void fail(const Error& e) {
  throw Failure{e};
}

struct AttestOptions {
  std::string token;       // base64, or
  std::string token_file;  // file / -
  std::string cert;
  std::vector<std::string> audiences;
  bool cn_only = false;
  std::string public_key, public_key_file;
};

int run_attest(const AttestOptions& o) {
  std::string token_text =
      trim_space(!o.token.empty() ? o.token : slurp(o.token_file.empty() ? "-" : o.token_file, "token file"));
  std::string key_text =
      trim_space(!o.public_key.empty() ? o.public_key : slurp(o.public_key_file, "public key file"));
  auto root = biscuit::PublicKey::from_string(key_text);
  if (!root)
    fail(make_error("key.invalid", "the root public key is not a valid Biscuit public key (ed25519/<hex>)",
                    root.error().message));
  auto token = biscuit::Biscuit::from_base64(token_text, *root);
  if (!token) {
    // The structured error decides the wording (gate/reasons.h): the same sentences the server uses.
    const auto& e = token.error();
    if (e.code == biscuit::ErrorCode::InvalidSignature || e.code == biscuit::ErrorCode::UnknownPublicKey) {
      fail(make_error("refused",
                      e.block && *e.block > 0
                          ? gate::altered_token_reason(*e.block)
                          : "the token was not signed by this root public key: it was signed by "
                            "an unknown or retired root key, or altered after signing",
                      e.message));
    }
    fail(make_error("token.invalid", "the token is not a valid Biscuit token", e.message));
  }
  auto bound = gate::attest(*token, slurp(o.cert, "certificate"), o.audiences, o.cn_only);
  if (!bound) {
    Error e = bound.error();
    if (e.code == "tls.bad_certificate") e.message = "certificate " + o.cert + " is " + e.message;
    fail(e);
  }
  std::cout << *bound << "\n";
  return exit_status::kOk;
}

struct RevokeOptions {
  std::vector<std::string> ids;
  std::string config;
  std::string state_dir = ".larder";
  std::string reason = "revoked by operator";
};

int run_revoke(const RevokeOptions& o) {
  tools::ServeConfig config;
  if (!o.config.empty()) {
    auto loaded = tools::load_serve_config(o.config);
    if (!loaded) fail(loaded.error());
    config = *loaded;
  } else {
    config.database_dir = o.state_dir;
  }
  auto params = tools::ledger_connection(config);
  if (!params) fail(params.error());
  gate::TaintLedger ledger(*params, {});
  std::vector<std::string> ids;  // all checked before any is revoked
  for (const auto& arg : o.ids) {
    std::string raw = arg;
    if (!raw.empty() && raw[0] == '@') {
      // @token-file: the token's lineage (its authority block's revocation id), so every
      // token derived from it is refused too.
      const std::string file = raw.substr(1);
      auto bytes = biscuit::base64url_decode(trim_space(slurp(file, "token file")));
      if (!bytes) fail(make_error("token.invalid", file + ": not a token (URL-safe base64)"));
      auto token = biscuit::Biscuit::from_bytes_unverified(*bytes);
      if (!token) fail(make_error("token.invalid", file + ": not a Biscuit token", token.error().message));
      auto token_ids = token->revocation_ids();
      if (token_ids.empty()) fail(make_error("token.invalid", file + ": the token has no block"));
      raw = biscuit::hex_encode(token_ids.front());
    }
    auto id = gate::normalize_revocation_id(trim_space(raw));
    if (!id) fail(make_error("usage", id.error().message));
    ids.push_back(*id);
  }
  for (const auto& id : ids) {
    auto r = ledger.revoke(id, o.reason);
    if (!r) {
      // libpq's words (host, port, role) are for --verbose.
      fail(make_error("db.unavailable",
                      "cannot reach the revocation list in PostgreSQL: database unavailable, retry later",
                      r.error().message));
    }
    std::cout << "revoked " << id << "\n";
  }
  return 0;
}

int guarded(const std::function<int()>& fn, const char* verb) {
  try {
    return fn();
  } catch (const Failure& f) {
    return report(std::string("biscuit ") + verb, f.error);
  } catch (const std::exception& e) {
    return report(std::string("biscuit ") + verb, make_error("refused", e.what()));
  }
}

void define_gate_verbs(CLI::App& app, Action& selected) {
  CLI::App* biscuit = nullptr;
  try {
    biscuit = app.get_subcommand("biscuit");
  } catch (const CLI::OptionNotFound&) {
    biscuit = app.add_subcommand("biscuit", "Biscuit tokens");
  }

  auto a = std::make_shared<AttestOptions>();
  CLI::App* attest = biscuit->add_subcommand(
      "attest",
      "Bind a token to a client certificate (its SHA-256) and server audiences: appends a block of checks");
  attest->add_option("token_file", a->token_file, "Token file (base64); - for stdin");
  attest->add_option("--token", a->token, "Token (base64)");
  attest->add_option("--cert", a->cert, "Client certificate (PEM) the token may be used with")->required();
  attest->add_option("--audience", a->audiences, "Server audience(s) the token may be used at (repeatable)");
  attest->add_flag("--cn", a->cn_only,
                   "Bind by certificate CN (mtls_client) instead of SHA-256: seed-compatible, weaker");
  auto* pk = attest->add_option("--public-key", a->public_key, "Root public key");
  auto* pkf = attest->add_option("--public-key-file", a->public_key_file, "File with the root public key");
  pk->excludes(pkf);
  attest->callback([&selected, a, pk, pkf] {
    if (pk->count() == 0 && pkf->count() == 0)
      throw CLI::ValidationError("--public-key or --public-key-file is required");
    selected = [a] { return guarded([&] { return run_attest(*a); }, "attest"); };
  });

  auto r = std::make_shared<RevokeOptions>();
  CLI::App* revoke = biscuit->add_subcommand("revoke",
                                             "Revoke tokens by revocation id (hex, as `inspect` prints): "
                                             "every server sharing the database refuses them");
  revoke
      ->add_option("revocation_id", r->ids,
                   "Revocation id(s), or @<token file> for the token's whole lineage")
      ->required();
  revoke->add_option("--config", r->config, "Server configuration (database section) to find the database");
  revoke->add_option("--state-dir", r->state_dir, "Embedded cluster state directory")->capture_default_str();
  revoke->add_option("--reason", r->reason, "Reason recorded with the revocation");
  revoke->callback(
      [&selected, r] { selected = [r] { return guarded([&] { return run_revoke(*r); }, "revoke"); }; });
}

}  // namespace

LARDER_REGISTER_COMMAND("biscuit-gate", 11, define_gate_verbs);

}  // namespace larder::cli
