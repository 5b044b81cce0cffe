#!/usr/bin/env bash
# Throughput over TLS against plain TCP (issue #7): one lothub with a tcp listener and a tls
# listener on loopback, each scenario run over TCP and then over TLS against that same hub, and
# a Markdown table (TCP/TLS ratio). With Mosquitto present, the same for Mosquitto (tcp and tls
# listeners, same certificates) as a reference.
#
#   bench/tls.sh                     # 5 s per run: qos0-1to1, qos1-nto1, fanout
#   DURATION=10 bench/tls.sh
#
# Certificates are made with openssl (the commands of docs/tls.md) in a temporary directory.
# Installs nothing; results (one JSON line per run) are kept in target/bench/tls-*.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5}
TCP_PORT=${TCP_PORT:-21883}
TLS_PORT=${TLS_PORT:-28883}
MOSQ_TCP_PORT=${MOSQ_TCP_PORT:-21884}
MOSQ_TLS_PORT=${MOSQ_TLS_PORT:-28884}
MOSQUITTO=${MOSQUITTO:-/usr/sbin/mosquitto}
OUT=${OUT:-target/bench}
SCENARIOS=${SCENARIOS:-"qos0-1to1 qos1-nto1 fanout"}

cargo build --release --bin lothub --bin lothub-bench
BENCH=target/release/lothub-bench
mkdir -p "$OUT"
TMP=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
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

# A CA and a server certificate for localhost / 127.0.0.1 (docs/tls.md).
C=$TMP/certs
mkdir -p "$C"
openssl req -x509 -new -newkey rsa:3072 -nodes -days 30 -keyout "$C/ca.key" -out "$C/ca.pem" \
    -subj "/CN=lothub bench CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -new -newkey rsa:3072 -nodes -keyout "$C/server.key" -out "$C/server.csr" \
    -subj "/CN=localhost" 2>/dev/null
printf '%s\n' 'subjectAltName=DNS:localhost,IP:127.0.0.1' 'extendedKeyUsage=serverAuth' \
    'basicConstraints=critical,CA:FALSE' 'keyUsage=critical,digitalSignature,keyEncipherment' \
    >"$C/server.ext"
openssl x509 -req -in "$C/server.csr" -CA "$C/ca.pem" -CAkey "$C/ca.key" -CAcreateserial \
    -days 30 -sha256 -extfile "$C/server.ext" -out "$C/server.pem" 2>/dev/null
# Mosquitto started as root drops to the `mosquitto` user before reading its files.
chmod 755 "$TMP" "$C"
chmod 644 "$C/server.key"

# run LABEL PID TCP_PORT TLS_PORT: every scenario over TCP, then over TLS, same broker.
run() {
    local label=$1 pid=$2 tcp=$3 tls=$4
    : >"$OUT/tls-$label-tcp.jsonl"
    : >"$OUT/tls-$label-tls.jsonl"
    for s in $SCENARIOS; do
        "$BENCH" --port "$tcp" --pid "$pid" --duration "$DURATION" --json "$s" |
            grep '^{' >>"$OUT/tls-$label-tcp.jsonl"
        "$BENCH" --port "$tls" --tls --cafile "$C/ca.pem" --pid "$pid" --duration "$DURATION" \
            --json "$s" | grep '^{' >>"$OUT/tls-$label-tls.jsonl"
    done
    echo "### $label"
    "$BENCH" compare --a-label TCP --a "$OUT/tls-$label-tcp.jsonl" \
        --b-label TLS --b "$OUT/tls-$label-tls.jsonl"
}

cat >"$TMP/lothub.toml" <<EOF
[[listeners]]
kind = "tcp"
bind = "127.0.0.1:$TCP_PORT"

[[listeners]]
kind = "tls"
bind = "127.0.0.1:$TLS_PORT"
cert = "$C/server.pem"
key = "$C/server.key"
EOF
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
target/release/lothub --config "$TMP/lothub.toml" --data-dir "$TMP/lothub-data" \
    >"$TMP/lothub.log" 2>&1 &
LPID=$!
PIDS+=("$LPID")
wait_port "$TCP_PORT"
wait_port "$TLS_PORT"
run lothub "$LPID" "$TCP_PORT" "$TLS_PORT"
kill "$LPID"

if [ -x "$MOSQUITTO" ]; then
    cat >"$TMP/mosquitto.conf" <<EOF
per_listener_settings false
allow_anonymous true
listener $MOSQ_TCP_PORT 127.0.0.1
listener $MOSQ_TLS_PORT 127.0.0.1
cafile $C/ca.pem
certfile $C/server.pem
keyfile $C/server.key
EOF
    "$MOSQUITTO" -c "$TMP/mosquitto.conf" >"$TMP/mosquitto.log" 2>&1 &
    MPID=$!
    PIDS+=("$MPID")
    wait_port "$MOSQ_TCP_PORT"
    wait_port "$MOSQ_TLS_PORT"
    run mosquitto "$MPID" "$MOSQ_TCP_PORT" "$MOSQ_TLS_PORT"
    kill "$MPID"
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
