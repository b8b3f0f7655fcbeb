#!/usr/bin/env bash
# The one place generated code comes from: protos/ -> every language's stubs.
# Generated files are committed (so `pip install ./clients/python`, `go get` and
# `mvn package` need no protoc) and CI re-runs this script and fails on any
# difference. Each output root can be redirected for that diff:
#   PY_OUT   (default clients/python/src)         -> $PY_OUT/voxcache/v1
#   GO_OUT   (default clients/go)                 -> $GO_OUT/voxcachev1
#   JAVA_OUT (default clients/java/src/main/java) -> $JAVA_OUT/dev/voxcache/v1
# Arguments pick languages (`codegen.sh python`); none means all three. Go and Java
# need the Debian protoc and plugins that scripts/setup_clients.sh installs.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"

gen_python() {
  local out="${PY_OUT:-clients/python/src}"
  rm -rf "$out/voxcache/v1"
  mkdir -p "$out/voxcache/v1"
  "$PY" -m grpc_tools.protoc -I protos \
    --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
    protos/voxcache/v1/*.proto
  # The same files as one descriptor set WITH source info: server reflection serves it, so
  # `grpcurl describe` shows the protos' comments (Python's own descriptors carry none).
  "$PY" -m grpc_tools.protoc -I protos --include_source_info \
    --descriptor_set_out="$out/voxcache/v1/voxcache.binpb" protos/voxcache/v1/*.proto
  : > "$out/voxcache/v1/__init__.py"
  echo "codegen: python stubs -> $out/voxcache/v1"
}

# Go and Java use the system protoc and plugins from Debian, not grpc_tools' bundled
# protoc: their stubs must match the runtimes CI builds them against offline (grpc-go
# 1.33, grpc-java 1.41, protobuf-java 3.21). A newer protoc-gen-go-grpc (e.g. one from
# `go install`) emits code grpc-go 1.33 cannot compile, so any other version is reported.
PINNED_PROTOC="libprotoc 3.21.12"
PINNED_GEN_GO="protoc-gen-go v1.28.1"
PINNED_GEN_GO_GRPC="protoc-gen-go-grpc 1.0"

need() {  # need <tool>...: fail loudly (never skip) when a generator is missing
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null && continue
    echo "codegen: $tool not found (needed for the Go/Java stubs); run scripts/setup_clients.sh" >&2
    exit 1
  done
}
pinned() {  # pinned <tool> <expected --version output>
  local actual
  actual=$("$1" --version 2>&1)
  [ "$actual" = "$2" ] ||
    echo "codegen: warning: $1 is '$actual' but the committed stubs come from '$2' (scripts/setup_clients.sh)" >&2
}

gen_go() {
  need protoc protoc-gen-go protoc-gen-go-grpc
  pinned protoc "$PINNED_PROTOC"
  pinned protoc-gen-go "$PINNED_GEN_GO"
  pinned protoc-gen-go-grpc "$PINNED_GEN_GO_GRPC"
  local out="${GO_OUT:-clients/go}" module=github.com/voxcache/voxcache/clients/go
  rm -rf "$out/voxcachev1"
  mkdir -p "$out"
  # `module=` strips the module path from go_package, so the files land in
  # $out/voxcachev1 whatever directory $out is.
  protoc -I protos \
    --go_out="$out" --go_opt=module="$module" \
    --go-grpc_out="$out" --go-grpc_opt=module="$module" \
    protos/voxcache/v1/*.proto
  echo "codegen: go stubs -> $out/voxcachev1"
}

gen_java() {
  need protoc grpc_java_plugin
  pinned protoc "$PINNED_PROTOC"
  local out="${JAVA_OUT:-clients/java/src/main/java}"
  rm -rf "$out/dev/voxcache/v1"
  mkdir -p "$out"
  # Debian names the plugin grpc_java_plugin; protoc finds it only by explicit path.
  protoc -I protos \
    --plugin=protoc-gen-grpc-java="$(command -v grpc_java_plugin)" \
    --java_out="$out" --grpc-java_out="$out" \
    protos/voxcache/v1/*.proto
  echo "codegen: java stubs -> $out/dev/voxcache/v1"
}

langs=("$@")
((${#langs[@]})) || langs=(python go java)
for lang in "${langs[@]}"; do
  case $lang in
    python | go | java) ;;
    *) echo "codegen: unknown language '$lang' (choose from python, go, java)" >&2; exit 2 ;;
  esac
done
for lang in "${langs[@]}"; do "gen_$lang"; done
