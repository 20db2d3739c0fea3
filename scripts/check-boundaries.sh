#!/usr/bin/env bash
# The crate boundaries of ARCHITECTURE.md's "rules of the house", checked:
# every dependency between workspace crates must be one this table allows.
# Dev-dependencies (tests) may use any crate. A new edge is a design decision:
# add it here and to ARCHITECTURE.md together, saying why.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo metadata --format-version 1 --no-deps | python3 -c '
import json, sys

# crate -> the workspace crates it may depend on (normal and build deps).
ALLOWED = {
    # Leaves: the API types and their schemas; the store; cluster trust.
    "ferrokube-api": set(),
    "ferrokube-openapi": set(),
    "ferrokube-store": set(),
    "ferrokube-pki": set(),
    "ferrokube-nft": set(),
    # What the OpenAPI schema of a CRD does to an object (and CEL): a pure library
    # over the field errors of ferrokube-api.
    "ferrokube-schema": {"ferrokube-api"},
    # Resource metrics: kubelets scraped, the storage rules of metrics-server; a
    # leaf the API server serves from (no API client: it writes nothing), trusting
    # kubelets as the API server does (ferrokube-pki).
    "ferrokube-metrics": {"ferrokube-pki"},
    # The browser code of the dashboard, embedded: a leaf of files the API server serves.
    "ferrokube-dashboard": set(),
    # A Chrome DevTools Protocol client that drives a headless chromium for the
    # browser tests and benchmark of the dashboard: a leaf, linking no crate of ours.
    "ferrokube-browser": set(),
    # The only crate of the control plane that reads and writes the store.
    # It serves metrics.k8s.io from the collector it starts.
    "ferrokube-apiserver": {"ferrokube-api", "ferrokube-openapi", "ferrokube-store", "ferrokube-pki",
                            "ferrokube-schema", "ferrokube-metrics", "ferrokube-dashboard"},
    # How components reach the API. The in-process API server (and so the
    # store) only behind the `in-process` and `testing` features, which only
    # the binary, the benchmarks and tests turn on.
    "ferrokube-client": {"ferrokube-api", "ferrokube-pki",
                         "ferrokube-apiserver?", "ferrokube-store?"},
    # Components: API clients only, never the store nor the API server.
    # The controllers place DaemonSet pods with the scheduler'"'"'s predicates.
    "ferrokube-controllers": {"ferrokube-api", "ferrokube-client", "ferrokube-scheduler"},
    "ferrokube-scheduler": {"ferrokube-api", "ferrokube-client"},
    "ferrokube-kubelet": {"ferrokube-api", "ferrokube-client", "ferrokube-pki", "ferrokube-nft"},
    "ferrokube-proxy": {"ferrokube-api", "ferrokube-client", "ferrokube-nft"},
    "ferrokube-dns": {"ferrokube-api", "ferrokube-client"},
    # The multi-node test lab drives the `ferrokube` binary and kubectl as
    # processes: it links no crate of ours.
    "ferrokube-lab": set(),
    # The network policy controller: a client of the API, programming nft.
    "ferrokube-netpol": {"ferrokube-api", "ferrokube-client", "ferrokube-nft"},
    # The binary and the benchmarks put everything together.
    "ferrokube": "*",
    "ferrokube-bench": "*",
}

meta = json.load(sys.stdin)
names = {p["name"] for p in meta["packages"]}
bad = []
for p in meta["packages"]:
    name = p["name"]
    if name not in ALLOWED:
        bad.append(f"{name}: a new crate: give it a row in scripts/check-boundaries.sh and ARCHITECTURE.md")
        continue
    allowed = ALLOWED[name]
    for d in p["dependencies"]:
        dep = d["name"]
        if dep not in names or d["kind"] == "dev" or dep == name or allowed == "*":
            continue
        if dep in allowed or (d["optional"] and dep + "?" in allowed):
            continue
        how = "optional " if d["optional"] else ""
        bad.append(f"{name} may not depend on {dep} ({how}dependency)")
for b in bad:
    print("check-boundaries:", b, file=sys.stderr)
if bad:
    sys.exit(1)
print(f"check-boundaries: {len(names)} crates keep their boundaries")
'
