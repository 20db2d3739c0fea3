#!/usr/bin/env bash
# Runs ferrokube's whole test suite (unit, conformance against the embedded
# store and a real etcd, end-to-end), installing what the tests need first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# A one-off build gains nothing from incremental state, which doubles the disk used.
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL=0; fi
exec cargo nextest run --workspace --all-features --no-fail-fast "$@"
