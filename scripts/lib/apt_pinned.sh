# shellcheck shell=bash
# Installs Debian packages at the exact versions in scripts/system-packages.lock.
# Sourced by the setup scripts: `apt_install_pinned GROUP...` installs every package of
# those groups that is missing or at another version, and does nothing (no apt-get
# update) when all are already there. A pinned version Debian no longer serves is replaced
# by a newer Debian revision of the same upstream release (security and point-release
# fixes only), with a notice; any other difference stops the install.

_APT_LOCK="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/system-packages.lock"

# epoch:upstream without the Debian revision: 5:7.0.15-1~deb12u10 -> 5:7.0.15
_apt_upstream() {
  local version=$1
  [[ $version == *-* ]] && version=${version%-*}
  echo "$version"
}

# The versions of a group's packages, as "package version" lines.
apt_pinned_versions() {
  local group pkg ver wanted
  while read -r group pkg ver _; do
    [[ -z $group || $group == \#* ]] && continue
    for wanted in "$@"; do
      [[ $group == "$wanted" ]] && echo "$pkg $ver"
    done
  done <"$_APT_LOCK"
}

# The version of $1 to take for the pin $2: the pin itself while Debian serves it, else
# Debian's revision of the same upstream release (with a notice); fails on anything else.
_apt_pick() {
  local pkg=$1 ver=$2 candidate
  if apt-cache madison "$pkg" | awk -F' *[|] *' -v v="$ver" '$2 == v {found = 1} END {exit !found}'; then
    echo "$ver"
    return 0
  fi
  candidate=$(apt-cache policy "$pkg" | awk '/Candidate:/ {print $2}')
  if [[ -n $candidate && $candidate != "(none)" && $(_apt_upstream "$candidate") == "$(_apt_upstream "$ver")" ]]; then
    echo "[apt] $pkg $ver is no longer served; taking Debian's revision $candidate of the same release" \
      "(run 'make lock' to record it)" >&2
    echo "$candidate"
  else
    echo "[apt] $pkg: pinned $ver, Debian offers ${candidate:-nothing}; a different upstream release." >&2
    echo "[apt] Run 'make lock' to move the pin deliberately, then run the tests." >&2
    return 1
  fi
}

apt_install_pinned() {
  local pkg ver installed candidate
  local -a todo=() specs=()
  while read -r pkg ver; do
    installed=$(dpkg-query -W -f='${Status}|${Version}' "$pkg" 2>/dev/null | sed -n 's/^install ok installed|//p' || true)
    if [[ $installed == "$ver" ]]; then
      continue
    elif [[ -n $installed && $(_apt_upstream "$installed") == "$(_apt_upstream "$ver")" ]]; then
      continue  # a Debian revision of the pinned upstream release is already installed
    fi
    todo+=("$pkg|$ver")
  done < <(apt_pinned_versions "$@")
  ((${#todo[@]})) || return 0

  local sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  local item
  for item in "${todo[@]}"; do
    pkg=${item%%|*} ver=${item#*|}
    ver=$(_apt_pick "$pkg" "$ver") || return 1
    specs+=("$pkg=$ver")
  done
  echo "[apt] apt-get install ${specs[*]}"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends --allow-downgrades \
    "${specs[@]}" >/dev/null
}

# Unpacks (does not install) the pinned packages of the groups into DIR: apt-get download,
# then dpkg-deb -x, so DIR/usr/bin/... holds the pinned program. For a checking tool whose
# command name the machine may already own (kubectl: Google Cloud SDK's, a newer upstream
# one): installing Debian's would clash with it or replace it, and the check wants exactly
# the pinned version. `apt_unpack_pinned DIR GROUP...`; a no-op when DIR has these versions.
apt_unpack_pinned() {
  local dir=$1 pkg ver stamp want tmp
  shift
  mkdir -p "$dir"
  while read -r pkg ver; do
    stamp="$dir/.$pkg.version"
    [[ $(cat "$stamp" 2>/dev/null) == "$ver" ]] && continue
    if ! want=$(_apt_pick "$pkg" "$ver" 2>/dev/null); then
      local sudo=""
      [[ $(id -u) -eq 0 ]] || sudo="sudo"
      $sudo apt-get update -qq
      want=$(_apt_pick "$pkg" "$ver") || return 1
    fi
    echo "[apt] unpacking $pkg=$want into $dir"
    tmp=$(mktemp -d)
    chmod 0777 "$tmp"  # apt-get download writes as the _apt user
    (cd "$tmp" && apt-get download -qq "$pkg=$want" 2>&1 | grep -v "unsandboxed" >&2 || true)
    dpkg-deb -x "$tmp"/*.deb "$dir" || { rm -rf "$tmp"; return 1; }
    rm -rf "$tmp"
    echo "$ver" >"$stamp"
  done < <(apt_pinned_versions "$@")
}
