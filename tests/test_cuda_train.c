/* test_cuda_train.c: GPU training (core/cuda/train.cuh) against the CPU reference: conv ops forward and backward,
 * whole LIIF steps on random models of every decoder variant (fp32 and TF32: pred, loss, every gradient, the
 * feature gradient of the scatter, Adam), resuming a GPU run from a checkpoint on the GPU and on the CPU, and
 * a loss that falls. usage: test-cuda-train. Exits 77 with the reason when no GPU is usable. */
#include <string.h>
#include <unistd.h>

#include "cuda_util.h"
#include "gpu/train_check.h"
#include "randmodel.h"
#include "testutil.h"
#include "train.h"

static const liif_cuda_module *mod;
static liif_backend *gpu;
static char tmpdir[64];
static unsigned long long rng = 4242;
static int sm; /* compute capability: the implicit-GEMM kernels run on sm_80+ */

/* Tolerances on max|got - want| / max|want|: float32 (sums in another order), TF32 GEMMs (10-bit mantissa). */
#define TOL_F32 2e-5
#define TOL_TF32 3e-2

static float *random_array(size_t n, float lo, float hi)
{
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = lo + (hi - lo) * (rm_uniform(&rng) * 0.5f + 0.5f);
    return p;
}

/* ------------------------------------------------------------ conv op */

static void test_conv(int fast)
{
    /* the last four take the implicit-GEMM kernel (TF32 on sm_80+) forward and for the data gradient, across tiles;
     * the last three its weight gradient too (widths of 64), the last two over several chunks of 512 pixels and
     * several 64-wide tiles of OC or IC */
    struct { int B, h, w, IC, OC, bias; } cases[] = {{2, 7, 5, 3, 8, 1}, {3, 6, 9, 8, 16, 1}, {1, 4, 4, 16, 12, 0},
                                                    {2, 9, 7, 16, 24, 1}, {2, 20, 18, 64, 64, 1},
                                                    {2, 40, 30, 64, 128, 1}, {1, 33, 35, 128, 64, 0}};
    double tol = fast ? TOL_TF32 : TOL_F32;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int B = cases[c].B, h = cases[c].h, w = cases[c].w, IC = cases[c].IC, OC = cases[c].OC;
        size_t ni = (size_t)B * h * w * IC, no = (size_t)B * h * w * OC, nw = (size_t)OC * IC * 9;
        float *inp = random_array(ni, -1, 1), *wt = random_array(nw, -0.3f, 0.3f), *b = random_array(OC, -1, 1);
        float *dout = random_array(no, -1, 1), *zero = calloc(OC, sizeof(float));
        float *out = malloc(no * 4), *dinp = malloc(ni * 4), *dw = malloc(nw * 4), *db = malloc(OC * 4);
        float *r_out = malloc(no * 4), *r_dinp = calloc(ni, 4), *r_dw = calloc(nw, 4), *r_db = calloc(OC, 4);
        const float *bias = cases[c].bias ? b : NULL;
        liif_error err;
        for (size_t i = 0; i < no; i++) out[i] = NAN; /* poison: every element must be written */
        for (size_t i = 0; i < ni; i++) dinp[i] = NAN;
        for (size_t i = 0; i < nw; i++) dw[i] = NAN;
        if (mod->op_conv3x3_train(gpu, inp, B, h, w, IC, OC, wt, bias, dout, out, dinp, dw, db, fast, &err)) {
            printf("FAIL conv op: %s\n", err.msg);
            tu_failures++;
        } else {
            liif_conv3x3_forward(r_out, inp, wt, bias ? bias : zero, B, h, w, IC, OC);
            liif_conv3x3_backward(r_dinp, r_dw, r_db, dout, inp, wt, B, h, w, IC, OC);
            char tag[160];
            snprintf(tag, sizeof tag, "conv %dx%dx%dx%d -> %d%s%s: out", B, h, w, IC, OC, bias ? "" : " no bias",
                     fast ? " [tf32]" : "");
            check_norm(tag, out, r_out, no, tol);
            check_norm("  dinp", dinp, r_dinp, ni, tol);
            check_norm("  dweight", dw, r_dw, nw, tol);
            if (bias) check_norm("  dbias", db, r_db, OC, tol);
            if (fast && sm >= 80) { /* the implicit-GEMM weight gradient ran where it applies: differs from im2col's */
                float *dw2 = malloc(nw * 4), *o2 = malloc(no * 4), *di2 = malloc(ni * 4), *db2 = malloc(OC * 4);
                setenv("LIIF_CUDA_CONV", "im2col", 1);
                int bad = mod->op_conv3x3_train(gpu, inp, B, h, w, IC, OC, wt, bias, dout, o2, di2, dw2, db2, fast, &err);
                unsetenv("LIIF_CUDA_CONV");
                int implicit = IC % 64 == 0 && OC % 64 == 0, same = !bad && !memcmp(dw, dw2, nw * 4);
                int ok = !bad && (implicit ? !same : same);
                printf("    %-56s %s\n", implicit ? "implicit weight gradient ran (differs from im2col)"
                                                  : "im2col weight gradient (equal)", ok ? "ok" : "FAIL");
                tu_failures += !ok;
                free(dw2); free(o2); free(di2); free(db2);
            }
        }
        free(inp); free(wt); free(b); free(dout); free(zero); free(out); free(dinp); free(dw); free(db);
        free(r_out); free(r_dinp); free(r_dw); free(r_db);
    }
}

/* ------------------------------------------------------------ whole steps */

typedef struct {
    int B, h, w, Q;
    float *inp, *coord, *cell, *gt;
} batch;

/* Random LR images, query centres of an HR grid of H x W, its cells, random targets. */
static batch make_batch(int B, int h, int w, int Q)
{
    batch b = {B, h, w, Q, random_array((size_t)B * h * w * 3, 0, 1), malloc((size_t)B * Q * 2 * 4),
               malloc((size_t)B * Q * 2 * 4), random_array((size_t)B * Q * 3, 0, 1)};
    int H = h * 3 - 1, W = w * 3 + 2;
    for (int i = 0; i < B * Q; i++) {
        int r = (int)((rm_uniform(&rng) * 0.5f + 0.5f) * H) % H, c = (int)((rm_uniform(&rng) * 0.5f + 0.5f) * W) % W;
        b.coord[2 * i] = liif_coord(r, H);
        b.coord[2 * i + 1] = liif_coord(c, W);
        b.cell[2 * i] = 2.0f / H;
        b.cell[2 * i + 1] = 2.0f / W;
    }
    return b;
}

static void free_batch(batch *b)
{
    free(b->inp); free(b->coord); free(b->cell); free(b->gt);
}

static liif_train_state *load_state(const rm_spec *sp)
{
    char path[128];
    snprintf(path, sizeof path, "%s/m.safetensors", tmpdir);
    liif_train_state *s;
    liif_error err;
    if (rm_write(path, sp) || liif_train_state_load(path, &s, &err)) {
        printf("FAIL cannot make a random model\n");
        exit(1);
    }
    unlink(path);
    return s;
}

/* One step on the CPU reference and on the GPU from the same model: pred, loss, every gradient, dfeat,
 * the parameters after Adam and the prediction after it. */
static void test_step(const char *tag, const rm_spec *sp, int fast)
{
    printf("%s%s:\n", tag, fast ? " [tf32]" : "");
    double tol = fast ? TOL_TF32 : TOL_F32;
    liif_train_state *s = load_state(sp), *sg = load_state(sp);
    const liif_config *c = &s->cfg;
    batch bt = make_batch(2, 9, 7, 50);
    size_t npred = (size_t)bt.B * bt.Q * 3, nf = (size_t)bt.B * bt.h * bt.w * c->n_feats;
    liif_train_acts *a;
    liif_train_gpu *g;
    liif_error err;
    liif_adam_config opt = liif_adam_defaults();
    if (liif_train_acts_new(c, bt.B, bt.h, bt.w, bt.Q, &a, &err) ||
        liif_train_gpu_new(sg, bt.B, bt.h, bt.w, bt.Q, fast, &g, &err)) {
        printf("FAIL %s\n", err.msg);
        tu_failures++;
        return;
    }
    float *pred = malloc(npred * 4), *dfeat = malloc(nf * 4), loss = NAN;
    for (size_t i = 0; i < npred; i++) pred[i] = NAN;
    liif_train_forward(s, a, bt.inp, bt.coord, bt.cell, bt.gt, &err);
    liif_train_zero_grad(s);
    liif_train_backward(s, a);
    if (liif_train_gpu_forward(g, bt.inp, bt.coord, bt.cell, bt.gt, pred, &loss, &err) ||
        liif_train_gpu_backward(g, sg, dfeat, &err)) {
        printf("FAIL %s\n", err.msg);
        tu_failures++;
    } else {
        check_norm("pred", pred, a->pred, npred, tol);
        check_norm("loss", &loss, &a->loss, 1, fast ? 1e-3 : 1e-5);
        check_norm("dfeat (decoder backward incl. the scatter into the grid)", dfeat, a->dfeat, nf, tol * 5);
        double worst = 0;
        const char *worst_name = "";
        int bad = 0;
        /* float32: max|diff| / max|g| per tensor. TF32: ||diff|| / ||g|| per tensor (L2): TF32's rounding (2^-11 per
         * operand) in 34 encoder convolutions forward and back moves pred by ~5e-4 and so flips the sign of the L1
         * gradient wherever |pred - gt| is smaller, and a flipped row moves single gradient entries by a large part
         * of the tensor's maximum (the H200's cuBLAS TF32 measured 0.118 there, the implicit-GEMM kernel emulated
         * 0.265), and where a tensor's gradient is a sum with much cancellation (random weights), by several % of its
         * norm: 0.079 emulated (with the emulation's TF32 rounding turned off, the same step through the same kernels
         * is within 2.4e-6 of float32: the rest is TF32's). */
        double gtol = fast ? 0.15 : tol * 5;
        for (int i = 0; i < s->n_tensors; i++) {
            const liif_train_tensor *t = &s->tensors[i];
            if (!t->trainable) continue;
            const float *a1 = sg->grads + t->offset, *b1 = s->grads + t->offset;
            double d = tu_maxdiff(a1, b1, t->numel), m = tu_maxabs(b1, t->numel), rel = d / (m > 1e-30 ? m : 1e-30);
            if (fast) {
                double dd = 0, gg = 0;
                for (size_t k = 0; k < t->numel; k++) {
                    dd += ((double)a1[k] - b1[k]) * ((double)a1[k] - b1[k]);
                    gg += (double)b1[k] * b1[k];
                }
                rel = sqrt(dd / (gg > 1e-60 ? gg : 1e-60));
            }
            if (!(rel <= gtol)) {
                printf("  grad %-40s max|diff| %.3g max|g| %.3g err %.3g FAIL\n", t->name, d, m, rel);
                bad++;
            }
            if (!(rel <= worst)) worst = rel, worst_name = t->name;
        }
        printf("  %-58s worst %s err %.3g (%s, tol %.2g) %s\n", "every parameter gradient", fast ? "L2 norm" : "norm",
               worst, worst_name, gtol, bad ? "FAIL" : "ok");
        tu_failures += bad;
        liif_adam_update(s, &opt);
        if (liif_train_gpu_adam(g, &opt, &err) || liif_train_gpu_pull(g, sg, &err)) {
            printf("FAIL %s\n", err.msg);
            tu_failures++;
        } else if (!fast) {
            check_params("parameters after Adam", sg->params, s->params, s->n_trainable, opt.lr, 1, 1000);
            CHECK(sg->step == 1, "step %lld after one Adam step", (long long)sg->step);
        }
        /* the next forward sees the updated parameters */
        liif_train_forward(s, a, bt.inp, bt.coord, bt.cell, bt.gt, &err);
        if (!liif_train_gpu_forward(g, bt.inp, bt.coord, bt.cell, bt.gt, pred, &loss, &err))
            check_norm("pred after the Adam step", pred, a->pred, npred, fast ? TOL_TF32 : 1e-3);
    }
    free(pred); free(dfeat);
    free_batch(&bt);
    liif_train_gpu_free(g);
    liif_train_acts_free(a);
    liif_train_state_free(s);
    liif_train_state_free(sg);
}

/* ------------------------------------------------------------ resume, learning */

/* Three GPU steps in one go, against two steps, a checkpoint written and read back, and the third step
 * on the GPU and on the CPU reference: the same run continues on either device. */
static void test_resume(const rm_spec *sp)
{
    printf("resume:\n");
    batch bt[3];
    for (int i = 0; i < 3; i++) bt[i] = make_batch(2, 8, 8, 40);
    liif_adam_config opt = liif_adam_defaults();
    liif_error err;
    liif_train_state *full = load_state(sp), *half = load_state(sp), *back = NULL, *cpu = NULL;
    liif_train_gpu *g = NULL, *g2 = NULL;
    char path[128];
    snprintf(path, sizeof path, "%s/ckpt.safetensors", tmpdir);
    float loss;
    int st = liif_train_gpu_new(full, 2, 8, 8, 40, 0, &g, &err);
    for (int i = 0; !st && i < 3; i++) st = liif_train_gpu_step(g, bt[i].inp, bt[i].coord, bt[i].cell, bt[i].gt, &opt, &err);
    if (!st) st = liif_train_gpu_wait(g, &loss, &err);
    if (!st) st = liif_train_gpu_pull(g, full, &err);
    liif_train_gpu_free(g);
    g = NULL;
    if (!st) st = liif_train_gpu_new(half, 2, 8, 8, 40, 0, &g, &err);
    for (int i = 0; !st && i < 2; i++) st = liif_train_gpu_step(g, bt[i].inp, bt[i].coord, bt[i].cell, bt[i].gt, &opt, &err);
    if (!st) st = liif_train_gpu_pull(g, half, &err);
    if (!st) st = liif_train_state_save(half, path, 1, &err);
    if (!st) st = liif_train_state_load(path, &back, &err);
    if (!st) st = liif_train_state_load(path, &cpu, &err);
    if (!st) st = liif_train_gpu_new(back, 2, 8, 8, 40, 0, &g2, &err);
    if (!st) st = liif_train_gpu_step(g2, bt[2].inp, bt[2].coord, bt[2].cell, bt[2].gt, &opt, &err);
    if (!st) st = liif_train_gpu_pull(g2, back, &err);
    if (st) {
        printf("FAIL %s\n", err.msg);
        tu_failures++;
    } else {
        CHECK(half->step == 2 && full->step == 3 && back->step == 3, "steps %lld / %lld / %lld", (long long)half->step,
              (long long)full->step, (long long)back->step);
        check_params("GPU: 3 steps vs 2 + checkpoint + 1, parameters", back->params, full->params, full->n_trainable,
                     opt.lr, 1, 1000);
        check_norm("GPU: 3 steps vs 2 + checkpoint + 1, Adam m", back->m, full->m, full->n_trainable, 1e-3);
        check_norm("GPU: 3 steps vs 2 + checkpoint + 1, Adam v", back->v, full->v, full->n_trainable, 1e-3);
        liif_train_acts *a;
        if (!liif_train_acts_new(&cpu->cfg, 2, 8, 8, 40, &a, &err)) {
            liif_train_forward(cpu, a, bt[2].inp, bt[2].coord, bt[2].cell, bt[2].gt, &err);
            liif_train_zero_grad(cpu);
            liif_train_backward(cpu, a);
            liif_adam_update(cpu, &opt);
            check_params("CPU resuming a GPU checkpoint, parameters after step 3", cpu->params, full->params,
                         full->n_trainable, opt.lr, 1, 1000);
            liif_train_acts_free(a);
        }
    }
    unlink(path);
    liif_train_gpu_free(g);
    liif_train_gpu_free(g2);
    liif_train_state_free(full); liif_train_state_free(half); liif_train_state_free(back); liif_train_state_free(cpu);
    for (int i = 0; i < 3; i++) free_batch(&bt[i]);
}

/* 40 steps on one batch at lr 1e-3: the loss must fall. */
static void test_learns(const rm_spec *sp)
{
    liif_train_state *s = load_state(sp);
    batch bt = make_batch(4, 8, 8, 64);
    liif_adam_config opt = liif_adam_defaults();
    opt.lr = 1e-3;
    liif_train_gpu *g;
    liif_error err;
    float first = NAN, last = NAN;
    int st = liif_train_gpu_new(s, 4, 8, 8, 64, 0, &g, &err);
    for (int i = 0; !st && i < 40; i++) {
        st = liif_train_gpu_step(g, bt.inp, bt.coord, bt.cell, bt.gt, &opt, &err);
        if (!st) st = liif_train_gpu_wait(g, i ? &last : &first, &err);
    }
    if (st) {
        printf("FAIL %s\n", err.msg);
        tu_failures++;
    } else {
        printf("learning: L1 loss %.4f at step 1, %.4f at step 40\n", first, last);
        CHECK(last < 0.7f * first, "the loss did not fall: %.4f -> %.4f", first, last);
        liif_train_gpu_free(g);
    }
    free_batch(&bt);
    liif_train_state_free(s);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    gpu = tc_gpu_or_skip(&mod);
    sm = tc_device_sm(mod);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/liif-cuda-train-XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;

    for (int fast = 0; fast < 2; fast++) test_conv(fast);
    struct { const char *tag; rm_spec sp; } models[] = {
        {"liif", {16, 2, 2, 32, 1, 1, 1, "liif", 1, 3.0f}},
        {"liif no_unfold", {16, 2, 2, 32, 0, 1, 1, "liif", 4, 3.0f}},
        {"liif no_ensemble", {16, 2, 2, 32, 1, 0, 1, "liif", 5, 3.0f}},
        {"liif no_cell", {16, 2, 2, 32, 1, 1, 0, "liif", 6, 3.0f}},
        {"liif EDSR-baseline shape", {64, 16, 4, 256, 1, 1, 1, "liif", 7, 1.0f}},
    };
    size_t nm = sizeof models / sizeof models[0];
    for (size_t i = 0; i < nm; i++) test_step(models[i].tag, &models[i].sp, 0);
    test_step(models[nm - 1].tag, &models[nm - 1].sp, 1);
    test_resume(&models[0].sp);
    test_learns(&models[0].sp);
    gpu->destroy(gpu);
    rmdir(tmpdir);
    return tu_finish("cuda-train");
}
