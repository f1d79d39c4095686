#!/usr/bin/env bash
# `larder demo --example saas` end to end, twice against one state directory, with --once:
#  1. a fresh state directory: `larder db init --example saas`, certificates, the servers with
#     [policy] example = "saas" and the compliance API stand-in as separate processes (no
#     recorded-response model: the example has no recorded answers), the three tokens, every
#     scenario — each of the saas demo's own by name — all stopped after;
#  2. again on the same state (the cluster restarted, the ledger and the compliance API's
#     record kept from the first run): every scenario again;
# and the default example on that state directory is refused in words.
# Always stops what it started.
set -uo pipefail
larder=$(realpath "$1")
dir=$(mktemp -d /tmp/larder-demo-saas-test.XXXXXX)
chmod 711 "$dir"
state=$dir/state
cleanup() {
  for f in "$state"/*.pid; do [[ -f $f ]] && kill "$(cat "$f")" 2>/dev/null; done
  "$larder" db --state-dir "$state" stop >/dev/null 2>&1
  rm -rf "$dir"
}
trap cleanup EXIT
fail() {
  echo "FAILED: $*"
  exit 1
}
cd "$dir" || exit 1
unset ANTHROPIC_API_KEY OPENAI_API_KEY LARDER_PROVIDER LARDER_BASE_URL LARDER_MODEL

# The saas demo's own scenarios, each of which must be printed and pass.
scenarios=(
  "Acme's admin: customers"
  "Acme's admin: invoices"
  "Acme's admin: invoice lines"
  "Globex's user asks for Acme's invoice 1"
  "Acme's admin reads a customer's email: masked"
  "the support engineer (unmask:customers.email): email in clear"
  "declared tool unpaid_invoices (Acme's admin, right(\"unpaid_invoices\"))"
  "unpaid_invoices without its right (Globex's user)"
  "hostile SQL: the base table behind the mask"
  "the hidden column internal_notes"
  "taint: a read of the public catalogue only"
  "taint: the same token → compliance check"
  "taint: a sensitive read"
  "taint: tainted token → compliance check"
  "taint: the pre-taint copy → compliance check"
  "taint: what reached the external compliance API"
  "no client certificate"
  "tampered token"
  "revoked token"
  "audit log verifies"
)

for run in 1 2; do
  "$larder" demo --example saas --once --no-color --rows 2000 --dir "$state" | tee "$dir/out$run.txt"
  rc=${PIPESTATUS[0]}
  out=$dir/out$run.txt
  grep -q "scenarios: [0-9]* passed, 0 failed" "$out" || fail "run $run did not pass every scenario"
  grep -q "FAIL" "$out" && fail "run $run: a scenario failed"
  [[ $rc -eq 0 ]] || fail "run $run exited with $rc"
  for name in "${scenarios[@]}"; do
    grep -qF "  PASS  $name" "$out" || fail "run $run: no passing scenario \"$name\""
  done
  for n in larder-db larder-compliance compliance-api; do
    pid=$(cat "$state/$n.pid" 2>/dev/null) || fail "run $run: no $n.pid"
    kill -0 "$pid" 2>/dev/null && fail "run $run: --once left $n (pid $pid) running"
  done
  [[ -e $state/fake-model.pid ]] && fail "run $run: a recorded-response model was started for saas"
done

# What the first run set up.
grep -q "larder demo --example saas" "$dir/out1.txt" || fail "the banner does not name the example"
grep -q "^example = \"saas\"" "$state/larder-db.toml" || fail "larder-db.toml does not serve the saas policy"
grep -q "^example = \"saas\"" "$state/larder-compliance.toml" || fail "larder-compliance.toml does not serve the saas policy"
"$larder" db --state-dir "$state" status >"$dir/status.txt" 2>&1
grep -q "example: *saas" "$dir/status.txt" || { cat "$dir/status.txt"; fail "the cluster does not hold the saas example"; }
for t in acme-admin globex-user support; do
  [[ -s $state/tokens/$t.b64 ]] || fail "no token $t.b64"
done
grep -q "unmask:customers.email" "$dir/out1.txt" || fail "the support engineer's unmask right is not shown"

# The healthcare demo on the saas state directory: refused, in words, before starting anything.
refusal=$("$larder" demo --once --no-color --dir "$state" 2>&1)
[[ $? -ne 0 ]] || fail "the healthcare demo ran on the saas example's state directory"
grep -q "holds the saas example's database" <<<"$refusal" || fail "the refusal does not say why: $refusal"
echo "saas demo e2e: every check passed"
exit 0
