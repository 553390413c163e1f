#!/usr/bin/env bash
# One command on a fresh Debian 12 machine: set up, then run the whole local pipeline of the
# example distro (npm run demo). Needs root: builds use buildah and mmdebstrap, boots use QEMU.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then exec sudo -E "$0" "$@"; fi
bash scripts/setup.sh
exec npm run --silent demo -- "$@"
