#!/usr/bin/env bash
# The staged image build: runs every numbered stage (build_files/NN-*/run.sh) in order, each in
# its own bash with `set -euo pipefail`, from the single RUN of the Containerfile that binds
# build_files at /ctx. One concern per stage:
#   10-os-identity   /usr/lib/os-release from the declarations (build-args OS_*)
#   20-system-files  build_files/system_files/usr/** into /usr (nothing under /etc)
#   30-kernel        one kernel at /usr/lib/modules/<kver>/, generic initramfs with persisted policy
#   90-cleanup       no package caches, apt lists, third-party repositories or /var leftovers
set -euo pipefail
ctx=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/common.sh
. "$ctx/lib/common.sh"

stages=("$ctx"/[0-9][0-9]-*/run.sh)
[ -e "${stages[0]}" ] || die "no stages under $ctx"
for stage in "${stages[@]}"; do
	name=${stage#"$ctx"/}
	name=${name%/run.sh}
	log "stage $name"
	t0=$(date +%s)
	CTX=$ctx bash "$stage"
	log "stage $name done in $(($(date +%s) - t0)) s"
done
