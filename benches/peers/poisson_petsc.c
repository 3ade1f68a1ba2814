/* The peer of `examples/poisson.rs` in PETSc: the 2-D Poisson matrix (5-point stencil over
 * h^2, n x n interior points, rows split in blocks by PETSc), the right-hand side
 * 2 (x(1-x) + y(1-y)), and KSPCG + PCJACOBI for exactly K iterations from x = 0. Prints the
 * solve's time per iteration (slowest rank) and the final residual norm.
 *
 *   mpirun -n 2 poisson_petsc N K [PETSc options, e.g. -ksp_norm_type natural]
 */
#include <petscksp.h>

int main(int argc, char **argv) {
  PetscCall(PetscInitialize(&argc, &argv, NULL, NULL));
  if (argc < 3) {
    PetscCall(PetscPrintf(PETSC_COMM_WORLD, "usage: poisson_petsc N K [options]\n"));
    PetscCall(PetscFinalize());
    return 1;
  }
  PetscInt n = atoi(argv[1]), iterations = atoi(argv[2]);
  PetscInt size = n * n;
  PetscReal h = 1.0 / (n + 1), scale = 1.0 / (h * h);

  Mat a;
  PetscCall(MatCreateAIJ(PETSC_COMM_WORLD, PETSC_DECIDE, PETSC_DECIDE, size, size, 5, NULL, 2,
                         NULL, &a));
  PetscInt first, last;
  PetscCall(MatGetOwnershipRange(a, &first, &last));
  for (PetscInt row = first; row < last; row++) {
    PetscInt i = row / n, j = row % n, columns[5], count = 0;
    PetscScalar values[5];
    if (i > 0) { columns[count] = row - n; values[count++] = -scale; }
    if (j > 0) { columns[count] = row - 1; values[count++] = -scale; }
    columns[count] = row; values[count++] = 4.0 * scale;
    if (j + 1 < n) { columns[count] = row + 1; values[count++] = -scale; }
    if (i + 1 < n) { columns[count] = row + n; values[count++] = -scale; }
    PetscCall(MatSetValues(a, 1, &row, count, columns, values, INSERT_VALUES));
  }
  PetscCall(MatAssemblyBegin(a, MAT_FINAL_ASSEMBLY));
  PetscCall(MatAssemblyEnd(a, MAT_FINAL_ASSEMBLY));

  Vec b, x;
  PetscCall(MatCreateVecs(a, &x, &b));
  for (PetscInt row = first; row < last; row++) {
    PetscReal px = (row % n + 1) * h, py = (row / n + 1) * h;
    PetscCall(VecSetValue(b, row, 2.0 * (px * (1 - px) + py * (1 - py)), INSERT_VALUES));
  }
  PetscCall(VecAssemblyBegin(b));
  PetscCall(VecAssemblyEnd(b));
  PetscCall(VecSet(x, 0.0));

  KSP ksp;
  PC pc;
  PetscCall(KSPCreate(PETSC_COMM_WORLD, &ksp));
  PetscCall(KSPSetOperators(ksp, a, a));
  PetscCall(KSPSetType(ksp, KSPCG));
  PetscCall(KSPGetPC(ksp, &pc));
  PetscCall(PCSetType(pc, PCJACOBI));
  PetscCall(KSPSetTolerances(ksp, 0.0, 0.0, PETSC_DEFAULT, iterations));
  PetscCall(KSPSetFromOptions(ksp));
  PetscCall(KSPSetUp(ksp));

  PetscCallMPI(MPI_Barrier(PETSC_COMM_WORLD));
  double start = MPI_Wtime();
  PetscCall(KSPSolve(ksp, b, x));
  double mine = MPI_Wtime() - start, slowest;
  PetscCallMPI(MPI_Allreduce(&mine, &slowest, 1, MPI_DOUBLE, MPI_MAX, PETSC_COMM_WORLD));

  PetscInt done;
  PetscReal residual;
  PetscCall(KSPGetIterationNumber(ksp, &done));
  PetscCall(KSPGetResidualNorm(ksp, &residual));
  PetscCall(PetscPrintf(PETSC_COMM_WORLD,
                        "petsc n=%" PetscInt_FMT " iterations=%" PetscInt_FMT
                        " residual=%.6e per_iteration_s=%.9f\n",
                        n, done, (double)residual, slowest / (double)done));
  PetscCall(KSPDestroy(&ksp));
  PetscCall(VecDestroy(&x));
  PetscCall(VecDestroy(&b));
  PetscCall(MatDestroy(&a));
  PetscCall(PetscFinalize());
  return 0;
}
