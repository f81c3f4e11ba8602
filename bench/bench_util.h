/* bench_util.h: wall-clock time and the machine's own sgemm rate, the baseline every benchmark prints beside its figures. */
#ifndef LIIF_BENCH_UTIL_H
#define LIIF_BENCH_UTIL_H

#include <dnnl.h>
#include <omp.h>
#include <stdlib.h>
#include <time.h>

static inline double bench_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Best-of-reps whole-team oneDNN sgemm rate in GFLOP/s for an M x N x K product (A [M,K], B^T [N,K]),
 * after one warm-up run. The thread count stays within OMP_THREAD_LIMIT (oneDNN computes only part
 * of a product when it plans for more threads than it gets). */
static inline double bench_sgemm_gflops(int M, int N, int K, int threads, int reps)
{
    float *a = malloc((size_t)M * K * 4), *b = malloc((size_t)N * K * 4), *c = malloc((size_t)M * N * 4);
    for (size_t i = 0; i < (size_t)M * K; i++) a[i] = (float)(i % 13) * 0.01f;
    for (size_t i = 0; i < (size_t)N * K; i++) b[i] = (float)(i % 7) * 0.01f;
    int lim = omp_get_thread_limit();
    omp_set_num_threads(threads < lim ? threads : lim);
    double best = 1e30;
    for (int r = 0; r < reps + 1; r++) {
        double t = bench_now();
        dnnl_sgemm('N', 'T', M, N, K, 1.0f, a, K, b, K, 0.0f, c, N);
        t = bench_now() - t;
        if (r > 0 && t < best) best = t;
    }
    free(a); free(b); free(c);
    return 2.0 * M * N * K / best / 1e9;
}

#endif
