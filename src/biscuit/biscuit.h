// libbiscuit — Larder's own C++ implementation of Biscuit v3 authorization tokens.
//
// Include this header for the whole public API:
//   keys           biscuit::KeyPair, PublicKey, PrivateKey (Ed25519, ECDSA P-256)
//   tokens         biscuit::BiscuitBuilder, BlockBuilder, Biscuit, Params,
//                  ThirdPartyRequest, ThirdPartyBlock
//   inspection     biscuit::describe_check, block_expiry, some_check_pins, block_assertions
//                  (what a token's checks and blocks say, read without running them)
//   authorization  biscuit::AuthorizerBuilder, Authorizer, RunLimits
//   errors         biscuit::Error (precise tree, samples' JSON shape), biscuit::Result<T>
//   encodings      biscuit::hex_encode/decode, base64url_encode/decode
// The Datalog layer (parser, printer, engine) lives in biscuit/datalog/. See docs/biscuit.md.
#pragma once

#include "biscuit/crypto/encoding.h"
#include "biscuit/crypto/keys.h"
#include "biscuit/error.h"
#include "biscuit/token/authorizer.h"
#include "biscuit/token/inspect.h"
#include "biscuit/token/token.h"
