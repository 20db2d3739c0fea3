#!/usr/bin/env bash
# Installs what ferrokube's cluster and tests need on a fresh Debian machine of
# this kind: Debian packages by name (run as root) and cargo-nextest.
# Idempotent: installs only what is missing.
set -euo pipefail

need=()
have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_cmd etcd || need+=(etcd-server)
have_cmd etcdctl || need+=(etcd-client)
have_cmd protoc || need+=(protobuf-compiler)
have_cmd curl || need+=(curl)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing ${need[*]}; run as root (apt-get install ${need[*]})" >&2
    exit 1
  fi
  echo "install-deps: apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The official Kubernetes Python client, for the client compatibility test.
if ! python3 -c "import kubernetes" >/dev/null 2>&1; then
  echo "install-deps: pip install kubernetes"
  python3 -m pip install --quiet --disable-pip-version-check kubernetes
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  echo "install-deps: cargo install cargo-nextest"
  cargo install --locked cargo-nextest
fi
