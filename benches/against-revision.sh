#!/usr/bin/env bash
# One example, built from this tree and from an earlier git revision, run alternately with the
# same arguments: the median ratio (this tree / revision) of the report's wall time tells what
# a change cost a real program (e.g. what tracing *off* costs against the build before it).
#
#   bash benches/against-revision.sh REV EXAMPLE RANKS ROUNDS -- EXAMPLE_ARGS...
#   e.g. bash benches/against-revision.sh e1c86a0 heat2d 2 9 -- --n 4096 --m 4096 \
#          --max-iters 100 --tol 0 --check-every 1 --halos split
#
# The revision is checked out in a worktree under target/peers and built there (its own target
# directory, so the first run compiles everything once); the worktree is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 5 ] || [ "$5" != "--" ]; then
  echo "usage: $0 REV EXAMPLE RANKS ROUNDS -- EXAMPLE_ARGS..." >&2
  exit 2
fi
rev="$1" example="$2" ranks="$3" rounds="$4"
shift 5
source scripts/mpi-env
root="$PWD/target/peers/revision"
tree="$root/tree"
mkdir -p "$root"
git worktree remove --force "$tree" 2>/dev/null || rm -rf "$tree"
git worktree add --quiet --detach "$tree" "$rev"
trap 'git worktree remove --force "$tree" 2>/dev/null || true' EXIT
(cd "$tree" && CARGO_TARGET_DIR="$root/target" cargo build --release --example "$example" -q)
cargo build --release --example "$example" -q
old="$root/$example-$(git rev-parse --short "$rev")"
cp "$root/target/release/examples/$example" "$old"
new="target/release/examples/$example"
report="$root/report.json"
run() { # program args...; prints the report's median wall time
  local program="$1"
  shift
  mpirun -n "$ranks" "$program" "$@" --report "$report" >/dev/null
  python3 -c "import json; print(json.load(open('$report'))['wall_s']['median'])"
}
rows=()
for k in $(seq 1 "$rounds"); do
  # Alternate which goes first, so that a drift of the machine favours neither.
  if [ $((k % 2)) -eq 1 ]; then a=$(run "$old" "$@"); b=$(run "$new" "$@"); else
    b=$(run "$new" "$@"); a=$(run "$old" "$@"); fi
  echo "round $k: $rev ${a} s, this tree ${b} s"
  rows+=("$a $b")
done
printf '%s\n' "${rows[@]}" | python3 -c "
import statistics, sys
rows = [list(map(float, l.split())) for l in sys.stdin if l.strip()]
r = [b / a for a, b in rows]
print(f'$example at $ranks ranks, this tree / $rev: median {statistics.median(r):.3f} '
      f'(range {min(r):.3f}-{max(r):.3f}, {len(r)} rounds)')
"
