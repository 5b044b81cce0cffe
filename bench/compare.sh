#!/usr/bin/env bash
# Runs every lothub-bench scenario against lothub and against Mosquitto on this machine, in
# the same run, and prints a Markdown table with the ratios.
#
#   bench/compare.sh                 # 5 s per traffic run
#   DURATION=10 bench/compare.sh     # longer runs
#
# Needs /usr/sbin/mosquitto (or MOSQUITTO=path) for the comparison; installs nothing itself.
# Without Mosquitto it measures lothub alone. Both brokers listen on 127.0.0.1 only; results
# (one JSON line per run) are kept in target/bench/.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5}
IDLE_CONNS=${IDLE_CONNS:-1000}
LOTHUB_PORT=${LOTHUB_PORT:-18883}
MOSQ_PORT=${MOSQ_PORT:-18884}
MOSQUITTO=${MOSQUITTO:-/usr/sbin/mosquitto}
OUT=${OUT:-target/bench}

cargo build --release --bin lothub --bin lothub-bench
BENCH=target/release/lothub-bench
mkdir -p "$OUT"
: >"$OUT/lothub.jsonl"
: >"$OUT/mosquitto.jsonl"
TMP=$(mktemp -d)
LPID=""
MPID=""

cleanup() {
    [ -n "$LPID" ] && kill "$LPID" 2>/dev/null || true
    [ -n "$MPID" ] && kill "$MPID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

wait_port() {
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "nothing listens on 127.0.0.1:$1" >&2
    return 1
}

start_lothub() {
    [ -n "$LPID" ] && { kill "$LPID"; wait "$LPID" 2>/dev/null || true; }
    rm -rf "$TMP/lothub-data"
    target/release/lothub --listen "127.0.0.1:$LOTHUB_PORT" --data-dir "$TMP/lothub-data" \
        >>"$TMP/lothub.log" 2>&1 &
    LPID=$!
    wait_port "$LOTHUB_PORT"
}

HAVE_MOSQ=0
[ -x "$MOSQUITTO" ] && HAVE_MOSQ=1
start_mosquitto() {
    [ "$HAVE_MOSQ" = 1 ] || return 0
    [ -n "$MPID" ] && { kill "$MPID"; wait "$MPID" 2>/dev/null || true; }
    printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$MOSQ_PORT" >"$TMP/mosquitto.conf"
    "$MOSQUITTO" -c "$TMP/mosquitto.conf" >>"$TMP/mosquitto.log" 2>&1 &
    MPID=$!
    wait_port "$MOSQ_PORT"
}

# run NAME ARGS...: the same run against lothub, then Mosquitto; a failed run is reported and
# skipped, the others go on.
run() {
    local name=$1
    shift
    echo "### $name: lothub-bench $*" >&2
    "$BENCH" --port "$LOTHUB_PORT" --pid "$LPID" --name "$name" --json "$@" >"$TMP/out" 2>&1 \
        || echo "lothub run $name failed" >&2
    grep -v '^{' "$TMP/out" >&2 || true
    grep '^{' "$TMP/out" >>"$OUT/lothub.jsonl" || true
    if [ "$HAVE_MOSQ" = 1 ]; then
        "$BENCH" --port "$MOSQ_PORT" --pid "$MPID" --name "$name" --json "$@" >"$TMP/out" 2>&1 \
            || echo "mosquitto run $name failed" >&2
        grep -v '^{' "$TMP/out" >&2 || true
        grep '^{' "$TMP/out" >>"$OUT/mosquitto.jsonl" || true
    fi
}

echo "## machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
    "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
[ "$HAVE_MOSQ" = 1 ] && echo "## $("$MOSQUITTO" -h 2>/dev/null | head -1)" >&2

# Idle memory first, on fresh brokers, so earlier traffic does not inflate the baseline.
start_lothub
start_mosquitto
run idle -n "$IDLE_CONNS" --duration 4 idle

# Throughput: as fast as each broker sustains (the bench caps the delivery backlog).
start_lothub
start_mosquitto
run qos0-1to1 --duration "$DURATION" qos0-1to1
run qos1-nto1 --duration "$DURATION" qos1-nto1
run fanout --duration "$DURATION" fanout
run pairs --duration "$DURATION" pairs

# Latency at the same offered load, below what either broker saturates at.
run qos0-1to1@10k --duration "$DURATION" --rate 10000 qos0-1to1
run qos1-nto1@10k --duration "$DURATION" --rate 10000 qos1-nto1
run fanout@400 --duration "$DURATION" --rate 400 fanout
run pairs@10k --duration "$DURATION" --rate 10000 pairs

echo "## load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
if [ "$HAVE_MOSQ" = 1 ]; then
    "$BENCH" compare --a-label lothub --a "$OUT/lothub.jsonl" --b-label mosquitto --b "$OUT/mosquitto.jsonl"
else
    echo "Mosquitto not found at $MOSQUITTO: lothub results only, in $OUT/lothub.jsonl"
    cat "$OUT/lothub.jsonl"
fi
