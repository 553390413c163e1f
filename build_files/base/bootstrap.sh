#!/usr/bin/env bash
# Builds the base image of the example distro from Debian packages, with no container registry:
# mmdebstrap installs a minimal Debian (systemd, udev, a kernel, dracut, ostree, ...), the
# customize hook (customize.sh) lays it out like a bootc image, and the rootfs becomes a
# single-layer OCI image in containers-storage.
#
# Cached by its inputs: the image carries the label dev.keel.base.input-hash (sha256 over this
# directory, build_files/lib, the suite, mirror, architecture, package list and --cache-key);
# when the named image already has that hash, nothing is done. The Debian archive moves under
# a fixed input set, so CI passes a --cache-key (e.g. the ISO week) to refresh on a schedule.
#
# Usage (as root; the rootfs needs real ownership):
#   bootstrap.sh --image localhost/keel-os-base:trixie --suite trixie \
#     [--mirror http://deb.debian.org/debian] [--arch amd64] [--cache-key KEY] \
#     [--storage-driver overlay] [--force] [--print-hash] --package systemd --package udev ...
# The generated workflows and test/harness/example-image.ts pass the values of
# declarations/distro.yaml (base.image, base.bootstrap.*).
# Prints the image ID on stdout; progress goes to stderr.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/common.sh
. "$here/../lib/common.sh"

image='' suite='' mirror='http://deb.debian.org/debian' arch=amd64 cache_key='' driver='' force=0 print_hash=0
packages=()
while [ $# -gt 0 ]; do
	case $1 in
	--image) image=${2:?--image needs a value}; shift 2 ;;
	--suite) suite=${2:?--suite needs a value}; shift 2 ;;
	--mirror) mirror=${2:?--mirror needs a value}; shift 2 ;;
	--arch) arch=${2:?--arch needs a value}; shift 2 ;;
	--cache-key) cache_key=${2?--cache-key needs a value}; shift 2 ;;
	--storage-driver) driver=${2:?--storage-driver needs a value}; shift 2 ;;
	--package) packages+=("${2:?--package needs a value}"); shift 2 ;;
	--force) force=1; shift ;;
	--print-hash) print_hash=1; shift ;;
	*) die "unknown argument: $1 (see the usage at the top of $0)" ;;
	esac
done
[ -n "$image" ] || die "--image is required (declarations: base.image)"
[ -n "$suite" ] || die "--suite is required (declarations: base.bootstrap.suite)"
[ ${#packages[@]} -gt 0 ] || die "at least one --package is required (declarations: base.bootstrap.packages)"
[[ $suite =~ ^[a-z][a-z0-9-]*$ ]] || die "--suite '$suite' is not a Debian suite name"
[[ $arch =~ ^[a-z0-9]+$ ]] || die "--arch '$arch' is not a Debian architecture"
for p in "${packages[@]}"; do
	[[ $p =~ ^[a-z0-9][a-z0-9+.-]*$ ]] || die "--package '$p' is not a Debian package name"
done
mapfile -t packages < <(printf '%s\n' "${packages[@]}" | sort -u)

buildah_() { if [ -n "$driver" ]; then buildah --storage-driver "$driver" "$@"; else buildah "$@"; fi; }

# The input hash: every file that shapes the rootfs, by path relative to build_files, plus the
# bootstrap parameters.
input_hash() {
	(
		cd "$here/.."
		find base lib -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
		printf 'suite=%s\nmirror=%s\narch=%s\ncache-key=%s\n' "$suite" "$mirror" "$arch" "$cache_key"
		printf 'package=%s\n' "${packages[@]}"
	) | sha256sum | cut -c1-64
}
hash=$(input_hash)
if [ "$print_hash" = 1 ]; then
	printf '%s\n' "$hash"
	exit 0
fi

label_of() { buildah_ inspect --type image --format "{{index .OCIv1.Config.Labels \"$2\"}}" "$1" 2>/dev/null; }
# (|| true: a missing image is the normal cold-cache case; it means "build it", not an error)
if [ "$force" = 0 ] && [ "$(label_of "$image" dev.keel.base.input-hash || true)" = "$hash" ]; then
	log "$image is up to date (input hash $hash)"
	buildah_ inspect --type image --format '{{.FromImageID}}' "$image"
	exit 0
fi

[ "$(id -u)" = 0 ] || die "the base bootstrap runs as root (mmdebstrap needs real ownership in the rootfs); use sudo"
for t in mmdebstrap buildah tar; do command -v "$t" >/dev/null || die "missing tool: $t"; done

work=$(mktemp -d "${TMPDIR:-/var/tmp}/keel-base.XXXXXX")
ctr=''
cleanup() {
	if [ -n "$ctr" ]; then buildah_ rm "$ctr" >/dev/null 2>&1 || log "could not remove working container $ctr"; fi
	rm -rf "$work"
}
trap cleanup EXIT

t0=$(date +%s)
log "mmdebstrap $suite ($arch) from $mirror: ${packages[*]}"
# Documentation and translations are not needed in an image (copyright files are kept).
mmdebstrap --variant=minbase --mode=root --architectures="$arch" --components=main \
	--include="$(
		IFS=,
		echo "${packages[*]}"
	)" \
	--dpkgopt='path-exclude=/usr/share/man/*' \
	--dpkgopt='path-exclude=/usr/share/locale/*' \
	--dpkgopt='path-include=/usr/share/locale/locale.alias' \
	--dpkgopt='path-exclude=/usr/share/doc/*' \
	--dpkgopt='path-include=/usr/share/doc/*/copyright' \
	--customize-hook="\"$here/customize.sh\" \"\$1\"" \
	"$suite" "$work/rootfs" "$mirror" >&2
t1=$(date +%s)

kver=$(single_kernel "$work/rootfs")
# The rootfs becomes one layer: device nodes are the runtime's business, not the image's.
find "$work/rootfs/dev" -mindepth 1 -delete
tar --create --file "$work/rootfs.tar" --directory "$work/rootfs" --numeric-owner \
	--xattrs --xattrs-include='*' --acls --sort=name .
rm -rf "$work/rootfs"

created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ctr=$(buildah_ from scratch)
buildah_ add "$ctr" "$work/rootfs.tar" / >&2
buildah_ config \
	--cmd /sbin/init \
	--label containers.bootc=1 \
	--label ostree.bootable=true \
	--label "ostree.linux=$kver" \
	--label "dev.keel.base.input-hash=$hash" \
	--label "dev.keel.base.suite=$suite" \
	--label "org.opencontainers.image.created=$created" \
	--label "org.opencontainers.image.title=Debian $suite bootc base" \
	--label "org.opencontainers.image.description=Minimal Debian $suite laid out as a bootc image, built by Keel's base bootstrap from $mirror" \
	--label "org.opencontainers.image.licenses=various (Debian packages; see /usr/share/doc/*/copyright)" \
	"$ctr"
buildah_ commit --rm --quiet "$ctr" "$image" >&2
ctr=''
id=$(buildah_ inspect --type image --format '{{.FromImageID}}' "$image")
log "built $image ($id), kernel $kver: mmdebstrap $((t1 - t0)) s, total $(($(date +%s) - t0)) s"
printf '%s\n' "$id"
