// The certificate-binding (attestation) block: the checks that tie a token to one client
// certificate and to the servers it may be used at. One definition, used by
// `larder biscuit attest` and the demo.
//   check if client_cert_sha256(hex:<DER SHA-256>);            (or, with cn_only, the weaker
//   check if mtls_client("<CN>");                               seed-compatible form)
//   check if server_audience("<aud>");   /   check if server_audience($a), {..}.contains($a);
#pragma once

#include "base/result.h"
#include "biscuit/token/token.h"

#include <string>
#include <string_view>
#include <vector>

namespace larder::gate {

Result<biscuit::BlockBuilder> attestation_block(std::string_view client_cert_pem,
                                                const std::vector<std::string>& audiences,
                                                bool cn_only = false);

// `token` with the attestation block appended, as base64.
Result<std::string> attest(const biscuit::Biscuit& token, std::string_view client_cert_pem,
                           const std::vector<std::string>& audiences, bool cn_only = false);

}  // namespace larder::gate
