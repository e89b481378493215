#!/usr/bin/env bash
# Benchmark: pglog's log reader (parse + classify + tally, as the daemon
# runs it, in one thread) against pgbadger parsing the same jsonlog file
# (`-f jsonlog -x json`, one job), in one run, on a generated file of
# LINES messages (a busy lab's mix: slow statements, errors of several
# SQLSTATEs, lock waits, deadlocks, checkpoints, autovacuum, connection
# failures; see crates/pglog/examples/logbench.rs). Release build.
#
# Rounds alternate the order of the two; medians and min–max reported.
# Target: pglog ≥ 2× pgbadger's lines per second.
#
#   bash bench/logs.sh               # ROUNDS=5 LINES=200000
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=${ROUNDS:-5}
LINES=${LINES:-200000}
PGBADGER=${PGBADGER:-/usr/bin/pgbadger}
for v in ROUNDS LINES; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "$v must be a positive integer" >&2; exit 2; }
done
[[ -x $PGBADGER ]] || { echo "no pgbadger at $PGBADGER: apt-get install pgbadger" >&2; exit 2; }

log() { echo "bench: $*" >&2; }
now_ms() { date +%s%3N; }
stats() { sort -n | awk '{a[NR]=$1} END {m=(NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2); printf "median %.0f (min %.0f, max %.0f)", m, a[1], a[NR]}'; }

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
log "building the release example"
(cd "$ROOT" && cargo build --release -q -p pglog --example logbench)
BIN=$TARGET/release/examples/logbench
WORK=$(mktemp -d /tmp/pglog-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
FILE=$WORK/postgresql-20261201-000000.json
"$BIN" gen "$FILE" "$LINES"
log "$LINES lines, $(du -h "$FILE" | cut -f1) of jsonlog"

ours=() theirs=()
for round in $(seq 1 "$ROUNDS"); do
    run_ours() {
        local out; out=$("$BIN" read "$FILE")
        ours+=("$(sed -n 's/.*lines_per_second=\([0-9]*\).*/\1/p' <<<"$out")")
        if [[ $round == 1 ]]; then log "pglog: $(tail -1 <<<"$out")"; fi
    }
    run_theirs() {
        local t0 t1; t0=$(now_ms)
        "$PGBADGER" -q -f jsonlog -x json -o "$WORK/out.json" "$FILE"
        t1=$(now_ms)
        theirs+=("$(( LINES * 1000 / (t1 - t0 > 0 ? t1 - t0 : 1) ))")
    }
    if (( round % 2 )); then run_ours; run_theirs; else run_theirs; run_ours; fi
    log "round $round: pglog ${ours[-1]} lines/s, pgbadger ${theirs[-1]} lines/s"
done
o=$(printf '%s\n' "${ours[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')
t=$(printf '%s\n' "${theirs[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')
echo "pglog:    $(printf '%s\n' "${ours[@]}" | stats) lines/s"
echo "pgbadger: $(printf '%s\n' "${theirs[@]}" | stats) lines/s"
echo "ratio (medians): $(awk -v o="$o" -v t="$t" 'BEGIN {printf "%.1f", o / t}')x (target >= 2x)"
