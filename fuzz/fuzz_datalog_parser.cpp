// libFuzzer target for the Biscuit Datalog text layer: arbitrary bytes must give a parse
// result or a clean error; anything that parses must print, re-parse and print to the same
// text (at both the text and the interned level); and a world built from it must evaluate
// under tight run limits without crashing or hanging.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "biscuit/datalog/convert.h"
#include "biscuit/datalog/parser.h"
#include "biscuit/datalog/printer.h"
#include "biscuit/datalog/world.h"

using namespace biscuit::datalog;

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

void check_block(std::string_view text) {
  auto src = parse_block_source(text);
  if (!src) return;
  const std::string printed = print_block_source(*src);
  auto again = parse_block_source(printed);
  require(again.ok());
  require(print_block_source(*again) == printed);

  if (!ast::unbound_parameters(*src).empty()) return;
  auto block = build_block(*src, SymbolTable());
  require(block.ok());
  SymbolTable table;
  require(table.extend(block->symbols));
  require(table.extend_keys(block->public_keys));
  const std::string code = print_block_code(*block, table);
  auto reparsed = parse_block_source(code);
  require(reparsed.ok());
  auto rebuilt = build_block(*reparsed, SymbolTable());
  require(rebuilt.ok());
  SymbolTable table2;
  require(table2.extend(rebuilt->symbols));
  require(table2.extend_keys(rebuilt->public_keys));
  require(print_block_code(*rebuilt, table2) == code);
  require(check_version(*block, block->version).ok());
}

void check_authorizer(std::string_view text) {
  auto src = parse_authorizer_source(text);
  if (!src) return;
  const std::string printed = print_authorizer_code(*src);
  auto again = parse_authorizer_source(printed);
  require(again.ok());
  require(print_authorizer_code(*again) == printed);
  if (!ast::unbound_parameters(*src).empty()) return;

  SymbolTable symbols;
  World world;
  for (const auto& f : src->facts) world.add_fact(OriginSet::authorizer(), *intern(f, symbols));
  for (const auto& r : src->rules)
    world.add_rule(kAuthorizerBlock, TrustedOrigins::defaults(), *intern(r, symbols));
  RunLimits limits;
  limits.max_facts = 200;
  limits.max_iterations = 20;
  limits.max_time = std::chrono::milliseconds(20);
  (void)world.run(symbols, limits);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(20);
  for (const auto& c : src->checks) {
    for (const auto& q : c.queries) {
      Rule rule = *intern(q, symbols);
      (void)world.query_match(rule, TrustedOrigins::defaults(), symbols, deadline);
      (void)world.query_match_all(rule, TrustedOrigins::defaults(), symbols, deadline);
      (void)print_rule_body(rule, symbols);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check_block(text);
  check_authorizer(text);
  return 0;
}
