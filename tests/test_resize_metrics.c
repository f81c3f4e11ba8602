/* test_resize_metrics.c: PIL-compatible bicubic resize, PSNR/SSIM and LR generation against the component goldens. */
#include <string.h>

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

int main(int argc, char **argv)
{
    const char *part = argc > 2 ? argv[2] : "all";
    static char dir[1024];
    snprintf(dir, sizeof dir, "%s/components", argc > 1 ? argv[1] : "../shared/golden");
    golden = dir;
    tu_require_dir(golden);
    if (!strcmp(part, "all") || !strcmp(part, "resize")) test_resize();
    return tu_finish("test-resize-metrics");
}
