#!/usr/bin/env bash
# OS identity: /usr/lib/os-release names the distro from declarations/distro.yaml (`os:`), which
# the build action passes as build-args OS_ID, OS_NAME, OS_PRETTY_NAME and the optional
# OS_ID_LIKE, OS_VARIANT_ID, OS_HOME_URL. The base's VERSION_ID/VERSION_CODENAME are kept (they
# say which Debian release the packages come from). /etc/os-release stays a link to it.
set -euo pipefail
# shellcheck source=../lib/common.sh
. "$CTX/lib/common.sh"

[ -n "${OS_ID:-}" ] || die "build-arg OS_ID is empty: build with the Keel build action (it passes declarations os.id) or --build-arg OS_ID=..."
[ -n "${OS_NAME:-}" ] || die "build-arg OS_NAME is empty (declarations os.name)"
[ -n "${OS_PRETTY_NAME:-}" ] || die "build-arg OS_PRETTY_NAME is empty (declarations os.pretty-name)"
[[ $OS_ID =~ ^[a-z0-9._-]+$ ]] || die "OS_ID '$OS_ID' may only contain a-z 0-9 . _ - (os-release ID)"
if [ -n "${OS_VARIANT_ID:-}" ] && ! [[ $OS_VARIANT_ID =~ ^[a-z0-9._-]+$ ]]; then
	die "OS_VARIANT_ID '$OS_VARIANT_ID' may only contain a-z 0-9 . _ -"
fi

# os-release values are shell-quoted strings: escape \ " $ and ` inside double quotes.
q() {
	local v=$1
	v=${v//\\/\\\\}
	v=${v//\"/\\\"}
	v=${v//\$/\\\$}
	v=${v//\`/\\\`}
	printf '"%s"' "$v"
}
# Reads KEY from the base's os-release (the file is shell-compatible by specification).
base_value() { (. /usr/lib/os-release && eval "printf '%s' \"\${$1:-}\""); }
version_id=$(base_value VERSION_ID)
codename=$(base_value VERSION_CODENAME)
base_id=$(base_value ID)
id_like=${OS_ID_LIKE:-$base_id}

tmp=$(mktemp)
{
	printf 'NAME=%s\n' "$(q "$OS_NAME")"
	printf 'PRETTY_NAME=%s\n' "$(q "$OS_PRETTY_NAME")"
	printf 'ID=%s\n' "$OS_ID"
	[ -z "$id_like" ] || printf 'ID_LIKE=%s\n' "$(q "$id_like")"
	[ -z "${OS_VARIANT_ID:-}" ] || printf 'VARIANT_ID=%s\n' "$OS_VARIANT_ID"
	[ -z "$version_id" ] || printf 'VERSION_ID=%s\n' "$(q "$version_id")"
	[ -z "$codename" ] || printf 'VERSION_CODENAME=%s\n' "$codename"
	[ -z "${OS_HOME_URL:-}" ] || printf 'HOME_URL=%s\n' "$(q "$OS_HOME_URL")"
} >"$tmp"
install -m 0644 "$tmp" /usr/lib/os-release
rm -f "$tmp"
ln -sfn ../usr/lib/os-release /etc/os-release
log "os-release: $(tr '\n' ' ' </usr/lib/os-release)"
