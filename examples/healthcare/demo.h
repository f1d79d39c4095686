// The healthcare example's demo (`larder demo`, the default example): Erin oRTEga and DAvID
// AndErSON see only their own admissions, a nurse only her hospital's; then the scenarios every
// example runs (tools/demo_scenarios.h) with Erin's token and hospital-records SQL.
#pragma once

#include "examples/examples.h"

#include <functional>
#include <string>
#include <vector>

namespace larder::examples::healthcare {

// The demo's tokens (examples/examples.h, DemoToken): "erin" and "david" (profile patient:
// patient_name), "nurse" (profile clinician: role nurse at `nurse_hospital`). Each grants
// pg_query, pg_explain, pg_metadata, resources/read, prompts/get and the egress tool.
std::vector<DemoToken> demo_tokens(const std::string& nurse_hospital);

// The hospital with the most admissions (the nurse's by default).
Result<std::string> busiest_hospital(const db::ConnParams& admin);

// The same tokens minted (for tests that run the scenarios against their own servers).
struct DemoTokens {
  std::string erin, david, nurse;
};
Result<DemoTokens> mint_demo_tokens(const tools::DemoEnvironment& env, const std::string& nurse_hospital);

// Every scenario of the healthcare demo, in order.
std::vector<tools::ScenarioOutcome> run_demo_scenarios(
    const tools::DemoEnvironment& env, const DemoTokens& tokens,
    const std::function<void(const tools::ScenarioOutcome&)>& on_outcome);

// The example's Demo (examples.cpp).
Demo demo();

}  // namespace larder::examples::healthcare
