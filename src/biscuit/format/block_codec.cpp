#include "biscuit/format/block_codec.h"

#include <google/protobuf/io/coded_stream.h>

#include "biscuit/crypto/keys.h"
#include "biscuit/format/schema.pb.h"

namespace biscuit::format {
namespace {

using datalog::BinaryOp;
using datalog::UnaryOp;

Error bad(const std::string& what) {
  return make_error(ErrorCode::BlockDeserialization, "block deserialization error: " + what);
}

// ------------------------------------------------------------------ decode

Result<datalog::Term> decode_term(const pb::Term& t);

Result<std::vector<datalog::Term>> decode_terms(const google::protobuf::RepeatedPtrField<pb::Term>& terms) {
  std::vector<datalog::Term> out;
  out.reserve(static_cast<std::size_t>(terms.size()));
  for (const auto& t : terms) {
    auto d = decode_term(t);
    if (!d) return d.take_error();
    out.push_back(std::move(*d));
  }
  return out;
}

Result<datalog::Term> decode_term(const pb::Term& t) {
  using datalog::Term;
  switch (t.Content_case()) {
    case pb::Term::kVariable:
      return Term::variable(t.variable());
    case pb::Term::kInteger:
      return Term::integer(t.integer());
    case pb::Term::kString:
      return Term::string(t.string());
    case pb::Term::kDate:
      return Term::date(t.date());
    case pb::Term::kBytes:
      return Term::bytes(Bytes(t.bytes().begin(), t.bytes().end()));
    case pb::Term::kBool:
      return Term::boolean(t.bool_());
    case pb::Term::kNull:
      return Term::null();
    case pb::Term::kSet: {
      auto items = decode_terms(t.set().set());
      if (!items) return items.take_error();
      return Term::set(std::move(*items));
    }
    case pb::Term::kArray: {
      auto items = decode_terms(t.array().array());
      if (!items) return items.take_error();
      return Term::array(std::move(*items));
    }
    case pb::Term::kMap: {
      std::vector<std::pair<datalog::MapKey, Term>> entries;
      for (const auto& e : t.map().entries()) {
        if (!e.has_key() || !e.has_value()) return bad("map entry without key or value");
        datalog::MapKey key;
        if (e.key().Content_case() == pb::MapKey::kInteger) {
          key = datalog::MapKey::from_integer(e.key().integer());
        } else if (e.key().Content_case() == pb::MapKey::kString) {
          key = datalog::MapKey::from_string(e.key().string());
        } else {
          return bad("map key is neither an integer nor a string");
        }
        auto v = decode_term(e.value());
        if (!v) return v.take_error();
        entries.emplace_back(key, std::move(*v));
      }
      return Term::map(std::move(entries));
    }
    case pb::Term::CONTENT_NOT_SET:
      break;
  }
  return bad("term without content");
}

Result<datalog::Predicate> decode_predicate(const pb::Predicate& p) {
  if (!p.has_name()) return bad("predicate without name");
  auto terms = decode_terms(p.terms());
  if (!terms) return terms.take_error();
  return datalog::Predicate{p.name(), std::move(*terms)};
}

Result<std::vector<datalog::Op>> decode_ops(const google::protobuf::RepeatedPtrField<pb::Op>& ops) {
  std::vector<datalog::Op> out;
  out.reserve(static_cast<std::size_t>(ops.size()));
  for (const auto& op : ops) {
    switch (op.Content_case()) {
      case pb::Op::kValue: {
        auto t = decode_term(op.value());
        if (!t) return t.take_error();
        out.push_back(datalog::Op{std::move(*t)});
        break;
      }
      case pb::Op::kUnary: {
        if (!op.unary().has_kind()) return bad("unary operation without a known kind");
        datalog::Unary u;
        u.op = static_cast<UnaryOp>(op.unary().kind());
        if (u.op == UnaryOp::Ffi) {
          if (!op.unary().has_ffiname()) return bad("extern call without a function name");
          u.ffi_name = op.unary().ffiname();
        }
        out.push_back(datalog::Op{u});
        break;
      }
      case pb::Op::kBinary: {
        if (!op.binary().has_kind()) return bad("binary operation without a known kind");
        datalog::Binary b;
        b.op = static_cast<BinaryOp>(op.binary().kind());
        if (b.op == BinaryOp::Ffi) {
          if (!op.binary().has_ffiname()) return bad("extern call without a function name");
          b.ffi_name = op.binary().ffiname();
        }
        out.push_back(datalog::Op{b});
        break;
      }
      case pb::Op::kClosure: {
        datalog::Closure c;
        c.params.assign(op.closure().params().begin(), op.closure().params().end());
        auto body = decode_ops(op.closure().ops());
        if (!body) return body.take_error();
        c.ops = std::move(*body);
        out.push_back(datalog::Op{std::move(c)});
        break;
      }
      case pb::Op::CONTENT_NOT_SET:
        return bad("expression operation without content");
    }
  }
  return out;
}

Result<datalog::Scope> decode_scope(const pb::Scope& s) {
  datalog::Scope out;
  switch (s.Content_case()) {
    case pb::Scope::kScopeType:
      out.kind = s.scopetype() == pb::Scope::Previous ? datalog::Scope::Kind::Previous
                                                      : datalog::Scope::Kind::Authority;
      return out;
    case pb::Scope::kPublicKey:
      if (s.publickey() < 0) return bad("negative public key index in scope");
      out.kind = datalog::Scope::Kind::PublicKey;
      out.public_key = static_cast<uint64_t>(s.publickey());
      return out;
    case pb::Scope::CONTENT_NOT_SET:
      break;
  }
  return bad("scope without content");
}

Result<std::vector<datalog::Scope>> decode_scopes(
    const google::protobuf::RepeatedPtrField<pb::Scope>& scopes) {
  std::vector<datalog::Scope> out;
  for (const auto& s : scopes) {
    auto d = decode_scope(s);
    if (!d) return d.take_error();
    out.push_back(*d);
  }
  return out;
}

Result<datalog::Rule> decode_rule(const pb::Rule& r) {
  if (!r.has_head()) return bad("rule without head");
  datalog::Rule out;
  auto head = decode_predicate(r.head());
  if (!head) return head.take_error();
  out.head = std::move(*head);
  for (const auto& p : r.body()) {
    auto d = decode_predicate(p);
    if (!d) return d.take_error();
    out.body.push_back(std::move(*d));
  }
  for (const auto& e : r.expressions()) {
    auto ops = decode_ops(e.ops());
    if (!ops) return ops.take_error();
    out.expressions.push_back(datalog::Expression{std::move(*ops)});
  }
  auto scopes = decode_scopes(r.scope());
  if (!scopes) return scopes.take_error();
  out.scopes = std::move(*scopes);
  return out;
}

// ------------------------------------------------------------------ encode

void encode_term(const datalog::Term& t, pb::Term* out);

void encode_terms(const std::vector<datalog::Term>& terms,
                  google::protobuf::RepeatedPtrField<pb::Term>* out) {
  for (const auto& t : terms) encode_term(t, out->Add());
}

void encode_term(const datalog::Term& t, pb::Term* out) {
  using K = datalog::TermKind;
  switch (t.kind()) {
    case K::Variable:
      out->set_variable(t.as_variable());
      break;
    case K::Integer:
      out->set_integer(t.as_integer());
      break;
    case K::String:
      out->set_string(t.as_string());
      break;
    case K::Date:
      out->set_date(t.as_date());
      break;
    case K::Bytes:
      out->set_bytes(std::string(t.as_bytes().begin(), t.as_bytes().end()));
      break;
    case K::Bool:
      out->set_bool_(t.as_bool());
      break;
    case K::Null:
      out->mutable_null();
      break;
    case K::Set:
      encode_terms(t.as_set(), out->mutable_set()->mutable_set());
      break;
    case K::Array:
      encode_terms(t.as_array(), out->mutable_array()->mutable_array());
      break;
    case K::Map: {
      auto* m = out->mutable_map();
      for (const auto& [key, value] : t.as_map()) {
        auto* e = m->add_entries();
        if (key.kind == datalog::MapKey::Kind::Integer) {
          e->mutable_key()->set_integer(key.integer);
        } else {
          e->mutable_key()->set_string(key.string);
        }
        encode_term(value, e->mutable_value());
      }
      break;
    }
  }
}

void encode_predicate(const datalog::Predicate& p, pb::Predicate* out) {
  out->set_name(p.name);
  encode_terms(p.terms, out->mutable_terms());
}

void encode_ops(const std::vector<datalog::Op>& ops, google::protobuf::RepeatedPtrField<pb::Op>* out) {
  for (const auto& op : ops) {
    auto* o = out->Add();
    if (const auto* t = std::get_if<datalog::Term>(&op.v)) {
      encode_term(*t, o->mutable_value());
    } else if (const auto* u = std::get_if<datalog::Unary>(&op.v)) {
      o->mutable_unary()->set_kind(static_cast<pb::OpUnary::Kind>(u->op));
      if (u->op == UnaryOp::Ffi) o->mutable_unary()->set_ffiname(u->ffi_name);
    } else if (const auto* b = std::get_if<datalog::Binary>(&op.v)) {
      o->mutable_binary()->set_kind(static_cast<pb::OpBinary::Kind>(b->op));
      if (b->op == BinaryOp::Ffi) o->mutable_binary()->set_ffiname(b->ffi_name);
    } else {
      const auto& c = std::get<datalog::Closure>(op.v);
      auto* oc = o->mutable_closure();
      for (uint32_t p : c.params) oc->add_params(p);
      encode_ops(c.ops, oc->mutable_ops());
    }
  }
}

void encode_scope(const datalog::Scope& s, pb::Scope* out) {
  switch (s.kind) {
    case datalog::Scope::Kind::Authority:
      out->set_scopetype(pb::Scope::Authority);
      break;
    case datalog::Scope::Kind::Previous:
      out->set_scopetype(pb::Scope::Previous);
      break;
    case datalog::Scope::Kind::PublicKey:
      out->set_publickey(static_cast<int64_t>(s.public_key));
      break;
  }
}

void encode_rule(const datalog::Rule& r, pb::Rule* out) {
  encode_predicate(r.head, out->mutable_head());
  for (const auto& p : r.body) encode_predicate(p, out->add_body());
  for (const auto& e : r.expressions) encode_ops(e.ops, out->add_expressions()->mutable_ops());
  for (const auto& s : r.scopes) encode_scope(s, out->add_scope());
}

}  // namespace

Result<datalog::Block> decode_block(std::span<const uint8_t> bytes, const BlockLimits& limits) {
  if (bytes.size() > limits.max_block_bytes)
    return bad("block larger than " + std::to_string(limits.max_block_bytes) + " bytes");
  pb::Block msg;
  google::protobuf::io::CodedInputStream in(bytes.data(), static_cast<int>(bytes.size()));
  in.SetRecursionLimit(limits.max_nesting);
  if (!msg.MergePartialFromCodedStream(&in) || !in.ConsumedEntireMessage()) {
    return bad("not a valid Block protobuf message (or nested deeper than " +
               std::to_string(limits.max_nesting) + ")");
  }
  datalog::Block block;
  block.symbols.assign(msg.symbols().begin(), msg.symbols().end());
  if (msg.has_context()) block.context = msg.context();
  uint32_t version = msg.has_version() ? msg.version() : 0;
  if (version < datalog::kMinBlockVersion || version > datalog::kMaxBlockVersion) {
    return make_error(ErrorCode::Version, "block version " + std::to_string(version) +
                                              " is outside the supported range " +
                                              std::to_string(datalog::kMinBlockVersion) + ".." +
                                              std::to_string(datalog::kMaxBlockVersion));
  }
  block.version = version;
  for (const auto& f : msg.facts()) {
    if (!f.has_predicate()) return bad("fact without predicate");
    auto p = decode_predicate(f.predicate());
    if (!p) return p.take_error();
    block.facts.push_back(datalog::Fact{std::move(*p)});
  }
  for (const auto& r : msg.rules()) {
    auto d = decode_rule(r);
    if (!d) return d.take_error();
    block.rules.push_back(std::move(*d));
  }
  for (const auto& c : msg.checks()) {
    datalog::Check check;
    if (c.has_kind()) {
      check.kind = static_cast<datalog::CheckKind>(c.kind());
    } else if (!c.GetReflection()->GetUnknownFields(c).empty()) {
      return bad("check with an unknown kind");
    }
    for (const auto& q : c.queries()) {
      auto d = decode_rule(q);
      if (!d) return d.take_error();
      check.queries.push_back(std::move(*d));
    }
    block.checks.push_back(std::move(check));
  }
  auto scopes = decode_scopes(msg.scope());
  if (!scopes) return scopes.take_error();
  block.scopes = std::move(*scopes);
  for (const auto& k : msg.publickeys()) {
    if (!k.has_algorithm() || !k.has_key()) return bad("public key without algorithm or key");
    Algorithm alg = k.algorithm() == pb::PublicKey::SECP256R1 ? Algorithm::Secp256r1 : Algorithm::Ed25519;
    auto key = PublicKey::from_bytes(
        alg, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(k.key().data()), k.key().size()));
    if (!key) return bad("invalid public key in block: " + key.error().message);
    datalog::PublicKey dk;
    dk.algorithm = alg == Algorithm::Secp256r1 ? datalog::PublicKey::Algorithm::Secp256r1
                                               : datalog::PublicKey::Algorithm::Ed25519;
    dk.key = key->bytes();
    block.public_keys.push_back(std::move(dk));
  }
  return block;
}

Bytes encode_block(const datalog::Block& block) {
  pb::Block msg;
  for (const auto& s : block.symbols) msg.add_symbols(s);
  if (block.context) msg.set_context(*block.context);
  msg.set_version(block.version);
  for (const auto& f : block.facts) encode_predicate(f.predicate, msg.add_facts()->mutable_predicate());
  for (const auto& r : block.rules) encode_rule(r, msg.add_rules());
  for (const auto& c : block.checks) {
    auto* pc = msg.add_checks();
    for (const auto& q : c.queries) encode_rule(q, pc->add_queries());
    // The kind is written only when not the default, like the reference.
    if (c.kind != datalog::CheckKind::One) pc->set_kind(static_cast<pb::Check::Kind>(c.kind));
  }
  for (const auto& s : block.scopes) encode_scope(s, msg.add_scope());
  for (const auto& k : block.public_keys) {
    auto* pk = msg.add_publickeys();
    pk->set_algorithm(k.algorithm == datalog::PublicKey::Algorithm::Secp256r1 ? pb::PublicKey::SECP256R1
                                                                              : pb::PublicKey::Ed25519);
    pk->set_key(std::string(k.key.begin(), k.key.end()));
  }
  std::string out;
  msg.SerializeToString(&out);
  return Bytes(out.begin(), out.end());
}

}  // namespace biscuit::format
