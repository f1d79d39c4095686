#include "agent/agent.h"

#include "agent/schema_check.h"

#include <algorithm>
#include <set>

namespace larder::agent {

using nlohmann::json;

const char* to_string(AgentStatus status) {
  switch (status) {
    case AgentStatus::Answered:
      return "answered";
    case AgentStatus::MaxSteps:
      return "max_steps";
    case AgentStatus::MaxTokens:
      return "max_tokens";
    case AgentStatus::Refused:
      return "refused";
    case AgentStatus::ProviderError:
      return "provider_error";
    case AgentStatus::Aborted:
      return "aborted";
    case AgentStatus::Cancelled:
      return "cancelled";
  }
  return "unknown";
}

struct Agent::ToolEntry {
  std::string server;
  std::string tool;
  bool takes_token = false;
  json model_schema;  // without biscuit_token
};

json strip_token_from_schema(const json& schema, bool* had_token) {
  if (had_token) *had_token = false;
  if (!schema.is_object()) return json{{"type", "object"}, {"properties", json::object()}};
  json out = schema;
  if (out.contains("properties") && out["properties"].is_object() &&
      out["properties"].contains(kTokenArgument)) {
    out["properties"].erase(kTokenArgument);
    if (had_token) *had_token = true;
  }
  if (out.contains("required") && out["required"].is_array()) {
    json req = json::array();
    for (const auto& r : out["required"]) {
      if (r.is_string() && r.get<std::string>() == kTokenArgument) {
        if (had_token) *had_token = true;
        continue;
      }
      req.push_back(r);
    }
    out["required"] = std::move(req);
  }
  return out;
}

std::vector<LockDecision> decisions_from_meta(const json& meta) {
  std::vector<LockDecision> out;
  if (!meta.is_object() || !meta.contains(kMetaDecision)) return out;
  const json& d = meta[kMetaDecision];
  auto one = [&](const json& o) {
    if (!o.is_object()) return;
    auto str = [&](const char* k) {
      if (!o.contains(k)) return std::string();
      return o[k].is_string() ? o[k].get<std::string>() : o[k].dump();
    };
    out.push_back({str("lock"), str("decision"), str("reason")});
  };
  if (d.is_array())
    for (const auto& o : d) one(o);
  else
    one(d);
  return out;
}

namespace {

// Model-facing tool names must match ^[a-zA-Z0-9_-]{1,64}$ for both APIs.
std::string sanitize_name(const std::string& name) {
  std::string out;
  for (char c : name)
    out.push_back(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' ? c : '_');
  if (out.empty()) out = "tool";
  if (out.size() > 64) out.resize(64);
  return out;
}

std::string system_prompt_for(const std::string& schema_context) {
  std::string p =
      "You are Larder's database assistant. You answer questions about a PostgreSQL database "
      "by writing read-only SQL (a single SELECT statement) and running it with the available "
      "tools (pg_query runs a query and returns its rows).\n"
      "Rules:\n"
      "- Use only the tables and columns described below; quote identifiers that contain spaces "
      "or capitals with double quotes.\n"
      "- Prefer aggregates and LIMIT over fetching many rows.\n"
      "- Access is controlled by the server (mTLS, a Biscuit token, database privileges and "
      "row-level security). If a tool result is an error, explain to the user which check "
      "refused and why; do not try to work around it.\n"
      "- When you have the rows you need, answer briefly in plain language.\n";
  if (!schema_context.empty()) p += "\nDatabase schema:\n" + schema_context + "\n";
  return p;
}

std::string content_text(const ToolOutcome& outcome) {
  std::string text;
  if (outcome.content.is_array()) {
    for (const auto& block : outcome.content) {
      if (!block.is_object()) continue;
      if (!text.empty()) text += "\n";
      if (block.value("type", "") == "text" && block.contains("text") && block["text"].is_string())
        text += block["text"].get<std::string>();
      else
        text += block.dump();
    }
  }
  if (text.empty() && !outcome.structured.is_null()) text = outcome.structured.dump();
  if (text.empty()) text = outcome.is_error ? "(the tool failed without a message)" : "(empty result)";
  return text;
}

std::optional<std::string> sql_of(const json& args) {
  for (const char* key : {"sql", "query", "statement"})
    if (args.is_object() && args.contains(key) && args[key].is_string()) return args[key].get<std::string>();
  return std::nullopt;
}

std::string cut(std::string text, std::size_t limit) {
  if (text.size() <= limit) return text;
  size_t n = limit;
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;  // keep UTF-8 whole
  text.resize(n);
  return text + "\n[result cut at " + std::to_string(limit) + " characters]";
}

// Everything in a request that is ours to check before it leaves the machine.
std::string request_text(const ChatRequest& r) {
  std::string s = r.system;
  for (const auto& t : r.tools) s += t.name + t.description + t.input_schema.dump();
  for (const auto& m : r.messages) {
    s += m.text;
    for (const auto& c : m.tool_calls) s += c.name + c.raw_arguments + c.input.dump();
    for (const auto& t : m.tool_results) s += t.content;
  }
  return s;
}

}  // namespace

Agent::Agent(Provider& provider, ToolHost& host, std::shared_ptr<TokenStore> tokens, AgentOptions options,
             Redactor secrets)
    : provider_(provider),
      host_(host),
      tokens_(tokens ? std::move(tokens) : std::make_shared<TokenStore>()),
      options_(std::move(options)),
      secrets_(std::move(secrets)) {}

Agent::~Agent() = default;

Redactor Agent::current_redactor() const {
  Redactor r = secrets_;
  r.add_secrets(tokens_->known());
  return r;
}

Result<void> Agent::prepare() {
  auto tools = host_.list_tools();
  if (!tools.ok()) return tools.error();
  tool_defs_.clear();
  entries_.clear();
  std::map<std::string, int> name_count;
  for (const auto& t : *tools) name_count[t.name]++;
  std::set<std::string> used;
  const Redactor redactor = current_redactor();
  for (const auto& t : *tools) {
    std::string name =
        name_count[t.name] > 1 ? sanitize_name(t.server + "__" + t.name) : sanitize_name(t.name);
    for (int n = 2; used.count(name); ++n) {
      std::string suffix = "_" + std::to_string(n);
      name = sanitize_name(t.name).substr(0, 64 - suffix.size()) + suffix;
    }
    used.insert(name);
    auto entry = std::make_unique<ToolEntry>();
    entry->server = t.server;
    entry->tool = t.name;
    entry->model_schema = strip_token_from_schema(t.input_schema, &entry->takes_token);
    tool_defs_.push_back({name, redactor.redact(t.description), redactor.redact_json(entry->model_schema)});
    entries_[name] = std::move(entry);
  }
  auto schema = host_.schema_context();
  if (!schema.ok()) return schema.error();
  system_prompt_ = system_prompt_for(redactor.redact(*schema));
  return {};
}

void Agent::reset_conversation() {
  conversation_.clear();
}

ToolStep Agent::run_tool(const ToolCall& call, ToolResult& result, const CancellationToken& cancel) {
  ToolStep step;
  step.model_name = call.name;
  step.arguments = call.input;
  step.sql = sql_of(call.input);
  result.tool_call_id = call.id;
  auto fail_locally = [&](std::string message) {
    step.is_error = true;
    step.text = message;
    result.is_error = true;
    result.content = std::move(message);
    return step;
  };
  auto it = entries_.find(call.name);
  if (it == entries_.end()) {
    std::string names;
    for (const auto& d : tool_defs_) names += (names.empty() ? "" : ", ") + d.name;
    return fail_locally("unknown tool '" + call.name + "'; available tools: " + names);
  }
  const ToolEntry& entry = *it->second;
  step.server = entry.server;
  step.tool = entry.tool;
  if (call.input_error)
    return fail_locally("invalid input for tool '" + call.name + "': " + *call.input_error);
  json args = call.input;
  // The model never chooses the token: whatever it put there is discarded.
  args.erase(kTokenArgument);
  step.arguments = args;
  auto violations = check_against_schema(args, entry.model_schema);
  if (!violations.empty()) {
    std::string msg = "invalid input for tool '" + call.name + "':";
    for (const auto& v : violations) msg += "\n- " + v;
    return fail_locally(msg);
  }
  if (entry.takes_token && !tokens_->empty()) args[kTokenArgument] = tokens_->current();
  step.called = true;
  progress("running " + entry.tool);
  auto outcome = host_.call_tool_cancellable(entry.server, entry.tool, std::move(args), cancel);
  if (!outcome.ok()) {
    step.is_error = true;
    std::string msg = "calling " + entry.tool + " on " + entry.server + " failed: " + outcome.error().message;
    step.text = current_redactor().redact(msg);
    result.is_error = true;
    result.content = step.text;
    return step;
  }
  const ToolOutcome& out = *outcome;
  if (out.meta.is_object() && out.meta.contains(kMetaToken) && out.meta[kMetaToken].is_string())
    step.token_switched = tokens_->replace(out.meta[kMetaToken].get<std::string>());
  step.decisions = decisions_from_meta(out.meta);
  // Redact after a possible switch, so the new token is known too.
  const Redactor redactor = current_redactor();
  for (auto& d : step.decisions) d.reason = redactor.redact(d.reason);
  step.is_error = out.is_error;
  step.structured = out.structured.is_null() ? json() : redactor.redact_json(out.structured);
  step.text = redactor.redact(cut(content_text(out), options_.max_result_chars));
  result.is_error = out.is_error;
  result.content = step.text;
  return step;
}

AgentRun Agent::ask(const std::string& question, const CancellationToken& cancel) {
  AgentRun run;
  const size_t rollback = conversation_.size();
  auto finish = [&](AgentStatus status) {
    progress("");
    run.status = status;
    if (status != AgentStatus::Answered) conversation_.resize(rollback);
    return run;
  };
  auto cancelled = [&] {
    run.error = make_error("agent.cancelled", "cancelled");
    return finish(AgentStatus::Cancelled);
  };
  Message user;
  user.role = Role::User;
  user.text = current_redactor().redact(question);
  conversation_.push_back(std::move(user));
  const int max_steps = std::max(1, options_.max_steps);
  for (int turn = 1; turn <= max_steps; ++turn) {
    if (cancel.cancelled()) return cancelled();
    ChatRequest request;
    request.cancel = cancel;
    request.model = options_.model;
    request.max_tokens = options_.max_tokens;
    request.system = system_prompt_;
    request.tools = tool_defs_;
    request.messages = conversation_;
    if (current_redactor().contains_known_secret(request_text(request))) {
      run.error = make_error("agent.secret_leak",
                             "refusing to send the request: it contains a token or configured secret");
      return finish(AgentStatus::Aborted);
    }
    progress("waiting for the model (" + (options_.model.empty() ? provider_.model() : options_.model) + ")");
    auto response = provider_.complete(request);
    ++run.model_turns;
    if (cancel.cancelled()) return cancelled();
    if (!response.ok()) {
      run.error = response.error();
      return finish(AgentStatus::ProviderError);
    }
    run.usage.input_tokens += response->usage.input_tokens;
    run.usage.output_tokens += response->usage.output_tokens;
    Message& reply = response->message;
    run.answer = reply.text;
    if (response->stop_reason == StopReason::MaxTokens) return finish(AgentStatus::MaxTokens);
    if (response->stop_reason == StopReason::Refusal) return finish(AgentStatus::Refused);
    if (reply.tool_calls.empty()) {
      conversation_.push_back(std::move(reply));
      return finish(AgentStatus::Answered);
    }
    Message results;
    results.role = Role::User;
    for (const auto& call : reply.tool_calls) {
      ToolResult r;
      ToolStep step = run_tool(call, r, cancel);
      if (cancel.cancelled()) return cancelled();
      if (on_step) on_step(step);
      run.steps.push_back(std::move(step));
      results.tool_results.push_back(std::move(r));
    }
    conversation_.push_back(std::move(reply));
    conversation_.push_back(std::move(results));
  }
  run.error = make_error("agent.max_steps", "the model still wanted to call tools after " +
                                                std::to_string(max_steps) +
                                                " steps; raise --max-steps or ask a narrower question");
  return finish(AgentStatus::MaxSteps);
}

}  // namespace larder::agent
