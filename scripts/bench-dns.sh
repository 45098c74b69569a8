#!/bin/sh
# The cluster DNS benchmark (issue 7): a skiff server with its node (root,
# containerd, runc, CNI plugins), a busybox pod, and A queries for a Service
# name from the pod's network namespace to the cluster DNS at a bounded rate
# (scripts/bench_dns_client.py); prints the client's JSON line. Runs under
# the node e2e lock; all traffic stays on the machine.
#   scripts/bench-dns.sh [--rate QPS] [--seconds S] [--debug]
set -eu
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/skiff-target}"
profile=--release
while [ $# -gt 0 ]; do
    case "$1" in
        --rate) export SKIFF_BENCH_DNS_RATE="$2"; shift 2 ;;
        --seconds) export SKIFF_BENCH_DNS_SECONDS="$2"; shift 2 ;;
        --debug) profile=; shift ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
flock /tmp/skiff-node-e2e.lock \
    cargo test $profile --locked --test cluster_dns -- --ignored --nocapture dns_benchmark 2>&1 |
    grep '^BENCH ' | sed 's/^BENCH //'
