#!/usr/bin/env bash
# Benchmark: the embedded store's ingest (crates/store, examples/store_bench):
# points shaped like the sampler's cycle, ten nodes, handed to a running
# store in per-cycle batches and timed until `flush` says they are written
# (queue, SQLite writer thread, commit). The dev build (what CI and
# `cargo test` use) and the release build, taking turns round by round, in
# one run. Target: >= 200,000 points/s in both.
#
#   bash bench/ingest.sh
#   ROUNDS=7 POINTS=300000 bash bench/ingest.sh
#
# Prints the raw rounds (stderr) and a markdown table (stdout). Each round
# is one store_bench run, which itself reports the median of three ingests.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=${ROUNDS:-5}
POINTS=${POINTS:-200000}
TARGET_PPS=200000

for v in ROUNDS POINTS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "$v must be a positive integer" >&2; exit 2; }
done

log() { echo "bench: $*" >&2; }
log "building store_bench (dev and release)"
(cd "$ROOT" && cargo build -q -p store --example store_bench)
(cd "$ROOT" && cargo build -q --release -p store --example store_bench)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
declare -A BIN=([dev]=$TARGET/debug/examples/store_bench [release]=$TARGET/release/examples/store_bench)
PROFILES=(dev release)

declare -A PPS=()
for ((r = 0; r < ROUNDS; r++)); do
    # Alternate which build goes first, so neither always follows the other.
    order=("${PROFILES[@]}")
    ((r % 2)) && order=(release dev)
    for p in "${order[@]}"; do
        out=$("${BIN[$p]}" --points "$POINTS" --repeat 1 2>/dev/null)
        pps=$(grep -o 'points_per_s=[0-9]*' <<<"$out" | head -1 | cut -d= -f2)
        [[ -n $pps ]] || { echo "store_bench ($p) printed no rate:" >&2; echo "$out" >&2; exit 1; }
        log "round $r $p: $pps points/s (load $(cut -d' ' -f1 /proc/loadavg))"
        PPS[$p]+="$pps "
    done
done

median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
spread() { tr ' ' '\n' | grep . | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s–%s", lo, hi }'; }
echo
echo "embedded store ingest: $(nproc) cores, $ROUNDS rounds of $POINTS points per build (each the median of 3 ingests), load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| build | points/s (median) | spread (min–max) | target | |"
echo "|---|---:|---:|---:|---|"
for p in "${PROFILES[@]}"; do
    m=$(median <<<"${PPS[$p]}")
    verdict=$(awk -v m="$m" -v t="$TARGET_PPS" 'BEGIN { printf "%s (%.2f×)", (m >= t) ? "met" : "MISSED", m / t }')
    echo "| $p | $m | $(spread <<<"${PPS[$p]}") | >= $TARGET_PPS | $verdict |"
done
