#!/usr/bin/env bash
# The whole test suite, from a fresh machine: setup (Python, Go, Java toolchains), static
# checks, generated-code freshness, proto lint + breaking-change check, compose validation,
# pytest against a real redis-server and real weights, then every client (grpcurl, Python SDK
# in a fresh venv, Go, Java) against one set of live services.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/setup_clients.sh

echo "== uv.lock is up to date with pyproject.toml"
tools/uv/bin/uv lock --check ||
  { echo "uv.lock is stale: run 'make lock' and commit uv.lock" >&2; exit 1; }

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .

echo "== generated code is up to date with protos/"
fresh=$(mktemp -d)
trap 'rm -rf "$fresh"' EXIT
PY_OUT="$fresh/py" GO_OUT="$fresh/go" JAVA_OUT="$fresh/java" ./scripts/codegen.sh >/dev/null
for pair in "py/voxcache/v1 clients/python/src/voxcache/v1" "go/voxcachev1 clients/go/voxcachev1" \
  "java/dev/voxcache/v1 clients/java/src/main/java/dev/voxcache/v1"; do
  read -r generated committed <<<"$pair"
  diff -r "$fresh/$generated" "$committed" ||
    { echo "generated stubs in $committed are stale: run scripts/codegen.sh and commit" >&2; exit 1; }
done

echo "== buf lint + breaking (FILE rules, against the last release: contract/VERSION)"
buf=tools/node_modules/.bin/buf
"$buf" lint
# Never skipped: the released contract is a committed image, so this works in any clone
# (shallow ones too) and catches a break made in any commit since the release.
[ -s contract/released.binpb ] ||
  { echo "contract/released.binpb is missing: scripts/release.sh records the released contract" >&2; exit 1; }
"$buf" breaking --against contract/released.binpb
echo "contract: compatible with $(cat contract/VERSION)"

echo "== compose.yaml"
./scripts/check_compose.sh
echo "== alert rules (promtool)" && ./scripts/check_alerts.sh

echo "== deploy/k8s (kustomize, Kubernetes schemas, checkov)" && ./scripts/check_k8s.sh

echo "== pytest"
.venv/bin/python -m pytest "$@"

echo "== clients against live services"
./scripts/clients_e2e.sh
