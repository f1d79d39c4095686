// hipaa_compliance_check: the egress tool of the compliance server (audience
// larder-compliance). It scans text for HIPAA Safe Harbor identifiers and, when
// compliance.api_url is configured, also POSTs the text to that external API — which is
// what makes it an egress tool: the pipeline refuses tainted tokens and tainted lineages
// before the text goes anywhere.
#pragma once

#include "base/result.h"
#include "gate/pipeline.h"
#include "mcp/server.h"

#include <chrono>
#include <string>

namespace larder::tools {

struct ComplianceOptions {
  std::string api_url;      // empty: local scan only
  std::string api_ca_file;  // CA bundle for an https:// API (empty: system default bundle)
  std::chrono::milliseconds api_timeout{10000};
  std::size_t max_text_bytes = 256 * 1024;
};

Result<void> register_compliance_tool(mcp::Server& server, gate::Pipeline& pipeline,
                                      ComplianceOptions options);

}  // namespace larder::tools
