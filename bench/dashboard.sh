#!/usr/bin/env bash
# Benchmark: the dashboard's initial load for 1 h of data on the seed lab
# (3 nodes, every series the sampler and hum write, one sample a second:
# ~710,000 samples), side by side with the peer the seed system used:
# InfluxDB answering the same panels' queries as `prodhome export grafana`
# writes them (what Grafana sends for its first render, with Grafana's own
# overhead left out: it is not packaged for Debian).
#
#   (a) HTTP: ours = the requests the page makes before its first render
#       (/, dash.js, dash.css, then /api/dashboard, /api/events, /api/status
#       in parallel, as the browser does); peer = the dashboard's 17 InfluxQL
#       queries, 6 at a time (a browser's connections per host), over 1 h at
#       10 s intervals (the step ours picks for 1 h).
#   (b) Chromium headless: wall time to a dumped DOM in which every panel
#       drew its data, minus the same Chromium's wall time for about:blank.
#       A virtual-time budget of 100 ms (below the page's 1 s poll) makes it
#       dump right after the first render: virtual time stands still while
#       fetches are pending.
#
# Rounds alternate the order of ours and the peer; medians reported.
#
#   bash bench/dashboard.sh            # ROUNDS=7, SECONDS_OF_DATA=3600
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=${ROUNDS:-7}
SECONDS_OF_DATA=${SECONDS_OF_DATA:-3600}
EXAMPLES=$ROOT/target/debug/examples
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
INFLUXD=${INFLUXD:-/usr/bin/influxd}

log() { echo "bench: $*" >&2; }
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
now_ms() { date +%s%3N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

for v in ROUNDS SECONDS_OF_DATA; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "$v must be a positive integer" >&2; exit 2; }
done
for bin in "$CHROMIUM" "$INFLUXD" /usr/bin/curl; do
    [[ -x $bin ]] || { echo "$bin is missing (apt-get install chromium influxdb curl)" >&2; exit 2; }
done

WORK=$(mktemp -d /tmp/bench-dashboard.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

log "building the web examples (debug)"
(cd "$ROOT" && cargo build -q -p web --examples)
(cd "$ROOT" && cargo run -q -p web --example grafana_queries -- "$SECONDS_OF_DATA") >"$WORK/queries.txt"

log "filling the store and a line-protocol copy with $SECONDS_OF_DATA s of the seed lab"
"$EXAMPLES/seed_store" "$WORK/metrics.db" "$SECONDS_OF_DATA" "$WORK/seed.lp" 2>&1 | tee "$WORK/seed.out" >&2
SAMPLES=$(awk '/^wrote/ {print $2}' "$WORK/seed.out")

"$EXAMPLES/serve" "$WORK/metrics.db" >"$WORK/serve.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [[ -s $WORK/serve.out ]] && break; sleep 0.1; done
URL=$(head -1 "$WORK/serve.out")
[[ $URL == http://127.0.0.1:* ]] || { cat "$WORK/serve.out" >&2; exit 1; }

HTTP=$(free_port) RPC=$(free_port)
cat >"$WORK/influxdb.conf" <<EOF
reporting-enabled = false
bind-address = "127.0.0.1:$RPC"
[meta]
  dir = "$WORK/influx/meta"
[data]
  dir = "$WORK/influx/data"
  wal-dir = "$WORK/influx/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:$HTTP"
  log-enabled = false
  max-body-size = 0
EOF
"$INFLUXD" run -config "$WORK/influxdb.conf" >"$WORK/influxd.log" 2>&1 &
PIDS+=($!)
INFLUX=http://127.0.0.1:$HTTP
for _ in $(seq 300); do curl -sf -o /dev/null "$INFLUX/ping" && break; sleep 0.1; done
curl -sf -XPOST "$INFLUX/query" --data-urlencode "q=CREATE DATABASE lab" >/dev/null
log "loading InfluxDB"
split -l 50000 "$WORK/seed.lp" "$WORK/lp."
for f in "$WORK"/lp.*; do
    curl -sf -XPOST "$INFLUX/write?db=lab&precision=ns" --data-binary "@$f" || { tail "$WORK/influxd.log" >&2; exit 1; }
done

# The page's requests before its first render: the document, its two
# assets, then the three API calls at once.
ours_http() {
    curl -sf -o /dev/null "$URL" -o /dev/null "${URL}assets/dash.js" -o /dev/null "${URL}assets/dash.css"
    curl -sf -Z --parallel-max 6 -o /dev/null "${URL}api/dashboard?since=1h&step=auto" \
        -o /dev/null "${URL}api/events?since=0" -o /dev/null "${URL}api/status" 2>/dev/null
}
# Encoded once, outside the timing.
mapfile -t PEER_URLS < <(while IFS= read -r q; do
    echo "$INFLUX/query?db=lab&epoch=ms&q=$(python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$q")"
done <"$WORK/queries.txt")
peer_http() {
    local args=()
    for u in "${PEER_URLS[@]}"; do args+=(-o /dev/null "$u"); done
    curl -sf -Z --parallel-max 6 "${args[@]}" 2>/dev/null
}
chromium_ms() { # chromium_ms URL OUT: wall ms of a --dump-dom run
    local t0 t1
    rm -rf "$WORK/profile"
    t0=$(now_ms)
    timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$WORK/profile" --window-size=1280,800 --virtual-time-budget=100 \
        --dump-dom "$1" >"$2" 2>/dev/null
    t1=$(now_ms)
    echo $((t1 - t0))
}

# Sizes and a sanity check that each side answers with data.
DASH_BYTES=$(curl -sf -o /dev/null -w '%{size_download}' "${URL}api/dashboard?since=1h&step=auto")
PEER_BYTES=0
for u in "${PEER_URLS[@]}"; do
    n=$(curl -sf -o "$WORK/peer.json" -w '%{size_download}' "$u")
    grep -q '"values"' "$WORK/peer.json" || { log "peer query returned no data: $u"; cat "$WORK/peer.json" >&2; exit 1; }
    PEER_BYTES=$((PEER_BYTES + n))
done

: >"$WORK/ours_http"; : >"$WORK/peer_http"; : >"$WORK/api_only"; : >"$WORK/chromium"; : >"$WORK/blank"; : >"$WORK/render"
for round in $(seq "$ROUNDS"); do
    for side in $( ((round % 2)) && echo "ours peer" || echo "peer ours"); do
        t0=$(now_ms)
        if [[ $side == ours ]]; then ours_http; else peer_http; fi
        t1=$(now_ms)
        echo $((t1 - t0)) >>"$WORK/${side}_http"
    done
    t0=$(now_ms); curl -sf -o /dev/null "${URL}api/dashboard?since=1h&step=auto"; t1=$(now_ms)
    echo $((t1 - t0)) >>"$WORK/api_only"
    if ((round % 2)); then
        chromium_ms "about:blank" "$WORK/blank.html" >>"$WORK/blank"
        chromium_ms "${URL}#range=1h" "$WORK/dom.html" >>"$WORK/chromium"
    else
        chromium_ms "${URL}#range=1h" "$WORK/dom.html" >>"$WORK/chromium"
        chromium_ms "about:blank" "$WORK/blank.html" >>"$WORK/blank"
    fi
    # Every panel drew more than one point.
    if grep -o 'data-points="[0-9]*"' "$WORK/dom.html" | grep -q 'data-points="[01]"'; then
        log "round $round: a panel drew no data"; grep -o 'data-panel="[a-z_]*" data-points="[0-9]*"' "$WORK/dom.html" >&2; exit 1
    fi
    echo $(($(tail -1 "$WORK/chromium") - $(tail -1 "$WORK/blank"))) >>"$WORK/render"
    log "round $round: ours $(tail -1 "$WORK/ours_http") ms, peer $(tail -1 "$WORK/peer_http") ms, chromium $(tail -1 "$WORK/chromium") ms (blank $(tail -1 "$WORK/blank") ms)"
done

OURS=$(median <"$WORK/ours_http") PEER=$(median <"$WORK/peer_http") API=$(median <"$WORK/api_only")
CHR=$(median <"$WORK/chromium") BLANK=$(median <"$WORK/blank") RENDER=$(median <"$WORK/render")
PANELS=$(grep -o 'class="panel"' "$WORK/dom.html" | wc -l)
cat <<EOF

| ${SECONDS_OF_DATA} s of the seed lab (3 nodes, $SAMPLES samples), debug build, median of $ROUNDS | ours | peer (InfluxDB 1.6, Grafana's queries) | ours / peer |
|---|---|---|---|
| (a) HTTP before first render | $OURS ms (6 requests, /api/dashboard $DASH_BYTES B) | $PEER ms ($(wc -l <"$WORK/queries.txt") queries, $PEER_BYTES B) | $(awk -v a="$OURS" -v b="$PEER" 'BEGIN {printf "%.2fx", (b ? a / b : 0)}') |
| /api/dashboard alone (all $PANELS panels) | $API ms | | |
| (b) Chromium to a DOM with every panel drawn, minus about:blank (same round) | $RENDER ms (medians: $CHR ms - $BLANK ms) | not measured (no Grafana) | |

Target: initial load well under a second.
EOF
