#!/usr/bin/env bash
# Installs what scripts/check_k8s.sh runs, only from pins, into tools/ (nothing system-wide):
#   tools/kubectl/usr/bin/kubectl  Debian's kubernetes-client at the version in
#                                  scripts/system-packages.lock (group k8s), unpacked, not
#                                  installed: a machine's own kubectl stays as it is
#   tools/k8s-lint/.venv           kubernetes-validate and checkov exactly as
#                                  tools/k8s-lint/uv.lock says (uv sync --frozen), a venv of
#                                  their own: checkov's pins would fight the services' lock
# Re-running is cheap: each step is skipped when its inputs have not changed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/apt_pinned.sh
source scripts/lib/uv.sh

apt_unpack_pinned tools/kubectl k8s

PYTHON="${PYTHON:-python3}"
ensure_uv
venv=$PWD/tools/k8s-lint/.venv
stamp=$venv/.voxcache-lock
want=$(cat tools/k8s-lint/uv.lock tools/k8s-lint/pyproject.toml | sha256sum | cut -d' ' -f1)
if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  printf '\033[1m[setup]\033[0m %s\n' "installing the manifest linters into tools/k8s-lint/.venv (uv sync --frozen)"
  UV_PROJECT_ENVIRONMENT=$venv "$UV" sync --quiet --frozen --project tools/k8s-lint --python "$PYTHON"
  echo "$want" >"$stamp"
fi
