// `larder biscuit ...`: create, attenuate, seal, inspect and authorize Biscuit tokens with
// libbiscuit. Subcommands and flags follow biscuit-cli (keypair, generate, attenuate, seal,
// generate-request, generate-third-party-block, append-third-party-block, inspect).
// Tokens are read/written as URL-safe base64 unless --raw-input / --raw / --raw-output;
// `-` reads stdin. Exit statuses: the `larder` table (base/exit_status.h) — 0 success, 1
// verification/authorization failure, 2 usage, 3 file not found, 4 not a valid token or key.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>

#include "biscuit/biscuit.h"
#include "biscuit/datalog/parser.h"
#include "cli/command.h"
#include "cli/input.h"
#include "cli/report.h"
#include "cli/token_args.h"

namespace larder::cli {
namespace {

using biscuit::Bytes;

// A failure inside a subcommand: the sentence, and the code that decides the exit status
// (base/exit_status.h); most are usage errors.
struct Problem {
  Problem(std::string m, std::string c = "usage") : message(std::move(m)), code(std::move(c)) {}
  std::string message;
  std::string code;
};

std::string read_all(const std::string& path) {
  auto text = read_input(path);
  if (!text) {
    Error e = file_error("file", path);
    throw Problem{e.message, e.code};
  }
  return *text;
}

Bytes read_token_bytes(const std::string& path, bool raw) {
  std::string data = read_all(path);
  if (raw) return Bytes(data.begin(), data.end());
  auto bytes = biscuit::base64url_decode(trim_space(data));
  if (!bytes) {
    throw Problem{"the token in " + path + " is not URL-safe base64 (use --raw-input for binary)",
                  "token.invalid"};
  }
  return *bytes;
}

void write_token(const Bytes& bytes, bool raw) {
  if (raw) {
    std::cout.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  } else {
    std::cout << biscuit::base64url_encode(bytes) << "\n";
  }
  std::cout.flush();
}

// The exit-status class of a libbiscuit error: a token or key that does not decode is
// invalid input, one that does not verify or authorize is refused, bad Datalog or
// arguments are usage errors.
std::string code_for(const biscuit::Error& e) {
  using C = biscuit::ErrorCode;
  switch (e.code) {
    case C::InvalidSignature:
    case C::SealedSignature:
    case C::UnknownPublicKey:
    case C::Unauthorized:
    case C::NoMatchingPolicy:
      return "refused";
    case C::InvalidSignatureFormat:
    case C::EmptyKeys:
    case C::Deserialization:
    case C::BlockDeserialization:
    case C::Version:
    case C::InvalidSignatureSize:
    case C::BlockSignatureDeserialization:
    case C::InvalidKeySize:
    case C::InvalidKey:
      return "token.invalid";
    case C::Language:
    case C::InvalidArgument:
      return "usage";
    default:
      return "refused";
  }
}

template <class T>
T check(biscuit::Result<T> r, const std::string& what) {
  if (!r) throw Problem{what + ": " + r.error().to_string(), code_for(r.error())};
  return std::move(*r);
}
void check(biscuit::Result<void> r, const std::string& what) {
  if (!r) throw Problem{what + ": " + r.error().to_string(), code_for(r.error())};
}
// A key given on the command line or in a file: whatever libbiscuit says, it is not a valid key.
template <class T>
T check_key(biscuit::Result<T> r, const std::string& what) {
  if (!r) throw Problem{what + ": not a valid key (" + r.error().message + ")", "key.invalid"};
  return std::move(*r);
}

biscuit::PrivateKey load_private_key(const std::string& text, const std::string& file,
                                     biscuit::Algorithm bare = biscuit::Algorithm::Ed25519) {
  std::string k = !text.empty() ? text : (!file.empty() ? trim_space(read_all(file)) : "");
  if (k.empty()) throw Problem{"a private key is required (--private-key or --private-key-file)"};
  auto key = parse_private_key(k, bare);
  if (!key) throw Problem{"private key: not a valid key (" + key.error().message + ")", "key.invalid"};
  return std::move(*key);
}

std::chrono::seconds duration_of(const std::string& text) {
  auto d = parse_duration(text);
  if (!d) throw Problem{d.error().message};
  return *d;
}

// --add-ttl: a duration from now, or an RFC 3339 date.
uint64_t ttl_expiry(const std::string& ttl) {
  if (auto date = biscuit::datalog::parse_rfc3339(ttl)) return *date;
  auto now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
  return static_cast<uint64_t>((now + duration_of(ttl)).count());
}

biscuit::Params make_params(const std::vector<std::string>& specs) {
  auto p = cli::make_params(specs);
  if (!p) throw Problem{p.error().message};
  return std::move(*p);
}

std::string code_from(const std::string& inline_code, const std::string& file, const char* what) {
  if (!inline_code.empty()) return inline_code;
  if (!file.empty()) return read_all(file);
  throw Problem{std::string("missing ") + what};
}

void add_ttl_check(biscuit::BlockBuilder& block, const std::string& ttl) {
  if (ttl.empty()) return;
  check(block.add_check("check if time($time), $time <= {ttl_expiry}",
                        biscuit::Params().date("ttl_expiry", ttl_expiry(ttl))),
        "--add-ttl");
}

std::string json_str(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

int run_guarded(const std::function<int()>& fn) {
  try {
    return fn();
  } catch (const Problem& f) {
    return report("biscuit", make_error(f.code, f.message));
  }
}

// ------------------------------------------------------------------ subcommands

struct KeypairOpts {
  std::string algorithm = "ed25519", from_private, from_private_file;
  bool only_public = false, only_private = false;
};

int run_keypair(const KeypairOpts& o) {
  auto alg = biscuit::algorithm_from_name(o.algorithm);
  if (!alg) throw Problem{"unknown key algorithm " + o.algorithm + " (ed25519 or secp256r1)"};
  biscuit::KeyPair kp;
  if (!o.from_private.empty() || !o.from_private_file.empty()) {
    kp = biscuit::KeyPair(load_private_key(o.from_private, o.from_private_file, *alg));
  } else {
    kp = biscuit::KeyPair::generate(*alg);
  }
  if (o.only_public) {
    std::cout << kp.public_key().to_string() << "\n";
  } else if (o.only_private) {
    std::cout << kp.private_key().to_string() << "\n";
  } else {
    std::cout << "Private key: " << kp.private_key().to_string() << "\n"
              << "Public key: " << kp.public_key().to_string() << "\n";
  }
  return 0;
}

struct GenerateOpts {
  std::string authority = "-", private_key, private_key_file, ttl, context;
  std::vector<std::string> params;
  bool raw = false;
  uint32_t root_key_id = 0;
  bool has_root_key_id = false;
};

int run_generate(const GenerateOpts& o) {
  auto key = load_private_key(o.private_key, o.private_key_file);
  biscuit::BiscuitBuilder b;
  check(b.add_code(read_all(o.authority), make_params(o.params)), "authority block");
  add_ttl_check(b, o.ttl);
  if (!o.context.empty()) b.set_context(o.context);
  if (o.has_root_key_id) b.set_root_key_id(o.root_key_id);
  auto token = check(b.build(key), "cannot create the token");
  write_token(token.to_bytes(), o.raw);
  return 0;
}

struct AttenuateOpts {
  std::string file, block, block_file, ttl, context;
  std::vector<std::string> params;
  bool raw_input = false, raw_output = false;
};

int run_attenuate(const AttenuateOpts& o) {
  auto token = check(biscuit::Biscuit::from_bytes_unverified(read_token_bytes(o.file, o.raw_input)),
                     "cannot read the token");
  biscuit::BlockBuilder block;
  std::string code = o.block.empty() && o.block_file.empty() && !o.ttl.empty()
                         ? std::string()
                         : code_from(o.block, o.block_file, "--block or --block-file");
  if (!code.empty()) check(block.add_code(code, make_params(o.params)), "block");
  add_ttl_check(block, o.ttl);
  if (!o.context.empty()) block.set_context(o.context);
  auto out = check(token.append(block), "cannot attenuate");
  write_token(out.to_bytes(), o.raw_output);
  return 0;
}

struct SealOpts {
  std::string file;
  bool raw_input = false, raw_output = false;
};

int run_seal(const SealOpts& o) {
  auto token = check(biscuit::Biscuit::from_bytes_unverified(read_token_bytes(o.file, o.raw_input)),
                     "cannot read the token");
  write_token(check(token.seal(), "cannot seal").to_bytes(), o.raw_output);
  return 0;
}

int run_generate_request(const SealOpts& o) {
  auto token = check(biscuit::Biscuit::from_bytes_unverified(read_token_bytes(o.file, o.raw_input)),
                     "cannot read the token");
  auto req = check(token.third_party_request(), "cannot create a third-party request");
  std::cout << req.to_base64() << "\n";
  return 0;
}

struct ThirdPartyOpts {
  std::string request, private_key, private_key_file, block, block_file;
  std::vector<std::string> params;
};

int run_generate_third_party(const ThirdPartyOpts& o) {
  auto req = check(biscuit::ThirdPartyRequest::from_base64(trim_space(read_all(o.request))),
                   "cannot read the request");
  auto key = load_private_key(o.private_key, o.private_key_file);
  biscuit::BlockBuilder block;
  check(block.add_code(code_from(o.block, o.block_file, "--block or --block-file"), make_params(o.params)),
        "block");
  auto tp = check(req.create_block(key, block), "cannot create the third-party block");
  std::cout << tp.to_base64() << "\n";
  return 0;
}

struct AppendThirdPartyOpts {
  std::string file, contents, contents_file;
  bool raw_input = false, raw_output = false;
};

int run_append_third_party(const AppendThirdPartyOpts& o) {
  auto token = check(biscuit::Biscuit::from_bytes_unverified(read_token_bytes(o.file, o.raw_input)),
                     "cannot read the token");
  std::string text =
      !o.contents.empty() ? o.contents : (!o.contents_file.empty() ? read_all(o.contents_file) : "");
  if (text.empty()) throw Problem{"missing --block-contents or --block-contents-file"};
  auto block =
      check(biscuit::ThirdPartyBlock::from_base64(trim_space(text)), "cannot read the third-party block");
  write_token(check(token.append_third_party(block), "cannot append the third-party block").to_bytes(),
              o.raw_output);
  return 0;
}

struct InspectOpts {
  std::string file, public_key, public_key_file, authorize_with, authorize_with_file, max_time;
  bool raw_input = false, include_time = false, json = false;
  uint64_t max_facts = 0, max_iterations = 0;
};

int run_inspect(const InspectOpts& o) {
  Bytes bytes = read_token_bytes(o.file, o.raw_input);
  std::optional<biscuit::PublicKey> root;
  std::string key_text = !o.public_key.empty()
                             ? o.public_key
                             : (!o.public_key_file.empty() ? trim_space(read_all(o.public_key_file)) : "");
  if (!key_text.empty()) root = check_key(biscuit::PublicKey::from_string(key_text), "public key");
  bool want_authorize = !o.authorize_with.empty() || !o.authorize_with_file.empty();
  if (want_authorize && !root) throw Problem{"--authorize-with needs --public-key or --public-key-file"};

  // With a key, the signatures are checked first, before any block is decoded: a token whose
  // signature fails is reported as that (the official sample test004, a random block, is
  // InvalidSignature), even when its blocks would not decode either.
  std::optional<biscuit::Error> verify_error;
  std::optional<biscuit::Biscuit> verified;
  if (root) {
    auto v = biscuit::Biscuit::from_bytes(bytes, *root);
    if (v) {
      verified = std::move(*v);
    } else {
      verify_error = v.error();
    }
  }
  std::optional<biscuit::Biscuit> unverified;
  if (!verified) {
    auto u = biscuit::Biscuit::from_bytes_unverified(bytes);
    if (!u && verify_error) check(biscuit::Result<void>(*verify_error), "the token does not verify");
    unverified = check(std::move(u), "cannot read the token");
  }
  const biscuit::Biscuit& token = verified ? *verified : *unverified;

  std::optional<std::string> result_json, world_json;
  std::optional<biscuit::Error> auth_error;
  std::optional<std::size_t> auth_ok;
  if (want_authorize && verified) {
    biscuit::AuthorizerBuilder ab;
    check(ab.add_code(code_from(o.authorize_with, o.authorize_with_file, "authorizer code")),
          "authorizer code");
    if (o.include_time) ab.set_time(std::chrono::system_clock::now());
    biscuit::RunLimits limits;
    if (o.max_facts) limits.max_facts = o.max_facts;
    if (o.max_iterations) limits.max_iterations = o.max_iterations;
    if (!o.max_time.empty()) {
      std::string t = o.max_time;
      std::chrono::nanoseconds d;
      auto count = [&](std::size_t suffix) -> long long {
        try {
          std::size_t used = 0;
          long long v = std::stoll(t.substr(0, t.size() - suffix), &used);
          if (used == t.size() - suffix && v >= 0) return v;
        } catch (const std::exception&) {
        }
        throw Problem{"--max-time: not a duration: " + t + " (e.g. 5ms, 500us, 1s)"};
      };
      if (t.size() > 2 && t.substr(t.size() - 2) == "ms") {
        d = std::chrono::milliseconds(count(2));
      } else if (t.size() > 2 && t.substr(t.size() - 2) == "us") {
        d = std::chrono::microseconds(count(2));
      } else {
        d = duration_of(t);
      }
      limits.max_time = d;
    }
    ab.set_limits(limits);
    auto a = ab.build(*verified);
    if (!a) {
      auth_error = a.error();
    } else {
      auto r = a->authorize();
      if (r) {
        auth_ok = *r;
      } else {
        auth_error = r.error();
      }
      world_json = biscuit::world_dump_json(a->dump());
    }
    result_json =
        auth_ok ? "{\"Ok\":" + std::to_string(*auth_ok) + "}" : "{\"Err\":" + auth_error->to_json() + "}";
  }

  if (o.json) {
    std::string out = "{";
    if (token.root_key_id()) out += "\"root_key_id\":" + std::to_string(*token.root_key_id()) + ",";
    out += "\"sealed\":" + std::string(token.sealed() ? "true" : "false") + ",";
    out += "\"revocation_ids\":[";
    auto ids = token.revocation_ids();
    for (std::size_t i = 0; i < ids.size(); ++i)
      out += (i ? "," : "") + json_str(biscuit::hex_encode(ids[i]));
    out += "],\"blocks\":[";
    for (std::size_t i = 0; i < token.block_count(); ++i) {
      const auto& b = token.block(i);
      out += i ? "," : "";
      out += "{\"code\":" + json_str(token.block_source(i)) + ",\"symbols\":[";
      for (std::size_t j = 0; j < b.symbols.size(); ++j) out += (j ? "," : "") + json_str(b.symbols[j]);
      out += "],\"public_keys\":[";
      for (std::size_t j = 0; j < b.public_keys.size(); ++j)
        out += (j ? "," : "") + json_str(b.public_keys[j].print());
      out += "],\"external_key\":";
      auto ext = token.block_external_key(i);
      out += ext ? json_str(ext->to_string()) : "null";
      out += ",\"version\":" + std::to_string(b.version);
      if (b.context) out += ",\"context\":" + json_str(*b.context);
      out += "}";
    }
    out += "]";
    if (root) {
      out += ",\"signatures\":" +
             std::string(verified ? "{\"Ok\":null}" : "{\"Err\":" + verify_error->to_json() + "}");
    }
    if (result_json) out += ",\"result\":" + *result_json;
    if (world_json) out += ",\"world\":" + *world_json;
    out += "}";
    std::cout << out << "\n";
  } else {
    if (token.root_key_id()) std::cout << "Root key identifier: " << *token.root_key_id() << "\n";
    for (std::size_t i = 0; i < token.block_count(); ++i) {
      std::cout << (i == 0 ? std::string("Authority block:") : "Block n°" + std::to_string(i) + ":") << "\n";
      if (auto ext = token.block_external_key(i))
        std::cout << "External signature by: " << ext->to_string() << "\n";
      std::cout << "Datalog version: " << token.block(i).version << "\n";
      if (auto ctx = token.block_context(i)) std::cout << "Context: " << *ctx << "\n";
      std::cout << "== Datalog ==\n"
                << token.block_source(i) << "\n== Revocation id ==\n"
                << biscuit::hex_encode(token.revocation_ids()[i]) << "\n\n==========\n\n";
    }
    std::cout << (token.sealed() ? "Sealed token\n" : "Open token (can be attenuated)\n");
    if (!root) {
      std::cout << "🙈 Public key check skipped 🔑\n";
    } else if (verified) {
      std::cout << "✅ Public key check succeeded 🔑\n";
    } else {
      std::cout << "❌ Public key check failed 🔑\n" << verify_error->to_string() << "\n";
    }
    if (want_authorize && verified) {
      if (auth_ok) {
        std::cout << "✅ Authorizer check succeeded 🛡️\nMatched allow policy #" << *auth_ok << "\n";
      } else {
        std::cout << "❌ Authorizer check failed 🛡️\n" << auth_error->to_string() << "\n";
      }
    } else if (!want_authorize) {
      std::cout << "🙈 Datalog check skipped 🛡️\n";
    }
  }
  if (root && !verified) return exit_status::kRefused;
  if (want_authorize && !auth_ok) return exit_status::kRefused;
  return exit_status::kOk;
}

// ------------------------------------------------------------------ CLI definition

void define_biscuit(CLI::App& app, Action& selected) {
  auto* cmd = app.add_subcommand("biscuit", "Create, attenuate, seal, inspect and authorize Biscuit tokens");
  cmd->require_subcommand(1);

  auto ko = std::make_shared<KeypairOpts>();
  auto* kp = cmd->add_subcommand("keypair", "Generate a key pair, or derive the public key of a private key");
  kp->add_option("--key-algorithm", ko->algorithm, "ed25519 (default) or secp256r1");
  auto* kpk =
      kp->add_option("--from-private-key", ko->from_private, "Private key (ed25519-private/<hex>, ...)");
  kp->add_option("--from-private-key-file", ko->from_private_file, "File holding the private key")
      ->excludes(kpk);
  auto* op = kp->add_flag("--only-public-key", ko->only_public, "Print only the public key");
  kp->add_flag("--only-private-key", ko->only_private, "Print only the private key")->excludes(op);
  kp->callback(
      [ko, &selected] { selected = [ko] { return run_guarded([&] { return run_keypair(*ko); }); }; });

  auto go = std::make_shared<GenerateOpts>();
  auto* gen = cmd->add_subcommand("generate", "Create a token from an authority block's Datalog");
  gen->add_option("authority", go->authority, "File with the authority block's Datalog, or - for stdin");
  auto* gpk = gen->add_option("--private-key", go->private_key, "Root private key");
  gen->add_option("--private-key-file", go->private_key_file, "File holding the root private key")
      ->excludes(gpk);
  gen->add_option("--param", go->params,
                  "Parameter value: name=value[::type] (string, integer, date, bytes, bool, pubkey)");
  gen->add_option("--add-ttl", go->ttl,
                  "Add `check if time($time), $time <= now+TTL` (e.g. 1h, 30m, or an RFC 3339 date)");
  gen->add_option("--context", go->context, "Free-form context string stored in the block");
  gen->add_option("--root-key-id", go->root_key_id, "Root key identifier (for key rotation)")
      ->each([go](const std::string&) { go->has_root_key_id = true; });
  gen->add_flag("--raw", go->raw, "Write the token as raw bytes instead of base64");
  gen->callback(
      [go, &selected] { selected = [go] { return run_guarded([&] { return run_generate(*go); }); }; });

  auto ao = std::make_shared<AttenuateOpts>();
  auto* att = cmd->add_subcommand("attenuate", "Append a block (checks) to a token");
  att->add_option("biscuit_file", ao->file, "Token file, or - for stdin")->required();
  auto* ab = att->add_option("--block", ao->block, "Datalog of the new block");
  att->add_option("--block-file", ao->block_file, "File with the new block's Datalog")->excludes(ab);
  att->add_option("--param", ao->params, "Parameter value: name=value[::type]");
  att->add_option("--add-ttl", ao->ttl, "Add an expiry check");
  att->add_option("--context", ao->context, "Context string stored in the block");
  att->add_flag("--raw-input", ao->raw_input, "Read the token as raw bytes");
  att->add_flag("--raw-output", ao->raw_output, "Write the token as raw bytes");
  att->callback(
      [ao, &selected] { selected = [ao] { return run_guarded([&] { return run_attenuate(*ao); }); }; });

  auto so = std::make_shared<SealOpts>();
  auto* seal = cmd->add_subcommand("seal", "Seal a token: no more blocks can be appended");
  seal->add_option("biscuit_file", so->file, "Token file, or - for stdin")->required();
  seal->add_flag("--raw-input", so->raw_input, "Read the token as raw bytes");
  seal->add_flag("--raw-output", so->raw_output, "Write the token as raw bytes");
  seal->callback([so, &selected] { selected = [so] { return run_guarded([&] { return run_seal(*so); }); }; });

  auto ro = std::make_shared<SealOpts>();
  auto* req = cmd->add_subcommand("generate-request", "Create a third-party block request for a token");
  req->add_option("biscuit_file", ro->file, "Token file, or - for stdin")->required();
  req->add_flag("--raw-input", ro->raw_input, "Read the token as raw bytes");
  req->callback([ro, &selected] {
    selected = [ro] { return run_guarded([&] { return run_generate_request(*ro); }); };
  });

  auto to = std::make_shared<ThirdPartyOpts>();
  auto* tp =
      cmd->add_subcommand("generate-third-party-block", "Create and sign a third-party block for a request");
  tp->add_option("request_file", to->request, "Request file, or - for stdin")->required();
  auto* tpk = tp->add_option("--private-key", to->private_key, "The third party's private key");
  tp->add_option("--private-key-file", to->private_key_file, "File holding the third party's private key")
      ->excludes(tpk);
  auto* tb = tp->add_option("--block", to->block, "Datalog of the block");
  tp->add_option("--block-file", to->block_file, "File with the block's Datalog")->excludes(tb);
  tp->add_option("--param", to->params, "Parameter value: name=value[::type]");
  tp->callback([to, &selected] {
    selected = [to] { return run_guarded([&] { return run_generate_third_party(*to); }); };
  });

  auto po = std::make_shared<AppendThirdPartyOpts>();
  auto* ap = cmd->add_subcommand("append-third-party-block", "Append a signed third-party block to a token");
  ap->add_option("biscuit_file", po->file, "Token file, or - for stdin")->required();
  auto* bc = ap->add_option("--block-contents", po->contents, "The third-party block (base64)");
  ap->add_option("--block-contents-file", po->contents_file, "File holding the third-party block")
      ->excludes(bc);
  ap->add_flag("--raw-input", po->raw_input, "Read the token as raw bytes");
  ap->add_flag("--raw-output", po->raw_output, "Write the token as raw bytes");
  ap->callback([po, &selected] {
    selected = [po] { return run_guarded([&] { return run_append_third_party(*po); }); };
  });

  auto io = std::make_shared<InspectOpts>();
  auto* ins = cmd->add_subcommand("inspect", "Print a token's blocks; verify and authorize it");
  ins->add_option("biscuit_file", io->file, "Token file, or - for stdin")->required();
  ins->add_flag("--raw-input", io->raw_input, "Read the token as raw bytes");
  auto* ipk = ins->add_option("--public-key", io->public_key, "Root public key: verify the signatures");
  ins->add_option("--public-key-file", io->public_key_file, "File holding the root public key")
      ->excludes(ipk);
  auto* iaw = ins->add_option("--authorize-with", io->authorize_with, "Authorizer Datalog to run");
  ins->add_option("--authorize-with-file", io->authorize_with_file, "File with authorizer Datalog")
      ->excludes(iaw);
  ins->add_flag("--include-time", io->include_time, "Add time(<now>) to the authorizer");
  ins->add_option("--max-facts", io->max_facts, "Run limit: facts (default 1000)");
  ins->add_option("--max-iterations", io->max_iterations, "Run limit: iterations (default 100)");
  ins->add_option("--max-time", io->max_time, "Run limit: time, e.g. 5ms, 1s (default 1ms)");
  ins->add_flag("--json", io->json, "JSON output (revocation_ids, blocks, result, world)");
  ins->callback(
      [io, &selected] { selected = [io] { return run_guarded([&] { return run_inspect(*io); }); }; });
}

}  // namespace

LARDER_REGISTER_COMMAND("biscuit", 10, define_biscuit);

}  // namespace larder::cli
