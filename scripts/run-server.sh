#!/bin/sh
# Builds skiff (release) and runs `skiff server`, passing on any flags:
#   sudo scripts/run-server.sh
#   scripts/run-server.sh --data-dir ~/.skiff --write-kubeconfig ~/.kube/skiff.yaml
# First installs what building and running it needs (scripts/install-deps.sh;
# as root, with apt-get) and, unless they are there already, puts skiff's
# pause and busybox images into <data-dir>/agent/images/ for the node.
set -eu
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"

scripts/install-deps.sh

data_dir="${SKIFF_DATA_DIR:-/var/lib/skiff}"
prev=""
for arg in "$@"; do
    case "$arg" in
    --data-dir=*) data_dir="${arg#--data-dir=}" ;;
    *) [ "$prev" = "--data-dir" ] && data_dir="$arg" ;;
    esac
    prev="$arg"
done
images="$data_dir/agent/images"
if [ ! -e "$images/pause.tar" ]; then
    mkdir -p "$images"
    scripts/build-images.sh "$images"
fi

cargo build --release --locked
exec "$CARGO_TARGET_DIR/release/skiff" server "$@"
