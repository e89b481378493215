#!/usr/bin/env bash
# Benchmark: DDL propagation delay. A lab of one publisher and two
# subscribers (`tables = "all"`, `ddl = "follow"`); CHANGES times over,
# `ALTER TABLE ... ADD COLUMN` by plain psql on the publisher, then every
# subscriber is polled (information_schema, every ~10 ms) until it has the
# column. Delay = from psql's return on the publisher (the commit) to the
# moment the LAST subscriber has the column; p50 and max over all changes.
# There is no peer to run beside it: without prodhome the change never
# arrives (logical replication carries no DDL). The polling psql costs a
# few ms per look, so the figures are an upper bound.
#
#   cargo build --release -p prodhome
#   PRODHOME_BIN=target/release/prodhome bash bench/ddl.sh      # CHANGES=50
#
# Target (issue 11): p50 <= 1 s.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${PRODHOME_BIN:-$ROOT/target/release/prodhome}
CHANGES=${CHANGES:-50}
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
[[ -x $BIN ]] || { echo "no prodhome binary at $BIN (build it: cargo build --release -p prodhome)" >&2; exit 2; }
[[ $CHANGES =~ ^[1-9][0-9]*$ ]] || { echo "CHANGES must be a positive integer" >&2; exit 2; }

WORK=$(mktemp -d /tmp/ddl-bench.XXXXXX)
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

cat >"$WORK/prodhome.toml" <<'TOML'
name = "ddlbench"
[postgres.origin]
[postgres.copy_a]
[postgres.copy_b]
[replication.all]
publisher = "origin"
subscribers = ["copy_a", "copy_b"]
schema = "schema.sql"
tables = "all"
TOML
echo "create table widgets (id bigint primary key, name text);" >"$WORK/schema.sql"
PH=("$BIN" -f "$WORK/prodhome.toml")
echo "bench: up: origin -> copy_a, copy_b" >&2
"${PH[@]}" up -d --timeout 120s >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; exit 1; }

# One connection string per node, from prodhome env (password included).
conn() { (eval "$("${PH[@]}" env "$1")"; echo "$DATABASE_URL"); }
ORIGIN=$(conn origin); A=$(conn copy_a); B=$(conn copy_b)
has_column() { # URL COLUMN -> exit 0 when the subscriber has it
    [[ $(psql "$1" -XtAc "select count(*) from information_schema.columns where table_name = 'widgets' and column_name = '$2'") == 1 ]]
}

delays=()
for ((i = 1; i <= CHANGES; i++)); do
    col="c$i"
    psql "$ORIGIN" -XqAc "alter table widgets add column $col int" >/dev/null
    t0=$EPOCHREALTIME
    for url in "$A" "$B"; do
        deadline=$(( ${EPOCHREALTIME%.*} + 30 ))
        until has_column "$url" "$col"; do
            (( ${EPOCHREALTIME%.*} < deadline )) || { echo "bench: $col did not arrive within 30 s" >&2; exit 1; }
        done
    done
    t1=$EPOCHREALTIME
    delays+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", (b - a) * 1000 }')")
done
sorted=$(printf '%s\n' "${delays[@]}" | sort -n)
p50=$(echo "$sorted" | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')
max=$(echo "$sorted" | tail -1)
min=$(echo "$sorted" | head -1)
echo "ddl propagation over $CHANGES changes (publisher commit -> both subscribers have the column): p50 ${p50} ms, min ${min} ms, max ${max} ms (target p50 <= 1000 ms)"
