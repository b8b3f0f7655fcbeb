#!/usr/bin/env bash
# Installs what the Go and Java clients need to be generated, built and checked
# offline, idempotently: protoc + the Go/Java plugins and the grpc-go / grpc-java
# runtimes, all from Debian at pinned versions (no Go module proxy, no Maven Central).
# Re-running is a few dpkg-query calls when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[setup-clients]\033[0m %s\n' "$*"; }

# Go: compiler, generators, and grpc-go / protobuf as GOPATH sources in /usr/share/gocode
# (golang-github-golang-protobuf-1-5-dev named explicitly: otherwise apt may satisfy
# golang/protobuf with 1.3, and the Go client panics at its first call; genproto for the
# google.rpc error details the Go helpers decode). Java: the stub generator and runtime jars
# in /usr/share/java, the google common protos (com.google.rpc.BadRequest / ResourceInfo,
# which io.grpc.protobuf.StatusProto needs), JUnit 4 for the helpers' tests. Exact
# versions: scripts/system-packages.lock.
source scripts/lib/apt_pinned.sh
groups=(clients)
# A JDK only when javac is missing: naming openjdk-17 when one is present upgrades it.
command -v javac >/dev/null || groups+=(jdk)
apt_install_pinned "${groups[@]}"

# The protos' Go and Java stubs are committed; these are only the tools that regenerate
# and check them. Fail here, not halfway through a build, if any is still absent.
for tool in protoc protoc-gen-go protoc-gen-go-grpc grpc_java_plugin go javac java; do
  command -v "$tool" >/dev/null || { echo "setup-clients: $tool is still missing" >&2; exit 1; }
done
say "ready: $(protoc --version), $(go version | cut -d' ' -f3), javac $(javac -version 2>&1 | cut -d' ' -f2)"
