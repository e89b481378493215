#!/usr/bin/env bash
# Benchmark: `prodhome hum` against `pgbench -M prepared`, TPC-B at max rate
# (closed loop), on one bare PostgreSQL 15 server started here (fsync on,
# defaults otherwise), tables made once by `pgbench -i -s 10`. For 1, 4 and 8
# clients, ROUNDS rounds of DURATION seconds each, the order of the two
# alternating between rounds. Before every run: checkpoint, vacuum the small
# tables and truncate pgbench_history (what pgbench does unless -n), so both
# start from the same state. Reports the median tps of each and the client
# process's CPU (user + system, from bash's `time`) per 1,000 transactions.
#
#   bash bench/hum_vs_pgbench.sh                     # ROUNDS=3 DURATION=15
#   PRODHOME_BIN=target/release/prodhome bash bench/hum_vs_pgbench.sh
#
# Runs as root (the server runs as `postgres`) or as an ordinary user.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${PRODHOME_BIN:-$ROOT/target/debug/prodhome}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-15}
CLIENTS=${CLIENTS:-"1 4 8"}
SCALE=${SCALE:-10}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
[[ -x $BIN ]] || { echo "no prodhome binary at $BIN (build it: cargo build -p prodhome)" >&2; exit 2; }
[[ -x $PGBIN/pgbench ]] || { echo "no pgbench in $PGBIN" >&2; exit 2; }
[[ $ROUNDS =~ ^[1-9][0-9]*$ && $DURATION =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS and DURATION must be positive integers" >&2; exit 2; }

log() { echo "bench: $*" >&2; }

if [[ $(id -u) -eq 0 ]]; then
    as_pg() { runuser -u postgres -- "$@"; }
    PGUSER_OS=postgres
else
    as_pg() { "$@"; }
    PGUSER_OS=$(id -un)
fi

WORK=$(mktemp -d /tmp/hum-bench.XXXXXX)
chmod 755 "$WORK"
DATA=$WORK/data
cleanup() {
    local rc=$?
    set +e
    [[ -f $DATA/postmaster.pid ]] && as_pg "$PGBIN/pg_ctl" -D "$DATA" -m immediate -t 30 stop >/dev/null 2>&1
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -m 700 "$DATA"
mkdir -m 755 "$WORK/run"   # socket and server log
chown "$PGUSER_OS" "$DATA" "$WORK/run"
as_pg "$PGBIN/initdb" -U postgres --auth=trust -E UTF8 --locale=C -D "$DATA" >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$DATA" -l "$WORK/run/server.log" -w -t 60 \
    -o "-p $PORT -k $WORK/run -c listen_addresses=127.0.0.1 -c max_connections=100" start >/dev/null
URL="postgresql://postgres@127.0.0.1:$PORT/postgres"
PG=(-h 127.0.0.1 -p "$PORT" -U postgres)
# Each -c runs on its own: VACUUM refuses a multi-statement string.
psql_c() {
    local args=() s
    for s in "$@"; do args+=(-c "$s"); done
    "$PGBIN/psql" "${PG[@]}" -d postgres -XAtq -v ON_ERROR_STOP=1 "${args[@]}"
}

log "server on 127.0.0.1:$PORT; pgbench -i -s $SCALE"
"$PGBIN/pgbench" "${PG[@]}" -i -q -s "$SCALE" postgres 2>"$WORK/init.log" || { cat "$WORK/init.log" >&2; exit 1; }
# hum runs on pgbench's tables: a short check before measuring.
"$BIN" hum --url "$URL" -w tpcb -c 2 -t 200 -P 0 --json >"$WORK/check.json"
python3 - "$WORK/check.json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["transactions"] == 200 and s["errors"] == 0, s
EOF

fresh() { psql_c "truncate pgbench_history" "vacuum pgbench_branches" "vacuum pgbench_tellers" "checkpoint" >/dev/null; }

# run_one TOOL CLIENTS: appends "tool clients tps transactions cpu_s" to $WORK/raw.
run_one() {
    local tool=$1 c=$2 out=$WORK/out cpu tps tx
    fresh
    local TIMEFORMAT='%U %S'
    if [[ $tool == hum ]]; then
        { time "$BIN" hum --url "$URL" -w tpcb -c "$c" -R max -T "${DURATION}s" -P 0 --json >"$out" 2>"$out.err"; } 2>"$WORK/time"
        read -r tps tx < <(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["tps"], s["transactions"])' "$out")
    else
        { time "$PGBIN/pgbench" "${PG[@]}" -M prepared -n -c "$c" -j 1 -T "$DURATION" postgres >"$out" 2>"$out.err"; } 2>"$WORK/time"
        tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$out")
        tx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")
    fi
    cpu=$(awk '{ printf "%.3f", $1 + $2 }' "$WORK/time")
    [[ -n $tps && -n $tx ]] || { cat "$out" "$out.err" >&2; log "$tool with $c clients gave no result"; exit 1; }
    echo "$tool $c $tps $tx $cpu" >>"$WORK/raw"
    log "$(printf '%-7s %2s clients: %9.1f tps, %8d tx, %6.2f s client CPU' "$tool" "$c" "$tps" "$tx" "$cpu")"
}

: >"$WORK/raw"
for round in $(seq 1 "$ROUNDS"); do
    for c in $CLIENTS; do
        if (( round % 2 )); then order="hum pgbench"; else order="pgbench hum"; fi
        for tool in $order; do run_one "$tool" "$c"; done
    done
done

echo
echo "raw: tool clients tps transactions client_cpu_s"
cat "$WORK/raw"
echo
python3 - "$WORK/raw" "$ROUNDS" "$DURATION" "$BIN" <<'EOF'
import statistics, sys
from collections import defaultdict
raw, rounds, duration, binary = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
lines = [l.split() for l in open(raw)]
runs = defaultdict(list)     # (tool, clients) -> [(tps, cpu ms per tx)]
pairs = defaultdict(list)    # clients -> [(tps ratio, cpu ratio)] of back-to-back runs
for tool, c, tps, tx, cpu in lines:
    runs[(tool, int(c))].append((float(tps), 1000 * float(cpu) / int(tx)))
for a, b in zip(lines[0::2], lines[1::2]):   # each round runs the two back to back
    h, p = (a, b) if a[0] == "hum" else (b, a)
    pairs[int(a[1])].append((float(h[2]) / float(p[2]),
                             (float(h[4]) / int(h[3])) / (float(p[4]) / int(p[3]))))
med = statistics.median
print(f"TPC-B, max rate, scale 10, {duration} s per run, {rounds} rounds; prodhome = {binary}")
print()
print("| clients | hum tps | pgbench tps | tps ratio (paired) | hum CPU s/1k tx | pgbench CPU s/1k tx | CPU ratio (paired) | target met |")
print("|---:|---:|---:|---:|---:|---:|---:|:---|")
for c in sorted(pairs):
    h, p = runs[("hum", c)], runs[("pgbench", c)]
    tr, cr = [x[0] for x in pairs[c]], [x[1] for x in pairs[c]]
    met = "yes" if med(tr) >= 1.1 and med(cr) <= 1.0 else "no"
    print(f"| {c} | {med([r[0] for r in h]):.0f} | {med([r[0] for r in p]):.0f} | "
          f"{med(tr):.2f}x ({min(tr):.2f}-{max(tr):.2f}) | {med([r[1] for r in h]):.3f} | "
          f"{med([r[1] for r in p]):.3f} | {med(cr):.2f}x ({min(cr):.2f}-{max(cr):.2f}) | {met} |")
print()
print("tps and CPU: medians over the rounds; ratios: the median (and range) of each round's")
print("back-to-back pair, which share the machine's load at that moment.")
EOF
