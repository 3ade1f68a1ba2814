#!/usr/bin/env bash
# What recording a timeline costs a real program: heat2d (split-phase halos) with and without
# `--trace`, alternating in every round; prints each round's times and the median ratio
# traced / untraced, of the report's wall time (the solve) and of the whole job (mpirun start
# to exit, the trace file's writing included).
#
#   bash benches/trace-cost.sh [ROUNDS] [N] [SWEEPS] [RANKS]
#   defaults: 7 rounds of 4096 x 4096, 100 sweeps, 2 ranks
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/mpi-env
rounds="${1:-7}" n="${2:-4096}" sweeps="${3:-100}" ranks="${4:-2}"
mkdir -p target/peers
cargo build --release --example heat2d -q
report=target/peers/trace-cost-report.json
trace=target/peers/trace-cost-trace.json
run() { # extra flags...; prints "solve_s job_s"
  local start end
  start=$(date +%s.%N)
  mpirun -n "$ranks" target/release/examples/heat2d --n "$n" --m "$n" --max-iters "$sweeps" \
    --tol 0 --check-every 1 --halos split --report "$report" "$@" >/dev/null
  end=$(date +%s.%N)
  python3 -c "import json; print(json.load(open('$report'))['wall_s']['median'], $end - $start)"
}
rows=()
for k in $(seq 1 "$rounds"); do
  off=$(run)
  on=$(run --trace "$trace")
  echo "round $k: untraced solve/job ${off} s, traced ${on} s"
  rows+=("$off $on")
done
events=$(python3 -c "import json; print(json.load(open('$trace'))['otherData']['events'])")
clock=$(python3 -c "import json; print(round(json.load(open('$trace'))['otherData']['clock_error_us'], 2))")
printf '%s\n' "${rows[@]}" | python3 -c "
import statistics, sys
rows = [list(map(float, l.split())) for l in sys.stdin if l.strip()]
solve = [on / off for off, _, on, _ in rows]
job = [on / off for _, off, _, on in rows]
f = lambda xs: f'{statistics.median(xs):.3f} (range {min(xs):.3f}-{max(xs):.3f})'
print(f'heat2d $n x $n, $sweeps sweeps, $ranks ranks: traced / untraced solve {f(solve)}; job {f(job)}; events per rank $events; clock alignment within $clock us (last round)')
"
