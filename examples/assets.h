// The text files of examples/ (policy.toml, schema.sql; healthcare/demo_model_script.json, the
// recorded model responses of its demo), compiled in by examples/CMakeLists.txt.
#pragma once

#include <string_view>

namespace larder::examples {

// The file at examples/<path> (e.g. "saas/policy.toml"); empty when there is none.
std::string_view asset(std::string_view path);

}  // namespace larder::examples
