#!/usr/bin/env bash
# libbiscuit vs biscuit-wasm on identical tokens, and vs the crypto floor.
# Usage: bench/biscuit_compare.sh <build dir>   (scripts/bench passes it)
# Prints per-iteration times and the ratios wasm/ours (target >= 5x) and ours/floor
# (target <= 1.3x).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
bench="$build/bench/bench_biscuit"
if [[ ! -x "$bench" ]]; then
  echo "biscuit_compare: $bench not built; skipping"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bench" --export "$tmp"
"$bench" --benchmark_filter='ParseVerifyAuthorize|CryptoFloor' --benchmark_min_time=1 \
  --benchmark_format=json --benchmark_out="$tmp/ours.json" --benchmark_out_format=json >/dev/null
node --experimental-wasm-modules --no-warnings bench/biscuit_wasm_bench.mjs "$tmp" >"$tmp/wasm.jsonl"
python3 - "$tmp/ours.json" "$tmp/wasm.jsonl" <<'PY'
import json, sys
ours = {b["name"].removeprefix("BM_"): b for b in json.load(open(sys.argv[1]))["benchmarks"]}
def ns(b):
    scale = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[b.get("time_unit", "ns")]
    return b["real_time"] * scale
wasm = {}
for line in open(sys.argv[2]):
    line = line.strip()
    if line.startswith("{"):
        r = json.loads(line)
        wasm[r["name"]] = r["ns_per_iter"]
print(f"{'case':<30}{'larder':>12}{'wasm':>12}{'floor':>12}{'wasm/larder':>13}{'larder/floor':>14}")
for case, floor in (("ParseVerifyAuthorize_2Block", "CryptoFloor_2Block"), ("ParseVerifyAuthorize_3Block", "CryptoFloor_3Block")):
    o, w, f = ns(ours[case]), wasm[case], ns(ours[floor])
    print(f"{case:<30}{o/1e3:>10.1f}us{w/1e3:>10.1f}us{f/1e3:>10.1f}us{w/o:>12.1f}x{o/f:>13.2f}x")
PY
