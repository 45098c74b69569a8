#!/bin/sh
# Builds skiff's container images with no registry and no network:
#   pause.tar    docker.io/skiff/pause:3.10     (scripts/images/pause.c, static)
#   busybox.tar  docker.io/skiff/busybox:1.35.0 (Debian's busybox-static)
# as docker-archive tarballs that containerd imports (skiff imports every
# tarball in <data-dir>/agent/images/ at agent start).
#
# Usage: scripts/build-images.sh OUTDIR
# The output is reproducible: the same inputs give byte-identical tarballs.
set -eu

out="${1:?usage: $0 OUTDIR}"
here="$(cd "$(dirname "$0")" && pwd)"

command -v gcc >/dev/null 2>&1 || { echo "gcc is needed to build the pause image: apt-get install gcc libc6-dev" >&2; exit 1; }
busybox_bin=/bin/busybox
[ -x "$busybox_bin" ] && "$busybox_bin" --list >/dev/null 2>&1 && ldd "$busybox_bin" 2>&1 | grep -q 'not a dynamic' ||
    { echo "a static busybox is needed for the busybox image: apt-get install busybox-static" >&2; exit 1; }

mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT INT TERM

arch="$(dpkg --print-architecture 2>/dev/null || uname -m)"
case "$arch" in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; esac

# deterministic tar of a directory's contents
det_tar() { # DIR OUTPUT
    tar --sort=name --mtime='@0' --owner=0 --group=0 --numeric-owner \
        --format=posix --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
        -C "$1" -cf "$2" .
}

# make_image NAME TAG ROOTFS CONFIG_FRAGMENT OUTPUT
make_image() {
    name="$1"; tag="$2"; rootfs="$3"; fragment="$4"; output="$5"
    img="$work/img-$name"
    mkdir -p "$img"
    det_tar "$rootfs" "$img/layer.tar"
    diff_id="$(sha256sum "$img/layer.tar" | cut -d' ' -f1)"
    mkdir -p "$img/$diff_id"
    mv "$img/layer.tar" "$img/$diff_id/layer.tar"
    printf '{"architecture":"%s","os":"linux","created":"1970-01-01T00:00:00Z","config":%s,"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"skiff scripts/build-images.sh"}]}' \
        "$arch" "$fragment" "$diff_id" >"$img/config.json"
    config_id="$(sha256sum "$img/config.json" | cut -d' ' -f1)"
    mv "$img/config.json" "$img/$config_id.json"
    printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' \
        "$config_id" "$tag" "$diff_id" >"$img/manifest.json"
    det_tar "$img" "$output.tmp"
    mv "$output.tmp" "$output"
    echo "$output: $tag"
}

# pause
mkdir -p "$work/pause/bin"
gcc -static -Os -s -o "$work/pause/bin/pause" "$here/images/pause.c"
make_image pause docker.io/skiff/pause:3.10 "$work/pause" \
    '{"Entrypoint":["/bin/pause"],"User":"65535:65535"}' "$out/pause.tar"

# busybox: one static binary plus its applet links, /etc basics, /tmp
bb="$work/busybox"
mkdir -p "$bb/bin" "$bb/etc" "$bb/tmp" "$bb/root" "$bb/var/www"
chmod 1777 "$bb/tmp"
cp "$busybox_bin" "$bb/bin/busybox"
for applet in $("$busybox_bin" --list); do
    [ "$applet" = busybox ] || ln -s busybox "$bb/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$bb/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' >"$bb/etc/group"
make_image busybox docker.io/skiff/busybox:1.35.0 "$bb" \
    '{"Cmd":["sh"],"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}' "$out/busybox.tar"
