/* Plain C + MPI Jacobi for the 2-D heat problem of examples/heat2d.rs: the peer that spmd's
 * heat2d is measured against (benches/peers/heat2d-vs-c.sh builds it with mpicc).
 *
 * Same problem and decomposition: an n x m grid, top row held at 100, other edges at 0;
 * rows split in blocks over the ranks (the first n % p ranks one row more), one ghost row on
 * each side exchanged with MPI_Sendrecv before every sweep; every `check_every` sweeps the
 * largest change is reduced with MPI_Allreduce(MAX). Prints the solve time (allocation,
 * initialisation and sweeps, as heat2d's report times them) and a checksum.
 *
 *   mpirun -n 2 heat2d-c 4096 4096 100 100
 *
 * Built with -DFOUR_LANES, it keeps the largest change in four running maxima, as heat2d.rs
 * does (the plain loop's one chain of max instructions bounds it).
 */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc != 5) {
        if (rank == 0) fprintf(stderr, "usage: heat2d-c N M ITERATIONS CHECK_EVERY\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    const long n = atol(argv[1]), m = atol(argv[2]);
    const int iterations = atoi(argv[3]), check_every = atoi(argv[4]);

    MPI_Barrier(MPI_COMM_WORLD);
    double start = MPI_Wtime();
    long rows = n / size + (rank < n % size ? 1 : 0);
    long first = rank * (n / size) + (rank < n % size ? rank : n % size);
    /* rows + 2 padded rows: ghost row 0 and rows + 1. */
    double *u = malloc(sizeof(double) * (rows + 2) * m);
    double *next = malloc(sizeof(double) * (rows + 2) * m);
    for (long r = 0; r < rows + 2; r++)
        for (long j = 0; j < m; j++) {
            long i = first + r - 1;
            double v = (i == 0) ? 100.0 : 0.0;
            u[r * m + j] = v;
            next[r * m + j] = v;
        }
    int up = rank > 0 ? rank - 1 : MPI_PROC_NULL;
    int down = rank < size - 1 ? rank + 1 : MPI_PROC_NULL;
    int done = 0;
    for (int it = 1; it <= iterations && !done; it++) {
        /* Top owned row up, bottom ghost from below; bottom owned row down, top ghost from above. */
        MPI_Sendrecv(&u[1 * m], m, MPI_DOUBLE, up, 0, &u[(rows + 1) * m], m, MPI_DOUBLE, down, 0,
                     MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        MPI_Sendrecv(&u[rows * m], m, MPI_DOUBLE, down, 1, &u[0], m, MPI_DOUBLE, up, 1,
                     MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        double change = 0.0;
        for (long r = 1; r <= rows; r++) {
            long i = first + r - 1;
            double *out = &next[r * m];
            const double *here = &u[r * m], *above = &u[(r - 1) * m], *below = &u[(r + 1) * m];
            if (i == 0 || i == n - 1) {
                memcpy(out, here, sizeof(double) * m);
                continue;
            }
            out[0] = here[0];
            out[m - 1] = here[m - 1];
#ifdef FOUR_LANES
            /* The largest change in four running maxima (points j mod 4), as heat2d.rs keeps
             * it: the plain loop below is bound by its one chain of max instructions. */
            double lane[4] = {change, change, change, change};
            long j = 1;
            for (; j + 3 < m - 1; j += 4)
                for (int l = 0; l < 4; l++) {
                    double v = (above[j + l] + below[j + l] + here[j + l - 1] + here[j + l + 1]) * 0.25;
                    double d = fabs(v - here[j + l]);
                    if (d > lane[l]) lane[l] = d;
                    out[j + l] = v;
                }
            for (; j < m - 1; j++) {
                double v = (above[j] + below[j] + here[j - 1] + here[j + 1]) * 0.25;
                double d = fabs(v - here[j]);
                if (d > lane[0]) lane[0] = d;
                out[j] = v;
            }
            for (int l = 0; l < 4; l++)
                if (lane[l] > change) change = lane[l];
#else
            for (long j = 1; j < m - 1; j++) {
                double v = (above[j] + below[j] + here[j - 1] + here[j + 1]) * 0.25;
                double d = fabs(v - here[j]);
                if (d > change) change = d;
                out[j] = v;
            }
#endif
        }
        double *t = u;
        u = next;
        next = t;
        if (it % check_every == 0) {
            double global;
            MPI_Allreduce(&change, &global, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
            done = global < 0.0; /* the benchmark runs a fixed number of sweeps */
        }
    }
    MPI_Barrier(MPI_COMM_WORLD);
    double elapsed = MPI_Wtime() - start;
    double local = 0.0, sum;
    for (long r = 1; r <= rows; r++)
        for (long j = 0; j < m; j++) local += u[r * m + j];
    MPI_Reduce(&local, &sum, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
    if (rank == 0) printf("heat2d-c time_s=%.6f checksum=%.9e\n", elapsed, sum);
    free(u);
    free(next);
    MPI_Finalize();
    return 0;
}
