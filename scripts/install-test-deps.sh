#!/bin/sh
# Installs what skiff's tests and benchmarks need on a Debian-like machine:
# everything skiff itself needs (scripts/install-deps.sh) plus sqlite3,
# nsenter (the multi-node harness starts agents in network namespaces) and,
# for the registry-mirror test, docker-registry and skopeo; then
# checks for the stock kubectl the integration tests drive.
set -eu
"$(dirname "$0")/install-deps.sh" sqlite3:sqlite3 nsenter:util-linux docker-registry:docker-registry skopeo:skopeo

command -v kubectl >/dev/null 2>&1 || {
    echo "kubectl is not on PATH; the integration tests drive the stock kubectl (v1.32)" >&2
    exit 1
}
