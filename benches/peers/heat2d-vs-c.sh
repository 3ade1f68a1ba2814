#!/usr/bin/env bash
# heat2d (spmd, split-phase halos and blocking halos) against a plain C + MPI Jacobi with the
# same decomposition (benches/peers/heat2d.c, built here with mpicc), side by side: the three
# programs alternate in every round, and the script prints each round's times and the
# median ratios spmd / C. Both time allocation, initialisation and the sweeps.
#
#   bash benches/peers/heat2d-vs-c.sh [ROUNDS] [N] [SWEEPS] [CHECK_EVERY]
#   defaults: 5 rounds of 4096 x 4096, 100 sweeps, residual every 100, at 1 and 2 ranks
#   C_FLAGS=-DFOUR_LANES gives the C peer heat2d.rs's four running maxima of the change
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/mpi-env
rounds="${1:-5}" n="${2:-4096}" sweeps="${3:-100}" every="${4:-100}"
mkdir -p target/peers
# shellcheck disable=SC2086 # C_FLAGS holds several flags
mpicc -O3 ${C_FLAGS:-} -o target/peers/heat2d-c benches/peers/heat2d.c -lm
cargo build --release --example heat2d -q
out=target/peers/heat2d-report.json
spmd_time() { # ranks halos
  mpirun -n "$1" target/release/examples/heat2d --n "$n" --m "$n" --max-iters "$sweeps" \
    --tol 0 --check-every "$every" --halos "$2" --report "$out" >/dev/null
  python3 -c "import json; print(json.load(open('$out'))['wall_s']['median'])"
}
c_time() {
  mpirun -n "$1" target/peers/heat2d-c "$n" "$n" "$sweeps" "$every" | sed -n 's/.*time_s=\([0-9.]*\).*/\1/p'
}
for ranks in 1 2; do
  rows=()
  for k in $(seq 1 "$rounds"); do
    split=$(spmd_time "$ranks" split)
    c=$(c_time "$ranks")
    blocking=$(spmd_time "$ranks" blocking)
    echo "np=$ranks round $k: spmd split ${split} s, C ${c} s, spmd blocking ${blocking} s"
    rows+=("$split $c $blocking")
  done
  printf '%s\n' "${rows[@]}" | python3 -c "
import statistics, sys
rows = [list(map(float, l.split())) for l in sys.stdin if l.strip()]
split = [s / c for s, c, b in rows]
blocking = [b / c for s, c, b in rows]
over = [s / b for s, c, b in rows]
f = lambda xs: f'{statistics.median(xs):.3f} (range {min(xs):.3f}-{max(xs):.3f})'
print(f'np=$ranks: spmd split / C {f(split)}; spmd blocking / C {f(blocking)}; split / blocking {f(over)}')
"
done
