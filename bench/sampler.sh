#!/usr/bin/env bash
# Benchmark of the sampler and the embedded store (issue 4), in one run:
#
#  (a) TPC-B tps (pgbench -M prepared, CLIENTS clients, ROUND_SECS-second
#      rounds) with no sampling, with the sampler every 1 s and every 100 ms
#      (crates/sampler/examples/sample_loop.rs: every collector, into an
#      embedded store). The order rotates every round; medians and ratios.
#  (b) on the same node under TPC-B load: the time of one sampling cycle of
#      all collectors, side by side with one scrape of Debian's
#      prometheus-postgres-exporter (installed when missing). Blocks of
#      SCRAPES each, alternating, both every 200 ms; medians.
#  (c) the embedded store (crates/store/examples/store_bench.rs): ingest in
#      points/s, points shaped like a real cycle from (b), and the time to
#      read 1 h of 1 s data for 50 series.
#
#   bash bench/sampler.sh                 # ROUNDS=3 ROUND_SECS=15 CLIENTS=4 SCALE=10 SCRAPES=30
#
# Debug builds (the project's one profile). Runs as root (the server runs as
# `postgres`) or as an ordinary user.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=${ROUNDS:-3}
ROUND_SECS=${ROUND_SECS:-15}
CLIENTS=${CLIENTS:-4}
SCALE=${SCALE:-10}
SCRAPES=${SCRAPES:-30}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
EXPORTER=${EXPORTER:-/usr/bin/prometheus-postgres-exporter}

log() { echo "bench: $*" >&2; }
die() { echo "bench: $*" >&2; exit 2; }
[[ -x $PGBIN/initdb && -x $PGBIN/pgbench ]] || die "no PostgreSQL 15 binaries (initdb, pgbench) in $PGBIN"
for n in ROUNDS ROUND_SECS CLIENTS SCALE SCRAPES; do
    [[ ${!n} =~ ^[1-9][0-9]*$ ]] || die "$n must be a positive integer"
done

if [[ ! -x $EXPORTER ]]; then
    log "installing prometheus-postgres-exporter (the peer in part b)"
    [[ $(id -u) -eq 0 ]] || die "$EXPORTER is missing: apt-get install prometheus-postgres-exporter"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus-postgres-exporter >/dev/null
fi

if [[ $(id -u) -eq 0 ]]; then
    as_pg() { runuser -u postgres -- "$@"; }
else
    as_pg() { "$@"; }
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
at_least() { awk -v r="$1" -v t="$2" 'BEGIN { print (r >= t) ? "met" : "MISSED" }'; }
at_most() { awk -v r="$1" -v t="$2" 'BEGIN { print (r <= t) ? "met" : "MISSED" }'; }

log "building the examples (debug)"
(cd "$ROOT" && cargo build -q -p sampler --example sample_loop && cargo build -q -p store --example store_bench)
SAMPLE_LOOP=$ROOT/target/debug/examples/sample_loop
STORE_BENCH=$ROOT/target/debug/examples/store_bench

WORK=$(mktemp -d /tmp/prodhome-bench-sampler.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
    local rc=$? p
    set +e
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    [[ -f $WORK/data/postmaster.pid ]] && as_pg "$PGBIN/pg_ctl" -D "$WORK/data" -m immediate -t 30 stop >/dev/null 2>&1
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT INT TERM

# --- one node: fsync on, defaults otherwise ---------------------------------
PORT=$(free_port)
mkdir -m 700 "$WORK/data" "$WORK/run"
[[ $(id -u) -eq 0 ]] && chown postgres "$WORK/data" "$WORK/run"
as_pg "$PGBIN/initdb" -U postgres --auth=trust -E UTF8 --locale=C -D "$WORK/data" >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$WORK/data" -l "$WORK/run/server.log" -w -t 60 \
    -o "-p $PORT -k $WORK/run -c listen_addresses=127.0.0.1" start >/dev/null
URL="postgresql://postgres@127.0.0.1:$PORT/postgres"
psql_() { "$PGBIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -qAtX -v ON_ERROR_STOP=1 "$@"; }
log "pgbench -i -s $SCALE"
"$PGBIN/pgbench" -h 127.0.0.1 -p "$PORT" -U postgres -i -q -s "$SCALE" postgres >/dev/null 2>&1
log "$(nproc) cores, $("$PGBIN/postgres" --version), port $PORT"

# Starts sample_loop at INTERVAL in the background and waits (bounded)
# until its session shows in pg_stat_activity.
start_sampler() {
    "$SAMPLE_LOOP" "$URL" "$1" 2>>"$WORK/sample_loop.log" &
    SAMPLER_PID=$!
    PIDS+=("$SAMPLER_PID")
    local i
    for ((i = 0; i < 300; i++)); do
        [[ $(psql_ -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'prodhome-sampler'") -ge 1 ]] && return
        kill -0 "$SAMPLER_PID" 2>/dev/null || die "sample_loop exited; see $WORK/sample_loop.log"
        sleep 0.1
    done
    die "sample_loop did not connect within 30 s"
}
stop_sampler() { kill "$SAMPLER_PID" 2>/dev/null; wait "$SAMPLER_PID" 2>/dev/null || true; }
# CPU ticks (1/100 s) used so far by a process: utime + stime.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# --- (a) tps with and without sampling --------------------------------------
declare -A TPS CPU
VARIANTS=(none 1s 100ms)
for ((r = 0; r < ROUNDS; r++)); do
    for ((k = 0; k < 3; k++)); do
        v=${VARIANTS[$(((r + k) % 3))]}
        psql_ -c "CHECKPOINT" >/dev/null
        [[ $v != none ]] && start_sampler "$v"
        tps=$("$PGBIN/pgbench" -h 127.0.0.1 -p "$PORT" -U postgres -M prepared -n -c "$CLIENTS" -j 2 \
            -T "$ROUND_SECS" postgres 2>/dev/null | awk '/^tps = / { print $3; exit }')
        [[ -n $tps ]] || die "pgbench printed no tps"
        if [[ $v != none ]]; then
            # The sampler's whole cost: its own CPU and its backend's, as a
            # share of the machine over the round (robust to noisy neighbours,
            # which make tps itself swing).
            backend=$(psql_ -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'prodhome-sampler' LIMIT 1")
            used=$(($(ticks "$SAMPLER_PID") + $(ticks "$backend")))
            CPU[$v]+="$(awk -v t="$used" -v s="$ROUND_SECS" -v n="$(nproc)" 'BEGIN { printf "%.4f", t / 100 / s / n * 100 }') "
            stop_sampler
        fi
        log "round $((r + 1)) sampling=$v tps=$tps"
        TPS[$v]+="$tps "
    done
done

# --- (b) one cycle vs one exporter scrape, under load -----------------------
"$PGBIN/pgbench" -h 127.0.0.1 -p "$PORT" -U postgres -M prepared -n -c "$CLIENTS" -j 2 -T 3600 postgres \
    >/dev/null 2>&1 &
LOAD_PID=$!
PIDS+=("$LOAD_PID")
EXPORTER_PORT=$(free_port)
DATA_SOURCE_NAME="$URL?sslmode=disable" "$EXPORTER" --web.listen-address="127.0.0.1:$EXPORTER_PORT" \
    >"$WORK/exporter.log" 2>&1 &
PIDS+=("$!")
for ((i = 0; i < 300; i++)); do
    curl -sf -o /dev/null "http://127.0.0.1:$EXPORTER_PORT/metrics" && break
    sleep 0.1
done
curl -sf "http://127.0.0.1:$EXPORTER_PORT/metrics" | grep -q '^pg_up 1' || die "the exporter cannot reach the node; see $WORK/exporter.log"
: >"$WORK/ours.ms"
: >"$WORK/exporter.ms"
for ((r = 0; r < ROUNDS; r++)); do
    for ((k = 0; k < 2; k++)); do
        if (((r + k) % 2 == 0)); then
            "$SAMPLE_LOOP" "$URL" 200ms --cycles "$SCRAPES" --dump "$WORK/cycle.json" \
                | awk '/^cycle_ms / { print $2 }' >>"$WORK/ours.ms"
        else
            for ((i = 0; i < SCRAPES; i++)); do
                curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$EXPORTER_PORT/metrics" \
                    | awk '{ printf "%.3f\n", $1 * 1000 }' >>"$WORK/exporter.ms"
                sleep 0.2
            done
        fi
    done
    log "round $((r + 1)) of (b) done"
done
kill "$LOAD_PID" 2>/dev/null; wait "$LOAD_PID" 2>/dev/null || true
POINTS_PER_CYCLE=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$WORK/cycle.json")

# --- (c) the embedded store -------------------------------------------------
"$STORE_BENCH" --cycle "$WORK/cycle.json" --points 500000 --repeat 9 >"$WORK/store.txt"

# --- report ----------------------------------------------------------------
field() { tr ' ' '\n' | sed -n "s/^$1=//p"; }
none=$(printf '%s\n' ${TPS[none]} | median)
s1=$(printf '%s\n' ${TPS[1s]} | median)
s100=$(printf '%s\n' ${TPS[100ms]} | median)
ours=$(median <"$WORK/ours.ms")
theirs=$(median <"$WORK/exporter.ms")
ingest=$(grep '^ingest' "$WORK/store.txt")
pps=$(field points_per_s <<<"$ingest")
vps=$(field values_per_s <<<"$ingest")
fpp=$(field fields_per_point <<<"$ingest")
q_raw=$(grep 'query_1h_50_series raw' "$WORK/store.txt" | field median_ms)
q_10s=$(grep 'query_1h_50_series step_10s' "$WORK/store.txt" | field median_ms)

echo
echo "### Sampler and embedded store (bench/sampler.sh)"
echo
echo "$(nproc) cores, debug build, TPC-B scale $SCALE, $CLIENTS clients, pgbench -M prepared, fsync on;"
echo "$ROUNDS rounds of ${ROUND_SECS} s per variant, order rotating; $SCRAPES cycles/scrapes per block."
echo
echo "| measure | prodhome | peer / baseline | ratio | target | |"
echo "|---|---|---|---|---|---|"
r=$(ratio "$s1" "$none"); echo "| (a) TPC-B tps, sampling every 1 s (median) | $s1 | $none (no sampling) | $r | >= 0.99 | $(at_least "$r" 0.99) |"
r=$(ratio "$s100" "$none"); echo "| (a) TPC-B tps, sampling every 100 ms (median) | $s100 | $none (no sampling) | $r | - | |"
# Each round's ratio to that round's no-sampling run (minutes apart, not
# tens of minutes): less exposed to a neighbour's load coming and going.
paired() { paste <(printf '%s\n' ${TPS[$1]}) <(printf '%s\n' ${TPS[none]}) | awk '{ printf "%.3f\n", $1 / $2 }'; }
p1=$(paired 1s | median); p100=$(paired 100ms | median)
echo "| (a) same, median of per-round ratios, every 1 s / every 100 ms | - | - | $p1 / $p100 | >= 0.99 (1 s) | $(at_least "$p1" 0.99) |"
c1=$(printf '%s\n' ${CPU[1s]} | median); c100=$(printf '%s\n' ${CPU[100ms]} | median)
echo "| (a) sampler CPU (sample_loop + its backend), % of the machine, every 1 s | $c1 | - | tps bound $(awk -v c="$c1" 'BEGIN { printf "%.3f", 1 - c / 100 }') | >= 0.99 | $(at_least "$(awk -v c="$c1" 'BEGIN { print 1 - c / 100 }')" 0.99) |"
echo "| (a) same, every 100 ms | $c100 | - | tps bound $(awk -v c="$c100" 'BEGIN { printf "%.3f", 1 - c / 100 }') | - | |"
r=$(ratio "$ours" "$theirs"); echo "| (b) one cycle of all collectors under load, ms (median) | $ours | $theirs (postgres-exporter scrape) | $r | <= 0.5 | $(at_most "$r" 0.5) |"
echo "| (c) embedded store ingest, points/s ($fpp fields per point, $POINTS_PER_CYCLE-point cycles) | $pps | - | - | >= 200000 | $(at_least "$pps" 200000) |"
echo "| (c) same, field values/s | $vps | - | - | - | |"
echo "| (c) query 1 h of 1 s data, 50 series, raw, ms (median of 9) | $q_raw | - | - | <= 50 | $(at_most "$q_raw" 50) |"
echo "| (c) same, downsampled to 10 s, ms | $q_10s | - | - | - | |"
echo
echo "Raw: tps none: ${TPS[none]}| 1s: ${TPS[1s]}| 100ms: ${TPS[100ms]}"
echo "Raw: sampler CPU % 1s: ${CPU[1s]}| 100ms: ${CPU[100ms]}"
echo "Raw: per-round ratios 1s: $(paired 1s | tr '\n' ' ')| 100ms: $(paired 100ms | tr '\n' ' ')"
echo "Cycle ms (ours): $(sort -n "$WORK/ours.ms" | awk 'NR==1{min=$1} {max=$1} END{printf "min %s max %s", min, max}')"
echo "Scrape ms (exporter): $(sort -n "$WORK/exporter.ms" | awk 'NR==1{min=$1} {max=$1} END{printf "min %s max %s", min, max}')"
