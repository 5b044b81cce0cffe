#!/usr/bin/env bash
# Runs the TLS examples end to end with the Mosquitto command-line clients, and doubles as the
# CI interop check for TLS: `bash config/examples/try-tls.sh` from anywhere.
#
#   1. makes a CA, a server certificate and a client certificate ("device-17") with openssl,
#      using the commands of docs/tls.md;
#   2. starts lothub with config/examples/tls.toml (ports moved to free ones) and checks
#      mosquitto_pub -> mosquitto_sub over TLS 1.3 and TLS 1.2 with --cafile;
#   3. rotates the server certificate on disk and checks that a new connection is served the new
#      one (openssl s_client), and that a garbage file leaves it in force;
#   4. restarts with config/examples/mtls.toml and checks that the client certificate is accepted
#      and that a client without one is refused.
# Needs openssl, mosquitto_pub/mosquitto_sub and a built lothub (LOTHUB_BIN, default
# target/release/lothub; built if missing). Every wait is bounded. Exit status 0 when all pass.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
REPO=$PWD

BIN=${LOTHUB_BIN:-target/release/lothub}
if [[ ! -x "$BIN" ]]; then
    cargo build --release --bin lothub
fi
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
for tool in openssl mosquitto_pub mosquitto_sub; do
    command -v "$tool" >/dev/null || { echo "try-tls: $tool is missing" >&2; exit 1; }
done

WORK=$(mktemp -d)
HUB_PID=""
cleanup() {
    if [[ -n "$HUB_PID" ]] && kill -0 "$HUB_PID" 2>/dev/null; then
        kill "$HUB_PID" 2>/dev/null || true
        wait "$HUB_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
fail() {
    echo "try-tls: FAIL: $*" >&2
    [[ -s "$WORK/hub.log" ]] && tail -n 30 "$WORK/hub.log" >&2
    exit 1
}
pass() { echo "try-tls: ok: $*"; }

# --- 1. certificates (docs/tls.md, "Making certificates with openssl") ------------------------
mkdir -p "$WORK/certs"
(
    cd "$WORK/certs"
    openssl req -x509 -new -newkey rsa:3072 -nodes -days 3650 \
        -keyout ca.key -out ca.pem -subj "/CN=lothub example CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign"
    openssl req -new -newkey rsa:3072 -nodes -keyout server.key -out server.csr -subj "/CN=hub.local"
    printf '%s\n' \
        'subjectAltName=DNS:localhost,DNS:hub.local,IP:127.0.0.1' \
        'extendedKeyUsage=serverAuth' \
        'basicConstraints=critical,CA:FALSE' \
        'keyUsage=critical,digitalSignature,keyEncipherment' >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
        -days 825 -sha256 -extfile server.ext -out server.pem
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout device-17.key -out device-17.csr -subj "/CN=device-17"
    printf '%s\n' \
        'extendedKeyUsage=clientAuth' \
        'basicConstraints=critical,CA:FALSE' \
        'keyUsage=critical,digitalSignature' >client.ext
    openssl x509 -req -in device-17.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
        -days 365 -sha256 -extfile client.ext -out device-17.pem
    openssl verify -CAfile ca.pem server.pem device-17.pem
) >"$WORK/openssl.log" 2>&1 || { cat "$WORK/openssl.log" >&2; fail "making certificates"; }
pass "certificates made with openssl"

# --- helpers -----------------------------------------------------------------------------------
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
    local port=$1
    while port_in_use "$port"; do port=$((port + 1)); done
    echo "$port"
}

# Starts lothub in $WORK with example config $1, its listeners moved to 127.0.0.1 and free ports.
start_hub() {
    local example=$1
    TCP_PORT=$(free_port 28830)
    TLS_PORT=$(free_port $((TCP_PORT + 1)))
    sed -e "s/127.0.0.1:1883\"/127.0.0.1:$TCP_PORT\"/" \
        -e "s/0.0.0.0:8883\"/127.0.0.1:$TLS_PORT\"/" \
        -e "s#\"./data\"#\"$WORK/data-$example\"#" \
        "$REPO/config/examples/$example.toml" >"$WORK/$example.toml"
    (cd "$WORK" && exec "$BIN" --config "$example.toml") >"$WORK/hub.log" 2>&1 &
    HUB_PID=$!
    for _ in $(seq 1 100); do
        port_in_use "$TLS_PORT" && return 0
        kill -0 "$HUB_PID" 2>/dev/null || fail "lothub exited at start with $example.toml"
        sleep 0.1
    done
    fail "lothub did not listen on $TLS_PORT"
}

stop_hub() {
    kill "$HUB_PID"
    wait "$HUB_PID" || fail "lothub did not stop cleanly"
    HUB_PID=""
}

served_cn() {
    echo | timeout 10 openssl s_client -connect "127.0.0.1:$TLS_PORT" -servername localhost \
        -CAfile "$WORK/certs/ca.pem" 2>/dev/null | sed -n 's/^subject=.*CN *= *//p'
}

cd "$WORK"
TLS_ARGS=(-h localhost --cafile certs/ca.pem)

# --- 2. TLS publish/subscribe -------------------------------------------------------------------
start_hub tls
for version in tlsv1.3 tlsv1.2; do
    timeout 10 mosquitto_sub "${TLS_ARGS[@]}" -p "$TLS_PORT" --tls-version "$version" \
        -t "try/$version" -C 1 >"$WORK/sub.out" &
    SUB=$!
    sleep 0.5
    timeout 10 mosquitto_pub "${TLS_ARGS[@]}" -p "$TLS_PORT" --tls-version "$version" \
        -t "try/$version" -m "over $version" || fail "mosquitto_pub over $version"
    wait "$SUB" || fail "mosquitto_sub over $version got nothing"
    [[ "$(cat "$WORK/sub.out")" == "over $version" ]] || fail "wrong payload over $version"
    pass "publish/subscribe over $version with --cafile"
done

# --- 3. rotation ---------------------------------------------------------------------------------
[[ "$(served_cn)" == "hub.local" ]] || fail "initial certificate not served"
(
    cd certs
    openssl req -new -newkey rsa:2048 -nodes -keyout next.key -out next.csr -subj "/CN=hub-rotated"
    openssl x509 -req -in next.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
        -days 30 -sha256 -extfile server.ext -out next.pem
    mv next.key server.key
    mv next.pem server.pem
) >>"$WORK/openssl.log" 2>&1
for _ in $(seq 1 50); do
    [[ "$(served_cn)" == "hub-rotated" ]] && break
    sleep 0.2
done
[[ "$(served_cn)" == "hub-rotated" ]] || fail "rotated certificate not served within 10 s"
pass "rotated certificate served without a restart"
# (The two `mv`s above may have been seen half done and refused once; count from here.)
refusals=$(grep -c "new TLS files refused" "$WORK/hub.log" || true)
echo "not a certificate" >certs/server.pem
sleep 3
[[ "$(served_cn)" == "hub-rotated" ]] || fail "a garbage certificate file replaced the good one"
[[ $(grep -c "new TLS files refused" "$WORK/hub.log" || true) -gt $refusals ]] \
    || fail "no WARN line for the garbage file"
pass "garbage certificate refused with a warning, old one kept"
stop_hub

# --- 4. mutual TLS -------------------------------------------------------------------------------
# A fresh server pair (the rotation left a garbage server.pem behind).
(
    cd certs
    openssl req -new -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=hub.local"
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
        -days 825 -sha256 -extfile server.ext -out server.pem
) >>"$WORK/openssl.log" 2>&1
start_hub mtls
MTLS_ARGS=("${TLS_ARGS[@]}" -p "$TLS_PORT" --cert certs/device-17.pem --key certs/device-17.key)
timeout 10 mosquitto_sub "${MTLS_ARGS[@]}" -t try/mtls -C 1 >"$WORK/sub.out" &
SUB=$!
sleep 0.5
timeout 10 mosquitto_pub "${MTLS_ARGS[@]}" -t try/mtls -m "from device-17" \
    || fail "mosquitto_pub with a client certificate"
wait "$SUB" || fail "mosquitto_sub with a client certificate got nothing"
[[ "$(cat "$WORK/sub.out")" == "from device-17" ]] || fail "wrong payload over mTLS"
grep -q 'user="device-17"' "$WORK/hub.log" || fail "the CN was not used as the user name"
pass "mutual TLS: client certificate accepted, CN device-17 is the user"
if timeout 10 mosquitto_pub "${TLS_ARGS[@]}" -p "$TLS_PORT" -t try/mtls -m anonymous 2>/dev/null; then
    fail "a client without a certificate was accepted"
fi
pass "mutual TLS: client without a certificate refused"
stop_hub
echo "try-tls: all passed"
