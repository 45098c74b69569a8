#!/usr/bin/env bash
# Benchmarks skiff's SQLite store side by side with etcd 3.4 on this machine:
# builds the release bench program (scripts/bench-store/), starts a throwaway
# etcd on 127.0.0.1 with free ports and a temporary data dir on the same disk
# as the SQLite files, runs both, prints a markdown table and the machine, and
# stops and removes everything at the end, also on failure or Ctrl-C.
#
# Usage: scripts/bench-store.sh [--quick]
# Needs: etcd and etcdctl (Debian: etcd-server, etcd-client), protoc.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
args=()
if [[ "${1:-}" == "--quick" ]]; then args+=(--quick); fi

work=$(mktemp -d /var/tmp/skiff-bench-store.XXXXXX)
etcd_pid=""
cleanup() {
    if [[ -n "$etcd_pid" ]]; then
        kill "$etcd_pid" 2>/dev/null || true
        wait "$etcd_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

cargo build --quiet --release --manifest-path "$root/scripts/bench-store/Cargo.toml"

client=$(free_port)
peer=$(free_port)
etcd --name bench --data-dir "$work/etcd" \
    --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "bench=http://127.0.0.1:$peer" --log-level error >"$work/etcd.log" 2>&1 &
etcd_pid=$!
for _ in $(seq 50); do
    if ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$client" endpoint health >/dev/null 2>&1; then break; fi
    sleep 0.2
done
ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$client" endpoint health >/dev/null 2>&1 || { cat "$work/etcd.log"; exit 1; }

echo "## Machine"
echo
echo "- cpus: $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "- kernel: $(uname -r)"
echo "- disk: $(df -h "$work" | awk 'NR==2 {print $1 " (" $2 ")"}'), $(findmnt -no FSTYPE -T "$work" 2>/dev/null || echo '?')"
echo "- etcd: $(etcd --version | head -1)"
echo "- command: scripts/bench-store.sh ${args[*]:-}"
echo
"$CARGO_TARGET_DIR/release/skiff-bench-store" --dir "$work" \
    --etcd "http://127.0.0.1:$client" --etcd-pid "$etcd_pid" "${args[@]}"
