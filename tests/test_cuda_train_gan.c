/* test_cuda_train_gan.c: GPU LIIF-GAN training (core/cuda/train_gan.cuh, vgg.cuh) against the CPU: each
 * discriminator op (conv k x k / stride, BatchNorm in train mode with running stats, LeakyReLU, Linear, BCE) against
 * core/nn/layers_ref.c, the perceptual loss (VGG19 features and input gradient) against core/train/vgg.c and the
 * goldens, whole steps of liif-gan, liif-gan-s and liif-gan-sf (with and without w_fm and w_per) against gan_step,
 * the gradient blocking, the golden LIIF-GAN step whole, and a GPU run continued from its pulled state on the GPU
 * and on the CPU. usage: test-cuda-train-gan [GOLDEN_DIR]. Exits 77 with the reason when no GPU is usable (decided
 * before anything is allocated). */
#include <string.h>
#include <unistd.h>

#include "cuda_util.h"
#include "gpu/train_check.h"
#include "gan_gpu.h"
#include "nn.h"
#include "gan_step.h"
#include "randmodel.h"
#include "test_gan_util.h"

static const liif_cuda_module *mod;
static liif_backend *gpu;
static char tmpdir[64];
static unsigned long long rng = 977;

/* Tolerances on max|got - want| / max|want|. TOL_F32: float32 sums in another order (cuBLAS blocking, block
 * reductions) against the reference's (often double) sums, ~10 ulp of the largest value over sums of up to a
 * few thousand terms. TOL_BN: BatchNorm's backward subtracts batch means (d - mean(d) - xhat mean(d xhat)), and
 * a whole step chains eight of them into the generator, so cancellation amplifies those rounding differences;
 * the golden step's float32-vs-float64 figures (golden/components/README.md, section 6) reach 8.3e-4 on the
 * adversarial gradient with batch 2 over a 1x1 map, the worst case; batch 4 over 2x2 maps here is better
 * conditioned, and 1e-3 stays below that measured worst. TF32: 10-bit mantissas in every GEMM. */
#define TOL_F32 2e-5
#define TOL_BN 1e-3
/* logits: eight train-mode BN forwards, whose 1/std scales rounding up where a channel varies little */
#define TOL_LOGIT 2e-4
#define TOL_TF32 3e-2
/* A whole step in TF32: every GEMM operand keeps a 10-bit mantissa (2^-11 relative, 8192 x float32's), and the
 * BN backwards (d - mean(d) - xhat mean(d xhat)) cancel and amplify those errors, most on small bias gradients
 * (a host emulation of TF32: 0.18 on a G bias of max|g| 6.7e-5, 0.26 on disc.conv0_0.bias), so a tensor's own
 * maximum is no scale: G's and D's gradients are each judged as one vector, max|got - want| / max|want| over all
 * trainable floats. Emulated, operands rounded to nearest / truncated: G 3.3e-4 / 4.0e-3; D, below eight BN
 * backwards, 0.069 / 0.115 (float32's 5e-6 times 8192, about), hence D's looser bound (cuBLAS rounds TF32
 * operands to nearest: 2x margin). */
#define TOL_TF32_GRAD 5e-2
#define TOL_TF32_DGRAD 0.15
/* D's running stats: batch means and variances of TF32 conv outputs (emulated: up to 2.7e-4) */
#define TOL_TF32_STATS 2e-3
/* VGG19's input gradient in TF32, L2 over the image: every conv's TF32 rounding, and the L1's sign flips where a
 * feature of the fake is within that rounding of the real's (each flip moves 2 scale / n at one feature). It grows
 * with depth; emulated (where only the implicit-GEMM kernel rounds to TF32: maps of 16 x 16 and more): 0.043
 * (vgg19_trunc8), 0.081 (vgg19_full); with every conv on that kernel the full one gave 0.102. PyTorch runs its
 * convolutions in TF32 by default (cudnn.allow_tf32) and trains VGG losses so. */
#define TOL_TF32_VGG 0.2
/* Gradients of the perceptual term in float32: an L1 argument within rounding of 0 may flip its sign on one device
 * (2 scale / n at that feature): measured 1.6e-4 of max|g| on liif-gan-s, 1.9e-6 where none flips */
#define TOL_PER 1e-3

static float *random_array(size_t n, float lo, float hi)
{
    float *p = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = lo + (hi - lo) * (rm_uniform(&rng) * 0.5f + 0.5f);
    return p;
}

static float *poisoned(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = NAN; /* every element must be written */
    return p;
}

/* ------------------------------------------------------------ single ops */

static void test_conv(int fast)
{
    struct { int B, IC, H, W, OC, k, stride, bias; } cases[] = {
        {2, 3, 12, 12, 8, 3, 1, 1}, {2, 8, 12, 12, 8, 4, 2, 0}, {3, 5, 9, 7, 6, 4, 2, 0}, {1, 4, 5, 6, 3, 3, 1, 1},
        {4, 16, 2, 2, 16, 4, 2, 0}, /* the last stage of a P = 32 discriminator: 2x2 -> 1x1 */
    };
    double tol = fast ? TOL_TF32 : TOL_F32;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int B = cases[c].B, IC = cases[c].IC, H = cases[c].H, W = cases[c].W, OC = cases[c].OC, k = cases[c].k;
        int s = cases[c].stride, OH = nn_conv_out(H, k, s, 1), OW = nn_conv_out(W, k, s, 1);
        size_t ni = (size_t)B * IC * H * W, no = (size_t)B * OC * OH * OW, nw = (size_t)OC * IC * k * k;
        float *inp = random_array(ni, -1, 1), *wt = random_array(nw, -0.3f, 0.3f), *bias = random_array(OC, -1, 1);
        float *dout = random_array(no, -1, 1);
        float *out = poisoned(no), *dinp = poisoned(ni), *dw = poisoned(nw), *db = poisoned(OC);
        float *r_out = malloc(no * 4), *r_dinp = calloc(ni, 4), *r_dw = calloc(nw, 4), *r_db = calloc(OC, 4);
        const float *b = cases[c].bias ? bias : NULL;
        liif_error err;
        if (mod->op_conv2d_train(gpu, inp, B, IC, H, W, OC, k, s, 1, wt, b, dout, out, dinp, dw, b ? db : NULL, fast,
                                 &err)) {
            printf("FAIL conv2d op: %s\n", err.msg);
            tu_failures++;
        } else {
            nn_conv2d_forward(r_out, inp, wt, b, B, IC, H, W, OC, k, s, 1);
            nn_conv2d_backward(r_dinp, r_dw, b ? r_db : NULL, dout, inp, wt, B, IC, H, W, OC, k, s, 1);
            char tag[160];
            snprintf(tag, sizeof tag, "conv %dx%dx%dx%d -> %d, k%d s%d%s%s: out", B, IC, H, W, OC, k, s,
                     b ? "" : " no bias", fast ? " [tf32]" : "");
            check_norm(tag, out, r_out, no, tol);
            check_norm("  dinp", dinp, r_dinp, ni, tol);
            check_norm("  dweight", dw, r_dw, nw, tol);
            if (b) check_norm("  dbias", db, r_db, OC, tol);
        }
        free(inp); free(wt); free(bias); free(dout); free(out); free(dinp); free(dw); free(db);
        free(r_out); free(r_dinp); free(r_dw); free(r_db);
    }
}

/* BatchNorm (train mode) then LeakyReLU, forward and backward, with running stats; slope 0: BN alone. */
static void test_batchnorm(void)
{
    struct { int B, C, HW; float slope; } cases[] = {{3, 5, 16, 0.2f}, {4, 6, 1, 0.2f}, {2, 3, 9, 0.0f}, {16, 8, 36, 0.2f}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int B = cases[c].B, C = cases[c].C, HW = cases[c].HW;
        float slope = cases[c].slope;
        size_t n = (size_t)B * C * HW;
        float *inp = random_array(n, -2, 3), *gamma = random_array(C, 0.5f, 1.5f), *beta = random_array(C, -0.2f, 0.2f);
        float *rm = random_array(C, -0.1f, 0.1f), *rv = random_array(C, 0.5f, 1.5f), *dout = random_array(n, -1, 1);
        float *g_rm = malloc(C * 4), *g_rv = malloc(C * 4);
        memcpy(g_rm, rm, C * 4);
        memcpy(g_rv, rv, C * 4);
        float *out = poisoned(n), *mean = poisoned(C), *rstd = poisoned(C), *dinp = poisoned(n), *dg = poisoned(C);
        float *dbt = poisoned(C);
        float *r_out = malloc(n * 4), *r_mean = malloc(C * 4), *r_rstd = malloc(C * 4), *r_d = malloc(n * 4);
        float *r_dinp = calloc(n, 4), *r_dg = calloc(C, 4), *r_db = calloc(C, 4);
        liif_error err;
        if (mod->op_batchnorm_train(gpu, inp, B, C, HW, gamma, beta, g_rm, g_rv, 0.1f, 1e-5f, slope, dout, out, mean,
                                    rstd, dinp, dg, dbt, &err)) {
            printf("FAIL BatchNorm op: %s\n", err.msg);
            tu_failures++;
        } else {
            nn_batchnorm_forward(r_out, r_mean, r_rstd, rm, rv, inp, gamma, beta, B, C, HW, 0.1f, 1e-5f);
            memcpy(r_d, dout, n * 4);
            if (slope > 0) {
                nn_leakyrelu_forward(r_out, r_out, n, slope);
                nn_leakyrelu_backward(r_d, dout, r_out, n, slope);
            }
            nn_batchnorm_backward(r_dinp, r_dg, r_db, r_d, inp, r_mean, r_rstd, gamma, B, C, HW);
            char tag[160];
            snprintf(tag, sizeof tag, "BatchNorm%s (%d,%d,%d): out", slope > 0 ? " + LeakyReLU" : "", B, C, HW);
            check_norm(tag, out, r_out, n, TOL_F32);
            check_norm("  batch mean", mean, r_mean, C, TOL_F32);
            check_norm("  batch rstd", rstd, r_rstd, C, TOL_F32);
            check_norm("  running mean (momentum 0.1)", g_rm, rm, C, TOL_F32);
            check_norm("  running var (unbiased)", g_rv, rv, C, TOL_F32);
            check_norm("  dinp", dinp, r_dinp, n, 1e-4); /* one BN backward on well-spread data */
            check_norm("  dgamma", dg, r_dg, C, TOL_F32);
            check_norm("  dbeta", dbt, r_db, C, TOL_F32);
        }
        free(inp); free(gamma); free(beta); free(rm); free(rv); free(dout); free(g_rm); free(g_rv);
        free(out); free(mean); free(rstd); free(dinp); free(dg); free(dbt);
        free(r_out); free(r_mean); free(r_rstd); free(r_d); free(r_dinp); free(r_dg); free(r_db);
    }
}

/* Linear with and without LeakyReLU, forward and backward. */
static void test_linear(int fast)
{
    struct { int N, IC, OC; float slope; } cases[] = {{5, 37, 11, 0.2f}, {4, 576, 100, 0.2f}, {4, 100, 1, 0.0f}};
    double tol = fast ? TOL_TF32 : TOL_F32;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int N = cases[c].N, IC = cases[c].IC, OC = cases[c].OC;
        float slope = cases[c].slope;
        size_t ni = (size_t)N * IC, no = (size_t)N * OC, nw = (size_t)OC * IC;
        float *inp = random_array(ni, -1, 1), *w = random_array(nw, -0.2f, 0.2f), *b = random_array(OC, -0.5f, 0.5f);
        float *dout = random_array(no, -1, 1), *r_d = malloc(no * 4);
        float *out = poisoned(no), *dinp = poisoned(ni), *dw = poisoned(nw), *db = poisoned(OC);
        float *r_out = malloc(no * 4), *r_dinp = calloc(ni, 4), *r_dw = calloc(nw, 4), *r_db = calloc(OC, 4);
        liif_error err;
        if (mod->op_linear_train(gpu, inp, N, IC, OC, w, b, slope, dout, out, dinp, dw, db, fast, &err)) {
            printf("FAIL Linear op: %s\n", err.msg);
            tu_failures++;
        } else {
            nn_linear_forward(r_out, inp, w, b, N, IC, OC);
            memcpy(r_d, dout, no * 4);
            if (slope > 0) {
                nn_leakyrelu_forward(r_out, r_out, no, slope);
                nn_leakyrelu_backward(r_d, dout, r_out, no, slope);
            }
            nn_linear_backward(r_dinp, r_dw, r_db, r_d, inp, w, N, IC, OC);
            char tag[160];
            snprintf(tag, sizeof tag, "Linear%s %d x %d -> %d%s: out", slope > 0 ? " + LeakyReLU" : "", N, IC, OC,
                     fast ? " [tf32]" : "");
            check_norm(tag, out, r_out, no, tol);
            check_norm("  dinp", dinp, r_dinp, ni, tol);
            check_norm("  dweight", dw, r_dw, nw, tol);
            check_norm("  dbias", db, r_db, OC, tol);
        }
        free(inp); free(w); free(b); free(dout); free(r_d); free(out); free(dinp); free(dw); free(db);
        free(r_out); free(r_dinp); free(r_dw); free(r_db);
    }
}

static void test_bce(void)
{
    float z[7] = {-20.0f, -3.5f, -0.1f, 0.0f, 0.25f, 4.0f, 30.0f};
    float targets[2] = {1.0f, 0.0f}, scales[2] = {1.0f, -0.37f};
    for (int k = 0; k < 2; k++) {
        float loss = NAN, dz[7], r_dz[7] = {0};
        for (int i = 0; i < 7; i++) dz[i] = NAN;
        liif_error err;
        if (mod->op_bce_logits(gpu, z, 7, targets[k], scales[k], &loss, dz, &err)) {
            printf("FAIL BCE op: %s\n", err.msg);
            tu_failures++;
            continue;
        }
        float r_loss = nn_bce_logits_forward(z, targets[k], 7);
        nn_bce_logits_backward(r_dz, z, targets[k], 7, scales[k]);
        char tag[96];
        snprintf(tag, sizeof tag, "BCE with logits, target %g: loss", targets[k]);
        check_norm(tag, &loss, &r_loss, 1, 1e-6);
        check_norm("  dz", dz, r_dz, 7, 1e-6);
    }
}

/* ------------------------------------------------------------ models and batches */

/* A random discriminator of small widths for P x P patches: PyTorch's default bounds for weights, BN
 * gamma in [0.5, 1.5), beta in [-0.2, 0.2), running stats off their 0/1 start. */
static gan_disc *random_disc(int P, unsigned long long seed)
{
    int width[GAN_DISC_STAGES] = {4, 4, 8, 8, 16, 16, 32, 32};
    gan_disc *d;
    liif_error err;
    if (gan_disc_new(width, 16, P, 3, &d, &err)) {
        printf("FAIL %s\n", err.msg);
        exit(1);
    }
    unsigned long long save = rng;
    rng = seed;
    size_t fan_in = 1; /* a bias takes the fan-in of the weight before it (the table's order) */
    for (int i = 0; i < d->n_tensors; i++) {
        const liif_train_tensor *t = &d->tensors[i];
        float *p = d->params + t->offset;
        const char *suffix = strrchr(t->name, '.') + 1;
        int bn = !strncmp(t->name, "disc.bn", 7);
        if (t->ndim > 1) fan_in = t->numel / (size_t)t->shape[0];
        for (size_t k = 0; k < t->numel; k++) {
            float u = rm_uniform(&rng); /* [-1, 1) */
            if (bn && !strcmp(suffix, "weight")) p[k] = 1.0f + 0.5f * u;
            else if (bn && !strcmp(suffix, "bias")) p[k] = 0.2f * u;
            else if (!strcmp(suffix, "running_mean")) p[k] = 0.1f * u;
            else if (!strcmp(suffix, "running_var")) p[k] = 1.0f + 0.5f * u;
            else p[k] = u / sqrtf((float)fan_in);
        }
    }
    rng = save;
    return d;
}

static gan_disc *copy_disc(const gan_disc *src)
{
    gan_disc *d;
    liif_error err;
    if (gan_disc_new(src->width, src->hidden, src->P, src->in_ch, &d, &err)) {
        printf("FAIL %s\n", err.msg);
        exit(1);
    }
    memcpy(d->params, src->params, src->n_params * sizeof(float));
    memcpy(d->m, src->m, src->n_params * sizeof(float));
    memcpy(d->v, src->v, src->n_params * sizeof(float));
    d->step = src->step;
    return d;
}

static gan_gen *load_gen(const char *path)
{
    gan_gen *g;
    liif_error err;
    if (gan_gen_load(path, &g, &err)) {
        printf("FAIL %s\n", err.msg);
        exit(1);
    }
    return g;
}

typedef struct {
    int B, h, w, P;
    float *lr, *coord, *cell, *gt;
} gbatch;

/* Random LR images (B,3,h,w), one random P x P patch of an S x S HR grid per sample, its cells, a random
 * ground-truth patch. */
static gbatch make_batch(int B, int h, int w, int P, int S)
{
    int Q = P * P;
    gbatch b = {B, h, w, P, random_array((size_t)B * 3 * h * w, 0, 1), malloc((size_t)B * Q * 2 * 4),
                malloc((size_t)B * Q * 2 * 4), random_array((size_t)B * 3 * Q, 0, 1)};
    for (int s = 0; s < B; s++) {
        int oy = (int)((rm_uniform(&rng) * 0.5f + 0.5f) * (S - P + 1)) % (S - P + 1);
        int ox = (int)((rm_uniform(&rng) * 0.5f + 0.5f) * (S - P + 1)) % (S - P + 1);
        for (int q = 0; q < Q; q++) {
            size_t i = (size_t)s * Q + q;
            b.coord[2 * i] = liif_coord(oy + q / P, S);
            b.coord[2 * i + 1] = liif_coord(ox + q % P, S);
            b.cell[2 * i] = 2.0f / S;
            b.cell[2 * i + 1] = 2.0f / S;
        }
    }
    return b;
}

static void free_batch(gbatch *b)
{
    free(b->lr); free(b->coord); free(b->cell); free(b->gt);
}

/* Every trainable tensor's gradient, worst normalised error printed; per-tensor failures listed. */
static void check_grads(const char *what, const liif_train_tensor *tensors, int n_tensors, const float *got,
                        const float *want, double tol)
{
    double worst = 0;
    const char *worst_name = "";
    int bad = 0;
    for (int i = 0; i < n_tensors; i++) {
        const liif_train_tensor *t = &tensors[i];
        if (!t->trainable) continue;
        double d = tu_maxdiff(got + t->offset, want + t->offset, t->numel);
        double m = tu_maxabs(want + t->offset, t->numel), rel = d / (m > 1e-30 ? m : 1e-30);
        if (m == 0.0 && d == 0.0) rel = 0.0;
        if (!(rel <= tol)) {
            printf("  grad %-40s max|diff| %.3g max|g| %.3g FAIL\n", t->name, d, m);
            bad++;
        }
        if (!(rel <= worst)) worst = rel, worst_name = t->name;
    }
    printf("  %-58s worst norm err %.3g (%s, tol %.0e) %s\n", what, worst, worst_name, tol, bad ? "FAIL" : "ok");
    tu_failures += bad;
}

/* All trainable floats as one vector: max|got - want| / max|want| (NaN fails). */
static void check_grads_whole(const char *what, const liif_train_tensor *tensors, int n_tensors, const float *got,
                              const float *want, double tol)
{
    double d = 0, m = 0;
    const char *at = "";
    for (int i = 0; i < n_tensors; i++) {
        const liif_train_tensor *t = &tensors[i];
        if (!t->trainable) continue;
        double di = tu_maxdiff(got + t->offset, want + t->offset, t->numel), mi = tu_maxabs(want + t->offset, t->numel);
        if (!(di <= d)) d = di, at = t->name;
        m = mi > m ? mi : m;
    }
    double rel = d / (m > 1e-30 ? m : 1e-30);
    int ok = rel <= tol;
    printf("  %-58s norm err %.3g (max|diff| %.3g at %s, max|g| %.3g; tol %.2g) %s\n", what, rel, d, at, m, tol,
           ok ? "ok" : "FAIL");
    if (!ok) tu_failures++;
}

static void check_running_stats(const char *what, const gan_disc *got, const gan_disc *want, double atol)
{
    double worst = 0;
    for (int i = 0; i < want->n_tensors; i++) {
        const liif_train_tensor *t = &want->tensors[i];
        if (t->trainable) continue;
        double d = tu_maxdiff(got->params + t->offset, want->params + t->offset, t->numel);
        worst = d > worst ? d : worst;
    }
    int ok = worst <= atol;
    printf("  %-58s max|diff| %.3g (atol %.0e) %s\n", what, worst, atol, ok ? "ok" : "FAIL");
    if (!ok) tu_failures++;
}

static void check_loss(const char *what, float got, float want, double tol)
{
    double d = fabs((double)got - want), rel = d / (fabs(want) > 1e-3 ? fabs(want) : 1e-3);
    int ok = rel <= tol;
    printf("  %-58s %.7g vs %.7g  rel %.3g (tol %.0e) %s\n", what, got, want, rel, tol, ok ? "ok" : "FAIL");
    if (!ok) tu_failures++;
}

/* ------------------------------------------------------------ VGG19's perceptual loss */

/* VGG modules 0..last of conv widths `widths` with random weights (He-uniform, biases in [-0.05, 0.05)). */
static gan_vgg *random_vgg(int last, const int *widths)
{
    gan_vgg *v;
    liif_error err;
    if (gan_vgg_new(last, widths, &v, &err)) {
        printf("FAIL %s\n", err.msg);
        exit(1);
    }
    for (int i = 0; i <= last; i++) {
        float *w = gan_vgg_weight(v, i), *b = gan_vgg_bias(v, i);
        if (!w) continue;
        size_t fan = (size_t)v->mod[i].ic * 9;
        for (size_t k = 0; k < fan * v->mod[i].oc; k++) w[k] = rm_uniform(&rng) * sqrtf(6.0f / (float)fan);
        for (int k = 0; k < v->mod[i].oc; k++) b[k] = 0.05f * rm_uniform(&rng);
    }
    return v;
}

/* ||got - want|| / ||want|| <= tol, printed (TF32 gradients through many layers: see TOL_TF32_VGG). */
static void check_l2(const char *what, const float *got, const float *want, size_t n, double tol)
{
    double d2 = 0, w2 = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - want[i];
        d2 += d * d;
        w2 += (double)want[i] * want[i];
    }
    double rel = sqrt(d2) / (w2 > 0 ? sqrt(w2) : 1e-30);
    int ok = rel <= tol;
    printf("  %-58s L2 err %.3g (tol %.2g) %s\n", what, rel, tol, ok ? "ok" : "FAIL");
    if (!ok) tu_failures++;
}

/* op_vgg_perceptual (feature, loss, scale * input gradient) against the CPU reference (gan_vgg_perceptual on the
 * reference layers) and, with a golden file f, against PyTorch's feat_a, loss and grad_img_a (README section 4's
 * criteria: features 1e-5 max|f|, loss rtol 1e-5, gradient 1e-4 max|g|). */
static void vgg_case(const char *what, const gan_vgg *v, int B, int H, int W, const float *a, const float *b,
                     const liif_st_file *f, int fast)
{
    printf("VGG19 perceptual loss%s, %s: modules 0..%d, %d images of %dx%d\n", fast ? " [tf32]" : "", what, v->last,
           B, H, W);
    liif_error err;
    gan_vgg_acts *ra, *rb;
    if (gan_vgg_acts_new(v, B, H, W, &ra, &err) || gan_vgg_acts_new(v, B, H, W, &rb, &err)) {
        printf("FAIL %s\n", err.msg);
        exit(1);
    }
    size_t ni = (size_t)B * 3 * H * W, nf;
    const float scale = 0.7f;
    gan_vgg_forward(v, rb, b);
    float *r_dimg = calloc(ni, sizeof(float));
    float r_loss = gan_vgg_perceptual(v, ra, a, gan_vgg_output(v, rb, &nf), r_dimg, scale);
    const float *r_feat = gan_vgg_output(v, ra, NULL);
    float *feat = poisoned(nf), *dimg = poisoned(ni), loss = NAN;
    liif_cuda_vgg_shape vs;
    gan_gpu_vgg_shape(v, &vs);
    liif_status st = mod->op_vgg_perceptual(gpu, &vs, v->params, B, H, W, a, b, scale, &loss, feat, dimg, fast, &err);
    if (st) {
        printf("FAIL %s\n", err.msg);
        tu_failures++;
    } else if (!fast) {
        check_norm("features of img vs the CPU reference", feat, r_feat, nf, TOL_F32);
        check_loss("loss", loss, r_loss, 1e-5);
        check_norm("scale * d loss / d img vs the CPU reference", dimg, r_dimg, ni, 1e-4);
    } else {
        check_norm("features of img vs the CPU's float32", feat, r_feat, nf, TOL_TF32);
        check_loss("loss", loss, r_loss, 1e-2);
        check_l2("scale * d loss / d img vs the CPU's float32", dimg, r_dimg, ni, TOL_TF32_VGG);
    }
    if (!st && f && !fast) {
        const float *want = tg_f32(f, "feat_a", NULL), *wg = tg_f32(f, "grad_img_a", NULL);
        for (size_t i = 0; i < ni; i++) dimg[i] /= scale;
        check_norm("features vs PyTorch's feat_a (1e-5 max|f|)", feat, want, nf, 1e-5);
        check_loss("loss vs PyTorch's (rtol 1e-5)", loss, tg_f32(f, "loss", NULL)[0], 1e-5);
        check_norm("d loss / d img vs PyTorch's grad_img_a (1e-4 max|g|)", dimg, wg, ni, 1e-4);
    }
    free(feat);
    free(dimg);
    free(r_dimg);
    gan_vgg_acts_free(ra);
    gan_vgg_acts_free(rb);
}

/* The golden VGG19s (trunc8 from its file, the full one from the README's PRNG) and a small random one on odd
 * sides (pools drop a row and a column), in fp32 and TF32. */
static void test_vgg(const char *root)
{
    int widths[4] = {8, 8, 16, 16};
    gan_vgg *v = random_vgg(GAN_VGG_RELU2_2, widths);
    int B = 3, H = 21, W = 19;
    float *a = random_array((size_t)B * 3 * H * W, 0, 1), *b = random_array((size_t)B * 3 * H * W, 0, 1);
    for (int fast = 0; fast < 2; fast++) vgg_case("random widths 8/16, odd sides", v, B, H, W, a, b, NULL, fast);
    free(a);
    free(b);
    gan_vgg_free(v);

    static char dir[1024];
    snprintf(dir, sizeof dir, "%s/components", root);
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        printf("golden VGG19: SKIPPED (no folder %s)\n", dir);
        return;
    }
    tg_dir = dir;
    static const char *file[2] = {"vgg19_trunc8.safetensors", "vgg19_full.safetensors"};
    for (int k = 0; k < 2; k++) {
        liif_st_file *f = tg_open(file[k]);
        liif_error err;
        if (k == 0 ? gan_vgg_from_file(f, GAN_VGG_RELU2_2, &v, &err) : gan_vgg_new(GAN_VGG_CONV5_4, NULL, &v, &err)) {
            printf("FAIL %s\n", err.msg);
            exit(1);
        }
        if (k == 1) tg_vgg_regen(v, f);
        const liif_st_tensor *ta = liif_st_find(f, "img_a");
        B = (int)ta->shape[0], H = (int)ta->shape[2], W = (int)ta->shape[3];
        for (int fast = 0; fast < 2; fast++)
            vgg_case(file[k], v, B, H, W, tg_f32(f, "img_a", NULL), tg_f32(f, "img_b", NULL), f, fast);
        gan_vgg_free(v);
        liif_st_close(f);
    }
}

/* ------------------------------------------------------------ whole steps */

static int is_zero(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (x[i] != 0.0f) return 0;
    return 1;
}

/* Gradient blocking of a two-decoder generator: every gradient of the tensors named prefix* exactly 0 after a
 * half with the term alone. */
static void check_blocked(const gan_gen *g, const char *prefix, const char *term)
{
    if (g->cfg.n_decoders != 2) return;
    int bad = 0;
    size_t len = strlen(prefix);
    for (int i = 0; i < g->n_tensors; i++)
        if (!strncmp(g->tensors[i].name, prefix, len) && !is_zero(g->grads + g->tensors[i].offset, g->tensors[i].numel))
            printf("  FAIL %s reaches %s\n", term, g->tensors[i].name), bad++;
    tu_failures += bad;
    char what[96];
    snprintf(what, sizeof what, "%s* gradients of %s exactly 0", prefix, term);
    printf("  %-58s %s\n", what, bad ? "FAIL" : "ok");
}

/* After a queued step (st: its status): its losses, both models pulled with their gradients, the images; a
 * failure printed and counted. Returns 0 when all went well. */
static liif_status step_results(gan_gpu *t, liif_status st, gan_gpu_losses *l, gan_gen *g, gan_disc *d, float *d1,
                                float *d2, float *fake, float *logits, liif_error *err)
{
    if (!st) st = gan_gpu_wait(t, l, err);
    if (!st) st = gan_gpu_pull(t, g, d, 1, err);
    if (!st) st = gan_gpu_images(t, d1, d2, fake, logits, err);
    if (st) {
        printf("FAIL %s\n", err->msg);
        tu_failures++;
    }
    return st;
}

/* The generator half alone with L_D1 only (c_adv = 0), with w_fm also with L_fm only, then a whole step (both
 * halves, Adam on G and D), each on the CPU (fast ops) and on the GPU from the same weights and batch. */
static void test_step(const char *variant, const rm_spec *sp, int fast, int minimax, float w_fm, int per)
{
    printf("%s%s%s (w_per = %d, w_fm = %g):\n", variant, fast ? " [tf32]" : "", minimax ? " minimax" : "", per, w_fm);
    double tol = fast ? TOL_TF32 : TOL_F32, gtol = fast ? TOL_TF32_GRAD : TOL_BN, dtol = fast ? TOL_TF32_DGRAD : TOL_BN;
    double stol = fast ? TOL_TF32_STATS : 1e-5;
    void (*grads)(const char *, const liif_train_tensor *, int, const float *, const float *, double) =
        fast ? check_grads_whole : check_grads;
    char path[128];
    snprintf(path, sizeof path, "%s/g.safetensors", tmpdir);
    rm_spec s = *sp;
    s.variant = variant;
    if (rm_write(path, &s)) {
        printf("FAIL cannot make a random model\n");
        exit(1);
    }
    gan_gen *gc = load_gen(path), *gg = load_gen(path);
    unlink(path);
    int B = 4, h = 12, w = 12, P = 32, S = 40;
    gan_disc *dc = random_disc(P, 55), *dg = copy_disc(dc);
    int widths[4] = {8, 8, 16, 16}; /* VGG19 to relu2_2, narrow */
    gan_vgg *v = per ? random_vgg(GAN_VGG_RELU2_2, widths) : NULL;
    gbatch bt = make_batch(B, h, w, P, S);
    size_t img = (size_t)B * 3 * P * P;
    gan_step_config cfg = gan_step_defaults();
    cfg.w_per = per ? 1.0f : 0.0f;
    cfg.adv_minimax = minimax;
    cfg.w_fm = w_fm;
    gan_step_ws *ws;
    gan_gpu *t;
    liif_error err;
    if (gan_step_ws_new(gc, dc, v, B, h, w, P, &ws, &err) || gan_step_ws_use_cpu(gc, dc, v, ws, 0, &err) ||
        gan_gpu_new(gg, dg, v, B, h, w, P, fast, &t, &err)) {
        printf("FAIL %s\n", err.msg);
        tu_failures++;
        return;
    }
    float *d1 = poisoned(img), *d2 = poisoned(img), *fake = poisoned(img), logits[3 * 4];
    float *ld1_grads = malloc(gg->n_params * sizeof(float));
    gan_gpu_losses l;
    /* ---- generator half, L_D1 alone: the gradient blocking's reference */
    gan_gen_zero_grad(gc);
    gan_step_generator(gc, dc, v, ws, &cfg, bt.lr, bt.coord, bt.cell, bt.gt, (gan_terms){1.0f, 0.0f, 0.0f, 0.0f});
    int st = gan_gpu_step_parts(t, &cfg, bt.lr, bt.coord, bt.cell, bt.gt, GAN_GPU_GEN, (gan_terms){1.0f, 0.0f, 0.0f, 0.0f},
                                &err);
    if (step_results(t, st, &l, gg, dg, d1, d2, fake, logits, &err)) goto out;
    printf(" generator half, L_D1 only:\n");
    check_norm("d1 (decoder 1, B,C,P,P)", d1, ws->gen->d1, img, tol);
    check_norm("d2 (decoder 2; 0 for liif-gan-s)", d2, ws->gen->d2, img, tol);
    check_norm("fake01", fake, ws->fake01, img, tol);
    check_norm("D(fake01) logits", logits, ws->logits_g, B, fast ? TOL_TF32 : TOL_LOGIT);
    check_loss("loss_d1", l.loss_d1, ws->loss_d1, fast ? 1e-3 : 1e-5);
    check_loss("loss_adv", l.loss_adv, ws->loss_adv, fast ? 1e-2 : 1e-4);
    grads("every G gradient of L_D1", gc->tensors, gc->n_tensors, gg->grads, gc->grads, fast ? gtol : 5 * tol);
    check_running_stats("D running stats after the generator half's forward", dg, dc, stol);
    CHECK(gg->step == 0 && dg->step == 0, "Adam ran in a generator half: steps %lld/%lld", (long long)gg->step,
          (long long)dg->step);
    memcpy(ld1_grads, gg->grads, gg->n_params * sizeof(float));
    check_blocked(gg, "imnet2.", "L_D1"); /* L_D1 never reaches decoder 2 */

    /* ---- generator half, feature matching alone: D(real)'s stage outputs kept, the fake's matched to them */
    if (w_fm != 0.0f) {
        gan_terms fm_only = {0.0f, 0.0f, 0.0f, 1.0f};
        gan_gen_zero_grad(gc);
        gan_step_generator(gc, dc, v, ws, &cfg, bt.lr, bt.coord, bt.cell, bt.gt, fm_only);
        st = gan_gpu_step_parts(t, &cfg, bt.lr, bt.coord, bt.cell, bt.gt, GAN_GPU_GEN, fm_only, &err);
        if (step_results(t, st, &l, gg, dg, d1, d2, fake, logits, &err)) goto out;
        printf(" generator half, L_fm only:\n");
        CHECK(ws->loss_fm > 0.0f, "loss_fm %g: the fake's features equal the real's", ws->loss_fm);
        check_loss("loss_fm", l.loss_fm, ws->loss_fm, fast ? 1e-2 : 1e-5);
        check_loss("loss_g (L_D1 + w_adv L_adv + w_fm L_fm)", l.loss_g, ws->loss_g, fast ? 1e-2 : 1e-4);
        grads("every G gradient of w_fm * L_fm", gc->tensors, gc->n_tensors, gg->grads, gc->grads, gtol);
        check_running_stats("D running stats after the half's two forwards", dg, dc, stol);
        check_blocked(gg, "imnet.", "L_fm"); /* stopgrad(d1) */
    }

    /* ---- generator half, the perceptual term alone: VGG19 of the fake against the real's, to the image */
    if (per) {
        gan_terms per_only = {0.0f, 0.0f, 1.0f, 0.0f};
        gan_gen_zero_grad(gc);
        gan_step_generator(gc, dc, v, ws, &cfg, bt.lr, bt.coord, bt.cell, bt.gt, per_only);
        st = gan_gpu_step_parts(t, &cfg, bt.lr, bt.coord, bt.cell, bt.gt, GAN_GPU_GEN, per_only, &err);
        if (step_results(t, st, &l, gg, dg, d1, d2, fake, logits, &err)) goto out;
        printf(" generator half, L_per only:\n");
        CHECK(ws->loss_per > 0.0f, "loss_per %g: the fake's features equal the real's", ws->loss_per);
        check_loss("loss_per", l.loss_per, ws->loss_per, fast ? 1e-2 : 1e-5);
        check_loss("loss_g (L_D1 + w_adv L_adv + w_per L_per)", l.loss_g, ws->loss_g, fast ? 1e-2 : 1e-4);
        if (fast) check_l2("every G gradient of w_per * L_per, one vector", gg->grads, gc->grads, gg->n_params, TOL_TF32_VGG);
        else grads("every G gradient of w_per * L_per", gc->tensors, gc->n_tensors, gg->grads, gc->grads, TOL_PER);
        check_blocked(gg, "imnet.", "L_per"); /* stopgrad(d1) */
    }

    /* ---- a whole step from there (both have D's running stats of one forward) */
    gan_step(gc, dc, v, ws, &cfg, bt.lr, bt.coord, bt.cell, bt.gt);
    st = gan_gpu_step(t, &cfg, bt.lr, bt.coord, bt.cell, bt.gt, &err);
    if (step_results(t, st, &l, gg, dg, d1, d2, fake, logits, &err)) goto out;
    printf(" whole step:\n");
    check_norm("fake01", fake, ws->fake01, img, tol);
    check_norm("logits D(fake01), generator half", logits, ws->logits_g, B, fast ? TOL_TF32 : TOL_LOGIT);
    check_norm("logits D(real)", logits + B, ws->logits_real, B, fast ? TOL_TF32 : TOL_LOGIT);
    check_norm("logits D(fake01), discriminator half", logits + 2 * B, ws->logits_fake, B, fast ? TOL_TF32 : TOL_LOGIT);
    double ltol = fast ? 1e-2 : 1e-4;
    check_loss("loss_d1", l.loss_d1, ws->loss_d1, fast ? 1e-3 : 1e-5);
    check_loss(minimax ? "loss_adv (minimax: log(1 - D))" : "loss_adv", l.loss_adv, ws->loss_adv, ltol);
    check_loss("loss_g", l.loss_g, ws->loss_g, ltol);
    if (w_fm != 0.0f) check_loss("loss_fm", l.loss_fm, ws->loss_fm, ltol);
    check_loss("loss_d_real", l.loss_d_real, ws->loss_d_real, ltol);
    check_loss("loss_d_fake", l.loss_d_fake, ws->loss_d_fake, ltol);
    check_loss("loss_d", l.loss_d, ws->loss_d, ltol);
    if (per) check_loss("loss_per", l.loss_per, ws->loss_per, ltol);
    else CHECK(l.loss_per == 0.0f, "loss_per %g without VGG", l.loss_per);
    grads("every G gradient of loss_g", gc->tensors, gc->n_tensors, gg->grads, gc->grads, gtol);
    grads("every D gradient of loss_d", dc->tensors, dc->n_tensors, dg->grads, dc->grads, dtol);
    if (!fast) {
        check_params("G parameters after Adam", gg->params, gc->params, gc->n_params, cfg.adam.lr, 1, 200);
        check_params("D parameters after Adam", dg->params, dc->params, dc->n_trainable, cfg.adam.lr, 1, 200);
        check_norm("G Adam m", gg->m, gc->m, gc->n_params, TOL_BN);
        check_norm("D Adam m", dg->m, dc->m, dc->n_trainable, TOL_BN);
    }
    check_running_stats("D running stats after the three forwards of the step", dg, dc, stol);
    CHECK(gg->step == 1 && dg->step == 1, "steps %lld/%lld after one step", (long long)gg->step, (long long)dg->step);
    /* gradient blocking on the GPU: decoder 1 of LIIF-GAN / -SF sees L_D1 only (a float atomic scatter
     * makes two backwards differ in rounding, so not bit for bit) */
    if (gc->cfg.n_decoders == 2) {
        double worst = 0;
        for (int i = 0; i < gg->n_tensors; i++) {
            const liif_train_tensor *tt = &gg->tensors[i];
            if (strncmp(tt->name, "imnet.", 6)) continue;
            double m = tu_maxabs(ld1_grads + tt->offset, tt->numel);
            double d = tu_maxdiff(gg->grads + tt->offset, ld1_grads + tt->offset, tt->numel) / (m > 1e-30 ? m : 1e-30);
            worst = d > worst ? d : worst;
        }
        int ok = worst <= (fast ? 1e-2 : 1e-5);
        printf("  %-58s norm err %.3g %s\n", "imnet.* gradients of loss_g = those of L_D1 alone", worst,
               ok ? "ok" : "FAIL");
        if (!ok) tu_failures++;
    }
out:
    free(d1); free(d2); free(fake); free(ld1_grads);
    free_batch(&bt);
    gan_gpu_free(t);
    gan_step_ws_free(ws);
    gan_gen_free(gc); gan_gen_free(gg);
    gan_disc_free(dc); gan_disc_free(dg);
    gan_vgg_free(v);
}

/* Three GPU steps in one go, against two steps, the state pulled (what a checkpoint stores), a new GPU
 * trainer from it and the third step; and the third step on the CPU from the pulled state. */
static void test_resume(const rm_spec *sp)
{
    printf("resume (liif-gan):\n");
    char path[128];
    snprintf(path, sizeof path, "%s/g.safetensors", tmpdir);
    if (rm_write(path, sp)) {
        printf("FAIL cannot make a random model\n");
        exit(1);
    }
    int B = 4, h = 12, w = 12, P = 32, S = 40;
    gan_gen *gf = load_gen(path), *gh = load_gen(path), *gcpu = load_gen(path);
    unlink(path);
    gan_disc *df = random_disc(P, 77), *dh = copy_disc(df), *dcpu = copy_disc(df);
    gbatch bt[3];
    for (int i = 0; i < 3; i++) bt[i] = make_batch(B, h, w, P, S);
    gan_step_config cfg = gan_step_defaults();
    cfg.w_per = 0.0f;
    liif_error err;
    gan_gpu *t = NULL, *t2 = NULL;
    gan_step_ws *ws = NULL;
    gan_gpu_losses lf, l2;
    int st = gan_gpu_new(gf, df, NULL, B, h, w, P, 0, &t, &err);
    for (int i = 0; !st && i < 3; i++) st = gan_gpu_step(t, &cfg, bt[i].lr, bt[i].coord, bt[i].cell, bt[i].gt, &err);
    if (!st) st = gan_gpu_wait(t, &lf, &err);
    if (!st) st = gan_gpu_pull(t, gf, df, 0, &err);
    gan_gpu_free(t);
    t = NULL;
    if (!st) st = gan_gpu_new(gh, dh, NULL, B, h, w, P, 0, &t, &err);
    for (int i = 0; !st && i < 2; i++) st = gan_gpu_step(t, &cfg, bt[i].lr, bt[i].coord, bt[i].cell, bt[i].gt, &err);
    if (!st) st = gan_gpu_pull(t, gh, dh, 0, &err);
    /* the pulled state as the CPU resumes it */
    if (!st) {
        memcpy(gcpu->params, gh->params, gh->n_params * sizeof(float));
        memcpy(gcpu->m, gh->m, gh->n_params * sizeof(float));
        memcpy(gcpu->v, gh->v, gh->n_params * sizeof(float));
        gcpu->step = gh->step;
        memcpy(dcpu->params, dh->params, dh->n_params * sizeof(float));
        memcpy(dcpu->m, dh->m, dh->n_params * sizeof(float));
        memcpy(dcpu->v, dh->v, dh->n_params * sizeof(float));
        dcpu->step = dh->step;
    }
    if (!st) st = gan_gpu_new(gh, dh, NULL, B, h, w, P, 0, &t2, &err);
    if (!st) st = gan_gpu_step(t2, &cfg, bt[2].lr, bt[2].coord, bt[2].cell, bt[2].gt, &err);
    if (!st) st = gan_gpu_wait(t2, &l2, &err);
    if (!st) st = gan_gpu_pull(t2, gh, dh, 0, &err);
    if (!st) st = gan_step_ws_new(gcpu, dcpu, NULL, B, h, w, P, &ws, &err);
    if (!st) st = gan_step_ws_use_cpu(gcpu, dcpu, NULL, ws, 0, &err);
    if (st) {
        printf("FAIL %s\n", err.msg);
        tu_failures++;
    } else {
        CHECK(gf->step == 3 && df->step == 3 && gh->step == 3 && dh->step == 3, "steps %lld %lld %lld %lld",
              (long long)gf->step, (long long)df->step, (long long)gh->step, (long long)dh->step);
        /* two independent GPU runs: the scatter's float atomics round their gradients differently, and Adam's
         * first steps move by about lr * sign(g), so a tiny gradient's flipped sign moves a weight by ~2e-4 */
        check_loss("GPU: step 3 straight vs resumed, loss_g", l2.loss_g, lf.loss_g, 1e-4);
        check_loss("GPU: step 3 straight vs resumed, loss_d", l2.loss_d, lf.loss_d, 1e-4);
        /* the scatter's float atomics may flip a near-zero gradient's sign in any of the three steps */
        check_params("GPU: 3 steps vs 2 + pull + 1, G parameters", gh->params, gf->params, gf->n_params, cfg.adam.lr, 3,
                     200);
        check_params("GPU: 3 steps vs 2 + pull + 1, D parameters", dh->params, df->params, df->n_trainable,
                     cfg.adam.lr, 3, 200);
        check_norm("GPU: 3 steps vs 2 + pull + 1, G Adam v", gh->v, gf->v, gf->n_params, 1e-3);
        check_running_stats("GPU: 3 steps vs 2 + pull + 1, D running stats", dh, df, 1e-5);
        gan_step(gcpu, dcpu, NULL, ws, &cfg, bt[2].lr, bt[2].coord, bt[2].cell, bt[2].gt);
        /* two steps of rounding differences (and rare Adam sign flips of near-zero gradients) in the weights */
        check_loss("CPU resuming the GPU state: step 3 loss_g", ws->loss_g, lf.loss_g, 1e-3);
        check_loss("CPU resuming the GPU state: step 3 loss_d", ws->loss_d, lf.loss_d, 1e-3);
        check_params("CPU resuming the GPU state: G parameters after step 3", gcpu->params, gf->params, gf->n_params,
                     cfg.adam.lr, 3, 200);
        check_params("CPU resuming the GPU state: D parameters after step 3", dcpu->params, df->params,
                     df->n_trainable, cfg.adam.lr, 3, 200);
        check_running_stats("CPU resuming the GPU state: D running stats", dcpu, df, 1e-5);
    }
    gan_step_ws_free(ws);
    gan_gpu_free(t);
    gan_gpu_free(t2);
    gan_gen_free(gf); gan_gen_free(gh); gan_gen_free(gcpu);
    gan_disc_free(df); gan_disc_free(dh); gan_disc_free(dcpu);
    for (int i = 0; i < 3; i++) free_batch(&bt[i]);
}

/* ------------------------------------------------------------ golden */

/* The golden LIIF-GAN step (golden/components, README section 6: w_adv 5e-3, w_per 1 with vgg19_trunc8) whole on
 * the GPU: forward tensors, logits, every loss, the G gradients of loss_g and of each term (the L_D1 + adversarial
 * part, the perceptual part), D's gradients, both networks after Adam and the running stats, with the CPU
 * golden test's criteria (test_gan_step.c). */
static void test_golden(const char *root)
{
    static char dir[1024];
    snprintf(dir, sizeof dir, "%s/components", root);
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        printf("golden step: SKIPPED (no folder %s)\n", dir);
        return;
    }
    tg_dir = dir;
    printf("golden LIIF-GAN step (%s), w_per = 1 with vgg19_trunc8:\n", dir);
    liif_st_file *fw = tg_open("gan_weights.safetensors"), *fs = tg_open("gan_step.safetensors");
    liif_st_file *fg = tg_open("gan_grads.safetensors"), *fa = tg_open("gan_after_adam.safetensors");
    char path[1200];
    snprintf(path, sizeof path, "%s/gan_weights.safetensors", dir);
    gan_gen *g = load_gen(path);
    gan_disc *d;
    liif_error err;
    if (gan_disc_from_file(fw, &d, &err)) {
        printf("FAIL %s\n", err.msg);
        exit(1);
    }
    const liif_st_tensor *tl = liif_st_find(fs, "lr"), *tp = liif_st_find(fs, "gt_patch");
    int B = (int)tl->shape[0], h = (int)tl->shape[2], w = (int)tl->shape[3], P = (int)tp->shape[2];
    size_t img = (size_t)B * 3 * P * P;
    gan_step_config cfg = gan_step_defaults(); /* the golden's settings */
    gan_vgg *v;
    snprintf(path, sizeof path, "%s/vgg19_trunc8.safetensors", dir);
    if (gan_vgg_load(path, GAN_VGG_RELU2_2, &v, &err)) {
        printf("FAIL %s\n", err.msg);
        exit(1);
    }
    gan_gpu *t;
    gan_gpu_losses l;
    float *d1 = poisoned(img), *d2 = poisoned(img), *fake = poisoned(img), *logits = poisoned(3 * (size_t)B);
    int st = gan_gpu_new(g, d, v, B, h, w, P, 0, &t, &err);
    if (!st) st = gan_gpu_step(t, &cfg, tg_f32(fs, "lr", NULL), tg_f32(fs, "coord", NULL), tg_f32(fs, "cell", NULL),
                               tg_f32(fs, "gt_patch", NULL), &err);
    if (!step_results(t, st, &l, g, d, d1, d2, fake, logits, &err)) {
        tu_close("d1", d1, tg_f32(fs, "d1", NULL), img, 1e-6);
        tu_close("d2", d2, tg_f32(fs, "d2", NULL), img, 1e-6);
        tu_close("fake01", fake, tg_f32(fs, "fake01", NULL), img, 1e-6);
        tu_close("d_logits_g (atol 1e-4)", logits, tg_f32(fs, "d_logits_g", NULL), B, 1e-4);
        tu_close("d_logits_real", logits + B, tg_f32(fs, "d_logits_real", NULL), B, 1e-6);
        tu_close("d_logits_fake (atol 1e-4)", logits + 2 * B, tg_f32(fs, "d_logits_fake", NULL), B, 1e-4);
        tu_close("loss_d1", &l.loss_d1, tg_f32(fs, "loss_d1", NULL), 1, 1e-6);
        tu_close("loss_adv (atol 5e-5)", &l.loss_adv, tg_f32(fs, "loss_adv", NULL), 1, 5e-5);
        tu_close("loss_d_real", &l.loss_d_real, tg_f32(fs, "loss_d_real", NULL), 1, 1e-6);
        tu_close("loss_d_fake (atol 5e-5)", &l.loss_d_fake, tg_f32(fs, "loss_d_fake", NULL), 1, 5e-5);
        tu_close("loss_d (atol 5e-5)", &l.loss_d, tg_f32(fs, "loss_d", NULL), 1, 5e-5);
        tu_close("loss_per", &l.loss_per, tg_f32(fs, "loss_per", NULL), 1, 1e-6);
        tu_close("loss_g", &l.loss_g, tg_f32(fs, "loss_g", NULL), 1, 1e-6);
        char name[160];
        double worst = 0;
        for (int i = 0; i < g->n_tensors; i++) { /* README: max|diff| <= 5e-3 max|g| + 1e-9 */
            const liif_train_tensor *tt = &g->tensors[i];
            snprintf(name, sizeof name, "grad.%s", tt->name);
            double r = tg_grad(name, g->grads + tt->offset, tg_f32(fg, name, NULL), tt->numel, 5e-3, 1e-9);
            worst = r > worst ? r : worst;
        }
        for (int i = 0; i < d->n_tensors; i++) {
            const liif_train_tensor *tt = &d->tensors[i];
            if (!tt->trainable) continue;
            snprintf(name, sizeof name, "grad.%s", tt->name);
            double r = tg_grad(name, d->grads + tt->offset, tg_f32(fg, name, NULL), tt->numel, 5e-3, 1e-9);
            worst = r > worst ? r : worst;
        }
        size_t total = 0, over = 0;
        double worst_p = 0, worst_rs = 0;
        for (int pass = 0; pass < 2; pass++) {
            int nt = pass ? d->n_tensors : g->n_tensors;
            for (int i = 0; i < nt; i++) {
                const liif_train_tensor *tt = pass ? &d->tensors[i] : &g->tensors[i];
                const float *got = (pass ? d->params : g->params) + tt->offset, *want = tg_f32(fa, tt->name, NULL);
                if (!tt->trainable) {
                    double m = tu_maxdiff(got, want, tt->numel);
                    worst_rs = m > worst_rs ? m : worst_rs;
                    continue;
                }
                for (size_t k = 0; k < tt->numel; k++) {
                    double e = fabs((double)got[k] - want[k]);
                    worst_p = e > worst_p ? e : worst_p;
                    over += !(e <= 1e-7);
                    total++;
                }
            }
        }
        printf("G and D after Adam: %zu parameters, max|diff| %.3g (limit 2.5e-4), %zu over 1e-7 (limit 0.5%%)\n",
               total, worst_p, over);
        CHECK(worst_p <= 2.5e-4 && over <= total / 200, "parameters after the golden step");
        printf("running stats after the three D forwards: max|diff| %.3g (atol 1e-5)\n", worst_rs);
        CHECK(worst_rs <= 1e-5, "running stats after the golden step");
        printf("worst gradient ratio %.2g\n", worst);
    }
    free(d1); free(d2); free(fake); free(logits);
    gan_gpu_free(t);
    gan_vgg_free(v);
    gan_gen_free(g);
    gan_disc_free(d);
    liif_st_close(fw); liif_st_close(fs); liif_st_close(fg); liif_st_close(fa);
}

/* 30 steps on one batch at lr 1e-3 with w_adv 0: L_D1 must fall (the generator learns on the GPU) and follow
 * the same 30 steps of gan_step on the CPU (this small model plateaus near 0.81 x its first L_D1 by step 30). */
static void test_learns(const rm_spec *sp)
{
    char path[128];
    snprintf(path, sizeof path, "%s/g.safetensors", tmpdir);
    if (rm_write(path, sp)) exit(1);
    gan_gen *g = load_gen(path), *gcpu = load_gen(path);
    unlink(path);
    gan_disc *d = random_disc(16, 99), *dcpu = copy_disc(d);
    gbatch bt = make_batch(4, 8, 8, 16, 20);
    gan_step_config cfg = gan_step_defaults();
    cfg.w_per = 0.0f;
    cfg.w_adv = 0.0f;
    cfg.adam.lr = 1e-3;
    gan_gpu *t = NULL;
    gan_step_ws *ws = NULL;
    gan_gpu_losses l;
    liif_error err;
    float first = NAN, last = NAN, cpu_first = NAN, cpu_last = NAN;
    int st = gan_gpu_new(g, d, NULL, 4, 8, 8, 16, 0, &t, &err);
    for (int i = 0; !st && i < 30; i++) {
        st = gan_gpu_step(t, &cfg, bt.lr, bt.coord, bt.cell, bt.gt, &err);
        if (!st) st = gan_gpu_wait(t, &l, &err);
        if (!st && i == 0) first = l.loss_d1;
        if (!st) last = l.loss_d1;
    }
    if (!st) st = gan_step_ws_new(gcpu, dcpu, NULL, 4, 8, 8, 16, &ws, &err);
    if (!st) st = gan_step_ws_use_cpu(gcpu, dcpu, NULL, ws, 0, &err);
    for (int i = 0; !st && i < 30; i++) {
        gan_step(gcpu, dcpu, NULL, ws, &cfg, bt.lr, bt.coord, bt.cell, bt.gt);
        if (i == 0) cpu_first = ws->loss_d1;
        cpu_last = ws->loss_d1;
    }
    if (st) {
        printf("FAIL %s\n", err.msg);
        tu_failures++;
    } else {
        printf("learning: L_D1 %.4f at step 1, %.4f at step 30 (CPU: %.4f, %.4f)\n", first, last, cpu_first, cpu_last);
        check_loss("learning: L_D1 at step 30, GPU vs CPU", last, cpu_last, 1e-3);
        CHECK(last < 0.9f * first, "L_D1 did not fall: %.4f -> %.4f", first, last);
    }
    gan_gpu_free(t);
    gan_step_ws_free(ws);
    free_batch(&bt);
    gan_gen_free(g); gan_gen_free(gcpu);
    gan_disc_free(d); gan_disc_free(dcpu);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    gpu = tc_gpu_or_skip(&mod); /* first: a skip must leave nothing allocated */
    snprintf(tmpdir, sizeof tmpdir, "/tmp/liif-cuda-train-gan-XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;

    for (int fast = 0; fast < 2; fast++) test_conv(fast);
    test_batchnorm();
    for (int fast = 0; fast < 2; fast++) test_linear(fast);
    test_bce();
    /* n_feats 8, 4 residual blocks (mid block 1), MLP 2 x 32: every path of the generator, small */
    rm_spec sp = {8, 4, 2, 32, 1, 1, 1, "liif-gan", 11, 3.0f};
    test_vgg(argc > 1 ? argv[1] : "../shared/golden");
    test_step("liif-gan", &sp, 0, 0, 0.0f, 0);
    test_step("liif-gan-s", &sp, 0, 0, 0.0f, 0);
    test_step("liif-gan-sf", &sp, 0, 0, 0.0f, 0);
    test_step("liif-gan", &sp, 0, 0, 1.0f, 0); /* feature matching */
    test_step("liif-gan-s", &sp, 0, 0, 1.0f, 0);
    test_step("liif-gan", &sp, 0, 1, 0.0f, 0);
    test_step("liif-gan", &sp, 0, 0, 0.0f, 1); /* the perceptual term */
    test_step("liif-gan-s", &sp, 0, 0, 0.0f, 1);
    rm_spec nu = {8, 4, 2, 32, 0, 0, 0, "liif-gan", 12, 3.0f}; /* no unfold, ensemble, cell */
    test_step("liif-gan", &nu, 0, 0, 0.0f, 0);
    test_step("liif-gan", &sp, 1, 0, 0.0f, 0);
    test_step("liif-gan", &sp, 1, 0, 0.0f, 1);
    test_resume(&sp);
    test_golden(argc > 1 ? argv[1] : "../shared/golden");
    test_learns(&sp);
    gpu->destroy(gpu);
    rmdir(tmpdir);
    return tu_finish("cuda-train-gan");
}
