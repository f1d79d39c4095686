// Command-line values that become token content, shared by `larder biscuit` and
// `larder token`: durations ("90s", "15m", "1h30m", "2d", "1w") and typed Datalog
// parameters (`--param name=value[::type]`, or biscuit-cli's `name:type=value`).
#pragma once

#include "base/result.h"
#include "biscuit/token/token.h"

#include <chrono>
#include <string>
#include <vector>

namespace larder::cli {

// "90s", "15m", "1h30m", "2d", "1w", or a plain number of seconds.
Result<std::chrono::seconds> parse_duration(const std::string& text);

// Types: string (default), integer, date (RFC 3339), bytes (hex, optional hex: prefix), bool,
// pubkey.
Result<void> add_param(biscuit::Params& params, const std::string& spec);
Result<biscuit::Params> make_params(const std::vector<std::string>& specs);

// A private key as text: "ed25519-private/<hex>", "secp256r1-private/<hex>", bare hex (of
// `bare`), or what `larder biscuit keypair` prints ("Private key: ...\nPublic key: ...").
Result<biscuit::PrivateKey> parse_private_key(std::string text,
                                              biscuit::Algorithm bare = biscuit::Algorithm::Ed25519);

}  // namespace larder::cli
