#!/usr/bin/env bash
# Cleanup, last stage: what the image must not carry.
#   - package caches and apt lists (apt-get clean; lists are per-machine, fetched on demand)
#   - third-party repository definitions and keys: the distro ships updates as new images, a
#     machine must never pull packages from a repository a build stage enabled for itself
#   - /var content other than empty directories and tmpfiles.d-declared links (tidy_var)
#   - anything under /boot (bootc reads the kernel from /usr/lib/modules), /tmp or /var/tmp
set -euo pipefail
# shellcheck source=../lib/common.sh
. "$CTX/lib/common.sh"

if command -v apt-get >/dev/null; then apt-get clean; fi

# Debian's own sources (sources.list written by the bootstrap, debian.sources) stay; every
# other definition is a third-party repository some stage added.
shopt -s nullglob
for f in /etc/apt/sources.list.d/*; do
	case ${f##*/} in
	debian.sources) ;;
	*) log "removing third-party repository definition $f"; rm -rf "$f" ;;
	esac
done
for f in /etc/apt/keyrings/* /etc/apt/trusted.gpg.d/*; do
	case ${f##*/} in
	debian-archive-*) ;;
	*) log "removing third-party repository key $f"; rm -rf "$f" ;;
	esac
done
rm -f /etc/apt/trusted.gpg

tidy_var /
find /boot /tmp /var/tmp -mindepth 1 -delete
[ ! -e /usr/etc ] || die "/usr/etc exists: it is a bootc implementation detail, ship /etc or /usr/lib instead"
log "/var now holds: $(find /var -mindepth 1 \( -type l -printf '%p->%l ' \) -o \( -type d -printf '%p ' \) | head -c 2000)"
