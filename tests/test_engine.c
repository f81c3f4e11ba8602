/* test_engine.c: fast CPU vs reference on random models, exact tiling, regions, precompute, cancel, bad arguments,
 * detail 0 = decoder 1 alone, the unclamped output. */
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "randmodel.h"
#include "winograd.h"
#include "testutil.h"

static char tmpdir[64];

static float *run(const liif_model *m, liif_backend_kind kind, const float *img, int w, int h, liif_region r,
                  const liif_options *o)
{
    liif_engine *e;
    liif_error err;
    float *out = malloc((size_t)r.w * r.h * 3 * sizeof(float));
    liif_image in = {img, w, h, (size_t)w * 3};
    if (liif_engine_new(m, kind, &e, NULL, 0, &err) || liif_upscale_region(e, &in, &r, out, (size_t)r.w * 3, o, &err)) {
        printf("FAIL run: %s\n", err.msg);
        tu_failures++;
    }
    liif_engine_free(e);
    return out;
}

static void fast_vs_reference(void)
{
    static const char *variants[] = {"liif", "liif-gan", "liif-gan-s", "liif-gan-sf"};
    struct { int F, R, hidden, nh, unfold, ens, cell; } shapes[] = {
        {8, 1, 16, 1, 1, 1, 1}, {16, 2, 32, 2, 1, 1, 1}, {12, 3, 24, 3, 0, 1, 1},
        {16, 2, 32, 2, 1, 0, 1}, {8, 2, 16, 2, 1, 1, 0}, {24, 4, 40, 2, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        rm_spec sp = {shapes[i].F, shapes[i].R, shapes[i].nh, shapes[i].hidden, shapes[i].unfold, shapes[i].ens,
                      shapes[i].cell, variants[i % 4], (unsigned)i + 7, 3.0f};
        liif_model *m = rm_load(tmpdir, &sp);
        int w = 13 + (int)i, h = 11 + 2 * (int)i, W = w * 5 / 2 + 1, H = h * 3;
        float *img = rm_image(w, h, (unsigned)i);
        liif_options o;
        liif_options_init(&o);
        o.detail = 0.7;
        liif_region r = {W, H, 0, 0, W, H};
        float *ref = run(m, LIIF_BACKEND_CPU_REF, img, w, h, r, &o);
        float *fast = run(m, LIIF_BACKEND_CPU, img, w, h, r, &o);
        o.precompute = 0;
        float *plain = run(m, LIIF_BACKEND_CPU, img, w, h, r, &o);
        char what[160];
        snprintf(what, sizeof what, "%-11s F%-2d R%d h%-2dx%d u%d e%d c%d %dx%d->%dx%d: fast vs ref", sp.variant, sp.n_feats,
                 sp.n_resblocks, sp.hidden, sp.n_hidden, sp.feat_unfold, sp.local_ensemble, sp.cell_decode, w, h, W, H);
        tu_close(what, fast, ref, (size_t)W * H * 3, 1e-5);
        snprintf(what, sizeof what, "%-11s ... layer-1 precompute vs plain path", sp.variant);
        tu_close(what, fast, plain, (size_t)W * H * 3, 1e-5);
        double spread = 0;  /* the outputs must actually vary, or the comparison proves nothing */
        for (size_t k = 0; k < (size_t)W * H * 3; k++) spread = fmax(spread, fabs(ref[k] - ref[0]));
        CHECK(spread > 0.05, "random model output spread %.3g too small to test anything", spread);
        free(ref); free(fast); free(plain); free(img);
        liif_model_free(m);
    }
}

static void tiling_and_regions(void)
{
    /* the full-depth encoder (16 blocks, halo 36) on a narrow model, and a shallow LIIF-GAN */
    rm_spec deep = {4, 16, 1, 8, 1, 1, 1, "liif-gan", 9, 3.0f}, shallow = {8, 2, 2, 16, 1, 1, 1, "liif-gan", 3, 3.0f};
    liif_model *md = rm_load(tmpdir, &deep), *ms = rm_load(tmpdir, &shallow);
    /* sizes: integer, non-integer and anisotropic scales on odd input sizes */
    struct { int w, h, W, H; } cases[] = {{97, 83, 194, 166}, {37, 29, 74, 58}, {37, 29, 111, 103}, {41, 23, 97, 23 * 5}, {31, 45, 40, 171}};
    int tiles_shallow[] = {1, 3, 7, 16}, tiles_deep[] = {13, 29, 40, 64};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        liif_model *m = c == 0 ? md : ms;
        const int *tiles = c == 0 ? tiles_deep : tiles_shallow;
        int w = cases[c].w, h = cases[c].h, W = cases[c].W, H = cases[c].H;
        float *img = rm_image(w, h, 11 + (unsigned)c);
        liif_options o;
        liif_options_init(&o);
        o.tile = 4096; /* one tile: the untiled result */
        liif_region full = {W, H, 0, 0, W, H};
        float *whole = run(m, LIIF_BACKEND_CPU, img, w, h, full, &o);
        for (size_t t = 0; t < 4; t++) {
            o.tile = tiles[t];
            float *tiled = run(m, LIIF_BACKEND_CPU, img, w, h, full, &o);
            char what[128];
            snprintf(what, sizeof what, "%dx%d -> %dx%d, tile %d vs untiled", w, h, W, H, tiles[t]);
            tu_close(what, tiled, whole, (size_t)W * H * 3, 1e-5);
            free(tiled);
        }
        /* a region equals the same crop of the whole result */
        liif_region reg = {W, H, W / 3, H / 4, W / 2, H / 3};
        o.tile = c == 0 ? 20 : 5;
        float *part = run(m, LIIF_BACKEND_CPU, img, w, h, reg, &o);
        double d = tu_region_maxdiff(part, whole, W, reg.x, reg.y, reg.w, reg.h);
        printf("%dx%d -> %dx%d, region %dx%d+%d+%d vs crop of the whole       max|diff| %.3g\n", w, h, W, H, reg.w,
               reg.h, reg.x, reg.y, d);
        CHECK(d <= 1e-5, "region differs from the crop by %g", d);
        free(part); free(whole); free(img);
    }
    liif_model_free(md);
    liif_model_free(ms);
}

/* Bands of output rows (as `liif upscale` writes them, --band-rows) equal the same rows of the whole image to the
 * bit on the fast CPU backend in fp32 and in bf16: its GEMM blocks are aligned to the image, not to the tile, so a
 * pixel is summed the same way whichever tile and band compute it (oneDNN's sums depend on a row's place in the
 * call). With one tile across and with several (tile 16). In int8 (FAST without bf16) the encoder is Winograd's
 * (winograd.c), whose 4x4 output tiles round a pixel with its neighbours: zero rows beyond a band's halo reach
 * further in than the halo in the last bits, and a row's int8 scale can move a value by one step: on these small
 * random models bands then agree within half an 8-bit level (the shipped model on a photo moves a few samples per
 * thousand near band edges by one level, rarely two: README). */
static void bands_bit_exact(void)
{
    rm_spec deep = {8, 16, 1, 16, 1, 1, 1, "liif-gan", 21, 3.0f}, shallow = {16, 2, 2, 32, 1, 1, 1, "liif", 5, 3.0f};
    liif_model *models[2] = {rm_load(tmpdir, &deep), rm_load(tmpdir, &shallow)};
    liif_engine *probe = NULL;
    liif_error perr;
    int fast_int8 = liif_engine_new(models[0], LIIF_BACKEND_CPU, &probe, NULL, 0, &perr) == LIIF_OK &&
                    !strcmp(liif_engine_precision_name(probe, LIIF_PRECISION_FAST, NULL, 0), "int8");
    liif_engine_free(probe);
    /* the deep encoder (halo 36) re-encodes a tall tile for every band: fewer, taller bands and one tile across */
    static const int heights[2][3] = {{5, 17, 0}, {1, 7, 13}};
    int w = 33, h = 27, W = 73, H = 61;
    float *img = rm_image(w, h, 4);
    for (int k = 0; k < 2; k++)
        for (int p = 0; p < 2; p++)
            for (int t = 0; t < 1 + k; t++) {
                liif_options o;
                liif_options_init(&o);
                o.detail = 0.6;
                o.tile = t ? 16 : 4096;
                o.precision = p ? LIIF_PRECISION_FAST : LIIF_PRECISION_FP32;
                liif_region full = {W, H, 0, 0, W, H};
                float *whole = run(models[k], LIIF_BACKEND_CPU, img, w, h, full, &o);
                for (size_t b = 0; b < 3 && heights[k][b]; b++) {
                    int bh = heights[k][b];
                    size_t differ = 0;
                    double worst = 0;
                    for (int y = 0; y < H; y += bh) {
                        liif_region band = {W, H, 0, y, W, y + bh < H ? bh : H - y};
                        float *part = run(models[k], LIIF_BACKEND_CPU, img, w, h, band, &o);
                        for (size_t i = 0; part && i < (size_t)band.h * W * 3; i++) {
                            float a = part[i], b = whole[(size_t)y * W * 3 + i];
                            differ += memcmp(&a, &b, sizeof(float)) != 0;
                            worst = fmax(worst, fabs((double)a - b));
                        }
                        free(part);
                    }
                    int approx = p && fast_int8;
                    printf("%s %s tile %4d: bands of %2d rows vs whole: %zu of %d samples differ, max|diff| %.3g\n",
                           k ? "liif F16 R2 " : "liif-gan R16", p ? fast_int8 ? "int8" : "fast" : "fp32", o.tile, bh,
                           differ, W * H * 3, worst);
                    if (approx)
                        CHECK(worst <= 0.5 / 255, "int8 bands of %d rows differ from the whole image by %g", bh, worst);
                    else
                        CHECK(differ == 0, "bands of %d rows differ from the whole image in %zu samples", bh, differ);
                }
                free(whole);
            }
    free(img);
    liif_model_free(models[0]);
    liif_model_free(models[1]);
}

typedef struct { int ticks, stop_after; } cancel_state;
static int cancel_cb(void *user, double fraction)
{
    cancel_state *s = user;
    (void)fraction;
    return ++s->ticks > s->stop_after;
}

static void cancel(void)
{
    rm_spec sp = {8, 1, 1, 16, 1, 1, 1, "liif", 5, 3.0f};
    liif_model *m = rm_load(tmpdir, &sp);
    float *img = rm_image(40, 40, 1);
    for (int k = 0; k < 4; k++) {
        cancel_state st = {0, k};
        liif_options o;
        liif_options_init(&o);
        o.tile = 8;
        o.progress = cancel_cb;
        o.progress_user = &st;
        liif_engine *e;
        liif_error err;
        liif_engine_new(m, LIIF_BACKEND_CPU, &e, NULL, 0, &err);
        liif_image in = {img, 40, 40, 120};
        liif_region r = {160, 160, 0, 0, 160, 160};
        float *out = malloc(160 * 160 * 3 * sizeof(float));
        liif_status s = liif_upscale_region(e, &in, &r, out, 160 * 3, &o, &err);
        printf("cancel after %d ticks: %s after %d calls\n", k, liif_status_name(s), st.ticks);
        CHECK(s == LIIF_ERR_CANCELLED && st.ticks == k + 1, "cancel after %d ticks gave %s after %d calls", k,
              liif_status_name(s), st.ticks);
        free(out);
        liif_engine_free(e);
    }
    free(img);
    liif_model_free(m);
}

static void bad_arguments(void)
{
    rm_spec sp = {8, 2, 1, 16, 1, 1, 1, "liif-gan", 5, 3.0f};
    liif_model *m = rm_load(tmpdir, &sp);
    float img[10 * 10 * 3] = {0}, out[64 * 3];
    liif_engine *e;
    liif_error err;
    liif_engine_new(m, LIIF_BACKEND_CPU, &e, NULL, 0, &err);
    liif_image in = {img, 10, 10, 30};
    liif_options o;
    liif_options_init(&o);
    struct { liif_region r; double detail; const char *what; } bad[] = {
        {{20, 20, 15, 0, 8, 8}, 1, "region past the right edge"},
        {{20, 20, 0, 0, 0, 8}, 1, "empty region"},
        {{0, 20, 0, 0, 1, 1}, 1, "zero output width"},
        {{LIIF_MAX_SIDE + 1, 2, 0, 0, 1, 1}, 1, "output wider than the limit"},
        {{20, 20, 0, 0, 8, 8}, NAN, "detail NaN"},
        {{20, 20, 0, 0, 8, 8}, 1.5, "detail above 1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        o.detail = bad[i].detail;
        err.msg[0] = 0;
        liif_status s = liif_upscale_region(e, &in, &bad[i].r, out, 8 * 3, &o, &err);
        printf("bad argument, %-28s -> %s: %s\n", bad[i].what, liif_status_name(s), err.msg);
        CHECK(s == LIIF_ERR_ARG && err.msg[0] && !strchr(err.msg, '\n'), "%s not rejected", bad[i].what);
    }
    liif_engine_free(e);
    liif_status s = liif_engine_new(m, LIIF_BACKEND_CUDA, &e, NULL, 0, &err);
    printf("CUDA requested: %s%s%s\n", liif_status_name(s), s ? ": " : "", s ? err.msg : "");
    CHECK(s == LIIF_ERR_UNSUPPORTED ? e == NULL && err.msg[0] : s == LIIF_OK && e != NULL,
          "a CUDA request either works or fails with a reason");
    liif_engine_free(e);
    liif_model_free(m);
}

/* A preview's sequence: region at one scale, a nearby scale, another detail, then a new key.
 * Reused features must give the same pixels as a fresh encode, and must actually be reused. */
static void reuse(void)
{
    rm_spec sp = {8, 4, 1, 16, 1, 1, 1, "liif-gan", 21, 3.0f};
    liif_model *m = rm_load(tmpdir, &sp);
    int w = 160, h = 120;
    float *img = rm_image(w, h, 5);
    liif_engine *e;
    liif_error err;
    liif_engine_new(m, LIIF_BACKEND_CPU, &e, NULL, 0, &err);
    liif_image in = {img, w, h, (size_t)w * 3};
    /* output size, detail, key, region origin as a fraction of the output, encodes expected */
    struct { int W, H; double detail; uint64_t key; double at; int encodes; } steps[] = {
        {640, 480, 1.0, 7, 0.33, 1}, {608, 456, 1.0, 7, 0.33, 0}, {608, 456, 0.3, 7, 0.33, 0}, /* scale, detail */
        {608, 456, 0.3, 8, 0.33, 1},                                                         /* new key */
        {592, 444, 0.3, 8, 0.33, 0}, {320, 240, 0.3, 8, 0.33, 1}, {640, 480, 0.3, 8, 0.0, 1}, /* near, far, elsewhere */
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        liif_region r = {steps[i].W, steps[i].H, (int)(steps[i].W * steps[i].at), (int)(steps[i].H * steps[i].at), 64, 64};
        liif_options o;
        liif_options_init(&o);
        o.detail = steps[i].detail;
        float *fresh = run(m, LIIF_BACKEND_CPU, img, w, h, r, &o);
        o.reuse_key = steps[i].key;
        float *got = malloc(64 * 64 * 3 * sizeof(float));
        long before = liif_engine_encode_count(e);
        liif_status s = liif_upscale_region(e, &in, &r, got, 64 * 3, &o, &err);
        long encodes = liif_engine_encode_count(e) - before;
        char what[128];
        snprintf(what, sizeof what, "reuse step %zu (%dx%d, detail %.1f, key %d): %ld encode(s)", i, r.out_w, r.out_h,
                 o.detail, (int)o.reuse_key, encodes);
        tu_close(what, got, fresh, 64 * 64 * 3, 1e-5);
        CHECK(s == LIIF_OK && encodes == steps[i].encodes, "step %zu encoded %ld tiles, expected %d", i, encodes,
              steps[i].encodes);
        free(got);
        free(fresh);
    }
    liif_engine_free(e);
    free(img);
    liif_model_free(m);
}

/* usage: test-engine [PART]: fast-vs-ref, tiling, cancel, bad-args; all parts without one. */
/* The CPU backends and precisions the detail tests run on. */
static const struct { liif_backend_kind kind; liif_precision prec; const char *name; } modes[] = {
    {LIIF_BACKEND_CPU_REF, LIIF_PRECISION_FP32, "reference"},
    {LIIF_BACKEND_CPU, LIIF_PRECISION_FP32, "fast fp32"},
    {LIIF_BACKEND_CPU, LIIF_PRECISION_FAST, "fast precision"},
};

/* Detail 0 is decoder 1's output alone (MODEL.md: out = d1 + detail * d2): with decoder 2's weights
 * and biases changed, the output at detail 0 stays the same to the bit on every backend and precision,
 * while at detail 1 it changes (so the change is not a no-op). */
static void detail_zero(void)
{
    static const char *variants[] = {"liif-gan", "liif-gan-sf"};
    for (size_t v = 0; v < 2; v++) {
        rm_spec sp = {16, 2, 2, 32, 1, 1, 1, variants[v], 31 + (unsigned)v, 3.0f};
        liif_model *m = rm_load(tmpdir, &sp);
        CHECK(m->cfg.n_decoders == 2, "%s: %d decoders", variants[v], m->cfg.n_decoders);
        int w = 14, h = 12, W = 37, H = 31;
        float *img = rm_image(w, h, 5 + (unsigned)v);
        liif_region r = {W, H, 0, 0, W, H};
        size_t n = (size_t)W * H * 3;
        float *before[3][2];
        for (int k = 0; k < 3; k++)
            for (int d = 0; d < 2; d++) {
                liif_options o;
                liif_options_init(&o);
                o.detail = d;
                o.precision = modes[k].prec;
                before[k][d] = run(m, modes[k].kind, img, w, h, r, &o);
            }
        const liif_mlp *dec2 = &m->dec[1]; /* decoder 2: every weight x3, every bias +0.25 */
        for (int l = 0; l < dec2->n_layers; l++) {
            float *wl = (float *)dec2->w[l], *bl = (float *)dec2->b[l];
            for (int i = 0; i < dec2->dims[l] * dec2->dims[l + 1]; i++) wl[i] *= 3.0f;
            for (int i = 0; i < dec2->dims[l + 1]; i++) bl[i] += 0.25f;
        }
        for (int k = 0; k < 3; k++) {
            liif_options o;
            liif_options_init(&o);
            o.precision = modes[k].prec;
            o.detail = 0;
            float *d0 = run(m, modes[k].kind, img, w, h, r, &o);
            o.detail = 1;
            float *d1 = run(m, modes[k].kind, img, w, h, r, &o);
            CHECK(memcmp(d0, before[k][0], n * sizeof(float)) == 0,
                  "%s %s: detail 0 depends on decoder 2", variants[v], modes[k].name);
            double moved = 0;
            for (size_t i = 0; i < n; i++) moved = fmax(moved, fabs(d1[i] - before[k][1][i]));
            CHECK(moved > 1e-3, "%s %s: changing decoder 2 moved detail 1 by only %g", variants[v], modes[k].name,
                  moved);
            printf("%-11s %-15s detail 0 independent of decoder 2 (bit-exact); detail 1 moved by %.3f\n",
                   variants[v], modes[k].name, moved);
            /* decoder 2 is not run at detail 0: a NaN in its last bias (which would reach every output sample as
             * 0 * NaN) leaves detail 0 as it was and makes detail 1 NaN */
            float *bl = (float *)dec2->b[dec2->n_layers - 1], keep = bl[0];
            bl[0] = NAN;
            o.detail = 0;
            float *n0 = run(m, modes[k].kind, img, w, h, r, &o);
            o.detail = 1;
            float *n1 = run(m, modes[k].kind, img, w, h, r, &o);
            bl[0] = keep;
            CHECK(memcmp(n0, before[k][0], n * sizeof(float)) == 0 && isnan(n1[0]),
                  "%s %s: decoder 2 ran at detail 0 (or a NaN in it did not reach detail 1)", variants[v],
                  modes[k].name);
            free(n0); free(n1);
            free(d0); free(d1);
            free(before[k][0]); free(before[k][1]);
        }
        free(img);
        liif_model_free(m);
    }
}

/* liif_options.unclamped: the output without the clamp. Clamped afterwards it is the normal output to the bit; it
 * does leave [0,1] (random models overshoot, as trained ones do at edges), and it is linear in the detail: the
 * renders at 0 and 1 give the one at 0.3, and the renders at 1 and 0.3 give the one at 0 (what the GIMP preview's
 * instant detail slider does), to float rounding. On every CPU backend and precision. */
static void unclamped(void)
{
    static const char *variants[] = {"liif", "liif-gan", "liif-gan-sf"};
    for (size_t v = 0; v < 3; v++) {
        rm_spec sp = {16, 2, 2, 32, 1, 1, 1, variants[v], 41 + (unsigned)v, 12.0f}; /* overshoots */
        liif_model *m = rm_load(tmpdir, &sp);
        int w = 14, h = 12, W = 37, H = 31;
        float *img = rm_image(w, h, 9 + (unsigned)v);
        liif_region r = {W, H, 0, 0, W, H};
        size_t n = (size_t)W * H * 3;
        for (int k = 0; k < 3; k++) {
            liif_options o;
            liif_options_init(&o);
            o.precision = modes[k].prec;
            o.detail = 0.3;
            float *clamped = run(m, modes[k].kind, img, w, h, r, &o);
            o.unclamped = 1;
            float *raw[3]; /* details 0, 1, 0.3 */
            static const double details[3] = {0, 1, 0.3};
            for (int d = 0; d < 3; d++) {
                o.detail = details[d];
                raw[d] = run(m, modes[k].kind, img, w, h, r, &o);
            }
            size_t outside = 0, differ = 0;
            double lerp_err = 0, extra_err = 0;
            for (size_t i = 0; i < n; i++) {
                float p = raw[2][i], c = p < 0.0f ? 0.0f : (p > 1.0f ? 1.0f : p);
                outside += p < 0.0f || p > 1.0f;
                differ += memcmp(&c, &clamped[i], sizeof c) != 0;
                lerp_err = fmax(lerp_err, fabs(raw[0][i] + 0.3 * (raw[1][i] - raw[0][i]) - raw[2][i]));
                extra_err = fmax(extra_err, fabs(raw[1][i] + (0.0 - 1.0) / (0.3 - 1.0) * (raw[2][i] - raw[1][i]) -
                                                 raw[0][i]));
            }
            CHECK(differ == 0, "%s %s: %zu samples of the clamped unclamped output differ from the clamped one",
                  variants[v], modes[k].name, differ);
            CHECK(outside > 0, "%s %s: no sample outside [0,1]: the test shows nothing", variants[v], modes[k].name);
            if (m->cfg.n_decoders == 2) {
                CHECK(lerp_err < 1e-5 && extra_err < 1e-5,
                      "%s %s: not linear in the detail: blend of 0 and 1 at 0.3 off by %g, from 1 and 0.3 to 0 by %g",
                      variants[v], modes[k].name, lerp_err, extra_err);
                double moved = 0;
                for (size_t i = 0; i < n; i++) moved = fmax(moved, fabs(raw[1][i] - raw[0][i]));
                CHECK(moved > 1e-2, "%s %s: detail 0 and 1 differ by only %g", variants[v], modes[k].name, moved);
            }
            printf("%-11s %-15s unclamped: clamped equals the output (bit-exact), %zu of %zu samples outside [0,1]; "
                   "linear in detail to %.1e / %.1e\n", variants[v], modes[k].name, outside, n, lerp_err, extra_err);
            free(clamped);
            for (int d = 0; d < 3; d++) free(raw[d]);
        }
        free(img);
        liif_model_free(m);
    }
}

/* liif.detail, the detail a LIIF-GAN model is meant to be used at: 1 without it, the value with it; a value that is
 * not a number in [0,1], or one on a model without a detail decoder, is a one-line load error naming the file and
 * the metadata. */
static void default_detail(void)
{
    struct { const char *variant, *value; double want; } cases[] = {
        {"liif-gan", NULL, 1.0}, {"liif-gan", "0.4", 0.4}, {"liif-gan-sf", "0", 0.0}, {"liif", NULL, 1.0},
        {"liif-gan", "1.5", -1}, {"liif-gan", "-0.1", -1}, {"liif-gan", "nan", -1}, {"liif-gan", "abc", -1},
        {"liif-gan", "", -1}, {"liif-gan", "0.5x", -1}, {"liif-gan", ".", -1}, {"liif-gan", "0,5", -1},
        {"liif-gan", "1e-1", -1}, {"liif-gan", "0.5.1", -1}, {"liif", "0.5", -1}, {"liif-gan-s", "0.5", -1},
        {"liif-gan", ".25", 0.25}, {"liif-gan", "1.000", 1.0},
    };
    char path[128];
    snprintf(path, sizeof path, "%s/detail.safetensors", tmpdir);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rm_spec sp = {8, 2, 1, 16, 1, 1, 1, cases[i].variant, 3, 3.0f};
        liif_model *m = NULL;
        liif_error err = {{0}};
        CHECK(rm_write_meta(path, &sp, 3, 3, cases[i].value) == 0, "cannot write the model");
        liif_status s = liif_model_load(path, &m, &err);
        if (cases[i].want >= 0) {
            CHECK(s == LIIF_OK && liif_model_default_detail(m) == cases[i].want, "%s liif.detail=%s: %s, detail %g",
                  cases[i].variant, cases[i].value ? cases[i].value : "(none)", s ? err.msg : "loaded",
                  m ? liif_model_default_detail(m) : -1.0);
        } else {
            CHECK(s == LIIF_ERR_MODEL && strstr(err.msg, path) && strstr(err.msg, "liif.detail") && !strchr(err.msg, '\n'),
                  "%s liif.detail='%s': expected a one-line error naming the file, got %d '%s'", cases[i].variant,
                  cases[i].value, (int)s, err.msg);
        }
        printf("%-11s liif.detail=%-6s -> %s\n", cases[i].variant, cases[i].value ? cases[i].value : "(none)",
               s ? err.msg : "loaded");
        liif_model_free(m);
    }
    unlink(path);
}

/* One fast CPU backend across models, each used at the address of the one before (the struct of the new model
 * copied over the old one's, as a freed model's address can come back for the next): the backend must prepare
 * the new model's weights and buffers (it knows them by the model's serial, not its address). Each result equals
 * a fresh backend's on the new model. */
static void models_in_turn(void)
{
    liif_backend *be = liif_backend_cpu_new(0);
    liif_model *prev = NULL;
    for (int i = 0; i < 6; i++) {
        rm_spec sp = {16, 2, 2, 32, 1, 1, 1, i % 2 ? "liif-gan" : "liif", (unsigned)i + 101, 3.0f};
        liif_model *m = rm_load(tmpdir, &sp), saved;
        liif_model *at = prev ? prev : m; /* where the backend sees model i */
        if (prev) {
            saved = *prev;
            *prev = *m;
        }
        int w = 15, h = 12, W = 37, H = 29;
        float *img = rm_image(w, h, (unsigned)i);
        liif_decode_job job = {.H = H, .W = W, .h = h, .w = w, .ty = 0, .tx = 0, .th = h, .tw = w,
                               .y0 = 0, .x0 = 0, .rows = H, .cols = W, .alpha = 0.7f, .precompute = 1};
        size_t n = (size_t)W * H * 3;
        float *got = malloc(n * sizeof(float)), *want = malloc(n * sizeof(float));
        liif_backend *fresh = liif_backend_cpu_new(0);
        liif_error err;
        int bad = be->encode(be, at, img, (size_t)w * 3, h, w, 0, 1, &err) ||
                  be->decode(be, at, &job, got, (size_t)W * 3, &err) ||
                  fresh->encode(fresh, m, img, (size_t)w * 3, h, w, 0, 1, &err) ||
                  fresh->decode(fresh, m, &job, want, (size_t)W * 3, &err);
        CHECK(!bad, "model %d: %s", i, err.msg);
        char what[96];
        snprintf(what, sizeof what, "model %d (%s) at the last one's address: vs a fresh backend", i, sp.variant);
        if (!bad) tu_close(what, got, want, n, 0);
        fresh->destroy(fresh);
        free(img); free(got); free(want);
        if (prev) {
            *prev = saved;
            liif_model_free(prev);
        }
        prev = m;
    }
    liif_model_free(prev);
    be->destroy(be);
}

/* Winograd F(4x4, 3x3) (the int8 precision's encoder) against a direct 3x3 convolution summed in double: odd
 * sizes, tiles starting at image rows that are not multiples of 4, channel counts that are not multiples of 8,
 * 256 outputs (layer 1's width) and 100 (not a multiple of its 64-output passes), bias, residual and ReLU; and
 * one thread against two to the bit. The bound, 1e-5 of the largest sum of the terms' magnitudes: the
 * transforms' coefficients (up to 5 in, 8 out) cost a few float32 roundings of that magnitude. The same for the
 * variant along rows only (fp32's encoder), and there a band of rows as a tile of its own gives the whole's
 * bits on its inner rows. */
static void winograd(void)
{
    struct { int h, w, y0, cin, cout, bias, res, relu; } cases[] = {
        {13, 11, 0, 8, 8, 1, 1, 1}, {29, 17, 3, 12, 20, 1, 0, 1}, {40, 33, 6, 64, 64, 1, 1, 0},
        {9, 21, 1, 16, 256, 0, 0, 0}, {4, 4, 4, 3, 5, 1, 1, 1}, {1, 70, 2, 64, 64, 1, 1, 1}, {67, 5, 0, 24, 8, 0, 1, 1}, {21, 19, 5, 8, 100, 1, 1, 1},
    };
    unsigned long long seed = 99;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int h = cases[k].h, w = cases[k].w, cin = cases[k].cin, cout = cases[k].cout;
        size_t ni = (size_t)h * w * cin, no = (size_t)h * w * cout;
        float *in = malloc(ni * sizeof *in), *wt = malloc((size_t)cout * cin * 9 * sizeof *wt);
        float *bias = malloc(cout * sizeof *bias), *res = malloc(no * sizeof *res), *u = malloc(liif_wino_weights_len(cout, cin) * sizeof *u);
        float *o1 = malloc(no * sizeof *o1), *o2 = malloc(no * sizeof *o2);
        for (size_t i = 0; i < ni; i++) in[i] = rm_uniform(&seed);
        for (size_t i = 0; i < (size_t)cout * cin * 9; i++) wt[i] = 0.2f * rm_uniform(&seed);
        for (int i = 0; i < cout; i++) bias[i] = 0.3f * rm_uniform(&seed);
        for (size_t i = 0; i < no; i++) res[i] = rm_uniform(&seed);
        float *ur = malloc(liif_wino_rows_weights_len(cout, cin) * sizeof *ur), *o3 = malloc(no * sizeof *o3);
        float *o4 = malloc(no * sizeof *o4), *o5 = malloc(no * sizeof *o5);
        liif_wino_weights(wt, cout, cin, cin * 9, u);
        liif_wino_rows_weights(wt, cout, cin, cin * 9, ur);
        const float *b = cases[k].bias ? bias : NULL, *r = cases[k].res ? res : NULL;
        int relu = cases[k].relu;
        liif_status s1 = liif_conv_wino(in, h, w, cases[k].y0, cin, u, b, r, relu, cout, o1, 1);
        liif_status s2 = liif_conv_wino(in, h, w, cases[k].y0, cin, u, b, r, relu, cout, o2, 2);
        liif_status s3 = liif_conv_wino_rows(in, h, w, cases[k].y0, cin, ur, b, r, relu, cout, o3, 1);
        liif_status s4 = liif_conv_wino_rows(in, h, w, cases[k].y0, cin, ur, b, r, relu, cout, o4, 2);
        CHECK(s1 == LIIF_OK && s2 == LIIF_OK && s3 == LIIF_OK && s4 == LIIF_OK, "a Winograd convolution failed");
        /* rows only: a band of rows [a, a + bh) as a tile of its own gives its inner rows to the bit */
        int a = h / 3, bh = h - a > 5 ? h - a - 2 : h - a;
        size_t differ = 0;
        if (bh >= 3) {
            liif_status s5 = liif_conv_wino_rows(in + (size_t)a * w * cin, bh, w, cases[k].y0 + a, cin, ur, b, r ? r + (size_t)a * w * cout : NULL,
                                                 relu, cout, o5, 2);
            CHECK(s5 == LIIF_OK, "liif_conv_wino_rows failed on a band");
            for (size_t i = (size_t)w * cout; i < (size_t)(bh - 1) * w * cout; i++)
                differ += memcmp(&o5[i], &o3[(size_t)a * w * cout + i], sizeof(float)) != 0;
        }
        /* rows only, in place (out += conv + bias, the trainer's input gradient): the same bits */
        size_t inplace_differ = 0;
        if (r) {
            float *o6 = malloc(no * sizeof *o6);
            memcpy(o6, r, no * sizeof *o6);
            CHECK(liif_conv_wino_rows(in, h, w, cases[k].y0, cin, ur, b, o6, relu, cout, o6, 2) == LIIF_OK,
                  "liif_conv_wino_rows failed in place");
            inplace_differ = memcmp(o6, o3, no * sizeof *o6) != 0;
            free(o6);
        }
        double worst = 0, worst_rows = 0, scale = 0;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int o = 0; o < cout; o++) {
                    double acc = b ? b[o] : 0.0, mag = 0;
                    for (int i = 0; i < cin; i++)
                        for (int t = 0; t < 9; t++) {
                            int yy = y + t / 3 - 1, xx = x + t % 3 - 1;
                            if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
                            double term = (double)in[((size_t)yy * w + xx) * cin + i] * wt[((size_t)o * cin + i) * 9 + t];
                            acc += term;
                            mag += fabs(term);
                        }
                    size_t at = ((size_t)y * w + x) * cout + o;
                    if (r) acc += r[at];
                    if (relu && acc < 0) acc = 0;
                    worst = fmax(worst, fabs(acc - o1[at]));
                    worst_rows = fmax(worst_rows, fabs(acc - o3[at]));
                    scale = fmax(scale, mag);
                }
        printf("winograd %2dx%-2d from row %d, %3d -> %3d%s%s%s: max|diff| %.3g, rows only %.3g (largest sum of |terms| "
               "%.3g); rows only, a band's inner rows: %zu differ\n", h, w, cases[k].y0, cin, cout, b ? " +bias" : "",
               r ? " +res" : "", relu ? " relu" : "", worst, worst_rows, scale, differ);
        CHECK(worst <= 1e-5 * scale, "winograd differs from the direct convolution by %g", worst);
        CHECK(worst_rows <= 1e-5 * scale, "winograd along rows differs from the direct convolution by %g", worst_rows);
        CHECK(!memcmp(o1, o2, no * sizeof *o1), "winograd on 1 and 2 threads differs");
        CHECK(!memcmp(o3, o4, no * sizeof *o3), "winograd along rows on 1 and 2 threads differs");
        CHECK(differ == 0, "winograd along rows: %zu samples of a band differ from the whole", differ);
        CHECK(!inplace_differ, "winograd along rows in place (res = out) differs");
        free(in); free(wt); free(bias); free(res); free(u); free(o1); free(o2); free(ur); free(o3); free(o4); free(o5);
    }
}

/* The test's own turning of an interleaved RGB w x h image (written apart from the engine's): transposed when k & 4,
 * then flipped left-right when k & 1 and upside down when k & 2. */
static float *turned(const float *img, int w, int h, int k, int *tw, int *th)
{
    *tw = k & 4 ? h : w;
    *th = k & 4 ? w : h;
    float *t = malloc((size_t)w * h * 3 * sizeof(float));
    for (int y = 0; y < *th; y++)
        for (int x = 0; x < *tw; x++) {
            int sx = k & 1 ? *tw - 1 - x : x, sy = k & 2 ? *th - 1 - y : y; /* undo the flips, then the transpose */
            int ox = k & 4 ? sy : sx, oy = k & 4 ? sx : sy;
            memcpy(t + ((size_t)y * *tw + x) * 3, img + ((size_t)oy * w + ox) * 3, 3 * sizeof(float));
        }
    return t;
}

/* The inverse of turned() for the same k: the image of size tw x th back. A turn without the transpose undoes
 * itself; with it, the flips trade axes. */
static float *unturned(const float *t, int tw, int th, int k)
{
    int w, h;
    return turned(t, tw, th, k & 4 ? 4 | (k & 1) << 1 | (k & 2) >> 1 : k, &w, &h);
}

typedef struct { int calls; double last; int backwards; } progress_log;
static int progress_log_cb(void *user, double fraction)
{
    progress_log *p = user;
    p->backwards |= fraction < p->last - 1e-12;
    p->last = fraction;
    p->calls++;
    return 0;
}

/* liif_options.ensemble: the mean of the 8 turned inputs' outputs, turned back (against the test's own turning),
 * the same result for every turn of the input turned back (the mean over a group does not depend on where it
 * starts), exact regions, LIIF-GAN's detail added once from the upright input, progress and cancel. */
static void ensemble(void)
{
    rm_spec one = {8, 2, 2, 16, 1, 1, 1, "liif", 31, 3.0f}, two = {8, 2, 2, 16, 1, 1, 1, "liif-gan", 32, 3.0f};
    liif_model *models[2] = {rm_load(tmpdir, &one), rm_load(tmpdir, &two)};
    int w = 13, h = 9, W = 30, H = 19; /* odd sizes, a different scale per axis */
    float *img = rm_image(w, h, 5);
    for (int mi = 0; mi < 2; mi++) {
        liif_model *m = models[mi];
        liif_options o;
        liif_options_init(&o);
        o.unclamped = 1; /* means of unclamped values: no clamp between them and the test */
        o.detail = 0;
        liif_region full = {W, H, 0, 0, W, H};
        float *plain = run(m, LIIF_BACKEND_CPU, img, w, h, full, &o);
        o.ensemble = 1;
        float *ens = run(m, LIIF_BACKEND_CPU, img, w, h, full, &o);
        /* 1. the mean of the 8 renders of turned inputs, turned back */
        double *mean = calloc((size_t)W * H * 3, sizeof(double));
        float *meanf = malloc((size_t)W * H * 3 * sizeof(float));
        liif_options p = o;
        p.ensemble = 0;
        for (int k = 0; k < 8; k++) {
            int tw, th;
            float *ti = turned(img, w, h, k, &tw, &th);
            liif_region tr = {k & 4 ? H : W, k & 4 ? W : H, 0, 0, k & 4 ? H : W, k & 4 ? W : H};
            float *to = run(m, LIIF_BACKEND_CPU, ti, tw, th, tr, &p), *back = unturned(to, tr.w, tr.h, k);
            for (size_t i = 0; i < (size_t)W * H * 3; i++) mean[i] += back[i] / 8.0;
            free(ti); free(to); free(back);
        }
        for (size_t i = 0; i < (size_t)W * H * 3; i++) meanf[i] = (float)mean[i];
        char what[120];
        snprintf(what, sizeof what, "%-8s ensemble = mean of 8 turned renders turned back", m->cfg.n_decoders > 1 ? "liif-gan" : "liif");
        tu_close(what, ens, meanf, (size_t)W * H * 3, 2e-6);
        double moved = tu_maxdiff(ens, plain, (size_t)W * H * 3);
        printf("ensemble moves the output by up to %.3g\n", moved);
        CHECK(moved > 1e-3, "the ensemble equals the plain render (%g): nothing was averaged", moved);
        /* 2. the ensemble of each turned input is the turned ensemble */
        for (int k = 1; k < 8; k++) {
            int tw, th, TW, TH;
            float *ti = turned(img, w, h, k, &tw, &th), *want = turned(ens, W, H, k, &TW, &TH);
            liif_region tr = {k & 4 ? H : W, k & 4 ? W : H, 0, 0, k & 4 ? H : W, k & 4 ? W : H};
            float *got = run(m, LIIF_BACKEND_CPU, ti, tw, th, tr, &o);
            snprintf(what, sizeof what, "ensemble of the input turned %d = its ensemble turned", k);
            tu_close(what, got, want, (size_t)W * H * 3, 2e-6);
            free(ti); free(want); free(got);
        }
        /* 3. regions are crops of the whole, clamped or not: within 1e-5 as any region (tiling_and_regions), not to the
         * bit as bands are without the ensemble, since a band of the transposed input is a column strip */
        for (int c = 0; c < 2; c++) {
            o.unclamped = !c;
            float *whole = run(m, LIIF_BACKEND_CPU, img, w, h, full, &o);
            liif_region regs[] = {{W, H, 3, 2, 11, 7}, {W, H, 0, 11, W, 8}, {W, H, 17, 0, 13, H}};
            for (size_t ri = 0; ri < 3; ri++) {
                liif_region r = regs[ri];
                float *part = run(m, LIIF_BACKEND_CPU, img, w, h, r, &o);
                double d = tu_region_maxdiff(part, whole, W, r.x, r.y, r.w, r.h);
                printf("ensemble region %dx%d+%d+%d vs the crop of the whole: max|diff| %.3g\n", r.w, r.h, r.x, r.y, d);
                CHECK(d <= 1e-5, "ensemble region %dx%d+%d+%d differs from the crop by %g", r.w, r.h, r.x, r.y, d);
                free(part);
            }
            if (c) {
                double lo = 1, hi = 0;
                for (size_t i = 0; i < (size_t)W * H * 3; i++) lo = fmin(lo, whole[i]), hi = fmax(hi, whole[i]);
                CHECK(lo >= 0 && hi <= 1, "clamped ensemble outside [0,1]: %g..%g", lo, hi);
            }
            free(whole);
        }
        o.unclamped = 1;
        /* 4. a two-decoder model's detail: added once, from the upright input: ens(a) - ens(0) = plain(a) - plain(0) */
        if (m->cfg.n_decoders > 1) {
            o.detail = 0.6;
            p.detail = 0.6;
            float *ens_a = run(m, LIIF_BACKEND_CPU, img, w, h, full, &o), *plain_a = run(m, LIIF_BACKEND_CPU, img, w, h, full, &p);
            for (size_t i = 0; i < (size_t)W * H * 3; i++) {
                ens_a[i] -= ens[i];
                plain_a[i] -= plain[i];
            }
            tu_close("liif-gan ensemble: detail * d2 of the upright input, once", ens_a, plain_a, (size_t)W * H * 3, 2e-6);
            double d2 = 0;
            for (size_t i = 0; i < (size_t)W * H * 3; i++) d2 = fmax(d2, fabs(plain_a[i]));
            CHECK(d2 > 1e-3, "decoder 2 adds nothing (%g): the check above proves nothing", d2);
            free(ens_a); free(plain_a);
            o.detail = 0;
        }
        /* 5. progress runs forward to 1; a cancel in the sixth orientation stops it */
        progress_log pl = {0, 0, 0};
        o.progress = progress_log_cb;
        o.progress_user = &pl;
        o.tile = 4;
        free(run(m, LIIF_BACKEND_CPU, img, w, h, full, &o));
        printf("ensemble progress: %d calls, last %.3f, %s\n", pl.calls, pl.last, pl.backwards ? "went back" : "forward");
        CHECK(pl.calls > 16 && !pl.backwards && pl.last == 1.0, "progress: %d calls, last %g, backwards %d", pl.calls,
              pl.last, pl.backwards);
        cancel_state st = {0, pl.calls * 5 / 8};
        o.progress = cancel_cb;
        o.progress_user = &st;
        liif_engine *e;
        liif_error err;
        liif_engine_new(m, LIIF_BACKEND_CPU, &e, NULL, 0, &err);
        liif_image in = {img, w, h, (size_t)w * 3};
        float *out = malloc((size_t)W * H * 3 * sizeof(float));
        liif_status s = liif_upscale_region(e, &in, &full, out, (size_t)W * 3, &o, &err);
        CHECK(s == LIIF_ERR_CANCELLED && st.ticks == st.stop_after + 1, "cancel in the ensemble: %s after %d calls",
              liif_status_name(s), st.ticks);
        free(out);
        liif_engine_free(e);
        free(plain); free(ens); free(mean); free(meanf);
    }
    free(img);
    liif_model_free(models[0]);
    liif_model_free(models[1]);
}

int main(int argc, char **argv)
{
    static const struct { const char *name; void (*run)(void); } parts[] = {
        {"fast-vs-ref", fast_vs_reference}, {"tiling", tiling_and_regions}, {"bands", bands_bit_exact}, {"cancel", cancel}, {"bad-args", bad_arguments}, {"reuse", reuse},
        {"detail-zero", detail_zero}, {"unclamped", unclamped}, {"default-detail", default_detail},
        {"models-in-turn", models_in_turn}, {"winograd", winograd}, {"ensemble", ensemble}};
    snprintf(tmpdir, sizeof tmpdir, "/tmp/liif-engine-XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    int ran = 0;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        if (argc < 2 || !strcmp(argv[1], parts[i].name)) {
            parts[i].run();
            ran++;
        }
    rmdir(tmpdir);
    if (!ran) {
        printf("unknown part %s\n", argv[1]);
        return 2;
    }
    return tu_finish("engine");
}
