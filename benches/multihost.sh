#!/usr/bin/env bash
# What crossing hosts costs, and whether the scaling model foresees it: three network
# namespaces of this machine as hosts (scripts/hosts-env), Open MPI over TCP between them.
#
#   1. spmd's network benchmark (benches/network.rs): ping-pong and all_reduce at 2 ranks on
#      one host, then 2, 3 and 6 ranks across hosts (alternating one host / across).
#   2. heat2d at 2 ranks, one host against one rank a host, alternating: wall time and the
#      comm fraction, at a compute-bound size and a communication-bound one.
#   3. At each size, spmd-scale fits its model on 1 and 2 ranks on one host and predicts runs
#      it did not fit: 2, 3 and 6 ranks across hosts (first with the fitted network, then
#      with the network probed), and 3 and 4 ranks oversubscribing this host's 2 cores.
#   4. (only when asked: SPMD_MULTIHOST_PARTS=overlap) the split-phase halo benchmark
#      (benches/arrays/overlap.rs) at 2 ranks across hosts, one rank a host: what a halo
#      exchange over TCP leaves hidden behind interior work.
#
#   bash benches/multihost.sh [ROUNDS] [N]      # defaults: 5 rounds, heat2d 2048 x 2048
#   (the network part only: SPMD_MULTIHOST_PARTS=network; the heat2d part only: heat2d)
# Needs root and `ip netns`; removes what it made.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-5}" n="${2:-2048}"
source scripts/mpi-env
source scripts/hosts-env
hosts_possible || { echo "multihost bench: $HOSTS_WHY" >&2; exit 1; }
trap hosts_down EXIT
trap 'exit 1' INT TERM
hosts_up 3
out="$HOSTS_WORK/bench"
mkdir -p "$out"
export SPMD_NUM_THREADS=1
cargo build --release --example heat2d --features scale --bin spmd-scale -q
bench_executable() { # NAME: the path of benchmark NAME, built
  cargo bench --bench "$1" --no-run --message-format=json 2>/dev/null |
    python3 -c "import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get('reason') == 'compiler-artifact' and m['target']['name'] == '$1' and m.get('executable'):
        print(m['executable'])"
}
bench=$(bench_executable network)
heat="target/release/examples/heat2d"

parts=" ${SPMD_MULTIHOST_PARTS:-network heat2d} "
[[ "$parts" == *" overlap "* ]] && for k in $(seq 1 "$rounds"); do
  # One rank a host, TCP only: the exchange crosses the (pretend) network.
  echo "## split-phase halos, 2 ranks across hosts, run $k"
  HOSTS_BTL=self,tcp timeout 600 "$HOSTS_MPIRUN" -n 2 -x SPMD_BENCH_ARRAYS_PART=overlap \
    "$(bench_executable arrays)" --bench | grep -v '^$'
done
[[ "$parts" == *" network "* ]] && for k in $(seq 1 2); do
  [ "$k" = 1 ] && echo "## network: one host against across hosts"
  echo "### round $k: 2 ranks, one host"
  mpirun -n 2 --bind-to none "$bench" --bench | grep -v '^$'
  for ranks in 2 3 6; do
    echo "### round $k: $ranks ranks across 3 hosts (rank 0 and rank $((ranks - 1)) on different hosts)"
    "$HOSTS_MPIRUN" -n "$ranks" "$bench" --bench | grep -v '^$'
  done
done

# heat2d at two sizes: N x N for 200 sweeps (compute-bound), and 256 x 256 for 4000 sweeps
# (a 2 KiB ghost row each way per sweep against ~30 µs of compute: the network shows).
[[ "$parts" == *" heat2d "* ]] && for case in "$n 200" "256 4000"; do
  read -r size sweeps <<<"$case"
  heat_args=(--n "$size" --m "$size" --max-iters "$sweeps" --tol 0 --check-every 10 --halos split)
  echo "## heat2d $size x $size, $sweeps sweeps, 2 ranks: one host against one rank a host"
  rows=()
  for k in $(seq 1 "$rounds"); do
    mpirun -n 2 --bind-to none "$heat" "${heat_args[@]}" --repeat 3 --report "$out/one.json" >/dev/null
    "$HOSTS_MPIRUN" -n 2 "$heat" "${heat_args[@]}" --repeat 3 --report "$out/across.json" >/dev/null
    row=$(python3 -c "import json
a, b = json.load(open('$out/one.json')), json.load(open('$out/across.json'))
print(a['wall_s']['median'], a['comm_fraction'], b['wall_s']['median'], b['comm_fraction'])")
    echo "round $k: one host wall, comm fraction; across: $row"
    rows+=("$row")
  done
  printf '%s\n' "${rows[@]}" | python3 -c "
import statistics, sys
rows = [list(map(float, l.split())) for l in sys.stdin if l.strip()]
med = lambda i: statistics.median(r[i] for r in rows)
ratio = [r[2] / r[0] for r in rows]
print(f'heat2d $size^2 x $sweeps, 2 ranks: one host wall {med(0):.4f} s, comm fraction {med(1):.3f}; '
      f'across hosts wall {med(2):.4f} s, comm fraction {med(3):.3f}; '
      f'across / one host {statistics.median(ratio):.3f} (range {min(ratio):.3f}-{max(ratio):.3f})')
"
  echo "## the scaling model: heat2d $size x $size, $sweeps sweeps, fitted on 1-2 ranks on one host"
  scale=(target/release/spmd-scale --ranks 1,2 --threads 1 --repeat 5 --cores 2 --predict 3,6)
  "${scale[@]}" --out "$out/scale-$size-across" --held-out 2,3,6 \
    --held-out-mpirun "$HOSTS_MPIRUN" -- "$heat" "${heat_args[@]}" | grep -A5 '^HELD OUT'
  "${scale[@]}" --out "$out/scale-$size-probed" --held-out 2,3,6 \
    --held-out-mpirun "$HOSTS_MPIRUN" --probe -- "$heat" "${heat_args[@]}" |
    grep -A5 -E '^(PROBE|HELD OUT)'
  "${scale[@]}" --out "$out/scale-$size-oversubscribed" --held-out 3,4 \
    -- "$heat" "${heat_args[@]}" | grep -A4 '^HELD OUT'
done
