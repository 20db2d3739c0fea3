#!/usr/bin/env bash
# Runs ferrokube's whole test suite (unit, conformance against the embedded
# store and a real etcd, end-to-end), installing what the tests need first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
exec cargo nextest run --workspace --all-features --no-fail-fast "$@"
