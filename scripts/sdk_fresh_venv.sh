#!/usr/bin/env bash
# The Python SDK on its own: a brand-new venv, `pip install ./clients/python`, no torch,
# then a live round trip (examples/check_live.py) against $VOXCACHE_EMBEDDER / $VOXCACHE_SYNTHESIZER.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${VOXCACHE_EMBEDDER:?}" "${VOXCACHE_SYNTHESIZER:?}" "${VOXCACHE_REFERENCE:?}"
venv=$(mktemp -d)/sdk
trap 'rm -rf "$(dirname "$venv")"' EXIT
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet ./clients/python 2>&1 | grep -v "^WARNING: Location" || true
"$venv/bin/python" - <<'PY'
import importlib.util, pathlib, sys
import voxcache
assert importlib.util.find_spec("torch") is None, "the SDK pulled in torch"
assert importlib.util.find_spec("speechbrain") is None, "the SDK pulled in speechbrain"
marker = pathlib.Path(voxcache.__file__).with_name("py.typed")
assert marker.is_file(), "py.typed marker missing from the installed SDK"
print(f"python sdk: installed alone in a fresh venv (no torch), typed ({marker.name} present)")
PY
"$venv/bin/python" clients/python/examples/check_live.py "$VOXCACHE_EMBEDDER" "$VOXCACHE_SYNTHESIZER" "$VOXCACHE_REFERENCE"
"$venv/bin/voxcache" --embedder "$VOXCACHE_EMBEDDER" stats >/dev/null
echo "python sdk: voxcache CLI entry point works"
