/* testutil.h: tiny helpers shared by the C tests: checks that count failures, max |a-b|, golden lookup. */
#ifndef LIIF_TESTUTIL_H
#define LIIF_TESTUTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static int tu_failures;

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            tu_failures++;                                                     \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                        \
            printf(__VA_ARGS__);                                               \
            printf("\n");                                                      \
        }                                                                      \
    } while (0)

/* max |a[i] - b[i]| over n values; NaN anywhere counts as infinite. */
static inline double tu_maxdiff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d != d) return INFINITY;
        if (d > m) m = d;
    }
    return m;
}

/* max |a[i]| over n values. */
static inline double tu_maxabs(const float *a, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fabs(a[i]) > m ? fabs(a[i]) : m;
    return m;
}

/* max |diff| between a region's RGB pixels (rw x rh, rows rw*3 floats apart) and the same crop, at
 * (rx, ry), of a whole RGB image W pixels wide. */
static inline double tu_region_maxdiff(const float *part, const float *whole, int W, int rx, int ry, int rw, int rh)
{
    double d = 0;
    for (int y = 0; y < rh; y++)
        d = fmax(d, tu_maxdiff(part + (size_t)y * rw * 3, whole + ((size_t)(y + ry) * W + rx) * 3, (size_t)rw * 3));
    return d;
}

/* Report a comparison and count it as a failure past tol. */
static inline void tu_close(const char *what, const float *got, const float *want, size_t n, double tol)
{
    double d = tu_maxdiff(got, want, n);
    printf("%-58s max|diff| %.3g (tol %.1g) %s\n", what, d, tol, d <= tol ? "ok" : "FAIL");
    if (!(d <= tol)) tu_failures++;
}

/* Exit 77 (meson's skip) with a reason when dir is missing. */
static inline void tu_require_dir(const char *dir)
{
    struct stat st;
    if (!dir || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        printf("SKIP: golden folder %s is absent\n", dir ? dir : "(none given)");
        exit(77);
    }
}

static inline int tu_finish(const char *name)
{
    printf("%s: %s (%d failure%s)\n", name, tu_failures ? "FAILED" : "passed", tu_failures, tu_failures == 1 ? "" : "s");
    return tu_failures ? 1 : 0;
}

#endif
