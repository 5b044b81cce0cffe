#!/usr/bin/env bash
# Interop check: the Mosquitto command-line clients (mosquitto_pub / mosquitto_sub) against the
# release lothub binary on 127.0.0.1. Called by .ci/run; runs alone too: `bash .ci/interop.sh`.
#
# Checks, each bounded by `timeout`:
#   - QoS 0, 1 and 2 delivery with MQTT 5, 3.1.1 and 3.1 (the QoS of the delivered PUBLISH is
#     read from mosquitto_sub's debug output);
#   - a message published with MQTT 5 received by an MQTT 3.1 subscriber and the other way round;
#   - a retained message read by a later subscriber (flag r1), then cleared by an empty retained
#     publish;
#   - $SYS/broker/version readable;
#   - SIGTERM stops the hub with exit status 0.
# On failure: a line saying which check failed, the tail of the hub's log, exit status 1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

HOST=127.0.0.1
WORK=$(mktemp -d)
HUB_PID=""
HUB_LOG="$WORK/lothub.log"

cleanup() {
    if [[ -n "$HUB_PID" ]] && kill -0 "$HUB_PID" 2>/dev/null; then
        kill -KILL "$HUB_PID" 2>/dev/null || true
        wait "$HUB_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
    echo "interop: FAIL: $*" >&2
    if [[ -s "$HUB_LOG" ]]; then
        echo "---- last 40 lines of the lothub log ----" >&2
        tail -n 40 "$HUB_LOG" >&2
    fi
    exit 1
}

pass() {
    echo "interop: ok: $*"
}

# --- tools -------------------------------------------------------------------------------------
if ! command -v mosquitto_pub >/dev/null || ! command -v mosquitto_sub >/dev/null; then
    echo "interop: installing mosquitto-clients and mosquitto (apt-get)"
    SUDO=""
    if [[ "$(id -u)" -ne 0 ]]; then SUDO="sudo"; fi
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y mosquitto-clients mosquitto
fi
# The mosquitto package may start its own broker on 1883; lothub uses another port (below), so
# the two never meet. The package is installed for the benchmark comparison.

# --- build and start ---------------------------------------------------------------------------
# LOTHUB_BIN picks the binary (.ci/run passes the debug one that `cargo test` already built, so
# CI compiles the crate once more only for clippy, not for a release build).
BIN=${LOTHUB_BIN:-target/release/lothub}
if [[ "${INTEROP_SKIP_BUILD:-}" != "1" && -z "${LOTHUB_BIN:-}" ]]; then
    cargo build --release --bin lothub
fi
[[ -x "$BIN" ]] || fail "$BIN was not built"

port_in_use() {
    (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

PORT=${INTEROP_PORT:-18830}
while port_in_use "$PORT"; do
    PORT=$((PORT + 1))
    [[ $PORT -lt 18930 ]] || fail "no free port found in 18830-18929"
done

"$BIN" --listen "$HOST:$PORT" --data-dir "$WORK/data" >"$HUB_LOG" 2>&1 &
HUB_PID=$!

for _ in $(seq 1 300); do
    if port_in_use "$PORT"; then break; fi
    kill -0 "$HUB_PID" 2>/dev/null || fail "lothub exited before listening on $HOST:$PORT"
    sleep 0.1
done
port_in_use "$PORT" || fail "lothub did not listen on $HOST:$PORT within 30 s"
pass "lothub listening on $HOST:$PORT (pid $HUB_PID)"

# --- helpers -----------------------------------------------------------------------------------
# wait_for FILE REGEX SECONDS: true once FILE has a line matching REGEX.
wait_for() {
    local file=$1 regex=$2 deadline=$((SECONDS + $3))
    while ((SECONDS < deadline)); do
        if grep -qE "$regex" "$file" 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    grep -qE "$regex" "$file" 2>/dev/null
}

# start_sub NAME VERSION QOS TOPIC [extra mosquitto_sub args...]: a subscriber in the background
# that takes one message, with debug output in $WORK/NAME.out; returns once SUBACK arrived.
start_sub() {
    local name=$1 version=$2 qos=$3 topic=$4
    shift 4
    # stdbuf: line-buffered output, so SUBACK shows up while the client runs.
    timeout 20 stdbuf -oL mosquitto_sub -h "$HOST" -p "$PORT" -V "$version" -q "$qos" -t "$topic" \
        -i "s-$name" -C 1 -W 15 -d "$@" >"$WORK/$name.out" 2>&1 &
    echo $! >"$WORK/$name.pid"
    wait_for "$WORK/$name.out" "received SUBACK" 10 ||
        fail "$name: no SUBACK within 10 s ($(tr '\n' ' ' <"$WORK/$name.out"))"
}

# finish_sub NAME: waits for the subscriber started by start_sub and checks its exit status.
finish_sub() {
    local name=$1 status=0
    wait "$(cat "$WORK/$name.pid")" || status=$?
    [[ $status -eq 0 ]] ||
        fail "$name: mosquitto_sub exited with $status ($(tr '\n' ' ' <"$WORK/$name.out"))"
}

pub() {
    timeout 10 mosquitto_pub -h "$HOST" -p "$PORT" "$@" ||
        fail "mosquitto_pub $* exited with $?"
}

# --- QoS x protocol version --------------------------------------------------------------------
for version in mqttv5 mqttv311 mqttv31; do
    for qos in 0 1 2; do
        name="$version-q$qos"
        topic="interop/$name"
        payload="hello $name $RANDOM"
        start_sub "$name" "$version" "$qos" "$topic"
        pub -V "$version" -q "$qos" -i "p-$name" -t "$topic" -m "$payload"
        finish_sub "$name"
        grep -qxF "$payload" "$WORK/$name.out" ||
            fail "$name: payload not delivered ($(tr '\n' ' ' <"$WORK/$name.out"))"
        grep -qE "received PUBLISH \(d0, q$qos, r0" "$WORK/$name.out" ||
            fail "$name: not delivered at QoS $qos ($(grep PUBLISH "$WORK/$name.out"))"
        pass "$name: delivered at QoS $qos"
    done
done

# --- across versions ---------------------------------------------------------------------------
start_sub "cross-31" mqttv31 1 "interop/cross/a"
pub -V mqttv5 -q 1 -i "p-cross-5" -t "interop/cross/a" -m "from v5"
finish_sub "cross-31"
grep -qxF "from v5" "$WORK/cross-31.out" || fail "MQTT 5 publish not received by MQTT 3.1"
start_sub "cross-5" mqttv5 2 "interop/cross/b"
pub -V mqttv31 -q 2 -i "p-cross-31" -t "interop/cross/b" -m "from v31"
finish_sub "cross-5"
grep -qxF "from v31" "$WORK/cross-5.out" || fail "MQTT 3.1 publish not received by MQTT 5"
pass "MQTT 5 <-> MQTT 3.1 in both directions"

# --- retained ----------------------------------------------------------------------------------
pub -V mqttv311 -q 1 -r -i "p-retain" -t "interop/retained" -m "kept"
timeout 20 mosquitto_sub -h "$HOST" -p "$PORT" -V mqttv5 -t "interop/retained" -i "s-retain" \
    -C 1 -W 10 -d >"$WORK/retain.out" 2>&1 ||
    fail "retained: later subscriber got nothing ($(tr '\n' ' ' <"$WORK/retain.out"))"
grep -qxF "kept" "$WORK/retain.out" || fail "retained: wrong payload"
grep -qE "received PUBLISH \(d0, q0, r1" "$WORK/retain.out" ||
    fail "retained: delivered without the retain flag ($(grep PUBLISH "$WORK/retain.out"))"
pass "retained message read by a later subscriber"

pub -V mqttv311 -q 1 -r -n -i "p-unretain" -t "interop/retained"
status=0
timeout 10 mosquitto_sub -h "$HOST" -p "$PORT" -V mqttv311 -t "interop/retained" \
    -i "s-unretain" -C 1 -W 2 >"$WORK/unretain.out" 2>"$WORK/unretain.err" || status=$?
# 27 is mosquitto_sub's "timed out" status (-W): nothing was delivered, as expected.
[[ $status -eq 27 && ! -s "$WORK/unretain.out" ]] ||
    fail "retained: still delivered after an empty retained publish (status $status: $(cat "$WORK/unretain.out"))"
pass "empty retained publish clears the retained message"

# --- $SYS --------------------------------------------------------------------------------------
# Published at start and every sys interval (10 s by default): 15 s covers one interval.
timeout 25 mosquitto_sub -h "$HOST" -p "$PORT" -t '$SYS/broker/version' -i "s-sys" -C 1 -W 15 \
    >"$WORK/sys.out" 2>&1 || fail "\$SYS/broker/version: nothing received within 15 s"
grep -qi "lothub" "$WORK/sys.out" ||
    fail "\$SYS/broker/version does not name lothub: $(cat "$WORK/sys.out")"
pass "\$SYS/broker/version = $(head -n 1 "$WORK/sys.out")"

# --- shutdown ----------------------------------------------------------------------------------
kill -TERM "$HUB_PID"
status=0
for _ in $(seq 1 100); do
    kill -0 "$HUB_PID" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$HUB_PID" 2>/dev/null && fail "lothub still running 10 s after SIGTERM"
wait "$HUB_PID" || status=$?
HUB_PID=""
[[ $status -eq 0 ]] || fail "lothub exited with status $status after SIGTERM"
pass "SIGTERM: lothub exited with status 0"

echo "interop: all checks passed"
