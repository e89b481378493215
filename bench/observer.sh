#!/usr/bin/env bash
# Benchmark: the observer effect — what the lab itself costs a workload.
# TPC-B at max rate (hum, -c CLIENTS, -R max) in two settings, taking turns
# round by round, the order alternating:
#   lab:    the whole lab as a user runs it: `prodhome up -d` of a publisher
#           replicating every table to two subscribers, the sampler every
#           1 s into the embedded store, the dashboard open in headless
#           Chromium (it polls the API), the clients through the
#           publisher's proxied port (the client link);
#   direct: the same server (the publisher's data directory and config,
#           started with pg_ctl after `prodhome down`) driven on its own
#           port with nothing else running: no daemon, no subscribers, no
#           sampler, no browser;
#   lab-mt: the lab again, its daemon on a 2-worker multi-thread runtime
#           (PRODHOME_DAEMON_THREADS=2) instead of its one thread.
# Target: lab tps >= 0.9x direct and lab p99 <= 1.2x direct (medians of the
# per-round ratios).
#
#   bash bench/observer.sh                              # release build of prodhome
#   ROUNDS=5 SECS=30 CLIENTS=4 bash bench/observer.sh
#   PRODHOME_BIN=target/debug/prodhome bash bench/observer.sh
#
# Runs as root (servers then run as `postgres`). Prints the raw rounds
# (stderr) and a markdown table (stdout).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-20}
CLIENTS=${CLIENTS:-4}
SCALE=${SCALE:-10}
for v in ROUNDS SECS CLIENTS SCALE; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "$v must be a positive integer" >&2; exit 2; }
done
log() { echo "bench: $*" >&2; }

if [[ -z ${PRODHOME_BIN:-} ]]; then
    log "building prodhome (release)"
    (cd "$ROOT" && cargo build -q --release -p prodhome)
    PRODHOME_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/prodhome
fi
BIN=$(realpath "$PRODHOME_BIN")
command -v chromium >/dev/null || { echo "chromium is needed (apt-get install chromium)" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || { echo "run as root: the direct side starts the lab's server as postgres" >&2; exit 2; }

WORK=$(mktemp -d /tmp/prodhome-observer.XXXXXX)
chmod 755 "$WORK"
STATE=$WORK/state
mkdir -m 700 "$WORK/pglog" && chown postgres: "$WORK/pglog"   # the direct server's log
NAME=observer$$
CHROME_PID=
DIRECT_UP=
ph() { (cd "$WORK" && "$BIN" --state-dir "$STATE" "$@"); }
stop_chrome() {
    if [[ -n $CHROME_PID ]]; then
        kill "$CHROME_PID" 2>/dev/null || true
        wait "$CHROME_PID" 2>/dev/null || true
        CHROME_PID=
    fi
}
stop_direct() {
    if [[ -n $DIRECT_UP ]]; then
        runuser -u postgres -- "$PGBIN/pg_ctl" -D "$STATE/nodes/publisher/data" -m fast -t 60 stop >/dev/null 2>&1 || true
        DIRECT_UP=
    fi
}
cleanup() {
    local rc=$?
    set +e
    stop_chrome
    stop_direct
    ph down --purge >/dev/null 2>&1
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat >"$WORK/prodhome.toml" <<TOML
name = "$NAME"
postgres_version = 15

[postgres.publisher]
[postgres.subscriber1]
[postgres.subscriber2]

[replication.bench]
publisher = "publisher"
subscribers = ["subscriber1", "subscriber2"]
schema = "schema.sql"
tables = "all"

[sample]
interval = "1s"
sinks = ["embedded"]
TOML
echo "CREATE TABLE marker (id int PRIMARY KEY);" >"$WORK/schema.sql"

# lab_up [THREADS]: up -d, the daemon on THREADS runtime threads (1: its
# default current-thread runtime). LAB_UP holds what is up.
LAB_UP=
lab_up() {
    local threads=${1:-1}
    PRODHOME_DAEMON_THREADS=$threads ph up -d >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; exit 1; }
    LAB_UP=$threads
}
lab_down() { ph down >/dev/null; LAB_UP=; }
field() { python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

log "up -d: publisher + 2 subscribers, sampler at 1 s ($BIN)"
lab_up 1
ph status --json >"$WORK/status.json"
API=$(field "$WORK/status.json" 's["api"]')
PORT=$(field "$WORK/status.json" '[n for n in s["nodes"] if n["name"] == "publisher"][0]["port"]')
PROXY=$(field "$WORK/status.json" '[n for n in s["nodes"] if n["name"] == "publisher"][0]["proxy_port"]')
PASSWORD=$(ph env publisher | sed -n 's/^export PGPASSWORD=//p')
[[ -n $PORT && -n $PROXY && -n $PASSWORD ]] || { echo "no ports or password in status/env" >&2; exit 1; }
url() { echo "postgresql://postgres:$PASSWORD@127.0.0.1:$1/postgres"; }
log "publisher: direct 127.0.0.1:$PORT, proxied 127.0.0.1:$PROXY; dashboard $API"
log "hum --init (TPC-B scale $SCALE), replicated to both subscribers"
ph hum --node publisher -w tpcb --init -s "$SCALE" -t 1 -P 0 --json >/dev/null

# run SIDE: one TPC-B run; appends "round side tps p99_ms" to $WORK/raw.
run() {
    local side=$1 port out=$WORK/hum.json
    port=$([[ $side == direct ]] && echo "$PORT" || echo "$PROXY")
    "$BIN" hum --url "$(url "$port")" -w tpcb -c "$CLIENTS" -R max -T "${SECS}s" -P 0 --json >"$out" 2>"$out.err" ||
        { cat "$out.err" >&2; exit 1; }
    read -r tps p99 < <(field "$out" '"%s %s" % (s["tps"], s["latency_ms"]["p99"])')
    echo "$r $side $tps $p99" >>"$WORK/raw"
    log "round $r $side: $tps tps, p99 $p99 ms (load $(cut -d' ' -f1 /proc/loadavg))"
}
# lab_round SIDE THREADS
lab_round() {
    [[ $LAB_UP == "$2" ]] || { [[ -z $LAB_UP ]] || lab_down; lab_up "$2"; }
    chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$WORK/chrome" --window-size=1280,800 "$API/" >/dev/null 2>&1 &
    CHROME_PID=$!
    run "$1"
    kill -0 "$CHROME_PID" 2>/dev/null || { echo "chromium exited during the run" >&2; exit 1; }
    stop_chrome
}
direct_round() {
    [[ -z $LAB_UP ]] || lab_down
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$STATE/nodes/publisher/data" -l "$WORK/pglog/direct.log" -w -t 60 start >/dev/null
    DIRECT_UP=1
    run direct
    stop_direct
}

: >"$WORK/raw"
# Sides: the daemon on its default one-thread runtime (lab), on a 2-worker
# multi-thread runtime (lab-mt), and direct; the order rotates each round.
SIDES=(lab direct lab-mt)
for ((r = 0; r < ROUNDS; r++)); do
    for ((i = 0; i < 3; i++)); do
        case ${SIDES[(i + r) % 3]} in
            lab) lab_round lab 1 ;;
            lab-mt) lab_round lab-mt 2 ;;
            direct) direct_round ;;
        esac
    done
done

echo
echo "observer effect: $(nproc) cores, $("$PGBIN/postgres" --version), $(basename "$BIN") $("$BIN" --version 2>/dev/null | head -1)," \
    "TPC-B scale $SCALE, hum -c $CLIENTS -R max, $ROUNDS rounds of ${SECS}s per side, load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$WORK/raw" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
by = {}
for r, side, tps, p99 in rows:
    by.setdefault(r, {})[side] = (float(tps), float(p99))
sides = ("direct", "lab", "lab-mt")
tps = {s: [v[s][0] for v in by.values()] for s in sides}
p99 = {s: [v[s][1] for v in by.values()] for s in sides}
med = statistics.median
print()
print("| side | tps (median) | tps spread | p99 ms (median) | p99 spread | tps / direct (median of rounds) | p99 / direct | target |")
print("|---|---:|---:|---:|---:|---:|---:|---|")
for s in sides:
    rt = [v[s][0] / v["direct"][0] for v in by.values()]
    rp = [v[s][1] / v["direct"][1] for v in by.values()]
    verdict = "" if s == "direct" else ("tps " + ("met" if med(rt) >= 0.9 else "MISSED") + ", p99 " + ("met" if med(rp) <= 1.2 else "MISSED"))
    print(f"| {s} | {med(tps[s]):.1f} | {min(tps[s]):.1f}–{max(tps[s]):.1f} | {med(p99[s]):.2f} | {min(p99[s]):.2f}–{max(p99[s]):.2f}"
          f" | {med(rt):.3f} ({', '.join(f'{x:.2f}' for x in rt)}) | {med(rp):.3f} ({', '.join(f'{x:.2f}' for x in rp)}) | {verdict} |")
print()
print("lab: the daemon on its one-thread runtime; lab-mt: PRODHOME_DAEMON_THREADS=2. Targets: tps >= 0.9x, p99 <= 1.2x direct.")
EOF
