/* test_precision.c: the fast CPU precisions (bf16 products with fp32 sums; int8 hidden products with exact integer sums)
 * against fp32 on random models and the PyTorch goldens; tiling, regions and reuse within each mode. */
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

/* int8: a hidden product's input rounded to 127 levels of its row's largest value, its weights to 127 levels
 * of their output's largest |w|: each term of a sum is off by up to 1/254 of the row's (or the weights') largest
 * value, not of itself as in bf16, so small terms lose more. Summed over K terms of mixed sign the errors add
 * like a random walk; measured on these random models (1 to 3 hidden products of width 24 to 256): max
 * 0.0053, mean at most 0.0008 (and 0 without a hidden product, which stays float32). The bounds leave about
 * three times that; a wrong scale, layout or an overflowing sum moves outputs by the output range itself. */
#define INT8_MAX_TOL 0.015
#define INT8_MEAN_TOL 0.002
/* Tiles, regions and reuse: the float32 encoder of another tile width sums a few pixels in another order (their
 * last bit differs, see backend_cpu.c's CONV_BLOCK; on AVX2 even fp32 outputs then differ by ~1e-7), and where such
 * a value lies on a rounding boundary of the 127 levels, it moves by one level of its row: measured at most 7.6e-4
 * here. Half an 8-bit level bounds it; the thread count changes nothing and is held to the bit. */
#define INT8_TILE_TOL (0.5 / 255)

/* The precision a test part runs: its kind, its name in messages and its bounds against fp32. */
typedef struct {
    liif_precision p;
    const char *name;
    double max_tol, mean_tol;
    double tile_tol; /* another tile, region or reuse against the whole image */
} mode;
static const mode BF16 = {LIIF_PRECISION_FAST, "bf16", BF16_MAX_TOL, BF16_MEAN_TOL, 0};
static const mode INT8 = {LIIF_PRECISION_INT8, "int8", INT8_MAX_TOL, INT8_MEAN_TOL, INT8_TILE_TOL};
static mode cur; /* the part's mode */

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

/* The mode vs fp32 on every variant and LIIF flag, with and without the layer-1 precompute. */
static void vs_fp32(void)
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
            o.precision = cur.p;
            float *b16 = run(e, img, w, h, r, &o);
            double mean = mean_diff(b16, f32, n);
            char what[160];
            snprintf(what, sizeof what, "%-11s F%-2d R%d h%-3dx%d u%d e%d c%d %s: %s vs fp32 (mean %.2g)", sp.variant,
                     sp.n_feats, sp.n_resblocks, sp.hidden, sp.n_hidden, sp.feat_unfold, sp.local_ensemble,
                     sp.cell_decode, pre ? "pre  " : "plain", cur.name, mean);
            /* int8 leaves layer 1 and the last layer in float32 and its encoder is float32 by Winograd's algorithm
             * (winograd.c): without a hidden product it is fp32 within the encoder's rounding (1e-5, the bound of
             * the fast backend against the reference; an integer step would be ~1e-3) */
            int exact = cur.p == LIIF_PRECISION_INT8 && sp.n_hidden < 2;
            tu_close(what, b16, f32, n, exact ? 1e-5 : cur.max_tol);
            CHECK(mean <= cur.mean_tol, "mean |%s - fp32| %.3g above %.3g", cur.name, mean, cur.mean_tol);
            CHECK(exact || tu_maxdiff(b16, f32, n) > 0, "%s gave fp32's exact result: the mode did nothing", cur.name);
            if (i == 0 && cur.p == LIIF_PRECISION_FAST) { /* on the CPU: BF16 is FAST's bf16, TF32 is fp32, to the bit */
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
            o.precision = cur.p;
            o.precompute = pre;
            o.tile = 4096;
            liif_region full = {W, H, 0, 0, W, H};
            float *whole = run(e, img, w, h, full, &o);
            o.tile = cases[c].tile;
            float *tiled = run(e, img, w, h, full, &o);
            char what[128];
            snprintf(what, sizeof what, "%s %s %dx%d -> %dx%d, tile %d vs untiled", cur.name, pre ? "pre  " : "plain", w,
                     h, W, H, o.tile);
            tu_close(what, tiled, whole, (size_t)W * H * 3, cur.tile_tol);
            o.threads = 1; /* and one thread against all: blocks are aligned to the image, so the same bits */
            float *one = run(e, img, w, h, full, &o);
            snprintf(what, sizeof what, "%s %s one thread vs all cores", cur.name, pre ? "pre  " : "plain");
            tu_close(what, one, tiled, (size_t)W * H * 3, 0);
            free(one);
            o.threads = 0;
            liif_region reg = {W, H, W / 3, H / 4, W / 2, H / 3};
            float *part = run(e, img, w, h, reg, &o);
            double d = tu_region_maxdiff(part, whole, W, reg.x, reg.y, reg.w, reg.h);
            printf("%s %s region %dx%d+%d+%d vs crop of the whole               max|diff| %.3g\n", cur.name,
                   pre ? "pre  " : "plain", reg.w, reg.h, reg.x, reg.y, d);
            CHECK(d <= cur.tile_tol, "region differs from the crop by %g", d);
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
    liif_precision seq[] = {LIIF_PRECISION_FP32, cur.p, cur.p, LIIF_PRECISION_FP32};
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
                 seq[i] == LIIF_PRECISION_FP32 ? "fp32" : cur.name, encodes);
        /* int8's parts run where fp32 itself moves by its last bits between tile widths (1.8e-7 on AVX2) */
        double tol = seq[i] == LIIF_PRECISION_FP32 ? (cur.tile_tol > 0 ? 1e-6 : 0) : cur.tile_tol;
        tu_close(what, got, fresh, 64 * 64 * 3, tol);
        CHECK(encodes == want[i], "step %d: %ld encodes, expected %d", i, encodes, want[i]);
        free(fresh);
        free(got);
    }
    free(img);
    liif_engine_free(e);
    liif_engine_free(fresh_e);
    liif_model_free(m);
}

/* Without bf16 instructions (here: ONEDNN_MAX_CPU_ISA below AVX512-BF16), FAST is int8, to the bit, without a
 * note; bf16 asked for by name falls back to fp32, saying why in one line. */
static void fallback(void)
{
    rm_spec sp = {16, 2, 2, 32, 1, 1, 1, "liif-gan", 4, 3.0f};
    liif_model *m = rm_load(tmpdir, &sp);
    liif_engine *e = engine(m);
    char note[256];
    const char *name = liif_engine_precision_name(e, LIIF_PRECISION_FAST, note, sizeof note);
    printf("fast precision: %s; note: %s\n", name, note[0] ? note : "(none)");
    CHECK(!strcmp(name, "int8") && !note[0], "FAST should be int8 without bf16, with no note");
    float *img = rm_image(30, 20, 1);
    liif_region r = {75, 50, 0, 0, 75, 50};
    liif_options o;
    liif_options_init(&o);
    float *f32 = run(e, img, 30, 20, r, &o);
    o.precision = LIIF_PRECISION_FAST;
    float *fast = run(e, img, 30, 20, r, &o);
    o.precision = LIIF_PRECISION_INT8;
    float *i8 = run(e, img, 30, 20, r, &o);
    tu_close("fast (no bf16) vs int8", fast, i8, 75 * 50 * 3, 0);
    CHECK(tu_maxdiff(fast, f32, 75 * 50 * 3) > 0, "fast without bf16 gave fp32's exact result");
    free(i8);
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

/* The PyTorch goldens (the official LIIF code with PyTorch's default initialisation): the mode against
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
        o.precision = cur.p;
        float *b16 = run(e, img, w, h, r, &o);
        double mean = mean_diff(b16, want, (size_t)n);
        char what[160];
        snprintf(what, sizeof what, "%s: %s vs PyTorch rgb (fp32 engine %.1g, mean %.2g)", cases[i].file, cur.name,
                 tu_maxdiff(f32, want, (size_t)n), mean);
        tu_close(what, b16, want, (size_t)n, 1.0 / 255);
        CHECK(mean <= 0.1 / 255, "mean |%s - PyTorch| %.3g above a tenth of a level", cur.name, mean);
        free(want); free(f32); free(b16);
        liif_engine_free(e);
        liif_model_free(m);
    }
    free(img);
}

/* int8 is the fast CPU backend's on every processor and named so; FAST is bf16 where the processor has it, else
 * int8; the reference backend has no int8 and says so, computing fp32 to the bit. */
static void int8_names(void)
{
    rm_spec sp = {16, 2, 3, 32, 1, 1, 1, "liif", 4, 3.0f};
    liif_model *m = rm_load(tmpdir, &sp);
    liif_engine *e = engine(m), *ref;
    liif_error err;
    char note[256];
    const char *name = liif_engine_precision_name(e, LIIF_PRECISION_INT8, note, sizeof note);
    CHECK(!strcmp(name, "int8") && !note[0], "int8 on the fast CPU backend: got %s (%s)", name, note);
    const char *fast = liif_engine_precision_name(e, LIIF_PRECISION_FAST, NULL, 0);
    CHECK(!strcmp(fast, "bf16") || !strcmp(fast, "int8"), "FAST is %s, want bf16 or int8", fast);
    if (liif_engine_new(m, LIIF_BACKEND_CPU_REF, &ref, NULL, 0, &err)) {
        printf("FAIL engine: %s\n", err.msg);
        exit(1);
    }
    name = liif_engine_precision_name(ref, LIIF_PRECISION_INT8, note, sizeof note);
    printf("reference backend, int8: %s; note: %s\n", name, note);
    CHECK(!strcmp(name, "fp32") && strstr(note, "no int8") && !strchr(note, '\n'),
          "the reference backend should compute int8 as fp32 with a one-line note");
    float *img = rm_image(20, 16, 2);
    liif_region r = {50, 40, 0, 0, 50, 40};
    liif_options o;
    liif_options_init(&o);
    float *f32 = run(ref, img, 20, 16, r, &o);
    o.precision = LIIF_PRECISION_INT8;
    float *i8 = run(ref, img, 20, 16, r, &o);
    tu_close("reference backend: int8 (none) vs fp32", i8, f32, 50 * 40 * 3, 0);
    o.precision = (liif_precision)(LIIF_PRECISION_INT8 + 1);
    liif_image in = {img, 20, 16, 60};
    CHECK(liif_upscale_region(e, &in, &r, f32, 150, &o, &err) == LIIF_ERR_ARG, "a precision past int8 was taken");
    free(img); free(f32); free(i8);
    liif_engine_free(ref);
    liif_engine_free(e);
    liif_model_free(m);
}

/* usage: test-precision PART [GOLDEN]: bf16-vs-fp32, tiling, reuse, golden (skip 77 without bf16), fallback
 * (skip 77 with it); int8-vs-fp32, int8-tiling, int8-reuse, int8-golden, int8-names (every processor). */
int main(int argc, char **argv)
{
    static const struct { const char *name; void (*run)(void); int needs_bf16; const mode *m; } parts[] = {
        {"bf16-vs-fp32", vs_fp32, 1, &BF16}, {"tiling", tiling_and_regions, 1, &BF16},
        {"reuse", reuse_across_precisions, 1, &BF16}, {"golden", goldens, 1, &BF16}, {"fallback", fallback, 0, &BF16},
        {"int8-vs-fp32", vs_fp32, -1, &INT8}, {"int8-tiling", tiling_and_regions, -1, &INT8},
        {"int8-reuse", reuse_across_precisions, -1, &INT8}, {"int8-golden", goldens, -1, &INT8},
        {"int8-names", int8_names, -1, &INT8}};
    golden = argc > 2 ? argv[2] : NULL;
    if (argc > 1 && (!strcmp(argv[1], "golden") || !strcmp(argv[1], "int8-golden"))) {
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
        if (parts[i].needs_bf16 >= 0 && parts[i].needs_bf16 != have) {
            printf("SKIP: %s\n", have ? "this processor has bf16 instructions, so there is no fallback to test"
                                      : note);
            rmdir(tmpdir);
            return 77;
        }
        cur = *parts[i].m;
        parts[i].run();
        rmdir(tmpdir);
        return tu_finish("precision");
    }
    printf("unknown part %s\n", argv[1]);
    rmdir(tmpdir);
    return 2;
}
