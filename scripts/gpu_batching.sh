#!/usr/bin/env bash
# One command: the Embedder's micro-batching of misses on a GPU, where it is the main
# throughput lever (issue 11). NOT RUN ON A GPU YET: the machines this was built on have none.
# Its bench command with the same flags but on CPU (`--device cpu`, the default) ran to the end
# there on 2026-12-02 in 3.5 min: every level, the cosine check and the JSON.
#
#   scripts/gpu_batching.sh [more bench.miss_bench flags, e.g. --batch-window-ms 2]
#
# Needs only `scripts/setup.sh` (the venv and the verified ECAPA weights) and an NVIDIA GPU.
# It runs the same code path as on CPU (services/embedder/batching.py through the real core):
# ECAPA on CUDA, 1, 4, 16 and 64 distinct misses in flight, unbatched vs batched (up to 64
# clips a pass), each clip's batched vector checked against its unbatched one, and writes
# bench/results/miss-cuda.json. Exit status 1 when a target is missed (on a GPU, batched
# must reach 2x the unbatched misses/s at the highest level).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
command -v nvidia-smi >/dev/null || { echo "gpu_batching: nvidia-smi not found: this needs an NVIDIA GPU" >&2; exit 1; }
"$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" ||
  { echo "gpu_batching: torch sees no CUDA device (is the venv's torch a CUDA build?)" >&2; exit 1; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
exec "$PY" -m bench.miss_bench --device cuda --levels 1,4,16,64 --misses 64 --max-batch 64 --check "$@"
