#!/usr/bin/env bash
# The one place generated code comes from: protos/ -> every language's stubs.
# Generated files are committed (so `pip install ./clients/python` needs no
# protoc) and CI re-runs this script and fails on any difference.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"

out="${PY_OUT:-clients/python/src}"
rm -rf "$out/voxcache/v1"
mkdir -p "$out/voxcache/v1"
"$PY" -m grpc_tools.protoc -I protos \
  --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
  protos/voxcache/v1/*.proto
: > "$out/voxcache/v1/__init__.py"
echo "codegen: python stubs -> $out/voxcache/v1"
