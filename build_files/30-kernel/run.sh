#!/usr/bin/env bash
# Kernel and initramfs, the bootc way:
#   - exactly one /usr/lib/modules/<kver>/ holding vmlinuz (a kernel installed under /boot by a
#     Debian package is moved there; /boot ends up empty)
#   - initramfs.img beside it, generic (no host-only: the build container is not the machine
#     that boots), with the ostree module when the image ships ostree
#   - the policy persisted in /usr/lib/dracut/dracut.conf.d/ so any later regeneration
#     (a derived build, a user rebuilding the initramfs) inherits it
# Regenerated here, after the identity and system-files stages, so the initramfs carries the
# final os-release (dracut copies it as initrd-release) and any dracut configuration they ship.
set -euo pipefail
# shellcheck source=../lib/common.sh
. "$CTX/lib/common.sh"

relocate_kernel /
kver=$(single_kernel /)
log "kernel $kver"

conf=/usr/lib/dracut/dracut.conf.d/50-${OS_ID:?OS_ID is required (declarations os.id)}.conf
{
	echo '# Written by the kernel stage of the image build (build_files/30-kernel).'
	echo '# Image initramfs images are generic: the build container is not the machine that boots.'
	echo 'hostonly="no"'
	echo 'hostonly_cmdline="no"'
	if [ -x /usr/bin/ostree ]; then
		echo '# ostree deployments need ostree-prepare-root in the initramfs; dracut never adds it alone.'
		echo 'add_dracutmodules+=" ostree "'
	fi
} >"$conf"
chmod 0644 "$conf"

generate_initramfs / "$kver"
find /boot -mindepth 1 -delete
