#!/usr/bin/env bash
# Brings up a one-node ferrokube cluster on the embedded datastore, installing
# what it needs first. Extra arguments go to `ferrokube server`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release -p ferrokube
exec target/release/ferrokube server "$@"
