#!/usr/bin/env bash
# `larder demo` end to end, as a new user runs it, twice against one state directory:
#  1. `--once`: a fresh state directory, embedded PostgreSQL, certificates, tokens, both
#     servers and their helpers as separate processes, every scenario; all stopped after.
#  2. without --once, on fixed ports (--port, --compliance-port, --model-port) and with no API
#     key set: every scenario again; then, with the demo process gone, the servers still
#     answer on those ports, the stand-in compliance API is its own process and still takes
#     egress (hipaa_compliance_check with a fresh token minted as the README shows), and the
#     `larder ask` line the demo printed, pasted as is, gets Erin's rows and the recorded
#     model's answer.
#  3. `larder serve` on the demo's database with plain_http, unbound and non-expiring tokens:
#     refused without i_understand_this_is_insecure; with it, warned about at every start.
# Always stops what it started.
set -uo pipefail
larder=$(realpath "$1")
dir=$(mktemp -d /tmp/larder-demo-test.XXXXXX)
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
cd "$dir" || exit 1  # no .env from the checkout: the demo must see no API key
unset ANTHROPIC_API_KEY OPENAI_API_KEY LARDER_PROVIDER LARDER_BASE_URL LARDER_MODEL

# 1. --once
"$larder" demo --once --no-color --rows 3000 --dir "$state" | tee "$dir/out.txt"
rc=${PIPESTATUS[0]}
grep -q "scenarios: [0-9]* passed, 0 failed" "$dir/out.txt" || fail "demo --once did not pass every scenario"
grep -q "FAIL" "$dir/out.txt" && fail "a scenario failed"
[[ $rc -eq 0 ]] || fail "demo --once exited with $rc"
for n in larder-db larder-compliance compliance-api fake-model; do
  pid=$(cat "$state/$n.pid" 2>/dev/null) || fail "no $n.pid"
  kill -0 "$pid" 2>/dev/null && fail "--once left $n (pid $pid) running"
done

# 2. Fixed ports (free ones, chosen here below the ephemeral range, so that no port the
# kernel hands out meanwhile — the compliance API's, say — takes one), servers left running.
read -r ephemeral_low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || ephemeral_low=32768
free_port() {
  local p
  while :; do
    p=$((10000 + RANDOM % (ephemeral_low - 10000)))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}
db_port=$(free_port)
compliance_port=$(free_port)
model_port=$(free_port)
while [[ $compliance_port == "$db_port" ]]; do compliance_port=$(free_port); done
while [[ $model_port == "$db_port" || $model_port == "$compliance_port" ]]; do model_port=$(free_port); done
"$larder" demo --no-color --rows 3000 --dir "$state" --port "$db_port" --compliance-port "$compliance_port" \
  --model-port "$model_port" >"$dir/out2.txt" 2>&1
rc=$?
cat "$dir/out2.txt"
[[ $rc -eq 0 ]] || fail "demo exited with $rc"
grep -q "scenarios: [0-9]* passed, 0 failed" "$dir/out2.txt" || fail "the second demo did not pass every scenario"
grep -q "larder-db on https://127.0.0.1:$db_port/mcp" "$dir/out2.txt" || fail "--port $db_port not honoured"
grep -q "larder-compliance on https://127.0.0.1:$compliance_port/mcp" "$dir/out2.txt" ||
  fail "--compliance-port $compliance_port not honoured"
grep -q "recorded-response model on http://127.0.0.1:$model_port" "$dir/out2.txt" || fail "--model-port not honoured"
grep -q "require_binding = true" "$state/larder-db.toml" || fail "the generated config does not require binding"
# Each server's admin listener: its port file, the metrics URL printed, and a scrape that
# counts the demo's calls.
for n in larder-db larder-compliance; do
  [[ -s "$state/$n.admin.port" ]] || fail "the demo did not write $n.admin.port"
done
admin_port=$(cat "$state/larder-db.admin.port")
grep -q "metrics http://127.0.0.1:$admin_port/metrics" "$dir/out2.txt" || fail "the demo did not print the metrics URL"
# Read whole before grep: `curl | grep -q` fails under pipefail when grep stops reading first
# (curl: (23) Failure writing output).
metrics=$(curl -fsS "http://127.0.0.1:$admin_port/metrics") || fail "cannot scrape the db server's metrics"
grep -q '^larder_calls_total{method="tools/call",tool="pg_query",outcome="allow"}' <<<"$metrics" ||
  fail "the db server's metrics do not count the demo's calls"
ready=$(curl -fsS "http://127.0.0.1:$admin_port/readyz") || fail "cannot ask the db server's /readyz"
grep -q '"ready":true' <<<"$ready" || fail "the db server is not ready"
grep -q "require_expiry = true" "$state/larder-compliance.toml" || fail "the generated config does not require expiry"

# The demo process has ended; every part it started is its own process and still running.
for n in larder-db larder-compliance compliance-api fake-model; do
  pid=$(cat "$state/$n.pid") || fail "no $n.pid"
  kill -0 "$pid" 2>/dev/null || fail "$n (pid $pid) is not running after the demo ended"
done
api_pid=$(cat "$state/compliance-api.pid")
tr '\0' ' ' <"/proc/$api_pid/cmdline" | grep -q "demo compliance-api" || fail "pid $api_pid is not the compliance API"

# Egress after the scenarios: a fresh token (README: biscuit generate with a TTL, then attest),
# hipaa_compliance_check on the compliance server, forwarded to the compliance API.
before=$(wc -l <"$state/compliance-api.jsonl")
"$larder" biscuit generate --private-key-file "$state/root.key" --add-ttl 1h - <<<'right("hipaa_compliance_check");' \
  >"$dir/fresh.b64" || fail "biscuit generate"
"$larder" biscuit attest "$dir/fresh.b64" --cert "$state/certs/client/claude-client.crt" \
  --audience larder-compliance --public-key-file "$state/root.key.pub" >"$dir/fresh-bound.b64" || fail "biscuit attest"
mcp_call() {  # url token tool arguments-json
  curl -sS --max-time 30 --cacert "$state/certs/ca.crt" --cert "$state/certs/client/claude-client.crt" \
    --key "$state/certs/client/claude-client.key" -H 'Content-Type: application/json' \
    -H 'Accept: application/json, text/event-stream' -H 'MCP-Protocol-Version: 2026-07-28' \
    -H 'Mcp-Method: tools/call' -H "Mcp-Name: $3" -H "Authorization: Bearer $2" \
    -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"$3\",\"arguments\":$4,\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\",\"io.modelcontextprotocol/clientCapabilities\":{}}}}" \
    "$1"
}
egress=$(mcp_call "https://127.0.0.1:$compliance_port/mcp" "$(cat "$dir/fresh-bound.b64")" hipaa_compliance_check \
  '{"text":"Quarterly summary: nothing identifying."}')
echo "egress after the demo: $egress"
grep -q '"sent":true' <<<"$egress" || fail "the compliance check did not reach the compliance API after the demo"
after=$(wc -l <"$state/compliance-api.jsonl")
[[ $after -eq $((before + 1)) ]] || fail "the compliance API recorded $((after - before)) requests, expected 1"
# An unbound token is refused (require_binding), in words.
unbound=$(mcp_call "https://127.0.0.1:$compliance_port/mcp" "$(cat "$dir/fresh.b64")" hipaa_compliance_check '{"text":"x"}')
grep -q "not bound to a client certificate" <<<"$unbound" || fail "an unbound token was not refused: $unbound"

# The printed `larder ask` line, pasted as is (no API key set: the recorded model answers).
ask_line=$(grep -E '^  ANTHROPIC_API_KEY=recorded-responses .* ask ' "$dir/out2.txt" | head -1)
[[ -n $ask_line ]] || fail "the demo printed no recorded-model ask line"
grep -q -- "--base-url http://127.0.0.1:$model_port" <<<"$ask_line" || fail "the ask line does not use the model port"
for attempt in 1 2; do  # the recorded model answers every new conversation
  answer=$(bash -c "$ask_line" 2>&1)
  arc=$?
  echo "$answer"
  [[ $arc -eq 0 ]] || fail "the printed ask line exited with $arc (attempt $attempt)"
  grep -q "Erin oRTEga" <<<"$answer" || fail "the printed ask line returned no rows of Erin's (attempt $attempt)"
  grep -q "These are all the admissions on record for Erin oRTEga" <<<"$answer" ||
    fail "the printed ask line did not get the recorded answer (attempt $attempt)"
done
# Insecure settings: refused without the acknowledgement; with it, a warning at every start.
insecure_body() {
  cat <<EOF
[server]
host = "127.0.0.1"
port = 0
audience = "larder-db"
plain_http = true
[biscuit]
root_keys = [{ id = 1, public_key = "$(cat "$state/root.key.pub")" }]
require_binding = false
require_expiry = false
[database]
mode = "embedded"
dir = "$state"
[tools]
enabled = ["pg_query"]
classes = { pg_query = "sensitive-read" }
[audit]
path = "$dir/insecure-audit.jsonl"
EOF
}
insecure_body >"$dir/unacknowledged.toml"
refusal=$("$larder" serve --config "$dir/unacknowledged.toml" 2>&1)
[[ $? -eq 2 ]] || fail "an unacknowledged plain_http config was not refused: $refusal"
grep -q 'server.plain_http: .*i_understand_this_is_insecure = \["plain_http"\]' <<<"$refusal" ||
  fail "the refusal does not say how to acknowledge: $refusal"
{
  echo 'i_understand_this_is_insecure = ["plain_http", "unbound_tokens", "tokens_without_expiry"]'
  insecure_body
} >"$dir/insecure.toml"
for start in 1 2; do
  rm -f "$dir/insecure.port"
  "$larder" serve --config "$dir/insecure.toml" --port-file "$dir/insecure.port" --pid-file "$state/insecure.pid" \
    >"$dir/insecure-$start.log" 2>&1 &
  server=$!
  for _ in $(seq 600); do
    [[ -s $dir/insecure.port ]] && break
    kill -0 $server 2>/dev/null || break
    sleep 0.1
  done
  [[ -s $dir/insecure.port ]] || { cat "$dir/insecure-$start.log"; fail "the acknowledged config did not start"; }
  kill $server
  wait $server
  for setting in "server.plain_http = true" "biscuit.require_binding = false" "biscuit.require_expiry = false"; do
    grep -q "INSECURE: $setting" "$dir/insecure-$start.log" || fail "start $start logged no warning for $setting"
  done
done
echo "demo e2e: every check passed"
exit 0
