#!/usr/bin/env bash
# Benchmark: `prodhome data fill` against `pgbench -i` (client-side
# generation) filling a pgbench_accounts-shaped table of the same size, on
# the same server, in one run, with each of data fill's steps measured
# beside them.
#
# The server is a one-node lab brought up by prodhome (fsync on,
# wal_level = logical, autovacuum off, defaults otherwise); pgbench reaches it with
# `prodhome env`.
#
# The table: accounts (aid int PRIMARY KEY, bid int NOT NULL, abalance int
# NOT NULL, filler char(84)), emptied (TRUNCATE) before each round, with a
# new seed each round and prodhome.data_fills emptied so the fill runs again.
#
# Variants, all in every round, order rotating between rounds:
#   ours          data fill --table accounts --rows N (defaults: binary COPY,
#                 one stream per core, the key built after the load)
#   keep-keys     ... --keep-keys            (the key maintained row by row)
#   text          ... --copy-format text     (text COPY)
#   one-stream    ... --streams 1
#   ours-vacuum   ours, then VACUUM ANALYZE accounts: the end state of the
#                 default pgbench -i (rows, key, visibility map, statistics)
#   pgbench-dtgp  pgbench -i -q -s SCALE -I dtgp  (drop, create, generate
#                 with COPY ... FREEZE in one transaction, primary keys)
#   pgbench       pgbench -i -q -s SCALE     (the default dtgvp: also VACUUM
#                 ANALYZE of its four tables)
#   floor         the server's share alone, as ours asks for it: the same
#                 number of rows, already encoded (binary files written
#                 before the rounds), sent by two concurrent `psql \copy`
#                 of half each, then ALTER TABLE ... ADD PRIMARY KEY. No
#                 generation, no ledger: what no client can go below with
#                 two streams and the key after the load.
# N = 100,000 × SCALE accounts (pgbench adds 10 × SCALE tellers and SCALE
# branches). Timed: the command's wall time; CPU: the client's (user+sys,
# from /usr/bin/time) and the server's (every process of the postmaster,
# exited backends included, from /proc). rows/s = N / wall; MB/s = the
# accounts heap (pg_relation_size) / wall. Each run checkpoints first.
# Medians over rounds, the spread (min–max), and the ratios of pgbench's
# time to ours, paired per round.
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
export PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
VARIANTS=(${VARIANTS:-ours keep-keys text one-stream ours-vacuum pgbench-dtgp pgbench floor})

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
# Autovacuum off: otherwise it vacuums the table a run just filled while
# the next variant runs (and only some variants' next step cancels it), so
# one side would pay for the other's cleanup. Each variant does its own
# work only; `pgbench` (default -i) and ours-vacuum vacuum explicitly.
cat >"$WORK/prodhome.toml" <<TOML
name = "databench"
[postgres.bench]
settings = { autovacuum = "off" }
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
# The floor's input: the rows in two binary COPY files (half each).
HALF=$((ROWS / 2))
psql_c "\\copy (SELECT i, 1 + (i - 1) / 100000, 0, '' FROM generate_series(1, $HALF) i) TO '$WORK/floor-1.bin' (FORMAT binary)"
psql_c "\\copy (SELECT i, 1 + (i - 1) / 100000, 0, '' FROM generate_series($HALF + 1, $ROWS) i) TO '$WORK/floor-2.bin' (FORMAT binary)"
floor_load() {
    psql_c "\\copy accounts FROM '$WORK/floor-1.bin' (FORMAT binary)" &
    psql_c "\\copy accounts FROM '$WORK/floor-2.bin' (FORMAT binary)" || { wait; return 1; }
    wait $! && psql_c "ALTER TABLE accounts ADD PRIMARY KEY (aid)"
}
export -f floor_load psql_c
export WORK
# The postmaster: the first line of its pid file (readable as root, or as
# the account that owns the data directory).
POSTMASTER=$(head -1 "$(psql_c "SHOW data_directory")/postmaster.pid" 2>/dev/null || true)
TICK=$(getconf CLK_TCK)

# CPU seconds of the server: every live process of the postmaster's, and
# the backends it has reaped (its cutime + cstime).
server_cpu() {
    [[ -n $POSTMASTER ]] || { echo 0; return; }
    local total pid
    total=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$POSTMASTER/stat")
    for pid in $(ps -o pid= --ppid "$POSTMASTER"); do
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
    done
    awk -v t="$total" -v k="$TICK" 'BEGIN {printf "%.3f", t / k}'
}

# Runs one variant; prints "wall client_cpu server_cpu heap_bytes".
run() {
    local variant=$1 seed=$2 table=accounts cmd s0 s1
    case $variant in
        pgbench*)
            table=pgbench_accounts
            psql_c "DROP TABLE IF EXISTS pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history" "CHECKPOINT" >/dev/null
            cmd=("$PGBIN/pgbench" -i -q -s "$SCALE")
            [[ $variant == pgbench-dtgp ]] && cmd+=(-I dtgp) ;;
        floor)
            psql_c "TRUNCATE accounts" "ALTER TABLE accounts DROP CONSTRAINT accounts_pkey" "CHECKPOINT" >/dev/null
            cmd=(bash -c floor_load) ;;
        *)
            # The ledger exists once a fill ran: empty it so this round fills again.
            psql_c "TRUNCATE accounts" \
                "DO \$\$ BEGIN IF to_regclass('prodhome.data_fills') IS NOT NULL THEN DELETE FROM prodhome.data_fills; DELETE FROM prodhome.data_fill_batches; END IF; END \$\$" \
                "CHECKPOINT" >/dev/null
            cmd=("${PH[@]}" data fill --table accounts --rows "$ROWS" --seed "$seed" --json)
            case $variant in
                keep-keys) cmd+=(--keep-keys) ;;
                text) cmd+=(--copy-format text) ;;
                one-stream) cmd+=(--streams 1) ;;
                ours-vacuum) cmd=(bash -c '"$@" && "$PGBIN/psql" -XAtq -c "VACUUM ANALYZE accounts"' _ "${cmd[@]}") ;;
            esac ;;
    esac
    s0=$(server_cpu)
    /usr/bin/time -o "$WORK/time" -f "%e %U %S" "${cmd[@]}" >"$WORK/$variant.out" 2>&1 \
        || { cat "$WORK/$variant.out" >&2; exit 1; }
    s1=$(server_cpu)
    local rows; rows=$(psql_c "SELECT count(*) FROM $table")
    [[ $rows == "$ROWS" ]] || { echo "$variant wrote $rows rows, not $ROWS" >&2; exit 1; }
    local keys; keys=$(psql_c "SELECT count(*) FROM pg_index WHERE indrelid = '$table'::regclass AND indisprimary")
    [[ $keys == 1 ]] || { echo "$variant left $table without its primary key" >&2; exit 1; }
    # Where the time went, from each tool's own summary.
    case $variant in
        pgbench*) grep -o 'done in .*' "$WORK/$variant.out" | tr -d '\n' >"$WORK/$variant.phases" ;;
        floor) echo "two concurrent \\copy of pre-encoded rows, then ADD PRIMARY KEY" >"$WORK/$variant.phases" ;;
        *) grep -E '"(load|keys)_seconds"' "$WORK/$variant.out" | tr -d ' \n' >"$WORK/$variant.phases" ;;
    esac
    awk -v s0="$s0" -v s1="$s1" -v b="$(psql_c "SELECT pg_relation_size('$table')")" \
        '{printf "%.3f %.2f %.2f %d\n", $1, $2 + $3, s1 - s0, b}' "$WORK/time"
}

for v in "${VARIANTS[@]}"; do : >"$WORK/$v.txt"; done
n=${#VARIANTS[@]}
for round in $(seq 1 "$ROUNDS"); do
    line="round $round:"
    for i in $(seq 0 $((n - 1))); do
        v=${VARIANTS[$(((i + round - 1) % n))]}
        run "$v" "$round" >>"$WORK/$v.txt"
        line+=" $v $(tail -1 "$WORK/$v.txt" | cut -d' ' -f1)s"
    done
    log "$line"
done

col() { cut -d' ' -f"$2" "$WORK/$1.txt" | median; }
echo "rows: $ROWS (pgbench scale $SCALE), rounds: $ROUNDS; medians (wall min–max); CPU seconds: client, server"
for v in "${VARIANTS[@]}"; do
    awk -v n="$v" -v s="$(col "$v" 1)" -v c="$(col "$v" 2)" -v sv="$(col "$v" 3)" -v b="$(col "$v" 4)" -v r="$ROWS" \
        -v lo="$(cut -d' ' -f1 "$WORK/$v.txt" | sort -n | head -1)" -v hi="$(cut -d' ' -f1 "$WORK/$v.txt" | sort -n | tail -1)" \
        'BEGIN {printf "%-13s %6.2f s (%.2f–%.2f) %9.0f rows/s %6.1f MB/s  cpu client %5.2f s server %5.2f s\n", n, s, lo, hi, r / s, b / 1e6 / s, c, sv}'
done
# Ratios paired per round: pgbench's time / ours.
ratio() {
    paste -d' ' "$WORK/$1.txt" "$WORK/$2.txt" | awk '{print $5 / $1}' | sort -n | tr '\n' ' ' |
        awk -v a="$1" -v b="$2" '{n = split($0, r, " "); m = (n % 2 ? r[(n + 1) / 2] : (r[n / 2] + r[n / 2 + 1]) / 2);
            printf "ratio rows/s %s / %s: median %.2fx (rounds %.2f–%.2fx)\n", a, b, m, r[1], r[n]}'
}
has() { [[ " ${VARIANTS[*]} " == *" $1 "* ]]; }
for pair in "ours pgbench-dtgp" "ours pgbench" "ours-vacuum pgbench" "floor pgbench-dtgp" "floor pgbench" "ours floor"; do
    set -- $pair
    if has "$1" && has "$2"; then ratio "$1" "$2"; fi
done
echo "(target: ours / pgbench -i >= 1.5x)"
echo "phases of the last round:"
for v in "${VARIANTS[@]}"; do echo "  $v: $(cat "$WORK/$v.phases")"; done
