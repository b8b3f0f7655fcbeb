#!/usr/bin/env bash
# Checks deploy/k8s offline, failing on any error: renders every overlay (the deployable
# units; the base alone is not) with Debian's kubectl kustomize, validates each rendered
# object against the Kubernetes OpenAPI schemas bundled in kubernetes-validate (strict:
# unknown fields are errors) for the oldest and the newest Kubernetes it supports here, then
# runs checkov with deploy/k8s/.checkov.yaml (its skips, each with its reason). No cluster,
# no network beyond the first install (scripts/setup_k8s.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup_k8s.sh
tools/uv/bin/uv lock --check --project tools/k8s-lint ||
  { echo "tools/k8s-lint/uv.lock is stale: run 'make lock' and commit it" >&2; exit 1; }

kubectl=tools/kubectl/usr/bin/kubectl
lint=tools/k8s-lint/.venv/bin
# autoscaling/v2 (1.23), policy/v1 (1.21) and grpc probes (GA in 1.27): 1.27 is the oldest
# cluster these manifests are for; 1.37 the newest schema kubernetes-validate bundles.
versions=(1.27.0 1.37.0)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

for overlay in deploy/k8s/overlays/*/; do
  name=$(basename "$overlay")
  rendered="$out/$name.yaml"
  "$kubectl" kustomize "$overlay" >"$rendered" ||
    { echo "k8s: $overlay does not render with $("$kubectl" version --client --short 2>/dev/null)" >&2; exit 1; }
  for version in "${versions[@]}"; do
    "$lint/kubernetes-validate" --strict --quiet --kubernetes-version "$version" "$rendered" ||
      { echo "k8s: overlay $name is not valid Kubernetes $version" >&2; exit 1; }
  done
  "$lint/checkov" --config-file deploy/k8s/.checkov.yaml -f "$rendered" ||
    { echo "k8s: checkov found problems in overlay $name (see above; skips: deploy/k8s/.checkov.yaml)" >&2; exit 1; }
  echo "k8s: overlay $name: $(grep -c '^kind:' "$rendered") objects render, validate (Kubernetes ${versions[*]}) and pass checkov"
done
