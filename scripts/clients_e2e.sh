#!/usr/bin/env bash
# Every client against ONE set of live services: starts Redis + Embedder + Synthesizer
# (services.launcher), then runs the grpcurl probe, the Python SDK from a fresh venv, and
# the Go and Java examples. Each check verifies what it got back (192-d vector, a cache
# hit on the second call, a valid WAV), none merely exits 0.
# The stack serves mTLS (certificates from scripts/gen_certs.sh, made here, the Synthesizer ->
# Embedder channel included), so every client proves the secure path; they find the CA and
# their client certificate in VOXCACHE_TLS_CA / VOXCACHE_TLS_CLIENT_CERT / _KEY.
set -uo pipefail
cd "$(dirname "$0")/.."
free_port() { .venv/bin/python -c "from services.common.redis_server import free_port; print(free_port())"; }
embedder_port=$(free_port)
synthesizer_port=$(free_port)
log=$(mktemp)
certs=$(mktemp -d)
scripts/gen_certs.sh "$certs" 1 >/dev/null
.venv/bin/python -m services.launcher --ephemeral --embedder-port "$embedder_port" --synthesizer-port "$synthesizer_port" \
  --tls-dir "$certs" --log-level WARNING >"$log" 2>&1 &
stack=$!
trap 'kill -TERM $stack 2>/dev/null; wait $stack 2>/dev/null; rm -rf "$log" "$certs"' EXIT
for _ in $(seq 1 360); do  # up to 180 s: start-up includes a warm-up synthesis
  grep -q "voxcache is up" "$log" && break
  kill -0 $stack 2>/dev/null || { cat "$log"; echo "the stack failed to start" >&2; exit 1; }
  sleep 0.5
done
grep -q "voxcache is up" "$log" || { cat "$log"; echo "the stack did not come up" >&2; exit 1; }
export VOXCACHE_EMBEDDER="127.0.0.1:$embedder_port" VOXCACHE_SYNTHESIZER="127.0.0.1:$synthesizer_port"
export VOXCACHE_REFERENCE="$PWD/samples/reference_en.wav"
export VOXCACHE_TLS_CA="$certs/ca.pem" VOXCACHE_TLS_CLIENT_CERT="$certs/client.pem" VOXCACHE_TLS_CLIENT_KEY="$certs/client.key"

passed=0 failed=0 failures=()
check() {
  local name=$1
  shift
  echo "== clients: $name"
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$name"); fi
}
check grpcurl scripts/grpcurl_probe.sh
check python-sdk scripts/sdk_fresh_venv.sh
[ -x clients/go/check.sh ] && check go clients/go/check.sh
[ -x clients/java/check.sh ] && check java clients/java/check.sh
((failed)) && echo "failed: ${failures[*]}"
echo "clients: $passed passed, $failed failed"
exit $((failed > 0))
