#!/usr/bin/env bash
# Installs what the Go and Java clients need to be generated, built and checked
# offline, idempotently: protoc + the Go/Java plugins and the grpc-go / grpc-java
# runtimes, all from Debian (no Go module proxy, no Maven Central). Re-running is
# a few dpkg-query calls when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[setup-clients]\033[0m %s\n' "$*"; }

APT_PACKAGES=(
  protobuf-compiler
  # Go: compiler, generators, and the libraries as GOPATH sources in /usr/share/gocode.
  golang-go protoc-gen-go protoc-gen-go-grpc
  golang-google-grpc-dev golang-google-protobuf-dev
  # Named explicitly: otherwise apt may satisfy golang/protobuf with 1.3 (pre-APIv2),
  # and the Go client then panics at its first call ("protobuf tag not enough fields").
  golang-github-golang-protobuf-1-5-dev
  # Java: stub generator and the runtime jars in /usr/share/java.
  protobuf-compiler-grpc-java-plugin libgrpc-java libprotobuf-java libguava-java
  libnetty-java libperfmark-java libgeronimo-annotation-1.3-spec-java
  # JUnit 4 for the Java helpers' unit tests (clients/java/src/test).
  junit4
)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# A JDK only when javac is missing: naming openjdk-17 when one is present upgrades it.
command -v javac >/dev/null || missing+=(openjdk-17-jdk-headless)
if ((${#missing[@]})); then
  say "apt-get install ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The protos' Go and Java stubs are committed; these are only the tools that regenerate
# and check them. Fail here, not halfway through a build, if any is still absent.
for tool in protoc protoc-gen-go protoc-gen-go-grpc grpc_java_plugin go javac java; do
  command -v "$tool" >/dev/null || { echo "setup-clients: $tool is still missing" >&2; exit 1; }
done
say "ready: $(protoc --version), $(go version | cut -d' ' -f3), javac $(javac -version 2>&1 | cut -d' ' -f2)"
