#!/usr/bin/env bash
# Measures what the Kubernetes resource requests/limits in deploy/k8s are taken from: each
# service's resident memory (VmRSS now, VmHWM = peak) after start-up, warm-up and a few real
# requests (3 distinct clips embedded, then repeated; 3 syntheses), on CPU, with the real
# ECAPA and Kokoro weights. Prints one line per service and writes them to $OUT
# (default bench/results/rss.txt). Redis is off (--redis-url none): its memory is its own pod's.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-bench/results/rss.txt}
work=$(mktemp -d)
pids=()
cleanup() {
  status=$?
  if ((status)); then tail -n 20 "$work"/*.log >&2; fi
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
rss() { awk '/^VmRSS|^VmHWM/ {printf "%s%s %d MiB", sep, $1, $2 / 1024; sep = "  "}' "/proc/$1/status"; }

e_port=$(free_port) s_port=$(free_port)
"$PY" -m services.embedder.server --port "$e_port" --metrics-port 0 --redis-url none >"$work/embedder.log" 2>&1 &
pids+=($!) && e_pid=$!
cli=("$PY" -m voxcache.cli --embedder "127.0.0.1:$e_port" --synthesizer "127.0.0.1:$s_port" -q --timeout 300)
# Three distinct clips: the reference and two copies resampled by sox, so each is a miss.
sox samples/reference_en.wav -r 22050 "$work/b.wav"
sox samples/reference_en.wav -r 44100 "$work/c.wav"
printf '%s\n' samples/reference_en.wav "$work/b.wav" "$work/c.wav" >"$work/list"
for _ in $(seq 300); do "${cli[@]}" stats >/dev/null 2>&1 && break; sleep 1; done
# The Synthesizer after the Embedder answers, so its warm-up finds it (as Kubernetes' probes order it).
"$PY" -m services.synthesizer.server --port "$s_port" --embedder-address "127.0.0.1:$e_port" >"$work/synth.log" 2>&1 &
pids+=($!) && s_pid=$!
for _ in $(seq 300); do grep -q "Synthesizer serving" "$work/synth.log" && break; sleep 1; done
"${cli[@]}" preload "$work/list" >/dev/null
"${cli[@]}" preload "$work/list" >/dev/null  # hits
for text in "Hello there." "The quick brown fox jumps over the lazy dog." "One more sentence, a little longer than the first two."; do
  "${cli[@]}" say "$text" --voice samples/reference_en.wav -o "$work/out.wav" --force >/dev/null
done
mkdir -p "$(dirname "$OUT")"
{
  echo "# scripts/measure_rss.sh $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, $(uname -m)"
  echo "embedder     $(rss "$e_pid")"
  echo "synthesizer  $(rss "$s_pid")"
} | tee "$OUT"
