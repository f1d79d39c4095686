#include "agent/config.h"
#include "base/files.h"

#include "base/json.h"

#include <nlohmann/json.hpp>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace larder::agent {

using nlohmann::json;

namespace {

bool valid_env_name(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') return false;
  return true;
}

// A configuration file's text; unreadable is the user's configuration to fix (exit status 2).
Result<std::string> read_config_file(const std::string& path, const char* what) {
  auto text = read_file(path);
  if (!text) return make_error("config.read", "cannot read " + std::string(what) + " '" + path + "'");
  return text;
}

}  // namespace

Result<std::map<std::string, std::string>> parse_dotenv(std::string_view text) {
  std::map<std::string, std::string> out;
  size_t i = 0, line = 1;
  auto at_line = [&](size_t l) { return ".env line " + std::to_string(l) + ": "; };
  while (i < text.size()) {
    size_t start_line = line;
    // skip leading blanks
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r')) ++i;
    if (i >= text.size()) break;
    if (text[i] == '\n') {
      ++i;
      ++line;
      continue;
    }
    if (text[i] == '#') {
      while (i < text.size() && text[i] != '\n') ++i;
      continue;
    }
    size_t eol = text.find('\n', i);
    std::string_view rest = text.substr(i, eol == std::string_view::npos ? std::string_view::npos : eol - i);
    if (rest.rfind("export ", 0) == 0 || rest.rfind("export\t", 0) == 0) {
      i += 7;
      while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    }
    size_t key_start = i;
    while (i < text.size() && text[i] != '=' && text[i] != '\n') ++i;
    if (i >= text.size() || text[i] != '=')
      return make_error("config.dotenv", at_line(start_line) + "expected KEY=value");
    std::string key(text.substr(key_start, i - key_start));
    while (!key.empty() && (key.back() == ' ' || key.back() == '\t')) key.pop_back();
    if (!valid_env_name(key))
      return make_error("config.dotenv", at_line(start_line) + "'" + key + "' is not a valid variable name");
    ++i;  // '='
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    std::string value;
    if (i < text.size() && (text[i] == '"' || text[i] == '\'')) {
      char quote = text[i++];
      bool closed = false;
      while (i < text.size()) {
        char c = text[i++];
        if (c == '\n') ++line;
        if (c == quote) {
          closed = true;
          break;
        }
        if (quote == '"' && c == '\\' && i < text.size()) {
          char e = text[i++];
          switch (e) {
            case 'n':
              value += '\n';
              break;
            case 't':
              value += '\t';
              break;
            case 'r':
              value += '\r';
              break;
            case '"':
              value += '"';
              break;
            case '\\':
              value += '\\';
              break;
            case '$':
              value += '$';
              break;
            case '\n':
              ++line;
              break;  // line continuation
            default:
              value += '\\';
              value += e;
          }
          continue;
        }
        value += c;
      }
      if (!closed)
        return make_error("config.dotenv", at_line(start_line) + "unterminated " +
                                               (quote == '"' ? "double" : "single") +
                                               " quote in the value of " + key);
      // after the closing quote only blanks and a comment may follow
      while (i < text.size() && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r')) ++i;
      if (i < text.size() && text[i] == '#')
        while (i < text.size() && text[i] != '\n') ++i;
      if (i < text.size() && text[i] != '\n')
        return make_error("config.dotenv",
                          at_line(line) + "unexpected text after the closing quote of " + key);
    } else {
      size_t v_start = i;
      while (i < text.size() && text[i] != '\n') {
        // " #" starts a comment in unquoted values; "a#b" stays literal
        if (text[i] == '#' && i > v_start && (text[i - 1] == ' ' || text[i - 1] == '\t')) break;
        ++i;
      }
      value = std::string(text.substr(v_start, i - v_start));
      while (i < text.size() && text[i] != '\n') ++i;
      while (!value.empty() && (value.back() == ' ' || value.back() == '\t' || value.back() == '\r'))
        value.pop_back();
    }
    out[key] = value;
  }
  return out;
}

std::optional<std::string> Environment::get(const std::string& name) const {
  if (const char* v = std::getenv(name.c_str())) return std::string(v);
  auto it = dotenv_.find(name);
  if (it != dotenv_.end()) return it->second;
  return std::nullopt;
}

std::string Environment::get_or(const std::string& name, const std::string& fallback) const {
  auto v = get(name);
  return v && !v->empty() ? *v : fallback;
}

Result<Environment> load_environment(const std::string& dotenv_path) {
  std::error_code ec;
  if (dotenv_path.empty() || !std::filesystem::exists(dotenv_path, ec)) return Environment{};
  auto text = read_config_file(dotenv_path, ".env file");
  if (!text.ok()) return text.error();
  auto parsed = parse_dotenv(*text);
  if (!parsed.ok()) return make_error(parsed.error().code, dotenv_path + ": " + parsed.error().message);
  return Environment{std::move(*parsed)};
}

Result<std::string> expand_env(const std::string& value, const Environment& env, const std::string& where) {
  std::string out;
  for (size_t i = 0; i < value.size();) {
    if (value.compare(i, 2, "${") == 0) {
      size_t end = value.find('}', i + 2);
      if (end == std::string::npos)
        return make_error("config.env", where + ": unterminated ${ in '" + value + "'");
      std::string name = value.substr(i + 2, end - i - 2);
      auto v = env.get(name);
      if (!v) return make_error("config.env", where + ": environment variable " + name + " is not set");
      out += *v;
      i = end + 1;
    } else {
      out += value[i++];
    }
  }
  return out;
}

Result<McpConfig> parse_mcp_config(std::string_view text, const std::string& source,
                                   const std::string& base_dir, const Environment& env) {
  auto parsed = parse_json_bounded(text);
  if (!parsed) return make_error("config.mcp", source + ": " + parsed.error().message);
  const json doc = std::move(*parsed);
  if (!doc.is_object()) return make_error("config.mcp", source + ": the top level must be a JSON object");
  if (!doc.contains("mcpServers")) return make_error("config.mcp", source + ": missing key 'mcpServers'");
  const json& servers = doc["mcpServers"];
  if (!servers.is_object())
    return make_error("config.mcp", source + ": 'mcpServers' must be an object of servers");
  if (servers.empty()) return make_error("config.mcp", source + ": 'mcpServers' names no server");
  auto fail = [&](const std::string& key, const std::string& what) {
    return make_error("config.mcp", source + ": " + key + ": " + what);
  };
  auto resolve = [&](const std::string& p) {
    std::filesystem::path path(p);
    if (path.is_absolute() || base_dir.empty()) return p;
    return (std::filesystem::path(base_dir) / path).lexically_normal().string();
  };
  auto expand = [&](const std::string& value, const std::string& where) -> Result<std::string> {
    auto v = expand_env(value, env, where);
    if (!v.ok()) return make_error(v.error().code, source + ": " + v.error().message);
    return v;
  };
  McpConfig config;
  for (auto it = servers.begin(); it != servers.end(); ++it) {
    const std::string key = "mcpServers." + it.key();
    const json& s = it.value();
    if (!s.is_object()) return fail(key, "must be an object");
    McpServerConfig server;
    server.name = it.key();
    static const char* kKnown[] = {"url",     "type", "transport", "tls",     "headers",
                                   "command", "args", "env",       "disabled"};
    for (auto f = s.begin(); f != s.end(); ++f) {
      bool known = false;
      for (const char* k : kKnown) known = known || f.key() == k;
      if (!known)
        return fail(key + "." + f.key(),
                    "unknown key (expected url, type, tls, headers, command, args, env)");
    }
    if (s.contains("disabled")) {
      if (!s["disabled"].is_boolean()) return fail(key + ".disabled", "must be true or false");
      if (s["disabled"].get<bool>()) continue;
    }
    const bool has_url = s.contains("url"), has_command = s.contains("command");
    if (has_url == has_command)
      return fail(key, "needs exactly one of 'url' (HTTP servers) or 'command' (stdio servers)");
    std::string type;
    for (const char* tk : {"type", "transport"}) {
      if (!s.contains(tk)) continue;
      if (!s[tk].is_string()) return fail(key + "." + tk, "must be a string");
      type = s[tk].get<std::string>();
      if (type != "http" && type != "streamable-http" && type != "streamableHttp" && type != "sse" &&
          type != "stdio")
        return fail(key + "." + tk, "unknown transport '" + type + "' (use http, sse or stdio)");
    }
    if (has_url) {
      if (!s["url"].is_string()) return fail(key + ".url", "must be a string");
      auto url = expand(s["url"].get<std::string>(), key + ".url");
      if (!url.ok()) return url.error();
      server.url = *url;
      if (server.url.rfind("https://", 0) != 0 && server.url.rfind("http://", 0) != 0)
        return fail(key + ".url", "must start with https:// or http://");
      if (type == "stdio") return fail(key + ".type", "'stdio' needs 'command', not 'url'");
      server.transport = type == "sse" ? McpTransportKind::Sse : McpTransportKind::StreamableHttp;
    } else {
      if (!s["command"].is_string() || s["command"].get<std::string>().empty())
        return fail(key + ".command", "must be a non-empty string");
      server.command = s["command"].get<std::string>();
      server.transport = McpTransportKind::Stdio;
      if (!type.empty() && type != "stdio")
        return fail(key + ".type", "'" + type + "' needs 'url', not 'command'");
      if (s.contains("args")) {
        if (!s["args"].is_array()) return fail(key + ".args", "must be an array of strings");
        for (size_t i = 0; i < s["args"].size(); ++i) {
          const std::string where = key + ".args[" + std::to_string(i) + "]";
          if (!s["args"][i].is_string()) return fail(where, "must be a string");
          auto v = expand(s["args"][i].get<std::string>(), where);
          if (!v.ok()) return v.error();
          server.args.push_back(*v);
        }
      }
      if (s.contains("env")) {
        if (!s["env"].is_object()) return fail(key + ".env", "must be an object of strings");
        for (auto e = s["env"].begin(); e != s["env"].end(); ++e) {
          if (!e.value().is_string()) return fail(key + ".env." + e.key(), "must be a string");
          auto v = expand(e.value().get<std::string>(), key + ".env." + e.key());
          if (!v.ok()) return v.error();
          server.env[e.key()] = *v;
        }
      }
    }
    if (s.contains("headers")) {
      if (!s["headers"].is_object()) return fail(key + ".headers", "must be an object of strings");
      if (!has_url) return fail(key + ".headers", "only HTTP servers (with 'url') take headers");
      for (auto h = s["headers"].begin(); h != s["headers"].end(); ++h) {
        const std::string where = key + ".headers." + h.key();
        if (!h.value().is_string()) return fail(where, "must be a string");
        bool name_ok = !h.key().empty();
        for (char c : h.key())
          name_ok = name_ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_');
        if (!name_ok) return fail(where, "is not a valid HTTP header name");
        auto v = expand(h.value().get<std::string>(), where);
        if (!v.ok()) return v.error();
        if (v->find_first_of("\r\n") != std::string::npos) return fail(where, "must not contain line breaks");
        server.headers.emplace_back(h.key(), *v);
      }
    }
    if (s.contains("tls")) {
      const json& t = s["tls"];
      if (!t.is_object()) return fail(key + ".tls", "must be an object with ca, cert and key");
      if (!has_url) return fail(key + ".tls", "only HTTP servers (with 'url') take TLS files");
      TlsFiles files;
      for (auto f = t.begin(); f != t.end(); ++f) {
        const std::string where = key + ".tls." + f.key();
        if (f.key() != "ca" && f.key() != "cert" && f.key() != "key" && f.key() != "server_name")
          return fail(where, "unknown key (expected ca, cert, key, server_name)");
        if (!f.value().is_string() || f.value().get<std::string>().empty())
          return fail(where, "must be a non-empty string");
        auto v = expand(f.value().get<std::string>(), where);
        if (!v.ok()) return v.error();
        if (f.key() == "server_name")
          files.server_name = *v;
        else
          (f.key() == "ca" ? files.ca : f.key() == "cert" ? files.cert : files.key) = resolve(*v);
      }
      if (files.cert.empty() != files.key.empty())
        return fail(key + ".tls", "'cert' and 'key' must be given together");
      if (server.url.rfind("https://", 0) != 0) return fail(key + ".tls", "TLS files need an https:// url");
      server.tls = files;
    }
    config.servers.push_back(std::move(server));
  }
  if (config.servers.empty())
    return make_error("config.mcp", source + ": every server in 'mcpServers' is disabled");
  return config;
}

Result<McpConfig> load_mcp_config(const std::string& path, const Environment& env) {
  auto text = read_config_file(path, "MCP config");
  if (!text.ok()) return text.error();
  std::string base = std::filesystem::path(path).parent_path().string();
  return parse_mcp_config(*text, path, base, env);
}

Result<McpConfig> resolve_mcp_config(const std::string& config_path_option, const std::string& state_dir,
                                     const Environment& env) {
  McpConfig out;
  const std::string config_path =
      config_path_option.empty()
          ? (std::filesystem::path(state_dir.empty() ? "." : state_dir) / "mcp.json").string()
          : config_path_option;
  std::error_code ec;
  if (!config_path_option.empty() || std::filesystem::exists(config_path, ec))
    return load_mcp_config(config_path, env);
  if (auto url = env.get("PG_MCP_URL"); url && !url->empty()) {
    McpServerConfig server;
    server.name = "larder-db";
    server.url = *url;
    if (url->rfind("https://", 0) == 0) {
      TlsFiles tls{env.get_or("MCP_TLS_CA", ""), env.get_or("MCP_TLS_CERT", ""),
                   env.get_or("MCP_TLS_KEY", ""), ""};
      if (!tls.ca.empty() || !tls.cert.empty()) server.tls = tls;
    }
    out.servers.push_back(std::move(server));
    return out;
  }
  return make_error("config.mcp", "no MCP server configured: create " + config_path +
                                      " (see docs/agent.md), pass --config, or set PG_MCP_URL");
}

Result<std::string> resolve_token(const std::string& option, bool no_token, const Environment& env) {
  std::string token = option;
  if (!token.empty() && token[0] == '@') {
    auto text = read_file(token.substr(1));
    if (!text) return make_error("config.token", "cannot read the token file '" + token.substr(1) + "'");
    token = std::move(*text);
  } else if (token.empty()) {
    token = env.get_or("BISCUIT_TOKEN", "");
  }
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.front())))
    token.erase(token.begin());
  if (no_token && !token.empty())
    return make_error("config.token", "--no-token and a token (" +
                                          std::string(option.empty() ? "BISCUIT_TOKEN" : "--token") +
                                          ") were both given: drop one of them");
  if (token.empty() && !no_token)
    return make_error(
        "config.token",
        std::string(!option.empty() && option[0] == '@' ? "the token file is empty" : "no Biscuit token") +
            ": Larder's servers refuse every query without one. Pass --token TOKEN or --token @FILE, or "
            "set BISCUIT_TOKEN (in the environment or .env). Tokens come from whoever runs your Larder "
            "servers (`larder biscuit generate`); `larder demo` writes some to <dir>/tokens/. For an MCP "
            "server that needs no token, pass --no-token");
  return token;
}

}  // namespace larder::agent
