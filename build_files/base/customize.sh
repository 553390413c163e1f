#!/usr/bin/env bash
# mmdebstrap customize hook of the base bootstrap: turns the freshly installed Debian rootfs
# at $1 into a bootc-shaped tree. Runs on the build host (root); touches only $1.
#
# Generic for any Debian-based bootc image, nothing distro-specific (that belongs to the staged
# build in build_files/[0-9][0-9]-*/):
#   - kernel at /usr/lib/modules/<kver>/vmlinuz with a generic initramfs.img beside it, /boot empty
#   - dracut policy persisted under /usr/lib/dracut/dracut.conf.d (later regenerations inherit it)
#   - dpkg database under /usr/lib/sysimage/dpkg, /var holding only tmpfiles.d-declared entries
#   - the ostree/bootc root layout: /sysroot, /ostree -> sysroot/ostree, home-like directories
#     as links into /var, /usr/lib/ostree/prepare-root.conf
#   - no host identity leaks (hostname, machine-id), /etc/os-release a link to /usr/lib/os-release
set -euo pipefail
root=${1:?usage: customize.sh ROOTFS}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/common.sh
. "$here/../lib/common.sh"

[ -d "$root/usr" ] || die "$root does not look like a root filesystem"

log "kernel layout"
relocate_kernel "$root"
kver=$(single_kernel "$root")
# Debian's kernel hooks would recreate /vmlinuz and /initrd.img links on a kernel install in a
# derived build; a bootc image has no use for them.
printf '%s\n' '# bootc layout: the kernel lives in /usr/lib/modules/<kver>/, no links in /' \
	'do_symlinks = no' >"$root/etc/kernel-img.conf"

log "dracut policy"
mkdir -p "$root/usr/lib/dracut/dracut.conf.d"
cat >"$root/usr/lib/dracut/dracut.conf.d/10-bootc-generic.conf" <<'EOF'
# Container-built images are generic: the build container is not the machine that boots.
# Persisted here so every later regeneration (a derived build, a user's initramfs rebuild)
# inherits it instead of falling back to a host-only image of the wrong host.
hostonly="no"
hostonly_cmdline="no"
compress="zstd"
EOF
generate_initramfs "$root" "$kver"

log "bootc root layout"
mkdir -p "$root/sysroot"
ln -sfn sysroot/ostree "$root/ostree"
mkdir -p "$root/usr/lib/ostree"
cat >"$root/usr/lib/ostree/prepare-root.conf" <<'EOF'
# Debian's ostree (2025.2) is built without composefs support, so composefs stays off;
# the deployment root is still mounted read-only by ostree-prepare-root.
[composefs]
enabled = no
[sysroot]
readonly = true
EOF
# Writable locations of an ostree system live in /var; the image carries links to them and
# tmpfiles.d creates their targets on every boot (and the empty targets ship so that the links
# resolve inside derived builds too).
tmpf="$root/usr/lib/tmpfiles.d/bootc-base-dirs.conf"
printf '%s\n' '# bootc root layout: these top-level locations are links into /var.' >"$tmpf"
for pair in home:var/home root:var/roothome opt:var/opt srv:var/srv mnt:var/mnt usr/local:var/usrlocal; do
	src=${pair%%:*}
	dst=${pair#*:}
	mode=0755
	[ "$src" = root ] && mode=0700
	if [ -d "$root/$src" ] && [ ! -L "$root/$src" ]; then
		# /usr/local holds Debian's empty skeleton directories (bin, lib, share, ...): keep them.
		# The others hold nothing or only /root's dotfile skeleton, which is per-machine state.
		if [ "$src" = usr/local ]; then
			mkdir -p "$root/$dst"
			cp -a "$root/$src/." "$root/$dst/"
		fi
		rm -rf "${root:?}/$src"
	fi
	mkdir -p "$root/$dst"
	chmod "$mode" "$root/$dst"
	# usr/local is one level deeper, so its link climbs one more level.
	if [ "$src" = usr/local ]; then ln -sfn "../$dst" "$root/$src"; else ln -sfn "$dst" "$root/$src"; fi
	printf 'd /%s %s root root -\n' "$dst" "$mode" >>"$tmpf"
done
# /run is a tmpfs at runtime: whatever the package scripts left there is noise in a layer.
find "$root/run" -mindepth 1 -delete

log "identity of the build host removed"
printf 'localhost\n' >"$root/etc/hostname"
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
[ -L "$root/etc/os-release" ] || ln -sfn ../usr/lib/os-release "$root/etc/os-release"

log "/var policy"
tidy_var "$root"
