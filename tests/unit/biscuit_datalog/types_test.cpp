// Data model: symbol tables (defaults, offsets, overlap), term order and normalisation,
// structural validation of decoded blocks, translation between tables.
#include <gtest/gtest.h>

#include "biscuit/datalog/convert.h"
#include "biscuit/datalog/parser.h"
#include "biscuit/datalog/printer.h"

namespace biscuit::datalog {
namespace {

TEST(SymbolTable, DefaultsOffsetsAndOverlap) {
  SymbolTable t;
  EXPECT_EQ(SymbolTable::default_symbols().size(), 28u);
  EXPECT_EQ(t.insert("read"), 0u);
  EXPECT_EQ(t.insert("query"), 27u);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.insert("alice"), 1024u);
  EXPECT_EQ(t.insert("bob"), 1025u);
  EXPECT_EQ(t.insert("alice"), 1024u);
  EXPECT_EQ(*t.lookup(1025), "bob");
  EXPECT_FALSE(t.lookup(28).has_value());
  EXPECT_FALSE(t.lookup(1026).has_value());
  EXPECT_EQ(t.print_symbol(5000), "<5000?>");
  EXPECT_FALSE(t.extend({"carol", "alice"}));  // already present
  EXPECT_FALSE(t.extend({"read"}));            // a default symbol
  EXPECT_FALSE(t.extend({"x", "x"}));          // repeated
  EXPECT_EQ(t.size(), 2u);                     // unchanged after a failed extend
  EXPECT_TRUE(t.extend({"carol"}));
  EXPECT_EQ(t.symbols_since(2), (std::vector<std::string>{"carol"}));
  t.truncate(1);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_FALSE(t.get("bob").has_value());
  EXPECT_EQ(t.insert("bob"), 1025u);
}

TEST(SymbolTable, PublicKeys) {
  SymbolTable t;
  PublicKey a{PublicKey::Algorithm::Ed25519, std::vector<uint8_t>(32, 1)};
  PublicKey b{PublicKey::Algorithm::Secp256r1, std::vector<uint8_t>(33, 2)};
  EXPECT_EQ(t.insert_key(a), 0u);
  EXPECT_EQ(t.insert_key(b), 1u);
  EXPECT_EQ(t.insert_key(a), 0u);
  EXPECT_EQ(t.key(1)->algorithm, PublicKey::Algorithm::Secp256r1);
  EXPECT_EQ(t.key(2), nullptr);
  EXPECT_FALSE(t.extend_keys({a}));
  EXPECT_EQ(t.keys_since(1).size(), 1u);
  EXPECT_EQ(a.print().substr(0, 10), "ed25519/01");
  t.truncate_keys(0);
  EXPECT_TRUE(t.keys().empty());
}

TEST(SymbolTable, TemporaryOverlay) {
  SymbolTable t;
  t.insert("a");
  TemporarySymbols tmp(t);
  EXPECT_EQ(tmp.insert("a"), 1024u);
  EXPECT_EQ(tmp.insert("read"), 0u);
  EXPECT_EQ(tmp.insert("new"), 1025u);
  EXPECT_EQ(*tmp.lookup(1025), "new");
  EXPECT_FALSE(t.get("new").has_value());
}

TEST(Term, OrderAndNormalisation) {
  // Kind order: Variable < Integer < String < Date < Bytes < Bool < Set < Null < Array < Map
  std::vector<Term> kinds = {Term::variable(1), Term::integer(1),     Term::string(1), Term::date(1),
                             Term::bytes({1}),  Term::boolean(false), Term::set({}),   Term::null(),
                             Term::array({}),   Term::map({})};
  for (std::size_t i = 0; i + 1 < kinds.size(); ++i) EXPECT_LT(kinds[i], kinds[i + 1]) << i;
  Term s = Term::set({Term::integer(3), Term::integer(1), Term::integer(3)});
  EXPECT_EQ(s.as_set().size(), 2u);
  EXPECT_EQ(s.as_set()[0].as_integer(), 1);
  Term m = Term::map({{MapKey::from_string(1030), Term::integer(1)},
                      {MapKey::from_integer(5), Term::integer(2)},
                      {MapKey::from_string(1030), Term::integer(3)}});
  ASSERT_EQ(m.as_map().size(), 2u);
  EXPECT_EQ(m.as_map()[0].first.kind, MapKey::Kind::Integer);
  EXPECT_EQ(m.as_map()[1].second.as_integer(), 3);  // last duplicate wins
  EXPECT_EQ(hash_term(Term::set({Term::integer(1), Term::integer(2)})),
            hash_term(Term::set({Term::integer(2), Term::integer(1)})));
  EXPECT_TRUE(Term::array({Term::integer(1), Term::variable(2)}).contains_variable());
  EXPECT_FALSE(Term::array({Term::integer(1)}).contains_variable());
  // Bytes compare as unsigned.
  EXPECT_LT(Term::bytes({0x01}), Term::bytes({0xff}));
  EXPECT_LT(Term::bytes({0x01}), Term::bytes({0x01, 0x00}));
}

TEST(Term, DatesPrintAsRfc3339) {
  EXPECT_EQ(format_date(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(format_date(1703721600), "2023-12-28T00:00:00Z");
  EXPECT_EQ(format_date(951782400), "2000-02-29T00:00:00Z");
  EXPECT_EQ(format_date(253402300799ULL), "9999-12-31T23:59:59Z");
  EXPECT_EQ(format_date(253402300800ULL), "<invalid date>");
  EXPECT_EQ(*parse_rfc3339("9999-12-31T23:59:59Z"), 253402300799ULL);
  EXPECT_EQ(*parse_rfc3339("2000-02-29T00:00:00Z"), 951782400u);
  EXPECT_FALSE(parse_rfc3339("2000-02-30T00:00:00Z"));
  EXPECT_FALSE(parse_rfc3339("2000-01-01T24:00:00Z"));
  EXPECT_FALSE(parse_rfc3339("2000-01-01T00:00:00"));
  EXPECT_FALSE(parse_rfc3339("2000-01-01 00:00:00Z"));
}

TEST(Validation, DecodedBlocks) {
  Block ok;
  ok.facts.push_back(Fact{Predicate{1024, {Term::set({Term::integer(1), Term::integer(2)})}}});
  EXPECT_TRUE(validate_block(ok).ok());

  Block var_fact;
  var_fact.facts.push_back(Fact{Predicate{1024, {Term::array({Term::variable(1)})}}});
  EXPECT_EQ(validate_block(var_fact).error().code, Error::Code::InvalidTerm);

  // Sets built from wire data without the factory checks.
  Term mixed{term_detail::Set{{Term::integer(1), Term::string(1024)}}};
  Term nested{term_detail::Set{{Term::set({Term::integer(1)})}}};
  Term with_var{term_detail::Set{{Term::variable(3)}}};
  for (const Term& bad : {mixed, nested, with_var}) {
    Block b;
    Rule r;
    r.head = Predicate{1024, {}};
    r.body.push_back(Predicate{1025, {bad}});
    b.rules.push_back(r);
    EXPECT_FALSE(validate_block(b).ok());
    Block c;
    Check check;
    Rule q;
    q.head = Predicate{27, {}};
    q.expressions.push_back(Expression{{Op{bad}}});
    check.queries.push_back(q);
    c.checks.push_back(check);
    EXPECT_FALSE(validate_block(c).ok());
  }
  EXPECT_TRUE(validate_term(Term::variable(1), false).ok());
  EXPECT_FALSE(validate_term(Term::variable(1), true).ok());
}

TEST(Conversion, TranslateBetweenTables) {
  // A third-party block interned against its own table, moved into the authorizer's.
  SymbolTable third;
  auto src = parse_block_source(
      "group(\"staff\"); check if query(1) trusting "
      "ed25519/acdd6d5b53bfee478bf689f8e012fe7988bf755e3d7c5152947abc149bc20189;");
  auto block = build_block(*src, third);
  ASSERT_TRUE(block.ok());
  third.extend(block->symbols);
  third.extend_keys(block->public_keys);

  SymbolTable authorizer;
  authorizer.insert("something");
  authorizer.insert_key(PublicKey{PublicKey::Algorithm::Ed25519, std::vector<uint8_t>(32, 9)});
  auto f = translate(block->facts[0], third, authorizer);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(print_fact(*f, authorizer), "group(\"staff\")");
  EXPECT_NE(f->predicate.terms[0].as_string(), block->facts[0].predicate.terms[0].as_string());
  auto c = translate(block->checks[0], third, authorizer);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->queries[0].scopes[0].public_key, 1u);
  EXPECT_EQ(print_check(*c, authorizer), print_check(block->checks[0], third));

  // Dangling ids.
  Fact dangling{Predicate{4242, {}}};
  EXPECT_EQ(translate(dangling, third, authorizer).error().code, Error::Code::UnknownSymbol);
  Check bad_key;
  Rule q;
  q.head = Predicate{27, {}};
  q.scopes.push_back(Scope{Scope::Kind::PublicKey, 77});
  bad_key.queries.push_back(q);
  EXPECT_EQ(translate(bad_key, third, authorizer).error().code, Error::Code::UnknownPublicKey);
  EXPECT_EQ(print_check(bad_key, third), "check if  trusting <unknown public key id>");
}

TEST(Conversion, PoliciesAreNotBlockContent) {
  auto src = parse_authorizer_source("allow if true;");
  ASSERT_TRUE(src.ok());
  EXPECT_FALSE(build_block(*src, SymbolTable()).ok());
  SymbolTable t;
  auto p = intern(src->policies[0], t);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(print_policy(*p, t), "allow if true");
  auto back = to_ast(*p, t);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(print(*back), "allow if true");
}

}  // namespace
}  // namespace biscuit::datalog
