#!/usr/bin/env bash
# Cuts a release: `scripts/release.sh v0.3.0`.
#   1. records the contract as released: contract/released.binpb (a buf image of protos/,
#      no source info) and contract/VERSION. `make test` runs `buf breaking` with the FILE
#      rules against that image, so no commit after a release can break the released
#      contract (wire, JSON, generated Go/Java packages) without cutting a new major API
#      (voxcache.v2) instead;
#   2. sets the version of the services, the Python SDK and the Java client, and re-locks;
#   3. commits, and tags `vX.Y.Z` (everything) and `clients/go/vX.Y.Z` (the Go module,
#      which lives in a subdirectory and is versioned by tags with that prefix).
# Run it on a clean main after `make test` passed. Pushing the tags is up to you.
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:-}
[[ $version =~ ^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$ ]] ||
  { echo "usage: scripts/release.sh vMAJOR.MINOR.PATCH (e.g. v0.3.0)" >&2; exit 2; }
number=${version#v}
[[ -z $(git status --porcelain) ]] || { echo "release: the work tree is not clean" >&2; exit 1; }
for tag in "$version" "clients/go/$version"; do
  ! git rev-parse -q --verify "refs/tags/$tag" >/dev/null || { echo "release: tag $tag exists" >&2; exit 1; }
done

tools/node_modules/.bin/buf build --exclude-source-info -o contract/released.binpb
echo "$version" > contract/VERSION
sed -i "0,/^version = \".*\"/s//version = \"$number\"/" pyproject.toml clients/python/pyproject.toml
sed -i "0,/<version>[^<]*<\/version>/s//<version>$number<\/version>/" clients/java/pom.xml
tools/uv/bin/uv lock --quiet
git add contract pyproject.toml clients/python/pyproject.toml clients/java/pom.xml uv.lock
git commit -q -m "Release $version: contract recorded in contract/released.binpb"
git tag -a "$version" -m "voxcache $version"
git tag -a "clients/go/$version" -m "voxcache Go client $version"
echo "release: $version committed and tagged ($version, clients/go/$version)"
