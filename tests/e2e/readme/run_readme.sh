#!/usr/bin/env bash
# Runs every ```sh block of the README, in order, as one bash script with `set -euo pipefail`,
# in a fresh empty directory with the built programs on PATH — as a new user would type them.
# When the README drifts from the program (a renamed flag, a missing file, a refused call),
# this fails and names the block. Then checks what the blocks printed.
set -uo pipefail
readme=$1 bin_dir=$2 fake_dir=$3 repo=$4
dir=$(mktemp -d /tmp/larder-readme-test.XXXXXX)
chmod 711 "$dir"
cleanup() {
  (cd "$dir" && for f in .larder/*.pid; do [[ -f $f ]] && kill "$(cat "$f")" 2>/dev/null; done)
  pkill -f "larder-fake-llm --script tests/fixtures/llm/anthropic_e2e_erin_records.json --port-file .larder/llm.port" 2>/dev/null
  "$bin_dir/larder" db --state-dir "$dir/.larder" stop >/dev/null 2>&1
  rm -rf "$dir"
}
trap cleanup EXIT

# The fixtures the README names (recorded model answers) are read from the checkout.
ln -s "$repo/tests" "$dir/tests"

script="$dir/readme.sh"
{
  echo 'set -euo pipefail'
  awk '
    /^```sh[[:space:]]*$/ { inblock = 1; n++; printf "echo; echo \"=== README block %d (line %d)\"\n", n, NR; next }
    /^```/ && inblock { inblock = 0; next }
    inblock { print }
  ' "$readme"
} > "$script"
blocks=$(grep -c 'echo "=== README block' "$script")
if (( blocks < 4 )); then
  echo "README has only $blocks sh blocks; the quick start is expected there"
  exit 1
fi
if (exec 3<>/dev/tcp/127.0.0.1/8443) 2>/dev/null; then
  echo "port 8443 is in use on this machine; the README's quick start needs it"
  exit 1
fi

(cd "$dir" && PATH="$bin_dir:$fake_dir:$PATH" bash "$script") > "$dir/out.txt" 2>&1
rc=$?
cat "$dir/out.txt"
if (( rc != 0 )); then
  echo "FAILED in $(grep '^=== README block' "$dir/out.txt" | tail -1 | sed 's/=== //') with exit status $rc"
  exit 1
fi

fail=0
expect() {
  if ! grep -q -- "$1" "$dir/out.txt"; then
    echo "expected in the output: $2"
    fail=1
  fi
}
expect 'larder init: a new deployment' 'larder init reports what it wrote'
expect 'listening on https://127.0.0.1:8443/mcp' 'larder serve --background reports its address'
expect '"row_count"' 'the curl call returns rows'
expect '"Hospital":' 'the curl call returns the columns asked for'
expect 'Erin oRTEga  |' 'larder ask prints Erin'"'"'s rows as a table'
expect 'audit log .*: OK, .* anchored in PostgreSQL' 'the audit log verifies against its anchor'
expect '"ready":true' 'the admin listener says the server is ready'
expect 'larder_calls_total{method="tools/call",tool="pg_query",outcome="allow"}' 'the metrics count the allowed calls'

expect '^revoked [0-9a-f]\{128\}' 'the token lineage is revoked'
expect '"mcpServers": {' 'larder connect --print-config claude-desktop prints the snippet'
expect '"@/.*/.larder/tokens/erin.b64"' 'the snippet names the token file by its absolute path'
expect '^claude mcp add --transport stdio larder -- /' 'larder connect --print-config claude-code prints the command'
# (Only the snippets: the curl call's answer carries the attenuated token, which shares the
# original's authority block.)
if awk '/"mcpServers": \{/,/^claude mcp add/' "$dir/out.txt" |
    grep -q "$(cut -c1-40 "$dir/.larder/tokens/erin.b64" 2>/dev/null || echo no-token-file)"; then
  echo "a printed snippet contains the token itself"
  fail=1
fi
if grep -q 'DAvID AndErSON' "$dir/out.txt"; then
  echo "Erin's token showed another patient's row"
  fail=1
fi
exit $fail
