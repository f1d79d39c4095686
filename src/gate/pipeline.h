// Pipeline: the per-call sequence of locks, the taint rule and the audit record, in the
// order of the request path (docs/ARCHITECTURE.md):
//
//   admit():    lock 1 (a TLS peer is present — the handshake already proved it) →
//               token present → lock 2 (verify, reserved predicates, revocation list) →
//               taint rule for egress tools (lineage in the ledger; the revocation list and
//               the ledger are asked in one round trip, never answered "not revoked" or
//               "not tainted" from memory) → lock 2 (authorize:
//               request facts + policy) → Admission with the RLS context.
//   the tool runs (locks 3 and 4: SQL guard, restricted role, RLS) —
//   complete(): for sensitive reads, record the lineage in the ledger (committed before
//               the result leaves) and attenuate the token with the taint block.
//   refuse():   a later lock (SQL guard, database) refused the call.
//
// While PostgreSQL cannot be reached, the revocation-list and taint-ledger lookups fail and
// the call is refused as lock `database` with db::kUnavailableReason — never let through
// without them, never with the database's address (db/availability.h).
//
// Every outcome is written to the audit log exactly once. Refusals never include rows.
//
// Reload (docs/operations.md, "Reload"): set_gate() swaps the gate (root keys, Datalog policy,
// trusted keys, token requirements) for the calls admitted from then on; a call keeps the gate
// that admitted it (Admission::gate) until complete()/refuse(), so calls in flight finish under
// the configuration they started with. set_lineage_limits() changes the per-lineage limits.
#pragma once

#include "base/call_limiter.h"
#include "base/result.h"
#include "gate/audit_log.h"
#include "gate/gate.h"
#include "gate/taint_ledger.h"

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>

namespace larder::gate {

// Where the call came from and what it asks for.
struct CallRequest {
  std::shared_ptr<const net::PeerIdentity> peer;  // null on plain-HTTP development listeners / stdio
  std::optional<std::string> authorization;       // the Authorization header, if any
  std::optional<std::string> argument_token;      // the seed-compatible `biscuit_token` argument
  CallFacts facts;
  std::string sql_fingerprint;  // when the call carries SQL
  StageTimings timings;         // filled along the path, audited with the decision
  std::string request_id;       // the MCP request's correlation id, audited
  std::string trace_id;         // the caller's W3C trace id, audited
};

struct Admission {
  std::shared_ptr<Gate> gate;  // the gate that admitted the call: complete() uses it too
  CallRequest request;
  std::shared_ptr<const VerifiedToken> token;
  Grant grant;
  bool lineage_tainted = false;  // the ledger already lists this lineage
  // This call's slot among its lineage's calls in flight; freed when the admission goes.
  std::shared_ptr<CallLimiter::Permit> lineage_slot;
};

// A refusal: the lock that decided and why (already audited).
struct Refusal {
  Lock lock;
  std::string reason;
  std::string message() const;  // "refused by lock <name>: <reason>"
};

// What complete() hands back to the tool for its result's _meta.
struct Completion {
  std::optional<std::string> attenuated_token;  // set when this call tainted the token
  std::string taint_state;                      // "clean", "tainted", "tainted-now"
};

struct PipelineOptions {
  bool require_peer = true;  // false only on a plain-HTTP loopback development listener
  bool taint_enabled = true;
  // Per token lineage (every token derived from one authority block): calls in flight and
  // calls per second. A lineage over either is refused as lock "limits" before any ledger
  // lookup or Datalog runs. Zeroes = no limit.
  CallLimiter::Options lineage_limits;
  // The wall clock tokens are authorized at (their expiry, time checks); empty:
  // system_clock::now. Tests set their own instead of waiting for a token to expire.
  std::function<std::chrono::system_clock::time_point()> clock;
};

class Pipeline {
 public:
  // `ledger` may be null only when taint is disabled (then egress is refused for every
  // token that carries the taint block, and nothing is recorded). In production `ledger` is
  // the TaintLedger and `audit` the AuditLog; the unit tests give ones that fail.
  Pipeline(std::shared_ptr<Gate> gate, LedgerPort* ledger, AuditSink& audit, PipelineOptions options);

  // Runs the locks before the tool. On refusal the decision is audited.
  std::variant<Admission, Refusal> admit(CallRequest request);

  // After the tool succeeded with `rows` rows (nullopt when it returns no rows); the
  // caller puts the tool body's time in admission.request.timings.tool_us.
  // For a sensitive read: records the lineage (fails closed: a refusal here means the result
  // must not be sent — lock database when the ledger cannot be reached) and returns the
  // attenuated token. Audits the allow decision.
  std::variant<Completion, Refusal> complete(const Admission& admission, std::optional<int64_t> rows);

  // A lock after admission (SQL guard, database) refused; audits and returns the refusal.
  // `data_reached`: the call's SQL was sent to the database before it failed (a runtime error,
  // a cancel, a cap): it ran against the data, so for a sensitive read the lineage is tainted
  // exactly as if it had succeeded — what came back is not what decides (finding 1).
  Refusal refuse(const Admission& admission, Lock lock, std::string reason, bool data_reached = false);

  // The gate new calls are admitted by (a snapshot: a reload may swap it at any time).
  std::shared_ptr<Gate> gate() const;
  // From now on, calls are admitted by `gate` (non-null; same audience). Atomic for callers:
  // every call sees either the old gate or the new one for its whole life.
  void set_gate(std::shared_ptr<Gate> gate);
  void set_lineage_limits(const CallLimiter::Options& limits) { lineage_limiter_.reconfigure(limits); }
  CallLimiter::Stats lineage_limit_stats() const { return lineage_limiter_.stats(); }

 private:
  Refusal deny(const CallRequest& request, const VerifiedToken* token, Lock lock, std::string reason,
               std::string taint = "unknown");
  void report_audit_failure(const Error& error) const;
  // Records the lineage of an admitted sensitive read in the ledger; false when it could not.
  Result<void> record_taint(const Admission& admission);
  AuditRecord record_for(const CallRequest& request, const VerifiedToken* token) const;

  mutable std::mutex gate_mu_;
  std::shared_ptr<Gate> gate_;  // guarded by gate_mu_
  const std::string audience_;  // the server's (restart-only)
  LedgerPort* ledger_;
  AuditSink& audit_;
  PipelineOptions options_;
  CallLimiter lineage_limiter_;
};

}  // namespace larder::gate
