/* train_check.h: the GPU training tests' comparisons (tests/test_cuda_train.c, tests/test_cuda_train_gan.c):
 * printed, counted in tu_failures. */
#ifndef LIIF_TESTS_GPU_TRAIN_CHECK_H
#define LIIF_TESTS_GPU_TRAIN_CHECK_H

#include <math.h>
#include <stdio.h>

#include "testutil.h"

/* Normalised error max|got - want| / max|want| <= tol (NaN fails), printed; returns the normalised error. */
static double check_norm(const char *what, const float *got, const float *want, size_t n, double tol)
{
    double d = tu_maxdiff(got, want, n), mag = tu_maxabs(want, n);
    double nerr = d / (mag > 1e-30 ? mag : 1e-30);
    int ok = nerr <= tol;
    printf("  %-58s max|diff| %.3g  norm err %.3g (tol %.0e) %s\n", what, d, nerr, tol, ok ? "ok" : "FAIL");
    if (!ok) tu_failures++;
    return nerr;
}

/* Parameters after Adam steps: an element whose gradient is near zero may flip the sign of its step (Adam's
 * first steps move by about lr * sign(g)), so: all within 2.1 * lr * steps, at most n / far_div beyond 1e-6. */
static void check_params(const char *what, const float *got, const float *want, size_t n, double lr, int steps,
                         size_t far_div)
{
    size_t far = 0;
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]);
        if (e != e) e = INFINITY;
        far += e > 1e-6;
        worst = e > worst ? e : worst;
    }
    int ok = worst <= 2.1 * lr * steps && far <= n / far_div;
    printf("  %-58s max|diff| %.3g, %zu of %zu beyond 1e-6 %s\n", what, worst, far, n, ok ? "ok" : "FAIL");
    if (!ok) tu_failures++;
}

#endif
