/* test_resize_metrics.c: PIL-compatible bicubic resize, PSNR/SSIM and LR generation against the component goldens. */
#include <string.h>

#include "metrics.h"
#include "resize.h"
#include "safetensors.h"
#include "testutil.h"

static const char *golden; /* .../golden/components */

static liif_st_file *open_golden(const char *file)
{
    char path[1024];
    liif_st_file *f;
    liif_error err;
    snprintf(path, sizeof path, "%s/%s", golden, file);
    if (liif_st_open(path, &f, &err)) { printf("FAIL %s\n", err.msg); exit(1); }
    return f;
}

static const liif_st_tensor *need(const liif_st_file *f, const char *name, liif_dtype dt)
{
    const liif_st_tensor *t = liif_st_find(f, name);
    if (!t || t->dtype != dt) { printf("FAIL %s: no %s tensor %s\n", liif_st_path(f), liif_dtype_name(dt), name); exit(1); }
    return t;
}

/* ------------------------------------------------------------------ resize */

static int count_diff_u8(const uint8_t *a, const uint8_t *b, size_t n)
{
    int d = 0;
    for (size_t i = 0; i < n; i++) d += a[i] != b[i];
    return d;
}

static void test_resize_case(const liif_st_file *f, const char *c)
{
    char name[128];
    snprintf(name, sizeof name, "%s.input", c);
    const liif_st_tensor *in = need(f, name, LIIF_DT_F32);
    int sh = (int)in->shape[2], sw = (int)in->shape[3];
    snprintf(name, sizeof name, "%s.u8_out_hwc", c);
    const liif_st_tensor *want_out = need(f, name, LIIF_DT_U8);
    int dh = (int)want_out->shape[0], dw = (int)want_out->shape[1];
    snprintf(name, sizeof name, "%s.u8_in_hwc", c);
    const liif_st_tensor *want_in = need(f, name, LIIF_DT_U8);
    snprintf(name, sizeof name, "%s.u8_hpass_hwc", c);
    const liif_st_tensor *want_hp = need(f, name, LIIF_DT_U8);
    snprintf(name, sizeof name, "%s.output", c);
    const liif_st_tensor *want_f = need(f, name, LIIF_DT_F32);

    /* NCHW float input -> HWC */
    size_t n_in = (size_t)sw * sh * 3, n_out = (size_t)dw * dh * 3;
    float *chw = malloc(n_in * sizeof(float)), *hwc = malloc(n_in * sizeof(float));
    memcpy(chw, in->data, n_in * sizeof(float));
    for (int ch = 0; ch < 3; ch++)
        for (size_t p = 0; p < (size_t)sw * sh; p++) hwc[p * 3 + ch] = chw[(size_t)ch * sw * sh + p];

    /* the u8 conversion of the float wrapper, checked through a same-size resize (copy) */
    float *same = malloc(n_in * sizeof(float));
    liif_error err;
    CHECK(liif_resize_bicubic_f32(hwc, sw, sh, 3, same, sw, sh, &err) == LIIF_OK, "%s", err.msg);
    int bad = 0;
    for (size_t i = 0; i < n_in; i++)
        bad += same[i] != (float)((const uint8_t *)want_in->data)[i] / 255.0f;
    printf("%-40s u8 input (truncation): %d differing\n", c, bad);
    CHECK(bad == 0, "%s: u8 input differs", c);

    uint8_t *out = malloc(n_out), *hp = malloc((size_t)sh * dw * 3);
    CHECK(liif_resize_bicubic_u8_ex(want_in->data, sw, sh, 3, out, dw, dh, hp, &err) == LIIF_OK, "%s", err.msg);
    int dhp = count_diff_u8(hp, want_hp->data, (size_t)sh * dw * 3);
    int dout = count_diff_u8(out, want_out->data, n_out);
    printf("%-40s hpass %d, out %d differing bytes\n", c, dhp, dout);
    CHECK(dhp == 0 && dout == 0, "%s: resize not bit-exact", c);
    uint8_t *out2 = malloc(n_out);
    CHECK(liif_resize_bicubic_u8(want_in->data, sw, sh, 3, out2, dw, dh, &err) == LIIF_OK, "%s", err.msg);
    CHECK(memcmp(out, out2, n_out) == 0, "%s: _ex and plain differ", c);

    /* float pipeline, HWC -> compared with NCHW output exactly */
    float *fo = malloc(n_out * sizeof(float)), *wf = malloc(n_out * sizeof(float));
    memcpy(wf, want_f->data, n_out * sizeof(float));
    CHECK(liif_resize_bicubic_f32(hwc, sw, sh, 3, fo, dw, dh, &err) == LIIF_OK, "%s", err.msg);
    bad = 0;
    for (int ch = 0; ch < 3; ch++)
        for (size_t p = 0; p < (size_t)dw * dh; p++) bad += fo[p * 3 + ch] != wf[(size_t)ch * dw * dh + p];
    printf("%-40s float output: %d differing\n", c, bad);
    CHECK(bad == 0, "%s: float output differs", c);
    free(chw); free(hwc); free(same); free(out); free(out2); free(hp); free(fo); free(wf);
}

static void test_resize(void)
{
    liif_st_file *f = open_golden("resize.safetensors");
    const char *cases[] = {"down_37x29_to_12x10", "down_96x96_to_48x48", "down_50x50_to_37x37",
                           "up_12x10_to_31x25"};
    for (int i = 0; i < 4; i++) test_resize_case(f, cases[i]);
    liif_st_close(f);

    /* bad arguments */
    uint8_t px[4] = {0};
    liif_error err;
    CHECK(liif_resize_bicubic_u8(px, 0, 1, 3, px, 1, 1, &err) == LIIF_ERR_ARG, "empty input accepted");
    CHECK(liif_resize_bicubic_u8(px, 1, 1, 5, px, 1, 1, &err) == LIIF_ERR_ARG, "5 channels accepted");
    CHECK(liif_resize_bicubic_u8(NULL, 1, 1, 1, px, 1, 1, &err) == LIIF_ERR_ARG, "NULL accepted");
    /* a constant image stays constant at any size */
    uint8_t cst[7 * 5], big[23 * 3];
    memset(cst, 77, sizeof cst);
    CHECK(liif_resize_bicubic_u8(cst, 7, 5, 1, big, 23, 3, &err) == LIIF_OK, "%s", err.msg);
    int ok = 1;
    for (size_t i = 0; i < sizeof big; i++) ok &= big[i] == 77;
    CHECK(ok, "constant image not preserved");
}

/* ----------------------------------------------------------------- metrics */

static double scalar_f64(const liif_st_file *f, const char *name)
{
    const liif_st_tensor *t = need(f, name, LIIF_DT_F64);
    double v;
    memcpy(&v, t->data, 8);
    return v;
}

/* NCHW [1,3,h,w] F32 -> HWC floats */
static float *read_hwc(const liif_st_file *f, const char *name, int *w, int *h)
{
    const liif_st_tensor *t = need(f, name, LIIF_DT_F32);
    *h = (int)t->shape[2];
    *w = (int)t->shape[3];
    size_t n = (size_t)*w * *h;
    float *chw = malloc(3 * n * sizeof(float)), *hwc = malloc(3 * n * sizeof(float));
    memcpy(chw, t->data, 3 * n * sizeof(float));
    for (int c = 0; c < 3; c++)
        for (size_t p = 0; p < n; p++) hwc[p * 3 + c] = chw[c * n + p];
    free(chw);
    return hwc;
}

static void check_value(const char *what, double got, double want, double tol)
{
    double d = fabs(got - want);
    printf("%-40s %.12f want %.12f diff %.2g (tol %.0g) %s\n", what, got, want, d, tol,
           d <= tol ? "ok" : "FAIL");
    if (!(d <= tol)) tu_failures++;
}

static void test_metrics(void)
{
    liif_st_file *f = open_golden("metrics.safetensors");
    int w, h, w2, h2;
    float *hr = read_hwc(f, "hr", &w, &h), *sr = read_hwc(f, "sr", &w2, &h2);
    liif_error err;
    double v;
    CHECK(liif_psnr(sr, hr, w, h, 4, LIIF_METRIC_RGB, &v, &err) == LIIF_OK, "%s", err.msg);
    check_value("psnr_rgb_shave4", v, scalar_f64(f, "psnr_rgb_shave4"), 1e-5);
    CHECK(liif_psnr(sr, hr, w, h, 4, LIIF_METRIC_Y, &v, &err) == LIIF_OK, "%s", err.msg);
    check_value("psnr_y_shave4", v, scalar_f64(f, "psnr_y_shave4"), 1e-5);
    CHECK(liif_psnr(sr, hr, w, h, 0, LIIF_METRIC_RGB, &v, &err) == LIIF_OK, "%s", err.msg);
    check_value("psnr_rgb_noshave", v, scalar_f64(f, "psnr_rgb_noshave"), 1e-5);
    CHECK(liif_ssim(sr, hr, w, h, 4, LIIF_METRIC_Y, &v, &err) == LIIF_OK, "%s", err.msg);
    check_value("ssim_y_shave4", v, scalar_f64(f, "ssim_y_shave4"), 1e-9);
    CHECK(liif_ssim(sr, hr, w, h, 4, LIIF_METRIC_RGB, &v, &err) == LIIF_OK, "%s", err.msg);
    check_value("ssim_rgb_shave4", v, scalar_f64(f, "ssim_rgb_shave4"), 1e-9);

    /* the Y planes and the SSIM map of the Y case */
    int rw = w - 8, rh = h - 8;
    double *ya = malloc(sizeof(double) * rw * rh), *yb = malloc(sizeof(double) * rw * rh);
    float *yaf = malloc(sizeof(float) * rw * rh), *ybf = malloc(sizeof(float) * rw * rh);
    for (int y = 0; y < rh; y++)
        for (int x = 0; x < rw; x++) {
            const float *p = sr + ((size_t)(y + 4) * w + x + 4) * 3, *q = hr + ((size_t)(y + 4) * w + x + 4) * 3;
            ya[y * rw + x] = (65.738 * p[0] + 129.057 * p[1] + 25.064 * p[2]) / 256.0;
            yb[y * rw + x] = (65.738 * q[0] + 129.057 * q[1] + 25.064 * q[2]) / 256.0;
            yaf[y * rw + x] = (float)ya[y * rw + x];
            ybf[y * rw + x] = (float)yb[y * rw + x];
        }
    tu_close("y_sr_shave4 (float32 rounding of double Y)", yaf, need(f, "y_sr_shave4", LIIF_DT_F32)->data, (size_t)rw * rh, 1e-7);
    tu_close("y_hr_shave4", ybf, need(f, "y_hr_shave4", LIIF_DT_F32)->data, (size_t)rw * rh, 1e-7);
    int mw = rw - 10, mh = rh - 10;
    double *map = malloc(sizeof(double) * mw * mh), *want = malloc(sizeof(double) * mw * mh);
    CHECK(liif_ssim_map_plane(ya, yb, rw, rh, map, &err) == LIIF_OK, "%s", err.msg);
    memcpy(want, need(f, "ssim_y_map", LIIF_DT_F64)->data, sizeof(double) * mw * mh);
    double md = 0;
    for (int i = 0; i < mw * mh; i++) md = fmax(md, fabs(map[i] - want[i]));
    printf("%-40s max|diff| %.3g (tol 1e-12) %s\n", "ssim_y_map", md, md <= 1e-12 ? "ok" : "FAIL");
    if (!(md <= 1e-12)) tu_failures++;

    /* bad arguments: a region below the 11x11 window */
    CHECK(liif_ssim(sr, hr, w, h, 13, LIIF_METRIC_Y, &v, &err) == LIIF_ERR_ARG, "tiny SSIM region accepted");
    CHECK(liif_psnr(sr, hr, w, h, 18, LIIF_METRIC_Y, &v, &err) == LIIF_ERR_ARG, "empty PSNR region accepted");
    CHECK(liif_psnr(hr, hr, w, h, 0, LIIF_METRIC_Y, &v, &err) == LIIF_OK && isinf(v) && v > 0, "identical images: PSNR %g", v);
    free(hr); free(sr); free(ya); free(yb); free(yaf); free(ybf); free(map); free(want);
    liif_st_close(f);
}

/* LR generation rule (MODEL.md 4) and the protocols */
static void test_lr_rule(void)
{
    int lw, lh, cw, ch;
    liif_error err;
    /* 256x256 at 3: 85 -> crop 255; at 2.5: 102 -> 255; at 4.5 on 512: 113 -> 508.5 -> 508 (half to even) */
    CHECK(liif_eval_lr_size(256, 256, 3.0, &lw, &lh, &cw, &ch, &err) == LIIF_OK && lw == 85 && cw == 255, "x3: %d %d", lw, cw);
    CHECK(liif_eval_lr_size(256, 200, 2.5, &lw, &lh, &cw, &ch, &err) == LIIF_OK && lw == 102 && cw == 255 && lh == 80 && ch == 200, "x2.5: %d %d %d %d", lw, cw, lh, ch);
    CHECK(liif_eval_lr_size(512, 512, 4.5, &lw, &lh, &cw, &ch, &err) == LIIF_OK && lw == 113 && cw == 508, "x4.5: %d %d", lw, cw);
    /* 1e-9 guard: 30 / 3.0000000000000004 = 9.999999999999998 must give 10 */
    CHECK(liif_eval_lr_size(3, 3, 0.5, &lw, &lh, &cw, &ch, &err) == LIIF_ERR_ARG, "scale < 1 accepted");
    CHECK(liif_eval_lr_size(30, 30, 3.0000000000000004, &lw, &lh, &cw, &ch, &err) == LIIF_OK && lw == 10 && cw == 30, "1e-9 guard: %d %d", lw, cw);
    CHECK(liif_eval_lr_size(3, 3, 4.0, &lw, &lh, &cw, &ch, &err) == LIIF_ERR_ARG, "empty LR accepted");
    CHECK(liif_eval_lr_size(3, 3, NAN, &lw, &lh, &cw, &ch, &err) == LIIF_ERR_ARG, "NaN scale accepted");
    CHECK(liif_protocol_shave(LIIF_PROTOCOL_BENCHMARK, 4.5) == 5 && liif_protocol_shave(LIIF_PROTOCOL_DIV2K, 2) == 8, "shave");
    CHECK(liif_protocol_channels(LIIF_PROTOCOL_BENCHMARK) == LIIF_METRIC_Y && liif_protocol_channels(LIIF_PROTOCOL_DIV2K) == LIIF_METRIC_RGB, "channels");
    /* make_lr on resize.safetensors' 96x96 case (u8/255 input, x2) gives its output */
    liif_st_file *f = open_golden("resize.safetensors");
    int w, h, ow, oh;
    float *hr = read_hwc(f, "down_96x96_to_48x48.input", &w, &h), *want = read_hwc(f, "down_96x96_to_48x48.output", &ow, &oh);
    float *lr = malloc(sizeof(float) * 3 * 48 * 48), *crop = malloc(sizeof(float) * 3 * 96 * 96);
    CHECK(liif_eval_make_lr(hr, w, h, 2.0, crop, lr, &err) == LIIF_OK, "%s", err.msg);
    tu_close("make_lr x2 on down_96x96_to_48x48", lr, want, 3 * 48 * 48, 0);
    free(hr); free(want); free(lr); free(crop);
    liif_st_close(f);
}

/* Detail figures: the separable high-pass against a direct 2-D reference with numpy's "symmetric"
 * padding written as a period-2n reflection; then properties that hold exactly in exact arithmetic. */
static int sym_index(int i, int n)
{
    int p = ((i % (2 * n)) + 2 * n) % (2 * n);
    return p < n ? p : 2 * n - 1 - p;
}

static void highpass_direct(const double *in, int w, int h, double *out)
{
    double g[9], gs = 0;
    for (int k = 0; k < 9; k++) gs += g[k] = exp(-(double)((k - 4) * (k - 4)) / 4.5);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double a = 0;
            for (int dy = -4; dy <= 4; dy++)
                for (int dx = -4; dx <= 4; dx++)
                    a += g[dy + 4] * g[dx + 4] / (gs * gs) * in[(size_t)sym_index(y + dy, h) * w + sym_index(x + dx, w)];
            out[(size_t)y * w + x] = in[(size_t)y * w + x] - a;
        }
}

static uint32_t lcg_state = 12345;
static double lcg01(void)
{
    lcg_state = lcg_state * 1664525u + 1013904223u;
    return (lcg_state >> 8) / 16777216.0;
}

static void test_detail(void)
{
    liif_error err;
    const int sizes[][2] = {{1, 1}, {2, 3}, {5, 4}, {9, 9}, {23, 17}};
    for (size_t c = 0; c < sizeof sizes / sizeof sizes[0]; c++) {
        int w = sizes[c][0], h = sizes[c][1];
        size_t n = (size_t)w * h;
        double *in = malloc(n * sizeof *in), *got = malloc(n * sizeof *got), *want = malloc(n * sizeof *want);
        for (size_t i = 0; i < n; i++) in[i] = lcg01();
        CHECK(liif_highpass_plane(in, w, h, got, &err) == LIIF_OK, "%s", err.msg);
        highpass_direct(in, w, h, want);
        double md = 0;
        for (size_t i = 0; i < n; i++) md = fmax(md, fabs(got[i] - want[i]));
        CHECK(md < 1e-12, "high-pass %dx%d: max diff %g to the direct reference", w, h, md);
        for (size_t i = 0; i < n; i++) in[i] = 0.37; /* a constant has no detail */
        CHECK(liif_highpass_plane(in, w, h, got, &err) == LIIF_OK, "%s", err.msg);
        md = 0;
        for (size_t i = 0; i < n; i++) md = fmax(md, fabs(got[i]));
        CHECK(md < 1e-12, "high-pass of a constant %dx%d: max %g", w, h, md);
        free(in); free(got); free(want);
    }
    CHECK(liif_highpass_plane(NULL, 3, 3, NULL, &err) == LIIF_ERR_ARG, "NULL plane accepted");

    /* Images: hr random in [0.1, 0.9], gray (R = G = B) so Y is a multiple of each channel. */
    enum { W = 40, H = 33, SH = 3 };
    size_t n = (size_t)W * H * 3;
    float *hr = malloc(n * sizeof(float)), *sr = malloc(n * sizeof(float)), *gray = malloc(n * sizeof(float));
    double *plane = malloc(sizeof(double) * W * H), *hp = malloc(sizeof(double) * W * H);
    for (size_t i = 0; i < n; i++) hr[i] = (float)(0.1 + 0.8 * lcg01());
    double sharp, dpsnr;
    CHECK(liif_detail(hr, hr, W, H, SH, LIIF_METRIC_Y, &sharp, &dpsnr, &err) == LIIF_OK, "%s", err.msg);
    CHECK(sharp == 1.0 && isinf(dpsnr) && dpsnr > 0, "identical: sharpness %g, detail PSNR %g", sharp, dpsnr);

    /* sr = 2 hr - 0.5: H is linear and a constant has no detail, so H(sr) = 2 H(hr): sharpness 4 and
     * detail PSNR = -10 log10(mean H(hr)^2) over the shaved region. Pixels in the border are ignored. */
    int rw = W - 2 * SH, rh = H - 2 * SH;
    for (size_t i = 0; i < n; i++) sr[i] = 2.0f * hr[i] - 0.5f;
    double e = 0;
    for (int ch = 0; ch < 3; ch++) {
        for (int y = 0; y < rh; y++)
            for (int x = 0; x < rw; x++) plane[y * rw + x] = hr[((size_t)(y + SH) * W + x + SH) * 3 + ch];
        highpass_direct(plane, rw, rh, hp);
        for (size_t i = 0; i < (size_t)rw * rh; i++) e += hp[i] * hp[i];
    }
    for (int x = 0; x < W; x++) sr[x * 3] = 5.0f; /* row 0 lies in the border */
    CHECK(liif_detail(sr, hr, W, H, SH, LIIF_METRIC_RGB, &sharp, &dpsnr, &err) == LIIF_OK, "%s", err.msg);
    double want_dpsnr = -10 * log10(e / ((double)rw * rh * 3));
    CHECK(fabs(sharp - 4.0) < 1e-4 && fabs(dpsnr - want_dpsnr) < 1e-3,
          "2 hr - 0.5: sharpness %.6f (want 4), detail PSNR %.4f (want %.4f)", sharp, dpsnr, want_dpsnr);
    CHECK(liif_detail(hr, sr, W, H, SH, LIIF_METRIC_RGB, &sharp, NULL, &err) == LIIF_OK && fabs(sharp - 0.25) < 1e-5,
          "swapped: sharpness %.6f (want 0.25)", sharp);

    /* Gray images: Y is (65.738 + 129.057 + 25.064) / 256 times the channel; sharpness is a ratio, so
     * Y and RGB agree; the blurred image has less detail than the original. */
    for (size_t p = 0; p < (size_t)W * H; p++) gray[p * 3] = gray[p * 3 + 1] = gray[p * 3 + 2] = hr[p * 3];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) plane[y * W + x] = gray[((size_t)y * W + x) * 3];
    liif_highpass_plane(plane, W, H, hp, &err);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int ch = 0; ch < 3; ch++) sr[((size_t)y * W + x) * 3 + ch] = (float)(plane[y * W + x] - hp[y * W + x]);
    double sy, sc;
    CHECK(liif_detail(sr, gray, W, H, SH, LIIF_METRIC_Y, &sy, NULL, &err) == LIIF_OK, "%s", err.msg);
    CHECK(liif_detail(sr, gray, W, H, SH, LIIF_METRIC_RGB, &sc, NULL, &err) == LIIF_OK, "%s", err.msg);
    CHECK(sy < 0.5 && fabs(sy - sc) < 1e-5, "blurred gray: sharpness Y %.5f, RGB %.5f (want equal, < 0.5)", sy, sc);

    for (size_t i = 0; i < n; i++) gray[i] = 0.5f; /* a flat ground truth */
    CHECK(liif_detail(gray, gray, W, H, SH, LIIF_METRIC_Y, &sharp, NULL, &err) == LIIF_OK && sharp == 1.0, "flat vs flat: %g", sharp);
    CHECK(liif_detail(hr, gray, W, H, SH, LIIF_METRIC_Y, &sharp, NULL, &err) == LIIF_OK && isinf(sharp), "detail vs flat: %g", sharp);
    CHECK(liif_detail(hr, gray, W, H, 20, LIIF_METRIC_Y, &sharp, NULL, &err) == LIIF_ERR_ARG, "empty region accepted");
    free(hr); free(sr); free(gray); free(plane); free(hp);
}

int main(int argc, char **argv)
{
    const char *part = argc > 2 ? argv[2] : "all";
    static char dir[1024];
    snprintf(dir, sizeof dir, "%s/components", argc > 1 ? argv[1] : "../shared/golden");
    golden = dir;
    tu_require_dir(golden);
    if (!strcmp(part, "all") || !strcmp(part, "resize")) test_resize();
    if (!strcmp(part, "all") || !strcmp(part, "metrics")) test_metrics();
    if (!strcmp(part, "all") || !strcmp(part, "lr")) test_lr_rule();
    if (!strcmp(part, "all") || !strcmp(part, "detail")) test_detail();
    return tu_finish("test-resize-metrics");
}
