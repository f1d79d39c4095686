#include "gate/taint_ledger.h"

#include "base/time.h"

#include <libpq-fe.h>

#include <algorithm>
#include <string_view>

namespace larder::gate {
namespace {

constexpr const char* kSetupSql = R"sql(
CREATE SCHEMA IF NOT EXISTS larder_gate;
REVOKE ALL ON SCHEMA larder_gate FROM PUBLIC;
CREATE TABLE IF NOT EXISTS larder_gate.taint_ledger (
  lineage            text PRIMARY KEY,
  tainted_at         timestamptz NOT NULL DEFAULT now(),
  expires_at         timestamptz,
  first_tool         text NOT NULL,
  client_cert_sha256 text NOT NULL
);
CREATE INDEX IF NOT EXISTS taint_ledger_expires_at ON larder_gate.taint_ledger (expires_at);
CREATE TABLE IF NOT EXISTS larder_gate.revocations (
  revocation_id text PRIMARY KEY,
  revoked_at    timestamptz NOT NULL DEFAULT now(),
  reason        text NOT NULL
);
CREATE TABLE IF NOT EXISTS larder_gate.audit_anchors (
  log_id     text PRIMARY KEY,
  seq        bigint NOT NULL,
  hash       text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
-- Ids stored before they were normalised (upper case never matched a token): folded to
-- lower case, so every revocation made so far takes effect.
INSERT INTO larder_gate.revocations (revocation_id, revoked_at, reason)
  SELECT lower(revocation_id), revoked_at, reason FROM larder_gate.revocations WHERE revocation_id <> lower(revocation_id)
  ON CONFLICT (revocation_id) DO NOTHING;
DELETE FROM larder_gate.revocations WHERE revocation_id <> lower(revocation_id);
REVOKE ALL ON ALL TABLES IN SCHEMA larder_gate FROM PUBLIC;
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'larder_gate') THEN
    CREATE ROLE larder_gate LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOBYPASSRLS;
  END IF;
END $$;
DO $$
BEGIN
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO larder_gate', current_database());
END $$;
GRANT USAGE ON SCHEMA larder_gate TO larder_gate;
GRANT SELECT, INSERT, UPDATE, DELETE ON larder_gate.taint_ledger TO larder_gate;
GRANT SELECT, INSERT ON larder_gate.revocations TO larder_gate;
GRANT SELECT, INSERT, UPDATE ON larder_gate.audit_anchors TO larder_gate;
)sql";

}  // namespace

Result<void> apply_gate_setup(const db::ConnParams& admin, const std::optional<std::string>& password) {
  auto deadline = db::Clock::now() + std::chrono::seconds(30);
  auto conn = admin.connect(deadline);
  if (!conn) return conn.error();
  auto script = db::exec_script(conn->get(), kSetupSql, deadline);
  if (!script) return script.error();
  if (password) {
    // The password travels as a parameter to format(), which quotes it as a literal.
    auto r = db::exec_params(conn->get(), "SELECT format('ALTER ROLE larder_gate PASSWORD %L', $1::text)",
                             {*password}, deadline);
    if (!r) return r.error();
    std::string alter = PQgetvalue(r->get(), 0, 0);
    auto applied = db::exec_script(conn->get(), alter, deadline);
    if (!applied) return applied.error();
  }
  return {};
}

Result<std::string> normalize_revocation_id(std::string_view text) {
  constexpr std::size_t kMinBytes = 32, kMaxBytes = 72;
  auto refuse = [&](const std::string& why) -> Result<std::string> {
    std::string shown(text.substr(0, 32));
    if (text.size() > 32) shown += "…";
    return make_error(
        "taint.bad_revocation_id",
        "'" + shown + "' is not a revocation id: " + why +
            " (a revocation id is the hex of a token block's signature, as `larder biscuit inspect` "
            "prints it: 128 hex digits for Ed25519, up to 144 for P-256)");
  };
  std::string id;
  id.reserve(text.size());
  for (char c : text) {
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return refuse("it has characters other than hex digits");
    id.push_back(c);
  }
  if (id.size() % 2 != 0) return refuse("it has an odd number of hex digits");
  if (id.size() < 2 * kMinBytes) return refuse("it is too short");
  if (id.size() > 2 * kMaxBytes) return refuse("it is too long");
  return id;
}

TaintLedger::TaintLedger(db::ConnParams params, Options options)
    : params_(std::move(params)), options_(options) {}

TaintLedger::~TaintLedger() = default;

Result<db::PgConn> TaintLedger::take(db::Clock::time_point deadline) {
  {
    std::lock_guard lock(mu_);
    while (!idle_.empty()) {
      db::PgConn conn = std::move(idle_.back());
      idle_.pop_back();
      if (!db::connection_broken(conn.get())) return conn;
    }
  }
  return params_.connect(deadline);
}

void TaintLedger::give_back(db::PgConn conn) {
  if (!conn || db::connection_broken(conn.get())) return;
  std::lock_guard lock(mu_);
  if (idle_.size() < options_.max_connections) idle_.push_back(std::move(conn));
}

Result<db::PgResult> TaintLedger::exec(const char* sql, const std::vector<db::Param>& params) {
  auto deadline = db::Clock::now() + options_.timeout;
  // One retry on a fresh connection: an idle connection may have died with a server restart.
  for (int attempt = 0; attempt < 2; ++attempt) {
    round_trips_.fetch_add(1, std::memory_order_relaxed);
    auto conn = take(deadline);
    if (!conn) {
      failures_.fetch_add(1, std::memory_order_relaxed);
      auto e = make_error("taint.ledger_unavailable", "taint ledger unreachable: " + conn.error().message);
      if (options_.availability) options_.availability->failed(e);
      return e;
    }
    auto result = db::exec_params(conn->get(), sql, params, deadline);
    if (result) {
      give_back(std::move(*conn));
      if (options_.availability) options_.availability->succeeded();
      return result;
    }
    bool broken = db::connection_broken(conn->get());
    failures_.fetch_add(1, std::memory_order_relaxed);
    if (!broken || attempt == 1) {
      auto e = make_error("taint.ledger_unavailable", "taint ledger query failed: " + result.error().message);
      if (broken && options_.availability) options_.availability->failed(e);
      return e;
    }
  }
  return make_error("taint.ledger_unavailable", "taint ledger unreachable");
}

bool TaintLedger::known_tainted(const std::string& lineage, const Expiry* covering) {
  std::lock_guard lock(taint_mu_);
  auto it = known_tainted_.find(lineage);
  if (it == known_tainted_.end()) return false;
  const Expiry& known = it->second;
  if (known && *known <= (options_.clock ? options_.clock() : std::chrono::system_clock::now())) {
    known_tainted_.erase(it);
    return false;
  }
  if (covering == nullptr || !known) return true;
  return covering->has_value() && **covering <= *known;
}

void TaintLedger::remember_tainted(const std::string& lineage, const Expiry& expiry) {
  std::lock_guard lock(taint_mu_);
  if (known_tainted_.size() >= kKnownTaintedMax) known_tainted_.clear();
  auto [it, inserted] = known_tainted_.try_emplace(lineage, expiry);
  if (!inserted && it->second && (!expiry || *expiry > *it->second)) it->second = expiry;
}

Result<void> TaintLedger::mark_tainted(const std::string& lineage,
                                       std::optional<std::chrono::system_clock::time_point> expires_at,
                                       const std::string& tool, const std::string& client_cert_sha256) {
  // Already recorded by this instance with an expiry at least as late: nothing to add.
  if (known_tainted(lineage, &expires_at)) return {};
  db::Param expiry = expires_at ? db::Param(rfc3339_utc(*expires_at)) : db::Param(std::nullopt);
  // A lineage stays tainted for the longest of its recorded expiries; NULL (never) wins.
  auto r = exec(
      "INSERT INTO larder_gate.taint_ledger (lineage, expires_at, first_tool, client_cert_sha256) "
      "VALUES ($1, $2::timestamptz, $3, $4) "
      "ON CONFLICT (lineage) DO UPDATE SET expires_at = CASE "
      "  WHEN larder_gate.taint_ledger.expires_at IS NULL OR EXCLUDED.expires_at IS NULL THEN NULL "
      "  ELSE greatest(larder_gate.taint_ledger.expires_at, EXCLUDED.expires_at) END",
      {lineage, expiry, tool, client_cert_sha256});
  if (!r) return r.error();
  marks_.fetch_add(1, std::memory_order_relaxed);
  remember_tainted(lineage, expires_at);
  return {};
}

Result<bool> TaintLedger::is_tainted(const std::string& lineage) {
  lookups_.fetch_add(1, std::memory_order_relaxed);
  if (known_tainted(lineage, nullptr)) {
    known_taint_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  auto r = exec(
      "SELECT (extract(epoch FROM expires_at) * 1000000)::int8 FROM larder_gate.taint_ledger "
      "WHERE lineage = $1 AND (expires_at IS NULL OR expires_at > now())",
      {lineage});
  if (!r) return r.error();
  if (PQntuples(r->get()) == 0) return false;
  Expiry expiry;
  if (!PQgetisnull(r->get(), 0, 0)) {
    expiry = std::chrono::system_clock::time_point(
        std::chrono::microseconds(std::stoll(PQgetvalue(r->get(), 0, 0))));
  }
  remember_tainted(lineage, expiry);
  return true;
}

Result<void> TaintLedger::revoke(const std::string& revocation_id, const std::string& reason) {
  auto id = normalize_revocation_id(revocation_id);
  if (!id) return id.error();
  auto r = exec(
      "INSERT INTO larder_gate.revocations (revocation_id, reason) VALUES ($1, $2) "
      "ON CONFLICT (revocation_id) DO NOTHING",
      {*id, reason});
  if (!r) return r.error();
  return {};
}

Result<TaintLedger::CallCheck> TaintLedger::check_call(const std::vector<std::string>& ids,
                                                       const std::optional<std::string>& lineage) {
  CallCheck check;
  lookups_.fetch_add(1, std::memory_order_relaxed);
  // A lineage known to be tainted needs no taint lookup; the revocation list is asked anyway.
  const bool ask_taint = lineage && !known_tainted(*lineage, nullptr);
  if (lineage && !ask_taint) {
    check.tainted = true;
    known_taint_.fetch_add(1, std::memory_order_relaxed);
  }
  // Rows only for what is found — the revoked ids among `ids`, and (when asked) the lineage's
  // live taint entry — so a clean call reads no row. The ids are parameters, one each (a token
  // has a handful of blocks); only their count shapes the text.
  std::string sql =
      "SELECT false, revocation_id, NULL::int8 FROM larder_gate.revocations WHERE revocation_id IN (";
  std::vector<db::Param> params;
  params.reserve(ids.size() + 1);
  if (ask_taint) params.push_back(*lineage);
  for (const auto& id : ids) {
    if (params.size() > (ask_taint ? 1u : 0u)) sql += ", ";
    params.push_back(id);
    sql += "$" + std::to_string(params.size());
  }
  if (ids.empty()) sql += "NULL";
  sql += ")";
  if (ask_taint) {
    sql +=
        " UNION ALL SELECT true, NULL, (extract(epoch FROM expires_at) * 1000000)::int8 FROM "
        "larder_gate.taint_ledger WHERE lineage = $1 AND (expires_at IS NULL OR expires_at > now())";
  }
  auto r = exec(sql.c_str(), params);
  if (!r) return r.error();
  std::vector<std::string> revoked;
  for (int row = 0; row < PQntuples(r->get()); ++row) {
    if (std::string_view(PQgetvalue(r->get(), row, 0)) == "f") {
      revoked.emplace_back(PQgetvalue(r->get(), row, 1));
    } else if (ask_taint) {
      Expiry expiry;
      if (!PQgetisnull(r->get(), row, 2)) {
        expiry = std::chrono::system_clock::time_point(
            std::chrono::microseconds(std::stoll(PQgetvalue(r->get(), row, 2))));
      }
      remember_tainted(*lineage, expiry);
      check.tainted = true;
    }
  }
  // The first revoked id in the token's order (authority block first).
  for (const auto& id : ids) {
    if (std::find(revoked.begin(), revoked.end(), id) != revoked.end()) {
      check.revoked = id;
      break;
    }
  }
  return check;
}

Result<std::optional<std::string>> TaintLedger::first_revoked(const std::vector<std::string>& ids) {
  auto check = check_call(ids, std::nullopt);
  if (!check) return check.error();
  return check->revoked;
}

Result<void> TaintLedger::anchor_audit(const std::string& log_id, uint64_t seq, const std::string& hash) {
  auto r = exec(
      "INSERT INTO larder_gate.audit_anchors (log_id, seq, hash) VALUES ($1, $2::int8, $3) "
      "ON CONFLICT (log_id) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash, updated_at = now() "
      "WHERE larder_gate.audit_anchors.seq < EXCLUDED.seq",
      {log_id, std::to_string(seq), hash});
  if (!r) return r.error();
  return {};
}

Result<std::optional<AuditAnchorPoint>> TaintLedger::audit_anchor(const std::string& log_id) {
  auto r = exec("SELECT seq, hash FROM larder_gate.audit_anchors WHERE log_id = $1", {log_id});
  if (!r) return r.error();
  if (PQntuples(r->get()) == 0) return std::optional<AuditAnchorPoint>();
  return std::optional<AuditAnchorPoint>(AuditAnchorPoint{
      static_cast<uint64_t>(std::stoull(PQgetvalue(r->get(), 0, 0))), PQgetvalue(r->get(), 0, 1)});
}

Result<int64_t> TaintLedger::purge_expired() {
  auto r =
      exec("DELETE FROM larder_gate.taint_ledger WHERE expires_at IS NOT NULL AND expires_at <= now()", {});
  if (!r) return r.error();
  return static_cast<int64_t>(std::stoll(PQcmdTuples(r->get())));
}

TaintLedger::Stats TaintLedger::stats() const {
  Stats s;
  s.lookups = lookups_.load(std::memory_order_relaxed);
  s.known_taint = known_taint_.load(std::memory_order_relaxed);
  s.marks = marks_.load(std::memory_order_relaxed);
  s.round_trips = round_trips_.load(std::memory_order_relaxed);
  s.failures = failures_.load(std::memory_order_relaxed);
  std::lock_guard lock(taint_mu_);
  s.known_tainted = known_tainted_.size();
  return s;
}

Result<TaintLedger::Counts> TaintLedger::counts() {
  auto r = exec(
      "SELECT (SELECT count(*) FROM larder_gate.taint_ledger WHERE expires_at IS NULL OR expires_at > "
      "now()), "
      "(SELECT count(*) FROM larder_gate.revocations)",
      {});
  if (!r) return r.error();
  Counts c;
  c.tainted_lineages = std::stoll(PQgetvalue(r->get(), 0, 0));
  c.revocations = std::stoll(PQgetvalue(r->get(), 0, 1));
  return c;
}

}  // namespace larder::gate
