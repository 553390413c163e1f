#!/usr/bin/env bash
# Shipped system files: build_files/system_files/ mirrors the image root and may only contain
# usr/ — distro defaults live in /usr (the image owns it; /etc is the machine's, merged on
# upgrade). Files are installed root-owned, 0644 or 0755 (executable in git), directories 0755;
# symlinks are copied as links (e.g. the user timer's timers.target.wants entry).
set -euo pipefail
# shellcheck source=../lib/common.sh
. "$CTX/lib/common.sh"

src=$CTX/system_files
[ -d "$src" ] || die "$src is missing"
outside=$(find "$src" -mindepth 1 -maxdepth 1 ! -name usr -printf '%f ')
[ -z "$outside" ] || die "system_files may only contain usr/ (found: $outside): ship defaults under /usr, not /etc"

n=0
while IFS= read -r -d '' p; do
	rel=${p#"$src"/}
	if [ -L "$p" ]; then
		mkdir -p "/$(dirname "$rel")"
		cp -P --remove-destination "$p" "/$rel"
	elif [ -d "$p" ]; then
		install -d -m 0755 "/$rel"
	elif [ -f "$p" ]; then
		mode=0644
		[ ! -x "$p" ] || mode=0755
		install -D -m "$mode" -o root -g root "$p" "/$rel"
	else
		die "system_files/$rel is neither a file, a directory nor a symlink"
	fi
	n=$((n + 1))
done < <(find "$src/usr" -mindepth 1 -print0 | LC_ALL=C sort -z)
log "installed $n entries from system_files/usr"

# Every shipped symlink must resolve inside the image (a dangling wants link is a silent no-op).
while IFS= read -r -d '' p; do
	rel=${p#"$src"/}
	[ -e "/$rel" ] || die "/$rel is a dangling symlink"
done < <(find "$src/usr" -type l -print0)

# Signature enforcement from the first boot: containers/image (bootc, podman, skopeo) reads only
# /etc/containers/policy.json and /etc/containers/registries.d/. The files themselves ship under
# /usr/share/keel-os/containers/ (owned by the image, updated with it, key included); /etc holds
# links to them, which a machine owner may replace with a file of their own.
conf=/usr/share/keel-os/containers
if [ -f "$conf/policy.json" ]; then
	mkdir -p /etc/containers/registries.d
	ln -sfn "../..$conf/policy.json" /etc/containers/policy.json
	for f in "$conf"/registries.d/*.yaml; do
		ln -sfn "../../..$f" "/etc/containers/registries.d/${f##*/}"
	done
	key=$(sed -n 's/.*"keyPath": *"\([^"]*\)".*/\1/p' "$conf/policy.json" | sort -u)
	for k in $key; do [ -f "$k" ] || die "policy.json names key $k, which the image does not ship"; done
	log "signature policy: /etc/containers/policy.json -> $conf/policy.json (keys: $key)"
fi

# System extensions (declarations `sysexts:`, built by the sysext hop) are merged at boot from
# /var/lib/extensions/: systemd-sysext.service is enabled by the image, in /usr. Debian enables it
# only through its preset, which systemd applies on a first boot, and this image's empty
# /etc/machine-id does not make one (seen in the sysext boot test: ConditionFirstBoot unmet, the
# extension not merged until the probe merged it).
if [ -f /usr/lib/systemd/system/systemd-sysext.service ]; then
	mkdir -p /usr/lib/systemd/system/sysinit.target.wants
	ln -sfn ../systemd-sysext.service /usr/lib/systemd/system/sysinit.target.wants/systemd-sysext.service
	log "systemd-sysext.service enabled (sysinit.target.wants in /usr)"
fi
