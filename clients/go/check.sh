#!/usr/bin/env bash
# Builds and checks the Go client offline, then runs it against live services:
#   VOXCACHE_EMBEDDER=host:port VOXCACHE_SYNTHESIZER=host:port VOXCACHE_REFERENCE=ref.wav clients/go/check.sh
# No module proxy is reachable in CI, so this builds in GOPATH mode against the
# grpc-go / protobuf-go sources Debian installs in /usr/share/gocode (see
# scripts/setup_clients.sh); go.mod is for users with normal internet access.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${VOXCACHE_EMBEDDER:?set VOXCACHE_EMBEDDER to the Embedder address}"
: "${VOXCACHE_SYNTHESIZER:?set VOXCACHE_SYNTHESIZER to the Synthesizer address}"
: "${VOXCACHE_REFERENCE:?set VOXCACHE_REFERENCE to a reference clip}"
VOXCACHE_REFERENCE=$(realpath "$VOXCACHE_REFERENCE")
export VOXCACHE_EMBEDDER VOXCACHE_SYNTHESIZER VOXCACHE_REFERENCE
# The live tests fail instead of skipping when the variables are missing.
export CI=true

scripts/setup_clients.sh >/dev/null

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== go: generated stubs match protos/"
GO_OUT="$work/gen" scripts/codegen.sh go >/dev/null
diff -r "$work/gen/voxcachev1" clients/go/voxcachev1 ||
  { echo "clients/go/voxcachev1 is stale: run scripts/codegen.sh" >&2; exit 1; }

echo "== go: go.mod parses"
(cd clients/go && GO111MODULE=on GOFLAGS=-mod=mod GOPROXY=off go mod edit -json >/dev/null)

# A GOPATH workspace holding a copy of the module at its import path; Debian's
# libraries come from the second GOPATH entry. Copying (not symlinking) keeps the
# go tool's view of the directory simple and leaves the checkout untouched.
src="$work/gopath/src/github.com/voxcache/voxcache/clients/go"
mkdir -p "$(dirname "$src")"
cp -r clients/go "$src"
export GO111MODULE=off GOPATH="$work/gopath:/usr/share/gocode" GOFLAGS="" GOPROXY=off
cd "$src"

echo "== go: gofmt"
unformatted=$(gofmt -l .)
[ -z "$unformatted" ] || { echo "not gofmt-ed: $unformatted" >&2; exit 1; }

echo "== go: build + vet"
go build ./...
go vet ./...
echo "go vet: ok"

echo "== go: test (unit + live, never cached)"
go test -count=1 -v ./...

echo "== go: example cmd/voxcache-say"
go build -o "$work/voxcache-say" ./cmd/voxcache-say
"$work/voxcache-say" -embedder "$VOXCACHE_EMBEDDER" -synthesizer "$VOXCACHE_SYNTHESIZER" \
  -reference "$VOXCACHE_REFERENCE" -voice-id "go-example" -out "$work/voxcache-say.wav" \
  -text "The Go client checks what it gets back."
echo "go client: all checks passed"
