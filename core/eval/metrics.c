/* metrics.c: PSNR, SSIM (scikit-image's Gaussian SSIM), sharpness and detail PSNR on Y or RGB, and the evaluation LR rule. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "resize.h"

/* Y coefficients of MODEL.md 4 (BT.601 studio range, on [0,1] values, offset dropped). */
#define METRIC_YR (65.738 / 256.0)
#define METRIC_YG (129.057 / 256.0)
#define METRIC_YB (25.064 / 256.0)

enum { SSIM_RADIUS = 5, SSIM_WIN = 2 * SSIM_RADIUS + 1 }; /* int(3.5 * 1.5 + 0.5) = 5 */

liif_metric_channels liif_protocol_channels(liif_eval_protocol p)
{
    return p == LIIF_PROTOCOL_DIV2K ? LIIF_METRIC_RGB : LIIF_METRIC_Y;
}

int liif_protocol_shave(liif_eval_protocol p, double s)
{
    int c = (int)ceil(s);
    return p == LIIF_PROTOCOL_DIV2K ? c + 6 : c;
}

static liif_status metric_check(const float *sr, const float *hr, int w, int h, int shave,
                                int min_side, const char *what, liif_error *err)
{
    if (!sr || !hr) return liif_error_set(err, LIIF_ERR_ARG, "%s: NULL image", what);
    if (w < 1 || h < 1 || shave < 0)
        return liif_error_set(err, LIIF_ERR_ARG, "%s: bad size %dx%d or shave %d", what, w, h,
                              shave);
    if (w - 2 * shave < min_side || h - 2 * shave < min_side)
        return liif_error_set(err, LIIF_ERR_ARG,
                              "%s: %dx%d image minus a %d px border is smaller than %dx%d", what,
                              w, h, shave, min_side, min_side);
    return LIIF_OK;
}

/* The shaved region (rw x rh from (shave, shave)) of an RGB HWC image w wide as doubles: Y, or
 * channel c for RGB. */
static void shaved_plane(const float *img, int w, int shave, int rw, int rh, liif_metric_channels ch, int c,
                         double *out)
{
    for (int y = 0; y < rh; y++)
        for (int x = 0; x < rw; x++) {
            const float *p = img + ((size_t)(y + shave) * w + x + shave) * 3;
            out[(size_t)y * rw + x] =
                ch == LIIF_METRIC_Y ? METRIC_YR * p[0] + METRIC_YG * p[1] + METRIC_YB * p[2] : p[c];
        }
}

liif_status liif_psnr(const float *sr, const float *hr, int w, int h, int shave,
                      liif_metric_channels ch, double *psnr, liif_error *err)
{
    liif_status st = metric_check(sr, hr, w, h, shave, 1, "PSNR", err);
    if (st != LIIF_OK) return st;
    double sum = 0.0;
    size_t n = 0;
    for (int y = shave; y < h - shave; y++)
        for (int x = shave; x < w - shave; x++) {
            size_t i = ((size_t)y * w + x) * 3;
            double dr = (double)sr[i] - hr[i], dg = (double)sr[i + 1] - hr[i + 1],
                   db = (double)sr[i + 2] - hr[i + 2];
            if (ch == LIIF_METRIC_Y) {
                double d = dr * METRIC_YR + dg * METRIC_YG + db * METRIC_YB;
                sum += d * d;
                n++;
            } else {
                sum += dr * dr + dg * dg + db * db;
                n += 3;
            }
        }
    *psnr = -10.0 * log10(sum / (double)n);
    return LIIF_OK;
}

static void ssim_kernel(double g[SSIM_WIN])
{
    double sum = 0.0;
    for (int i = -SSIM_RADIUS; i <= SSIM_RADIUS; i++) {
        g[i + SSIM_RADIUS] = exp(-(double)(i * i) / (2.0 * 1.5 * 1.5));
        sum += g[i + SSIM_RADIUS];
    }
    for (int i = 0; i < SSIM_WIN; i++) g[i] /= sum;
}

liif_status liif_ssim_map_plane(const double *a, const double *b, int w, int h, double *map,
                                liif_error *err)
{
    if (w < SSIM_WIN || h < SSIM_WIN)
        return liif_error_set(err, LIIF_ERR_ARG, "SSIM: plane %dx%d is smaller than %dx%d", w, h,
                              SSIM_WIN, SSIM_WIN);
    double g[SSIM_WIN];
    ssim_kernel(g);
    int vw = w - 2 * SSIM_RADIUS, vh = h - 2 * SSIM_RADIUS;
    /* horizontal window sums of the five statistics: tmp[k] is (h, vw) */
    double *tmp = malloc(sizeof(double) * 5 * (size_t)h * vw);
    if (!tmp) return liif_error_set(err, LIIF_ERR_NOMEM, "SSIM: out of memory for %dx%d", w, h);
    size_t plane = (size_t)h * vw;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < vw; x++) {
            double s[5] = {0, 0, 0, 0, 0};
            for (int t = 0; t < SSIM_WIN; t++) {
                double p = a[(size_t)y * w + x + t], q = b[(size_t)y * w + x + t];
                s[0] += g[t] * p;
                s[1] += g[t] * q;
                s[2] += g[t] * p * p;
                s[3] += g[t] * q * q;
                s[4] += g[t] * p * q;
            }
            for (int k = 0; k < 5; k++) tmp[k * plane + (size_t)y * vw + x] = s[k];
        }
    const double c1 = 0.01 * 0.01, c2 = 0.03 * 0.03;
    for (int y = 0; y < vh; y++)
        for (int x = 0; x < vw; x++) {
            double s[5] = {0, 0, 0, 0, 0};
            for (int t = 0; t < SSIM_WIN; t++)
                for (int k = 0; k < 5; k++) s[k] += g[t] * tmp[k * plane + (size_t)(y + t) * vw + x];
            double ux = s[0], uy = s[1];
            double vx = s[2] - ux * ux, vy = s[3] - uy * uy, vxy = s[4] - ux * uy;
            map[(size_t)y * vw + x] = (2 * ux * uy + c1) * (2 * vxy + c2) /
                                      ((ux * ux + uy * uy + c1) * (vx + vy + c2));
        }
    free(tmp);
    return LIIF_OK;
}

liif_status liif_ssim(const float *sr, const float *hr, int w, int h, int shave,
                      liif_metric_channels ch, double *ssim, liif_error *err)
{
    liif_status st = metric_check(sr, hr, w, h, shave, SSIM_WIN, "SSIM", err);
    if (st != LIIF_OK) return st;
    int rw = w - 2 * shave, rh = h - 2 * shave;
    size_t n = (size_t)rw * rh, nm = (size_t)(rw - 2 * SSIM_RADIUS) * (rh - 2 * SSIM_RADIUS);
    double *a = malloc(sizeof(double) * n), *b = malloc(sizeof(double) * n),
           *map = malloc(sizeof(double) * nm);
    if (!a || !b || !map) {
        free(a); free(b); free(map);
        return liif_error_set(err, LIIF_ERR_NOMEM, "SSIM: out of memory for %dx%d", w, h);
    }
    int planes = ch == LIIF_METRIC_Y ? 1 : 3;
    double total = 0.0;
    for (int c = 0; c < planes && st == LIIF_OK; c++) {
        shaved_plane(sr, w, shave, rw, rh, ch, c, a);
        shaved_plane(hr, w, shave, rw, rh, ch, c, b);
        st = liif_ssim_map_plane(a, b, rw, rh, map, err);
        double sum = 0.0;
        for (size_t i = 0; i < nm; i++) sum += map[i];
        total += sum / (double)nm;
    }
    free(a); free(b); free(map);
    if (st == LIIF_OK) *ssim = total / planes;
    return st;
}

/* ------------------------------------------------------------ detail figures */

enum { DETAIL_RADIUS = 4, DETAIL_TAPS = 2 * DETAIL_RADIUS + 1 };

/* Index i mirrored into [0, n) as numpy's "symmetric" padding (edge repeated), for any n >= 1. */
static int mirror(int i, int n)
{
    for (;;) {
        if (i < 0) i = -i - 1;
        else if (i >= n) i = 2 * n - 1 - i;
        else return i;
    }
}

liif_status liif_highpass_plane(const double *in, int w, int h, double *out, liif_error *err)
{
    if (!in || !out || w < 1 || h < 1)
        return liif_error_set(err, LIIF_ERR_ARG, "high-pass: bad plane %dx%d", w, h);
    double g[DETAIL_TAPS], gs = 0.0;
    for (int k = -DETAIL_RADIUS; k <= DETAIL_RADIUS; k++) {
        g[k + DETAIL_RADIUS] = exp(-(double)(k * k) / (2.0 * 1.5 * 1.5));
        gs += g[k + DETAIL_RADIUS];
    }
    for (int k = 0; k < DETAIL_TAPS; k++) g[k] /= gs;
    double *tmp = malloc(sizeof(double) * (size_t)w * h);
    if (!tmp) return liif_error_set(err, LIIF_ERR_NOMEM, "high-pass: out of memory for %dx%d", w, h);
    for (int y = 0; y < h; y++) /* horizontal blur */
        for (int x = 0; x < w; x++) {
            double a = 0.0;
            for (int k = -DETAIL_RADIUS; k <= DETAIL_RADIUS; k++)
                a += g[k + DETAIL_RADIUS] * in[(size_t)y * w + mirror(x + k, w)];
            tmp[(size_t)y * w + x] = a;
        }
    for (int y = 0; y < h; y++) /* vertical blur, then I - G(I) */
        for (int x = 0; x < w; x++) {
            double a = 0.0;
            for (int k = -DETAIL_RADIUS; k <= DETAIL_RADIUS; k++)
                a += g[k + DETAIL_RADIUS] * tmp[(size_t)mirror(y + k, h) * w + x];
            out[(size_t)y * w + x] = in[(size_t)y * w + x] - a;
        }
    free(tmp);
    return LIIF_OK;
}

liif_status liif_detail(const float *sr, const float *hr, int w, int h, int shave,
                        liif_metric_channels ch, double *sharpness, double *detail_psnr,
                        liif_error *err)
{
    liif_status st = metric_check(sr, hr, w, h, shave, 1, "detail", err);
    if (st != LIIF_OK) return st;
    int rw = w - 2 * shave, rh = h - 2 * shave;
    size_t n = (size_t)rw * rh;
    double *a = malloc(sizeof(double) * n), *b = malloc(sizeof(double) * n),
           *ha = malloc(sizeof(double) * n), *hb = malloc(sizeof(double) * n);
    if (!a || !b || !ha || !hb) {
        free(a); free(b); free(ha); free(hb);
        return liif_error_set(err, LIIF_ERR_NOMEM, "detail: out of memory for %dx%d", w, h);
    }
    int planes = ch == LIIF_METRIC_Y ? 1 : 3;
    double e_sr = 0.0, e_hr = 0.0, e_diff = 0.0;
    for (int c = 0; c < planes && st == LIIF_OK; c++) {
        shaved_plane(sr, w, shave, rw, rh, ch, c, a);
        shaved_plane(hr, w, shave, rw, rh, ch, c, b);
        st = liif_highpass_plane(a, rw, rh, ha, err);
        if (st == LIIF_OK) st = liif_highpass_plane(b, rw, rh, hb, err);
        for (size_t i = 0; st == LIIF_OK && i < n; i++) {
            double d = ha[i] - hb[i];
            e_sr += ha[i] * ha[i];
            e_hr += hb[i] * hb[i];
            e_diff += d * d;
        }
    }
    free(a); free(b); free(ha); free(hb);
    if (st != LIIF_OK) return st;
    /* flat: below 1e-20 per sample, far under 8-bit quantisation noise (~1e-6), only rounding */
    double flat = 1e-20 * (double)n * planes;
    if (sharpness) *sharpness = e_hr > flat ? e_sr / e_hr : (e_sr > flat ? INFINITY : 1.0);
    if (detail_psnr) *detail_psnr = -10.0 * log10(e_diff / ((double)n * planes));
    return LIIF_OK;
}

/* ---------------------------------------------------------------- grid score */

#define GRID_HARMONICS 4 /* the cell frequency and three overtones, folded into [0, 1/2] */

/* t folded into [0, 1/2]: the frequency a sampled pattern of t cycles per sample shows */
static double fold_freq(double t)
{
    t -= floor(t);
    return t > 0.5 ? 1.0 - t : t;
}

/* Sum over the lines of one plane (rw x rh) along an axis (0: rows, the x axis; 1: columns) of the power at f cycles
 * per sample, with a Hann window along the axis and each line's windowed mean removed: |sum_i w_i (v_i - m) e^(-2 pi i
 * f i)|^2. acc: 3 * (lines) doubles of scratch, tw: 3 * N. */
static double line_power(const double *pl, int rw, int rh, int axis, double f, double *acc, double *tw)
{
    int n = axis ? rh : rw, lines = axis ? rw : rh;
    double wsum = 0.0, wc = 0.0, ws = 0.0;
    for (int i = 0; i < n; i++) {
        double win = 0.5 - 0.5 * cos(2.0 * M_PI * (i + 0.5) / n), ph = 2.0 * M_PI * f * i;
        tw[3 * i] = win;
        tw[3 * i + 1] = win * cos(ph);
        tw[3 * i + 2] = -win * sin(ph);
        wsum += win, wc += tw[3 * i + 1], ws += tw[3 * i + 2];
    }
    memset(acc, 0, sizeof(double) * 3 * (size_t)lines);
    for (int y = 0; y < rh; y++) {
        const double *row = pl + (size_t)y * rw;
        if (axis == 0) {
            double m = 0.0, re = 0.0, im = 0.0;
            for (int x = 0; x < rw; x++) {
                m += tw[3 * x] * row[x];
                re += tw[3 * x + 1] * row[x];
                im += tw[3 * x + 2] * row[x];
            }
            acc[3 * y] = m, acc[3 * y + 1] = re, acc[3 * y + 2] = im;
        } else {
            const double *t = tw + 3 * y;
            for (int x = 0; x < rw; x++) {
                acc[3 * x] += t[0] * row[x];
                acc[3 * x + 1] += t[1] * row[x];
                acc[3 * x + 2] += t[2] * row[x];
            }
        }
    }
    double p = 0.0;
    for (int l = 0; l < lines; l++) {
        double m = acc[3 * l] / wsum, re = acc[3 * l + 1] - m * wc, im = acc[3 * l + 2] - m * ws;
        p += re * re + im * im;
    }
    return p;
}

/* The frequencies of one axis of n samples whose cells are `period` samples long: the folded harmonics (h, at least
 * 10 bins from DC and 2 from each other); returns their count. */
static int grid_harmonics(double period, int n, double *h)
{
    int nh = 0;
    for (int k = 1; k <= GRID_HARMONICS; k++) {
        double f = fold_freq(k / period);
        int dup = f * n < 10.0;
        for (int j = 0; j < nh; j++) dup |= fabs(f - h[j]) * n < 2.0;
        if (!dup) h[nh++] = f;
    }
    return nh;
}

liif_status liif_grid_score(const float *img, int w, int h, int lr_w, int lr_h, int shave,
                            liif_metric_channels ch, double *score, liif_error *err)
{
    liif_status st = metric_check(img, img, w, h, shave, 1, "grid score", err);
    if (st != LIIF_OK) return st;
    if (lr_w < 1 || lr_h < 1 || lr_w > w || lr_h > h)
        return liif_error_set(err, LIIF_ERR_ARG, "grid score: LR size %dx%d for a %dx%d image", lr_w, lr_h, w, h);
    int rw = w - 2 * shave, rh = h - 2 * shave, lines = rw > rh ? rw : rh;
    double *pl = malloc(sizeof(double) * (size_t)rw * rh), *acc = malloc(sizeof(double) * 3 * (size_t)lines),
           *tw = malloc(sizeof(double) * 3 * (size_t)lines);
    if (!pl || !acc || !tw) {
        free(pl); free(acc); free(tw);
        return liif_error_set(err, LIIF_ERR_NOMEM, "grid score: out of memory for %dx%d", w, h);
    }
    int planes = ch == LIIF_METRIC_Y ? 1 : 3, used = 0;
    double total = 0.0;
    for (int axis = 0; axis < 2; axis++) {
        int n = axis ? rh : rw;
        double period = axis ? (double)h / lr_h : (double)w / lr_w, harm[GRID_HARMONICS];
        double peak[GRID_HARMONICS] = {0}, bg[GRID_HARMONICS] = {0};
        int nh = grid_harmonics(period, n, harm), n_peak[GRID_HARMONICS] = {0}, n_bg[GRID_HARMONICS] = {0};
        for (int c = 0; c < planes; c++) {
            shaved_plane(img, w, shave, rw, rh, ch, c, pl);
            for (int k = 0; k < nh; k++)
                for (int j = -8; j <= 8; j++) {
                    double f = harm[k] + (double)j / n;
                    int is_peak = abs(j) <= 1, near = 0;
                    if (abs(j) > 1 && abs(j) < 4) continue;
                    if (f * n < 3.0 || f > 0.5) continue;
                    for (int q = 0; q < nh && !is_peak; q++) near |= fabs(f - harm[q]) * n < 3.0;
                    if (near) continue; /* another harmonic's peak is not background */
                    double pw = line_power(pl, rw, rh, axis, f, acc, tw);
                    if (is_peak) peak[k] += pw, n_peak[k]++;
                    else bg[k] += pw, n_bg[k]++;
                }
        }
        /* each harmonic's ratio on its own: the image's power falls steeply with frequency, and summed powers would
         * let the lowest harmonic's content drown a pattern's overtone */
        for (int k = 0; k < nh; k++)
            if (n_peak[k] && n_bg[k] && bg[k] > 0.0) {
                total += (peak[k] / n_peak[k]) / (bg[k] / n_bg[k]);
                used++;
            }
    }
    free(pl); free(acc); free(tw);
    *score = used ? total / used : NAN;
    return LIIF_OK;
}

liif_status liif_measure(const float *out, const float *gt, int w, int h, int lr_w, int lr_h, int shave,
                         liif_metric_channels ch, int with_ssim, liif_measures *m, liif_error *err)
{
    m->ssim = NAN;
    liif_status st = liif_psnr(out, gt, w, h, shave, ch, &m->psnr, err);
    if (st == LIIF_OK && with_ssim) st = liif_ssim(out, gt, w, h, shave, ch, &m->ssim, err);
    if (st == LIIF_OK) st = liif_detail(out, gt, w, h, shave, ch, &m->sharpness, &m->detail_psnr, err);
    if (st == LIIF_OK) st = liif_grid_score(out, w, h, lr_w, lr_h, shave, ch, &m->grid, err);
    return st;
}

liif_status liif_eval_lr_size(int hr_w, int hr_h, double s, int *lr_w, int *lr_h, int *crop_w,
                              int *crop_h, liif_error *err)
{
    if (!isfinite(s) || s < 1.0)
        return liif_error_set(err, LIIF_ERR_ARG, "scale %g: must be a finite number >= 1", s);
    double fw = floor(hr_w / s + 1e-9), fh = floor(hr_h / s + 1e-9);
    if (fw < 1 || fh < 1)
        return liif_error_set(err, LIIF_ERR_ARG,
                              "a %dx%d image is too small for scale %g (LR would be empty)", hr_w,
                              hr_h, s);
    *lr_w = (int)fw;
    *lr_h = (int)fh;
    /* Python's round() rounds halves to even; rint does the same in the default mode */
    *crop_w = (int)nearbyint(fw * s);
    *crop_h = (int)nearbyint(fh * s);
    if (*crop_w > hr_w) *crop_w = hr_w;
    if (*crop_h > hr_h) *crop_h = hr_h;
    return LIIF_OK;
}

liif_status liif_eval_make_lr(const float *hr, int hr_w, int hr_h, double s, float *crop_out,
                              float *lr_out, liif_error *err)
{
    int lw, lh, cw, chh;
    liif_status st = liif_eval_lr_size(hr_w, hr_h, s, &lw, &lh, &cw, &chh, err);
    if (st != LIIF_OK) return st;
    float *crop = crop_out ? crop_out : malloc(sizeof(float) * 3 * (size_t)cw * chh);
    if (!crop) return liif_error_set(err, LIIF_ERR_NOMEM, "LR generation: out of memory");
    for (int y = 0; y < chh; y++)
        memcpy(crop + (size_t)y * cw * 3, hr + (size_t)y * hr_w * 3, sizeof(float) * 3 * cw);
    st = liif_resize_bicubic_f32(crop, cw, chh, 3, lr_out, lw, lh, err);
    if (crop != crop_out) free(crop);
    return st;
}
