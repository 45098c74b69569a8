#!/usr/bin/env bash
# Memory and latency of OpenAPI on a release `skiff server --disable-agent`:
# RSS idle, after `kubectl explain` (v3), after a validated create, after a
# v2 (protobuf) explain, and idle again; the time of each kubectl command
# (first = documents built, second = served from the server's cache and
# kubectl's disk cache). Everything runs on 127.0.0.1 in a temporary
# directory that is removed at the end.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
cargo build --release --manifest-path "$root/Cargo.toml" >&2
bin=$target/release/skiff

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin" server --disable-agent --bind-address=127.0.0.1 --https-listen-port="$port" \
    --data-dir "$work/data" --write-kubeconfig "$work/kubeconfig" >"$work/server.log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

for _ in $(seq 100); do [ -s "$work/kubeconfig" ] && break; sleep 0.1; done
export KUBECONFIG=$work/kubeconfig
export KUBECACHEDIR=$work/kube-cache
until kubectl get --raw /readyz >/dev/null 2>&1; do sleep 0.1; done

rss() { awk '/VmRSS/ { printf "%.1f MiB", $2 / 1024 }' "/proc/$pid/status"; }
timed() {
    local start end
    start=$(date +%s.%N)
    kubectl "$@" >/dev/null 2>&1 || true
    end=$(date +%s.%N)
    python3 -c "print(f'{($end - $start) * 1000:.0f} ms')"
}

cat >"$work/deploy.yaml" <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: c, image: nginx}]
EOF

sleep 10
echo "| step | kubectl time | server RSS after |"
echo "|---|---:|---:|"
echo "| idle 10 s after start | – | $(rss) |"
t=$(timed explain deployment.spec.template); echo "| \`kubectl explain deployment.spec.template\` (first) | $t | $(rss) |"
t=$(timed explain deployment.spec.template); echo "| same again (cached) | $t | $(rss) |"
t=$(timed explain pods --recursive); echo "| \`kubectl explain pods --recursive\` (core/v1 document) | $t | $(rss) |"
t=$(timed create -f "$work/deploy.yaml"); echo "| \`kubectl create -f deploy.yaml\` (Strict validation) | $t | $(rss) |"
t=$(timed explain --output=plaintext-openapiv2 pods); echo "| \`kubectl explain --output=plaintext-openapiv2 pods\` (v2 protobuf) | $t | $(rss) |"
sleep 10
echo "| idle 10 s later | – | $(rss) |"
