/* test_grid_score.c: liif_grid_score (core/eval/metrics.c) on synthetic images: about 1 for an image with nothing
 * repeated per LR cell, well above for a pattern of one 8-bit level repeated in every cell (integer and fractional
 * cells, Y and RGB, with a shave), unmoved by a pattern of another period, NaN without a cell frequency, and its
 * argument errors. */
#include <string.h>

#include "metrics.h"
#include "testutil.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static double uniform(void) /* [0, 1) */
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

/* one plane of white noise blurred twice by a box of 2r + 1 px (separable, wrapping around) */
static void blurred_noise(double *pl, double *tmp, int w, int h, int r)
{
    for (size_t i = 0; i < (size_t)w * h; i++) pl[i] = uniform() - 0.5;
    for (int pass = 0; pass < 2; pass++) {
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                double a = 0.0;
                for (int k = -r; k <= r; k++) a += pl[(size_t)y * w + (x + k + w) % w];
                tmp[(size_t)y * w + x] = a / (2 * r + 1);
            }
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                double a = 0.0;
                for (int k = -r; k <= r; k++) a += tmp[(size_t)((y + k + h) % h) * w + x];
                pl[(size_t)y * w + x] = a / (2 * r + 1);
            }
    }
}

/* A w x h RGB "photograph" with a continuous spectrum falling with frequency, as natural images' do: white noise
 * blurred at six scales (boxes of 1 to 33 px), each scale's amplitude growing with its size (the finest: about 0.7 of
 * an 8-bit level), around grey; each channel a little different. */
static float *photo(int w, int h)
{
    float *img = calloc(3 * (size_t)w * h, sizeof(float));
    double *pl = malloc(sizeof(double) * (size_t)w * h), *tmp = malloc(sizeof(double) * (size_t)w * h);
    for (int o = 0; o < 6; o++) {
        int r = 1 << o >> 1; /* 0, 1, 2, 4, 8, 16 */
        blurred_noise(pl, tmp, w, h, r);
        for (int c = 0; c < 3; c++)
            for (size_t i = 0; i < (size_t)w * h; i++)
                img[i * 3 + c] += (float)(0.01 * (1 << o) * pl[i] * (c == 1 ? 1.0 : 0.9));
    }
    for (size_t i = 0; i < 3 * (size_t)w * h; i++) img[i] += 0.5f;
    free(pl);
    free(tmp);
    return img;
}

/* img + a pattern of `levels` 8-bit levels that is a function of the position within a cell of period_x x period_y
 * px (u, v: the position in cells, their fractions the place in the cell), the same in every cell */
static float *with_pattern(const float *img, int w, int h, double period_x, double period_y, double levels)
{
    float *out = malloc(sizeof(float) * 3 * (size_t)w * h);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double u = (x + 0.5) / period_x, v = (y + 0.5) / period_y;
            u -= floor(u), v -= floor(v);
            double p = cos(2.0 * M_PI * u) * cos(2.0 * M_PI * v) + (u < 0.5 ? 0.5 : -0.5) + 0.3 * sin(2.0 * M_PI * v);
            for (int c = 0; c < 3; c++) {
                size_t i = ((size_t)y * w + x) * 3 + c;
                out[i] = img[i] + (float)(levels / 255.0 / 1.8 * p); /* p spans about 1.8 */
            }
        }
    return out;
}

static double score(const float *img, int w, int h, int lw, int lh, int shave, liif_metric_channels ch)
{
    double s = NAN;
    liif_error err;
    if (liif_grid_score(img, w, h, lw, lh, shave, ch, &s, &err)) {
        printf("FAIL liif_grid_score: %s\n", err.msg);
        tu_failures++;
    }
    return s;
}

int main(void)
{
    /* x3: 64 x 48 cells of 3 px */
    int lw = 64, lh = 48, w = 192, h = 144;
    float *base = photo(w, h), *one = with_pattern(base, w, h, 3, 3, 1), *four = with_pattern(base, w, h, 3, 3, 4);
    float *other = with_pattern(base, w, h, 3.7, 3.7, 4);
    double s_base = score(base, w, h, lw, lh, 3, LIIF_METRIC_Y), s_one = score(one, w, h, lw, lh, 3, LIIF_METRIC_Y);
    double s_four = score(four, w, h, lw, lh, 3, LIIF_METRIC_Y), s_other = score(other, w, h, lw, lh, 3, LIIF_METRIC_Y);
    printf("x3, Y, shave 3: photograph %.3f, + 1 level per cell %.3f, + 4 levels %.3f, + 4 levels at 3.7 px %.3f\n",
           s_base, s_one, s_four, s_other);
    CHECK(s_base > 0.6 && s_base < 1.5, "no pattern: %.3f, want about 1", s_base);
    CHECK(s_one > 1.8 && s_one > 1.5 * s_base, "a pattern of one level in every cell: %.3f", s_one);
    CHECK(s_four > 4 * s_one, "four levels (%.3f) not far above one (%.3f)", s_four, s_one);
    CHECK(s_other < 1.3 * s_base + 0.2, "a pattern of another period moved the score: %.3f (photograph %.3f)", s_other,
          s_base);
    double s_rgb = score(one, w, h, lw, lh, 3, LIIF_METRIC_RGB), s_shave = score(one, w, h, lw, lh, 9, LIIF_METRIC_Y);
    printf("the same at one level: RGB %.3f, Y with a 9 px shave %.3f\n", s_rgb, s_shave);
    CHECK(s_rgb > 1.8, "RGB: %.3f (Y %.3f)", s_rgb, s_one);
    CHECK(s_shave > 1.8, "with a 9 px shave: %.3f", s_shave);
    free(base); free(one); free(four); free(other);

    /* x3.5: 64 x 48 cells of 3.5 px (224 x 168), the pattern following the cells' fractional grid; and x2 */
    int ws = 224, hs = 168;
    base = photo(ws, hs), one = with_pattern(base, ws, hs, 3.5, 3.5, 1);
    s_base = score(base, ws, hs, lw, lh, 4, LIIF_METRIC_Y), s_one = score(one, ws, hs, lw, lh, 4, LIIF_METRIC_Y);
    printf("x3.5: photograph %.3f, + 1 level per cell %.3f\n", s_base, s_one);
    CHECK(s_base > 0.6 && s_base < 1.5, "x3.5, no pattern: %.3f", s_base);
    CHECK(s_one > 1.8 && s_one > 1.5 * s_base, "x3.5, one level per cell: %.3f", s_one);
    free(base); free(one);
    base = photo(128, 96), one = with_pattern(base, 128, 96, 2, 2, 1);
    s_base = score(base, 128, 96, lw, lh, 2, LIIF_METRIC_Y), s_one = score(one, 128, 96, lw, lh, 2, LIIF_METRIC_Y);
    printf("x2: photograph %.3f, + 1 level per cell %.3f\n", s_base, s_one);
    CHECK(s_base > 0.6 && s_base < 1.5, "x2, no pattern: %.3f", s_base);
    CHECK(s_one > 1.8 && s_one > 1.5 * s_base, "x2, one level per cell: %.3f", s_one);

    /* no cell frequency: cells of one pixel (x1), or a region too short for a peak and its neighbours */
    double s1 = score(base, 128, 96, 128, 96, 0, LIIF_METRIC_Y), s_short = score(base, 128, 96, 64, 48, 39, LIIF_METRIC_Y);
    printf("x1: %g; x2 with 50 x 18 px left: %g\n", s1, s_short);
    CHECK(isnan(s1), "cells of one pixel: %g, want NaN", s1);
    CHECK(!isnan(s_short), "a 50 x 18 region: NaN, want a score along x");
    float *small = malloc(sizeof(float) * 3 * 19 * 19);
    for (int y = 0; y < 19; y++) memcpy(small + y * 19 * 3, base + (size_t)y * 128 * 3, sizeof(float) * 19 * 3);
    s_short = score(small, 19, 19, 9, 9, 0, LIIF_METRIC_Y);
    printf("a 19 x 19 image of 9 x 9 cells: %g\n", s_short);
    CHECK(isnan(s_short), "a 19 px region: %g, want NaN", s_short);
    free(small);

    /* errors, one line each */
    liif_error err;
    double s = 0;
    CHECK(liif_grid_score(NULL, 128, 96, 64, 48, 0, LIIF_METRIC_Y, &s, &err) == LIIF_ERR_ARG, "NULL image accepted");
    CHECK(liif_grid_score(base, 128, 96, 0, 48, 0, LIIF_METRIC_Y, &s, &err) == LIIF_ERR_ARG, "LR width 0 accepted");
    CHECK(liif_grid_score(base, 128, 96, 129, 48, 0, LIIF_METRIC_Y, &s, &err) == LIIF_ERR_ARG, "LR wider than HR");
    CHECK(liif_grid_score(base, 128, 96, 64, 48, 48, LIIF_METRIC_Y, &s, &err) == LIIF_ERR_ARG, "shave of the whole");
    CHECK(strchr(err.msg, '\n') == NULL && strlen(err.msg) > 0, "error message: '%s'", err.msg);
    free(base); free(one);

    printf(tu_failures ? "FAILED (%d)\n" : "all passed\n", tu_failures);
    return tu_failures != 0;
}
