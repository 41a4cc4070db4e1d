#!/bin/sh
# Makes a local Debian bookworm base image, for CI machines that reach Debian's mirror but
# no image registry: the base of Confab's image and of the CI images beside this file.
# Usage: base-image.sh [NAME] (default localhost/debian:bookworm). Needs root and
# debootstrap; takes 30-60 s and about 120 MB. Does nothing if the image exists.
set -eu
name=${1:-localhost/debian:bookworm}
if podman image exists "$name"; then
    exit 0
fi
# The mirror this machine's apt uses, so that builds on the image reach it too.
mirror=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
mirror=${mirror:-http://deb.debian.org/debian}
rootfs=$(mktemp -d "${TMPDIR:-/tmp}/confab-rootfs.XXXXXX")
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
    cat "$rootfs.log" >&2
    rm -f "$rootfs.log"
    exit 1
}
rm -f "$rootfs.log"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | podman import --quiet - "$name" >/dev/null
