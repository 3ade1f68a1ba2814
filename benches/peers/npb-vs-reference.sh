#!/usr/bin/env bash
# An NPB kernel (cg, mg or ep; class A by default): spmd's npb_<kernel> example against the
# NPB 3.4 MPI reference (Fortran), side by side: the two alternate in every round, and the
# script prints each round's "Time in seconds" and the median ratio spmd / reference at 1 and
# 2 ranks.
#
# The reference is not in this repository: pass the directory of an NPB3.4-MPI source tree
# (NASA's release). The script builds the kernel there with this machine's mpif90 (gfortran
# needs -fallow-argument-mismatch) and the generator the release recommends, randi8 (EP times
# it: the portable randdp makes the reference EP about 5 times slower).
#
#   bash benches/peers/npb-vs-reference.sh NPB_MPI_DIR KERNEL [ROUNDS] [CLASS]
#
# BEFORE=path/to/an/older/npb_<kernel> adds a third program to every round (say, the example
# built at an earlier commit) and prints spmd / before too.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/mpi-env
usage="usage: npb-vs-reference.sh NPB_MPI_DIR cg|mg|ep [ROUNDS] [CLASS]"
npb="${1:?$usage}" kernel="${2:?$usage}"
rounds="${3:-5}" class="${4:-A}"
case "$kernel" in cg | mg | ep) ;; *) echo "$usage" >&2; exit 2 ;; esac
[ -f "$npb/config/make.def" ] || cp "$npb/config/make.def.template" "$npb/config/make.def"
sed -i 's/^FFLAGS\t= -O3$/FFLAGS\t= -O3 -fallow-argument-mismatch/; s/^RAND .*/RAND   = randi8/' \
  "$npb/config/make.def"
mkdir -p "$npb/bin"
# gfortran's argument-mismatch warnings fill pages: show the build's output only if it fails.
build_log=$(mktemp)
trap 'rm -f "$build_log"' EXIT
rm -f "$npb/bin/$kernel.$class.x" # relinked with this make.def's generator
make -C "$npb" "$kernel" CLASS="$class" >"$build_log" 2>&1 || { cat "$build_log" >&2; exit 1; }
cargo build --release --example "npb_$kernel" -q
seconds() { sed -n 's/.*Time in seconds = *\([0-9.]*\).*/\1/p'; }
before="${BEFORE:-}"
for ranks in 1 2; do
  rows=()
  for round in $(seq 1 "$rounds"); do
    s=$(mpirun -n "$ranks" "target/release/examples/npb_$kernel" --class "$class" | seconds)
    r=$(mpirun -n "$ranks" "$npb/bin/$kernel.$class.x" | seconds)
    b=""
    [ -z "$before" ] || b=$(timeout 600 mpirun -n "$ranks" "$before" --class "$class" | seconds)
    echo "np=$ranks round $round: spmd ${s} s, reference ${r} s${b:+, before ${b} s}"
    rows+=("$s $r $b")
  done
  printf '%s\n' "${rows[@]}" | python3 -c "
import statistics, sys
rows = [list(map(float, l.split())) for l in sys.stdin if l.strip()]
ratio = [r[0] / r[1] for r in rows]
print(f'np=$ranks: spmd / reference {statistics.median(ratio):.3f} (range {min(ratio):.3f}-{max(ratio):.3f})')
if all(len(r) == 3 for r in rows):
    print(f'np=$ranks: spmd / before {statistics.median(r[0] / r[2] for r in rows):.3f}, '
          f'before / reference {statistics.median(r[2] / r[1] for r in rows):.3f}')
"
done
