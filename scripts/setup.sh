#!/usr/bin/env bash
# Installs everything voxcache needs on a fresh Debian machine, idempotently:
#   system packages (redis-server, espeak-ng, libsndfile) -> .venv with the services,
#   the SDK and dev tools -> verified model weights in models/ -> buf (npm) in tools/.
# Re-running is cheap: each step is skipped when its inputs have not changed.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# -- system packages ---------------------------------------------------------------
APT_PACKAGES=(redis-server espeak-ng sox libsndfile1 python3-venv)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
command -v npm >/dev/null || missing+=(npm)  # for buf; a machine with its own Node.js keeps it
if ((${#missing[@]})); then
  say "apt-get install ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# -- Python environment ----------------------------------------------------------------
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.voxcache-deps
want=$(cat pyproject.toml clients/python/pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing Python dependencies (torch 2.11 + torchaudio 2.11, SpeechBrain, gRPC, Redis; a few minutes the first time)"
  log=.venv/pip-install.log
  if ! .venv/bin/python -m pip install -e clients/python -e ".[dev]" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "setup: pip install failed; full log in $log" >&2
    exit 1
  fi
  .venv/bin/python -c "import torch, torchaudio, speechbrain, grpc, redis, voxcache.v1.embedder_pb2" \
    || { echo "setup: Python dependencies failed to import" >&2; exit 1; }
  echo "$want" > "$stamp"
fi

# -- model weights (verified by SHA-256) -------------------------------------------------
.venv/bin/python -m services.embedder.encoders.install "${VOXCACHE_MODEL_DIR:-models}" 2>&1 | grep -v "^WARNING: Location"
.venv/bin/python -m services.synthesizer.backends.kokoro_install "${VOXCACHE_MODEL_DIR:-models}" 2>&1 | grep -v "^WARNING: Location"

# -- buf (protobuf lint / breaking-change check) ------------------------------------------
if [ ! -x tools/node_modules/.bin/buf ]; then
  say "installing buf into tools/ (npm)"
  (cd tools && npm ci --no-audit --no-fund --silent)
fi
say "ready"
