#!/bin/sh
# Installs what skiff's tests and benchmarks need on a Debian-like machine,
# skipping whatever is already present. Safe to run repeatedly.
set -eu

need=""
want() { # want COMMAND PACKAGE
    command -v "$1" >/dev/null 2>&1 || need="$need $2"
}

want protoc protobuf-compiler
want sqlite3 sqlite3
want ip iproute2
# the node tests: real containerd, runc, CNI plugins and iptables, and the
# tools scripts/build-images.sh builds the pause and busybox images with
want containerd containerd
want ctr containerd
want runc runc
[ -x /usr/lib/cni/bridge ] || [ -x /opt/cni/bin/bridge ] || need="$need containernetworking-plugins"
want iptables iptables
want conntrack conntrack
want gcc "gcc libc6-dev"
[ -e /usr/include/stdio.h ] || need="$need libc6-dev"
busybox --list 2>/dev/null | grep -qx httpd && ldd /bin/busybox 2>&1 | grep -q 'not a dynamic' || need="$need busybox-static"

if [ -n "$need" ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "missing:$need; install them with your package manager" >&2
        exit 1
    fi
    echo "installing:$need"
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086
    apt-get install -y --no-install-recommends $need >/dev/null ||
        { apt-get update >/dev/null && apt-get install -y --no-install-recommends $need >/dev/null; }
fi

command -v kubectl >/dev/null 2>&1 || {
    echo "kubectl is not on PATH; the integration tests drive the stock kubectl (v1.32)" >&2
    exit 1
}
