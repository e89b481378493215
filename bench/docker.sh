#!/usr/bin/env bash
# Benchmark (issue 18): `prodhome up -d` of the seed lab on the Docker
# backend vs the native backend vs the same lab written by hand as a compose
# file (bench/compose/docker-compose.yml, the image prodhome builds, run by
# Debian's docker-compose 1.29, replication set up with psql), each timed to
# "replicated": every subscription streaming with its initial sync done
# (`up -d` returns only then). Side by side in one run, ROUNDS rounds, the
# order rotating. Then `image build`: cold (its image removed first, under a
# repository of its own so the labs' image stays) vs cached.
#
#   PRODHOME_BIN=target/release/prodhome bash bench/docker.sh   # ROUNDS=5
#
# Prints every time, then a markdown table: medians, min-max, ratios.
# Needs: a running Docker Engine, docker-compose, PostgreSQL 15 client
# binaries; runs as root (servers run as `postgres`) or in the docker group.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${PRODHOME_BIN:-$ROOT/target/release/prodhome}
ROUNDS=${ROUNDS:-5}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
COMPOSE_FILE=$ROOT/bench/compose/docker-compose.yml
DEADLINE=${DEADLINE:-120}   # bound of every wait, seconds
COLD_REPO=prodhome-bench/postgres

BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
[[ -x $BIN ]] || { echo "no prodhome binary at $BIN (cargo build --release -p prodhome)" >&2; exit 2; }
command -v docker-compose >/dev/null || { echo "docker-compose is missing: apt-get install -y docker-compose" >&2; exit 2; }
docker info >/dev/null 2>&1 || { echo "no Docker Engine answers (systemctl start docker, or dockerd &)" >&2; exit 2; }
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS must be a positive integer" >&2; exit 2; }

log() { echo "bench: $*" >&2; }
now_ns() { local t=$EPOCHREALTIME; echo "${t/./}000"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

WORK=$(mktemp -d /tmp/prodhome-docker-bench.XXXXXX)
chmod 755 "$WORK"
mkdir -m 755 "$WORK/cwd" "$WORK/cache"   # cwd: no prodhome.toml => the seed lab
cp "$BIN" "$WORK/prodhome"               # a rebuild during the run must not change it
PH=$WORK/prodhome
PROJECT=phbench$$
LIVE_STATES=()

compose() { docker-compose -p "$PROJECT" -f "$COMPOSE_FILE" "$@"; }

cleanup() {
    local rc=$? s
    set +e
    for s in "${LIVE_STATES[@]}"; do
        [[ -d $s ]] && (cd "$WORK/cwd" && timeout 120 "$PH" --state-dir "$s" down --purge >/dev/null 2>&1)
    done
    compose down -v >/dev/null 2>&1
    docker image ls --format '{{.Repository}}:{{.Tag}}' "$COLD_REPO" | xargs -r docker rmi -f >/dev/null 2>&1
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------- prodhome

# prodhome_up BACKEND CACHE: one `up -d` of the seed lab in a fresh state
# dir, timed; `down --purge` untimed. Sets RESULT.
prodhome_up() {
    local backend=$1 cache=$2 state t0 t1
    state=$WORK/state.$RANDOM$RANDOM
    LIVE_STATES+=("$state")
    t0=$(now_ns)
    if ! (cd "$WORK/cwd" && PRODHOME_CACHE_DIR=$cache timeout "$DEADLINE" "$PH" --state-dir "$state" \
            up -d --backend "$backend" >"$WORK/last.out" 2>&1); then
        cat "$WORK/last.out" >&2
        tail -n 20 "$state/daemon.log" >&2 2>/dev/null || true
        log "prodhome up -d --backend $backend failed"
        return 1
    fi
    t1=$(now_ns)
    (cd "$WORK/cwd" && timeout "$DEADLINE" "$PH" --state-dir "$state" down --purge >/dev/null 2>&1) ||
        { log "prodhome down --purge failed"; return 1; }
    RESULT=$(elapsed "$t0" "$t1")
}

# -------------------------------------------------------------- compose

PASSWORD=bench-$RANDOM$RANDOM
psql_at() {   # psql_at PORT SQL...
    local port=$1; shift
    PGPASSWORD=$PASSWORD PGOPTIONS='-c client_min_messages=warning' "$PGBIN/psql" -X -q -At \
        -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres "$@"
}

# What a compose user scripts: `up -d`, wait for each server, the schema on
# all three, role and publication, the subscriptions (to the publisher by
# its service name on the compose network), then a bounded poll until each
# subscription's worker runs and its tables are synced. Sets RESULT.
compose_up() {
    local ports=("$(free_port)" "$(free_port)" "$(free_port)") t0 t1 i deadline left
    t0=$(now_ns)
    PUB_PORT=${ports[0]} SUB1_PORT=${ports[1]} SUB2_PORT=${ports[2]} compose up -d >/dev/null 2>&1
    deadline=$((SECONDS + DEADLINE))
    for i in 0 1 2; do
        until psql_at "${ports[$i]}" -c 'select 1' >/dev/null 2>&1; do
            ((SECONDS < deadline)) || { log "compose: node $i not up within ${DEADLINE}s"; return 1; }
            sleep 0.05
        done
    done
    for i in 0 1 2; do psql_at "${ports[$i]}" -f "$WORK/cwd/schema.sql"; done
    psql_at "${ports[0]}" -c "create role repl login replication password '$PASSWORD';" \
        -c "grant select on books to repl;" -c "create publication books for table books;"
    for i in 1 2; do
        psql_at "${ports[$i]}" -c "create subscription books_sub$i connection \
            'host=publisher port=5432 user=repl password=$PASSWORD dbname=postgres' publication books;"
    done
    for i in 1 2; do
        while :; do
            left=$(psql_at "${ports[$i]}" -c "select (select count(*) from pg_subscription_rel where srsubstate <> 'r')
                + (select count(*) from pg_stat_subscription where pid is null)")
            [[ $left == 0 ]] && break
            ((SECONDS < deadline)) || { log "compose: subscriber $i not replicated within ${DEADLINE}s"; return 1; }
            sleep 0.05
        done
    done
    t1=$(now_ns)
    compose down -v >/dev/null 2>&1
    RESULT=$(elapsed "$t0" "$t1")
}

# ---------------------------------------------------------- image build

# image_build: wall time of `prodhome image build --repository COLD_REPO`;
# sets RESULT and CACHED (true/false from its JSON).
image_build() {
    local t0 t1 out
    t0=$(now_ns)
    out=$(cd "$WORK/cwd" && "$PH" image build --json --repository "$COLD_REPO")
    t1=$(now_ns)
    CACHED=$(python3 -c 'import json,sys; print(str(json.loads(sys.argv[1])["cached"]).lower())' "$out")
    RESULT=$(elapsed "$t0" "$t1")
}

# ----------------------------------------------------------------- stats

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
spread() { sort -n | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s–%s", lo, hi }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# ------------------------------------------------------------------- run

log "prodhome: $BIN ($(sha256sum "$PH" | cut -c1-12), built $(date -r "$BIN" '+%F %T'))"
log "$(docker version --format 'engine {{.Server.Version}} (API {{.Server.APIVersion}})'), $(docker-compose version --short)"
log "load average at start: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"
(cd "$WORK/cwd" && "$PH" init . >/dev/null && rm prodhome.toml)   # schema.sql for compose; the seed lab stays built in
IMAGE=$(cd "$WORK/cwd" && "$PH" image build --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["image"])')
export PRODHOME_PG_IMAGE=$IMAGE BENCH_PASSWORD=$PASSWORD
log "image $IMAGE; warm-up (untimed): one up of each variant"
prodhome_up docker "$WORK/cache"; prodhome_up native "$WORK/cache"; compose_up

declare -A TIMES=()
VARIANTS=(docker native compose)
for ((r = 0; r < ROUNDS; r++)); do
    order=("${VARIANTS[@]:r%3}" "${VARIANTS[@]:0:r%3}")
    for v in "${order[@]}"; do
        case $v in
            docker | native) prodhome_up "$v" "$WORK/cache" ;;
            compose) compose_up ;;
        esac
        TIMES[$v]+="$RESULT "
        log "round $((r + 1)): $v ${RESULT}s"
    done
done

COLD=() CACHED_T=()
for ((r = 0; r < ROUNDS; r++)); do
    docker image ls --format '{{.Repository}}:{{.Tag}}' "$COLD_REPO" | xargs -r docker rmi -f >/dev/null
    image_build; [[ $CACHED == false ]] || { log "a cold build found its image"; exit 1; }
    COLD+=("$RESULT")
    image_build; [[ $CACHED == true ]] || { log "a second build did not find its image"; exit 1; }
    CACHED_T+=("$RESULT")
    log "image build round $((r + 1)): cold ${COLD[-1]}s, cached ${CACHED_T[-1]}s"
done

med() { tr ' ' '\n' <<<"$1" | grep . | median; }
spr() { tr ' ' '\n' <<<"$1" | grep . | spread; }
D=$(med "${TIMES[docker]}") N=$(med "${TIMES[native]}") C=$(med "${TIMES[compose]}")
CB=$(med "${COLD[*]}") WB=$(med "${CACHED_T[*]}")
echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| variant | median s | min–max s | vs compose |"
echo "|---|---|---|---|"
echo "| prodhome up -d, docker backend | $D | $(spr "${TIMES[docker]}") | $(ratio "$D" "$C")× (target ≤ 1.0×) |"
echo "| prodhome up -d, native backend | $N | $(spr "${TIMES[native]}") | $(ratio "$N" "$C")× |"
echo "| compose file + psql setup | $C | $(spr "${TIMES[compose]}") | 1.00× |"
echo "| image build, cold | $CB | $(spr "${COLD[*]}") | |"
echo "| image build, cached | $WB | $(spr "${CACHED_T[*]}") | (target ≤ 1 s) |"
echo
echo "raw: docker ${TIMES[docker]}| native ${TIMES[native]}| compose ${TIMES[compose]}| cold ${COLD[*]} | cached ${CACHED_T[*]}"
