// A compiled JSON Schema (valijson) used to validate tool arguments before a handler runs
// and structured tool output after it. Drafts 4/6/7 keywords are enforced; 2020-12
// documents are accepted (their `$defs` references resolve as JSON pointers) and keywords
// valijson does not know are ignored, so the original schema is always echoed unchanged.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>

#include "base/result.h"

namespace larder::mcp {

class JsonSchema {
 public:
  // Compiles `schema`; fails with "mcp.schema" if the schema itself is malformed.
  static larder::Result<JsonSchema> compile(const nlohmann::json& schema);

  // Ok, or an "mcp.schema.invalid" error listing where the instance fails (JSON pointer: reason).
  larder::Result<void> validate(const nlohmann::json& instance) const;

  const nlohmann::json& document() const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

}  // namespace larder::mcp
