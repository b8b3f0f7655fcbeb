#!/usr/bin/env bash
# Validates compose.yaml with `docker-compose config` (Debian's docker-compose; no
# container engine is needed or used). Installs docker-compose at its pinned version if missing.
# Checks that the file is valid with the password and signing keys set, and that it
# refuses to render without either. Exit status non-zero on any error.
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

secrets=(VOXCACHE_REDIS_PASSWORD=dummy-password-for-validation VOXCACHE_CACHE_HMAC_KEYS=k1:dummy-key-for-validation)
run_config "${secrets[@]}"
for missing in VOXCACHE_REDIS_PASSWORD VOXCACHE_CACHE_HMAC_KEYS; do
  others=()
  for pair in "${secrets[@]}"; do [[ $pair == "$missing="* ]] || others+=("$pair"); done
  if err=$(run_config "${others[@]}" 2>&1); then
    echo "compose.yaml rendered without $missing; it must refuse" >&2
    exit 1
  elif ! grep -q "$missing" <<<"$err"; then
    echo "compose.yaml failed without $missing, but not because of it:" >&2
    echo "$err" >&2
    exit 1
  fi
done
echo "compose.yaml: valid ($(docker-compose version --short))"
