#include "gate/attestation.h"

#include "net/peer_identity.h"

namespace larder::gate {

Result<biscuit::BlockBuilder> attestation_block(std::string_view client_cert_pem,
                                                const std::vector<std::string>& audiences, bool cn_only) {
  auto peer = net::peer_identity_from_pem(client_cert_pem);
  if (!peer) return peer.error();
  biscuit::BlockBuilder block;
  biscuit::Result<void> added =
      cn_only ? block.add_check("check if mtls_client({cn})", biscuit::Params().string("cn", peer->cn))
              : [&]() -> biscuit::Result<void> {
    auto sha = biscuit::hex_decode(peer->cert_sha256);
    if (!sha)
      return biscuit::make_error(biscuit::ErrorCode::InvalidArgument, "certificate fingerprint is not hex");
    return block.add_check("check if client_cert_sha256({sha})", biscuit::Params().bytes("sha", *sha));
  }();
  if (!added) return make_error("attest", added.error().message);
  if (audiences.size() == 1) {
    added = block.add_check("check if server_audience({aud})", biscuit::Params().string("aud", audiences[0]));
  } else if (!audiences.empty()) {
    std::vector<biscuit::datalog::ast::Term> items;
    for (const auto& a : audiences) items.push_back(biscuit::datalog::ast::Term::string(a));
    added = block.add_check("check if server_audience($aud), {auds}.contains($aud)",
                            biscuit::Params().term("auds", biscuit::datalog::ast::Term::set(items)));
  }
  if (!added) return make_error("attest", added.error().message);
  return block;
}

Result<std::string> attest(const biscuit::Biscuit& token, std::string_view client_cert_pem,
                           const std::vector<std::string>& audiences, bool cn_only) {
  auto block = attestation_block(client_cert_pem, audiences, cn_only);
  if (!block) return block.error();
  auto bound = token.append(*block);
  if (!bound) return make_error("attest", "append: " + bound.error().message);
  return bound->to_base64();
}

}  // namespace larder::gate
