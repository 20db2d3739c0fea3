#!/usr/bin/env bash
# Interleaved A/B rounds of one benchmark between two release builds (each a
# directory holding `ferrokube` and `ferrokube-bench`), the order alternating
# each round so that drift on a shared machine falls on both alike. Each run's
# output goes to OUT/<a|b>-<round>.txt; compare their medians.
#   scripts/bench-ab.sh A_DIR B_DIR ROUNDS OUT -- authz --nodes 5000 --pods 10000 --runs 1
set -euo pipefail
[ $# -ge 5 ] && [ "$5" = "--" ] || { echo "usage: $0 A_DIR B_DIR ROUNDS OUT -- BENCH ARGS..." >&2; exit 2; }
a=$1 b=$2 rounds=$3 out=$4
shift 5
mkdir -p "$out"
for r in $(seq 1 "$rounds"); do
  if [ $((r % 2)) = 1 ]; then order="a b"; else order="b a"; fi
  for side in $order; do
    dir=$a; [ "$side" = b ] && dir=$b
    timeout 900 "$dir/ferrokube-bench" "$@" > "$out/$side-$r.txt" 2>&1
    echo "round $r: $side done $(date +%T)"
  done
done
