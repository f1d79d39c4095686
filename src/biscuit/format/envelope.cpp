#include "biscuit/format/envelope.h"

#include <google/protobuf/io/coded_stream.h>

#include "biscuit/format/schema.pb.h"
#include "biscuit/format/signature.h"

namespace biscuit::format {
namespace {

Error deser(const std::string& what) {
  return make_error(ErrorCode::Deserialization, what);
}

// Parses `data` into `msg` with a nesting cap; required fields are checked by the caller.
bool parse_message(google::protobuf::MessageLite& msg, ByteView data, const ParseLimits& limits) {
  if (data.size() > limits.max_token_bytes) return false;
  google::protobuf::io::CodedInputStream in(data.data(), static_cast<int>(data.size()));
  in.SetRecursionLimit(limits.max_nesting);
  return msg.MergePartialFromCodedStream(&in) && in.ConsumedEntireMessage();
}

Result<PublicKey> key_from_pb(const pb::PublicKey& k, const char* where) {
  if (!k.has_algorithm() || !k.has_key()) {
    return deser(std::string(where) + ": public key without algorithm or key bytes");
  }
  Algorithm alg = k.algorithm() == pb::PublicKey::SECP256R1 ? Algorithm::Secp256r1 : Algorithm::Ed25519;
  const std::string& b = k.key();
  auto key = PublicKey::from_bytes(alg, ByteView(reinterpret_cast<const uint8_t*>(b.data()), b.size()));
  if (!key) {
    Error e = key.take_error();
    e.message = std::string(where) + ": " + e.message;
    return e;
  }
  return key;
}

void key_to_pb(const PublicKey& key, pb::PublicKey* out) {
  out->set_algorithm(key.algorithm() == Algorithm::Secp256r1 ? pb::PublicKey::SECP256R1
                                                             : pb::PublicKey::Ed25519);
  out->set_key(std::string(key.bytes().begin(), key.bytes().end()));
}

Bytes to_bytes(const std::string& s) {
  return Bytes(s.begin(), s.end());
}
std::string to_string(const Bytes& b) {
  return std::string(b.begin(), b.end());
}

// Signature sizes are checked when parsing: a wrong size is a deserialization error,
// distinct from a signature that does not verify. Its JSON payload is the reference's: the
// signature's bytes, as a list of decimal numbers.
Result<void> check_signature_size(Algorithm alg, const Bytes& sig, const std::string& where) {
  if (alg == Algorithm::Ed25519 ? sig.size() == 64 : (sig.size() >= 8 && sig.size() <= 72)) return {};
  Error e = make_error(ErrorCode::BlockSignatureDeserialization,
                       where + ": a " + algorithm_name(alg) + " signature cannot be " +
                           std::to_string(sig.size()) + " bytes long");
  e.detail = "block signature deserialization error: [";
  for (std::size_t i = 0; i < sig.size(); ++i) e.detail += (i ? ", " : "") + std::to_string(sig[i]);
  e.detail += "]";
  return e;
}

// A signature of block `index` that does not verify under a key of `alg`. The JSON payload
// is the reference's text for a failed verification (its Ed25519 and ECDSA libraries' words).
Error invalid_signature(std::string message, Algorithm alg, std::size_t index) {
  Error e = make_error(ErrorCode::InvalidSignature, std::move(message));
  e.detail = alg == Algorithm::Ed25519 ? "signature error: Verification equation was not satisfied"
                                       : "signature error";
  e.block = static_cast<uint32_t>(index);
  return e;
}

Result<SignedBlock> signed_block_from_pb(const pb::SignedBlock& sb, Algorithm signer_alg,
                                         const std::string& where) {
  if (!sb.has_block() || !sb.has_nextkey() || !sb.has_signature()) {
    return deser(where + ": signed block without block bytes, next key or signature");
  }
  SignedBlock out;
  out.block = to_bytes(sb.block());
  auto next = key_from_pb(sb.nextkey(), "next key");
  if (!next) return next.take_error();
  out.next_key = std::move(*next);
  out.signature = to_bytes(sb.signature());
  if (auto r = check_signature_size(signer_alg, out.signature, where); !r) return r.take_error();
  if (sb.has_externalsignature()) {
    const auto& ext = sb.externalsignature();
    if (!ext.has_signature() || !ext.has_publickey()) {
      return deser(where + ": external signature without signature or public key");
    }
    auto pk = key_from_pb(ext.publickey(), "external key");
    if (!pk) return pk.take_error();
    Bytes sig = to_bytes(ext.signature());
    if (auto r = check_signature_size(pk->algorithm(), sig, where + " external signature"); !r)
      return r.take_error();
    out.external = ExternalSignature{std::move(sig), std::move(*pk)};
  }
  if (sb.has_version()) {
    if (sb.version() > 1) {
      return deser(where + ": unsupported signature payload version " + std::to_string(sb.version()));
    }
    out.payload_version = sb.version();
  }
  return out;
}

void signed_block_to_pb(const SignedBlock& b, pb::SignedBlock* out) {
  out->set_block(to_string(b.block));
  key_to_pb(b.next_key, out->mutable_nextkey());
  out->set_signature(to_string(b.signature));
  if (b.external) {
    out->mutable_externalsignature()->set_signature(to_string(b.external->signature));
    key_to_pb(b.external->public_key, out->mutable_externalsignature()->mutable_publickey());
  }
  if (b.payload_version != 0) out->set_version(b.payload_version);
}

Bytes block_payload(const SignedBlock& b, const Bytes* previous_signature) {
  std::optional<ByteView> ext;
  if (b.external) ext = ByteView(b.external->signature);
  if (b.payload_version == 0) {
    return block_payload_v0(b.block, ext, b.next_key.algorithm(), b.next_key.bytes());
  }
  std::optional<ByteView> prev;
  if (previous_signature) prev = ByteView(*previous_signature);
  return block_payload_v1(b.block, b.next_key.algorithm(), b.next_key.bytes(), prev, ext);
}

}  // namespace

uint32_t writer_payload_version(bool third_party, uint32_t datalog_version, Algorithm signing_alg,
                                Algorithm next_alg, bool earlier_v1) {
  if (third_party || datalog_version >= 6 || signing_alg != Algorithm::Ed25519 ||
      next_alg != Algorithm::Ed25519 || earlier_v1) {
    return 1;
  }
  return 0;
}

Result<Envelope> Envelope::parse(ByteView data, const ParseLimits& limits) {
  if (data.size() > limits.max_token_bytes) {
    return deser("token is " + std::to_string(data.size()) + " bytes, above the limit of " +
                 std::to_string(limits.max_token_bytes));
  }
  pb::Biscuit msg;
  if (!parse_message(msg, data, limits)) return deser("token bytes are not a valid Biscuit protobuf message");
  if (!msg.has_authority() || !msg.has_proof()) return deser("token without authority block or proof");
  if (static_cast<std::size_t>(msg.blocks_size()) + 1 > limits.max_blocks) {
    return deser("token has more than " + std::to_string(limits.max_blocks) + " blocks");
  }
  Envelope env;
  if (msg.has_rootkeyid()) env.root_key_id = msg.rootkeyid();
  // The authority block's signer (the root key) is unknown here; its size is checked against
  // the root key's algorithm in verify(). Other blocks are checked against the previous next key.
  {
    const auto& sb = msg.authority();
    Algorithm guess = sb.signature().size() == 64 ? Algorithm::Ed25519 : Algorithm::Secp256r1;
    auto a = signed_block_from_pb(sb, guess, "authority block");
    if (!a) return a.take_error();
    env.authority = std::move(*a);
  }
  for (int i = 0; i < msg.blocks_size(); ++i) {
    Algorithm signer = env.last().next_key.algorithm();
    auto b = signed_block_from_pb(msg.blocks(i), signer, "block " + std::to_string(i + 1));
    if (!b) return b.take_error();
    env.blocks.push_back(std::move(*b));
  }
  const auto& proof = msg.proof();
  if (proof.has_nextsecret()) {
    const std::string& s = proof.nextsecret();
    auto key = PrivateKey::from_bytes(env.last().next_key.algorithm(),
                                      ByteView(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
    if (!key)
      return deser("proof secret is not a valid " +
                   std::string(algorithm_name(env.last().next_key.algorithm())) +
                   " private key: " + key.error().message);
    env.next_secret = std::move(*key);
  } else if (proof.has_finalsignature()) {
    env.final_signature = to_bytes(proof.finalsignature());
    if (auto r =
            check_signature_size(env.last().next_key.algorithm(), env.final_signature, "final signature");
        !r) {
      return r.take_error();
    }
  } else {
    return deser("token proof holds neither a next secret nor a final signature");
  }
  return env;
}

Bytes Envelope::serialize() const {
  pb::Biscuit msg;
  if (root_key_id) msg.set_rootkeyid(*root_key_id);
  signed_block_to_pb(authority, msg.mutable_authority());
  for (const auto& b : blocks) signed_block_to_pb(b, msg.add_blocks());
  if (next_secret) {
    msg.mutable_proof()->set_nextsecret(to_string(next_secret->bytes()));
  } else {
    msg.mutable_proof()->set_finalsignature(to_string(final_signature));
  }
  std::string out;
  msg.SerializeToString(&out);
  return Bytes(out.begin(), out.end());
}

Result<void> Envelope::verify(const PublicKey& root) const {
  const PublicKey* signer = &root;
  if (auto r = check_signature_size(root.algorithm(), authority.signature, "authority block"); !r) return r;
  for (std::size_t i = 0; i < block_count(); ++i) {
    const SignedBlock& b = block(i);
    const Bytes* prev_sig = i == 0 ? nullptr : &block(i - 1).signature;
    if (b.external) {
      if (i == 0)
        return make_error(ErrorCode::Deserialization,
                          "the authority block cannot carry an external signature");
      if (b.payload_version != 1) {
        return make_error(ErrorCode::Deserialization,
                          "third-party block " + std::to_string(i) + " must use signature payload version 1");
      }
      Bytes ext_payload = external_payload(b.block, *prev_sig);
      if (!b.external->public_key.verify(ext_payload, b.external->signature)) {
        return invalid_signature(
            "signature error: external signature of block " + std::to_string(i) + " does not verify",
            b.external->public_key.algorithm(), i);
      }
    }
    Bytes payload = block_payload(b, prev_sig);
    if (!signer->verify(payload, b.signature)) {
      return invalid_signature(
          "signature error: Verification equation was not satisfied (block " + std::to_string(i) + ")",
          signer->algorithm(), i);
    }
    signer = &b.next_key;
  }
  const SignedBlock& tail = last();
  if (next_secret) {
    if (!(next_secret->public_key() == tail.next_key)) {
      return make_error(ErrorCode::InvalidSignature,
                        "signature error: the proof secret does not match the last block's next key");
    }
  } else {
    Bytes payload =
        seal_payload(tail.block, tail.next_key.algorithm(), tail.next_key.bytes(), tail.signature);
    if (!tail.next_key.verify(payload, final_signature)) {
      return make_error(ErrorCode::SealedSignature,
                        "the final signature of the sealed token does not verify");
    }
  }
  return {};
}

Result<Envelope> Envelope::create(const PrivateKey& root, std::optional<uint32_t> root_key_id,
                                  Bytes authority, uint32_t datalog_version, const KeyPair& next) {
  Envelope env;
  env.root_key_id = root_key_id;
  env.authority.block = std::move(authority);
  env.authority.next_key = next.public_key();
  env.authority.payload_version =
      writer_payload_version(false, datalog_version, root.algorithm(), next.algorithm(), false);
  auto sig = root.sign(block_payload(env.authority, nullptr));
  if (!sig) return sig.take_error();
  env.authority.signature = std::move(*sig);
  env.next_secret = next.private_key();
  return env;
}

Result<Envelope> Envelope::append(Bytes block, uint32_t datalog_version, const KeyPair& next) const {
  if (sealed()) return make_error(ErrorCode::AppendOnSealed, "cannot append a block to a sealed token");
  bool earlier_v1 = authority.payload_version == 1;
  for (const auto& b : blocks) earlier_v1 = earlier_v1 || b.payload_version == 1;
  Envelope env = *this;
  SignedBlock sb;
  sb.block = std::move(block);
  sb.next_key = next.public_key();
  sb.payload_version =
      writer_payload_version(false, datalog_version, next_secret->algorithm(), next.algorithm(), earlier_v1);
  auto sig = next_secret->sign(block_payload(sb, &last().signature));
  if (!sig) return sig.take_error();
  sb.signature = std::move(*sig);
  env.blocks.push_back(std::move(sb));
  env.next_secret = next.private_key();
  return env;
}

Result<Envelope> Envelope::append_third_party(Bytes block, ExternalSignature external,
                                              const KeyPair& next) const {
  if (sealed()) return make_error(ErrorCode::AppendOnSealed, "cannot append a block to a sealed token");
  Bytes ext_payload = external_payload(block, last().signature);
  if (!external.public_key.verify(ext_payload, external.signature)) {
    return make_error(ErrorCode::InvalidSignature,
                      "signature error: the third-party block's signature does not match this token "
                      "(was it created for another token or modified?)");
  }
  Envelope env = *this;
  SignedBlock sb;
  sb.block = std::move(block);
  sb.next_key = next.public_key();
  sb.external = std::move(external);
  sb.payload_version = 1;
  auto sig = next_secret->sign(block_payload(sb, &last().signature));
  if (!sig) return sig.take_error();
  sb.signature = std::move(*sig);
  env.blocks.push_back(std::move(sb));
  env.next_secret = next.private_key();
  return env;
}

Result<Envelope> Envelope::seal() const {
  if (sealed()) return make_error(ErrorCode::AlreadySealed, "the token is already sealed");
  const SignedBlock& tail = last();
  auto sig = next_secret->sign(
      seal_payload(tail.block, tail.next_key.algorithm(), tail.next_key.bytes(), tail.signature));
  if (!sig) return sig.take_error();
  Envelope env = *this;
  env.final_signature = std::move(*sig);
  env.next_secret.reset();
  return env;
}

Bytes serialize_request(ByteView previous_signature) {
  pb::ThirdPartyBlockRequest msg;
  msg.set_previoussignature(std::string(previous_signature.begin(), previous_signature.end()));
  std::string out;
  msg.SerializeToString(&out);
  return Bytes(out.begin(), out.end());
}

Result<Bytes> parse_request(ByteView data, const ParseLimits& limits) {
  pb::ThirdPartyBlockRequest msg;
  if (!parse_message(msg, data, limits)) return deser("not a valid third-party block request");
  if (!msg.has_previoussignature()) return deser("third-party block request without previous signature");
  return to_bytes(msg.previoussignature());
}

Bytes serialize_third_party_contents(ByteView payload, const ExternalSignature& external) {
  pb::ThirdPartyBlockContents msg;
  msg.set_payload(std::string(payload.begin(), payload.end()));
  msg.mutable_externalsignature()->set_signature(to_string(external.signature));
  key_to_pb(external.public_key, msg.mutable_externalsignature()->mutable_publickey());
  std::string out;
  msg.SerializeToString(&out);
  return Bytes(out.begin(), out.end());
}

Result<std::pair<Bytes, ExternalSignature>> parse_third_party_contents(ByteView data,
                                                                       const ParseLimits& limits) {
  pb::ThirdPartyBlockContents msg;
  if (!parse_message(msg, data, limits)) return deser("not a valid third-party block");
  if (!msg.has_payload() || !msg.has_externalsignature() || !msg.externalsignature().has_signature() ||
      !msg.externalsignature().has_publickey()) {
    return deser("third-party block without payload or external signature");
  }
  auto pk = key_from_pb(msg.externalsignature().publickey(), "third-party key");
  if (!pk) return pk.take_error();
  Bytes sig = to_bytes(msg.externalsignature().signature());
  if (auto r = check_signature_size(pk->algorithm(), sig, "third-party block"); !r) return r.take_error();
  return std::make_pair(to_bytes(msg.payload()), ExternalSignature{std::move(sig), std::move(*pk)});
}

}  // namespace biscuit::format
