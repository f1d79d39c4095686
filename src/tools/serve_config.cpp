#include "tools/serve_config.h"
#include "base/files.h"
#include "obs/log.h"

#include "base/text.h"
#include "db/connection.h"

#include "net/pki.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <tuple>

namespace larder::tools {
namespace {

namespace fs = std::filesystem;

Error config_error(const std::string& key, const std::string& message) {
  return make_error("config.invalid", key + ": " + message);
}

// Reads one table strictly: every key must be known, every value of the right type.
class Section {
 public:
  Section(const toml::table* table, std::string name) : table_(table), name_(std::move(name)) {}

  std::string key(std::string_view k) const {
    return name_.empty() ? std::string(k) : name_ + "." + std::string(k);
  }

  Result<void> only(const std::vector<std::string_view>& known) const {
    if (!table_) return {};
    std::set<std::string_view> allowed(known.begin(), known.end());
    for (const auto& [k, v] : *table_) {
      if (!allowed.count(k.str())) return config_error(key(k.str()), "unknown key (check its spelling)");
    }
    return {};
  }

  Result<void> string(std::string_view k, std::string& out) const {
    const toml::node* n = find(k);
    if (!n) return {};
    if (!n->is_string()) return config_error(key(k), "must be a string");
    out = n->as_string()->get();
    return {};
  }

  Result<void> boolean(std::string_view k, bool& out) const {
    const toml::node* n = find(k);
    if (!n) return {};
    if (!n->is_boolean()) return config_error(key(k), "must be true or false");
    out = n->as_boolean()->get();
    return {};
  }

  template <class Int>
  Result<void> integer(std::string_view k, Int& out, int64_t min, int64_t max) const {
    const toml::node* n = find(k);
    if (!n) return {};
    if (!n->is_integer()) return config_error(key(k), "must be an integer");
    int64_t v = n->as_integer()->get();
    if (v < min || v > max) {
      return config_error(key(k), "must be between " + std::to_string(min) + " and " + std::to_string(max));
    }
    out = static_cast<Int>(v);
    return {};
  }

  template <class Duration>
  Result<void> duration(std::string_view k, Duration& out, int64_t min, int64_t max) const {
    int64_t v = out.count();
    auto r = integer(k, v, min, max);
    if (!r) return r;
    out = Duration(v);
    return {};
  }

  // An integer or a float (1e7, 2.5e9) within [min, max].
  Result<void> number(std::string_view k, double& out, double min, double max) const {
    const toml::node* n = find(k);
    if (!n) return {};
    if (!n->is_integer() && !n->is_floating_point()) return config_error(key(k), "must be a number");
    double v = n->is_integer() ? static_cast<double>(n->as_integer()->get()) : n->as_floating_point()->get();
    if (!(v >= min && v <= max)) {
      char range[64];
      std::snprintf(range, sizeof range, "%g and %g", min, max);
      return config_error(key(k), std::string("must be between ") + range);
    }
    out = v;
    return {};
  }

  Result<void> strings(std::string_view k, std::vector<std::string>& out) const {
    const toml::node* n = find(k);
    if (!n) return {};
    const toml::array* a = n->as_array();
    if (!a) return config_error(key(k), "must be an array of strings");
    out.clear();
    for (size_t i = 0; i < a->size(); ++i) {
      const toml::node* e = a->get(i);
      if (!e->is_string()) return config_error(key(k) + "[" + std::to_string(i) + "]", "must be a string");
      out.push_back(e->as_string()->get());
    }
    return {};
  }

  const toml::node* find(std::string_view k) const { return table_ ? table_->get(k) : nullptr; }
  const toml::table* table() const { return table_; }

 private:
  const toml::table* table_;
  std::string name_;
};

// Every key of larder.toml, by table: the parser accepts these and no other, and
// docs/configuration.md documents exactly these (a test compares the two).
const std::vector<std::pair<std::string_view, std::vector<std::string_view>>>& key_table() {
  static const std::vector<std::pair<std::string_view, std::vector<std::string_view>>> table = {
      {"",
       {"i_understand_this_is_insecure", "server", "tls", "biscuit", "database", "policy", "tools", "rls",
        "taint", "audit", "limits", "compliance", "profiles", "admin", "log"}},
      {"server", {"host", "port", "audience", "plain_http", "drain_timeout_ms"}},
      {"tls", {"cert", "key", "client_ca", "crl", "allowed_clients"}},
      {"biscuit",
       {"root_keys", "policy_file", "max_facts", "max_iterations", "max_time_us", "max_memory_bytes",
        "verify_cache_entries", "require_binding", "require_expiry"}},
      {"biscuit.root_keys[]", {"id", "public_key"}},
      {"database",
       {"mode", "dir", "url", "writer_url", "ledger_url", "replicas", "max_replica_lag_ms",
        "transaction_pooler", "statement_timeout_ms", "max_rows", "max_result_bytes", "sql_guard",
        "max_query_cost"}},
      {"tools", {"enabled", "classes"}},
      {"policy", {"file", "example", "allow_drift"}},
      {"rls", {"trusted_third_party_keys"}},
      {"taint", {"enabled"}},
      {"audit",
       {"path", "fsync", "anchor_id", "anchor_max_lag_ms", "anchor_interval_ms", "rotate_bytes",
        "rotate_interval_s", "keep_files", "keep_days", "syslog", "syslog_socket"}},
      {"limits",
       {"max_body_bytes", "max_header_bytes", "request_timeout_ms", "idle_timeout_ms", "max_connections",
        "worker_threads", "max_sse_streams_per_session", "handshake_timeout_ms", "max_handshakes",
        "max_concurrent_calls_per_client", "max_calls_per_second_per_client", "call_burst_per_client",
        "max_concurrent_calls_per_lineage", "max_calls_per_second_per_lineage", "call_burst_per_lineage",
        "max_json_depth", "max_batch_size"}},
      {"compliance", {"api_url", "api_timeout_ms"}},
      {"admin", {"enabled", "host", "port", "tls", "allowed_clients", "metrics", "readiness_cache_ms"}},
      {"log", {"format", "level"}},
      {"profiles.<name>", {"description", "rights", "facts", "ttl_s", "max_ttl_s"}},
  };
  return table;
}

const std::vector<std::string_view>& keys_of(std::string_view table) {
  for (const auto& [name, keys] : key_table()) {
    if (name == table) return keys;
  }
  static const std::vector<std::string_view> none;
  return none;
}

#define LARDER_TRY(expr)                                      \
  do {                                                        \
    auto larder_try_result = (expr);                          \
    if (!larder_try_result) return larder_try_result.error(); \
  } while (0)

Result<gate::DataFlow> parse_flow(const std::string& key, const std::string& value) {
  if (value == "neutral") return gate::DataFlow::kNeutral;
  if (value == "sensitive-read") return gate::DataFlow::kSensitiveRead;
  if (value == "egress") return gate::DataFlow::kEgress;
  return config_error(key, "must be one of neutral, sensitive-read, egress (got \"" + value + "\")");
}

std::string resolve(const std::string& base_dir, const std::string& path) {
  if (path.empty() || fs::path(path).is_absolute() || base_dir.empty()) return path;
  return (fs::path(base_dir) / path).lexically_normal().string();
}

// An allow-list of client certificates: each entry "cn:<CN>", "san:<SAN>" or "sha256:<hex>".
Result<void> check_allow_list(const std::string& key, const std::vector<std::string>& list) {
  for (size_t i = 0; i < list.size(); ++i) {
    const auto& a = list[i];
    if (a.rfind("cn:", 0) != 0 && a.rfind("san:", 0) != 0 && a.rfind("sha256:", 0) != 0) {
      return config_error(key + "[" + std::to_string(i) + "]",
                          "must start with cn:, san: or sha256: (got \"" + a + "\")");
    }
  }
  return {};
}

Result<void> require_file(const std::string& key, const std::string& path) {
  if (path.empty()) return config_error(key, "is required");
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return config_error(key, "file not found: " + path);
  std::ifstream probe(path);
  if (!probe) return config_error(key, "file not readable: " + path);
  return {};
}

// A tool name from the file: one Larder serves, or an error listing those.
Result<void> require_known_tool(const std::string& key, const std::string& name) {
  const auto& known = known_tools();
  if (std::find(known.begin(), known.end(), name) != known.end()) return {};
  return config_error(key,
                      "unknown tool \"" + name + "\" (check its spelling); the tools are " + join(known));
}

// tls.client_ca verifies client certificates, so it must hold CA certificates (X.509
// basicConstraints CA:TRUE) — every certificate in it, and at least one. A leaf certificate
// here would make OpenSSL refuse every client, or worse, trust whatever that leaf signed.
Result<void> require_ca_certificates(const std::string& key, const std::string& path) {
  auto pem = read_file(path);
  if (!pem) return config_error(key, "cannot read " + path + ": " + pem.error().message);
  constexpr std::string_view kBegin = "-----BEGIN CERTIFICATE-----";
  constexpr std::string_view kEnd = "-----END CERTIFICATE-----";
  const std::string fix =
      "; set tls.client_ca to the certificate of the CA that issues your client certificates "
      "(`larder certs init` writes it to .larder/certs/ca.crt)";
  std::size_t count = 0;
  for (std::size_t at = pem->find(kBegin); at != std::string::npos; at = pem->find(kBegin, at + 1)) {
    std::size_t end = pem->find(kEnd, at);
    if (end == std::string::npos) break;
    ++count;
    auto info = net::pki::inspect_certificate(std::string_view(*pem).substr(at, end + kEnd.size() - at));
    if (!info) {
      return config_error(key, path + ": certificate " + std::to_string(count) +
                                   " cannot be read: " + info.error().message + fix);
    }
    if (!info->is_ca) {
      return config_error(key, path + " is not a CA certificate: certificate " + std::to_string(count) +
                                   " (CN \"" + info->subject_cn + "\") lacks basicConstraints CA:TRUE" + fix);
    }
  }
  if (count == 0) return config_error(key, path + " holds no PEM certificate" + fix);
  return {};
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

}  // namespace

const std::vector<std::string>& known_tools() {
  static const std::vector<std::string> names = {"pg_query", "pg_explain", "pg_metadata",
                                                 "hipaa_compliance_check"};
  return names;
}

const std::vector<std::string>& insecure_acknowledgements() {
  static const std::vector<std::string> names = {"plain_http", "unbound_tokens", "tokens_without_expiry",
                                                 "policy_drift"};
  return names;
}

std::vector<std::string> insecure_warnings(const ServeConfig& c) {
  std::vector<std::string> out;
  if (c.plain_http) {
    out.push_back(
        "server.plain_http = true: lock 1 (mTLS) is off — no TLS and no client certificate, so any "
        "process that can reach " +
        c.host + ":" + std::to_string(c.port) +
        " may call this server, and certificate-bound tokens are refused; development only");
  }
  if (!c.gate.require_binding) {
    out.push_back(
        "biscuit.require_binding = false: tokens without a client-certificate binding are accepted, so "
        "a leaked token works from any client certificate our CA issued");
  }
  if (!c.gate.require_expiry) {
    out.push_back(
        "biscuit.require_expiry = false: tokens whose authority block sets no expiry are accepted, so a "
        "leaked token works until it is revoked");
  }
  if (c.allow_drift) {
    out.push_back(
        "policy.allow_drift = true: the server starts even when the database's privileges or row-level "
        "security differ from the policy file (each difference is logged); run `larder policy apply`");
  }
  return out;
}

std::vector<std::string> config_keys() {
  std::vector<std::string> out;
  for (const auto& [table, keys] : key_table()) {
    for (const auto& k : keys) {
      if (table.empty()) {
        // Top level: the tables ("server", "profiles" for "profiles.<name>") are not keys.
        const std::string prefix = std::string(k) + ".";
        bool is_table = false;
        for (const auto& [name, unused] : key_table()) is_table |= name == k || name.rfind(prefix, 0) == 0;
        if (is_table) continue;
        out.push_back(std::string(k));
      } else {
        out.push_back(std::string(table) + "." + std::string(k));
      }
    }
  }
  return out;
}

gate::GateOptions served_gate_options() {
  gate::GateOptions o;
  o.require_binding = true;
  o.require_expiry = true;
  return o;
}

gate::PipelineOptions served_pipeline_options() {
  gate::PipelineOptions o;
  o.lineage_limits = kServedCallLimits;
  return o;
}

mcp::HttpTransportOptions served_transport_options() {
  mcp::HttpTransportOptions o;
  o.client_limits = kServedCallLimits;
  return o;
}

const gate::TokenProfile* ServeConfig::profile(const std::string& name) const {
  for (const auto& p : profiles) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

gate::DataFlow ServeConfig::data_flow(const std::string& tool) const {
  auto it = tool_classes.find(tool);
  // Unknown tools are treated as egress: the safe assumption for taint (fail closed).
  return it == tool_classes.end() ? gate::DataFlow::kEgress : it->second;
}

namespace {

// One larder.toml being read: the parsed document, where relative paths start, and the
// configuration each table's reader fills in, in the order the tables depend on each other
// ([server] before [tls], which needs plain_http; acknowledgements last).
class ConfigReader {
 public:
  ConfigReader(const toml::table& root, const std::string& base_dir) : root(root), base_dir(base_dir) {}

  Result<ServeConfig> read() && {
    LARDER_TRY(parse_acknowledgements());
    LARDER_TRY(parse_server());
    LARDER_TRY(parse_tls());
    LARDER_TRY(parse_admin());
    LARDER_TRY(parse_log());
    LARDER_TRY(parse_biscuit());
    LARDER_TRY(parse_database());
    LARDER_TRY(parse_tools());
    LARDER_TRY(parse_rls());
    LARDER_TRY(parse_policy());
    LARDER_TRY(parse_taint());
    LARDER_TRY(parse_audit());
    LARDER_TRY(parse_limits());
    LARDER_TRY(parse_compliance());
    LARDER_TRY(parse_profiles());
    LARDER_TRY(acknowledgements_in_effect());
    return std::move(c);
  }

 private:
  static constexpr const char* kAck = "i_understand_this_is_insecure";
  const toml::table& root;
  const std::string& base_dir;
  ServeConfig c;

  Result<void> parse_acknowledgements() {
    Section top(&root, "");
    LARDER_TRY(top.only(keys_of("")));
    LARDER_TRY(top.strings(kAck, c.insecure_acknowledged));
    for (std::size_t i = 0; i < c.insecure_acknowledged.size(); ++i) {
      const auto& a = c.insecure_acknowledged[i];
      const auto& known = insecure_acknowledgements();
      if (std::find(known.begin(), known.end(), a) == known.end()) {
        return config_error(std::string(kAck) + "[" + std::to_string(i) + "]",
                            "unknown setting \"" + a + "\"; the settings that need it are " + join(known));
      }
    }
    return {};
  }
  bool acknowledged(const std::string& what) const {
    return std::find(c.insecure_acknowledged.begin(), c.insecure_acknowledged.end(), what) !=
           c.insecure_acknowledged.end();
  }
  // How to acknowledge, in every refusal of an insecure setting.
  static Error unacknowledged(const std::string& key, const std::string& what, const std::string& exposure) {
    return config_error(
        key, exposure +
                 ". Remove the setting, or, if you mean it, acknowledge it with "
                 "i_understand_this_is_insecure = [\"" +
                 what + "\"] at the top of the file (before any [section]); every start then logs a warning");
  }
  Result<Section> sub(std::string_view name) const {
    const toml::node* n = root.get(name);
    if (!n) return Section(nullptr, std::string(name));
    if (!n->is_table()) return config_error(std::string(name), "must be a table");
    return Section(n->as_table(), std::string(name));
  }

  Result<void> parse_server() {
    // [server]
    auto server = sub("server");
    if (!server) return server.error();
    LARDER_TRY(server->only(keys_of("server")));
    LARDER_TRY(server->string("host", c.host));
    LARDER_TRY(server->integer("port", c.port, 0, 65535));
    LARDER_TRY(server->string("audience", c.gate.audience));
    LARDER_TRY(server->boolean("plain_http", c.plain_http));
    LARDER_TRY(server->duration("drain_timeout_ms", c.limits.stop_grace, 0, 3'600'000));
    if (c.gate.audience.empty()) return config_error("server.audience", "must not be empty");
    if (c.plain_http && !is_loopback(c.host)) {
      return config_error("server.plain_http",
                          "plain HTTP is allowed only on a loopback host, not " + c.host);
    }
    if (c.plain_http && !acknowledged("plain_http")) {
      return unacknowledged(
          "server.plain_http", "plain_http",
          "plain HTTP turns off lock 1 (mTLS): no TLS, no client certificate, any local process "
          "may call the server");
    }
    return {};
  }

  Result<void> parse_tls() {
    // [tls]
    auto tls = sub("tls");
    if (!tls) return tls.error();
    LARDER_TRY(tls->only(keys_of("tls")));
    LARDER_TRY(tls->string("cert", c.tls.cert_file));
    LARDER_TRY(tls->string("key", c.tls.key_file));
    LARDER_TRY(tls->string("client_ca", c.tls.client_ca_file));
    LARDER_TRY(tls->string("crl", c.tls.crl_file));
    LARDER_TRY(tls->strings("allowed_clients", c.tls.allowed_clients));
    c.tls.cert_file = resolve(base_dir, c.tls.cert_file);
    c.tls.key_file = resolve(base_dir, c.tls.key_file);
    c.tls.client_ca_file = resolve(base_dir, c.tls.client_ca_file);
    c.tls.crl_file = resolve(base_dir, c.tls.crl_file);
    if (!c.plain_http) {
      LARDER_TRY(require_file("tls.cert", c.tls.cert_file));
      LARDER_TRY(require_file("tls.key", c.tls.key_file));
      LARDER_TRY(require_file("tls.client_ca", c.tls.client_ca_file));
      LARDER_TRY(require_ca_certificates("tls.client_ca", c.tls.client_ca_file));
      if (!c.tls.crl_file.empty()) LARDER_TRY(require_file("tls.crl", c.tls.crl_file));
    }
    LARDER_TRY(check_allow_list("tls.allowed_clients", c.tls.allowed_clients));
    return {};
  }

  Result<void> parse_admin() {
    // [admin]
    auto admin = sub("admin");
    if (!admin) return admin.error();
    LARDER_TRY(admin->only(keys_of("admin")));
    LARDER_TRY(admin->boolean("enabled", c.admin_enabled));
    auto& admin_allowed = c.admin.listener.tls.allowed_clients;
    LARDER_TRY(admin->string("host", c.admin.listener.host));
    LARDER_TRY(admin->integer("port", c.admin.listener.port, 0, 65535));
    LARDER_TRY(admin->boolean("tls", c.admin_tls));
    LARDER_TRY(admin->strings("allowed_clients", admin_allowed));
    LARDER_TRY(admin->boolean("metrics", c.metrics_enabled));
    LARDER_TRY(admin->duration("readiness_cache_ms", c.admin.readiness_cache, 0, 600'000));
    if (c.admin_enabled && !c.admin_tls && !is_loopback(c.admin.listener.host)) {
      return config_error(
          "admin.host",
          "without admin.tls the admin listener serves plain HTTP, so only on a loopback "
          "address, not " +
              c.admin.listener.host +
              "; set admin.tls = true (and admin.allowed_clients) to serve it on the network");
    }
    if (c.admin_enabled && c.admin_tls) {
      if (c.plain_http) {
        return config_error("admin.tls", "needs [tls] cert, key and client_ca; server.plain_http has none");
      }
      if (admin_allowed.empty()) {
        return config_error("admin.allowed_clients",
                            "must name the operators' certificates when admin.tls = true (e.g. "
                            "[\"cn:ops\"]): every certificate of the CA is an MCP client, not an operator");
      }
    }
    LARDER_TRY(check_allow_list("admin.allowed_clients", admin_allowed));
    return {};
  }

  Result<void> parse_log() {
    // [log]
    auto log = sub("log");
    if (!log) return log.error();
    LARDER_TRY(log->only(keys_of("log")));
    std::string log_format = "text", log_level = "info";
    LARDER_TRY(log->string("format", log_format));
    LARDER_TRY(log->string("level", log_level));
    if (log->find("format")) {
      auto format = obs::parse_log_format(log_format);
      if (!format)
        return config_error("log.format", "must be \"text\" or \"json\" (got \"" + log_format + "\")");
      c.log.format = *format;
    }
    if (log->find("level")) {
      auto level = obs::parse_log_level(log_level);
      if (!level) {
        return config_error(
            "log.level",
            "must be one of trace, debug, info, warn, error, critical, off (got \"" + log_level + "\")");
      }
      c.log.level = *level;
    }
    return {};
  }

  Result<void> parse_biscuit() {
    // [biscuit]
    auto biscuit = sub("biscuit");
    if (!biscuit) return biscuit.error();
    LARDER_TRY(biscuit->only(keys_of("biscuit")));
    if (const toml::node* keys = biscuit->find("root_keys")) {
      const toml::array* arr = keys->as_array();
      if (!arr) return config_error("biscuit.root_keys", "must be an array of tables {id, public_key}");
      for (size_t i = 0; i < arr->size(); ++i) {
        std::string key = "biscuit.root_keys[" + std::to_string(i) + "]";
        const toml::table* t = arr->get(i)->as_table();
        if (!t) return config_error(key, "must be a table {id, public_key}");
        Section s(t, key);
        LARDER_TRY(s.only(keys_of("biscuit.root_keys[]")));
        gate::RootKeyConfig rk;
        if (s.find("id")) {
          uint32_t id = 0;
          LARDER_TRY(s.integer("id", id, 0, UINT32_MAX));
          rk.id = id;
        }
        LARDER_TRY(s.string("public_key", rk.public_key));
        if (rk.public_key.empty()) return config_error(key + ".public_key", "is required");
        for (const auto& other : c.gate.root_keys) {
          if (other.id == rk.id) return config_error(key + ".id", "two root keys share this id");
        }
        c.gate.root_keys.push_back(std::move(rk));
      }
    }
    if (c.gate.root_keys.empty())
      return config_error("biscuit.root_keys", "at least one trusted root public key is required");
    LARDER_TRY(biscuit->string("policy_file", c.policy_file));
    c.policy_file = resolve(base_dir, c.policy_file);
    if (!c.policy_file.empty()) LARDER_TRY(require_file("biscuit.policy_file", c.policy_file));
    biscuit::RunLimits& run = c.gate.limits;
    LARDER_TRY(biscuit->integer("max_facts", run.max_facts, 1, 10'000'000));
    LARDER_TRY(biscuit->integer("max_iterations", run.max_iterations, 1, 1'000'000));
    auto max_time_us = std::chrono::duration_cast<std::chrono::microseconds>(run.max_time);
    LARDER_TRY(biscuit->duration("max_time_us", max_time_us, 1, 10'000'000));
    run.max_time = max_time_us;
    LARDER_TRY(biscuit->integer("max_memory_bytes", run.max_memory_bytes, 64 * 1024, int64_t{1} << 34));
    LARDER_TRY(biscuit->integer("verify_cache_entries", c.gate.verify_cache_entries, 0, 10'000'000));
    LARDER_TRY(biscuit->boolean("require_binding", c.gate.require_binding));
    LARDER_TRY(biscuit->boolean("require_expiry", c.gate.require_expiry));
    if (!c.gate.require_binding && !acknowledged("unbound_tokens")) {
      return unacknowledged(
          "biscuit.require_binding", "unbound_tokens",
          "require_binding = false accepts tokens bound to no client certificate: a leaked token "
          "works from any certificate our CA issued");
    }
    if (!c.gate.require_expiry && !acknowledged("tokens_without_expiry")) {
      return unacknowledged(
          "biscuit.require_expiry", "tokens_without_expiry",
          "require_expiry = false accepts tokens that never expire: a leaked token works until "
          "it is revoked");
    }
    return {};
  }

  Result<void> parse_database() {
    // [database]
    auto db = sub("database");
    if (!db) return db.error();
    if (db->find("context_lease_ms")) {
      return config_error(
          "database.context_lease_ms",
          "is no longer a setting: the request context is sealed into each request's own transaction "
          "(docs/database.md, \"The request context\"), so there is no context row to keep between "
          "requests; delete this line");
    }
    LARDER_TRY(db->only(keys_of("database")));
    LARDER_TRY(db->string("mode", c.database_mode));
    LARDER_TRY(db->string("dir", c.database_dir));
    LARDER_TRY(db->string("url", c.database_url));
    LARDER_TRY(db->string("writer_url", c.database_writer_url));
    LARDER_TRY(db->string("ledger_url", c.database_ledger_url));
    LARDER_TRY(db->duration("statement_timeout_ms", c.database.default_timeout, 1, 3'600'000));
    LARDER_TRY(db->boolean("transaction_pooler", c.database.transaction_pooler));
    LARDER_TRY(db->strings("replicas", c.database_replica_urls));
    LARDER_TRY(db->duration("max_replica_lag_ms", c.database.max_replica_lag, 1, 3'600'000));
    LARDER_TRY(db->integer("max_rows", c.db_service.max_rows, 1, 10'000'000));
    LARDER_TRY(db->integer("max_result_bytes", c.db_service.max_result_bytes, 1024, int64_t{1} << 34));
    bool sql_guard = true;
    LARDER_TRY(db->boolean("sql_guard", sql_guard));
    if (!sql_guard) {
      return config_error("database.sql_guard",
                          "the SQL guard cannot be turned off: every query a server runs passes it (lock 3, "
                          "docs/sql-guard.md); remove the key");
    }
    LARDER_TRY(db->number("max_query_cost", c.database.max_query_cost, 0, 1e300));
    c.database_dir = resolve(base_dir, c.database_dir);
    if (c.database_mode != "embedded" && c.database_mode != "url") {
      return config_error("database.mode",
                          "must be \"embedded\" or \"url\" (got \"" + c.database_mode + "\")");
    }
    if (c.database_mode == "url") {
      for (auto [k, v] : {std::pair{"database.url", &c.database_url},
                          std::pair{"database.writer_url", &c.database_writer_url},
                          std::pair{"database.ledger_url", &c.database_ledger_url}}) {
        if (v->empty()) return config_error(k, "is required when database.mode = \"url\"");
      }
    }
    for (std::size_t i = 0; i < c.database_replica_urls.size(); ++i) {
      const std::string key = "database.replicas[" + std::to_string(i) + "]";
      if (c.database_mode != "url")
        return config_error(key,
                            "read replicas need database.mode = \"url\" (the embedded cluster has none)");
      if (auto p = db::ConnParams::parse(c.database_replica_urls[i]); !p)
        return config_error(key, "is not a PostgreSQL URL: " + p.error().message);
      if (c.database_replica_urls[i] == c.database_url)
        return config_error(key, "is database.url itself: list the hot standbys only");
    }
    return {};
  }

  Result<void> parse_tools() {
    // [tools]
    auto tools = sub("tools");
    if (!tools) return tools.error();
    LARDER_TRY(tools->only(keys_of("tools")));
    LARDER_TRY(tools->strings("enabled", c.tools));
    for (std::size_t i = 0; i < c.tools.size(); ++i) {
      LARDER_TRY(require_known_tool("tools.enabled[" + std::to_string(i) + "]", c.tools[i]));
    }
    if (const toml::node* classes = tools->find("classes")) {
      const toml::table* t = classes->as_table();
      if (!t) return config_error("tools.classes", "must be a table of tool = \"class\"");
      for (const auto& [name, value] : *t) {
        std::string key = "tools.classes." + std::string(name.str());
        LARDER_TRY(require_known_tool(key, std::string(name.str())));
        if (!value.is_string()) return config_error(key, "must be a string");
        auto flow = parse_flow(key, value.as_string()->get());
        if (!flow) return flow.error();
        c.tool_classes[std::string(name.str())] = *flow;
      }
    }
    return {};
  }

  Result<void> parse_rls() {
    // [rls]
    auto rls = sub("rls");
    if (!rls) return rls.error();
    LARDER_TRY(rls->only(keys_of("rls")));
    LARDER_TRY(rls->strings("trusted_third_party_keys", c.gate.trusted_third_party_keys));
    return {};
  }

  Result<void> parse_policy() {
    // [policy]
    auto pol = sub("policy");
    if (!pol) return pol.error();
    LARDER_TRY(pol->only(keys_of("policy")));
    LARDER_TRY(pol->string("file", c.policy_path));
    LARDER_TRY(pol->string("example", c.policy_example));
    LARDER_TRY(pol->boolean("allow_drift", c.allow_drift));
    if (!c.policy_path.empty() && !c.policy_example.empty())
      return config_error("policy.example", "give either policy.file or policy.example, not both");
    if (!c.policy_path.empty()) c.policy_path = resolve(base_dir, c.policy_path);
    if (c.allow_drift && !acknowledged("policy_drift")) {
      return unacknowledged(
          "policy.allow_drift", "policy_drift",
          "allow_drift = true serves a database whose privileges or row-level security differ from "
          "the policy file: the agent may see more than the file says");
    }
    return {};
  }

  Result<void> parse_taint() {
    // [taint]
    auto taint = sub("taint");
    if (!taint) return taint.error();
    if (taint->find("revocation_cache_ttl_s")) {
      return config_error(
          "taint.revocation_cache_ttl_s",
          "is no longer a setting: every call now asks the revocation list (in the same round trip "
          "as the taint ledger), so a revocation made through any instance holds on all of them in "
          "the next call; delete this line");
    }
    LARDER_TRY(taint->only(keys_of("taint")));
    LARDER_TRY(taint->boolean("enabled", c.pipeline.taint_enabled));
    return {};
  }

  Result<void> parse_audit() {
    // [audit]
    auto audit = sub("audit");
    if (!audit) return audit.error();
    LARDER_TRY(audit->only(keys_of("audit")));
    gate::AuditOptions& a = c.audit;
    LARDER_TRY(audit->string("path", a.path));
    LARDER_TRY(audit->boolean("fsync", a.log.sync));
    LARDER_TRY(audit->string("anchor_id", a.anchor_id));
    LARDER_TRY(audit->duration("anchor_max_lag_ms", a.anchor_max_lag, 100, 600'000));
    LARDER_TRY(audit->duration("anchor_interval_ms", a.anchor_interval, 0, 60'000));
    if (a.anchor_interval * 2 > a.anchor_max_lag) {
      return config_error("audit.anchor_interval_ms", "must be at most half of audit.anchor_max_lag_ms (" +
                                                          std::to_string(a.anchor_max_lag.count()) + ")");
    }
    // Rotation: 0 (the default) turns a trigger off; retention needs a rotation to act on.
    LARDER_TRY(audit->integer("rotate_bytes", a.log.rotate_bytes, 0, int64_t{1} << 40));
    if (a.log.rotate_bytes > 0 && a.log.rotate_bytes < 4096) {
      return config_error("audit.rotate_bytes",
                          "must be 0 (no rotation by size) or at least 4096 (a record "
                          "takes up to a few kilobytes); e.g. 104857600 for 100 MiB");
    }
    LARDER_TRY(audit->duration("rotate_interval_s", a.log.rotate_interval, 0, 366LL * 86400));
    if (a.log.rotate_interval.count() > 0 && a.log.rotate_interval.count() < 60) {
      return config_error(
          "audit.rotate_interval_s",
          "must be 0 (no rotation by time) or at least 60 seconds; e.g. 86400 for daily files");
    }
    LARDER_TRY(audit->integer("keep_files", a.log.keep_files, 0, 1'000'000));
    auto keep_days = std::chrono::duration_cast<std::chrono::days>(a.log.keep_age);
    LARDER_TRY(audit->duration("keep_days", keep_days, 0, 100LL * 366));
    a.log.keep_age = keep_days;
    if ((a.log.keep_files > 0 || keep_days.count() > 0) && a.log.rotate_bytes == 0 &&
        a.log.rotate_interval.count() == 0) {
      return config_error(
          a.log.keep_files > 0 ? "audit.keep_files" : "audit.keep_days",
          "retention deletes rotated files, and the log is never rotated: set audit.rotate_bytes "
          "or audit.rotate_interval_s too (or delete this line)");
    }
    LARDER_TRY(audit->boolean("syslog", a.syslog));
    LARDER_TRY(audit->string("syslog_socket", a.syslog_socket));
    if (a.syslog_socket.empty() || a.syslog_socket.size() > 107) {
      return config_error("audit.syslog_socket",
                          "must be the path of the syslog daemon's socket (at most 107 "
                          "bytes), e.g. \"/dev/log\"");
    }
    a.path = resolve(base_dir, a.path);
    if (a.path.empty()) return config_error("audit.path", "must not be empty: every decision is logged");
    return {};
  }

  Result<void> parse_limits() {
    // [limits]
    auto limits = sub("limits");
    if (!limits) return limits.error();
    LARDER_TRY(limits->only(keys_of("limits")));
    LARDER_TRY(limits->integer("max_body_bytes", c.limits.max_body_bytes, 1024, 1LL << 30));
    LARDER_TRY(limits->integer("max_header_bytes", c.limits.max_header_bytes, 1024, 1 << 20));
    LARDER_TRY(limits->duration("request_timeout_ms", c.limits.request_timeout, 100, 3'600'000));
    LARDER_TRY(limits->duration("idle_timeout_ms", c.limits.idle_timeout, 100, 3'600'000));
    LARDER_TRY(limits->integer("max_connections", c.limits.max_connections, 1, 1'000'000));
    LARDER_TRY(limits->integer("worker_threads", c.limits.worker_threads, 1, 1024));
    LARDER_TRY(limits->integer("max_sse_streams_per_session", c.transport.max_streams_per_session, 1, 1024));
    LARDER_TRY(limits->duration("handshake_timeout_ms", c.limits.handshake_timeout, 100, 600'000));
    LARDER_TRY(limits->integer("max_handshakes", c.limits.max_handshakes, 1, 1'000'000));
    LARDER_TRY(limits->integer("max_concurrent_calls_per_client", c.transport.client_limits.max_concurrent, 0,
                               1'000'000));
    LARDER_TRY(limits->integer("max_calls_per_second_per_client", c.transport.client_limits.rate_per_second,
                               0, 1'000'000));
    LARDER_TRY(limits->integer("call_burst_per_client", c.transport.client_limits.burst, 1, 1'000'000));
    LARDER_TRY(limits->integer("max_concurrent_calls_per_lineage", c.pipeline.lineage_limits.max_concurrent,
                               0, 1'000'000));
    LARDER_TRY(limits->integer("max_calls_per_second_per_lineage", c.pipeline.lineage_limits.rate_per_second,
                               0, 1'000'000));
    LARDER_TRY(limits->integer("call_burst_per_lineage", c.pipeline.lineage_limits.burst, 1, 1'000'000));
    // Above 256 levels the recursive walks (copy, dump, schema validation) need real stack.
    LARDER_TRY(limits->integer("max_json_depth", c.mcp.max_json_depth, 8, 256));
    LARDER_TRY(limits->integer("max_batch_size", c.mcp.max_batch_size, 1, 1024));
    return {};
  }

  Result<void> parse_compliance() {
    // [compliance]
    auto compliance = sub("compliance");
    if (!compliance) return compliance.error();
    LARDER_TRY(compliance->only(keys_of("compliance")));
    LARDER_TRY(compliance->string("api_url", c.compliance.api_url));
    LARDER_TRY(compliance->duration("api_timeout_ms", c.compliance.api_timeout, 1, 600'000));
    if (!c.compliance.api_url.empty() && c.compliance.api_url.rfind("https://", 0) != 0 &&
        c.compliance.api_url.rfind("http://", 0) != 0) {
      return config_error("compliance.api_url", "must be an http:// or https:// URL");
    }
    return {};
  }

  Result<void> parse_profiles() {
    // [profiles.<name>]
    auto profiles = sub("profiles");
    if (!profiles) return profiles.error();
    if (profiles->table()) {
      for (const auto& [name, node] : *profiles->table()) {
        std::string key = "profiles." + std::string(name.str());
        if (!node.is_table())
          return config_error(key, "must be a table {rights, facts, ttl_s, max_ttl_s, description}");
        Section s(node.as_table(), key);
        LARDER_TRY(s.only(keys_of("profiles.<name>")));
        gate::TokenProfile p;
        p.name = std::string(name.str());
        LARDER_TRY(s.string("description", p.description));
        LARDER_TRY(s.strings("rights", p.rights));
        LARDER_TRY(s.strings("facts", p.facts));
        LARDER_TRY(s.duration("ttl_s", p.ttl, 1, 366LL * 86400));
        LARDER_TRY(s.duration("max_ttl_s", p.max_ttl, 1, 366LL * 86400));
        if (auto valid = gate::validate_profile(p); !valid) return config_error(key, valid.error().message);
        c.profiles.push_back(std::move(p));
      }
    }
    return {};
  }

  Result<void> acknowledgements_in_effect() {
    // An acknowledgement must match a setting in effect: a stale one would silently cover the
    // setting the day it comes back.
    for (auto [what, key, in_effect] :
         {std::tuple{"plain_http", "server.plain_http = true", c.plain_http},
          std::tuple{"unbound_tokens", "biscuit.require_binding = false", !c.gate.require_binding},
          std::tuple{"tokens_without_expiry", "biscuit.require_expiry = false", !c.gate.require_expiry},
          std::tuple{"policy_drift", "policy.allow_drift = true", c.allow_drift}}) {
      if (acknowledged(what) && !in_effect) {
        return config_error(kAck, std::string("acknowledges \"") + what + "\" but the file does not set " +
                                      key + "; remove \"" + what + "\" from the list");
      }
    }
    return {};
  }
};

}  // namespace

Result<ServeConfig> parse_serve_config(std::string_view text, const std::string& base_dir,
                                       const std::string& source_name) {
  toml::table root;
  try {
    root = toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    std::ostringstream msg;
    msg << source_name << ":" << e.source().begin.line << ":" << e.source().begin.column << ": "
        << e.description();
    return make_error("config.syntax", msg.str());
  }
  return ConfigReader(root, base_dir).read();
}

Result<ServeConfig> load_serve_config(const std::string& path) {
  auto text = read_file(path);
  if (!text) {
    if (text.error().code == "file.not_found")
      return make_error("file.not_found", "config file " + path + ": not found (no such file)");
    return make_error("file.unreadable", "config file " + path + ": cannot read it");
  }
  std::string dir = fs::path(path).parent_path().string();
  return parse_serve_config(*text, dir, path);
}

}  // namespace larder::tools
