#!/usr/bin/env bash
# The one way pinned dependencies change (`make lock`; see README "Dependencies"):
#   make lock             re-lock after editing pyproject.toml; every other pin stays
#   make lock UPGRADE=1   every Python package to the newest version pyproject.toml allows,
#                         and every Debian pin to the version Debian serves now
# Then run `make test` and commit uv.lock / scripts/system-packages.lock with the change.
# (buf: edit tools/package.json, then `cd tools && npm install` rewrites package-lock.json.)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/uv.sh
ensure_uv

if [[ "${UPGRADE:-0}" == 1 ]]; then
  "$UV" lock --upgrade
  "$UV" lock --upgrade --project tools/k8s-lint  # the manifest linters' own lock (scripts/setup_k8s.sh)
else
  "$UV" lock
  "$UV" lock --project tools/k8s-lint
fi

# Debian: a pin Debian no longer serves moves to its revision of the same upstream release;
# with UPGRADE=1 every pin moves to the current candidate.
lock=scripts/system-packages.lock
sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
$sudo apt-get update -qq
source scripts/lib/apt_pinned.sh
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
while IFS= read -r line; do
  read -r group pkg ver _ <<<"$line"
  if [[ -z ${group:-} || $group == \#* ]]; then
    echo "$line"
    continue
  fi
  candidate=$(apt-cache policy "$pkg" | awk '/Candidate:/ {print $2}')
  served=$(apt-cache madison "$pkg" | awk -F' *[|] *' -v v="$ver" '$2 == v {print "yes"}')
  if [[ -z $candidate || $candidate == "(none)" ]]; then
    echo "lock: Debian offers no $pkg" >&2
    exit 1
  elif [[ "${UPGRADE:-0}" == 1 || ( -z $served && $(_apt_upstream "$candidate") == "$(_apt_upstream "$ver")" ) ]]; then
    [[ $candidate != "$ver" ]] && echo "lock: $pkg $ver -> $candidate" >&2
    ver=$candidate
  elif [[ -z $served ]]; then
    echo "lock: $pkg $ver is gone and Debian offers $candidate, another release: run with UPGRADE=1" >&2
  fi
  echo "$group $pkg $ver"
done <"$lock" >"$tmp"
cat "$tmp" >"$lock"
git --no-pager diff --stat -- uv.lock tools/k8s-lint/uv.lock "$lock" || true
echo "lock: done; now run 'make test' and commit the lock files"
