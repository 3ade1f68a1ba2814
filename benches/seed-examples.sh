#!/usr/bin/env bash
# The seed scenarios' own speedup reports at 2 ranks (zoo_pipeline: the frame rate at 1 and 3
# ranks), each program's report with --repeat REPEAT (medians over the repetitions, each
# baseline run interleaved with a parallel run), RUNS runs of each. Prints one line per run
# with the figures the performance docs quote; the JSON reports stay in target/seed-examples.
#
#   bash benches/seed-examples.sh [RUNS] [REPEAT]     defaults: 2 runs of --repeat 3
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/mpi-env
runs="${1:-2}" repeat="${2:-3}"
cargo build --release --examples -q
out=target/seed-examples
mkdir -p "$out"
field() { # report.json python-expression
  python3 -c "import json; r = json.load(open('$1')); print($2)"
}
speedup() { # name ranks args...
  local name=$1 ranks=$2
  shift 2
  local json="$out/$name-$ranks.json"
  mpirun -n "$ranks" "target/release/examples/$name" --baseline --repeat "$repeat" \
    --report "$json" "$@" >"$out/$name-$ranks.txt" 2>&1
  field "$json" "'speedup %.2f (min %.2f, max %.2f)' % (r['speedup']['median'], r['speedup']['min'], r['speedup']['max'])"
}
for run in $(seq 1 "$runs"); do
  echo "== run $run"
  echo "cat_farm (8 images): $(speedup cat_farm 2)"
  echo "cat_farm --images 32: $(speedup cat_farm 2 --images 32) $(field "$out/cat_farm-2.json" \
    "'farm efficiency %.1f%%, manager MPI thread CPU %.1f%%' % (100 * sum(x['busy_s'] for x in r['results']['farm']['ranks']) / len(r['results']['farm']['ranks']) / max(x['wall_s'] for x in r['results']['farm']['ranks']), 100 * r['results']['farm']['ranks'][0]['mpi_thread_cpu_s'] / r['results']['farm']['ranks'][0]['wall_s'])")"
  echo "cat_farm --images 32 --skew: $(speedup cat_farm 2 --images 32 --skew) $(field "$out/cat_farm-2.json" \
    "'farm efficiency %.1f%%' % (100 * sum(x['busy_s'] for x in r['results']['farm']['ranks']) / len(r['results']['farm']['ranks']) / max(x['wall_s'] for x in r['results']['farm']['ranks']))")"
  echo "cat_farm 3 ranks: $(speedup cat_farm 3)"
  echo "sample_sort --keys 100000000: $(speedup sample_sort 2 --keys 100000000)"
  for sync in blocking overlap average; do
    echo "sgd --samples 2000000 --sync $sync: $(speedup sgd 2 --samples 2000000 --sync "$sync") $(field "$out/sgd-2.json" \
      "'loss %.6e vs serial %.6e' % (r['results']['final_loss'], r['results']['serial_final_loss'])")"
  done
  for ranks in 1 3; do
    json="$out/zoo_pipeline-$ranks.json"
    mpirun --oversubscribe -n "$ranks" target/release/examples/zoo_pipeline --report "$json" \
      >"$out/zoo_pipeline-$ranks.txt" 2>&1
    echo "zoo_pipeline $ranks ranks: $(field "$json" \
      "'%.1f of %.1f frames/s (%.0f%%), limited by %s' % (r['results']['fps_sustained'], r['results']['fps_asked'], 100 * r['results']['fps_sustained'] / r['results']['fps_asked'], r['results']['limiting_stage'])")"
  done
done
