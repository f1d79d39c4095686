// Authorization: the verifier's facts, rules, checks and policies, evaluated together with
// a verified token.
//
//   biscuit::AuthorizerBuilder ab;
//   ab.add_code("resource({res}); operation(\"read\"); allow if right({res}, \"read\");",
//               biscuit::Params().string("res", "file1"));
//   ab.set_time(std::chrono::system_clock::now());
//   auto authorizer = ab.build(token);             // Result<Authorizer>
//   auto policy = authorizer->authorize();         // index of the matching allow policy
//   if (!policy) std::cerr << policy.error().to_string();
//
// Evaluation (reference semantics): run the rules to a fixpoint under the run limits; then
// authorizer checks, authority-block checks, policies (first match wins), checks of blocks
// 1..n. Success needs no failed check and a matching allow policy; otherwise the error is
// Unauthorized{policy, failed checks} or NoMatchingPolicy{failed checks}. An expression
// error aborts with an Execution error; a limit with TooManyFacts/TooManyIterations/Timeout/
// TooMuchMemory. RunLimits bound the whole authorization: max_time is a deadline checked
// inside expressions too, max_memory_bytes bounds the facts plus what expressions create.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "biscuit/datalog/evaluate.h"
#include "biscuit/datalog/printer.h"
#include "biscuit/datalog/world.h"
#include "biscuit/token/token.h"

namespace biscuit {

using RunLimits = datalog::RunLimits;
using ExternFunction = datalog::ExternFunction;

class Authorizer;

class AuthorizerBuilder {
 public:
  // Authorizer code: facts, rules, checks and policies (`allow if` / `deny if`).
  Result<void> add_code(std::string_view code, const Params& params = {});
  Result<void> add_fact(std::string_view fact, const Params& params = {});
  Result<void> add_fact(const FactTemplate& fact, const Params& params = {});  // no parsing
  Result<void> add_rule(std::string_view rule, const Params& params = {});
  Result<void> add_check(std::string_view check, const Params& params = {});
  Result<void> add_policy(std::string_view policy, const Params& params = {});
  // Adds the fact `time(<t>)` (seconds precision, UTC).
  void set_time(std::chrono::system_clock::time_point t);
  void set_limits(const RunLimits& limits) { limits_ = limits; }
  // Host function for `extern::name(...)` calls.
  void register_extern(std::string name, ExternFunction fn);

  // With a token: it must have been verified (Biscuit::from_bytes / from_base64 or built here).
  Result<Authorizer> build(const Biscuit& token) const&;
  // The same, consuming the builder (its code moves into the authorizer instead of a copy).
  Result<Authorizer> build(const Biscuit& token) &&;
  // Without a token: only the authorizer's own facts and rules.
  Result<Authorizer> build() const;

  const datalog::ast::Source& source() const { return source_; }

 private:
  // `source` is this builder's code, copied or moved in by build().
  Result<Authorizer> build_impl(const Biscuit* token, datalog::ast::Source source) const;
  datalog::ast::Source source_;
  RunLimits limits_;
  datalog::ExternFunctions externs_;
};

class Authorizer {
 public:
  Authorizer();
  ~Authorizer();
  Authorizer(Authorizer&&) noexcept;
  Authorizer& operator=(Authorizer&&) noexcept;

  // The index of the matching allow policy, or the error tree.
  Result<std::size_t> authorize();
  // Facts produced by `rule` over the world (after running it), trusting the authority block
  // and the authorizer unless the rule has its own `trusting` scopes.
  Result<std::vector<datalog::ast::Fact>> query(std::string_view rule, const Params& params = {});
  Result<std::vector<datalog::ast::Fact>> query(const RuleTemplate& rule, const Params& params = {});
  // The world as the samples print it (run the rules first: authorize() or query()).
  datalog::WorldDump dump() const;
  // The authorizer's own code, printed (facts, rules, checks, policies).
  std::string dump_code() const;
  uint64_t iterations() const;
  std::chrono::nanoseconds execution_time() const;

 private:
  friend class AuthorizerBuilder;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The world dump in the samples' JSON shape ({"facts":[{"origin":[null,0],"facts":[...]}],
// "rules":[...], "checks":[...], "policies":[...]}).
std::string world_dump_json(const datalog::WorldDump& dump);

}  // namespace biscuit
