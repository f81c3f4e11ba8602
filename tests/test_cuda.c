/* test_cuda.c: every CUDA op and the whole CUDA model against the CPU reference and the PyTorch goldens.
 * usage: test-cuda GOLDEN_DIR [quick]. Exits 77 with the reason when the CUDA module or a GPU is unavailable.
 * quick (for the CPU emulation of the module, tests/cuda-emu, where a 96x80 decode takes seconds): the PyTorch
 * cases at 61x50 and the tiled 96x80 one, not the untiled 96x80 ones (float32 and TF32). */
#include <string.h>
#include <unistd.h>

#include "cuda_util.h"
#include "golden_util.h"
#include "internal.h"
#include "randmodel.h"
#include "safetensors.h"
#include "testutil.h"

static const liif_cuda_module *mod;
static liif_backend *gpu;

/* Tolerances on the normalised error max|got - want| / max|want|: float32 throughout, TF32 GEMMs, and bf16 GEMM
 * operands (8 significant bits: each operand within 2^-9 relative, so a product within ~4e-3; sums of k such products
 * with random signs err by ~4e-3 * sqrt(k) * |typical term|, a few 1e-3 of the largest output; the emulation measures
 * up to 2.5e-3 on the ops and 3.9e-3 through the random models' encoders). A bf16 result must also differ from the float32
 * one (MIN_BF16): float32 passed off as bf16 would meet the tolerance. */
#define TOL_F32 1e-5
#define TOL_TF32 2e-2
#define TOL_BF16 2e-2
#define MIN_BF16 1e-5

static const char *const math_tag[] = {"", " [tf32]", " [bf16]"};
static int quick; /* the CPU emulation: sizes that take it seconds, not minutes */
static int sm;    /* the device's compute capability (device_info's "sm_XY"): the tensor-core kernels need 80 */

static const double math_tol[] = {TOL_F32, TOL_TF32, TOL_BF16};

static unsigned long long rng = 12345;

static float *random_array(size_t n, float scale)
{
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = rm_uniform(&rng) * scale;
    return p;
}

/* Prints max|diff| and the normalised error; a failure when the latter exceeds tol. Returns the normalised error. */
static double check_norm(const char *what, const float *got, const float *want, size_t n, double tol)
{
    double d = tu_maxdiff(got, want, n), mag = 0;
    for (size_t i = 0; i < n; i++) mag = fabs(want[i]) > mag ? fabs(want[i]) : mag;
    double nerr = d / (mag > 1e-30 ? mag : 1e-30);
    printf("%-62s max|diff| %.3g  norm err %.3g (tol %.0e) %s\n", what, d, nerr, tol, nerr <= tol ? "ok" : "FAIL");
    if (!(nerr <= tol)) tu_failures++;
    return nerr;
}

/* check_norm, and for bf16 (math 2) also a visible difference from float32's result. */
static void check_math(const char *what, const float *got, const float *want, size_t n, int math)
{
    double nerr = check_norm(what, got, want, n, math_tol[math]);
    if (math != 2) return;
    int ok = nerr >= MIN_BF16;
    printf("  %-60s %s\n", "bf16 rounding visible (norm err >= 1e-5)", ok ? "ok" : "FAIL");
    if (!ok) tu_failures++;
}

/* ------------------------------------------------------------ single ops */

/* out (h, w, cout) = act(conv3x3(in) + bias + res), accumulated in double (the oracle). */
static void conv_oracle(const float *in, int h, int w, int cin, const float *wt, const float *b, const float *res,
                        int relu, int cout, float *out)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int o = 0; o < cout; o++) {
                double acc = b ? b[o] : 0.0;
                for (int i = 0; i < cin; i++)
                    for (int k = 0; k < 9; k++) {
                        int yy = y + k / 3 - 1, xx = x + k % 3 - 1;
                        if (yy >= 0 && yy < h && xx >= 0 && xx < w)
                            acc += (double)wt[(o * cin + i) * 9 + k] * in[((size_t)yy * w + xx) * cin + i];
                    }
                size_t idx = ((size_t)y * w + x) * cout + o;
                if (res) acc += res[idx];
                out[idx] = relu && acc < 0 ? 0.0f : (float)acc;
            }
}

/* Each case on the backend's path for the kind (for TF32 and bf16 the implicit-GEMM kernel where it applies: cin a
 * multiple of 8 (TF32) or 16 (bf16), cout of 16, on sm_80+) and, for those kinds, on the im2col + cuBLAS path too. Both must meet the kind's
 * tolerance against the oracle; where the implicit kernel applies, the two results must differ (it ran: its sums go
 * in another order), and where it does not (cin 3), they must be equal bit for bit (the fallback ran). */
static void test_conv(int fast)
{
    struct { int h, w, cin, cout, bias, res, relu; } cases[] = {
        {9, 11, 3, 64, 1, 0, 0},    /* encoder head */
        {13, 17, 64, 64, 1, 0, 1},  /* residual block, first conv */
        {13, 17, 64, 64, 1, 1, 0},  /* residual block, second conv */
        {7, 5, 64, 256, 0, 0, 0},   /* layer-1 precompute */
        {37, 21, 64, 64, 1, 1, 1},  /* 3 x 2 tiles of 16 x 16, partial in both directions */
        {18, 16, 32, 80, 1, 0, 1},  /* a last column block of 16 outputs */
        {5, 19, 16, 16, 1, 1, 0},   /* the random models' width */
        {130, 150, 64, 64, 1, 1, 1}, /* on a GPU only: 90 tiles, many blocks at once */
        {67, 45, 64, 256, 0, 0, 0},
    };
    size_t n_cases = sizeof cases / sizeof cases[0] - (quick ? 2 : 0);
    for (size_t c = 0; c < n_cases; c++) {
        int h = cases[c].h, w = cases[c].w, cin = cases[c].cin, cout = cases[c].cout;
        size_t np = (size_t)h * w;
        float *in = random_array(np * cin, 1.0f), *wt = random_array((size_t)cout * cin * 9, 1.0f / sqrtf(9.0f * cin));
        float *b = cases[c].bias ? random_array(cout, 0.5f) : NULL, *res = cases[c].res ? random_array(np * cout, 1.0f) : NULL;
        float *got[2] = {calloc(np * cout, sizeof(float)), calloc(np * cout, sizeof(float))};
        float *want = malloc(np * cout * sizeof(float));
        conv_oracle(in, h, w, cin, wt, b, res, cases[c].relu, cout, want);
        for (int path = 0; path < (fast ? 2 : 1); path++) {
            liif_error err;
            char what[128];
            snprintf(what, sizeof what, "op conv3x3 %dx%dx%d -> %d%s%s%s%s%s", h, w, cin, cout, b ? " +bias" : "",
                     res ? " +res" : "", cases[c].relu ? " relu" : "", math_tag[fast], path ? " im2col" : "");
            if (mod->op_conv3x3(gpu, in, h, w, cin, wt, b, res, cases[c].relu, cout, got[path],
                                fast | (path ? LIIF_CUDA_OP_IM2COL : 0), &err)) {
                printf("FAIL %s: %s\n", what, err.msg);
                tu_failures++;
            } else check_math(what, got[path], want, np * cout, fast);
        }
        if (fast) {
            int implicit = sm >= 80 && cin % (fast == 2 ? 16 : 8) == 0 && cout % 16 == 0, same = !memcmp(got[0], got[1], np * cout * sizeof(float));
            int ok = implicit ? !same : same;
            printf("  %-60s %s\n", implicit ? "implicit GEMM ran (differs from im2col)" : "im2col fallback (equal)",
                   ok ? "ok" : "FAIL");
            if (!ok) tu_failures++;
        }
        free(in); free(wt); free(b); free(res); free(got[0]); free(got[1]); free(want);
    }
}

static void test_linear(int fast)
{
    struct { int rows, k, n, relu; } cases[] = {{1000, 580, 256, 1}, {777, 256, 256, 1}, {333, 256, 3, 0}, {5, 68, 256, 1}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int rows = cases[c].rows, k = cases[c].k, n = cases[c].n;
        float *x = random_array((size_t)rows * k, 1.0f), *wt = random_array((size_t)n * k, 1.0f / sqrtf((float)k));
        float *b = random_array(n, 0.5f), *got = calloc((size_t)rows * n, sizeof(float)), *want = malloc((size_t)rows * n * sizeof(float));
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < n; o++) {
                double acc = b[o];
                for (int i = 0; i < k; i++) acc += (double)x[(size_t)r * k + i] * wt[(size_t)o * k + i];
                want[(size_t)r * n + o] = cases[c].relu && acc < 0 ? 0.0f : (float)acc;
            }
        liif_error err;
        char what[128];
        snprintf(what, sizeof what, "op linear %d x %d -> %d%s%s", rows, k, n, cases[c].relu ? " relu" : "", math_tag[fast]);
        if (mod->op_linear(gpu, x, rows, k, wt, b, cases[c].relu, n, got, fast, &err)) {
            printf("FAIL %s: %s\n", what, err.msg);
            tu_failures++;
        } else check_math(what, got, want, (size_t)rows * n, fast);
        free(x); free(wt); free(b); free(got); free(want);
    }
}

/* The geometry must be bit-identical to the CPU's (internal.h's helpers): indices decide ties. */
static void test_geometry(void)
{
    struct { int H, W, h, w, y0, x0, rows, cols, ens; } cases[] = {
        {61, 50, 24, 20, 0, 0, 61, 50, 1}, {96, 80, 24, 20, 0, 0, 96, 80, 1}, {61, 50, 24, 20, 0, 0, 61, 50, 0},
        {2160, 3840, 1080, 1920, 1000, 2000, 40, 300, 1}, {1777, 1333, 333, 259, 700, 600, 50, 77, 0},
        {1777, 1333, 333, 259, 1700, 1300, 77, 33, 1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        liif_config cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.local_ensemble = cases[c].ens;
        cfg.feat_unfold = cfg.cell_decode = 1;
        int ylo, yhi, xlo, xhi, ns = cfg.local_ensemble ? 4 : 1;
        liif_latent_range(&cfg, cases[c].y0, cases[c].y0 + cases[c].rows, cases[c].H, cases[c].h, &ylo, &yhi);
        liif_latent_range(&cfg, cases[c].x0, cases[c].x0 + cases[c].cols, cases[c].W, cases[c].w, &xlo, &xhi);
        liif_decode_job job = {.H = cases[c].H, .W = cases[c].W, .h = cases[c].h, .w = cases[c].w, .ty = ylo, .tx = xlo,
                               .th = yhi - ylo + 1, .tw = xhi - xlo + 1, .y0 = cases[c].y0, .x0 = cases[c].x0,
                               .rows = cases[c].rows, .cols = cases[c].cols, .alpha = 1};
        size_t R = (size_t)job.rows * job.cols * ns;
        int *lat = malloc(R * sizeof(int));
        float *extra = malloc(R * 4 * sizeof(float)), *weight = malloc(R * sizeof(float));
        liif_error err;
        if (mod->op_geometry(gpu, &cfg, &job, lat, extra, weight, &err)) {
            printf("FAIL op geometry: %s\n", err.msg);
            tu_failures++;
            free(lat); free(extra); free(weight);
            continue;
        }
        long bad_lat = 0, bad_extra = 0, bad_weight = 0;
        static const int vs_ens[2] = {-1, 1}, vs_one[1] = {0};
        const int *vs = cfg.local_ensemble ? vs_ens : vs_one;
        int nv = cfg.local_ensemble ? 2 : 1;
        float cr = (float)(2.0 / job.H) * (float)job.h, cc = (float)(2.0 / job.W) * (float)job.w;
        for (int r = 0; r < job.rows; r++)
            for (int col = 0; col < job.cols; col++) {
                float qr = liif_coord(job.y0 + r, job.H), qc = liif_coord(job.x0 + col, job.W), area[4], ex[4][4];
                int lt[4];
                for (int a = 0, k = 0; a < nv; a++)
                    for (int b = 0; b < nv; b++, k++) {
                        int i = liif_nearest(liif_shifted(qr, vs[a], job.h, cfg.local_ensemble), job.h);
                        int j = liif_nearest(liif_shifted(qc, vs[b], job.w, cfg.local_ensemble), job.w);
                        ex[k][0] = (qr - liif_coord(i, job.h)) * (float)job.h;
                        ex[k][1] = (qc - liif_coord(j, job.w)) * (float)job.w;
                        ex[k][2] = cr;
                        ex[k][3] = cc;
                        lt[k] = (i - job.ty) * job.tw + (j - job.tx);
                        area[k] = fabsf(ex[k][0] * ex[k][1]) + 1e-9f;
                    }
                float tot = ns > 1 ? ((area[0] + area[1]) + area[2]) + area[3] : area[0];
                for (int k = 0; k < ns; k++) {
                    size_t row = ((size_t)r * job.cols + col) * ns + k;
                    float wk = ns == 1 ? area[0] / area[0] : area[3 - k] / tot;
                    bad_lat += lat[row] != lt[k];
                    bad_extra += memcmp(extra + 4 * row, ex[k], sizeof ex[k]) != 0;
                    bad_weight += memcmp(weight + row, &wk, sizeof wk) != 0;
                }
            }
        printf("op geometry %dx%d from %dx%d rows %d+%d cols %d+%d%s: %zu rows, %ld latent / %ld coord / %ld weight "
               "mismatches (must be 0, bit-exact) %s\n",
               job.W, job.H, job.w, job.h, job.y0, job.rows, job.x0, job.cols, cfg.local_ensemble ? "" : " no-ensemble", R,
               bad_lat, bad_extra, bad_weight, bad_lat || bad_extra || bad_weight ? "FAIL" : "ok");
        if (bad_lat || bad_extra || bad_weight) tu_failures++;
        free(lat); free(extra); free(weight);
    }
}

/* ------------------------------------------------------------ backend vs reference */

/* Encoder features (last, mid) and a whole decode, with and without precompute, against cpu-ref. */
static void test_backend_model(const char *tag, const rm_spec *sp, int fast)
{
    liif_model *m = rm_load(tmpdir, sp); /* often at the address of the last one, freed: the backend must notice */
    const liif_config *c = &m->cfg;
    int w = 23, h = 19, W = 53, H = 47;
    float *img = rm_image(w, h, 1);
    liif_backend *ref = liif_backend_ref_new();
    liif_error err;
    char what[160];
    gpu->fast_math = fast;
    ref->encode(ref, m, img, (size_t)w * 3, h, w, 0, 0, &err);
    liif_decode_job job = {.H = H, .W = W, .h = h, .w = w, .ty = 0, .tx = 0, .th = h, .tw = w,
                           .y0 = 0, .x0 = 0, .rows = H, .cols = W, .alpha = 0.7f};
    float *want = malloc((size_t)W * H * 3 * sizeof(float)), *got = malloc((size_t)W * H * 3 * sizeof(float));
    ref->decode(ref, m, &job, want, (size_t)W * 3, &err);
    for (int pre = 0; pre < 2; pre++) {
        if (gpu->encode(gpu, m, img, (size_t)w * 3, h, w, 0, pre, &err)) {
            printf("FAIL %s: encode: %s\n", tag, err.msg);
            tu_failures++;
            break;
        }
        size_t nf = (size_t)w * h * c->n_feats;
        if (!pre) {
            snprintf(what, sizeof what, "%s: encoder features (last)", tag);
            const float *f = gpu->features(gpu, 0);
            if (f) check_math(what, f, ref->features(ref, 0), nf, fast);
            else { printf("FAIL %s: no features\n", what); tu_failures++; }
            if (ref->features(ref, 1)) {
                snprintf(what, sizeof what, "%s: encoder features (mid)", tag);
                f = gpu->features(gpu, 1);
                if (f) check_math(what, f, ref->features(ref, 1), nf, fast);
                else { printf("FAIL %s: no features\n", what); tu_failures++; }
            }
        }
        job.precompute = pre;
        memset(got, 0, (size_t)W * H * 3 * sizeof(float));
        snprintf(what, sizeof what, "%s: decode %dx%d%s", tag, W, H, pre ? " (precompute)" : " (plain)");
        if (gpu->decode(gpu, m, &job, got, (size_t)W * 3, &err)) {
            printf("FAIL %s: %s\n", what, err.msg);
            tu_failures++;
        } else check_math(what, got, want, (size_t)W * H * 3, fast);
        if (pre && fast >= 1) { /* TF32 or bf16 with the precompute: the fused decoder where the shape allows, else
                                 * per layer */
            float *layers = calloc((size_t)W * H * 3, sizeof(float));
            setenv("LIIF_CUDA_DECODER", "layers", 1);
            snprintf(what, sizeof what, "%s: decode %dx%d (precompute, per layer)", tag, W, H);
            if (gpu->decode(gpu, m, &job, layers, (size_t)W * 3, &err)) {
                printf("FAIL %s: %s\n", what, err.msg);
                tu_failures++;
            } else check_math(what, layers, want, (size_t)W * H * 3, fast);
            unsetenv("LIIF_CUDA_DECODER");
            int fused = sm >= 80 && sp->n_hidden >= 2 && sp->hidden % 16 == 0 && sp->hidden <= 256;
            if (fused && c->n_decoders == 2) { /* both decoders in one launch: the sums of two launches, bit for bit */
                float *sep = calloc((size_t)W * H * 3, sizeof(float));
                setenv("LIIF_CUDA_DECODER", "separate", 1);
                int bad = gpu->decode(gpu, m, &job, sep, (size_t)W * 3, &err) != LIIF_OK;
                unsetenv("LIIF_CUDA_DECODER");
                bad = bad || memcmp(got, sep, (size_t)W * H * 3 * sizeof(float)) != 0;
                printf("  %-60s %s\n", "two decoders in one pass equal two launches (bit-exact)", bad ? "FAIL" : "ok");
                tu_failures += bad;
                free(sep);
            }
            int same = !memcmp(got, layers, (size_t)W * H * 3 * sizeof(float)), ok = fused ? !same : same;
            printf("  %-60s %s\n", fused ? "fused decoder ran (differs from per layer)" : "per-layer decoder (equal)",
                   ok ? "ok" : "FAIL");
            if (!ok) tu_failures++;
            free(layers);
        }
    }
    if (c->n_decoders == 2) { /* detail 0: decoder 1 alone; decoder 2 is not run (a NaN in it reaches nothing) */
        liif_mlp *d2 = &m->dec[1];
        float *bl = (float *)d2->b[d2->n_layers - 1], keep = bl[0];
        job.alpha = 0;
        ref->decode(ref, m, &job, want, (size_t)W * 3, &err);
        bl[0] = NAN;
        m->serial ^= 1ull << 62; /* changed weights: the backend uploads them again, and so encodes again */
        snprintf(what, sizeof what, "%s: decode %dx%d at detail 0, NaN in decoder 2", tag, W, H);
        memset(got, 0, (size_t)W * H * 3 * sizeof(float));
        if (gpu->encode(gpu, m, img, (size_t)w * 3, h, w, 0, 1, &err) || gpu->decode(gpu, m, &job, got, (size_t)W * 3, &err)) {
            printf("FAIL %s: %s\n", what, err.msg);
            tu_failures++;
        } else check_math(what, got, want, (size_t)W * H * 3, fast);
        bl[0] = keep;
        m->serial ^= 1ull << 62;
    }
    { /* liif_options.unclamped: the same values without the clamp (the GIMP preview blends two details with it).
       * Decoder 1's last layer x8 makes the output overshoot [0,1] whatever the model. */
        liif_mlp *d1 = &m->dec[0];
        int last = d1->n_layers - 1, outside = 0, want_outside = 0;
        float *wl = (float *)d1->w[last];
        size_t nw = (size_t)d1->dims[last] * d1->dims[last + 1], n = (size_t)W * H * 3;
        for (size_t i = 0; i < nw; i++) wl[i] *= 8.0f;
        m->serial ^= 1ull << 61; /* changed weights: uploaded again */
        job.alpha = 0.7f;
        job.unclamped = 1;
        snprintf(what, sizeof what, "%s: decode %dx%d unclamped", tag, W, H);
        memset(got, 0, n * sizeof(float));
        int bad = ref->decode(ref, m, &job, want, (size_t)W * 3, &err) != LIIF_OK ||
                  gpu->encode(gpu, m, img, (size_t)w * 3, h, w, 0, 1, &err) != LIIF_OK ||
                  gpu->decode(gpu, m, &job, got, (size_t)W * 3, &err) != LIIF_OK;
        if (bad) {
            printf("FAIL %s: %s\n", what, err.msg);
            tu_failures++;
        } else check_math(what, got, want, n, fast);
        for (size_t i = 0; !bad && i < n; i++) {
            outside += got[i] < 0.0f || got[i] > 1.0f;
            want_outside += want[i] < 0.0f || want[i] > 1.0f;
        }
        int ok = !bad && want_outside > 0 && outside > 0;
        printf("  %-60s %s\n", "unclamped: outside [0,1] as the reference is", ok ? "ok" : "FAIL");
        tu_failures += !ok;
        for (size_t i = 0; i < nw; i++) wl[i] /= 8.0f;
        m->serial ^= 1ull << 61;
        job.unclamped = 0;
    }
    gpu->fast_math = 0;
    ref->destroy(ref);
    free(img); free(want); free(got);
    liif_model_free(m);
}

/* ------------------------------------------------------------ golden (PyTorch) through the engine */

/* The whole W x H output on the CUDA engine against PyTorch's pred and rgb (ties included: the
 * coordinates are bit-exact). tile > 0 forces tiling. */
static void golden_case(const liif_model *m, const float *img, const char *file, int W, int H, int precompute, int fast,
                        int tile, const char *tag)
{
    liif_engine *e;
    liif_error err;
    liif_options o;
    liif_options_init(&o);
    o.precompute = precompute;
    static const liif_precision ps[] = {LIIF_PRECISION_FP32, LIIF_PRECISION_TF32, LIIF_PRECISION_BF16};
    o.precision = ps[fast];
    o.tile = tile;
    if (liif_engine_new(m, LIIF_BACKEND_CUDA, &e, NULL, 0, &err)) { printf("FAIL %s: %s\n", tag, err.msg); tu_failures++; return; }
    const char *want_name[] = {"fp32", "tf32", "bf16"};
    const char *name = liif_engine_precision_name(e, o.precision, NULL, 0);
    CHECK(!strcmp(name, want_name[fast]), "%s: the engine computes %s, not %s", tag, name, want_name[fast]);
    float *out = malloc((size_t)W * H * 3 * sizeof(float));
    liif_image in = {img, 20, 24, 60};
    liif_region r = {W, H, 0, 0, W, H};
    char what[160];
    if (liif_upscale_region(e, &in, &r, out, (size_t)W * 3, &o, &err)) {
        printf("FAIL %s: %s\n", tag, err.msg);
        tu_failures++;
    } else {
        int64_t n;
        float *pred = read_tensor(file, "pred", &n), *rgb = read_tensor(file, "rgb", &n), *got = malloc(n * sizeof(float));
        for (int64_t i = 0; i < n; i++) got[i] = (out[i] - 0.5f) / 0.5f;
        /* atol, README's criterion for float32; TF32 is held to 5e-3, bf16 (8 significant bits per operand through
         * 34 convolutions and the MLP) to 2e-3 on pred's [-1, 1] (a quarter of one 8-bit level): the emulation, whose
         * bf16 GEMMs sum exactly, measures 1.5e-4 on the trained golden weights */
        double tol = fast == 2 ? 2e-3 : fast ? 5e-3 : 1e-5;
        snprintf(what, sizeof what, "%s: pred %dx%d", tag, W, H);
        tu_close(what, got, pred, n, tol);
        snprintf(what, sizeof what, "%s: rgb %dx%d", tag, W, H);
        tu_close(what, out, rgb, n, tol);
        free(pred); free(rgb); free(got);
    }
    free(out);
    liif_engine_free(e);
}

static void test_golden(void)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/liif-edsr-baseline", golden);
    struct stat st;
    if (stat(dir, &st) != 0) {
        printf("golden folder %s is absent: PyTorch comparisons skipped\n", dir);
        return;
    }
    int gw, gh;
    float *img = input_hwc(&gw, &gh);
    liif_model *def = load_variant(NULL, NULL, NULL);
    liif_model *no_unfold = load_variant("weights_no_unfold_layer0.safetensors", NULL, NULL);
    liif_model *no_cell = load_variant("weights_no_cell_layer0.safetensors", NULL, NULL);
    liif_model *no_ens = load_variant(NULL, "liif.local_ensemble", "false");
    liif_error err;
    int64_t n;
    gpu->fast_math = 0;
    if (gpu->encode(gpu, def, img, 60, 24, 20, 0, 0, &err)) { printf("FAIL golden encode: %s\n", err.msg); tu_failures++; }
    else {
        float *want = read_tensor("encoder.safetensors", "feat", &n), *hwc = malloc(n * sizeof(float));
        for (int c = 0; c < 64; c++)
            for (int i = 0; i < 24 * 20; i++) hwc[i * 64 + c] = want[c * 24 * 20 + i];
        const float *f = gpu->features(gpu, 0);
        if (f) tu_close("cuda: encoder features [24x20x64] vs PyTorch", f, hwc, n, 1e-5);
        else { printf("FAIL no features\n"); tu_failures++; }
        free(want); free(hwc);
    }
    for (int pre = 0; pre < 2; pre++) {
        char tag[96];
        snprintf(tag, sizeof tag, "cuda%s default", pre ? "" : " (no precompute)");
        golden_case(def, img, "case_default_61x50.safetensors", 50, 61, pre, 0, 0, tag);
        if (!quick) golden_case(def, img, "case_default_96x80.safetensors", 80, 96, pre, 0, 0, tag);
        snprintf(tag, sizeof tag, "cuda%s no_unfold", pre ? "" : " (no precompute)");
        golden_case(no_unfold, img, "case_no_unfold_61x50.safetensors", 50, 61, pre, 0, 0, tag);
        snprintf(tag, sizeof tag, "cuda%s no_ensemble", pre ? "" : " (no precompute)");
        golden_case(no_ens, img, "case_no_ensemble_61x50.safetensors", 50, 61, pre, 0, 0, tag);
        snprintf(tag, sizeof tag, "cuda%s no_cell", pre ? "" : " (no precompute)");
        golden_case(no_cell, img, "case_no_cell_61x50.safetensors", 50, 61, pre, 0, 0, tag);
    }
    golden_case(def, img, "case_default_96x80.safetensors", 80, 96, 1, 0, 4, "cuda tiled (4 px tiles) default");
    if (!quick) golden_case(def, img, "case_default_96x80.safetensors", 80, 96, 1, 1, 0, "cuda fast_math (TF32) default");
    else printf("quick: the untiled 96x80 and TF32 PyTorch cases left out\n");
    golden_case(def, img, "case_default_61x50.safetensors", 50, 61, 1, 2, 0, "cuda bf16 default");
    if (!quick) golden_case(def, img, "case_default_96x80.safetensors", 80, 96, 1, 2, 0, "cuda bf16 default");
    liif_model_free(def); liif_model_free(no_unfold); liif_model_free(no_cell); liif_model_free(no_ens);
    free(img);
}

/* liif_options.ensemble on the GPU: eight sub-renders of turned inputs (the transposed ones as column strips), each
 * flushed before it is turned back, against the fast CPU's ensemble; a band too, and LIIF-GAN's detail added once. */
static void test_ensemble(const rm_spec *sp)
{
    liif_model *m = rm_load(tmpdir, sp);
    int w = 15, h = 11, W = 37, H = 26;
    float *img = rm_image(w, h, 9), *got = malloc((size_t)W * H * 3 * sizeof(float)),
          *want = malloc((size_t)W * H * 3 * sizeof(float));
    liif_image in = {img, w, h, (size_t)w * 3};
    liif_engine *gpu_e = NULL, *cpu_e = NULL;
    liif_error err;
    if (liif_engine_new(m, LIIF_BACKEND_CUDA, &gpu_e, NULL, 0, &err) || liif_engine_new(m, LIIF_BACKEND_CPU, &cpu_e, NULL, 0, &err)) {
        printf("FAIL ensemble: %s\n", err.msg);
        tu_failures++;
    } else {
        liif_region regs[] = {{W, H, 0, 0, W, H}, {W, H, 0, 9, W, 8}};
        for (int d = 0; d < 2; d++)
            for (int ri = 0; ri < 2; ri++) {
                liif_options o;
                liif_options_init(&o);
                o.ensemble = 1;
                o.detail = d ? 0.7 : 0;
                const liif_region *r = &regs[ri];
                liif_status a = liif_upscale_region(gpu_e, &in, r, got, (size_t)r->w * 3, &o, &err);
                liif_status b = a ? a : liif_upscale_region(cpu_e, &in, r, want, (size_t)r->w * 3, &o, &err);
                char what[120];
                snprintf(what, sizeof what, "%s: ensemble %dx%d+%d+%d at detail %g vs the CPU's", sp->variant, r->w, r->h,
                         r->x, r->y, o.detail);
                if (a || b) {
                    printf("FAIL %s: %s\n", what, err.msg);
                    tu_failures++;
                } else {
                    tu_close(what, got, want, (size_t)r->w * r->h * 3, 2e-5);
                }
            }
    }
    liif_engine_free(gpu_e);
    liif_engine_free(cpu_e);
    free(img); free(got); free(want);
    liif_model_free(m);
}

int main(int argc, char **argv)
{
    golden = argc > 1 ? argv[1] : "";
    quick = argc > 2 && !strcmp(argv[2], "quick");
    gpu = tc_gpu_or_skip(&mod);
    sm = tc_device_sm(mod);
    printf("compute capability %d: the implicit-GEMM and fused kernels %s\n", sm, sm >= 80 ? "run" : "do not apply");
    snprintf(tmpdir, sizeof tmpdir, "/tmp/liif-cuda-XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;

    for (int math = 0; math < 3; math++) { /* float32, TF32, bf16 */
        test_conv(math);
        test_linear(math);
    }
    test_geometry();

    struct { const char *tag; rm_spec sp; } models[] = {
        {"liif", {16, 2, 2, 32, 1, 1, 1, "liif", 1, 3.0f}},
        {"liif-gan (mid + last)", {16, 4, 2, 32, 1, 1, 1, "liif-gan", 2, 3.0f}},
        {"liif-gan-sf", {16, 2, 2, 32, 1, 1, 1, "liif-gan-sf", 3, 3.0f}},
        {"liif no_unfold", {16, 2, 2, 32, 0, 1, 1, "liif", 4, 3.0f}},
        {"liif no_ensemble", {16, 2, 2, 32, 1, 0, 1, "liif", 5, 3.0f}},
        {"liif no_cell", {16, 2, 2, 32, 1, 1, 0, "liif", 6, 3.0f}},
        {"liif EDSR-baseline shape", {64, 16, 4, 256, 1, 1, 1, "liif", 7, 3.0f}},
    };
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) test_backend_model(models[i].tag, &models[i].sp, 0);
    test_backend_model("liif EDSR-baseline shape [tf32]", &models[6].sp, 1);
    test_backend_model("liif EDSR-baseline shape [bf16]", &models[6].sp, 2);
    test_backend_model("liif-gan (mid + last) [bf16]", &models[1].sp, 2);
    test_backend_model("liif-gan (mid + last) [tf32]", &models[1].sp, 1);
    test_backend_model("liif no_unfold [tf32]", &models[3].sp, 1);
    test_backend_model("liif [bf16]", &models[0].sp, 2);
    test_backend_model("liif no_unfold [bf16]", &models[3].sp, 2);
    rm_spec one_hidden = {16, 2, 1, 32, 1, 1, 1, "liif", 8, 3.0f}; /* layer 1 feeds the last layer: float32 */
    test_backend_model("liif one hidden layer", &one_hidden, 0);
    test_backend_model("liif one hidden layer [bf16]", &one_hidden, 2);

    test_golden();
    test_ensemble(&models[1].sp);

    liif_engine *e;
    liif_error err;
    liif_model *m = rm_load(tmpdir, &models[0].sp);
    char note[256] = "";
    if (liif_engine_new(m, LIIF_BACKEND_AUTO, &e, note, sizeof note, &err) == LIIF_OK) {
        CHECK(!strcmp(liif_engine_backend_name(e), "cuda"), "auto chose %s (%s) although CUDA works",
              liif_engine_backend_name(e), note);
        liif_engine_free(e);
    }
    liif_model_free(m);
    gpu->destroy(gpu);
    rmdir(tmpdir);
    return tu_finish("cuda");
}
