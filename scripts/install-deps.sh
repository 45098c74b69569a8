#!/bin/sh
# Installs what building and running skiff needs on a Debian-like machine,
# skipping whatever is already present. Safe to run repeatedly.
#   build: protoc (the CRI client's code generation)
#   node:  containerd (with ctr), runc, the CNI plugins, iptables, conntrack,
#          iproute2
#   images (scripts/build-images.sh): gcc, libc6-dev, busybox-static
# Extra packages to consider can be passed as "COMMAND:PACKAGE" arguments.
set -eu

need=""
want() { # want COMMAND PACKAGE
    command -v "$1" >/dev/null 2>&1 || need="$need $2"
}

want protoc protobuf-compiler
want ip iproute2
want containerd containerd
want ctr containerd
want runc runc
[ -x /usr/lib/cni/bridge ] || [ -x /opt/cni/bin/bridge ] || need="$need containernetworking-plugins"
want iptables iptables
want conntrack conntrack
want gcc "gcc libc6-dev"
[ -e /usr/include/stdio.h ] || need="$need libc6-dev"
busybox --list 2>/dev/null | grep -qx httpd && ldd /bin/busybox 2>&1 | grep -q 'not a dynamic' || need="$need busybox-static"
for extra in "$@"; do
    want "${extra%%:*}" "${extra#*:}"
done

[ -n "$need" ] || exit 0
if ! command -v apt-get >/dev/null 2>&1; then
    echo "missing:$need; install them with your package manager" >&2
    exit 1
fi
if [ "$(id -u)" != 0 ]; then
    echo "missing:$need; run as root to install them (apt-get install$need)" >&2
    exit 1
fi
echo "installing:$need"
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
apt-get install -y --no-install-recommends $need >/dev/null ||
    { apt-get update >/dev/null && apt-get install -y --no-install-recommends $need >/dev/null; }
