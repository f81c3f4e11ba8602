/* test_golden.c: encoder features, MLP inputs and predictions against the official PyTorch LIIF goldens. */
#include <string.h>
#include <unistd.h>

#include "golden_util.h"
#include "internal.h"
#include "safetensors.h"
#include "testutil.h"

static void check_features(liif_backend *be, const liif_model *m, const float *img, int w, int h, const char *tag)
{
    liif_error err;
    int64_t n;
    if (be->encode(be, m, img, (size_t)w * 3, h, w, 0, 0, &err)) { printf("FAIL %s\n", err.msg); tu_failures++; return; }
    float *want = read_tensor("encoder.safetensors", "feat", &n);
    const float *got = be->features(be, 0);
    float *hwc = malloc(n * sizeof(float));
    for (int c = 0; c < 64; c++)
        for (int i = 0; i < h * w; i++) hwc[i * 64 + c] = want[c * h * w + i];
    char what[128];
    snprintf(what, sizeof what, "%s: encoder features [24x20x64]", tag);
    tu_close(what, got, hwc, n, 1e-5);
    free(want);
    free(hwc);
}

static void check_mlp_inputs(const liif_model *m, const float *img, int w, int h)
{
    liif_backend *be = liif_backend_ref_new();
    liif_error err;
    int64_t n_idx, n_in;
    be->encode(be, m, img, (size_t)w * 3, h, w, 0, 0, &err);
    float *idx = read_tensor("case_default_61x50.safetensors", "debug_idx", &n_idx);
    float *want = read_tensor("case_default_61x50.safetensors", "debug_imnet_in", &n_in); /* [4, 48, 580] */
    float *got = malloc(n_in * sizeof(float)), rows[4 * 580];
    liif_decode_job job = {.H = 61, .W = 50, .h = h, .w = w, .ty = 0, .tx = 0, .th = h, .tw = w,
                           .y0 = 0, .x0 = 0, .rows = 61, .cols = 50, .alpha = 1};
    for (int q = 0; q < n_idx; q++) {
        int qi = (int)idx[q];
        liif_ref_mlp_inputs(be, m, &job, qi / 50, qi % 50, rows);
        for (int k = 0; k < 4; k++) memcpy(got + ((size_t)k * n_idx + q) * 580, rows + k * 580, 580 * sizeof(float));
    }
    tu_close("cpu-ref: MLP inputs of 48 debug queries x 4 shifts", got, want, n_in, 5e-5);
    free(idx); free(want); free(got);
    be->destroy(be);
}

/* Runs the engine on the whole W x H output and compares pred and rgb, skipping tie queries. */
static void check_case(const liif_model *m, liif_backend_kind kind, int precompute, const float *img, int w, int h,
                       const char *file, int W, int H, const char *tag)
{
    liif_engine *e;
    liif_error err;
    liif_options o;
    liif_options_init(&o);
    o.precompute = precompute;
    o.threads = 2;
    if (liif_engine_new(m, kind, &e, NULL, 0, &err)) { printf("FAIL %s\n", err.msg); tu_failures++; return; }
    float *out = malloc((size_t)W * H * 3 * sizeof(float));
    liif_image in = {img, w, h, (size_t)w * 3};
    liif_region r = {W, H, 0, 0, W, H};
    liif_status s = liif_upscale_region(e, &in, &r, out, (size_t)W * 3, &o, &err);
    CHECK(s == LIIF_OK, "%s: %s", tag, err.msg);
    int64_t n, n_tie = 0;
    float *pred = read_tensor(file, "pred", &n), *rgb = read_tensor(file, "rgb", &n);
    float *ties = NULL;
    if (strstr(file, "no_ensemble")) ties = read_tensor(file, "tie_idx", &n_tie);
    float *got_pred = malloc(n * sizeof(float));
    for (int64_t i = 0; i < n; i++) got_pred[i] = (out[i] - 0.5f) / 0.5f;
    char what[160];
    if (n_tie) { /* ties: decided by the last bit of the f32 coordinate, which we reproduce exactly */
        float *tg = malloc(n_tie * 3 * sizeof(float)), *tw = malloc(n_tie * 3 * sizeof(float));
        for (int64_t t = 0; t < n_tie; t++)
            for (int c = 0; c < 3; c++) {
                size_t i = (size_t)ties[t] * 3 + c;
                tg[t * 3 + c] = got_pred[i];
                tw[t * 3 + c] = pred[i];
                got_pred[i] = pred[i];
                out[i] = rgb[i];
            }
        snprintf(what, sizeof what, "%s: pred on the %lld tie queries", tag, (long long)n_tie);
        tu_close(what, tg, tw, n_tie * 3, 1e-5);
        free(tg); free(tw);
    }
    snprintf(what, sizeof what, "%s: pred %dx%d%s", tag, W, H, n_tie ? " (ties excluded)" : "");
    tu_close(what, got_pred, pred, n, 1e-5);
    snprintf(what, sizeof what, "%s: rgb %dx%d", tag, W, H);
    tu_close(what, out, rgb, n, 1e-5);
    free(pred); free(rgb); free(ties); free(got_pred); free(out);
    liif_engine_free(e);
}

int main(int argc, char **argv)
{
    golden = argc > 1 ? argv[1] : NULL;
    char dir[512];
    snprintf(dir, sizeof dir, "%s/liif-edsr-baseline", golden ? golden : "");
    tu_require_dir(golden ? dir : NULL);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/liif-golden-XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    int w, h;
    float *img = input_hwc(&w, &h);
    liif_model *def = load_variant(NULL, NULL, NULL);
    liif_model *no_unfold = load_variant("weights_no_unfold_layer0.safetensors", NULL, NULL);
    liif_model *no_cell = load_variant("weights_no_cell_layer0.safetensors", NULL, NULL);
    liif_model *no_ens = load_variant(NULL, "liif.local_ensemble", "false");
    CHECK(liif_model_halo(def) == 36, "halo of EDSR-baseline LIIF is %d, expected 36", liif_model_halo(def));
    CHECK(!no_unfold->cfg.feat_unfold && no_unfold->cfg.cell_decode, "no_unfold flags inferred from shapes");
    CHECK(no_cell->cfg.feat_unfold && !no_cell->cfg.cell_decode, "no_cell flags inferred from shapes");

    liif_backend *ref = liif_backend_ref_new(), *cpu = liif_backend_cpu_new(2);
    check_features(ref, def, img, w, h, "cpu-ref");
    check_features(cpu, def, img, w, h, "cpu");
    ref->destroy(ref);
    cpu->destroy(cpu);
    check_mlp_inputs(def, img, w, h);

    struct { liif_backend_kind kind; int pre; const char *tag; } runs[] = {
        {LIIF_BACKEND_CPU_REF, 0, "cpu-ref"}, {LIIF_BACKEND_CPU, 1, "cpu"}, {LIIF_BACKEND_CPU, 0, "cpu (no precompute)"}};
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        char tag[96];
        snprintf(tag, sizeof tag, "%s default", runs[i].tag);
        check_case(def, runs[i].kind, runs[i].pre, img, w, h, "case_default_61x50.safetensors", 50, 61, tag);
        check_case(def, runs[i].kind, runs[i].pre, img, w, h, "case_default_96x80.safetensors", 80, 96, tag);
        snprintf(tag, sizeof tag, "%s no_unfold", runs[i].tag);
        check_case(no_unfold, runs[i].kind, runs[i].pre, img, w, h, "case_no_unfold_61x50.safetensors", 50, 61, tag);
        snprintf(tag, sizeof tag, "%s no_ensemble", runs[i].tag);
        check_case(no_ens, runs[i].kind, runs[i].pre, img, w, h, "case_no_ensemble_61x50.safetensors", 50, 61, tag);
        snprintf(tag, sizeof tag, "%s no_cell", runs[i].tag);
        check_case(no_cell, runs[i].kind, runs[i].pre, img, w, h, "case_no_cell_61x50.safetensors", 50, 61, tag);
    }
    liif_model_free(def); liif_model_free(no_unfold); liif_model_free(no_cell); liif_model_free(no_ens);
    free(img);
    rmdir(tmpdir);
    return tu_finish("golden");
}
