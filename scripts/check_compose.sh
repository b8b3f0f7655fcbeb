#!/usr/bin/env bash
# Validates compose.yaml with `docker-compose config` (Debian's docker-compose; no
# container engine is needed or used). Installs docker-compose at its pinned version if missing.
# Checks that the file is valid with a password set, and that it refuses to render
# without one. Exit status non-zero on any error.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/lib/apt_pinned.sh
apt_install_pinned compose

# A throwaway environment: not the checkout's .env, a dummy password, no daemon needed.
no_env=$(mktemp)
trap 'rm -f "$no_env"' EXIT
run_config() {
  env -i PATH="$PATH" HOME="${HOME:-/tmp}" "$@" \
    docker-compose --project-directory . --env-file "$no_env" -f compose.yaml config -q
}

run_config VOXCACHE_REDIS_PASSWORD=dummy-password-for-validation
if err=$(run_config 2>&1); then
  echo "compose.yaml rendered without VOXCACHE_REDIS_PASSWORD; it must refuse" >&2
  exit 1
elif ! grep -q "VOXCACHE_REDIS_PASSWORD" <<<"$err"; then
  echo "compose.yaml failed without a password, but not because of it:" >&2
  echo "$err" >&2
  exit 1
fi
echo "compose.yaml: valid ($(docker-compose version --short))"
