#!/usr/bin/env bash
# CG + Jacobi on the 2-D Poisson matrix (5-point, N x N unknowns), spmd's poisson example
# against PETSc's KSPCG + PCJACOBI (benches/peers/poisson_petsc.c, built here against
# Debian's petsc-dev), side by side: the programs alternate in every round, each runs exactly
# K iterations from x = 0, and the script prints each round's time per iteration (solve only,
# slowest rank) and the median ratios spmd / PETSc. PETSc runs twice: its default (the
# preconditioned residual norm, one more reduction per iteration) and `-ksp_norm_type
# natural` (the norm from rᵀz, as spmd's CG needs no extra reduction for its own norm).
# One rayon thread per rank, as PETSc runs one thread per rank.
#
#   bash benches/peers/poisson-vs-petsc.sh [ROUNDS] [N] [K]
#   defaults: 5 rounds of 2048 x 2048, 200 iterations, at 1 and 2 ranks
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/mpi-env
rounds="${1:-5}" n="${2:-2048}" k="${3:-200}"
if ! pkg-config --exists petsc; then
  echo "PETSc is missing: apt-get install petsc-dev" >&2
  exit 1
fi
mkdir -p target/peers
mpicc -O3 -o target/peers/poisson-petsc benches/peers/poisson_petsc.c $(pkg-config --cflags --libs petsc)
cargo build --release --example poisson -q
out=target/peers/poisson-report.json
spmd_time() { # ranks
  SPMD_NUM_THREADS=1 mpirun -n "$1" target/release/examples/poisson --n "$n" --iterations "$k" \
    --report "$out" >/dev/null
  python3 -c "import json; print(json.load(open('$out'))['results']['per_iteration_s'])"
}
petsc_time() { # ranks [options]
  local ranks="$1"
  shift
  mpirun -n "$ranks" target/peers/poisson-petsc "$n" "$k" "$@" | sed -n 's/.*per_iteration_s=\([0-9.e-]*\).*/\1/p'
}
for ranks in 1 2; do
  rows=()
  for round in $(seq 1 "$rounds"); do
    s=$(spmd_time "$ranks")
    p=$(petsc_time "$ranks")
    q=$(petsc_time "$ranks" -ksp_norm_type natural)
    echo "np=$ranks round $round: spmd ${s} s, PETSc ${p} s, PETSc natural norm ${q} s per iteration"
    rows+=("$s $p $q")
  done
  printf '%s\n' "${rows[@]}" | python3 -c "
import statistics, sys
rows = [list(map(float, l.split())) for l in sys.stdin if l.strip()]
default = [s / p for s, p, q in rows]
natural = [s / q for s, p, q in rows]
f = lambda xs: f'{statistics.median(xs):.3f} (range {min(xs):.3f}-{max(xs):.3f})'
print(f'np=$ranks: spmd / PETSc {f(default)}; spmd / PETSc natural norm {f(natural)}')
"
done
