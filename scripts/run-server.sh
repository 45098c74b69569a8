#!/bin/sh
# Builds skiff (release) and runs `skiff server`, passing on any flags:
#   sudo scripts/run-server.sh
#   scripts/run-server.sh --data-dir ~/.skiff --write-kubeconfig ~/.kube/skiff.yaml
set -eu
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
cargo build --release --locked
exec "$CARGO_TARGET_DIR/release/skiff" server "$@"
