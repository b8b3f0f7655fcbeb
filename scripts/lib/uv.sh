# shellcheck shell=bash
# Puts uv, pinned by version and file hash (scripts/uv-requirements.txt), in tools/uv and
# sets UV to its path. Sourced by setup.sh and lock.sh; a no-op when it is already there.

UV=tools/uv/bin/uv
export UV_PYTHON_DOWNLOADS=never  # interpreters come from the machine, never a download

ensure_uv() {
  local python=${PYTHON:-python3} want
  want=$(sed -n 's/^uv==\([^ ]*\).*/\1/p' scripts/uv-requirements.txt)
  if [[ "$("$UV" --version 2>/dev/null | cut -d' ' -f2)" != "$want" ]]; then
    printf '\033[1m[setup]\033[0m %s\n' "installing uv $want into tools/uv (hash-checked)"
    rm -rf tools/uv
    "$python" -m venv tools/uv
    tools/uv/bin/python -m pip install --quiet --require-hashes --no-deps -r scripts/uv-requirements.txt
  fi
}
