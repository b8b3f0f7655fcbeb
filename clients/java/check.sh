#!/usr/bin/env bash
# Compiles and checks the Java client offline, then runs its example against live services:
#   VOXCACHE_EMBEDDER=host:port VOXCACHE_SYNTHESIZER=host:port VOXCACHE_REFERENCE=ref.wav clients/java/check.sh
# Maven Central is unreachable in CI, so pom.xml is not used here: javac builds against the
# grpc-java / protobuf-java jars Debian installs in /usr/share/java (scripts/setup_clients.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${VOXCACHE_EMBEDDER:?set VOXCACHE_EMBEDDER to the Embedder address}"
: "${VOXCACHE_SYNTHESIZER:?set VOXCACHE_SYNTHESIZER to the Synthesizer address}"
: "${VOXCACHE_REFERENCE:?set VOXCACHE_REFERENCE to a reference clip}"

scripts/setup_clients.sh >/dev/null

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

jars() { local j; for j in "$@"; do printf '/usr/share/java/%s.jar:' "$j"; done; }
# proto-google-common-protos: com.google.rpc.Status / BadRequest / ResourceInfo, which
# io.grpc.protobuf.StatusProto and dev.voxcache.client.VoxcacheErrors read (Maven users get it
# through grpc-protobuf).
compile_cp=$(jars protobuf grpc-api grpc-stub grpc-protobuf proto-google-common-protos guava \
  geronimo-annotation-1.3-spec)
# grpc-core: its in-process transport, a real gRPC server inside the test (TraceParentTest);
# error-prone-annotations (a dependency of Debian's guava) for the annotations on its classes.
test_cp=$(jars junit4 hamcrest-core grpc-core grpc-context error-prone-annotations)
run_cp=$compile_cp$(jars grpc-context grpc-core grpc-protobuf-lite grpc-netty perfmark-api \
  netty-buffer netty-codec netty-codec-http netty-codec-http2 netty-common netty-handler \
  netty-resolver netty-transport)

echo "== java: generated stubs match protos/"
JAVA_OUT="$work/gen" scripts/codegen.sh java >/dev/null
diff -r "$work/gen/dev/voxcache/v1" clients/java/src/main/java/dev/voxcache/v1 ||
  { echo "clients/java/src/main/java/dev/voxcache/v1 is stale: run scripts/codegen.sh" >&2; exit 1; }

# io.grpc.health.v1 comes from io.grpc:grpc-services for Maven users; Debian does not
# package that jar, so generate the same classes from the health.proto Debian ships with
# grpc-go (same protoc and plugin as the committed stubs), for this build only.
echo "== java: grpc.health.v1 stubs (stand-in for grpc-services)"
grpc_protos=/usr/share/gocode/src/google.golang.org/grpc/debian/missing-sources/grpc/grpc-proto/master
[ -f "$grpc_protos/grpc/health/v1/health.proto" ] ||
  { echo "health.proto not found under $grpc_protos (golang-google-grpc-dev); run scripts/setup_clients.sh" >&2; exit 1; }
mkdir -p "$work/health"
protoc -I "$grpc_protos" --plugin=protoc-gen-grpc-java="$(command -v grpc_java_plugin)" \
  --java_out="$work/health" --grpc-java_out="$work/health" "$grpc_protos/grpc/health/v1/health.proto"

echo "== java: compile"
# Generated code first, without lint (it is not ours to fix); then our code with every
# lint warning as an error.
mkdir -p "$work/classes" "$work/test-classes"
find clients/java/src/main/java/dev/voxcache/v1 "$work/health" -name '*.java' >"$work/generated.txt"
javac -nowarn -encoding UTF-8 --release 11 -cp "$compile_cp" -d "$work/classes" @"$work/generated.txt"
find clients/java/src/main/java -name '*.java' -not -path '*/dev/voxcache/v1/*' >"$work/main.txt"
javac -Xlint:all -Werror -encoding UTF-8 --release 11 -cp "$work/classes:$compile_cp" -d "$work/classes" @"$work/main.txt"
find clients/java/src/test/java -name '*.java' >"$work/test.txt"
javac -Xlint:all -Werror -encoding UTF-8 --release 11 -cp "$work/classes:$compile_cp$test_cp" \
  -d "$work/test-classes" @"$work/test.txt"
echo "javac: ok"

echo "== java: unit tests (JUnit 4)"
tests=$(cd clients/java/src/test/java && find . -name '*Test.java' | sed 's|^\./||; s|\.java$||; s|/|.|g' | sort)
# shellcheck disable=SC2086 # one argument per test class
java -cp "$work/classes:$work/test-classes:$run_cp$test_cp" org.junit.runner.JUnitCore $tests

echo "== java: example dev.voxcache.example.VoxcacheSay"
java -cp "$work/classes:$run_cp" dev.voxcache.example.VoxcacheSay \
  --embedder "$VOXCACHE_EMBEDDER" --synthesizer "$VOXCACHE_SYNTHESIZER" \
  --reference "$VOXCACHE_REFERENCE" --voice-id java-example --out "$work/voxcache-say.wav" \
  --text "The Java client checks what it gets back."
echo "java client: all checks passed"
