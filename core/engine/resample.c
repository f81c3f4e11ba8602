/* resample.c: output-size rules (scale -> size, limits) and bicubic resampling of one channel. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "liif.h"

/* ------------------------------------------------------------ output size */

liif_status liif_check_size(int in_w, int in_h, int out_w, int out_h, liif_error *err)
{
    if (in_w < 1 || in_h < 1)
        return liif_error_set(err, LIIF_ERR_ARG, "input size %dx%d is empty", in_w, in_h);
    if (out_w < 1 || out_h < 1)
        return liif_error_set(err, LIIF_ERR_ARG,
                              "output size %dx%d is empty: each side must be at least 1 px",
                              out_w, out_h);
    if (out_w > LIIF_MAX_SIDE || out_h > LIIF_MAX_SIDE)
        return liif_error_set(err, LIIF_ERR_ARG,
                              "output size %dx%d exceeds the limit of %d px per side", out_w,
                              out_h, LIIF_MAX_SIDE);
    int64_t pixels = (int64_t)out_w * out_h;
    if (pixels > LIIF_MAX_PIXELS)
        return liif_error_set(err, LIIF_ERR_ARG,
                              "output size %dx%d (%lld pixels) exceeds the limit of %lld pixels",
                              out_w, out_h, (long long)pixels, (long long)LIIF_MAX_PIXELS);
    return LIIF_OK;
}

/* One side: round(n * s), halves away from zero (C's round()). The product is checked
 * against the limit in double first, so a huge scale never overflows the int. */
static liif_status side_for_scale(int n, double s, const char *axis, int *out, liif_error *err)
{
    if (!isfinite(s) || s <= 0)
        return liif_error_set(err, LIIF_ERR_ARG, "scale must be a positive finite number, got %g",
                              s);
    double side = round((double)n * s);
    if (side > LIIF_MAX_SIDE)
        return liif_error_set(err, LIIF_ERR_ARG,
                              "scale %g gives an output %s of %.6g px, over the limit of %d px "
                              "per side",
                              s, axis, side, LIIF_MAX_SIDE);
    if (side < 1)
        return liif_error_set(err, LIIF_ERR_ARG,
                              "scale %g gives an output %s of 0 px (input %s is %d px)", s, axis,
                              axis, n);
    *out = (int)side;
    return LIIF_OK;
}

liif_status liif_size_for_scale(int in_w, int in_h, double sx, double sy, int *out_w, int *out_h,
                                liif_error *err)
{
    if (!out_w || !out_h)
        return liif_error_set(err, LIIF_ERR_ARG, "liif_size_for_scale: NULL output pointer");
    if (in_w < 1 || in_h < 1)
        return liif_error_set(err, LIIF_ERR_ARG, "input size %dx%d is empty", in_w, in_h);
    int w = 0, h = 0;
    liif_status s = side_for_scale(in_w, sx, "width", &w, err);
    if (s == LIIF_OK)
        s = side_for_scale(in_h, sy, "height", &h, err);
    if (s == LIIF_OK)
        s = liif_check_size(in_w, in_h, w, h, err);
    if (s != LIIF_OK)
        return s;
    *out_w = w;
    *out_h = h;
    return LIIF_OK;
}

/* --------------------------------------------------------------- bicubic */

/* Keys cubic convolution kernel with a = -0.5 (Catmull-Rom), for |x| < 2. */
static double cubic_weight(double x)
{
    const double a = -0.5;
    x = fabs(x);
    if (x <= 1)
        return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2)
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
    return 0;
}

/* The 4 taps of one output index k on an axis of n_in input and n_out output samples:
 * the centre maps to t = (k + 0.5) * n_in / n_out - 0.5 (the model's query centre);
 * indices are clamped to the edge. */
typedef struct {
    int idx[4];
    float w[4];
} taps;

static taps taps_for(int k, int n_in, int n_out)
{
    double t = ((double)k + 0.5) * n_in / n_out - 0.5;
    double f = floor(t);
    taps tp;
    for (int i = 0; i < 4; i++) {
        long j = (long)f - 1 + i;
        tp.idx[i] = j < 0 ? 0 : j >= n_in ? n_in - 1 : (int)j;
        tp.w[i] = (float)cubic_weight(t - (double)j);
    }
    return tp;
}

static liif_status check_resample_args(const float *in, int in_w, int in_h, size_t in_stride,
                                       int in_channels, int in_ch, const liif_region *r,
                                       const float *out, size_t out_stride, int out_channels,
                                       int out_ch, liif_error *err)
{
    if (!in || !out || !r)
        return liif_error_set(err, LIIF_ERR_ARG, "bicubic resample: NULL image or region");
    if (in_w < 1 || in_h < 1)
        return liif_error_set(err, LIIF_ERR_ARG, "bicubic resample: input size %dx%d is empty",
                              in_w, in_h);
    if (in_channels < 1 || in_ch < 0 || in_ch >= in_channels)
        return liif_error_set(err, LIIF_ERR_ARG,
                              "bicubic resample: input channel %d of %d does not exist", in_ch,
                              in_channels);
    if (out_channels < 1 || out_ch < 0 || out_ch >= out_channels)
        return liif_error_set(err, LIIF_ERR_ARG,
                              "bicubic resample: output channel %d of %d does not exist", out_ch,
                              out_channels);
    if (in_stride < (size_t)in_channels * (size_t)in_w)
        return liif_error_set(err, LIIF_ERR_ARG,
                              "bicubic resample: input stride %zu is below %d x %d floats",
                              in_stride, in_w, in_channels);
    if (r->out_w < 1 || r->out_h < 1)
        return liif_error_set(err, LIIF_ERR_ARG, "bicubic resample: output size %dx%d is empty",
                              r->out_w, r->out_h);
    if (r->w < 1 || r->h < 1 || r->x < 0 || r->y < 0 || r->x > r->out_w - r->w ||
        r->y > r->out_h - r->h)
        return liif_error_set(err, LIIF_ERR_ARG,
                              "bicubic resample: region %dx%d at (%d,%d) is outside the %dx%d "
                              "output",
                              r->w, r->h, r->x, r->y, r->out_w, r->out_h);
    if (out_stride < (size_t)out_channels * (size_t)r->w)
        return liif_error_set(err, LIIF_ERR_ARG,
                              "bicubic resample: output stride %zu is below %d x %d floats",
                              out_stride, r->w, out_channels);
    return LIIF_OK;
}

liif_status liif_resample_bicubic_region(const float *in, int in_w, int in_h, size_t in_stride,
                                         int in_channels, int in_ch, const liif_region *r,
                                         float *out, size_t out_stride, int out_channels,
                                         int out_ch, liif_error *err)
{
    liif_status s = check_resample_args(in, in_w, in_h, in_stride, in_channels, in_ch, r, out,
                                        out_stride, out_channels, out_ch, err);
    if (s != LIIF_OK)
        return s;

    /* column taps of the region, computed once: (r->w) */
    taps *cols = malloc((size_t)r->w * sizeof *cols);
    if (!cols)
        return liif_error_set(err, LIIF_ERR_NOMEM,
                              "bicubic resample: out of memory for %d column weights", r->w);
    for (int c = 0; c < r->w; c++)
        cols[c] = taps_for(r->x + c, in_w, r->out_w);

    for (int row = 0; row < r->h; row++) {
        taps ty = taps_for(r->y + row, in_h, r->out_h);
        const float *src[4];
        for (int i = 0; i < 4; i++)
            src[i] = in + (size_t)ty.idx[i] * in_stride + in_ch;
        float *dst = out + (size_t)row * out_stride + out_ch;
        for (int c = 0; c < r->w; c++) {
            const taps *tx = &cols[c];
            float acc = 0;
            for (int i = 0; i < 4; i++) {
                float line = 0; /* horizontal pass on input row ty.idx[i] */
                for (int j = 0; j < 4; j++)
                    line += tx->w[j] * src[i][(size_t)tx->idx[j] * in_channels];
                acc += ty.w[i] * line;
            }
            dst[(size_t)c * out_channels] = acc < 0 ? 0 : acc > 1 ? 1 : acc;
        }
    }
    free(cols);
    return LIIF_OK;
}
