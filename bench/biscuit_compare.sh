#!/usr/bin/env bash
# libbiscuit vs biscuit-wasm on identical tokens, and vs the crypto floor.
# Usage: bench/biscuit_compare.sh <build dir>   (scripts/bench passes it)
# Prints per-iteration CPU times (robust on a shared machine) and the ratios wasm/ours
# (target >= 5x) and ours/floor (target <= 1.3x).
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
for case in 2 3; do  # one process per case (see biscuit_wasm_bench.mjs)
  node --experimental-wasm-modules --no-warnings bench/biscuit_wasm_bench.mjs "$tmp" "$case" >>"$tmp/wasm.jsonl"
done
python3 - "$tmp/ours.json" "$tmp/wasm.jsonl" <<'PY'
import json, sys
ours = {b["name"].removeprefix("BM_"): b for b in json.load(open(sys.argv[1]))["benchmarks"]}
def ns(b):
    scale = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[b.get("time_unit", "ns")]
    return b["cpu_time"] * scale
wasm = {}
for line in open(sys.argv[2]):
    line = line.strip()
    if line.startswith("{"):
        r = json.loads(line)
        wasm[r["name"]] = r["cpu_ns_per_iter"]
print("CPU time per parse+verify+authorize. floor = libsodium verifying the same signatures;")
print("floor+proof = that plus deriving the proof secret's public key (required of every verifier).")
print(f"{'case':<30}{'larder':>11}{'wasm':>11}{'floor':>11}{'floor+proof':>13}{'wasm/larder':>13}{'/floor':>9}{'/floor+proof':>14}")
for n in ("2Block", "3Block"):
    case = "ParseVerifyAuthorize_" + n
    o, w = ns(ours[case]), wasm[case]
    f, fp = ns(ours["CryptoFloor_" + n]), ns(ours["CryptoFloorWithProof_" + n])
    print(f"{case:<30}{o/1e3:>9.1f}us{w/1e3:>9.1f}us{f/1e3:>9.1f}us{fp/1e3:>11.1f}us{w/o:>12.1f}x{o/f:>8.2f}x{o/fp:>13.2f}x")
PY
