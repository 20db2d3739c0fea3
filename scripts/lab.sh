#!/usr/bin/env bash
# The multi-node lab on this machine (crates/ferrokube-lab): a ferrokube
# server in the host's network namespace and NODES agents, each node in a
# network namespace of its own on a lab bridge, every node given the busybox
# image of scripts/build-images.sh.
#   scripts/lab.sh up [--nodes N] [--detach] [--server-arg=FLAG]... [--agent-arg=FLAG]...
#       builds ferrokube and the lab tool, brings a lab up and prints its
#       KUBECONFIG; Ctrl-C removes it (with --detach it stays until `down`).
#   scripts/lab.sh down
#       removes every lab on this machine (processes, containers, namespaces,
#       veths, the bridge, nftables tables, files).
# Needs root, iproute2, nftables, nsenter (util-linux), containerd, runc, the
# CNI plugins and kubectl (scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "lab.sh: run as root (network namespaces, nftables)" >&2; exit 1; }
cmd="${1:-}"
shift || true
case "$cmd" in
  up)
    cargo build -p ferrokube -p ferrokube-lab
    exec target/debug/ferrokube-lab up --ferrokube target/debug/ferrokube "$@"
    ;;
  down)
    if [ ! -x target/debug/ferrokube-lab ]; then cargo build -p ferrokube-lab; fi
    exec target/debug/ferrokube-lab down
    ;;
  *)
    echo "usage: scripts/lab.sh up [--nodes N] [--detach] [--server-arg=FLAG]... [--agent-arg=FLAG]... | down" >&2
    exit 2
    ;;
esac
