#!/usr/bin/env bash
# Runs ferrokube's whole test suite (unit, conformance against the embedded
# store and a real etcd, end-to-end), installing what the tests need first.
# The house rules come first: formatting and the workspace lints (Cargo.toml's
# [workspace.lints], clippy.toml) fail the run before any test does.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# A one-off build gains nothing from incremental state, which doubles the disk used.
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL=0; fi
time_step() { local t=$SECONDS; "$@"; echo "== $1 ${2:-}: $((SECONDS - t)) s" >&2; }
time_step cargo fmt --all --check
time_step cargo clippy --workspace --all-targets --all-features -- -D warnings
time_step scripts/check-boundaries.sh
# The dashboard's browser code: the pure parts of its modules under node's test runner.
time_step node --test crates/ferrokube-dashboard/tests/js/
exec cargo nextest run --workspace --all-features --no-fail-fast "$@"
