#!/usr/bin/env bash
# Benchmark: `prodhome up -d` (cold cache; warm cache with and without spare
# clusters) against a
# hand-written initdb/pg_ctl/psql script that builds the same seed lab
# (publisher + 2 subscribers, table books, logical replication, initial sync
# done). All three variants run side by side in one run, ROUNDS rounds, the
# order alternating between rounds. Prints the raw times, a markdown table
# (median and min per variant, ratios to the hand script, targets) and a
# per-phase breakdown.
#
#   bash bench/up.sh                  # ROUNDS=5
#   ROUNDS=9 PRODHOME_BIN=target/release/prodhome bash bench/up.sh
#   BENCH_TMP=/dev/shm bash bench/up.sh   # work dir on tmpfs (default /tmp)
#   BENCH_PURGE=1 bash bench/up.sh    # delete each round's clusters at once
#
# Needs ~0.7 GB of disk per round: nothing is deleted before the end (see
# `discard`).
#
# Runs as root (servers run as `postgres`) or as an ordinary user.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${PRODHOME_BIN:-$ROOT/target/debug/prodhome}
ROUNDS=${ROUNDS:-5}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
# Bounds for every wait (seconds).
SYNC_DEADLINE=${SYNC_DEADLINE:-60}
# Where the work dir goes (state dirs, caches, hand-made clusters).
BENCH_TMP=${BENCH_TMP:-/tmp}

BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
[[ -x $BIN ]] || { echo "no prodhome binary at $BIN (build it: cargo build -p prodhome)" >&2; exit 2; }
[[ -x $PGBIN/initdb ]] || { echo "no PostgreSQL binaries in $PGBIN" >&2; exit 2; }
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS must be a positive integer" >&2; exit 2; }

log() { echo "bench: $*" >&2; }

# Runs a command as the server account when we are root.
if [[ $(id -u) -eq 0 ]]; then
    as_pg() { runuser -u postgres -- "$@"; }
    PGUSER_OS=postgres
else
    as_pg() { "$@"; }
    PGUSER_OS=$(id -un)
fi

# Everything lives under one work dir, reachable by the server account.
WORK=$(mktemp -d "$BENCH_TMP/prodhome-bench.XXXXXX")
chmod 755 "$WORK"
mkdir -m 755 "$WORK/cwd" "$WORK/phases"   # cwd: no prodhome.toml here => seed lab
mkdir -m 700 "$WORK/trash"
# State to clean up on exit, whatever happens.
LIVE_STATES=()   # prodhome state dirs that may have a running lab
LIVE_HAND=()     # hand-made data dirs that may have a running server

cleanup() {
    local rc=$?
    set +e
    local s d
    for s in "${LIVE_STATES[@]}"; do
        [[ -d $s ]] || continue
        (cd "$WORK/cwd" && timeout 90 "$BIN" --state-dir "$s" down --purge >/dev/null 2>&1)
        [[ -d $s ]] || continue
        # A daemon that did not answer: stop it, then its servers by their
        # pid files.
        local pid
        pid=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["pid"])' "$s/daemon.json" 2>/dev/null)
        [[ -n $pid ]] && kill "$pid" 2>/dev/null && sleep 1
        for d in "$s"/nodes/*/data; do
            [[ -f $d/postmaster.pid ]] && as_pg "$PGBIN/pg_ctl" -D "$d" -m immediate -t 30 stop >/dev/null 2>&1
        done
    done
    for d in "${LIVE_HAND[@]}"; do
        [[ -f $d/postmaster.pid ]] && as_pg "$PGBIN/pg_ctl" -D "$d" -m immediate -t 30 stop >/dev/null 2>&1
    done
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A private copy of the binary: a rebuild during the run must not change it.
cp "$BIN" "$WORK/prodhome"
BIN_ORIG=$BIN BIN=$WORK/prodhome

# Clusters, caches and state dirs done with are moved aside and deleted
# when the run ends. On ext4 without a journal (this VM's root filesystem)
# a file created within seconds of thousands being deleted pays for a scan
# over the recently deleted inodes (ext4's recently_deleted(), 50-250 µs a
# file instead of ~8 µs): deleting a round's clusters made the next
# round's ~3,000 file creations, prodhome's copies and the hand script's
# initdb alike, several times slower and noisy. BENCH_PURGE=1 deletes at
# once instead, to see that effect.
discard() {
    local d
    for d in "$@"; do
        [[ -e $d ]] || continue
        if [[ -n ${BENCH_PURGE:-} ]]; then rm -rf "$d"; else mv "$d" "$WORK/trash/$(basename "$d").$RANDOM$RANDOM"; fi
    done
}

now_ns() { local t=$EPOCHREALTIME; echo "${t/./}000"; }   # µs -> ns
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ---------------------------------------------------------------- prodhome

# prodhome_up CACHE_DIR LABEL [WAIT_SPARES]: one `up -d` in a fresh state
# dir, timed. With WAIT_SPARES, waits (untimed, 120 s
# at most) until the daemon has topped the cache's spare clusters up to the
# lab's three nodes, as it does in the background on a lab that runs for a
# while. Then `down` and the state dir discarded, untimed. Sets RESULT to
# the seconds; appends its phases.
prodhome_up() {
    local cache=$1 label=$2 wait_spares=${3:-} state t0 t1
    state=$(mktemp -d "$WORK/ph.XXXXXX")
    chmod 755 "$state"
    rmdir "$state"   # prodhome creates it
    LIVE_STATES+=("$state")
    t0=$(now_ns)
    if ! (cd "$WORK/cwd" && PRODHOME_CACHE_DIR=$cache "$BIN" --state-dir "$state" up -d \
            >"$WORK/last-up.out" 2>&1); then
        cat "$WORK/last-up.out" >&2
        log "prodhome up -d failed ($label)"
        return 1
    fi
    t1=$(now_ns)
    record_prodhome_phases "$label" "$t0" "$t1" "$state"
    if [[ -n $wait_spares ]]; then
        local i
        for ((i = 0; i < 1200; i++)); do
            (($(spares_in "$cache") >= 3)) && break
            sleep 0.1
        done
        (($(spares_in "$cache") >= 3)) || { log "spares were not refilled within 120 s"; return 1; }
    fi
    if ! (cd "$WORK/cwd" && timeout 90 "$BIN" --state-dir "$state" down >/dev/null 2>&1); then
        log "prodhome down failed ($label)"
        return 1
    fi
    discard "$state"
    RESULT=$(elapsed "$t0" "$t1")
}

# spares_in CACHE: the spare clusters ready to take (not those being made).
spares_in() {
    find "$1/spares" -mindepth 2 -maxdepth 2 -type d ! -name '.*' 2>/dev/null | wc -l
}

# Phases of one `up -d`, from the daemon's event log (ns timestamps) and the
# subscribers' server logs (ms timestamps):
#   prepare  invocation → "lab starting" (CLI + daemon spawn, binaries,
#            ports, secrets, clusters: initdb or template copy + pg_resetwal,
#            config files)
#   start    → the last node "ready" (server start + readiness probe)
#   setup    → "lab ready" (roles and passwords, schema, publication,
#            CREATE SUBSCRIPTION, the initial table sync when a table has
#            rows (the seed lab's have none: no copy), then hum's tables
#            and the sampler, beside the wait for the apply workers to
#            stream)
#   return   → `up -d` exits (the CLI's poll of the control API)
#   cpu      CPU seconds the daemon process itself used (user + sys, not its
#            children), read while the lab runs
record_prodhome_phases() {
    local label=$1 t0=$2 t1=$3 state=$4
    python3 - "$t0" "$t1" "$state" >>"$WORK/phases/$label" <<'EOF'
import json, os, sys
t0, t1, state = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ev = [json.loads(l) for l in open(os.path.join(state, "events.jsonl")) if l.strip()]
starting = min(e["ts_ns"] for e in ev if e["kind"] == "lab" and e.get("phase") == "starting")
ready_nodes = max(e["ts_ns"] for e in ev if e["kind"] == "ready")
ready = min(e["ts_ns"] for e in ev if e["kind"] == "lab" and e.get("phase") == "ready")
cpu = float("nan")
try:
    pid = json.load(open(os.path.join(state, "daemon.json")))["pid"]
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
except (OSError, KeyError, ValueError):
    pass
s = lambda a, b: "%.3f" % ((b - a) / 1e9)
print(" ".join([s(t0, starting), s(starting, ready_nodes), s(ready_nodes, ready), s(ready, t1), "%.2f" % cpu]))
EOF
}

# ------------------------------------------------------------ hand script

# What a developer scripts today, step by step: initdb, config and start for
# each node in turn, then psql for schema, role, publication, subscriptions,
# and a bounded poll until the initial sync is done. Timed from the first
# initdb to the end of the poll; ports are picked before (untimed). The
# servers are left running; hand_down stops them.
HAND_PW=bench-repl-secret
hand_up() {
    local base=$1 p0=$2 p1=$3 p2=$4
    local names=(publisher subscriber1 subscriber2) ports=("$p0" "$p1" "$p2")
    local i n dir t_init=0 t_start=0 a b
    mkdir -m 755 "$base"
    chown "$PGUSER_OS" "$base"
    for i in 0 1 2; do
        n=${names[$i]}
        dir=$base/$n
        mkdir -m 700 "$dir" "$dir.run"
        chown "$PGUSER_OS" "$dir" "$dir.run"
        a=$(now_ns)
        as_pg "$PGBIN/initdb" -D "$dir" -U postgres --auth-local=trust \
            --auth-host=scram-sha-256 -E UTF8 --locale=C >/dev/null
        b=$(now_ns); t_init=$((t_init + b - a))
        as_pg tee -a "$dir/postgresql.conf" >/dev/null <<EOF
port = ${ports[$i]}
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir.run'
wal_level = logical
EOF
        LIVE_HAND+=("$dir")
        a=$(now_ns)
        as_pg "$PGBIN/pg_ctl" -D "$dir" -w -t 60 -l "$base/$n.log" start >/dev/null
        b=$(now_ns); t_start=$((t_start + b - a))
    done
    HAND_T_INIT=$t_init HAND_T_START=$t_start
    psql_n() {   # psql_n INDEX SQL...
        local i=$1; shift
        as_pg env PGOPTIONS='-c client_min_messages=warning' "$PGBIN/psql" -X -q -At \
            -v ON_ERROR_STOP=1 -h "$base/${names[$i]}.run" -p "${ports[$i]}" -U postgres -d postgres "$@"
    }
    a=$(now_ns)
    for i in 0 1 2; do
        psql_n "$i" -c "create table books (id bigint primary key, title text not null, author text,
                  price numeric(10,2), stock integer not null default 0,
                  updated_at timestamptz not null default now());
                create index books_author_idx on books (author);"
    done
    psql_n 0 -c "create role repl login replication password '$HAND_PW';" \
             -c "grant select on books to repl;" \
             -c "create publication pub for table books;"
    for i in 1 2; do
        psql_n "$i" -c "create subscription sub_${names[$i]} connection 'host=127.0.0.1 port=$p0 user=repl password=$HAND_PW dbname=postgres' publication pub;"
    done
    b=$(now_ns); HAND_T_SQL=$((b - a))
    a=$b
    local deadline=$((SECONDS + SYNC_DEADLINE)) left
    for i in 1 2; do
        while :; do
            left=$(psql_n "$i" -c "select count(*) from pg_subscription_rel where srsubstate <> 'r'")
            [[ $left == 0 ]] && break
            if ((SECONDS >= deadline)); then
                echo "hand script: ${names[$i]} not synced within ${SYNC_DEADLINE}s" >&2
                return 1
            fi
            sleep 0.05
        done
    done
    b=$(now_ns); HAND_T_SYNC=$((b - a))
}

hand_down() {
    local base=$1 d
    for d in "$base"/publisher "$base"/subscriber1 "$base"/subscriber2; do
        [[ -f $d/postmaster.pid ]] && as_pg "$PGBIN/pg_ctl" -D "$d" -m fast -t 60 stop >/dev/null
    done
    discard "$base"
}

# hand_run: ports (untimed), hand_up (timed), hand_down (untimed). Sets
# RESULT to the seconds. Not called in a `||` or `$(...)` context, so that
# set -e stops the script at the first failing step (and the EXIT trap
# stops the servers).
hand_run() {
    local base p0 p1 p2 t0 t1
    base=$WORK/hand.$RANDOM$RANDOM
    p0=$(free_port) p1=$(free_port) p2=$(free_port)
    while [[ $p1 == "$p0" || $p2 == "$p0" || $p2 == "$p1" ]]; do p1=$(free_port) p2=$(free_port); done
    t0=$(now_ns)
    hand_up "$base" "$p0" "$p1" "$p2"
    t1=$(now_ns)
    hand_down "$base"
    awk -v i="$HAND_T_INIT" -v s="$HAND_T_START" -v q="$HAND_T_SQL" -v y="$HAND_T_SYNC" \
        'BEGIN { printf "%.3f %.3f %.3f %.3f\n", i/1e9, s/1e9, q/1e9, y/1e9 }' >>"$WORK/phases/hand"
    RESULT=$(elapsed "$t0" "$t1")
}

# ------------------------------------------------------------------ floors

# What the clusters alone cost on this disk, with nothing of prodhome's
# around them: the least a cold or a template-only `up` takes before any
# server starts. floor-cold: one initdb --no-sync, then two `cp -a` of it
# at once (a cold `up`'s clusters); floor-warm: three `cp -a` of the
# template at once (a template-only `up`'s). Timed; the copies are
# discarded. Sets RESULT to the seconds.
floor_run() {
    local kind=$1 dir template t0 t1 pids=() p
    dir=$(mktemp -d "$WORK/floor.XXXXXX")
    chmod 755 "$dir"
    chown "$PGUSER_OS" "$dir"
    template=$(find "$WARM_CACHE" -mindepth 1 -maxdepth 1 -name 'pg*-v*' -type d | head -n 1)
    [[ -n $template ]] || { log "no template in $WARM_CACHE"; return 1; }
    t0=$(now_ns)
    if [[ $kind == cold ]]; then
        as_pg "$PGBIN/initdb" -D "$dir/0" -U postgres -E UTF8 --locale=C --auth-local=peer \
            --auth-host=scram-sha-256 --no-instructions --no-sync >/dev/null
        template=$dir/0
        cp -a "$template" "$dir/1" & pids+=($!)
        cp -a "$template" "$dir/2" & pids+=($!)
    else
        cp -a "$template" "$dir/1" & pids+=($!)
        cp -a "$template" "$dir/2" & pids+=($!)
        cp -a "$template" "$dir/3" & pids+=($!)
    fi
    for p in "${pids[@]}"; do wait "$p"; done
    t1=$(now_ns)
    discard "$dir"
    RESULT=$(elapsed "$t0" "$t1")
}

# ------------------------------------------------------------------- stats

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
minimum() { sort -n | head -n 1; }
# Column-wise medians of a file of space-separated numbers.
col_medians() {
    local file=$1 cols c out=()
    cols=$(head -n 1 "$file" | wc -w)
    for ((c = 1; c <= cols; c++)); do out+=("$(awk -v c="$c" '{ print $c }' "$file" | median)"); done
    echo "${out[@]}"
}

# --------------------------------------------------------------------- run

log "prodhome: $BIN_ORIG ($(sha256sum "$BIN" | cut -c1-12), built $(date -r "$BIN_ORIG" '+%F %T'))"
log "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
log "$(nproc) cores, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, $("$PGBIN/postgres" --version)"
log "work dir $WORK ($(df --output=fstype "$WORK" | tail -n 1)), $ROUNDS rounds"

WARM_CACHE=$WORK/cache-warm
SPARE_CACHE=$WORK/cache-spare
mkdir -m 755 "$WARM_CACHE" "$SPARE_CACHE"
log "warm-up: filling the template caches and the spares (untimed)"
prodhome_up "$WARM_CACHE" warmup
prodhome_up "$SPARE_CACHE" warmup wait
rm -f "$WORK/phases/warmup"

declare -a COLD=() WARM=() SPARE=() HAND=() FLOOR_COLD=() FLOOR_WARM=()
run_variant() {
    local v=$1 cache
    # Untimed: no writeback of an earlier run's ~200 MB under way while
    # this one is timed.
    sync
    case $v in
        cold)
            # A fresh, empty cache: one initdb, copies for the other nodes.
            cache=$(mktemp -d "$WORK/cache-cold.XXXXXX"); chmod 755 "$cache"
            prodhome_up "$cache" cold; discard "$cache"; COLD+=("$RESULT") ;;
        warm)
            # The template alone: no spares (a lab that stopped right after
            # it was ready never made any), so every node is a copy.
            discard "$WARM_CACHE/spares"
            prodhome_up "$WARM_CACHE" warm; WARM+=("$RESULT") ;;
        spare) prodhome_up "$SPARE_CACHE" spare wait; SPARE+=("$RESULT") ;;
        hand) hand_run; HAND+=("$RESULT") ;;
        floor-cold) floor_run cold; FLOOR_COLD+=("$RESULT") ;;
        floor-warm) floor_run warm; FLOOR_WARM+=("$RESULT") ;;
    esac
    log "  $v: ${RESULT}s"
}
for ((r = 1; r <= ROUNDS; r++)); do
    if ((r % 2)); then order=(cold warm spare hand); else order=(hand spare warm cold); fi
    order+=(floor-cold floor-warm)
    log "round $r/$ROUNDS: ${order[*]}"
    for v in "${order[@]}"; do run_variant "$v"; done
done

cm=$(printf '%s\n' "${COLD[@]}" | median); cn=$(printf '%s\n' "${COLD[@]}" | minimum)
wm=$(printf '%s\n' "${WARM[@]}" | median); wn=$(printf '%s\n' "${WARM[@]}" | minimum)
sm=$(printf '%s\n' "${SPARE[@]}" | median); sn=$(printf '%s\n' "${SPARE[@]}" | minimum)
hm=$(printf '%s\n' "${HAND[@]}" | median); hn=$(printf '%s\n' "${HAND[@]}" | minimum)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
met() { awk -v r="$1" -v t="$2" 'BEGIN { print (r <= t) ? "met" : "MISSED" }'; }
rc_=$(ratio "$cm" "$hm"); rw_=$(ratio "$wm" "$hm"); rs_=$(ratio "$sm" "$hm")

echo
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "Raw wall times (s), rounds 1..$ROUNDS:"
echo "  cold: ${COLD[*]}"
echo "  warm: ${WARM[*]}"
echo "  spare: ${SPARE[*]}"
echo "  hand: ${HAND[*]}"
echo "  floor-cold: ${FLOOR_COLD[*]}"
echo "  floor-warm: ${FLOOR_WARM[*]}"
echo
echo "| variant | median (s) | min (s) | median / hand | target | |"
echo "|---|---:|---:|---:|---:|---|"
echo "| prodhome up -d, cold cache | $cm | $cn | $rc_ | ≤ 0.40 | $(met "$rc_" 0.4) |"
echo "| prodhome up -d, warm: template copies | $wm | $wn | $rw_ | ≤ 0.20 | $(met "$rw_" 0.2) |"
echo "| prodhome up -d, warm: spare clusters | $sm | $sn | $rs_ | ≤ 0.20 | $(met "$rs_" 0.2) |"
echo "| hand-written script | $hm | $hn | 1.00 | | |"
fcm=$(printf '%s\n' "${FLOOR_COLD[@]}" | median); fcn=$(printf '%s\n' "${FLOOR_COLD[@]}" | minimum)
fwm=$(printf '%s\n' "${FLOOR_WARM[@]}" | median); fwn=$(printf '%s\n' "${FLOOR_WARM[@]}" | minimum)
left() { awk -v t="$1" -v h="$hm" -v f="$2" 'BEGIN { printf "%.3f", t * h - f }'; }
echo
echo "The clusters alone on this disk (no prodhome; floor_run), and what each"
echo "target leaves for everything else (start, roles, schema, subscriptions,"
echo "initial sync, hum, the CLI) once they are made:"
echo
echo "| floor | median (s) | min (s) | median / hand | target × hand − floor (s) |"
echo "|---|---:|---:|---:|---:|"
echo "| cold: initdb --no-sync + 2× cp -a at once | $fcm | $fcn | $(ratio "$fcm" "$hm") | $(left 0.4 "$fcm") |"
echo "| template only: 3× cp -a at once | $fwm | $fwn | $(ratio "$fwm" "$hm") | $(left 0.2 "$fwm") |"
echo
echo "Where the time goes, medians (s). prodhome phases from its event log and"
echo "server logs; hand phases timed in the script:"
echo
echo "| prodhome | prepare (incl. clusters) | nodes start + probe | roles, schema, pub, subs, sync, hum start, streaming | CLI return | daemon CPU |"
echo "|---|---:|---:|---:|---:|---:|"
for v in cold warm spare; do
    read -r a b c d e < <(col_medians "$WORK/phases/$v")
    echo "| $v | $a | $b | $c | $d | $e |"
done
echo
echo "| hand | 3× initdb | 3× pg_ctl start -w | psql: schema, role, pub, subs | sync poll |"
echo "|---|---:|---:|---:|---:|"
read -r a b c d < <(col_medians "$WORK/phases/hand")
echo "| hand | $a | $b | $c | $d |"
