#!/usr/bin/env bash
# Brings up a one-node ferrokube cluster on the embedded datastore, installing
# what it needs first. Extra arguments go to `ferrokube server` (for example
# --data-dir DIR; the admin kubeconfig is written to DATA_DIR/kubeconfig.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
exec cargo run --release -p ferrokube -- server "$@"
