#!/usr/bin/env bash
# Installs what Keel's local pipeline and test suite use on a Debian 12 machine (idempotent,
# quiet): the container tools, a real registry, QEMU/OVMF/swtpm, mmdebstrap, ISO and disk
# tools, ostree (update-test installs releases into ostree sysroots), the real `ia` client; then
# the npm dependencies (npm ci).
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(
  buildah podman skopeo docker-registry apache2-utils uidmap fuse-overlayfs
  qemu-system-x86 qemu-utils ovmf swtpm swtpm-tools
  mmdebstrap xorriso squashfs-tools erofs-utils mtools dosfstools fdisk e2fsprogs cpio zstd xz-utils kmod file attr libcap2-bin
  ostree
  grub-efi-amd64-bin grub-pc-bin grub-common systemd-boot-efi
  internetarchive umoci openssl git ca-certificates curl rpm
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: apt-get install ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >/dev/null
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
