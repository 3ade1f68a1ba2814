#!/usr/bin/env bash
# The pictures in docs/performance.md: heat2d's HTML report (per-rank bars, communication
# matrix, timeline overview and close-up) with split-phase halos and with blocking halos,
# each traced, rendered by headless Chromium into docs/images/.
#
#   bash benches/trace-pictures.sh [N] [SWEEPS] [RANKS]
#   defaults: 2048 x 2048, 50 sweeps, 2 ranks. Needs Debian's chromium (apt-get install chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/mpi-env
n="${1:-2048}" sweeps="${2:-50}" ranks="${3:-2}"
command -v chromium >/dev/null || { echo "needs chromium: apt-get install -y chromium"; exit 1; }
cargo build --release --example heat2d -q
mkdir -p target/pictures docs/images
for halos in split blocking; do
  html="$PWD/target/pictures/heat2d-$halos.html"
  mpirun -n "$ranks" target/release/examples/heat2d --n "$n" --m "$n" --max-iters "$sweeps" \
    --tol 0 --halos "$halos" --trace "target/pictures/heat2d-$halos.json" \
    --report-html "$html" >/dev/null
  profile=$(mktemp -d)
  chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --hide-scrollbars --window-size=1040,1500 \
    --screenshot="docs/images/heat2d-$halos.png" "file://$html" 2>/dev/null
  rm -rf "$profile"
  echo "docs/images/heat2d-$halos.png from $html"
done
