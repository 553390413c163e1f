#!/usr/bin/env bash
# Independent signature verifiers for the tests of the sign/verify hops, without installing
# anything system-wide: skopeo and cosign built with sigstore support, from Debian 13 (trixie:
# skopeo 1.18, cosign 2.5) and, with --with-sid, from Debian unstable (skopeo 1.22, cosign 3.x).
# Debian 12's own skopeo/podman have sigstore support patched out and cannot verify.
#
# Usage: scripts/fetch-verifiers.sh [--with-sid] [CACHE_DIR]
#   CACHE_DIR defaults to $KEEL_VERIFIERS_CACHE, else ${XDG_CACHE_HOME:-~/.cache}/keel/verifiers.
#   The last line of stdout is the bin directory, holding:
#     skopeo, cosign             (trixie)
#     skopeo-sid, cosign3        (sid, with --with-sid)
#   Idempotent: a suite already fetched and verified is not fetched again.
#
# What is trusted: the Debian archive keyring installed on this machine
# (/usr/share/keyrings/debian-archive-keyring.gpg, or $KEEL_DEBIAN_KEYRING). apt, with private state under the cache,
# checks the suite's InRelease signature against that keyring and the Packages index against
# InRelease; this script then checks every downloaded .deb's SHA256 against that verified index
# itself before unpacking it. Nothing unverified is unpacked, and a suite is only marked done
# after its tools ran.
set -euo pipefail

with_sid=0
if [ "${1:-}" = "--with-sid" ]; then
  with_sid=1
  shift
fi
cache=${1:-${KEEL_VERIFIERS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/keel/verifiers}}
# The keys the archive must be signed with ($KEEL_DEBIAN_KEYRING: another archive, or the tests).
keyring=${KEEL_DEBIAN_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}

die() {
  echo "fetch-verifiers: $*" >&2
  exit 1
}

for tool in apt-get apt-cache dpkg-deb sha256sum flock; do
  command -v "$tool" >/dev/null || die "needs $tool (a Debian or Ubuntu host)"
done
[ -r "$keyring" ] || die "no Debian archive keyring at $keyring (package debian-archive-keyring)"

# The Debian archive this host's apt already uses (deb822 .sources or one-line sources.list),
# or $KEEL_DEBIAN_MIRROR.
debian_mirror() {
  if [ -n "${KEEL_DEBIAN_MIRROR:-}" ]; then
    echo "$KEEL_DEBIAN_MIRROR"
    return
  fi
  local uri
  uri=$(
    {
      sed -n 's/^[[:space:]]*URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | tr ' ' '\n'
      sed -n 's/^[[:space:]]*deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]\+\).*/\2/p' \
        /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null
    } | grep -i 'debian' | grep -v -- '-security' | head -n 1
  ) || true
  [ -n "$uri" ] || die "no Debian archive in the apt sources (set KEEL_DEBIAN_MIRROR)"
  echo "$uri"
}

# apt and apt-cache against a private state directory for one suite.
apt_opts() { # state-dir
  printf '%s\n' \
    -o "Dir::Etc::SourceList=$1/sources.list" -o Dir::Etc::SourceParts=/dev/null \
    -o "Dir::State::Lists=$1/lists" -o "Dir::Cache=$1/cache" \
    -o Dir::State::Status=/dev/null -o Debug::NoLocking=1
  # As root, apt would hand the download to its _apt user, who cannot write a private cache.
  [ "$(id -u)" != 0 ] || printf '%s\n' -o APT::Sandbox::User=root
}

# The packages to fetch: the tools plus the closure of their library dependencies (first
# alternative of each Depends entry, lib* packages only: the tools run with their suite's libc
# and libraries, everything else they depend on is not needed to verify).
package_closure() { # state-dir packages...
  local state=$1
  shift
  local -a opts todo
  mapfile -t opts < <(apt_opts "$state")
  todo=("$@")
  declare -A seen=()
  while [ ${#todo[@]} -gt 0 ]; do
    local pkg=${todo[0]}
    todo=("${todo[@]:1}")
    [ -n "${seen[$pkg]:-}" ] && continue
    seen[$pkg]=1
    echo "$pkg"
    local deps
    deps=$(apt-cache "${opts[@]}" show --no-all-versions "$pkg" | sed -n 's/^\(Pre-\)\?Depends: //p')
    local entry
    while IFS= read -r entry; do
      local name=${entry%%|*}
      name=$(echo "$name" | sed 's/(.*//; s/:.*//; s/[[:space:]]//g')
      case $name in lib*) todo+=("$name") ;; esac
    done < <(echo "$deps" | tr ',' '\n')
  done
}

# Fetches, verifies and unpacks one suite's tools into $cache/<suite>/root.
fetch_suite() { # suite tools...
  local suite=$1
  shift
  local dir="$cache/$suite"
  [ -f "$dir/verified" ] && return 0
  local state="$dir/apt" debs="$dir/debs" staging="$dir/root.new"
  rm -rf "$state" "$debs" "$staging"
  mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$debs" "$staging"
  echo "deb [signed-by=$keyring] $(debian_mirror) $suite main" >"$state/sources.list"
  local -a opts
  mapfile -t opts < <(apt_opts "$state")
  echo "fetch-verifiers: $suite: reading the signed package index" >&2
  apt-get "${opts[@]}" --error-on=any -qq update >&2 || die "$suite: apt-get update failed (see above)"

  local -a pkgs
  mapfile -t pkgs < <(package_closure "$state" "$@")
  echo "fetch-verifiers: $suite: downloading ${pkgs[*]}" >&2
  (cd "$debs" && apt-get "${opts[@]}" -qq download "${pkgs[@]}" >&2) || die "$suite: download failed"

  local pkg
  for pkg in "${pkgs[@]}"; do
    local version expected deb actual
    version=$(apt-cache "${opts[@]}" show --no-all-versions "$pkg" | sed -n 's/^Version: //p')
    expected=$(apt-cache "${opts[@]}" show --no-all-versions "$pkg" | sed -n 's/^SHA256: //p')
    deb=$(find "$debs" -maxdepth 1 -name "${pkg}_*.deb" | head -n 1)
    [ -n "$deb" ] || die "$suite: $pkg $version was not downloaded"
    actual=$(sha256sum "$deb" | cut -d' ' -f1)
    [ -n "$expected" ] && [ "$actual" = "$expected" ] ||
      die "$suite: $(basename "$deb") has SHA256 $actual, the signed index says ${expected:-nothing}"
    dpkg-deb -x "$deb" "$staging"
  done
  rm -rf "$dir/root"
  mv "$staging" "$dir/root"
  printf '%s\n' "${pkgs[@]}" >"$dir/packages"
}

# A wrapper that runs a suite's skopeo with that suite's loader and libraries.
write_skopeo_wrapper() { # suite wrapper-path
  local root="$cache/$1/root"
  local libs="$root/usr/lib/x86_64-linux-gnu"
  cat >"$2" <<EOF
#!/bin/sh
exec "$libs/ld-linux-x86-64.so.2" --library-path "$libs" "$root/usr/bin/skopeo" "\$@"
EOF
  chmod 755 "$2"
}

# Runs the suite's tools once; only then is the suite marked verified.
check_suite() { # suite skopeo-wrapper cosign-link
  "$2" --version >&2 || die "$1: skopeo does not run"
  "$3" version >/dev/null 2>&1 || die "$1: cosign does not run"
  touch "$cache/$1/verified"
}

mkdir -p "$cache/bin"
exec 9>"$cache/lock"
flock 9

fetch_suite trixie skopeo cosign
write_skopeo_wrapper trixie "$cache/bin/skopeo"
ln -sfn "$cache/trixie/root/usr/bin/cosign" "$cache/bin/cosign"
check_suite trixie "$cache/bin/skopeo" "$cache/bin/cosign"

if [ "$with_sid" = 1 ]; then
  fetch_suite sid skopeo cosign
  write_skopeo_wrapper sid "$cache/bin/skopeo-sid"
  ln -sfn "$cache/sid/root/usr/bin/cosign" "$cache/bin/cosign3"
  check_suite sid "$cache/bin/skopeo-sid" "$cache/bin/cosign3"
fi

echo "$cache/bin"
