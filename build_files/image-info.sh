#!/usr/bin/env bash
# The image's build stamp, read on the booted machine (e.g. by the staleness check, which must
# compare against the image's own creation label and not against whatever timestamp a
# rechunker later puts in the config). Its own small RUN after the staged build, so that a new
# creation time only rebuilds this one-file layer, never the stages before it.
#
# Build-args (the build action passes them from the labels it computes and the declarations):
#   IMAGE_CREATED         org.opencontainers.image.created (RFC 3339 UTC), required
#   IMAGE_VERSION         org.opencontainers.image.version
#   IMAGE_REVISION        org.opencontainers.image.revision
#   IMAGE_SOURCE          org.opencontainers.image.source
#   STALENESS_WARN_DAYS   declarations staleness.warn-after-days, required
set -euo pipefail
ctx=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/common.sh
. "$ctx/lib/common.sh"

[[ ${IMAGE_CREATED:-} =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$ ]] ||
	die "build-arg IMAGE_CREATED '${IMAGE_CREATED:-}' is not an RFC 3339 UTC time (YYYY-MM-DDTHH:MM:SSZ)"
date -u -d "$IMAGE_CREATED" +%s >/dev/null || die "IMAGE_CREATED '$IMAGE_CREATED' is not a real time"
[[ ${STALENESS_WARN_DAYS:-} =~ ^[1-9][0-9]*$ ]] || die "build-arg STALENESS_WARN_DAYS '${STALENESS_WARN_DAYS:-}' is not a positive integer"
for v in IMAGE_VERSION IMAGE_REVISION IMAGE_SOURCE; do
	[[ ${!v:-} =~ ^[A-Za-z0-9._:/@+~-]*$ ]] || die "build-arg $v '${!v}' has characters outside [A-Za-z0-9._:/@+~-]"
done

install -d -m 0755 /usr/lib/keel
{
	echo '# Written at image build time (build_files/image-info.sh). Shell-compatible KEY=value.'
	printf 'IMAGE_CREATED=%s\n' "$IMAGE_CREATED"
	printf 'IMAGE_VERSION=%s\n' "${IMAGE_VERSION:-}"
	printf 'IMAGE_REVISION=%s\n' "${IMAGE_REVISION:-}"
	printf 'IMAGE_SOURCE=%s\n' "${IMAGE_SOURCE:-}"
	printf 'STALENESS_WARN_DAYS=%s\n' "$STALENESS_WARN_DAYS"
} >/usr/lib/keel/image-info.env
chmod 0644 /usr/lib/keel/image-info.env
log "image info: $(grep -v '^#' /usr/lib/keel/image-info.env | tr '\n' ' ')"
