/* test_precision.c: the fast CPU precision (bf16 products, fp32 sums) against fp32 on random models; tiling, regions and reuse within the mode. */
#include <string.h>
#include <unistd.h>

#include "golden_util.h"
#include "randmodel.h"
#include "testutil.h"

/* Tolerance on the [0,1] output. bf16 keeps 8 significant bits: rounding an operand costs at most
 * 2^-9 of it, a product of two at most ~2^-8. Summed over K terms of mixed sign, the errors add like
 * a random walk, so a layer's output moves by about 2^-8 of its typical term times sqrt(K), i.e.
 * ~2^-8 relative to its own scale; through L chained layers ~2^-8 * sqrt(L) relative. These random
 * models have up to 12 bf16 layers and an output range of about 3 (normalised, before the 0.5
 * factor and clamp), so the typical error is 2^-8 * 3.5 * 3 * 0.5 ~ 0.02 and the worst of many
 * thousand samples a few times that. 0.1 is that bound; fp32 agrees to 1e-5, so a bug (a wrong
 * weight, layout or ld) shows up as differences of order the output range itself, far above it.
 * The mean is held to 0.01 (a handful of typical errors) as a tighter check of the bulk. */
#define BF16_MAX_TOL 0.02
#define BF16_MEAN_TOL 0.002

static float *run(liif_engine *e, const float *img, int w, int h, liif_region r, const liif_options *o)
{
    liif_error err;
    float *out = malloc((size_t)r.w * r.h * 3 * sizeof(float));
    liif_image in = {img, w, h, (size_t)w * 3};
    if (liif_upscale_region(e, &in, &r, out, (size_t)r.w * 3, o, &err)) {
        printf("FAIL run: %s\n", err.msg);
        tu_failures++;
    }
    return out;
}

static liif_engine *engine(const liif_model *m)
{
    liif_engine *e;
    liif_error err;
    if (liif_engine_new(m, LIIF_BACKEND_CPU, &e, NULL, 0, &err)) {
        printf("FAIL engine: %s\n", err.msg);
        exit(1);
    }
    return e;
}

static double mean_diff(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += fabs((double)a[i] - b[i]);
    return s / (double)n;
}

/* bf16 vs fp32 on every variant and LIIF flag, with and without the layer-1 precompute. */
static void bf16_vs_fp32(void)
{
    static const char *variants[] = {"liif", "liif-gan", "liif-gan-s", "liif-gan-sf"};
    struct { int F, R, hidden, nh, unfold, ens, cell; } shapes[] = {
        {16, 2, 32, 2, 1, 1, 1}, {32, 4, 64, 4, 1, 1, 1}, {12, 3, 24, 3, 0, 1, 1}, {16, 2, 32, 2, 1, 0, 1},
        {8, 2, 16, 1, 1, 1, 0},  {24, 4, 40, 2, 0, 0, 0}, {64, 4, 256, 4, 1, 1, 1}, {64, 2, 64, 2, 1, 1, 1},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        rm_spec sp = {shapes[i].F, shapes[i].R, shapes[i].nh, shapes[i].hidden, shapes[i].unfold, shapes[i].ens,
                      shapes[i].cell, variants[i % 4], (unsigned)i + 31, 3.0f};
        liif_model *m = rm_load(tmpdir, &sp);
        liif_engine *e = engine(m);
        int w = 23 + (int)i, h = 19 + 2 * (int)i, W = w * 5 / 2 + 1, H = h * 3;
        size_t n = (size_t)W * H * 3;
        float *img = rm_image(w, h, (unsigned)i + 3);
        liif_region r = {W, H, 0, 0, W, H};
        for (int pre = 1; pre >= 0; pre--) {
            liif_options o;
            liif_options_init(&o);
            o.detail = 0.7;
            o.precompute = pre;
            float *f32 = run(e, img, w, h, r, &o);
            o.precision = LIIF_PRECISION_FAST;
            float *b16 = run(e, img, w, h, r, &o);
            double mean = mean_diff(b16, f32, n);
            char what[160];
            snprintf(what, sizeof what, "%-11s F%-2d R%d h%-3dx%d u%d e%d c%d %s: bf16 vs fp32 (mean %.2g)", sp.variant,
                     sp.n_feats, sp.n_resblocks, sp.hidden, sp.n_hidden, sp.feat_unfold, sp.local_ensemble,
                     sp.cell_decode, pre ? "pre  " : "plain", mean);
            tu_close(what, b16, f32, n, BF16_MAX_TOL);
            CHECK(mean <= BF16_MEAN_TOL, "mean |bf16 - fp32| %.3g above %.3g", mean, BF16_MEAN_TOL);
            CHECK(tu_maxdiff(b16, f32, n) > 0, "bf16 gave fp32's exact result: the mode did nothing");
            if (i == 0) { /* the explicit kinds on the CPU: BF16 is FAST's bf16, TF32 is fp32, both to the bit */
                o.precision = LIIF_PRECISION_BF16;
                float *eb = run(e, img, w, h, r, &o);
                o.precision = LIIF_PRECISION_TF32;
                float *et = run(e, img, w, h, r, &o);
                tu_close("  --precision bf16 = fast on the CPU", eb, b16, n, 0);
                tu_close("  --precision tf32 = fp32 on the CPU", et, f32, n, 0);
                free(eb);
                free(et);
            }
            free(f32);
            free(b16);
        }
        free(img);
        liif_engine_free(e);
        liif_model_free(m);
    }
}

/* Within the mode, tiles and regions equal the whole image exactly, as in fp32. */
static void tiling_and_regions(void)
{
    rm_spec deep = {8, 16, 2, 32, 1, 1, 1, "liif-gan", 9, 3.0f}, shallow = {16, 2, 2, 32, 1, 1, 1, "liif", 3, 3.0f};
    liif_model *md = rm_load(tmpdir, &deep), *ms = rm_load(tmpdir, &shallow);
    struct { int w, h, W, H, tile; } cases[] = {{90, 77, 180, 154, 29}, {37, 29, 111, 103, 7}, {31, 45, 40, 171, 3}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        liif_model *m = c == 0 ? md : ms;
        liif_engine *e = engine(m);
        int w = cases[c].w, h = cases[c].h, W = cases[c].W, H = cases[c].H;
        float *img = rm_image(w, h, 11 + (unsigned)c);
        for (int pre = 1; pre >= 0; pre--) {
            liif_options o;
            liif_options_init(&o);
            o.precision = LIIF_PRECISION_FAST;
            o.precompute = pre;
            o.tile = 4096;
            liif_region full = {W, H, 0, 0, W, H};
            float *whole = run(e, img, w, h, full, &o);
            o.tile = cases[c].tile;
            float *tiled = run(e, img, w, h, full, &o);
            char what[128];
            snprintf(what, sizeof what, "bf16 %s %dx%d -> %dx%d, tile %d vs untiled", pre ? "pre  " : "plain", w, h, W,
                     H, o.tile);
            tu_close(what, tiled, whole, (size_t)W * H * 3, 0);
            liif_region reg = {W, H, W / 3, H / 4, W / 2, H / 3};
            float *part = run(e, img, w, h, reg, &o);
            double d = tu_region_maxdiff(part, whole, W, reg.x, reg.y, reg.w, reg.h);
            printf("bf16 %s region %dx%d+%d+%d vs crop of the whole               max|diff| %.3g\n",
                   pre ? "pre  " : "plain", reg.w, reg.h, reg.x, reg.y, d);
            CHECK(d == 0, "region differs from the crop by %g", d);
            free(whole); free(tiled); free(part);
        }
        free(img);
        liif_engine_free(e);
    }
    liif_model_free(md);
    liif_model_free(ms);
}

/* Features kept for a reuse key belong to one precision: switching re-encodes, and the result equals
 * a fresh run in that precision. */
static void reuse_across_precisions(void)
{
    rm_spec sp = {16, 3, 2, 32, 1, 1, 1, "liif-gan", 21, 3.0f};
    liif_model *m = rm_load(tmpdir, &sp);
    liif_engine *e = engine(m), *fresh_e = engine(m);
    int w = 60, h = 48;
    float *img = rm_image(w, h, 5);
    liif_region r = {180, 144, 40, 30, 64, 64};
    liif_precision seq[] = {LIIF_PRECISION_FP32, LIIF_PRECISION_FAST, LIIF_PRECISION_FAST, LIIF_PRECISION_FP32};
    int want[] = {1, 1, 0, 1};
    for (int i = 0; i < 4; i++) {
        liif_options o;
        liif_options_init(&o);
        o.precision = seq[i];
        float *fresh = run(fresh_e, img, w, h, r, &o);
        o.reuse_key = 99;
        long before = liif_engine_encode_count(e);
        float *got = run(e, img, w, h, r, &o);
        long encodes = liif_engine_encode_count(e) - before;
        char what[128];
        snprintf(what, sizeof what, "reuse key, step %d (%s): %ld encode(s), vs a fresh run", i,
                 seq[i] == LIIF_PRECISION_FAST ? "fast" : "fp32", encodes);
        tu_close(what, got, fresh, 64 * 64 * 3, 0);
        CHECK(encodes == want[i], "step %d: %ld encodes, expected %d", i, encodes, want[i]);
        free(fresh);
        free(got);
    }
    free(img);
    liif_engine_free(e);
    liif_engine_free(fresh_e);
    liif_model_free(m);
}

/* Without bf16 instructions (here: ONEDNN_MAX_CPU_ISA below AVX512-BF16), FAST is fp32 exactly and
 * the engine says why in one line. */
static void fallback(void)
{
    rm_spec sp = {16, 2, 2, 32, 1, 1, 1, "liif-gan", 4, 3.0f};
    liif_model *m = rm_load(tmpdir, &sp);
    liif_engine *e = engine(m);
    char note[256];
    const char *name = liif_engine_precision_name(e, LIIF_PRECISION_FAST, note, sizeof note);
    printf("fast precision: %s; note: %s\n", name, note[0] ? note : "(none)");
    CHECK(!strcmp(name, "fp32") && note[0] && !strchr(note, '\n'), "FAST should fall back to fp32 with a note");
    float *img = rm_image(30, 20, 1);
    liif_region r = {75, 50, 0, 0, 75, 50};
    liif_options o;
    liif_options_init(&o);
    float *f32 = run(e, img, 30, 20, r, &o);
    o.precision = LIIF_PRECISION_FAST;
    float *fast = run(e, img, 30, 20, r, &o);
    tu_close("fast (fallback) vs fp32", fast, f32, 75 * 50 * 3, 0);
    /* the explicit kinds: bf16 falls back as FAST does, TF32 never exists on the CPU; both fp32 exactly */
    const char *nb = liif_engine_precision_name(e, LIIF_PRECISION_BF16, note, sizeof note);
    CHECK(!strcmp(nb, "fp32") && note[0], "BF16 should fall back to fp32 with a note, got %s", nb);
    const char *nt = liif_engine_precision_name(e, LIIF_PRECISION_TF32, note, sizeof note);
    printf("tf32 precision: %s; note: %s\n", nt, note);
    CHECK(!strcmp(nt, "fp32") && strstr(note, "no tf32"), "TF32 should be fp32 on the CPU with a note");
    o.precision = LIIF_PRECISION_BF16;
    float *b16 = run(e, img, 30, 20, r, &o);
    tu_close("bf16 (fallback) vs fp32", b16, f32, 75 * 50 * 3, 0);
    o.precision = LIIF_PRECISION_TF32;
    float *t32 = run(e, img, 30, 20, r, &o);
    tu_close("tf32 (none on the CPU) vs fp32", t32, f32, 75 * 50 * 3, 0);
    free(img); free(f32); free(fast); free(b16); free(t32);
    liif_engine_free(e);
    liif_model_free(m);
}

/* The PyTorch goldens (the official LIIF code with PyTorch's default initialisation): bf16 against
 * PyTorch's fp32 output, beside the fp32 engine's own difference, for every golden case (each LIIF
 * flag off once). The bound is the 8-bit one that matters: no output sample off by more than one
 * level (1/255), the mean under a tenth of a level. (Trained models on photos: liif-bench-precision.) */
static void goldens(void)
{
    int w, h;
    float *img = input_hwc(&w, &h);
    struct { const char *file, *layer0, *key, *val; int W, H; } cases[] = {
        {"case_default_61x50.safetensors", NULL, NULL, NULL, 50, 61},
        {"case_default_96x80.safetensors", NULL, NULL, NULL, 80, 96},
        {"case_no_unfold_61x50.safetensors", "weights_no_unfold_layer0.safetensors", NULL, NULL, 50, 61},
        {"case_no_ensemble_61x50.safetensors", NULL, "liif.local_ensemble", "false", 50, 61},
        {"case_no_cell_61x50.safetensors", "weights_no_cell_layer0.safetensors", NULL, NULL, 50, 61},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        liif_model *m = load_variant(cases[i].layer0, cases[i].key, cases[i].val);
        liif_engine *e = engine(m);
        int64_t n;
        float *want = read_tensor(cases[i].file, "rgb", &n);
        liif_region r = {cases[i].W, cases[i].H, 0, 0, cases[i].W, cases[i].H};
        liif_options o;
        liif_options_init(&o);
        float *f32 = run(e, img, w, h, r, &o);
        o.precision = LIIF_PRECISION_FAST;
        float *b16 = run(e, img, w, h, r, &o);
        double mean = mean_diff(b16, want, (size_t)n);
        char what[160];
        snprintf(what, sizeof what, "%s: bf16 vs PyTorch rgb (fp32 engine %.1g, mean %.2g)", cases[i].file,
                 tu_maxdiff(f32, want, (size_t)n), mean);
        tu_close(what, b16, want, (size_t)n, 1.0 / 255);
        CHECK(mean <= 0.1 / 255, "mean |bf16 - PyTorch| %.3g above a tenth of a level", mean);
        free(want); free(f32); free(b16);
        liif_engine_free(e);
        liif_model_free(m);
    }
    free(img);
}

/* usage: test-precision PART [GOLDEN]: bf16-vs-fp32, tiling, reuse, golden (skip 77 without bf16), fallback
 * (skip 77 with it). */
int main(int argc, char **argv)
{
    static const struct { const char *name; void (*run)(void); int needs_bf16; } parts[] = {
        {"bf16-vs-fp32", bf16_vs_fp32, 1}, {"tiling", tiling_and_regions, 1}, {"reuse", reuse_across_precisions, 1},
        {"golden", goldens, 1}, {"fallback", fallback, 0}};
    golden = argc > 2 ? argv[2] : NULL;
    if (argc > 1 && !strcmp(argv[1], "golden")) {
        char dir[512];
        snprintf(dir, sizeof dir, "%s/liif-edsr-baseline", golden ? golden : "");
        tu_require_dir(golden ? dir : NULL);
    }
    snprintf(tmpdir, sizeof tmpdir, "/tmp/liif-precision-XXXXXX");
    if (argc < 2 || !mkdtemp(tmpdir)) return 2;
    rm_spec sp = {4, 1, 1, 8, 1, 1, 1, "liif", 1, 1.0f};
    liif_model *m = rm_load(tmpdir, &sp);
    liif_engine *e = engine(m);
    char note[256];
    int have = !strcmp(liif_engine_precision_name(e, LIIF_PRECISION_FAST, note, sizeof note), "bf16");
    liif_engine_free(e);
    liif_model_free(m);
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        if (strcmp(argv[1], parts[i].name)) continue;
        if (parts[i].needs_bf16 != have) {
            printf("SKIP: %s\n", have ? "this processor has bf16 instructions, so there is no fallback to test"
                                      : note);
            rmdir(tmpdir);
            return 77;
        }
        parts[i].run();
        rmdir(tmpdir);
        return tu_finish("precision");
    }
    printf("unknown part %s\n", argv[1]);
    rmdir(tmpdir);
    return 2;
}
