#include "biscuit/token/authorizer.h"

#include <map>

#include "biscuit/datalog/convert.h"
#include "biscuit/datalog/parser.h"
#include "biscuit/error.h"
#include "biscuit/token/datalog_errors.h"

namespace biscuit {

using datalog::kAuthorizerBlock;
using datalog::OriginSet;
using datalog::TrustedOrigins;
using detail::from_datalog;
using detail::from_execution;

// ------------------------------------------------------------------ builder

namespace {
template <class T>
void append_all(std::vector<T>& to, std::vector<T>& from) {
  for (auto& x : from) to.push_back(std::move(x));
}
}  // namespace

Result<void> AuthorizerBuilder::add_code(std::string_view code, const Params& params) {
  auto parsed = datalog::parse_authorizer_source(code);
  if (!parsed) return from_datalog(parsed.error(), false);
  datalog::ast::Source src = std::move(*parsed);
  if (auto st = datalog::ast::apply_parameters(src, params.ast()); !st)
    return from_datalog(st.error(), false);
  append_all(source_.facts, src.facts);
  append_all(source_.rules, src.rules);
  append_all(source_.checks, src.checks);
  append_all(source_.policies, src.policies);
  return {};
}

Result<void> AuthorizerBuilder::add_fact(std::string_view text, const Params& params) {
  auto fact = FactTemplate::parse(text);
  if (!fact) return fact.error();
  return add_fact(*fact, params);
}

Result<void> AuthorizerBuilder::add_fact(const FactTemplate& fact, const Params& params) {
  datalog::ast::Fact f = fact.ast();
  if (auto st = datalog::ast::apply_parameters(f, params.ast()); !st) return from_datalog(st.error(), false);
  source_.facts.push_back(std::move(f));
  return {};
}

Result<void> AuthorizerBuilder::add_rule(std::string_view text, const Params& params) {
  auto r = datalog::parse_rule(text);
  if (!r) return from_datalog(r.error(), false);
  if (auto st = datalog::ast::apply_parameters(*r, params.ast()); !st) return from_datalog(st.error(), false);
  source_.rules.push_back(std::move(*r));
  return {};
}

Result<void> AuthorizerBuilder::add_check(std::string_view text, const Params& params) {
  auto c = datalog::parse_check(text);
  if (!c) return from_datalog(c.error(), false);
  if (auto st = datalog::ast::apply_parameters(*c, params.ast()); !st) return from_datalog(st.error(), false);
  source_.checks.push_back(std::move(*c));
  return {};
}

Result<void> AuthorizerBuilder::add_policy(std::string_view text, const Params& params) {
  auto p = datalog::parse_policy(text);
  if (!p) return from_datalog(p.error(), false);
  if (auto st = datalog::ast::apply_parameters(*p, params.ast()); !st) return from_datalog(st.error(), false);
  source_.policies.push_back(std::move(*p));
  return {};
}

void AuthorizerBuilder::set_time(std::chrono::system_clock::time_point t) {
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
  datalog::ast::Fact f;
  f.predicate.name = "time";
  f.predicate.terms.push_back(datalog::ast::Term::date(secs < 0 ? 0 : static_cast<uint64_t>(secs)));
  source_.facts.push_back(std::move(f));
}

void AuthorizerBuilder::register_extern(std::string name, ExternFunction fn) {
  externs_[std::move(name)] = std::move(fn);
}

// ------------------------------------------------------------------ authorizer state

struct Authorizer::Impl {
  datalog::SymbolTable symbols;
  datalog::World world;
  RunLimits limits;
  std::map<uint64_t, std::vector<uint64_t>> key_blocks;  // key index -> blocks it signed
  TrustedOrigins authorizer_trust;
  struct BlockChecks {
    uint64_t block;
    TrustedOrigins trusted;  // block-level trust; query scopes refine it
    std::vector<datalog::Check> checks;
  };
  std::vector<BlockChecks> token_checks;  // per token block, in order
  std::vector<datalog::Check> checks;     // authorizer checks
  std::vector<datalog::Policy> policies;
  datalog::ast::Source source;  // for dump_code()
  uint64_t iterations = 0;
  std::chrono::nanoseconds elapsed{0};
  bool ran = false;

  TrustedOrigins trust(const std::vector<datalog::Scope>& scopes, const TrustedOrigins& base,
                       uint64_t block) const {
    return TrustedOrigins::from_scopes(scopes, base, block, key_blocks);
  }

  Result<void> run(datalog::Deadline& deadline, std::chrono::steady_clock::time_point start) {
    RunLimits l = limits;
    auto r = world.run(symbols, l);
    if (!r) return from_execution(r.error());
    ran = true;
    deadline = start + limits.max_time;
    return {};
  }

  // One check: `check if` needs one matching query, `check all` one query whose every
  // binding holds, `reject if` fails when any query matches.
  Result<bool> check_passes(const datalog::Check& check, const TrustedOrigins& base, uint64_t block,
                            const datalog::Deadline& deadline) const {
    for (const auto& query : check.queries) {
      TrustedOrigins trusted = trust(query.scopes, base, block);
      const datalog::QueryLimits ql{deadline, limits.max_memory_bytes};
      datalog::Expected<bool, datalog::ExecutionError> m =
          check.kind == datalog::CheckKind::All ? world.query_match_all(query, trusted, symbols, ql)
                                                : world.query_match(query, trusted, symbols, ql);
      if (!m) return from_execution(m.error());
      if (*m) return check.kind != datalog::CheckKind::Reject;
    }
    return check.kind == datalog::CheckKind::Reject;
  }
};

Authorizer::Authorizer() : impl_(std::make_unique<Impl>()) {}
Authorizer::~Authorizer() = default;
Authorizer::Authorizer(Authorizer&&) noexcept = default;
Authorizer& Authorizer::operator=(Authorizer&&) noexcept = default;

Result<Authorizer> AuthorizerBuilder::build(const Biscuit& token) const& {
  return build_impl(&token, source_);
}
Result<Authorizer> AuthorizerBuilder::build(const Biscuit& token) && {
  return build_impl(&token, std::move(source_));
}
Result<Authorizer> AuthorizerBuilder::build() const {
  return build_impl(nullptr, source_);
}

Result<Authorizer> AuthorizerBuilder::build_impl(const Biscuit* token, datalog::ast::Source source) const {
  if (token && !token->verified()) {
    return make_error(ErrorCode::InvalidArgument,
                      "refusing to authorize a token whose signatures were not verified");
  }
  Authorizer a;
  Authorizer::Impl& st = *a.impl_;
  st.limits = limits_;
  st.world.set_extern_functions(externs_);
  if (token) st.symbols = token->symbols();

  // Which blocks each external key signed (scopes `trusting <key>` resolve through it).
  if (token) {
    for (std::size_t i = 0; i < token->block_count(); ++i) {
      if (auto key = token->block_external_key(i)) {
        uint64_t idx = st.symbols.insert_key(to_datalog_key(*key));
        st.key_blocks[idx].push_back(i);
      }
    }
  }
  st.authorizer_trust = st.trust({}, TrustedOrigins::defaults(), kAuthorizerBlock);

  // Token blocks: facts with their block as origin, rules with the block's trust.
  if (token) {
    for (std::size_t i = 0; i < token->block_count(); ++i) {
      const datalog::Block& block = token->block(i);
      bool third_party = token->block_external_key(i).has_value();
      const datalog::SymbolTable& own = token->block_symbols(i);
      std::vector<datalog::Scope> block_scopes = block.scopes;
      // A first-party block's symbols are the token's own: its content is used as it is; a
      // third-party block's is translated from its own symbol table into the token's.
      std::vector<datalog::Fact> translated_facts;
      std::vector<datalog::Rule> translated_rules;
      std::vector<datalog::Check> checks;
      const std::vector<datalog::Fact>* facts = &block.facts;
      const std::vector<datalog::Rule>* rules = &block.rules;
      if (third_party) {
        for (auto& s : block_scopes) {
          if (s.kind != datalog::Scope::Kind::PublicKey) continue;
          const datalog::PublicKey* key = own.key(s.public_key);
          if (!key)
            return make_error(ErrorCode::UnknownExternalKey,
                              "block " + std::to_string(i) + " scope names an unknown public key");
          s.public_key = st.symbols.insert_key(*key);
        }
        for (const auto& f : block.facts) {
          auto t = datalog::translate(f, own, st.symbols);
          if (!t) return from_datalog(t.error(), true);
          translated_facts.push_back(std::move(*t));
        }
        for (const auto& r : block.rules) {
          auto t = datalog::translate(r, own, st.symbols);
          if (!t) return from_datalog(t.error(), true);
          translated_rules.push_back(std::move(*t));
        }
        facts = &translated_facts;
        rules = &translated_rules;
        for (const auto& c : block.checks) {
          auto t = datalog::translate(c, own, st.symbols);
          if (!t) return from_datalog(t.error(), true);
          checks.push_back(std::move(*t));
        }
      } else {
        checks = block.checks;
      }
      TrustedOrigins block_trust = st.trust(block_scopes, TrustedOrigins::defaults(), i);
      const OriginSet origin{i};
      for (const auto& f : *facts) st.world.add_fact(origin, f);
      for (std::size_t j = 0; j < rules->size(); ++j) {
        const datalog::Rule& r = (*rules)[j];
        if (!datalog::head_variables_bound(r)) {
          Error e = make_error(ErrorCode::InvalidBlockRule,
                               "rule " + std::to_string(j) + " of block " + std::to_string(i) +
                                   " has a head variable that its body does not bind");
          e.rule_id = static_cast<uint32_t>(j);
          e.rule = datalog::print_rule(r, st.symbols);
          return e;
        }
        st.world.add_rule(i, st.trust(r.scopes, block_trust, i), r);
      }
      st.token_checks.push_back({i, block_trust, std::move(checks)});
    }
  }

  // The authorizer's own facts, rules, checks and policies, interned after the token's.
  for (const auto& f : source.facts) {
    auto t = datalog::intern(f, st.symbols);
    if (!t) return from_datalog(t.error(), false);
    st.world.add_fact(OriginSet::authorizer(), *t);
  }
  for (const auto& r : source.rules) {
    auto t = datalog::intern(r, st.symbols);
    if (!t) return from_datalog(t.error(), false);
    st.world.add_rule(kAuthorizerBlock, st.trust(t->scopes, st.authorizer_trust, kAuthorizerBlock), *t);
  }
  for (const auto& c : source.checks) {
    auto t = datalog::intern(c, st.symbols);
    if (!t) return from_datalog(t.error(), false);
    st.checks.push_back(std::move(*t));
  }
  for (const auto& p : source.policies) {
    auto t = datalog::intern(p, st.symbols);
    if (!t) return from_datalog(t.error(), false);
    st.policies.push_back(std::move(*t));
  }
  st.source = std::move(source);  // for dump_code()
  return a;
}

// ------------------------------------------------------------------ authorize

Result<std::size_t> Authorizer::authorize() {
  Impl& st = *impl_;
  auto start = std::chrono::steady_clock::now();
  datalog::Deadline deadline;
  auto finish = [&] { st.elapsed = std::chrono::steady_clock::now() - start; };
  if (auto r = st.run(deadline, start); !r) {
    finish();
    return r.take_error();
  }
  std::vector<FailedCheck> failed;
  auto run_checks = [&](const std::vector<datalog::Check>& checks, const TrustedOrigins& base, uint64_t block,
                        bool authorizer) -> Result<void> {
    for (std::size_t j = 0; j < checks.size(); ++j) {
      auto ok = st.check_passes(checks[j], base, block, deadline);
      if (!ok) return ok.take_error();
      if (!*ok) {
        FailedCheck fc;
        fc.authorizer = authorizer;
        fc.block_id = authorizer ? 0 : static_cast<uint32_t>(block);
        fc.check_id = static_cast<uint32_t>(j);
        fc.rule = datalog::print_check(checks[j], st.symbols);
        failed.push_back(std::move(fc));
      }
    }
    return {};
  };

  if (auto r = run_checks(st.checks, st.authorizer_trust, kAuthorizerBlock, true); !r) {
    finish();
    return r.take_error();
  }
  if (!st.token_checks.empty()) {
    const auto& b0 = st.token_checks[0];
    if (auto r = run_checks(b0.checks, b0.trusted, b0.block, false); !r) {
      finish();
      return r.take_error();
    }
  }
  std::optional<MatchedPolicy> matched;
  for (std::size_t p = 0; p < st.policies.size() && !matched; ++p) {
    for (const auto& query : st.policies[p].queries) {
      TrustedOrigins trusted = st.trust(query.scopes, st.authorizer_trust, kAuthorizerBlock);
      auto m = st.world.query_match(query, trusted, st.symbols,
                                    datalog::QueryLimits{deadline, st.limits.max_memory_bytes});
      if (!m) {
        finish();
        return from_execution(m.error());
      }
      if (*m) {
        matched = MatchedPolicy{st.policies[p].kind == datalog::PolicyKind::Allow, p};
        break;
      }
    }
  }
  for (std::size_t i = 1; i < st.token_checks.size(); ++i) {
    const auto& b = st.token_checks[i];
    if (auto r = run_checks(b.checks, b.trusted, b.block, false); !r) {
      finish();
      return r.take_error();
    }
  }
  st.iterations = st.world.iterations();
  finish();

  if (failed.empty() && matched && matched->allow) return matched->index;
  Error e;
  e.checks = std::move(failed);
  if (matched) {
    e.code = ErrorCode::Unauthorized;
    e.policy = matched;
    e.message = matched->allow
                    ? "authorization failed: some checks did not pass"
                    : "authorization failed: deny policy #" + std::to_string(matched->index) + " matched";
  } else {
    e.code = ErrorCode::NoMatchingPolicy;
    e.message = "authorization failed: no policy matched";
  }
  return e;
}

Result<std::vector<datalog::ast::Fact>> Authorizer::query(std::string_view text, const Params& params) {
  auto parsed = RuleTemplate::parse(text);
  if (!parsed) return parsed.error();
  return query(*parsed, params);
}

Result<std::vector<datalog::ast::Fact>> Authorizer::query(const RuleTemplate& rule_template,
                                                          const Params& params) {
  Impl& st = *impl_;
  datalog::ast::Rule parsed = rule_template.ast();
  if (auto s = datalog::ast::apply_parameters(parsed, params.ast()); !s)
    return from_datalog(s.error(), false);
  auto start = std::chrono::steady_clock::now();
  datalog::Deadline deadline = start + st.limits.max_time;
  if (!st.ran) {
    if (auto r = st.run(deadline, start); !r) return r.take_error();
  }
  auto rule = datalog::intern(parsed, st.symbols);
  if (!rule) return from_datalog(rule.error(), false);
  TrustedOrigins trusted = st.trust(rule->scopes, st.authorizer_trust, kAuthorizerBlock);
  auto facts = st.world.query_rule(*rule, kAuthorizerBlock, trusted, st.symbols,
                                   datalog::QueryLimits{deadline, st.limits.max_memory_bytes});
  if (!facts) return from_execution(facts.error());
  std::vector<datalog::ast::Fact> out;
  for (const auto& [origin, fact] : *facts) {
    auto f = datalog::to_ast(fact, st.symbols);
    if (!f) return from_datalog(f.error(), false);
    bool dup = false;
    for (const auto& o : out) dup = dup || o == *f;
    if (!dup) out.push_back(std::move(*f));
  }
  return out;
}

datalog::WorldDump Authorizer::dump() const {
  const Impl& st = *impl_;
  std::vector<datalog::BlockChecks> checks;
  for (const auto& b : st.token_checks) checks.push_back({b.block, b.checks});
  checks.push_back({kAuthorizerBlock, st.checks});
  return datalog::dump_world(st.world, st.symbols, checks, st.policies);
}

std::string Authorizer::dump_code() const {
  return datalog::print_authorizer_code(impl_->source);
}
uint64_t Authorizer::iterations() const {
  return impl_->world.iterations();
}
std::chrono::nanoseconds Authorizer::execution_time() const {
  return impl_->elapsed;
}

// ------------------------------------------------------------------ JSON

namespace {
std::string str_list(const std::vector<std::string>& v) {
  std::string out = "[";
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + json_quote(v[i]);
  return out + "]";
}
}  // namespace

std::string world_dump_json(const datalog::WorldDump& dump) {
  std::string out = "{\"facts\":[";
  for (std::size_t i = 0; i < dump.facts.size(); ++i) {
    const auto& g = dump.facts[i];
    out += i ? "," : "";
    out += "{\"origin\":[";
    for (std::size_t j = 0; j < g.origin.size(); ++j) {
      out += j ? "," : "";
      out += g.origin[j] ? std::to_string(*g.origin[j]) : "null";
    }
    out += "],\"facts\":" + str_list(g.facts) + "}";
  }
  out += "],\"rules\":[";
  for (std::size_t i = 0; i < dump.rules.size(); ++i) {
    out += i ? "," : "";
    out += "{\"origin\":" + std::to_string(dump.rules[i].origin) +
           ",\"rules\":" + str_list(dump.rules[i].rules) + "}";
  }
  out += "],\"checks\":[";
  for (std::size_t i = 0; i < dump.checks.size(); ++i) {
    out += i ? "," : "";
    out += "{\"origin\":" + std::to_string(dump.checks[i].origin) +
           ",\"checks\":" + str_list(dump.checks[i].checks) + "}";
  }
  out += "],\"policies\":" + str_list(dump.policies) + "}";
  return out;
}

}  // namespace biscuit
