#!/usr/bin/env bash
# libbiscuit vs biscuit-wasm on identical tokens, and vs the crypto floor.
# Usage: bench/biscuit_compare.sh <build dir>   (scripts/bench passes it)
# Prints CPU times per call and the ratios wasm/ours (target >= 5x) and ours/floor
# (target <= 1.3x), per round and as the median of the rounds.
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
# Rounds alternate ours and wasm, so a burst of noise on this shared machine hits one round,
# not one side; the ratios are per round, reported as median and range.
rounds=${BISCUIT_COMPARE_ROUNDS:-5}
for ((r = 1; r <= rounds; r++)); do
  "$bench" --benchmark_filter='ParseVerifyAuthorize|OverFloor' --benchmark_min_time=0.5 \
    --benchmark_format=json --benchmark_out="$tmp/ours.$r.json" --benchmark_out_format=json >/dev/null
  for case in 2 3; do  # one process per case (see biscuit_wasm_bench.mjs)
    node --experimental-wasm-modules --no-warnings bench/biscuit_wasm_bench.mjs "$tmp" "$case" |
      sed "s/^{/{\"round\":$r,/" >>"$tmp/wasm.jsonl"
  done
done
python3 - "$tmp" "$rounds" <<'PY'
import json, statistics, sys
tmp, rounds = sys.argv[1], int(sys.argv[2])
def ns(b):
    scale = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[b.get("time_unit", "ns")]
    return b["cpu_time"] * scale
ours = []
for r in range(1, rounds + 1):
    ours.append({b["name"].removeprefix("BM_"): b for b in json.load(open(f"{tmp}/ours.{r}.json"))["benchmarks"]})
wasm = [dict() for _ in range(rounds)]
for line in open(f"{tmp}/wasm.jsonl"):
    line = line.strip()
    if line.startswith("{"):
        rec = json.loads(line)
        wasm[rec["round"] - 1][rec["name"]] = rec["cpu_ns_per_iter"]
print(f"Parse + verify + authorize, median of {rounds} rounds; ratios are median [min-max] of the rounds.")
print("wasm/larder: CPU time per call, biscuit-wasm (own process) vs ours. larder/floor: ours vs libsodium")
print("verifying the same signatures, interleaved call by call in one loop (BM_OverFloor_*); floor+proof")
print("adds deriving the proof secret's public key, which every verifier of an unsealed token must do.")
print(f"{'case':<14}{'larder':>10}{'wasm':>11}{'floor':>10}{'floor+proof':>13}   {'wasm/larder':<19}{'larder/floor':<19}{'larder/floor+proof':<19}")
def spread(v):
    return f"{statistics.median(v):.2f}x [{min(v):.2f}-{max(v):.2f}]"
med = statistics.median
for n in ("2Block", "3Block"):
    o = [ns(r["ParseVerifyAuthorize_" + n]) for r in ours]
    w = [r["ParseVerifyAuthorize_" + n] for r in wasm]
    over = [r["OverFloor_" + n] for r in ours]
    print(f"{n:<14}{med(o)/1e3:>8.1f}us{med(w)/1e3:>9.1f}us{med([x['floor_us'] for x in over]):>8.1f}us"
          f"{med([x['floor_proof_us'] for x in over]):>11.1f}us   "
          f"{spread([a / b for a, b in zip(w, o)]):<19}{spread([x['x_floor'] for x in over]):<19}"
          f"{spread([x['x_floor_proof'] for x in over]):<19}")
PY
