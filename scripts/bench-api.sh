#!/bin/sh
# Benchmarks the API server: start to /readyz on a warm data dir, idle RSS,
# and create/get/list latency at a steady create rate. Results go to stdout
# as a Markdown table for docs/benchmarks.md. Extra arguments are passed on
# (see scripts/bench_api.py --help), e.g. scripts/bench-api.sh --rate 100 --seconds 30
set -eu
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/skiff-target}"
cargo build --release --locked --bin skiff >&2
exec python3 scripts/bench_api.py --binary "$CARGO_TARGET_DIR/release/skiff" "$@"
