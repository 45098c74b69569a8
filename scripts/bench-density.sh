#!/bin/sh
# The scheduler density benchmark (issue 5): skiff server --disable-agent +
# skiff sim-nodes --count 100, Deployments totalling 3,000 pods created at a
# steady rate; prints a Markdown table for docs/benchmarks.md. Extra
# arguments are passed on (see scripts/bench_density.py --help), e.g.
# scripts/bench-density.sh --nodes 20 --deployments 6
set -eu
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/skiff-target}"
cargo build --release --locked --bin skiff >&2
exec python3 scripts/bench_density.py --binary "$CARGO_TARGET_DIR/release/skiff" "$@"
