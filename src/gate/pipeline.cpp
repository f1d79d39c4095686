#include "gate/pipeline.h"

#include "gate/reasons.h"

#include <spdlog/spdlog.h>

#include <chrono>

namespace larder::gate {
using SteadyClock = std::chrono::steady_clock;

std::string Refusal::message() const {
  return std::string("refused by lock ") + lock_name(lock) + ": " + reason;
}

Pipeline::Pipeline(std::shared_ptr<Gate> gate, LedgerPort* ledger, AuditSink& audit, PipelineOptions options)
    : gate_(std::move(gate)),
      audience_(gate_->options().audience),
      ledger_(ledger),
      audit_(audit),
      options_(options),
      lineage_limiter_(options.lineage_limits) {}

std::shared_ptr<Gate> Pipeline::gate() const {
  std::lock_guard lock(gate_mu_);
  return gate_;
}

void Pipeline::set_gate(std::shared_ptr<Gate> gate) {
  if (!gate) return;
  std::lock_guard lock(gate_mu_);
  gate_ = std::move(gate);
}

AuditRecord Pipeline::record_for(const CallRequest& request, const VerifiedToken* token) const {
  AuditRecord r;
  if (request.peer) {
    r.client_cert_sha256 = request.peer->cert_sha256;
    r.client_cert_cn = request.peer->cn;
  }
  if (token) {
    r.lineage = token->lineage;
    r.revocation_ids = token->revocation_ids;
  }
  r.server_audience = audience_;
  r.method = request.facts.method;
  r.tool = request.facts.name;
  r.sql_fingerprint = request.sql_fingerprint;
  r.timings = request.timings;
  r.request_id = request.request_id;
  r.trace_id = request.trace_id;
  return r;
}

Refusal Pipeline::deny(const CallRequest& request, const VerifiedToken* token, Lock lock, std::string reason,
                       std::string taint) {
  AuditRecord r = record_for(request, token);
  r.decision = "deny";
  r.lock = lock_name(lock);
  r.reason = reason;
  r.taint = std::move(taint);
  // The refusal stands either way; the operator hears that the log failed.
  if (auto a = audit_.append(std::move(r)); !a) report_audit_failure(a.error());
  return Refusal{lock, std::move(reason)};
}

// Once per outage when the append failed because PostgreSQL (the anchor's home) is down,
// which the outage's own line already says; every time otherwise.
void Pipeline::report_audit_failure(const Error& error) const {
  if (!(error.code == "audit.anchor" && ledger_ && ledger_->database_down())) {
    spdlog::error("audit log append failed: {}", error.message);
  }
}

std::variant<Admission, Refusal> Pipeline::admit(CallRequest request) {
  // Lock 1: the TLS handshake already refused clients without a certificate from our CA;
  // here we only insist that the call did come over such a connection.
  if (options_.require_peer && !request.peer) {
    return deny(request, nullptr, Lock::kMtls, "no client certificate on this connection");
  }

  // The token: the Authorization header (MCP-standard) wins over the seed-compatible argument.
  std::optional<std::string> token_text = bearer_token(request.authorization);
  if (!token_text && request.authorization) {
    return deny(request, nullptr, Lock::kBiscuit, "the Authorization header is not a Bearer token");
  }
  if (!token_text && request.argument_token && !request.argument_token->empty())
    token_text = request.argument_token;
  if (!token_text) {
    return deny(request, nullptr, Lock::kBiscuit,
                "no Biscuit token: send `Authorization: Bearer <token>` or the biscuit_token argument");
  }

  // Lock 2a: signature, root key, reserved predicates — by the gate of this moment, kept for
  // the whole call.
  std::shared_ptr<Gate> gate = this->gate();
  auto started = SteadyClock::now();
  auto verified = gate->verify(*token_text);
  request.timings.verify_us = micros_since(started);
  if (!verified) return deny(request, nullptr, Lock::kBiscuit, verified.error().message);
  const VerifiedToken& token = **verified;

  Admission admission;
  admission.gate = gate;
  admission.token = *verified;

  // The lineage's share of the server: cheap, so before the ledger and Datalog.
  if (lineage_limiter_.enabled()) {
    auto slot = lineage_limiter_.try_acquire(token.lineage);
    if (!slot)
      return deny(request, &token, Lock::kLimits, lineage_limiter_.describe(slot, "this token's lineage"));
    admission.lineage_slot = std::make_shared<CallLimiter::Permit>(std::move(slot));
  }

  if (ledger_) {
    started = SteadyClock::now();
    // Both lists live in PostgreSQL and are asked in one round trip, every call: a revocation
    // or a taint recorded through any instance holds here in the very next call (only a taint
    // this instance already knows of is answered from memory: taint only grows). Without an
    // answer the call is refused (fail closed), as the database's outage it is; the details
    // are for the log (the ledger reports them).
    auto check = ledger_->check_call(token.revocation_ids, options_.taint_enabled
                                                               ? std::optional<std::string>(token.lineage)
                                                               : std::nullopt);
    request.timings.ledger_us = micros_since(started);
    if (!check) {
      spdlog::debug("revocation list and taint ledger lookup failed: {}", check.error().message);
      return deny(request, &token, Lock::kDatabase, db::kUnavailableReason);
    }
    if (check->revoked) return deny(request, &token, Lock::kBiscuit, revoked_reason(*check->revoked));
    if (options_.taint_enabled) {
      admission.lineage_tainted = check->tainted;
      if (check->tainted && request.facts.flow == DataFlow::kEgress) {
        return deny(request, &token, Lock::kTaint, tainted_lineage_reason(request.facts.name));
      }
    }
  }

  // Lock 2b: authorization with the server's facts and the policy.
  started = SteadyClock::now();
  const auto now = options_.clock ? options_.clock() : std::chrono::system_clock::now();
  auto decision = gate->authorize(token, request.peer.get(), request.facts, now, &admission.grant);
  request.timings.authorize_us = micros_since(started);
  if (!decision.allowed) return deny(request, &token, decision.lock, decision.reason);

  admission.request = std::move(request);
  return admission;
}

std::variant<Completion, Refusal> Pipeline::complete(const Admission& admission,
                                                     std::optional<int64_t> rows) {
  Completion completion;
  StageTimings timings = admission.request.timings;
  completion.taint_state = admission.lineage_tainted ? "tainted" : "clean";
  const VerifiedToken& token = *admission.token;
  if (options_.taint_enabled && admission.request.facts.flow == DataFlow::kSensitiveRead) {
    auto started = SteadyClock::now();
    auto marked = record_taint(admission);
    if (!marked) {
      // The ledger is in PostgreSQL: the result is withheld, as the database's refusal.
      return refuse(admission, Lock::kDatabase, db::kUnavailableReason);
    }
    // A token that already carries the taint block is handed back unchanged (no second
    // block: an agent that keeps switching to the returned token must not see it grow).
    if (!token.carries_taint_block) {
      auto attenuated = admission.gate->attenuate_tainted(token);
      if (!attenuated) return refuse(admission, Lock::kTaint, attenuated.error().message);
      completion.attenuated_token = std::move(*attenuated);
    }
    timings.taint_us = micros_since(started);
    completion.taint_state = admission.lineage_tainted ? "tainted" : "tainted-now";
  }
  AuditRecord r = record_for(admission.request, &token);
  r.rows = rows;
  r.decision = "allow";
  r.lock = "";
  r.reason = "allowed by policy #" + std::to_string(admission.grant.policy_index);
  r.taint = completion.taint_state;
  r.timings = timings;
  if (auto a = audit_.append(std::move(r)); !a) {
    // Fail closed: a decision that cannot be recorded is not carried out (and cannot be
    // audited either: the refusal is the caller's to send). Its cause stays in the server's log.
    report_audit_failure(a.error());
    return Refusal{Lock::kTaint, kAuditUnavailableReason};
  }
  return completion;
}

Result<void> Pipeline::record_taint(const Admission& admission) {
  if (!ledger_) return make_error("taint", "taint is enabled but no ledger is configured");
  const std::string cert = admission.request.peer ? admission.request.peer->cert_sha256 : std::string();
  const VerifiedToken& token = *admission.token;
  return ledger_->mark_tainted(token.lineage, token.expires_at, admission.request.facts.name, cert);
}

Refusal Pipeline::refuse(const Admission& admission, Lock lock, std::string reason, bool data_reached) {
  std::string taint = admission.lineage_tainted ? "tainted" : "clean";
  if (data_reached && options_.taint_enabled && admission.request.facts.flow == DataFlow::kSensitiveRead) {
    if (auto marked = record_taint(admission); marked) {
      taint = admission.lineage_tainted ? "tainted" : "tainted-now";
    } else {
      taint = "unknown";
      reason +=
          "; and the taint of this read could not be recorded (" + std::string(db::kUnavailableReason) + ")";
      spdlog::error("taint ledger: a failed sensitive read could not be recorded: {}",
                    marked.error().message);
    }
  }
  return deny(admission.request, admission.token.get(), lock, std::move(reason), std::move(taint));
}

}  // namespace larder::gate
