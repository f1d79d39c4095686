#include "connect/bridge.h"

#include "agent/mcp_tool_host.h"
#include "mcp/client.h"
#include "mcp/stdio.h"

#include <sodium.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <sstream>
#include <thread>
#include <unordered_map>

namespace larder::connect {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kTokenMeta = "larder/biscuit_token";
constexpr const char* kTokenArgument = "biscuit_token";
constexpr const char* kWithheld = "[withheld by larder connect]";

// The mcpServers key as part of a tool name ([A-Za-z0-9_-]) or of a URI scheme prefix
// (letters, digits, '-', starting with a letter).
std::string name_part(const std::string& server) {
  std::string out;
  for (char c : server) out += std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' ? c : '_';
  return out.empty() ? "server" : out;
}
std::string scheme_part(const std::string& server) {
  std::string out;
  for (char c : server) out += std::isalnum(static_cast<unsigned char>(c)) || c == '-' ? c : '-';
  if (out.empty() || !std::isalpha(static_cast<unsigned char>(out[0]))) out = "s" + out;
  return out;
}

std::string str(const json& object, const char* key) {
  if (!object.is_object()) return {};
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// An input schema without the token argument; `had` says whether the tool took one, and
// `required` whether its schema required it.
json without_token_argument(json schema, bool* had, bool* required) {
  *had = false;
  *required = false;
  if (!schema.is_object()) return json{{"type", "object"}};
  if (auto p = schema.find("properties");
      p != schema.end() && p->is_object() && p->contains(kTokenArgument)) {
    p->erase(kTokenArgument);
    *had = true;
  }
  if (auto r = schema.find("required"); r != schema.end() && r->is_array()) {
    json kept = json::array();
    for (const auto& item : *r) {
      if (item.is_string() && item.get<std::string>() == kTokenArgument)
        *required = true;
      else
        kept.push_back(item);
    }
    *r = std::move(kept);
  }
  return schema;
}

// The transport failures after which a call is tried again on a new session: the server no
// longer knows the session (it restarted), the connection could not be made or was reset, a
// stdio server is gone. Never a timeout (the call may still be running) or a JSON-RPC error.
bool worth_reconnecting(const Error& e) {
  return e.code == "mcp.session" || e.code == "net.io" || e.code == "mcp.stdio";
}

std::string sha256_hex16(const std::string& data) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  char hex[2 * crypto_hash_sha256_BYTES + 1];
  sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
  return std::string(hex, 16);
}

// The base64 lines of a PEM file (each at least 16 characters): the material that must
// never reach the host, recognisable in any JSON that carries it.
std::vector<std::string> pem_lines(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.size() >= 16 && line.rfind("-----", 0) != 0) out.push_back(line);
  }
  return out;
}

}  // namespace

std::string default_state_dir() {
  if (const char* x = std::getenv("XDG_STATE_HOME"); x && *x) return (fs::path(x) / "larder").string();
  if (const char* h = std::getenv("HOME"); h && *h)
    return (fs::path(h) / ".local" / "state" / "larder").string();
  return ".larder";
}

std::string token_state_path(const std::string& state_dir, const std::string& initial_token) {
  return (fs::path(state_dir) / ("connect-" + sha256_hex16(initial_token) + ".token")).string();
}

// ------------------------------------------------------------------------------------------
struct Upstream {
  agent::McpServerConfig config;
  bool manages_authorization = false;
  std::mutex mu;                        // guards client and header_token (and reconnecting)
  std::shared_ptr<mcp::Client> client;  // calls hold their own reference while running
  std::string header_token;
  // What it offers (listed at start and after its list_changed notifications).
  std::mutex catalog_mu;
  json capabilities = json::object();
  std::vector<json> tools, resources, templates, prompts;
};

struct Route {
  Upstream* upstream = nullptr;
  std::string name;  // the upstream's tool or prompt name, or the URI prefix to strip
  bool takes_token = false;
  bool requires_token = false;  // its schema requires the argument
};

struct Bridge::Impl {
  BridgeOptions options;
  std::shared_ptr<agent::TokenStore> tokens;
  std::unique_ptr<mcp::Server> server;
  std::vector<std::unique_ptr<Upstream>> upstreams;
  std::atomic<int> reconnects{0};

  // Secrets the host must never see: every token held, header values, PEM lines.
  mutable std::mutex secrets_mu;
  std::vector<std::string> run_secrets;    // only characters of secret_char(): tokens, PEM lines
  std::vector<std::string> other_secrets;  // anything else (header values)
  std::size_t shortest_run_secret = std::string::npos;

  // Exposed names → routes, and the definitions registered (to register only changes).
  std::shared_mutex routes_mu;
  std::map<std::string, Route> tool_routes, prompt_routes, resource_routes, template_routes;
  std::map<std::string, json> registered_tools, registered_prompts, registered_resources,
      registered_templates;
  std::mutex rebuild_mu;

  // Progress of host requests: the token sent upstream → the host's request.
  std::mutex progress_mu;
  std::unordered_map<std::string, mcp::RequestContext*> progress_routes;
  std::atomic<std::uint64_t> next_progress{1};

  // list_changed from an upstream: re-listed off the client's reader thread.
  std::mutex refresh_mu;
  std::condition_variable refresh_cv;
  std::deque<Upstream*> refresh_queue;
  bool stopping = false;
  std::thread refresher;

  ~Impl() {
    {
      std::lock_guard lock(refresh_mu);
      stopping = true;
    }
    refresh_cv.notify_all();
    if (refresher.joinable()) refresher.join();
    for (auto& u : upstreams) {
      std::lock_guard lock(u->mu);
      if (u->client) u->client->close();
    }
  }

  void add_secret(std::string s) {
    if (s.size() < 8) return;
    std::lock_guard lock(secrets_mu);
    auto& list = std::all_of(s.begin(), s.end(), secret_char) ? run_secrets : other_secrets;
    if (std::find(list.begin(), list.end(), s) != list.end()) return;
    if (&list == &run_secrets) shortest_run_secret = std::min(shortest_run_secret, s.size());
    list.push_back(std::move(s));
  }

  // Tokens (base64url) and PEM lines (base64) are written into JSON unescaped, so each
  // appears whole inside one run of these characters.
  static bool secret_char(char c) {
    static const auto table = [] {
      std::array<bool, 256> t{};
      for (unsigned char ch :
           std::string_view("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_-"))
        t[ch] = true;
      return t;
    }();
    return table[static_cast<unsigned char>(c)];
  }

  // The last check on every line written to the host: a secret is replaced wherever it is.
  // One pass finds the runs long enough to hold a token or a PEM line; only those are
  // searched, so the cost is linear in the line, not in the line times the secrets.
  bool scrub(std::string& line) const {
    std::lock_guard lock(secrets_mu);
    std::size_t withheld = 0;
    if (!run_secrets.empty()) {
      for (std::size_t i = 0; i < line.size();) {
        if (!secret_char(line[i])) {
          ++i;
          continue;
        }
        std::size_t j = i;
        while (j < line.size() && secret_char(line[j])) ++j;
        if (j - i >= shortest_run_secret) {
          // Searched within the run only. The earliest match is replaced (the longest where two
          // start together), and the scan resumes there: kWithheld has spaces, so it ends the
          // run and what followed the secret is scanned as a run of its own.
          const std::string_view run = std::string_view(line).substr(i, j - i);
          std::size_t first = std::string_view::npos;
          const std::string* hit = nullptr;
          for (const auto& secret : run_secrets) {
            const auto at = run.find(secret);
            if (at < first || (at == first && at != std::string_view::npos && secret.size() > hit->size())) {
              first = at;
              hit = &secret;
            }
          }
          if (hit) {
            line.replace(i + first, hit->size(), kWithheld);
            ++withheld;
            j = i + first;
          }
        }
        i = j;
      }
    }
    for (const auto& secret : other_secrets) {
      for (std::size_t at = line.find(secret); at != std::string::npos;
           at = line.find(secret, at + std::char_traits<char>::length(kWithheld))) {
        line.replace(at, secret.size(), kWithheld);
        ++withheld;
      }
    }
    if (withheld > 0)
      spdlog::warn("larder connect: withheld {} secret(s) from a message to the host", withheld);
    return true;
  }

  // A token handed back by a server becomes the lineage's current token, kept on disk.
  void adopt(const std::string& token) {
    add_secret(token);
    if (!tokens->replace(token)) return;
    spdlog::info("larder connect: the server attenuated the token (taint); every upstream now gets it");
    persist(token);
  }

  void persist(const std::string& token) {
    if (options.token_state.empty()) return;
    const fs::path path(options.token_state);
    std::error_code ec;
    if (path.has_parent_path()) {
      fs::create_directories(path.parent_path(), ec);
      ::chmod(path.parent_path().c_str(), 0700);
    }
    const std::string tmp = path.string() + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      ::chmod(tmp.c_str(), 0600);
      out << token << "\n";
      if (!out) {
        spdlog::error(
            "larder connect: cannot write the token state {}: the current token lives in memory only",
            options.token_state);
        return;
      }
    }
    ::chmod(tmp.c_str(), 0600);
    fs::rename(tmp, path, ec);
    if (ec) spdlog::error("larder connect: cannot replace {}: {}", options.token_state, ec.message());
  }

  std::string describe(const Upstream& u) const {
    return "Larder server '" + u.config.name + "' (" +
           (u.config.transport == agent::McpTransportKind::Stdio ? u.config.command : u.config.url) + ")";
  }

  // ---------------------------------------------------------------- upstream sessions
  Result<std::shared_ptr<mcp::Client>> open_once(Upstream& u) {
    mcp::ClientOptions co;
    co.info = {"larder-connect", options.info.version, ""};
    co.request_timeout = options.request_timeout;
    co.listen = u.config.transport != agent::McpTransportKind::Stdio;
    co.on_notification = [this, up = &u](const std::string& method, const json& params) {
      on_upstream_notification(*up, method, params);
    };
    u.header_token = tokens->current();
    auto client =
        agent::connect_server(u.config, u.manages_authorization ? u.header_token : std::string(), co);
    if (!client.ok()) return client.error();
    return std::shared_ptr<mcp::Client>(std::move(*client));
  }

  // Opens a session with backoff. Holds u.mu.
  Result<std::shared_ptr<mcp::Client>> open_locked(Upstream& u, bool counted) {
    if (u.client) {
      u.client->close();
      u.client.reset();
    }
    auto delay = options.backoff;
    Error last = make_error("mcp.connect", "not connected");
    for (int attempt = 1; attempt <= std::max(1, options.reconnect_attempts); ++attempt) {
      auto c = open_once(u);
      if (c.ok()) {
        u.client = *c;
        if (counted) ++reconnects;
        return *c;
      }
      last = c.error();
      // A file the config names is missing or invalid, or the TLS setup is wrong: no retry helps.
      if (last.code.rfind("file.", 0) == 0 || last.code == "net.config" || last.code == "mcp.version") break;
      if (attempt < options.reconnect_attempts) {
        spdlog::info("larder connect: {} not reachable ({}); retrying in {} ms", describe(u), last.message,
                     delay.count());
        std::this_thread::sleep_for(delay);
        delay = std::min(delay * 2, options.max_backoff);
      }
    }
    const bool file = last.code.rfind("file.", 0) == 0;
    return make_error(file ? last.code : "mcp.connect",
                      (file ? "" : "cannot reach ") + describe(u) + ": " + last.message, last.detail);
  }

  // The session for a call: reopened when the lineage's token changed (the header must carry
  // the current one) or when there is none.
  Result<std::shared_ptr<mcp::Client>> session(Upstream& u) {
    std::lock_guard lock(u.mu);
    const bool stale = u.manages_authorization && tokens->current() != u.header_token;
    if (u.client && !stale) return u.client;
    return open_locked(u, u.client != nullptr);
  }

  void drop(Upstream& u, const std::shared_ptr<mcp::Client>& failed) {
    std::lock_guard lock(u.mu);
    if (u.client == failed) {
      u.client->close();
      u.client.reset();
    }
  }

  // Runs `call` on the upstream's session; after a transport failure, once more on a new one.
  template <class Call>
  Result<json> with_session(Upstream& u, Call&& call) {
    auto c = session(u);
    if (!c.ok()) return c.error();
    auto r = call(**c);
    if (r.ok() || !worth_reconnecting(r.error())) return r;
    spdlog::info("larder connect: {}: {}; opening a new session", describe(u), r.error().message);
    drop(u, *c);
    {
      std::lock_guard lock(u.mu);
      if (!u.client) {
        auto reopened = open_locked(u, true);
        if (!reopened.ok()) return reopened.error();
      }
    }
    c = session(u);
    if (!c.ok()) return c.error();
    return call(**c);
  }

  // ---------------------------------------------------------------- catalog
  Result<void> list(Upstream& u) {
    auto c = session(u);
    if (!c.ok()) return c.error();
    mcp::Client& client = **c;
    json caps = client.server_capabilities();
    std::vector<json> tools, resources, templates, prompts;
    auto fail = [&](const char* what, const Error& e) {
      return make_error("mcp.list",
                        "listing the " + std::string(what) + " of " + describe(u) + " failed: " + e.message);
    };
    if (caps.contains("tools")) {
      auto t = client.list_tools();
      if (!t.ok()) return fail("tools", t.error());
      tools = std::move(*t);
    }
    if (caps.contains("resources")) {
      auto r = client.list_resources();
      if (!r.ok()) return fail("resources", r.error());
      resources = std::move(*r);
      auto t = client.list_resource_templates();
      if (!t.ok()) return fail("resource templates", t.error());
      templates = std::move(*t);
    }
    if (caps.contains("prompts")) {
      auto p = client.list_prompts();
      if (!p.ok()) return fail("prompts", p.error());
      prompts = std::move(*p);
    }
    std::lock_guard lock(u.catalog_mu);
    u.capabilities = caps;
    u.tools = std::move(tools);
    u.resources = std::move(resources);
    u.templates = std::move(templates);
    u.prompts = std::move(prompts);
    return {};
  }

  // Registers what every upstream offers under the documented names; only what changed is
  // removed and added again (each change tells the host's session list_changed).
  void rebuild() {
    std::lock_guard rebuild_lock(rebuild_mu);
    struct Item {
      Upstream* u;
      json def;
    };
    std::vector<Item> tools, prompts, resources, templates;
    for (auto& u : upstreams) {
      std::lock_guard lock(u->catalog_mu);
      for (const auto& t : u->tools) tools.push_back({u.get(), t});
      for (const auto& p : u->prompts) prompts.push_back({u.get(), p});
      for (const auto& r : u->resources) resources.push_back({u.get(), r});
      for (const auto& t : u->templates) templates.push_back({u.get(), t});
    }
    // Each item under its name upstream, unless two upstreams offer that name: then each is
    // qualified with its server ("<server>__<name>", or "<server>+<uri>" for URIs). The route
    // keeps what a handler needs upstream: the name, or the URI prefix to strip.
    std::map<std::string, Route> new_tools, new_prompts, new_resources, new_templates;
    std::map<std::string, json> tool_defs, prompt_defs, resource_defs, template_defs;
    auto expose = [](const std::vector<Item>& items, const char* key, bool uri,
                     std::map<std::string, Route>& routes, std::map<std::string, json>& defs,
                     const std::function<void(json&, Route&)>& adjust) {
      std::map<std::string, std::set<Upstream*>> offered_by;
      for (const auto& i : items) offered_by[str(i.def, key)].insert(i.u);
      for (const auto& i : items) {
        const std::string original = str(i.def, key);
        if (original.empty()) continue;
        std::string prefix;
        if (offered_by.at(original).size() > 1)
          prefix = uri ? scheme_part(i.u->config.name) + "+" : name_part(i.u->config.name) + "__";
        const std::string exposed = prefix + original;
        if (routes.count(exposed)) continue;
        Route route{i.u, uri ? prefix : original, false, false};
        json def = i.def;
        def[key] = exposed;
        if (adjust) adjust(def, route);
        routes[exposed] = std::move(route);
        defs[exposed] = std::move(def);
      }
    };
    expose(tools, "name", false, new_tools, tool_defs, [](json& def, Route& route) {
      def["inputSchema"] = without_token_argument(def.value("inputSchema", json::object()),
                                                  &route.takes_token, &route.requires_token);
    });
    expose(prompts, "name", false, new_prompts, prompt_defs, {});
    expose(resources, "uri", true, new_resources, resource_defs, {});
    expose(templates, "uriTemplate", true, new_templates, template_defs, {});
    {
      std::unique_lock lock(routes_mu);
      tool_routes = std::move(new_tools);
      prompt_routes = std::move(new_prompts);
      resource_routes = std::move(new_resources);
      template_routes = std::move(new_templates);
    }
    sync(
        registered_tools, tool_defs, [this](const std::string& n) { server->remove_tool(n); },
        [this](const std::string& n, const json& d) { return register_tool(n, d); });
    sync(
        registered_prompts, prompt_defs, [this](const std::string& n) { server->remove_prompt(n); },
        [this](const std::string& n, const json& d) { return register_prompt(n, d); });
    sync(
        registered_resources, resource_defs, [this](const std::string& n) { server->remove_resource(n); },
        [this](const std::string& n, const json& d) { return register_resource(n, d); });
    // Templates cannot be removed from an mcp::Server; a template's reader routes at call
    // time, so one that disappears upstream answers "not found" there.
    for (auto& [name, def] : template_defs)
      if (!registered_templates.count(name)) {
        if (auto r = register_template(name, def); r.ok())
          registered_templates[name] = def;
        else
          spdlog::warn("larder connect: resource template {} not offered: {}", name, r.error().message);
      }
  }

  template <class Remove, class Add>
  void sync(std::map<std::string, json>& registered, const std::map<std::string, json>& wanted, Remove remove,
            Add add) {
    for (auto it = registered.begin(); it != registered.end();) {
      auto w = wanted.find(it->first);
      if (w == wanted.end() || w->second != it->second) {
        spdlog::debug("larder connect: {} withdrawn or changed upstream", it->first);
        remove(it->first);
        it = registered.erase(it);
      } else {
        ++it;
      }
    }
    for (const auto& [name, def] : wanted) {
      if (registered.count(name)) continue;
      if (auto r = add(name, def); r.ok()) {
        spdlog::debug("larder connect: offering {}", name);
        registered[name] = def;
      } else {
        spdlog::warn("larder connect: {} not offered to the host: {}", name, r.error().message);
      }
    }
  }

  Route route(std::map<std::string, Route>& routes, const std::string& key) {
    std::shared_lock lock(routes_mu);
    auto it = routes.find(key);
    return it == routes.end() ? Route{} : it->second;
  }

  // ---------------------------------------------------------------- host-facing handlers
  Result<void> register_tool(const std::string& exposed, const json& def) {
    mcp::Tool tool;
    tool.name = exposed;
    tool.title = str(def, "title");
    tool.description = str(def, "description");
    tool.input_schema = def.value("inputSchema", json{{"type", "object"}});
    if (def.contains("outputSchema") && def["outputSchema"].is_object())
      tool.output_schema = def["outputSchema"];
    if (def.contains("annotations")) tool.annotations = def["annotations"];
    if (def.contains("_meta")) tool.meta = def["_meta"];
    return server->add_tool(std::move(tool), [this, exposed](mcp::RequestContext& ctx, const json& args) {
      return call_tool(ctx, exposed, args);
    });
  }

  mcp::ToolResult call_tool(mcp::RequestContext& ctx, const std::string& exposed, const json& host_args) {
    const Route r = route(tool_routes, exposed);
    if (!r.upstream) return mcp::ToolResult::error("the tool " + exposed + " is no longer offered");
    json args = host_args.is_object() ? host_args : json::object();
    // Whatever the host put there, the token is the bridge's to give.
    args.erase(kTokenArgument);

    // The host's progress token maps to one of ours for the upstream call.
    json meta = nullptr;
    std::string progress_key;
    if (ctx.meta().contains("progressToken")) {
      progress_key = "larder-connect-" + std::to_string(next_progress++);
      meta = json{{"progressToken", progress_key}};
      std::lock_guard lock(progress_mu);
      progress_routes[progress_key] = &ctx;
    }
    auto result = with_session(*r.upstream, [&](mcp::Client& c) {
      // Where the bridge sends Authorization itself, that is the token's one place; else (a
      // stdio upstream, or a configured Authorization header) the argument carries it. The
      // current token at each attempt: a retry after a taint elsewhere carries the new one.
      if (r.takes_token && (r.requires_token || !r.upstream->manages_authorization) && !tokens->empty())
        args[kTokenArgument] = tokens->current();
      return c.call_tool(r.name, args, meta, &ctx.cancellation());
    });
    if (!progress_key.empty()) {
      std::lock_guard lock(progress_mu);
      progress_routes.erase(progress_key);
    }
    if (!result.ok()) {
      const Error& e = result.error();
      if (e.code == "mcp.cancelled") return mcp::ToolResult::error("the call was cancelled");
      spdlog::warn("larder connect: {} failed on {}: {}", exposed, describe(*r.upstream), e.message);
      return mcp::ToolResult::error(describe(*r.upstream) + " could not answer: " + e.message +
                                    ". Check that the server runs and that its certificate files are valid.");
    }
    json& upstream = *result;
    mcp::ToolResult out;
    if (auto um = upstream.find("_meta"); um != upstream.end() && um->is_object()) {
      json m = std::move(*um);
      if (auto t = m.find(kTokenMeta); t != m.end()) {
        if (t->is_string()) adopt(t->get<std::string>());
        m.erase(t);
      }
      if (!m.empty()) out.meta = std::move(m);
    }
    out.content =
        upstream.contains("content") && upstream["content"].is_array() ? upstream["content"] : json::array();
    if (upstream.contains("structuredContent")) out.structured_content = upstream["structuredContent"];
    out.is_error = upstream.value("isError", false);
    if (out.is_error && out.meta.is_object() && out.meta.contains("larder/decision")) {
      // A refusal, in words the host shows the person: which lock, and why.
      const json& d = out.meta["larder/decision"];
      const std::string lock = str(d, "lock"), reason = str(d, "reason");
      if (!lock.empty())
        out.content =
            json::array({mcp::text_content("Larder refused this call: the " + lock + " lock said: " +
                                           (reason.empty() ? "no reason given" : reason) + ".")});
    }
    return out;
  }

  // A read or prompt failure as the host receives it: the upstream's JSON-RPC error as it was
  // (a refusal keeps code -32003 and its decision), a transport failure in words.
  mcp::HandlerResult failure(Upstream& u, const Error& e) {
    if (e.code.rfind("mcp.rpc.", 0) == 0) {
      mcp::RpcError rpc;
      try {
        rpc.code = std::stoi(e.code.substr(8));
      } catch (...) {
        rpc.code = mcp::error_code::kInternalError;
      }
      rpc.message = e.message;
      if (auto colon = rpc.message.find(" failed: "); colon != std::string::npos)
        rpc.message = rpc.message.substr(colon + 9);
      if (!e.detail.empty()) {
        auto data = json::parse(e.detail, nullptr, false);
        if (!data.is_discarded()) rpc.data = std::move(data);
      }
      if (rpc.code == mcp::error_code::kRefused && rpc.data && rpc.data->is_object())
        rpc.message = "Larder refused this request: the " + str(*rpc.data, "lock") +
                      " lock said: " + str(*rpc.data, "reason") + ".";
      return rpc;
    }
    return mcp::RpcError{
        mcp::error_code::kInternalError, describe(u) + " could not answer: " + e.message, {}};
  }

  Result<void> register_prompt(const std::string& exposed, const json& def) {
    mcp::Prompt p;
    p.name = exposed;
    p.title = str(def, "title");
    p.description = str(def, "description");
    if (def.contains("arguments") && def["arguments"].is_array())
      for (const auto& a : def["arguments"])
        p.arguments.push_back(
            {str(a, "name"), str(a, "title"), str(a, "description"), a.value("required", false)});
    if (def.contains("_meta")) p.meta = def["_meta"];
    return server->add_prompt(
        std::move(p),
        [this, exposed](mcp::RequestContext&, const std::map<std::string, std::string>& arguments) {
          const Route r = route(prompt_routes, exposed);
          if (!r.upstream)
            return mcp::HandlerResult(make_error("not_found", "the prompt " + exposed + " is gone"));
          json args = json::object();
          for (const auto& [k, v] : arguments) args[k] = v;
          auto got = with_session(*r.upstream, [&](mcp::Client& c) { return c.get_prompt(r.name, args); });
          if (!got.ok()) return failure(*r.upstream, got.error());
          return mcp::HandlerResult(std::move(*got));
        });
  }

  mcp::HandlerResult read(Upstream& u, const std::string& upstream_uri) {
    auto got = with_session(u, [&](mcp::Client& c) { return c.read_resource(upstream_uri); });
    if (!got.ok()) return failure(u, got.error());
    json contents = got->contains("contents") ? (*got)["contents"] : json::array();
    return mcp::HandlerResult(std::move(contents));
  }

  Result<void> register_resource(const std::string& exposed, const json& def) {
    mcp::Resource r;
    r.uri = exposed;
    r.name = str(def, "name");
    r.title = str(def, "title");
    r.description = str(def, "description");
    r.mime_type = str(def, "mimeType");
    if (def.contains("size") && def["size"].is_number_integer()) r.size = def["size"].get<std::int64_t>();
    if (def.contains("annotations")) r.annotations = def["annotations"];
    if (def.contains("_meta")) r.meta = def["_meta"];
    return server->add_resource(std::move(r), [this, exposed](mcp::RequestContext&, const std::string&) {
      const Route rt = route(resource_routes, exposed);
      if (!rt.upstream)
        return mcp::HandlerResult(make_error("not_found", "the resource " + exposed + " is gone"));
      return read(*rt.upstream, exposed.substr(rt.name.size()));
    });
  }

  Result<void> register_template(const std::string& exposed, const json& def) {
    mcp::ResourceTemplate t;
    t.uri_template = exposed;
    t.name = str(def, "name");
    t.title = str(def, "title");
    t.description = str(def, "description");
    t.mime_type = str(def, "mimeType");
    if (def.contains("annotations")) t.annotations = def["annotations"];
    if (def.contains("_meta")) t.meta = def["_meta"];
    return server->add_resource_template(
        std::move(t), [this, exposed](mcp::RequestContext&, const std::string& uri,
                                      const std::map<std::string, std::string>&) {
          const Route rt = route(template_routes, exposed);
          if (!rt.upstream || uri.rfind(rt.name, 0) != 0)
            return mcp::HandlerResult(make_error("not_found", "no resource " + uri));
          return read(*rt.upstream, uri.substr(rt.name.size()));
        });
  }

  std::vector<std::string> complete(const json& ref, const json& argument, const json& context) {
    Route r;
    json upstream_ref = ref;
    if (str(ref, "type") == "ref/prompt") {
      r = route(prompt_routes, str(ref, "name"));
      upstream_ref["name"] = r.name;
    } else if (str(ref, "type") == "ref/resource") {
      const std::string uri = str(ref, "uri");
      r = route(template_routes, uri);
      if (!r.upstream) r = route(resource_routes, uri);
      if (r.upstream) upstream_ref["uri"] = uri.substr(r.name.size());
    }
    if (!r.upstream) return {};
    (void)context;
    auto got = with_session(*r.upstream, [&](mcp::Client& c) { return c.complete(upstream_ref, argument); });
    std::vector<std::string> out;
    if (got.ok() && got->contains("completion") && (*got)["completion"].contains("values"))
      for (const auto& v : (*got)["completion"]["values"])
        if (v.is_string()) out.push_back(v.get<std::string>());
    return out;
  }

  // ---------------------------------------------------------------- upstream notifications
  void on_upstream_notification(Upstream& u, const std::string& method, const json& params) {
    if (method == "notifications/progress") {
      const std::string key = params.contains("progressToken") && params["progressToken"].is_string()
                                  ? params["progressToken"].get<std::string>()
                                  : std::string();
      std::lock_guard lock(progress_mu);
      auto it = progress_routes.find(key);
      if (it == progress_routes.end()) return;
      std::optional<double> total;
      if (params.contains("total") && params["total"].is_number()) total = params["total"].get<double>();
      it->second->progress(params.value("progress", 0.0), total, str(params, "message"));
    } else if (method == "notifications/message") {
      json p = params;
      const std::string logger = str(params, "logger");
      p["logger"] = u.config.name + (logger.empty() ? "" : "/" + logger);
      const auto level = mcp::parse_log_level(str(params, "level")).value_or(mcp::LogLevel::kInfo);
      for (const auto& s : server->sessions())
        if (s->initialized() && level >= s->log_level()) s->notify("notifications/message", p);
    } else if (method == "notifications/tools/list_changed" ||
               method == "notifications/prompts/list_changed" ||
               method == "notifications/resources/list_changed") {
      std::lock_guard lock(refresh_mu);
      if (std::find(refresh_queue.begin(), refresh_queue.end(), &u) == refresh_queue.end())
        refresh_queue.push_back(&u);
      refresh_cv.notify_one();
    } else if (method == "notifications/resources/updated") {
      const std::string uri = str(params, "uri");
      std::shared_lock lock(routes_mu);
      for (const auto& [exposed, r] : resource_routes)
        if (r.upstream == &u && exposed.substr(r.name.size()) == uri)
          server->notify_resource_updated(exposed);
    }
  }

  void refresh_loop() {
    std::unique_lock lock(refresh_mu);
    while (true) {
      refresh_cv.wait(lock, [this] { return stopping || !refresh_queue.empty(); });
      if (stopping) return;
      Upstream* u = refresh_queue.front();
      refresh_queue.pop_front();
      lock.unlock();
      spdlog::debug("larder connect: {} changed its lists; listing them again", describe(*u));
      if (auto listed = list(*u); listed.ok())
        rebuild();
      else
        spdlog::warn("larder connect: {}", listed.error().message);
      lock.lock();
    }
  }
};

// ------------------------------------------------------------------------------------------
Bridge::Bridge(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Bridge::~Bridge() = default;

mcp::Server& Bridge::server() {
  return *impl_->server;
}
std::string Bridge::current_token() const {
  return impl_->tokens->current();
}
int Bridge::reconnects() const {
  return impl_->reconnects.load();
}

Result<std::unique_ptr<Bridge>> Bridge::start(BridgeOptions options) {
  if (sodium_init() < 0) return make_error("crypto.init", "libsodium failed to initialise");
  if (options.config.servers.empty()) return make_error("mcp.config", "no MCP server configured");
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  BridgeOptions& o = impl->options;

  // The lineage: the configured token, or the one a previous run of this lineage kept.
  impl->tokens = std::make_shared<agent::TokenStore>(o.token);
  impl->add_secret(o.token);
  if (!o.token_state.empty() && !o.token.empty()) {
    std::ifstream in(o.token_state);
    std::string kept;
    if (in && std::getline(in, kept) && !kept.empty() && kept != o.token) {
      impl->add_secret(kept);
      impl->tokens->replace(kept);
      spdlog::info("larder connect: continuing the lineage kept in {}", o.token_state);
    }
  }
  for (const auto& s : o.config.servers) {
    for (const auto& [name, value] : s.headers) {
      impl->add_secret(value);
      if (value.rfind("Bearer ", 0) == 0) impl->add_secret(value.substr(7));
    }
    if (s.tls) {
      for (auto& line : pem_lines(s.tls->key)) impl->add_secret(line);
      for (auto& line : pem_lines(s.tls->cert)) impl->add_secret(line);
    }
  }

  mcp::ServerOptions so;
  so.info = o.info;
  so.instructions =
      "Larder: read-only SQL over PostgreSQL, behind four locks (mTLS, Biscuit, database privileges, "
      "row-level security). Refusals name the lock that decided.";
  so.handler_threads = o.handler_threads;
  so.page_size = std::max<std::size_t>(1, o.page_size);
  so.advertise_completions = true;
  // The upstream checked its structuredContent against the schema the host sees.
  so.validate_tool_output = false;
  impl->server = std::make_unique<mcp::Server>(so);
  Impl* self = impl.get();
  impl->server->set_completion_handler(
      [self](mcp::RequestContext&, const json& ref, const json& argument, const json& context) {
        return self->complete(ref, argument, context);
      });

  for (const auto& s : o.config.servers) {
    auto u = std::make_unique<Upstream>();
    u->config = s;
    u->manages_authorization = agent::sends_bearer(s);
    impl->upstreams.push_back(std::move(u));
  }
  for (auto& u : impl->upstreams) {
    if (auto listed = impl->list(*u); !listed.ok()) return listed.error();
  }
  impl->rebuild();
  impl->refresher = std::thread([self] { self->refresh_loop(); });
  return std::unique_ptr<Bridge>(new Bridge(std::move(impl)));
}

Result<void> Bridge::serve_stdio(int in_fd, int out_fd) {
  mcp::StdioOptions so;
  so.max_in_flight = impl_->options.max_in_flight;
  so.max_line = impl_->options.max_message;
  Impl* self = impl_.get();
  so.filter = [self](std::string& line) { return self->scrub(line); };
  mcp::StdioServerTransport transport(*impl_->server, in_fd, out_fd, so);
  return transport.run();
}

}  // namespace larder::connect
