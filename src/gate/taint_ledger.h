// TaintLedger: the lineages that have read sensitive data, and the revoked token ids, kept
// in PostgreSQL so they survive restarts and are shared by every server instance pointing
// at the same database.
//
// A token's lineage is the hex revocation id of its authority block: every token derived
// from it by attenuation (including the taint block the server appends) shares it. So
// keeping a pre-taint copy of a token does not help — the lineage is what egress tools
// refuse.
//
// Tables live in schema `larder_gate`, which the query role cannot see. The ledger connects
// as a role that may only read and write these two tables (see apply_gate_setup()).
// Every failure is reported, and callers fail closed: a sensitive read is not answered if
// its taint could not be recorded, and an egress call is refused if the ledger cannot be read.
#pragma once

#include "base/result.h"
#include "db/availability.h"
#include "db/connection.h"
#include "gate/audit_log.h"

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace larder::gate {

inline constexpr const char* kGateRole = "larder_gate";

// A revocation id as the ledger stores it: the lower-case hex of a block's signature, 64 bytes
// for Ed25519 and up to 72 (DER) for P-256. Anything else — not hex, an odd number of digits,
// too short or too long — is refused with a sentence saying what a revocation id looks like;
// upper case is folded to lower case, so ids match whatever case they were typed in.
Result<std::string> normalize_revocation_id(std::string_view text);

// Creates schema larder_gate, its tables and the login role `larder_gate` (with `password`
// when given), idempotently. `admin` must be a superuser connection to the application database.
Result<void> apply_gate_setup(const db::ConnParams& admin, const std::optional<std::string>& password);

// What gate::Pipeline asks of the ledger on every call: the revocation list and the taint
// ledger in one round trip, the taint of a sensitive read, and whether PostgreSQL is known to
// be down. TaintLedger (PostgreSQL) is the one production implementation; the pipeline's unit
// tests stand in for it with ledgers that fail in the ways a real database cannot be made to
// on demand.
class LedgerPort {
 public:
  // See TaintLedger::check_call.
  struct CallCheck {
    std::optional<std::string> revoked;  // the first revoked id, in the order of `ids`
    bool tainted = false;                // false too when no lineage was asked about
  };

  virtual ~LedgerPort() = default;
  virtual Result<CallCheck> check_call(const std::vector<std::string>& ids,
                                       const std::optional<std::string>& lineage) = 0;
  virtual Result<void> mark_tainted(const std::string& lineage,
                                    std::optional<std::chrono::system_clock::time_point> expires_at,
                                    const std::string& tool, const std::string& client_cert_sha256) = 0;
  virtual bool database_down() const = 0;
};

class TaintLedger final : public LedgerPort {
 public:
  struct Options {
    std::size_t max_connections = 4;
    std::chrono::milliseconds timeout{5000};
    // Where an unreachable database, and its return, are reported (logged once per outage).
    std::shared_ptr<db::Availability> availability;
    // The wall clock the remembered taints expire by (empty: system_clock::now); tests set
    // their own. The database's entries expire by PostgreSQL's now().
    std::function<std::chrono::system_clock::time_point()> clock;
  };

  TaintLedger(db::ConnParams params, Options options);
  ~TaintLedger();
  TaintLedger(const TaintLedger&) = delete;
  TaintLedger& operator=(const TaintLedger&) = delete;

  // Records that `lineage` read sensitive data. Committed before returning. `expires_at`
  // is the token's own expiry (nullopt: the entry never expires).
  Result<void> mark_tainted(const std::string& lineage,
                            std::optional<std::chrono::system_clock::time_point> expires_at,
                            const std::string& tool, const std::string& client_cert_sha256) override;

  // True when `lineage` has an unexpired entry.
  Result<bool> is_tainted(const std::string& lineage);

  // Taint only grows until an entry expires, so this instance remembers the lineages it has
  // seen tainted (recorded or read) with the expiry it knows: a known taint is answered and
  // a repeated mark is skipped without a round trip. An untainted answer is never cached —
  // another server may taint the lineage at any moment.
  static constexpr std::size_t kKnownTaintedMax = 65536;

  // Adds a revocation id (normalize_revocation_id: validated, lower-cased). Idempotent.
  Result<void> revoke(const std::string& revocation_id, const std::string& reason);

  // What one call needs from the ledger, in one round trip: the first of `ids` that is
  // revoked, and whether `lineage` (when given) is tainted. Revocations are never answered
  // from memory — a revocation made through any instance holds on every instance in the
  // very next call; a taint this instance knows of is (taint only grows), and then only the
  // revocation list is asked. Every statement is a single unnamed one in its own implicit
  // transaction, with no session state: correct through PgBouncer in transaction mode.
  Result<CallCheck> check_call(const std::vector<std::string>& ids,
                               const std::optional<std::string>& lineage) override;

  // The first of `ids` that is revoked, if any (check_call without a lineage).
  Result<std::optional<std::string>> first_revoked(const std::vector<std::string>& ids);

  // The audit log's anchor (AuditLog::set_anchor, verify_audit_log): the newest (seq, hash)
  // of the log `log_id`, in larder_gate.audit_anchors. A lower seq never replaces a higher one.
  Result<void> anchor_audit(const std::string& log_id, uint64_t seq, const std::string& hash);
  Result<std::optional<AuditAnchorPoint>> audit_anchor(const std::string& log_id);

  // True while the configured db::Availability says PostgreSQL is unreachable.
  bool database_down() const override { return options_.availability && options_.availability->down(); }

  // Deletes expired taint entries; returns how many.
  Result<int64_t> purge_expired();

  // What this instance asked and wrote, for metrics.
  struct Stats {
    uint64_t lookups = 0;           // taint and revocation lookups (check_call, is_tainted)
    uint64_t known_taint = 0;       // taint lookups answered from what this instance knows
    uint64_t marks = 0;             // taint entries written (mark_tainted, not skipped)
    uint64_t round_trips = 0;       // statements sent
    uint64_t failures = 0;          // statements that failed (unreachable, or an error)
    std::size_t known_tainted = 0;  // lineages this instance knows are tainted
  };
  Stats stats() const;
  // The ledger's size, in one statement: unexpired taint entries and revocations.
  struct Counts {
    int64_t tainted_lineages = 0;
    int64_t revocations = 0;
  };
  Result<Counts> counts();

 private:
  Result<db::PgConn> take(db::Clock::time_point deadline);
  void give_back(db::PgConn conn);
  Result<db::PgResult> exec(const char* sql, const std::vector<db::Param>& params);

  db::ConnParams params_;
  Options options_;
  std::mutex mu_;
  std::vector<db::PgConn> idle_;

  using Expiry = std::optional<std::chrono::system_clock::time_point>;  // nullopt: never
  // Known tainted now; with `covering`, also recorded with an expiry at least that late.
  bool known_tainted(const std::string& lineage, const Expiry* covering);
  void remember_tainted(const std::string& lineage, const Expiry& expiry);
  mutable std::mutex taint_mu_;
  std::unordered_map<std::string, Expiry> known_tainted_;
  std::atomic<uint64_t> lookups_{0}, known_taint_{0}, marks_{0}, round_trips_{0}, failures_{0};
};

}  // namespace larder::gate
