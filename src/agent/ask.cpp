#include "agent/ask.h"
#include "base/text.h"

#include "agent/provider.h"
#include "agent/terminal.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

namespace larder::agent {

int exit_status_for(const Error& error) {
  return exit_status::for_error(error);  // the one table of `larder`
}

int exit_status_for(const AgentRun& run) {
  switch (run.status) {
    case AgentStatus::Answered:
      return !run.steps.empty() && run.steps.back().is_error ? kExitToolError : kExitOk;
    case AgentStatus::MaxSteps:
      return kExitMaxSteps;
    case AgentStatus::MaxTokens:
    case AgentStatus::Refused:
      return kExitIncomplete;
    case AgentStatus::ProviderError:
      return run.error ? exit_status_for(*run.error) : kExitProviderUnavailable;
    case AgentStatus::Aborted:
      return kExitFailure;
    case AgentStatus::Cancelled:
      return kExitInterrupted;
  }
  return kExitFailure;
}

History::History(std::string path) : path_(std::move(path)) {
  if (path_.empty()) return;
  // Earlier versions wrote it 0644: whatever it holds (patient names) is the owner's alone.
  // Through the file itself, never a symlink's target.
  if (int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW); fd >= 0) {
    ::fchmod(fd, 0600);
    ::close(fd);
  }
  std::ifstream in(path_);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) lines_.push_back(line);
}

void History::add(const std::string& line) {
  if (line.empty() || (!lines_.empty() && lines_.back() == line)) return;
  lines_.push_back(line);
  if (path_.empty()) return;
  auto dir = std::filesystem::path(path_).parent_path();
  std::error_code ec;
  if (!dir.empty() && !std::filesystem::exists(dir, ec)) {
    std::filesystem::create_directories(dir, ec);
    ::chmod(dir.c_str(), 0700);
  }
  int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  bool ok = fd >= 0 && ::fchmod(fd, 0600) == 0;
  if (ok) {
    std::string text = line + "\n";
    ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  }
  const int saved = errno;
  if (fd >= 0) ::close(fd);
  // History is a convenience: the session goes on without the file, but the user is told once.
  if (!ok && !warned_) {
    warned_ = true;
    spdlog::warn(
        "cannot write the history file {}: {}; this session's questions are kept in memory only "
        "(--state-dir chooses another directory, --no-history turns the file off)",
        path_, std::strerror(saved));
  }
}

namespace {

struct Setup {
  Environment env;
  McpConfig mcp;
  std::shared_ptr<TokenStore> tokens;
  ProviderConfig provider;
  Redactor secrets;
};

Result<Setup> build_setup(const AskOptions& o) {
  Setup s;
  auto env = load_environment(o.dotenv_path);
  if (!env.ok()) return env.error();
  s.env = std::move(*env);
  auto mcp = resolve_mcp_config(o.config_path, o.state_dir, s.env);
  if (!mcp.ok()) return mcp.error();
  s.mcp = std::move(*mcp);
  // Larder's servers answer every query without a token with a refusal: asking the model
  // first would spend a paid request (and show it the question) for nothing.
  auto token = resolve_token(o.token, o.no_token, s.env);
  if (!token.ok()) return token.error();
  s.tokens = std::make_shared<TokenStore>(*token);
  // Provider.
  std::string kind_name = o.provider.empty() ? s.env.get_or("LARDER_PROVIDER", "") : o.provider;
  if (kind_name.empty())
    kind_name = s.env.get_or("ANTHROPIC_API_KEY", "").empty() && !s.env.get_or("OPENAI_API_KEY", "").empty()
                    ? "openai"
                    : "anthropic";
  auto kind = parse_provider_kind(kind_name);
  if (!kind.ok()) return kind.error();
  s.provider.kind = *kind;
  s.provider.api_key =
      s.env.get_or(*kind == ProviderKind::Anthropic ? "ANTHROPIC_API_KEY" : "OPENAI_API_KEY", "");
  s.provider.base_url = o.base_url.empty() ? s.env.get_or("LARDER_BASE_URL", "") : o.base_url;
  s.provider.model = o.model.empty() ? s.env.get_or("LARDER_MODEL", "") : o.model;
  // Secrets the model must never see, besides the tokens: every API key and MCP header value.
  for (const char* name : {"ANTHROPIC_API_KEY", "OPENAI_API_KEY", "BISCUIT_TOKEN"})
    if (auto v = s.env.get(name)) s.secrets.add_secret(*v);
  for (const auto& server : s.mcp.servers)
    for (const auto& [k, v] : server.headers) {
      s.secrets.add_secret(v);
      if (v.rfind("Bearer ", 0) == 0) s.secrets.add_secret(v.substr(7));
    }
  return s;
}

// The message in the user's words; the underlying library's (OpenSSL, libpq) only with --verbose.
void print_error(std::ostream& err, const Error& e, bool verbose) {
  err << "larder ask: " << e.message << "\n";
  if (verbose && !e.detail.empty()) err << "larder ask: detail: " << e.detail << "\n";
}

bool is_off(const std::string& value) {
  const std::string v = ascii_lower(value);
  return v == "off" || v == "0" || v == "false" || v == "no";
}

// What a session at a terminal has besides the streams: Ctrl-C handling and the width.
struct Session {
  InterruptHandler* interrupts = nullptr;
  RenderOptions render;
};

// Runs one question: a QuestionWatch turns Ctrl-C into a cancel and shows the progress line.
// `leave` is set when a second Ctrl-C asked the program to end.
int answer_one(Agent& agent, const std::string& question, const AskOptions& o, const Session& session,
               std::ostream& out, bool* leave = nullptr) {
  CancellationToken cancel;
  AgentRun run;
  {
    QuestionWatch watch(cancel, session.interrupts, o.progress, o.width);
    agent.on_progress = [&watch](const std::string& what) { watch.set(what); };
    run = agent.ask(question, cancel);
    agent.on_progress = nullptr;
    watch.stop();
    if (leave) *leave = watch.exit_requested();
  }
  if (o.json) {
    auto j = run_to_json(run);
    j["question"] = question;
    out << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    out << render_run(run, session.render);
  }
  out.flush();
  return exit_status_for(run);
}

int error_exit(const Error& e, const AskOptions& o, std::ostream& out, std::ostream& err) {
  int status = exit_status_for(e);
  if (o.json) {
    nlohmann::json j{
        {"status", "error"}, {"error", {{"code", e.code}, {"message", e.message}}}, {"exit_status", status}};
    out << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  }
  print_error(err, e, o.verbose);
  return status;
}

int repl(Agent& agent, const AskOptions& o, const Session& session, History& history, std::istream& in,
         std::ostream& out) {
  // With --json, stdout carries only the JSON objects (one per question).
  const bool chatty = !o.json;
  std::unique_ptr<LineEditor> editor;
  if (o.line_editing && !o.json) editor = LineEditor::open("larder", session.interrupts);
  if (editor)
    for (const auto& line : history.lines()) editor->add_history(line);
  if (chatty) {
    out << wrap_to_width(std::string("larder ask — type a question; .help for commands; ") +
                             (session.interrupts ? "Ctrl-C cancels, Ctrl-D leaves" : ".quit to leave"),
                         session.render.width)
        << "\n";
    out.flush();
  }
  for (;;) {
    std::string line;
    if (editor) {
      out.flush();
      auto status = editor->read("larder> ", &line);
      if (status == LineEditor::Status::EndOfInput) {
        out << "\n";
        break;
      }
      if (status == LineEditor::Status::Interrupted) {
        if (!line.empty()) continue;  // Ctrl-C on a half-typed line drops the line
        return kExitInterrupted;      // on an empty prompt it leaves
      }
    } else {
      if (chatty) out << "larder> " << std::flush;
      // Without the line editor nothing can wake a blocked read: Ctrl-C at this prompt ends
      // the program the ordinary way; during a question it cancels the question.
      if (session.interrupts) session.interrupts->suspend();
      const bool got = static_cast<bool>(std::getline(in, line));
      if (session.interrupts) session.interrupts->resume();
      if (!got) {
        if (chatty) out << "\n";
        break;
      }
    }
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos) continue;
    line = line.substr(start);
    if (line == ".quit" || line == ".exit") break;
    if (line == ".help") {
      out << ".history  list earlier questions\n.reset    forget the conversation so far\n"
             "!N        ask question N of .history again\n.quit     leave (Ctrl-D works too)\n";
      if (session.interrupts) out << "Ctrl-C    cancel the question that runs; at an empty prompt, leave\n";
      if (editor) out << "Up/Down   earlier questions; Ctrl-A/E, Ctrl-W, Ctrl-K edit the line\n";
      continue;
    }
    if (line == ".history") {
      for (size_t i = 0; i < history.lines().size(); ++i)
        out << (i + 1) << "  " << history.lines()[i] << "\n";
      continue;
    }
    if (line == ".reset") {
      agent.reset_conversation();
      out << "conversation cleared\n";
      continue;
    }
    if (line[0] == '!') {
      size_t n = 0;
      try {
        n = std::stoul(line.substr(1));
      } catch (...) {
      }
      if (n == 0 || n > history.lines().size()) {
        out << "no question " << line.substr(1) << " in .history\n";
        continue;
      }
      line = history.lines()[n - 1];
      out << line << "\n";
    }
    history.add(line);
    if (editor) editor->add_history(line);
    bool leave = false;
    int last = answer_one(agent, line, o, session, out, &leave);
    if (leave) return kExitInterrupted;          // a second Ctrl-C while the question ran
    if (last == kExitProviderAuth) return last;  // no later question can succeed
  }
  return kExitOk;
}

}  // namespace

int run_ask(const AskOptions& o, const ToolHostFactory& factory, std::istream& in, std::ostream& out,
            std::ostream& err) {
  if (!o.interactive && o.question.empty())
    return error_exit(
        make_error("config.usage", "give a question (larder ask \"...\") or -i for the interactive mode"), o,
        out, err);
  if (o.max_steps < 1 || o.max_steps > 100)
    return error_exit(make_error("config.usage", "--max-steps must be between 1 and 100"), o, out, err);
  auto setup = build_setup(o);
  if (!setup.ok()) return error_exit(setup.error(), o, out, err);
  auto provider = make_provider(setup->provider);
  if (!provider.ok()) return error_exit(provider.error(), o, out, err);
  auto host = factory(setup->mcp, setup->tokens, setup->env);
  if (!host.ok()) return error_exit(host.error(), o, out, err);
  AgentOptions ao;
  ao.max_steps = o.max_steps;
  Agent agent(**provider, **host, setup->tokens, ao, setup->secrets);
  if (auto ready = agent.prepare(); !ready.ok()) {
    Error e = ready.error();
    // Listing tools is an MCP failure — unless a file mcp.json names is to blame.
    if (e.code.rfind("mcp", 0) != 0 && e.code.rfind("file.", 0) != 0) e.code = "mcp." + e.code;
    return error_exit(e, o, out, err);
  }
  if (o.verbose && !o.json) {
    err << "provider: " << to_string((*provider)->kind()) << " model " << (*provider)->model() << "; tools:";
    for (const auto& t : agent.tools()) err << " " << t.name;
    err << "; token: " << (setup->tokens->empty() ? "none (--no-token)" : "set") << "\n";
  }
  Session session;
  session.render = RenderOptions{o.color, o.show_sql, o.verbose};
  if (o.wide)
    session.render.max_column_width = 0;
  else
    session.render.width = o.width;
  std::unique_ptr<InterruptHandler> interrupts;
  if (o.handle_interrupts) {
    interrupts = std::make_unique<InterruptHandler>();
    if (interrupts->ok()) session.interrupts = interrupts.get();
  }
  if (o.interactive) {
    std::string history_path;
    if (o.history && !is_off(setup->env.get_or("LARDER_ASK_HISTORY", "")))
      history_path =
          o.history_path.empty()
              ? (std::filesystem::path(o.state_dir.empty() ? "." : o.state_dir) / "ask_history").string()
              : o.history_path;
    History history(history_path);
    return repl(agent, o, session, history, in, out);
  }
  return answer_one(agent, o.question, o, session, out);
}

}  // namespace larder::agent
