#!/usr/bin/env bash
# Benchmark: `prodhome data fill` against `pgbench -i` (client-side
# generation, `-I dtgp`: drop, create, generate with COPY, primary keys)
# filling a pgbench_accounts-shaped table of the same size, on the same
# server, in one run. The server is a one-node lab brought up by prodhome
# (fsync on, defaults otherwise); pgbench reaches it with `prodhome env`.
#
# ours: `data fill --table accounts --rows N` into
#   accounts (aid int PRIMARY KEY, bid int NOT NULL, abalance int NOT NULL, filler char(84))
# (the key exists while loading: data fill fills the user's tables as they
# are), after TRUNCATE and an emptied prodhome.data_fills, with a new seed
# each round. peer: `pgbench -i -q -s SCALE -I dtgp` (N = 100,000 × SCALE
# accounts, plus its 10 × SCALE tellers and SCALE branches). Timed: the
# command's wall time (bash EPOCHREALTIME); rows/s = N / time; MB/s = the
# accounts heap (pg_relation_size) / time. Each round checkpoints first;
# the order alternates between rounds; medians reported, and the ratio.
#
#   cargo build --release -p prodhome
#   PRODHOME_BIN=target/release/prodhome bash bench/data.sh      # ROUNDS=3 SCALE=10
#
# Target (issue 14): rows/s ≥ 1.5× pgbench -i.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${PRODHOME_BIN:-$ROOT/target/release/prodhome}
ROUNDS=${ROUNDS:-3}
SCALE=${SCALE:-10}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
[[ -x $BIN ]] || { echo "no prodhome binary at $BIN (build it: cargo build --release -p prodhome)" >&2; exit 2; }
[[ -x $PGBIN/pgbench ]] || { echo "no pgbench in $PGBIN" >&2; exit 2; }
[[ $ROUNDS =~ ^[1-9][0-9]*$ && $SCALE =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS and SCALE must be positive integers" >&2; exit 2; }

log() { echo "bench: $*" >&2; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

WORK=$(mktemp -d /tmp/data-bench.XXXXXX)
chmod 755 "$WORK"
cleanup() {
    local rc=$?
    set +e
    "$BIN" -f "$WORK/prodhome.toml" down --purge >/dev/null 2>&1
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ROWS=$((100000 * SCALE))
cat >"$WORK/prodhome.toml" <<TOML
name = "databench"
[postgres.bench]
TOML
PH=("$BIN" -f "$WORK/prodhome.toml")
log "up: one node"
"${PH[@]}" up -d --timeout 120s >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; exit 1; }
eval "$("${PH[@]}" env bench)"
export PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE
psql_c() {
    local args=() s
    for s in "$@"; do args+=(-c "$s"); done
    "$PGBIN/psql" -XAtq -v ON_ERROR_STOP=1 "${args[@]}"
}
psql_c "CREATE TABLE accounts (aid int PRIMARY KEY, bid int NOT NULL, abalance int NOT NULL, filler char(84))"

now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", b - a}'; }

ours() {
    local seed=$1 t0 t1
    # The ledger exists once a fill ran: empty it so this round fills again.
    psql_c "TRUNCATE accounts" \
        "DO \$\$ BEGIN IF to_regclass('prodhome.data_fills') IS NOT NULL THEN DELETE FROM prodhome.data_fills; DELETE FROM prodhome.data_fill_batches; END IF; END \$\$" \
        "CHECKPOINT" >/dev/null
    t0=$(now)
    "${PH[@]}" data fill --table accounts --rows "$ROWS" --seed "$seed" --json >"$WORK/ours.json"
    t1=$(now)
    local rows; rows=$(psql_c "SELECT count(*) FROM accounts")
    [[ $rows == "$ROWS" ]] || { echo "data fill wrote $rows rows, not $ROWS" >&2; exit 1; }
    echo "$(elapsed "$t0" "$t1") $(psql_c "SELECT pg_relation_size('accounts')")"
}

peer() {
    local t0 t1
    psql_c "DROP TABLE IF EXISTS pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history" "CHECKPOINT" >/dev/null
    t0=$(now)
    "$PGBIN/pgbench" -i -q -s "$SCALE" -I dtgp >"$WORK/pgbench.log" 2>&1 || { cat "$WORK/pgbench.log" >&2; exit 1; }
    t1=$(now)
    echo "$(elapsed "$t0" "$t1") $(psql_c "SELECT pg_relation_size('pgbench_accounts')")"
}

: >"$WORK/ours.txt"; : >"$WORK/peer.txt"
for round in $(seq 1 "$ROUNDS"); do
    if (( round % 2 )); then
        ours "$round" >>"$WORK/ours.txt"; peer >>"$WORK/peer.txt"
    else
        peer >>"$WORK/peer.txt"; ours "$round" >>"$WORK/ours.txt"
    fi
    log "round $round: ours $(tail -1 "$WORK/ours.txt" | cut -d' ' -f1) s, pgbench -i $(tail -1 "$WORK/peer.txt" | cut -d' ' -f1) s"
done

report() {
    local file=$1 name=$2 secs bytes
    secs=$(cut -d' ' -f1 "$file" | median)
    bytes=$(cut -d' ' -f2 "$file" | median)
    awk -v n="$name" -v s="$secs" -v b="$bytes" -v r="$ROWS" \
        'BEGIN {printf "%-22s %8.2f s %12.0f rows/s %8.1f MB/s\n", n, s, r / s, b / 1e6 / s}'
}
echo "rows: $ROWS (pgbench scale $SCALE), rounds: $ROUNDS, medians"
report "$WORK/ours.txt" "prodhome data fill"
report "$WORK/peer.txt" "pgbench -i -I dtgp"
awk -v a="$(cut -d' ' -f1 "$WORK/ours.txt" | median)" -v b="$(cut -d' ' -f1 "$WORK/peer.txt" | median)" \
    'BEGIN {printf "ratio (rows/s, ours / pgbench -i): %.2fx (target >= 1.5x)\n", b / a}'
