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
# Rounds alternate ours and wasm, so a burst of noise on this shared machine hits one round,
# not one side; the ratios are per round, reported as median and range.
rounds=${BISCUIT_COMPARE_ROUNDS:-5}
for ((r = 1; r <= rounds; r++)); do
  "$bench" --benchmark_filter='ParseVerifyAuthorize|CryptoFloor' --benchmark_min_time=0.5 \
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
    ours.append({b["name"].removeprefix("BM_"): ns(b) for b in json.load(open(f"{tmp}/ours.{r}.json"))["benchmarks"]})
wasm = [dict() for _ in range(rounds)]
for line in open(f"{tmp}/wasm.jsonl"):
    line = line.strip()
    if line.startswith("{"):
        rec = json.loads(line)
        wasm[rec["round"] - 1][rec["name"]] = rec["cpu_ns_per_iter"]
print(f"CPU time per parse+verify+authorize, median of {rounds} rounds (ratios: median [min-max] of the")
print("per-round ratios). floor = libsodium verifying the same signatures; floor+proof = that plus")
print("deriving the proof secret's public key (required of every verifier of an unsealed token).")
print(f"{'case':<30}{'larder':>10}{'wasm':>11}{'floor':>10}{'floor+proof':>13}   {'wasm/larder':<19}{'larder/floor':<19}{'larder/floor+proof':<19}")
def spread(v):
    return f"{statistics.median(v):.2f}x [{min(v):.2f}-{max(v):.2f}]"
for n in ("2Block", "3Block"):
    case = "ParseVerifyAuthorize_" + n
    o = [r[case] for r in ours]
    w = [r[case] for r in wasm]
    f = [r["CryptoFloor_" + n] for r in ours]
    fp = [r["CryptoFloorWithProof_" + n] for r in ours]
    med = statistics.median
    print(f"{case:<30}{med(o)/1e3:>8.1f}us{med(w)/1e3:>9.1f}us{med(f)/1e3:>8.1f}us{med(fp)/1e3:>11.1f}us   "
          f"{spread([a / b for a, b in zip(w, o)]):<19}{spread([a / b for a, b in zip(o, f)]):<19}"
          f"{spread([a / b for a, b in zip(o, fp)]):<19}")
PY
