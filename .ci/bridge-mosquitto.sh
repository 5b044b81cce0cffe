#!/usr/bin/env bash
# Bridge check (issue #6): lothub MQTT_BRIDGE routes with a real Mosquitto as the cloud broker.
# Called by .ci/run; runs alone too: `bash .ci/bridge-mosquitto.sh`.
#
#   1. `cargo test --test routes_mosquitto` with LOTHUB_REQUIRE_MOSQUITTO=1: an in-process edge
#      hub bridges to a Mosquitto child process (out, in, both without loops on MQTT 3.1.1 and 5;
#      1,000 QoS 1 messages across a Mosquitto restart, in order, none lost).
#   2. The lothub binary ($LOTHUB_BIN, default the release one) with the documented example (config/examples/bridge-edge.toml and
#      lot-examples/routes/factory-to-cloud.lot, ports moved to free ones): a message published
#      on the edge arrives on Mosquitto remapped, and a cloud command arrives on the edge.
# On failure: which check failed, the tail of the hub's log, exit status 1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

HOST=127.0.0.1
WORK=$(mktemp -d)
HUB_PID=""
MOSQ_PID=""
HUB_LOG="$WORK/lothub.log"

cleanup() {
    for pid in "$HUB_PID" "$MOSQ_PID"; do
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
    echo "bridge: FAIL: $*" >&2
    if [[ -s "$HUB_LOG" ]]; then
        echo "---- last 40 lines of the lothub log ----" >&2
        tail -n 40 "$HUB_LOG" >&2
    fi
    exit 1
}

# --- tools -------------------------------------------------------------------------------------
MOSQUITTO=$(command -v mosquitto || true)
[[ -z "$MOSQUITTO" && -x /usr/sbin/mosquitto ]] && MOSQUITTO=/usr/sbin/mosquitto
if [[ -z "$MOSQUITTO" ]] || ! command -v mosquitto_pub >/dev/null; then
    echo "bridge: installing mosquitto and mosquitto-clients (apt-get)"
    SUDO=""
    if [[ "$(id -u)" -ne 0 ]]; then SUDO="sudo"; fi
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y mosquitto mosquitto-clients
    MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)
fi

# --- 1. the bridge tests against Mosquitto -----------------------------------------------------
LOTHUB_REQUIRE_MOSQUITTO=1 cargo test --test routes_mosquitto ||
    fail "cargo test --test routes_mosquitto"
echo "bridge: ok: routes_mosquitto tests"

# --- 2. the release binary with the documented example ------------------------------------------
# LOTHUB_BIN picks the binary (.ci/run passes the debug one `cargo test` built).
BIN=${LOTHUB_BIN:-target/release/lothub}
if [[ "${INTEROP_SKIP_BUILD:-}" != "1" && -z "${LOTHUB_BIN:-}" ]]; then
    cargo build --release --bin lothub
fi
[[ -x "$BIN" ]] || fail "$BIN was not built"

port_in_use() {
    (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}
free_port() {
    local p=$1
    while port_in_use "$p"; do p=$((p + 1)); done
    echo "$p"
}
wait_port() {
    for _ in $(seq 1 100); do
        port_in_use "$1" && return 0
        sleep 0.1
    done
    return 1
}

CLOUD=$(free_port 18940)
EDGE=$(free_port $((CLOUD + 1)))

printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$CLOUD" >"$WORK/mosquitto.conf"
"$MOSQUITTO" -c "$WORK/mosquitto.conf" >"$WORK/mosquitto.log" 2>&1 &
MOSQ_PID=$!
wait_port "$CLOUD" || fail "mosquitto did not listen on $CLOUD"

sed "s/WITH BROKER_PORT 1884/WITH BROKER_PORT $CLOUD/" lot-examples/routes/factory-to-cloud.lot \
    >"$WORK/route.lot"
grep -q "BROKER_PORT $CLOUD" "$WORK/route.lot" || fail "could not set the port in the example"
sed -e "s#127.0.0.1:1883#127.0.0.1:$EDGE#" -e "s#\./data-edge#$WORK/data#" \
    -e "s#lot-examples/routes/factory-to-cloud.lot#$WORK/route.lot#" \
    config/examples/bridge-edge.toml >"$WORK/edge.toml"
"$BIN" --config "$WORK/edge.toml" >"$HUB_LOG" 2>&1 &
HUB_PID=$!
wait_port "$EDGE" || fail "lothub did not listen on $EDGE"

# out: factory/... on the edge -> sites/porto/factory/... on Mosquitto. The route connects in
# the background, so publish until the subscriber has the message (bounded).
timeout 20 mosquitto_sub -h $HOST -p "$CLOUD" -t 'sites/porto/factory/#' -v -C 1 >"$WORK/out.txt" &
SUB=$!
sleep 0.5
for _ in $(seq 1 30); do
    mosquitto_pub -h $HOST -p "$EDGE" -q 1 -t factory/line1/temp -m 21.5 || true
    [[ -s "$WORK/out.txt" ]] && break
    sleep 0.5
done
wait "$SUB" || true
grep -qx "sites/porto/factory/line1/temp 21.5" "$WORK/out.txt" ||
    fail "edge -> mosquitto: got '$(cat "$WORK/out.txt")'"
echo "bridge: ok: binary, edge factory/line1/temp -> mosquitto sites/porto/factory/line1/temp"

# in: sites/porto/commands/... on Mosquitto -> commands/... on the edge.
timeout 20 mosquitto_sub -h $HOST -p "$EDGE" -t 'commands/#' -v -C 1 >"$WORK/in.txt" &
SUB=$!
sleep 0.5
for _ in $(seq 1 30); do
    mosquitto_pub -h $HOST -p "$CLOUD" -q 1 -t sites/porto/commands/m7/stop -m now || true
    [[ -s "$WORK/in.txt" ]] && break
    sleep 0.5
done
wait "$SUB" || true
grep -qx "commands/m7/stop now" "$WORK/in.txt" ||
    fail "mosquitto -> edge: got '$(cat "$WORK/in.txt")'"
echo "bridge: ok: binary, mosquitto sites/porto/commands/m7/stop -> edge commands/m7/stop"

kill -TERM "$HUB_PID"
wait "$HUB_PID" || fail "lothub did not stop cleanly"
HUB_PID=""
echo "bridge: all checks passed"
