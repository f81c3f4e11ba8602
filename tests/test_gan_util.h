/* test_gan_util.h: helpers of the LIIF-GAN component tests: golden access, the README's weight PRNG, gradient criteria. */
#ifndef LIIF_TEST_GAN_UTIL_H
#define LIIF_TEST_GAN_UTIL_H

#include <stdint.h>
#include <string.h>
#include <time.h>

#include "safetensors.h"
#include "testutil.h"
#include "vgg.h"

static const char *tg_dir; /* .../golden/components */

static inline liif_st_file *tg_open(const char *file)
{
    char path[2048];
    liif_st_file *f;
    liif_error err;
    if (snprintf(path, sizeof path, "%s/%s", tg_dir, file) >= (int)sizeof path) {
        printf("FAIL golden path too long: %s/%s\n", tg_dir, file);
        exit(1);
    }
    if (liif_st_open(path, &f, &err)) {
        printf("FAIL %s\n", err.msg);
        exit(1);
    }
    return f;
}

/* The float32 tensor called name (exits when absent). */
static inline const float *tg_f32(const liif_st_file *f, const char *name, size_t *numel)
{
    const liif_st_tensor *t = liif_st_find(f, name);
    if (!t || t->dtype != LIIF_DT_F32) {
        printf("FAIL %s: no F32 tensor %s\n", liif_st_path(f), name);
        exit(1);
    }
    if (numel) *numel = (size_t)t->numel;
    return t->data; /* the mapping is page aligned and tensors of this folder start 4-aligned */
}

/* The F64 checksum [4] called name, copied out: the mapping gives no 8-byte alignment. */
static inline const double *tg_f64(const liif_st_file *f, const char *name, double out[4])
{
    const liif_st_tensor *t = liif_st_find(f, name);
    if (!t || t->dtype != LIIF_DT_F64 || t->numel != 4) {
        printf("FAIL %s: no F64 [4] tensor %s\n", liif_st_path(f), name);
        exit(1);
    }
    memcpy(out, t->data, 4 * sizeof(double));
    return out;
}

static inline double tg_maxabs(const float *a, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fabs(a[i]) > m ? fabs(a[i]) : m;
    return m;
}

/* The README's gradient criterion: max|diff| <= rel * max|want| + abs. Returns the ratio
 * max|diff| / max|want| for the report. */
static inline double tg_grad(const char *what, const float *got, const float *want, size_t n, double rel, double abs_tol)
{
    double d = tu_maxdiff(got, want, n), m = tg_maxabs(want, n), tol = rel * m + abs_tol;
    int ok = d <= tol;
    printf("%-50s max|diff| %.3g  max|g| %.3g  ratio %.2g %s\n", what, d, m, m > 0 ? d / m : d, ok ? "ok" : "FAIL");
    if (!ok) tu_failures++;
    return m > 0 ? d / m : d;
}

static inline double tg_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---------------------------------------------------------------- README weight PRNG */

static inline uint64_t tg_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static inline uint64_t tg_fnv1a64(const char *s)
{
    uint64_t h = 0xCBF29CE484222325ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001B3ULL;
    }
    return h;
}

enum tg_prng_kind { TG_SYM, TG_POS, TG_GAMMA, TG_CONST };

static inline void tg_prng_fill(float *w, size_t n, uint64_t seed, const char *key, enum tg_prng_kind kind, double b)
{
    uint64_t base = tg_mix64(seed ^ tg_fnv1a64(key));
    for (size_t i = 0; i < n; i++) {
        uint64_t x = tg_mix64(base + (uint64_t)(i + 1) * 0x9E3779B97F4A7C15ULL);
        double u = (double)(x >> 40) * (1.0 / 16777216.0);
        switch (kind) {
        case TG_SYM: w[i] = (float)(b * (2.0 * u - 1.0)); break;
        case TG_POS: w[i] = (float)(b * u); break;
        case TG_GAMMA: w[i] = (float)(0.5 + u); break;
        case TG_CONST: w[i] = (float)b; break;
        }
    }
}

/* Prove a regenerated tensor: its first 8 values exactly equal wfirst8.<key>, its checksum
 * [sum, sum|x|, sum x^2, max|x|] within rtol 1e-9 of wsum.<key>. */
static inline void tg_check_regen(const liif_st_file *f, const char *key, const float *w, size_t n)
{
    char name[128];
    snprintf(name, sizeof name, "wfirst8.%s", key);
    size_t n8;
    const float *first = tg_f32(f, name, &n8);
    int bad = memcmp(first, w, (n8 < n ? n8 : n) * sizeof(float)) != 0;
    snprintf(name, sizeof name, "wsum.%s", key);
    double want_buf[4];
    const double *want = tg_f64(f, name, want_buf);
    double got[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        got[0] += w[i];
        got[1] += fabs(w[i]);
        got[2] += (double)w[i] * w[i];
        got[3] = fabs(w[i]) > got[3] ? fabs(w[i]) : got[3];
    }
    for (int q = 0; q < 4; q++) bad |= fabs(got[q] - want[q]) > 1e-9 * fabs(want[q]) + 1e-12;
    if (bad) {
        tu_failures++;
        printf("FAIL regenerated %s differs from wfirst8/wsum\n", key);
    }
}

/* Compare a full gradient with a checksum [sum, sum|x|, sum x^2, max|x|]: sum|x| and max|x|
 * within rel of the stored ones (the sum itself may cancel). */
static inline void tg_check_sum(const char *what, const float *g, size_t n, const double *want, double rel)
{
    double s1 = 0, s2 = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        s1 += fabs(g[i]);
        s2 += (double)g[i] * g[i];
        mx = fabs(g[i]) > mx ? fabs(g[i]) : mx;
    }
    double r1 = fabs(s1 - want[1]) / want[1], r2 = fabs(s2 - want[2]) / want[2], r3 = fabs(mx - want[3]) / want[3];
    int ok = r1 <= rel && r2 <= 2 * rel && r3 <= rel;
    printf("%-50s checksum rel |x| %.2g, x^2 %.2g, max %.2g %s\n", what, r1, r2, r3, ok ? "ok" : "FAIL");
    if (!ok) tu_failures++;
}

/* The README's PRNG weights of vgg19_full (seed 1) into v, proved against the file's wfirst8 / wsum. */
static inline void tg_vgg_regen(gan_vgg *v, const liif_st_file *f)
{
    char name[64];
    for (int i = 0; i <= v->last; i++) {
        const gan_vgg_module *m = &v->mod[i];
        if (m->kind != GAN_VGG_CONV) continue;
        snprintf(name, sizeof name, "features.%d.weight", i);
        size_t nw = (size_t)m->oc * m->ic * 9;
        tg_prng_fill(gan_vgg_weight(v, i), nw, 1, name, TG_SYM, sqrt(6.0 / (double)(m->oc * 9)));
        tg_check_regen(f, name, gan_vgg_weight(v, i), nw);
        snprintf(name, sizeof name, "features.%d.bias", i);
        tg_prng_fill(gan_vgg_bias(v, i), (size_t)m->oc, 1, name, TG_SYM, 0.05);
        tg_check_regen(f, name, gan_vgg_bias(v, i), (size_t)m->oc);
    }
}

#endif
