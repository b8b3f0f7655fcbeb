#!/usr/bin/env bash
# The whole test suite, from a fresh machine: setup, static checks, generated-code
# freshness, proto lint, then pytest against a real redis-server and real weights.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .

echo "== generated code is up to date with protos/"
fresh=$(mktemp -d)
trap 'rm -rf "$fresh"' EXIT
PY_OUT="$fresh" ./scripts/codegen.sh >/dev/null
diff -r "$fresh/voxcache/v1" clients/python/src/voxcache/v1 \
  || { echo "generated stubs are stale: run scripts/codegen.sh and commit" >&2; exit 1; }

echo "== buf lint"
if [ -x tools/node_modules/.bin/buf ]; then
  tools/node_modules/.bin/buf lint
else
  echo "buf not installed (no npm): skipped" >&2
fi

echo "== pytest"
.venv/bin/python -m pytest "$@"
