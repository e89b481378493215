#!/usr/bin/env bash
# Benchmark: prodhome's TCP proxy (crates/proxy: one link, no fault in force)
# against the proxies a user would otherwise put on the path — HAProxy in TCP
# mode and socat — and a direct connection, all to the same Postgres server
# over the same loopback path, in one run; plus the smallest tokio proxy
# there is (examples/copy_baseline.rs, accept + copy_bidirectional) for the
# userspace floor.
#   - latency: a prepared `select 1` from one client, the sides taking turns
#     in blocks of 500 (examples/query_latency.rs): added p50 and p99; then
#     again with everything pinned to one CPU (the proxies' own cost);
#   - pgbench TPC-B (-M prepared -c 4 and -c 16, -T PGBENCH_T), the sides in
#     turn, the order rotating each round: tps ratio;
#   - bulk: `COPY (...) TO STDOUT` of ~200 MB through psql into a file, the
#     order rotating likewise: throughput ratio.
# Prints the raw rounds (stderr) and a markdown table of medians (stdout).
# HAProxy and socat are installed with apt-get when missing (as root), or
# left out with a note when they cannot be.
#
#   bash bench/proxy.sh                   # debug builds of the examples
#   PROFILE=release bash bench/proxy.sh   # release builds of the two proxies
#   ROUNDS=5 PGBENCH_ROUNDS=3 PGBENCH_T=15 bash bench/proxy.sh
#   PARTS="pgbench" bash bench/proxy.sh   # only some of: latency pgbench bulk
#   LINK_THREADS="1 2 8" bash bench/proxy.sh
#       the link on one current-thread runtime (1, side `link`: how the
#       daemon runs it) and on multi-thread runtimes of N workers (`link-tN`)
#
# Runs as root (the server runs as `postgres`) or as an ordinary user.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PROFILE=${PROFILE:-debug}           # profile of the link and the baseline proxy
ROUNDS=${ROUNDS:-5}                 # latency and bulk rounds
PGBENCH_ROUNDS=${PGBENCH_ROUNDS:-3} # pgbench rounds (each runs every side)
PGBENCH_T=${PGBENCH_T:-15}          # seconds per pgbench run
QUERIES=${QUERIES:-20000}           # select 1 per side per latency round
PARTS=${PARTS:-latency pgbench bulk} # which measurements to run
LINK_THREADS=${LINK_THREADS:-1 $(nproc)} # the link's runtimes: 1 is current-thread
BULK_ROWS=${BULK_ROWS:-200000}      # rows of 1000 bytes (+ newline)

log() { echo "bench: $*" >&2; }

for v in ROUNDS PGBENCH_ROUNDS PGBENCH_T QUERIES BULK_ROWS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "$v must be a positive integer" >&2; exit 2; }
done
[[ $PROFILE == debug || $PROFILE == release ]] || { echo "PROFILE must be debug or release" >&2; exit 2; }
[[ -x $PGBIN/initdb ]] || { echo "no PostgreSQL binaries in $PGBIN" >&2; exit 2; }

log "building the examples (the client in debug, the proxies in $PROFILE)"
(cd "$ROOT" && cargo build -q -p proxy --example query_latency)
if [[ $PROFILE == release ]]; then
    (cd "$ROOT" && cargo build -q --release -p proxy --example link --example copy_baseline)
else
    (cd "$ROOT" && cargo build -q -p proxy --example link --example copy_baseline)
fi
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
QUERY_BIN=$TARGET/debug/examples/query_latency
LINK_BIN=$TARGET/$PROFILE/examples/link
BASE_BIN=$TARGET/$PROFILE/examples/copy_baseline
for tool in haproxy socat; do
    if ! command -v $tool >/dev/null && [[ $(id -u) -eq 0 ]]; then
        log "installing $tool (apt-get)"
        apt-get install -y $tool >/dev/null 2>&1 || log "could not install $tool: left out"
    fi
done

WORK=$(mktemp -d /tmp/prodhome-proxy-bench.XXXXXX)
chmod 755 "$WORK"
mkdir -m 700 "$WORK/data" "$WORK/run"   # cluster, and its unix socket
if [[ $(id -u) -eq 0 ]]; then
    as_pg() { runuser -u postgres -- "$@"; }
    chown postgres: "$WORK/data" "$WORK/run"
else
    as_pg() { "$@"; }
fi
PIDS=()
SERVER_UP=
cleanup() {
    local rc=$? p
    set +e
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    [[ -n $SERVER_UP ]] && as_pg "$PGBIN/pg_ctl" -D "$WORK/data" -m immediate -t 30 stop >/dev/null 2>&1
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
now_ns() { local t=$EPOCHREALTIME; echo "${t/./}000"; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.3f", a / b }'; }
at_least() { awk -v r="$1" -v t="$2" 'BEGIN { print (r >= t) ? "met" : "MISSED" }'; }
at_most() { awk -v r="$1" -v t="$2" 'BEGIN { print (r <= t) ? "met" : "MISSED" }'; }

# ------------------------------------------------------------ the server
PGPORT=$(free_port)
log "initdb + start a bare server on 127.0.0.1:$PGPORT"
as_pg "$PGBIN/initdb" -U postgres --auth=trust -E UTF8 --locale=C -D "$WORK/data" >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$WORK/data" -l "$WORK/run/server.log" -w -t 60 \
    -o "-p $PGPORT -k $WORK/run -c listen_addresses=127.0.0.1" start >/dev/null
SERVER_UP=1

# ------------------------------------------------------------ the proxies
declare -A PID_OF=()
# start_proxy NAME BIN [VAR=VALUE...]: runs BIN in front of the server, with
# those variables in its environment; sets PROXY_PORT.
start_proxy() {
    local name=$1 bin=$2 i
    shift 2
    env "$@" "$bin" "127.0.0.1:$PGPORT" >"$WORK/$name.port" 2>"$WORK/$name.log" &
    PIDS+=($!)
    for ((i = 0; i < 200; i++)); do
        [[ -s $WORK/$name.port ]] && break
        kill -0 "${PIDS[-1]}" 2>/dev/null || { cat "$WORK/$name.log" >&2; exit 1; }
        sleep 0.05
    done
    PROXY_PORT=$(head -1 "$WORK/$name.port")
    PID_OF[$name]=${PIDS[-1]}
    [[ $PROXY_PORT =~ ^[0-9]+$ ]] || { echo "$name printed no port" >&2; exit 1; }
    log "$name 127.0.0.1:$PROXY_PORT -> 127.0.0.1:$PGPORT (${bin#"$ROOT"/})"
}
# The link as the daemon runs it (one current-thread runtime: side `link`),
# and on multi-thread runtimes of N workers for each other N in
# LINK_THREADS (side `link-tN`).
start_proxy link "$LINK_BIN"; LINK_PID=${PIDS[-1]}
declare -A PORT=([direct]=$PGPORT [link]=$PROXY_PORT)
SIDES=(direct link)
for n in $LINK_THREADS; do
    ((n > 1)) || continue
    start_proxy "link-t$n" "$LINK_BIN" PROXY_THREADS="$n"
    PORT[link-t$n]=$PROXY_PORT
    SIDES+=("link-t$n")
done
start_proxy baseline "$BASE_BIN"
PORT[baseline]=$PROXY_PORT
SIDES+=(baseline)
# wait_port NAME PORT: until a Postgres answers through PORT (bounded).
wait_port() {
    local i
    for ((i = 0; i < 200; i++)); do
        "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$2" && return 0
        kill -0 "${PIDS[-1]}" 2>/dev/null || { cat "$WORK/$1.log" >&2; exit 1; }
        sleep 0.05
    done
    echo "$1 never forwarded to the server" >&2
    exit 1
}
if command -v haproxy >/dev/null; then
    PORT[haproxy]=$(free_port)
    # TCP mode, one frontend, one server; threads default to the CPUs.
    cat >"$WORK/haproxy.cfg" <<CFG
global
    maxconn 4096
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
frontend pg
    bind 127.0.0.1:${PORT[haproxy]}
    default_backend pg
backend pg
    server pg 127.0.0.1:$PGPORT
CFG
    haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
    PIDS+=($!)
    PID_OF[haproxy]=$!
    wait_port haproxy "${PORT[haproxy]}"
    log "haproxy 127.0.0.1:${PORT[haproxy]} -> 127.0.0.1:$PGPORT ($(haproxy -v | head -1 | cut -d' ' -f1-3))"
    SIDES+=(haproxy)
fi
if command -v socat >/dev/null; then
    PORT[socat]=$(free_port)
    # A process per connection (fork), NODELAY both ways like the others.
    socat "TCP-LISTEN:${PORT[socat]},bind=127.0.0.1,reuseaddr,fork,nodelay" \
        "TCP:127.0.0.1:$PGPORT,nodelay" >"$WORK/socat.log" 2>&1 &
    PIDS+=($!)
    PID_OF[socat]=$!
    wait_port socat "${PORT[socat]}"
    log "socat 127.0.0.1:${PORT[socat]} -> 127.0.0.1:$PGPORT ($(socat -V | sed -n 2p | cut -d' ' -f1-3))"
    SIDES+=(socat)
fi
# The sides in the order round $1 runs them (rotating).
order() { local i n=${#SIDES[@]}; for ((i = 0; i < n; i++)); do echo "${SIDES[(i + $1) % n]}"; done; }

# --------------------------------------------------------------- latency
# latency_rounds FILE [PREFIX...]: ROUNDS rounds of the latency client (run
# under PREFIX), one line per side and round: `ROUND SIDE p50_us X p99_us Y ...`.
latency_rounds() {
    local file=$1 r s
    shift
    : >"$file"
    for ((r = 0; r < ROUNDS; r++)); do
        "$@" "$QUERY_BIN" "$QUERIES" 500 $(for s in $(order "$r"); do echo "$s=${PORT[$s]}"; done) |
            sed "s/^/$r /" | tee -a "$file" | sed 's/^/  /' >&2
    done
}
# lat FILE SIDE KEY: the median over rounds of KEY (p50_us, p99_us) for SIDE.
lat() { awk -v s="$2" -v k="$3" '$2 == s { for (i = 3; i < NF; i += 2) if ($i == k) print $(i + 1) }' "$1" | median; }
# added FILE SIDE KEY: the median over rounds of SIDE's KEY minus direct's in
# the same round (paired, so a noisy round moves both).
added() {
    awk -v s="$2" -v k="$3" '
        { for (i = 3; i < NF; i += 2) if ($i == k) v[$1, $2] = $(i + 1); r[$1] = 1 }
        END { for (x in r) if ((x, s) in v && (x, "direct") in v) print v[x, s] - v[x, "direct"] }' "$1" |
        median | awk '{ printf "%+.1f", $1 }'
}

want() { [[ " $PARTS " == *" $1 "* ]]; }
: >"$WORK/lat"
if want latency; then
    log "latency: $ROUNDS rounds of $QUERIES x select 1 per side"
    latency_rounds "$WORK/lat"
fi

# The same, with the server, both proxies and the client on one CPU: every
# hop is then a context switch on that CPU instead of a wakeup of the other
# (virtual) CPU, which isolates the proxies' own cost from the machine's
# cross-CPU wakeup latency. New backends inherit the postmaster's affinity.
PINNED=
if want latency && (($(nproc) > 1)) && command -v taskset >/dev/null; then
    PINNED=1
    PGPID=$(head -1 "$WORK/data/postmaster.pid")
    pin() { local p; for p in "$PGPID" "${PIDS[@]}"; do taskset -a -c -p "$1" "$p" >/dev/null; done; }
    log "latency pinned to CPU 0: $ROUNDS rounds of $QUERIES x select 1 per side"
    pin 0
    latency_rounds "$WORK/lat-pinned" taskset -c 0
    pin "0-$(($(nproc) - 1))"
fi

# --------------------------------------------------------------- pgbench
CLIENTS=(4 16)
log "pgbench: init scale 10, then $PGBENCH_ROUNDS rounds of -M prepared -c ${CLIENTS[*]} -T $PGBENCH_T per side"
want pgbench && "$PGBIN/pgbench" -h 127.0.0.1 -p "$PGPORT" -U postgres -i -s 10 -q postgres >/dev/null 2>&1
declare -A TPS=()
want pgbench || PGBENCH_ROUNDS=0
for ((r = 0; r < PGBENCH_ROUNDS; r++)); do
    for c in "${CLIENTS[@]}"; do
        for side in $(order "$r"); do
            out=$("$PGBIN/pgbench" -h 127.0.0.1 -p "${PORT[$side]}" -U postgres \
                -M prepared -c "$c" -j 2 -T "$PGBENCH_T" postgres 2>&1)
            tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out" | tail -1)
            [[ -n $tps ]] || { echo "pgbench ($side) printed no tps:" >&2; echo "$out" >&2; exit 1; }
            log "  round $r -c $c $side: $tps tps"
            TPS[$side,$c]+="$tps "
        done
    done
done

# ------------------------------------------------------------------ bulk
BYTES=$((BULK_ROWS * 1001))
COPY="COPY (select repeat('x', 1000) from generate_series(1, $BULK_ROWS)) TO STDOUT"
log "bulk: $ROUNDS rounds of $((BYTES / 1000000)) MB via COPY TO STDOUT per side"
declare -A MBS=()
want bulk || BULK_ROUNDS=0
for ((r = 0; r < ${BULK_ROUNDS:-$ROUNDS}; r++)); do
    for side in $(order "$r"); do
        t0=$(now_ns)
        "$PGBIN/psql" -X -q -h 127.0.0.1 -p "${PORT[$side]}" -U postgres -d postgres -c "$COPY" >"$WORK/bulk.out"
        t1=$(now_ns)
        got=$(stat -c %s "$WORK/bulk.out")
        ((got == BYTES)) || { echo "bulk ($side): got $got bytes, expected $BYTES" >&2; exit 1; }
        rm -f "$WORK/bulk.out"
        mbs=$(awk -v b="$BYTES" -v a="$t0" -v z="$t1" 'BEGIN { printf "%.1f", b / 1e6 / ((z - a) / 1e9) }')
        log "  round $r $side: $mbs MB/s"
        MBS[$side]+="$mbs "
    done
done

# Each proxy's own CPU time over the whole run (user + system, with reaped
# children: socat forks one per connection). Every proxy carried the same
# work, so this compares their cost per byte and per hop, and the
# neighbours' load moves it far less than it moves tps. Stopping the link
# makes it print its stats.
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.1f", ($14 + $15 + $16 + $17) / hz }' "/proc/$1/stat"; }
declare -A CPU=()
for side in "${!PID_OF[@]}"; do CPU[$side]=$(cpu_of "${PID_OF[$side]}"); done
LINK_CPU=${CPU[link]}
kill "$LINK_PID"
wait "$LINK_PID" || true

# ---------------------------------------------------------------- report
med() { tr ' ' '\n' <<<"$1" | { grep . || true; } | median; }
# paired SIDE C: the median over rounds of SIDE's tps / direct's in the same round.
paired() {
    paste <(tr ' ' '\n' <<<"${TPS[$1,$2]:-}" | { grep . || true; }) <(tr ' ' '\n' <<<"${TPS[direct,$2]:-}" | { grep . || true; }) |
        awk '{ print $1 / $2 }' | median | awk '{ printf "%.3f", $1 }'
}
spread() { tr ' ' '\n' <<<"$1" | { grep . || true; } | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s–%s", lo, hi }'; }
DMBS=$(med "${MBS[direct]:-}")
echo
echo "proxy overhead: $(nproc) cores, $("$PGBIN/postgres" --version), link and baseline built $PROFILE"
echo "medians of $ROUNDS latency rounds ($QUERIES queries per side each; \"added\" is the median of per-round differences to direct), $PGBENCH_ROUNDS pgbench rounds (${PGBENCH_T}s each; × direct is the median of per-round ratios), $ROUNDS bulk rounds of $((BYTES / 1000000)) MB"
echo
echo "| side | select 1 p50 (µs) | p99 (µs) | added p50 | added p99 | TPC-B -c 4 tps | × direct | TPC-B -c 16 tps | × direct | bulk MB/s | × direct |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for side in "${SIDES[@]}"; do
    mbs=$(med "${MBS[$side]:-}")
    echo "| $side | $(lat "$WORK/lat" "$side" p50_us) | $(lat "$WORK/lat" "$side" p99_us)" \
        "| $(added "$WORK/lat" "$side" p50_us) | $(added "$WORK/lat" "$side" p99_us)" \
        "| $(med "${TPS[$side,4]:-}") | $(paired "$side" 4) | $(med "${TPS[$side,16]:-}") | $(paired "$side" 16)" \
        "| $mbs | $(ratio "$mbs" "$DMBS") |"
done
echo
echo "Spread (min–max over rounds): $(for side in "${SIDES[@]}"; do printf '%s -c 4 %s, -c 16 %s, bulk %s; ' "$side" "$(spread "${TPS[$side,4]:-}")" "$(spread "${TPS[$side,16]:-}")" "$(spread "${MBS[$side]:-}")"; done)"
if [[ -n $PINNED ]]; then
    echo
    echo "Latency with everything pinned to CPU 0 (the proxies' own cost, without cross-CPU wakeups):"
    echo
    echo "| side | select 1 p50 (µs) | p99 (µs) | added p50 | added p99 |"
    echo "|---|---:|---:|---:|---:|"
    for side in "${SIDES[@]}"; do
        echo "| $side | $(lat "$WORK/lat-pinned" "$side" p50_us) | $(lat "$WORK/lat-pinned" "$side" p99_us)" \
            "| $(added "$WORK/lat-pinned" "$side" p50_us) | $(added "$WORK/lat-pinned" "$side" p99_us) |"
    done
fi
if [[ -n ${PORT[haproxy]:-} ]]; then
    # The target: the link at least as good as HAProxy on all three.
    vs() { ratio "$1" "$2"; }
    L50=$(added "$WORK/lat" link p50_us); H50=$(added "$WORK/lat" haproxy p50_us)
    L99=$(added "$WORK/lat" link p99_us); H99=$(added "$WORK/lat" haproxy p99_us)
    echo
    echo "link vs haproxy: added p50 $L50 vs $H50 µs: $(awk -v l="$L50" -v h="$H50" 'BEGIN { print (l <= h) ? "met" : "MISSED" }');" \
        "added p99 $L99 vs $H99 µs: $(awk -v l="$L99" -v h="$H99" 'BEGIN { print (l <= h) ? "met" : "MISSED" }');" \
        "tps -c 4 $(vs "$(paired link 4)" "$(paired haproxy 4)")×: $(at_least "$(vs "$(paired link 4)" "$(paired haproxy 4)")" 1);" \
        "tps -c 16 $(vs "$(paired link 16)" "$(paired haproxy 16)")×: $(at_least "$(vs "$(paired link 16)" "$(paired haproxy 16)")" 1);" \
        "bulk $(vs "$(med "${MBS[link]:-}")" "$(med "${MBS[haproxy]:-}")")×: $(at_least "$(vs "$(med "${MBS[link]:-}")" "$(med "${MBS[haproxy]:-}")")" 1)"
fi
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "proxy CPU over the run (user + system): $(for side in "${SIDES[@]}"; do [[ -n ${CPU[$side]:-} ]] && printf '%s %ss; ' "$side" "${CPU[$side]}"; done)"
echo "link stats: $(tail -1 "$WORK/link.log")"
