#!/usr/bin/env bash
# NPB CG (class A by default): spmd's npb_cg example against the NPB 3.4 MPI reference
# (Fortran), side by side: the two alternate in every round, and the script prints each
# round's "Time in seconds" and the median ratio spmd / reference at 1 and 2 ranks.
#
# The reference is not in this repository: pass the directory of an NPB3.4-MPI source tree
# (NASA's release). The script builds `cg` there with this machine's mpif90 (gfortran needs
# -fallow-argument-mismatch; the double-precision generator randdp).
#
#   bash benches/peers/npb-cg-vs-reference.sh NPB_MPI_DIR [ROUNDS] [CLASS]
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/mpi-env
npb="${1:?usage: npb-cg-vs-reference.sh NPB_MPI_DIR [ROUNDS] [CLASS]}"
rounds="${2:-5}" class="${3:-A}"
[ -f "$npb/config/make.def" ] || cp "$npb/config/make.def.template" "$npb/config/make.def"
sed -i 's/^FFLAGS\t= -O3$/FFLAGS\t= -O3 -fallow-argument-mismatch/; s/^RAND .*/RAND   = randdp/' \
  "$npb/config/make.def"
mkdir -p "$npb/bin"
make -C "$npb" cg CLASS="$class" >/dev/null
cargo build --release --example npb_cg -q
seconds() { sed -n 's/.*Time in seconds = *\([0-9.]*\).*/\1/p'; }
for ranks in 1 2; do
  rows=()
  for round in $(seq 1 "$rounds"); do
    s=$(mpirun -n "$ranks" target/release/examples/npb_cg --class "$class" | seconds)
    r=$(mpirun -n "$ranks" "$npb/bin/cg.$class.x" | seconds)
    echo "np=$ranks round $round: spmd ${s} s, reference ${r} s"
    rows+=("$s $r")
  done
  printf '%s\n' "${rows[@]}" | python3 -c "
import statistics, sys
rows = [list(map(float, l.split())) for l in sys.stdin if l.strip()]
ratio = [s / r for s, r in rows]
print(f'np=$ranks: spmd / reference {statistics.median(ratio):.3f} (range {min(ratio):.3f}-{max(ratio):.3f})')
"
done
