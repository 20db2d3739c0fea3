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
# protoc's well-known types (google/protobuf/*.proto), which etcd-client's build imports.
[ -f /usr/include/google/protobuf/descriptor.proto ] || need+=(libprotobuf-dev)
have_cmd curl || need+=(curl)
# The node agent: containerd (with ctr) and runc, the CNI plugins, the busybox
# image's binary, a loopback registry and skopeo for pull tests, nftables, and
# what the kubelet crate's build.rs compiles the pause program with (gcc, a static libc).
have_cmd containerd || need+=(containerd)
have_cmd runc || need+=(runc)
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
[ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 || need+=(busybox-static)
have_cmd skopeo || need+=(skopeo)
have_cmd docker-registry || need+=(docker-registry)
have_cmd nft || need+=(nftables)
have_cmd iptables || need+=(iptables)
have_cmd ip || need+=(iproute2)
have_cmd gcc || need+=(gcc)
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || [ -f /usr/lib/aarch64-linux-gnu/libc.a ] || need+=(libc6-dev)
# The IANA time zones a CronJob's timeZone names (read from the system's zoneinfo).
[ -f /usr/share/zoneinfo/America/New_York ] || need+=(tzdata)
# The dashboard's browser tests and benchmark drive a headless Chromium over the
# DevTools protocol; a font so its screenshots show text.
have_cmd chromium || need+=(chromium)
# The unit tests of the dashboard's modules run under node's test runner.
have_cmd node || need+=(nodejs)
[ -d /usr/share/fonts/truetype/dejavu ] || need+=(fonts-dejavu-core)

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

# The house rules need the formatter and the linter of the toolchain.
if command -v rustup >/dev/null 2>&1 && ! { cargo fmt --version && cargo clippy --version; } >/dev/null 2>&1; then
  echo "install-deps: rustup component add rustfmt clippy"
  rustup component add rustfmt clippy
fi
