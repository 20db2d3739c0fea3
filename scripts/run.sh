#!/usr/bin/env bash
# Brings up a one-node ferrokube cluster on the embedded datastore, installing
# what it needs first: the control plane, and a node (containerd supervised by
# the agent, the service proxy, the cluster DNS). Extra arguments go to
# `ferrokube server` (for example --data-dir DIR; the admin kubeconfig is
# written to DATA_DIR/kubeconfig.yaml).
#
# No public registry is reachable here, so a busybox image for pods is built by
# scripts/build-images.sh and dropped where the agent imports it at start
# (DATA_DIR/agent/images); the node's sandbox image comes with the agent. More
# images: `ferrokube image import --data-dir DIR FILE.tar`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

data_dir=/var/lib/ferrokube
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[$i]}" in
    --data-dir) data_dir="${args[$((i + 1))]:-$data_dir}" ;;
    --data-dir=*) data_dir="${args[$i]#--data-dir=}" ;;
  esac
done
if [ ! -f "$data_dir/agent/images/busybox.tar" ]; then
  scripts/build-images.sh "$data_dir/agent/images"
fi
exec cargo run --release -p ferrokube -- server "$@"
