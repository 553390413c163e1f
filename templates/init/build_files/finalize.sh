#!/usr/bin/env bash
# The last step of the image build, run by the Containerfile with build_files/ bound read-only at
# /ctx (never copied into the image). Generic for Debian- and Fedora-based bootc images:
#   1. /usr/lib/os-release names your distro: build-args OS_* (declarations os:, passed by Keel's
#      build action); the base's VERSION_ID, VERSION_CODENAME and PLATFORM_ID stay.
#   2. The live ISO needs dracut's dmsquash-live module in the image (package dracut-live on
#      Debian and Fedora): Keel's build-disk generates the ISO's own initramfs with it. Checked
#      here, so a missing package fails the build instead of the release. Remove the check if you
#      build no live ISO (declarations iso.backend: bib).
#   3. The initramfs of the image's one kernel is regenerated after your changes: generic (the
#      build container is not the machine that boots), with ostree's module when ostree is there.
#   4. /var holds only directories and links, each declared in tmpfiles.d: /var is machine state,
#      which bootc copies from the image at the first install only and never updates.
set -euo pipefail
log() { printf '==> %s\n' "$*" >&2; }
die() {
	printf 'ERROR: %s\n' "$*" >&2
	exit 1
}

# os-release values are shell-quoted strings: escape \ " $ and ` inside double quotes.
q() {
	local v=$1
	v=${v//\\/\\\\}
	v=${v//\"/\\\"}
	v=${v//\$/\\\$}
	v=${v//\`/\\\`}
	printf '"%s"' "$v"
}
# KEY of the base's os-release (the file is shell-compatible by specification).
base_value() { (. /usr/lib/os-release && eval "printf '%s' \"\${$1:-}\""); }

write_os_release() {
	[ -n "${OS_ID:-}" ] || die "build-arg OS_ID is empty: build with Keel's build action (keel run build), which passes declarations os:"
	[ -n "${OS_NAME:-}" ] || die "build-arg OS_NAME is empty (declarations os.name)"
	[ -n "${OS_PRETTY_NAME:-}" ] || die "build-arg OS_PRETTY_NAME is empty (declarations os.pretty-name)"
	[[ $OS_ID =~ ^[a-z0-9._-]+$ ]] || die "OS_ID '$OS_ID' may only contain a-z 0-9 . _ -"
	local id_like tmp k v
	id_like=${OS_ID_LIKE:-$(base_value ID)}
	tmp=$(mktemp)
	{
		printf 'NAME=%s\n' "$(q "$OS_NAME")"
		printf 'PRETTY_NAME=%s\n' "$(q "$OS_PRETTY_NAME")"
		printf 'ID=%s\n' "$OS_ID"
		[ -z "$id_like" ] || printf 'ID_LIKE=%s\n' "$(q "$id_like")"
		[ -z "${OS_VARIANT_ID:-}" ] || printf 'VARIANT_ID=%s\n' "$OS_VARIANT_ID"
		for k in VERSION_ID VERSION_CODENAME PLATFORM_ID; do
			v=$(base_value "$k")
			[ -z "$v" ] || printf '%s=%s\n' "$k" "$(q "$v")"
		done
		[ -z "${OS_HOME_URL:-}" ] || printf 'HOME_URL=%s\n' "$(q "$OS_HOME_URL")"
	} >"$tmp"
	install -m 0644 "$tmp" /usr/lib/os-release
	rm -f "$tmp"
	ln -sfn ../usr/lib/os-release /etc/os-release
	log "os-release: $(tr '\n' ' ' </usr/lib/os-release)"
}

require_live_module() {
	compgen -G '/usr/lib/dracut/modules.d/[0-9][0-9]dmsquash-live' >/dev/null ||
		die "the live ISO needs dracut's dmsquash-live module in the image: install dracut-live in the Containerfile"
}

regenerate_initramfs() {
	local kvers kver add=()
	kvers=$(find /usr/lib/modules -mindepth 2 -maxdepth 2 -name vmlinuz -printf '%h\n')
	[ "$(printf '%s' "$kvers" | grep -c .)" = 1 ] ||
		die "expected exactly one kernel (/usr/lib/modules/<kver>/vmlinuz), found: ${kvers:-none}"
	kver=${kvers##*/}
	if [ -x /usr/bin/ostree ]; then add=(--add ostree); fi
	log "initramfs for $kver ${add[*]}"
	# DRACUT_NO_XATTR: the build's storage may refuse extended attributes dracut would copy.
	DRACUT_NO_XATTR=1 dracut --force --no-hostonly --no-hostonly-cmdline --reproducible "${add[@]}" \
		--kver "$kver" "/usr/lib/modules/$kver/initramfs.img"
	chmod 0644 "/usr/lib/modules/$kver/initramfs.img"
	find /boot -mindepth 1 -delete
}

# Paths under /var that tmpfiles.d files other than $1 declare, one per line.
declared_var_paths() {
	local f files=()
	for f in /usr/lib/tmpfiles.d/*.conf /etc/tmpfiles.d/*.conf; do
		if [ -f "$f" ] && [ "$f" != "$1" ]; then files+=("$f"); fi
	done
	if [ ${#files[@]} -gt 0 ]; then awk '$1 !~ /^#/ && $2 ~ /^\/var(\/|$)/ { print $2 }' "${files[@]}" | sort -u; fi
}

clean_var() {
	local conf=/usr/lib/tmpfiles.d/${OS_ID}-var.conf declared p
	if command -v apt-get >/dev/null; then
		apt-get clean
		rm -rf /var/lib/apt/lists/*
	fi
	if command -v dnf >/dev/null; then dnf clean all >/dev/null; fi
	find /tmp /var/tmp -xdev -mindepth 1 -delete
	# Files under /var are per-machine state a package left behind (logs, caches, databases it
	# recreates): they go. Directories and links stay, declared below.
	find /var -xdev -mindepth 1 ! -type d ! -type l -delete
	declared=$(declared_var_paths "$conf")
	{
		echo "# Written by build_files/finalize.sh: what this image ships under /var, recreated on every boot."
		while IFS= read -r -d '' p; do
			if printf '%s\n' "$declared" | grep -qxF "$p"; then continue; fi
			if [ -L "$p" ]; then
				printf 'L %s - - - - %s\n' "$p" "$(readlink "$p")"
			else
				printf 'd %s %s %s %s -\n' "$p" "$(stat -c %a "$p")" "$(stat -c %u "$p")" "$(stat -c %g "$p")"
			fi
		done < <(find /var -xdev -mindepth 1 \( -type d -o -type l \) -print0 | LC_ALL=C sort -z)
	} >"$conf"
	chmod 0644 "$conf"
	log "/var: $(grep -vc '^#' "$conf" || true) entries declared in $conf"
}

write_os_release
require_live_module
regenerate_initramfs
clean_var
