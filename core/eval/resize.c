/* resize.c: Pillow 9.4's antialiased bicubic resize (fixed point, 8-bit) and LIIF's float resize_fn. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "resize.h"

enum { RESIZE_PRECISION_BITS = 22 }; /* Pillow: 32 - 8 bits of value - 2 bits of headroom */

/* Keys cubic convolution kernel, a = -0.5 (Pillow's bicubic_filter). */
static double resize_cubic(double x)
{
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
    return 0.0;
}

/* Taps of one axis, n input samples -> m outputs: for output o, first input xmin[o], count
 * taps, weights k[o * ksize + t] in fixed point. Same arithmetic as Pillow's
 * precompute_coeffs + normalize_coeffs_8bpc (doubles, C truncating casts). */
typedef struct {
    int ksize;
    int *first, *count; /* [m] */
    int32_t *k;         /* [m, ksize] */
} resize_taps;

static void resize_taps_free(resize_taps *t)
{
    free(t->first);
    free(t->count);
    free(t->k);
}

static int resize_taps_init(resize_taps *t, int n, int m)
{
    double scale = (double)n / m;
    double fs = scale < 1.0 ? 1.0 : scale;
    double support = 2.0 * fs; /* bicubic support 2, widened when shrinking */
    int ksize = (int)ceil(support) * 2 + 1;
    t->ksize = ksize;
    t->first = malloc(sizeof(int) * (size_t)m);
    t->count = malloc(sizeof(int) * (size_t)m);
    t->k = calloc((size_t)m * (size_t)ksize, sizeof(int32_t));
    double *w = malloc(sizeof(double) * (size_t)ksize);
    if (!t->first || !t->count || !t->k || !w) {
        free(w);
        resize_taps_free(t);
        return 0;
    }
    double ss = 1.0 / fs;
    for (int o = 0; o < m; o++) {
        double center = (o + 0.5) * scale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > n) xmax = n;
        int count = xmax - xmin;
        double sum = 0.0;
        for (int i = 0; i < count; i++) {
            w[i] = resize_cubic((i + xmin - center + 0.5) * ss);
            sum += w[i];
        }
        int32_t *k = t->k + (size_t)o * ksize;
        for (int i = 0; i < count; i++) {
            double v = sum != 0.0 ? w[i] / sum : w[i];
            double f = v * (1 << RESIZE_PRECISION_BITS);
            k[i] = v < 0 ? (int32_t)(-0.5 + f) : (int32_t)(0.5 + f);
        }
        t->first[o] = xmin;
        t->count[o] = count;
    }
    free(w);
    return 1;
}

/* Pillow's clip8: round-half-up already in acc (2^21 added), shift, clamp. */
static inline uint8_t resize_clip8(int32_t acc)
{
    if (acc >= (1 << RESIZE_PRECISION_BITS << 8)) return 255;
    if (acc <= 0) return 0;
    return (uint8_t)(acc >> RESIZE_PRECISION_BITS);
}

/* Width pass: src (h, sw, c) -> dst (h, dw, c). */
static void resize_pass_h(const uint8_t *src, int sw, int h, int c, uint8_t *dst, int dw,
                          const resize_taps *t)
{
    for (int y = 0; y < h; y++) {
        const uint8_t *row = src + (size_t)y * sw * c;
        uint8_t *out = dst + (size_t)y * dw * c;
        for (int x = 0; x < dw; x++) {
            const int32_t *k = t->k + (size_t)x * t->ksize;
            const uint8_t *p = row + (size_t)t->first[x] * c;
            for (int ch = 0; ch < c; ch++) {
                int32_t acc = 1 << (RESIZE_PRECISION_BITS - 1);
                for (int i = 0; i < t->count[x]; i++) acc += (int32_t)p[(size_t)i * c + ch] * k[i];
                out[(size_t)x * c + ch] = resize_clip8(acc);
            }
        }
    }
}

/* Height pass: src (sh, w, c) -> dst (dh, w, c). */
static void resize_pass_v(const uint8_t *src, int w, int c, uint8_t *dst, int dh,
                          const resize_taps *t)
{
    size_t row = (size_t)w * c;
    for (int y = 0; y < dh; y++) {
        const int32_t *k = t->k + (size_t)y * t->ksize;
        const uint8_t *base = src + (size_t)t->first[y] * row;
        uint8_t *out = dst + (size_t)y * row;
        for (size_t j = 0; j < row; j++) {
            int32_t acc = 1 << (RESIZE_PRECISION_BITS - 1);
            for (int i = 0; i < t->count[y]; i++) acc += (int32_t)base[(size_t)i * row + j] * k[i];
            out[j] = resize_clip8(acc);
        }
    }
}

static liif_status resize_check(const void *src, int sw, int sh, int channels, const void *dst,
                                int dw, int dh, liif_error *err)
{
    if (!src || !dst)
        return liif_error_set(err, LIIF_ERR_ARG, "bicubic resize: NULL image");
    if (channels < 1 || channels > 4)
        return liif_error_set(err, LIIF_ERR_ARG, "bicubic resize: %d channels (1 to 4 allowed)",
                              channels);
    if (sw < 1 || sh < 1 || dw < 1 || dh < 1 || sw > LIIF_MAX_SIDE || sh > LIIF_MAX_SIDE ||
        dw > LIIF_MAX_SIDE || dh > LIIF_MAX_SIDE)
        return liif_error_set(err, LIIF_ERR_ARG,
                              "bicubic resize: size %dx%d -> %dx%d (sides 1 to %d allowed)", sw,
                              sh, dw, dh, LIIF_MAX_SIDE);
    return LIIF_OK;
}

liif_status liif_resize_bicubic_u8_ex(const uint8_t *src, int sw, int sh, int channels,
                                      uint8_t *dst, int dw, int dh, uint8_t *hpass,
                                      liif_error *err)
{
    liif_status st = resize_check(src, sw, sh, channels, dst, dw, dh, err);
    if (st != LIIF_OK) return st;
    int c = channels;
    size_t mid_n = (size_t)sh * dw * c;
    uint8_t *mid = NULL;
    resize_taps th = {0}, tv = {0};
    st = LIIF_ERR_NOMEM;
    if (sw != dw && !resize_taps_init(&th, sw, dw)) goto done;
    if (sh != dh && !resize_taps_init(&tv, sh, dh)) goto done;
    /* Pillow runs the width pass only on the rows the height pass reads; computing every
     * row gives the same bytes on those rows and a complete intermediate for hpass. */
    const uint8_t *h_out = src;
    if (sw != dw) {
        uint8_t *target = (sh == dh) ? dst : (hpass ? hpass : (mid = malloc(mid_n)));
        if (!target) goto done;
        resize_pass_h(src, sw, sh, c, target, dw, &th);
        h_out = target;
        if (hpass && target != hpass) memcpy(hpass, target, mid_n);
    } else if (hpass) {
        memcpy(hpass, src, mid_n);
    }
    if (sh != dh)
        resize_pass_v(h_out, dw, c, dst, dh, &tv);
    else if (sw == dw)
        memcpy(dst, src, mid_n);
    st = LIIF_OK;
done:
    free(mid);
    resize_taps_free(&th);
    resize_taps_free(&tv);
    if (st == LIIF_ERR_NOMEM)
        liif_error_set(err, st, "bicubic resize: out of memory for %dx%d -> %dx%d", sw, sh, dw,
                       dh);
    return st;
}

liif_status liif_resize_bicubic_u8(const uint8_t *src, int sw, int sh, int channels, uint8_t *dst,
                                   int dw, int dh, liif_error *err)
{
    return liif_resize_bicubic_u8_ex(src, sw, sh, channels, dst, dw, dh, NULL, err);
}

liif_status liif_resize_bicubic_f32(const float *src, int sw, int sh, int channels, float *dst,
                                    int dw, int dh, liif_error *err)
{
    liif_status st = resize_check(src, sw, sh, channels, dst, dw, dh, err);
    if (st != LIIF_OK) return st;
    size_t n_in = (size_t)sw * sh * channels, n_out = (size_t)dw * dh * channels;
    uint8_t *a = malloc(n_in), *b = malloc(n_out);
    if (!a || !b) {
        free(a);
        free(b);
        return liif_error_set(err, LIIF_ERR_NOMEM, "bicubic resize: out of memory for %dx%d -> %dx%d",
                              sw, sh, dw, dh);
    }
    for (size_t i = 0; i < n_in; i++) {
        float v = src[i] * 255.0f; /* torch: x.mul(255).byte(), float32 product, truncated */
        a[i] = v >= 255.0f ? 255 : (v > 0.0f ? (uint8_t)v : 0); /* NaN -> 0 */
    }
    st = liif_resize_bicubic_u8(a, sw, sh, channels, b, dw, dh, err);
    if (st == LIIF_OK)
        for (size_t i = 0; i < n_out; i++) dst[i] = (float)b[i] / 255.0f;
    free(a);
    free(b);
    return st;
}
