#!/usr/bin/env bash
# Every client against live services: starts Redis + Embedder + Synthesizer
# (services.launcher), then runs the grpcurl probe, the Python SDK from a fresh venv, and
# the Go and Java examples. Each check verifies what it got back (192-d vector, a cache
# hit on the second call, a valid WAV), none merely exits 0.
# The stack serves mTLS (certificates from scripts/gen_certs.sh, made here, the Synthesizer ->
# Embedder channel included), so the clients prove the secure path; they find the CA and
# their client certificate in VOXCACHE_TLS_CA / VOXCACHE_TLS_CLIENT_CERT / _KEY.
# Java is the exception: Debian's netty 4.1.48 ships without its JDK ALPN classes (and no
# netty-tcnative), so grpc-java cannot open a TLS channel with the jars CI has ("JDK provider
# does not support ALPN protocol"). Its example is compiled with the TLS code and run
# against a second, plaintext stack started after the first one stops.
set -uo pipefail
cd "$(dirname "$0")/.."
free_port() { .venv/bin/python -c "from services.common.redis_server import free_port; print(free_port())"; }
log=$(mktemp)
certs=$(mktemp -d)
stack=""
stop_stack() { [ -n "$stack" ] && { kill -TERM "$stack" 2>/dev/null; wait "$stack" 2>/dev/null; }; stack=""; }
trap 'stop_stack; rm -rf "$log" "$certs"' EXIT
scripts/gen_certs.sh "$certs" 1 >/dev/null

# start_stack [--tls-dir DIR]: a fresh stack on free ports; exports the addresses.
start_stack() {
  local embedder_port synthesizer_port
  embedder_port=$(free_port)
  synthesizer_port=$(free_port)
  .venv/bin/python -m services.launcher --ephemeral --embedder-port "$embedder_port" \
    --synthesizer-port "$synthesizer_port" --log-level WARNING "$@" >"$log" 2>&1 &
  stack=$!
  for _ in $(seq 1 360); do  # up to 180 s: start-up includes a warm-up synthesis
    grep -q "voxcache is up" "$log" && break
    kill -0 "$stack" 2>/dev/null || { cat "$log"; echo "the stack failed to start" >&2; exit 1; }
    sleep 0.5
  done
  grep -q "voxcache is up" "$log" || { cat "$log"; echo "the stack did not come up" >&2; exit 1; }
  export VOXCACHE_EMBEDDER="127.0.0.1:$embedder_port" VOXCACHE_SYNTHESIZER="127.0.0.1:$synthesizer_port"
}
export VOXCACHE_REFERENCE="$PWD/samples/reference_en.wav"

passed=0 failed=0 failures=()
check() {
  local name=$1
  shift
  echo "== clients: $name"
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$name"); fi
}

start_stack --tls-dir "$certs"
echo "== clients over mTLS (stack: voxcache up --tls-dir)"
export VOXCACHE_TLS_CA="$certs/ca.pem" VOXCACHE_TLS_CLIENT_CERT="$certs/client.pem" VOXCACHE_TLS_CLIENT_KEY="$certs/client.key"
check grpcurl scripts/grpcurl_probe.sh
check python-sdk scripts/sdk_fresh_venv.sh
[ -x clients/go/check.sh ] && check go clients/go/check.sh
stop_stack

if [ -x clients/java/check.sh ]; then
  unset VOXCACHE_TLS_CA VOXCACHE_TLS_CLIENT_CERT VOXCACHE_TLS_CLIENT_KEY
  start_stack
  echo "== clients over plaintext (Java: see the header)"
  check java clients/java/check.sh
  stop_stack
fi
((failed)) && echo "failed: ${failures[*]}"
echo "clients: $passed passed, $failed failed"
exit $((failed > 0))
