#!/usr/bin/env bash
# `larder demo --once` end to end, as a new user runs it: a fresh state directory, embedded
# PostgreSQL, certificates, tokens, both servers as separate processes, every scenario.
# Passes when the demo reports every scenario as required; always stops what it started.
set -uo pipefail
larder=$1
dir=$(mktemp -d /tmp/larder-demo-test.XXXXXX)
chmod 711 "$dir"
cleanup() {
  "$larder" db --state-dir "$dir/state" stop >/dev/null 2>&1
  for f in "$dir"/state/*.pid; do [[ -f $f ]] && kill "$(cat "$f")" 2>/dev/null; done
  rm -rf "$dir"
}
trap cleanup EXIT
"$larder" demo --once --no-color --rows 3000 --dir "$dir/state" | tee "$dir/out.txt"
rc=${PIPESTATUS[0]}
grep -q "scenarios: [0-9]* passed, 0 failed" "$dir/out.txt" || { echo "demo did not pass every scenario"; exit 1; }
grep -q "FAIL" "$dir/out.txt" && { echo "a scenario failed"; exit 1; }
exit "$rc"
