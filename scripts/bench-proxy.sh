#!/bin/sh
# Benchmarks the service proxy: programming latency (EndpointSlice change to
# rules applied) p50/p99 with 1,000 services, and the time of a full sync of
# 1,000 services x 10 endpoints. Everything runs inside a throwaway network
# namespace (server, `skiff proxy`, clients), so the host's iptables are never
# touched and no traffic leaves it. Root only. Extra arguments go to
# scripts/bench_proxy.py (see --help), e.g. scripts/bench-proxy.sh --services 500
set -eu
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/skiff-target}"
cargo build --release --locked --bin skiff >&2
NS="skiff-bench-proxy-$$"
ip netns add "$NS"
trap 'ip netns delete "$NS"' EXIT INT TERM
ip netns exec "$NS" ip link set lo up
ip netns exec "$NS" python3 scripts/bench_proxy.py --binary "$CARGO_TARGET_DIR/release/skiff" "$@"
