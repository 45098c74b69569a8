#!/bin/sh
# The one command that runs all of skiff's tests: installs what they need,
# then lints and runs the unit, integration and end-to-end tests.
set -eu
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/skiff-target}"

scripts/install-test-deps.sh
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked -- --test-threads="${SKIFF_TEST_THREADS:-2}"
