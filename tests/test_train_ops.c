/* test_train_ops.c: fast CPU training ops against the reference on random shapes; a whole step fast vs reference; checkpoints. */
#include <string.h>
#include <unistd.h>

#include "randmodel.h"
#include "testutil.h"
#include "nn.h"
#include "gan_step.h"
#include "train.h"

static unsigned long long rng = 12345;

static float *rand_buf(size_t n, float scale)
{
    float *v = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) v[i] = rm_uniform(&rng) * scale;
    return v;
}

static float *copy_buf(const float *src, size_t n)
{
    float *v = malloc(n * sizeof(float));
    memcpy(v, src, n * sizeof(float));
    return v;
}

/* |got - want| <= 1e-5 * (1 + max|want|): float summation order only (llm.c's atol + rtol form). */
static void close_rel(const char *what, const float *got, const float *want, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fabs(want[i]) > m ? fabs(want[i]) : m;
    tu_close(what, got, want, n, 1e-5 * (1.0 + m));
}

static void check_conv(int B, int h, int w, int IC, int OC, int threads)
{
    size_t ni = (size_t)B * h * w * IC, no = (size_t)B * h * w * OC, nw = (size_t)OC * IC * 9;
    float *inp = rand_buf(ni, 1.0f), *wt = rand_buf(nw, 0.3f), *bias = rand_buf(OC, 0.5f), *dout = rand_buf(no, 1.0f);
    float *out_r = malloc(no * sizeof(float)), *out_f = malloc(no * sizeof(float));
    /* gradients start non-zero: both must accumulate */
    float *dinp_r = rand_buf(ni, 1.0f), *dw_r = rand_buf(nw, 1.0f), *db_r = rand_buf(OC, 1.0f);
    float *dinp_f = copy_buf(dinp_r, ni), *dw_f = copy_buf(dw_r, nw), *db_f = copy_buf(db_r, OC);
    liif_train_cpu *cpu = liif_train_cpu_new(IC, OC, threads);
    char what[128];
    liif_conv3x3_forward(out_r, inp, wt, bias, B, h, w, IC, OC);
    liif_conv3x3_forward_cpu(cpu, out_f, inp, wt, bias, B, h, w, IC, OC);
    snprintf(what, sizeof what, "conv3x3 forward  B%d %dx%d %d->%d, %d threads", B, h, w, IC, OC, threads);
    close_rel(what, out_f, out_r, no);
    liif_conv3x3_backward(dinp_r, dw_r, db_r, dout, inp, wt, B, h, w, IC, OC);
    liif_conv3x3_backward_cpu(cpu, dinp_f, dw_f, db_f, dout, inp, wt, B, h, w, IC, OC);
    snprintf(what, sizeof what, "conv3x3 backward dinp    B%d %dx%d %d->%d", B, h, w, IC, OC);
    close_rel(what, dinp_f, dinp_r, ni);
    snprintf(what, sizeof what, "conv3x3 backward dweight B%d %dx%d %d->%d", B, h, w, IC, OC);
    close_rel(what, dw_f, dw_r, nw);
    snprintf(what, sizeof what, "conv3x3 backward dbias   B%d %dx%d %d->%d", B, h, w, IC, OC);
    close_rel(what, db_f, db_r, OC);
    /* without dinp (the head) */
    liif_conv3x3_backward(NULL, dw_r, db_r, dout, inp, wt, B, h, w, IC, OC);
    liif_conv3x3_backward_cpu(cpu, NULL, dw_f, db_f, dout, inp, wt, B, h, w, IC, OC);
    close_rel("conv3x3 backward without dinp: dweight", dw_f, dw_r, nw);
    liif_train_cpu_free(cpu);
    free(inp); free(wt); free(bias); free(dout); free(out_r); free(out_f);
    free(dinp_r); free(dw_r); free(db_r); free(dinp_f); free(dw_f); free(db_f);
}

/* The discriminator's and VGG's NCHW convolutions (any k, stride, pad). */
static void check_conv2d(int B, int IC, int H, int W, int OC, int k, int stride, int pad, int with_bias, int threads)
{
    int OH = nn_conv_out(H, k, stride, pad), OW = nn_conv_out(W, k, stride, pad);
    size_t ni = (size_t)B * IC * H * W, no = (size_t)B * OC * OH * OW, nw = (size_t)OC * IC * k * k;
    float *inp = rand_buf(ni, 1.0f), *wt = rand_buf(nw, 0.3f), *bias = with_bias ? rand_buf(OC, 0.5f) : NULL;
    float *dout = rand_buf(no, 1.0f), *out_r = malloc(no * sizeof(float)), *out_f = malloc(no * sizeof(float));
    float *dinp_r = rand_buf(ni, 1.0f), *dw_r = rand_buf(nw, 1.0f), *db_r = rand_buf(OC, 1.0f);
    float *dinp_f = copy_buf(dinp_r, ni), *dw_f = copy_buf(dw_r, nw), *db_f = copy_buf(db_r, OC);
    nn_cpu *cpu = nn_cpu_new(nn_conv2d_col_size(IC, H, W, k, stride, pad), nw + OC, threads);
    char what[160];
    snprintf(what, sizeof what, "conv2d B%d %d->%d %dx%d k%d s%d p%d%s, %d threads:", B, IC, OC, H, W, k, stride, pad,
             with_bias ? "" : " no bias", threads);
    printf("%s\n", what);
    nn_conv2d_forward(out_r, inp, wt, bias, B, IC, H, W, OC, k, stride, pad);
    nn_conv2d_forward_cpu(cpu, out_f, inp, wt, bias, B, IC, H, W, OC, k, stride, pad);
    close_rel("  forward", out_f, out_r, no);
    nn_conv2d_backward(dinp_r, dw_r, with_bias ? db_r : NULL, dout, inp, wt, B, IC, H, W, OC, k, stride, pad);
    nn_conv2d_backward_cpu(cpu, dinp_f, dw_f, with_bias ? db_f : NULL, dout, inp, wt, B, IC, H, W, OC, k, stride, pad);
    close_rel("  backward dinp", dinp_f, dinp_r, ni);
    close_rel("  backward dweight", dw_f, dw_r, nw);
    close_rel("  backward dbias (untouched without a bias)", db_f, db_r, OC);
    /* only dinp (VGG), only the parameters (the discriminator's first stage) */
    nn_conv2d_backward(dinp_r, NULL, NULL, dout, inp, wt, B, IC, H, W, OC, k, stride, pad);
    nn_conv2d_backward_cpu(cpu, dinp_f, NULL, NULL, dout, inp, wt, B, IC, H, W, OC, k, stride, pad);
    close_rel("  backward dinp only", dinp_f, dinp_r, ni);
    nn_conv2d_backward(NULL, dw_r, db_r, dout, inp, wt, B, IC, H, W, OC, k, stride, pad);
    nn_conv2d_backward_cpu(cpu, NULL, dw_f, db_f, dout, inp, wt, B, IC, H, W, OC, k, stride, pad);
    close_rel("  backward without dinp: dweight", dw_f, dw_r, nw);
    close_rel("  backward without dinp: dbias", db_f, db_r, OC);
    nn_cpu_free(cpu);
    free(inp); free(wt); free(bias); free(dout); free(out_r); free(out_f);
    free(dinp_r); free(dw_r); free(db_r); free(dinp_f); free(dw_f); free(db_f);
}

static void check_linear(int N, int IC, int OC)
{
    size_t ni = (size_t)N * IC, no = (size_t)N * OC, nw = (size_t)OC * IC;
    float *inp = rand_buf(ni, 1.0f), *wt = rand_buf(nw, 0.3f), *bias = rand_buf(OC, 0.5f), *dout = rand_buf(no, 1.0f);
    float *out_r = malloc(no * sizeof(float)), *out_f = malloc(no * sizeof(float));
    float *dinp_r = rand_buf(ni, 1.0f), *dw_r = rand_buf(nw, 1.0f), *db_r = rand_buf(OC, 1.0f);
    float *dinp_f = copy_buf(dinp_r, ni), *dw_f = copy_buf(dw_r, nw), *db_f = copy_buf(db_r, OC);
    char what[128];
    liif_linear_forward(out_r, inp, wt, bias, N, IC, OC);
    liif_linear_forward_cpu(out_f, inp, wt, bias, N, IC, OC);
    snprintf(what, sizeof what, "linear forward  N%d %d->%d", N, IC, OC);
    close_rel(what, out_f, out_r, no);
    liif_linear_backward(dinp_r, dw_r, db_r, dout, inp, wt, N, IC, OC);
    liif_linear_backward_cpu(dinp_f, dw_f, db_f, dout, inp, wt, N, IC, OC);
    snprintf(what, sizeof what, "linear backward N%d %d->%d: dinp", N, IC, OC);
    close_rel(what, dinp_f, dinp_r, ni);
    snprintf(what, sizeof what, "linear backward N%d %d->%d: dweight", N, IC, OC);
    close_rel(what, dw_f, dw_r, nw);
    snprintf(what, sizeof what, "linear backward N%d %d->%d: dbias", N, IC, OC);
    close_rel(what, db_f, db_r, OC);
    free(inp); free(wt); free(bias); free(dout); free(out_r); free(out_f);
    free(dinp_r); free(dw_r); free(db_r); free(dinp_f); free(dw_f); free(db_f);
}

/* A random batch for a state: inp (B,h,w,3) in [0,1], coords inside [-1,1], cells of an HR grid, gt. */
static void random_batch(int B, int h, int w, int Q, float **inp, float **coord, float **cell, float **gt)
{
    *inp = rand_buf((size_t)B * h * w * 3, 0.5f);
    *gt = rand_buf((size_t)B * Q * 3, 0.5f);
    for (size_t i = 0; i < (size_t)B * h * w * 3; i++) (*inp)[i] += 0.5f;
    for (size_t i = 0; i < (size_t)B * Q * 3; i++) (*gt)[i] += 0.5f;
    *coord = malloc((size_t)B * Q * 2 * sizeof(float));
    *cell = malloc((size_t)B * Q * 2 * sizeof(float));
    for (int b = 0; b < B; b++) {
        int H = 3 * h + b, W = 3 * w + 1; /* a non-integer scale per sample */
        for (int q = 0; q < Q; q++) {
            size_t i = ((size_t)b * Q + q) * 2;
            int r = (int)((rm_uniform(&rng) + 1.0f) * 0.5f * H) % H, c = (int)((rm_uniform(&rng) + 1.0f) * 0.5f * W) % W;
            (*coord)[i] = liif_coord(r, H);
            (*coord)[i + 1] = liif_coord(c, W);
            (*cell)[i] = 2.0f / H;
            (*cell)[i + 1] = 2.0f / W;
        }
    }
}

/* One training step of a small random model with the reference and with the fast ops. */
static void check_step(const char *model, int unfold, int ensemble, int cell_decode)
{
    rm_spec sp = {.n_feats = 16, .n_resblocks = 2, .n_hidden = 2, .hidden = 32, .feat_unfold = unfold,
                  .local_ensemble = ensemble, .cell_decode = cell_decode, .variant = "liif", .seed = 7,
                  .out_gain = 1.0f};
    if (rm_write(model, &sp)) { tu_failures++; return; }
    liif_error err;
    liif_train_state *sr, *sf;
    if (liif_train_state_load(model, &sr, &err) || liif_train_state_load(model, &sf, &err)) {
        printf("FAIL %s\n", err.msg);
        tu_failures++;
        return;
    }
    const int B = 3, h = 9, w = 11, Q = 40;
    liif_train_acts *ar, *af;
    liif_train_acts_new(&sr->cfg, B, h, w, Q, &ar, &err);
    liif_train_acts_new(&sf->cfg, B, h, w, Q, &af, &err);
    CHECK(liif_train_acts_use_cpu(af, &sf->cfg, 2, &err) == LIIF_OK, "%s", err.msg);
    float *inp, *coord, *cell, *gt;
    random_batch(B, h, w, Q, &inp, &coord, &cell, &gt);
    liif_adam_config opt = liif_adam_defaults();
    char what[160];
    for (int step = 1; step <= 2; step++) {
        liif_train_forward(sr, ar, inp, coord, cell, gt, &err);
        liif_train_forward(sf, af, inp, coord, cell, gt, &err);
        snprintf(what, sizeof what, "step %d (unfold %d ensemble %d cell %d): pred fast vs ref", step, unfold, ensemble,
                 cell_decode);
        close_rel(what, af->pred, ar->pred, (size_t)B * Q * 3);
        tu_close("  loss", &af->loss, &ar->loss, 1, 1e-6);
        liif_train_zero_grad(sr);
        liif_train_zero_grad(sf);
        liif_train_backward(sr, ar);
        liif_train_backward(sf, af);
        double worst = 0;
        for (int i = 0; i < sr->n_tensors; i++) {
            const liif_train_tensor *t = &sr->tensors[i];
            double m = 0, d = tu_maxdiff(sf->grads + t->offset, sr->grads + t->offset, t->numel);
            for (size_t k = 0; k < t->numel; k++) m = fmax(m, fabs(sr->grads[t->offset + k]));
            double rel = m > 0 ? d / m : d;
            if (rel > worst) worst = rel;
            if (!(d <= 1e-4 * m + 1e-9)) { /* ReLU flips at ~0 can move a gradient by more than rounding */
                printf("FAIL   %s: max|diff| %.3g, max|g| %.3g\n", t->name, d, m);
                tu_failures++;
            }
        }
        printf("  %d gradients: worst max|diff| / max|g| %.3g (tol 1e-4)\n", sr->n_tensors, worst);
        liif_adam_update(sr, &opt);
        liif_adam_update(sf, &opt);
    }
    free(inp); free(coord); free(cell); free(gt);
    liif_train_acts_free(ar);
    liif_train_acts_free(af);
    liif_train_state_free(sr);
    liif_train_state_free(sf);
}

/* Save with Adam moments, load back: identical params, moments and step; params alone load as a model. */
static void check_checkpoint(const char *model, const char *ckpt)
{
    liif_error err;
    liif_train_state *s, *t;
    if (liif_train_state_load(model, &s, &err)) { printf("FAIL %s\n", err.msg); tu_failures++; return; }
    for (size_t i = 0; i < s->n_params; i++) s->grads[i] = rm_uniform(&rng) * 1e-3f;
    liif_adam_config opt = liif_adam_defaults();
    liif_adam_update(s, &opt);
    liif_adam_update(s, &opt);
    CHECK(liif_train_state_save(s, ckpt, 1, &err) == LIIF_OK, "save: %s", err.msg);
    CHECK(liif_train_state_load(ckpt, &t, &err) == LIIF_OK, "load: %s", err.msg);
    if (tu_failures) return;
    CHECK(t->step == 2 && t->n_params == s->n_params, "step %lld, %zu params", (long long)t->step, t->n_params);
    tu_close("checkpoint round trip: params", t->params, s->params, s->n_params, 0);
    tu_close("checkpoint round trip: adam m", t->m, s->m, s->n_params, 0);
    tu_close("checkpoint round trip: adam v", t->v, s->v, s->n_params, 0);
    liif_model *m;
    CHECK(liif_model_load(ckpt, &m, &err) == LIIF_OK, "a checkpoint loads as a model: %s", err.msg);
    liif_model_free(m);
    liif_train_state_free(s);
    liif_train_state_free(t);
}

/* Gradients: |got - want| <= 1e-4 * max|want| (the goldens' rule for gradients: the
 * discriminator's BatchNorm over a small batch amplifies summation-order differences). */
static void close_grad(const char *what, const float *got, const float *want, size_t n, double rel)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fabs(want[i]) > m ? fabs(want[i]) : m;
    tu_close(what, got, want, n, rel * m + 1e-9);
}

/* One LIIF-GAN step (generator half, then discriminator half, no Adam) of small random networks
 * with the reference layers and with the fast CPU ops: outputs, losses and every gradient. With w_fm,
 * discriminator feature matching too: its gradient enters all eight stages and crosses up to seven
 * BatchNorm backwards (d - mean(d) - xhat mean(d xhat), cancelling), whose rounding differences reach
 * 1.5e-4 of a tensor's largest gradient (measured), so G's gradients are held to 1e-3 there (as the
 * CUDA trainer's test holds a whole step, TOL_BN) and to 1e-4 without it. */
static void check_gan_step(const char *model, const char *variant, int unfold, int ensemble, float w_fm)
{
    rm_spec sp = {.n_feats = 8, .n_resblocks = 2, .n_hidden = 2, .hidden = 16, .feat_unfold = unfold,
                  .local_ensemble = ensemble, .cell_decode = 1, .variant = variant, .seed = 11, .out_gain = 1.0f};
    if (rm_write(model, &sp)) { tu_failures++; return; }
    liif_error err;
    const int B = 4, S = 16, P = 32, Q = P * P, H = 2 * S + 1;
    gan_gen *g[2];
    gan_disc *d[2];
    gan_vgg *v = NULL;
    gan_step_ws *ws[2];
    int width[GAN_DISC_STAGES] = {4, 4, 8, 8, 8, 8, 16, 16}, vw[16] = {4, 4, 8, 8};
    unsigned long long r0 = 21;
    CHECK(gan_vgg_new(GAN_VGG_RELU2_2, vw, &v, &err) == LIIF_OK, "%s", err.msg);
    for (int i = 0; i <= v->last; i++) {
        float *wv = gan_vgg_weight(v, i), *bv = gan_vgg_bias(v, i);
        if (!wv) continue;
        for (size_t k = 0; k < (size_t)v->mod[i].oc * v->mod[i].ic * 9; k++) wv[k] = 0.3f * rm_uniform(&r0);
        for (int k = 0; k < v->mod[i].oc; k++) bv[k] = 0.1f * rm_uniform(&r0);
    }
    for (int k = 0; k < 2; k++) {
        unsigned long long rd = 5;
        CHECK(gan_gen_load(model, &g[k], &err) == LIIF_OK, "%s", err.msg);
        CHECK(gan_disc_new(width, 8, P, 3, &d[k], &err) == LIIF_OK, "%s", err.msg);
        for (size_t i = 0; i < d[k]->n_params; i++) d[k]->params[i] = 0.3f * rm_uniform(&rd);
        for (int i = 1; i < GAN_DISC_STAGES; i++)
            for (int c = 0; c < d[k]->width[i]; c++) {
                d[k]->p.st[i].gamma[c] = 1.0f + 0.2f * rm_uniform(&rd);
                d[k]->p.st[i].rmean[c] = 0.0f;
                d[k]->p.st[i].rvar[c] = 1.0f;
            }
        CHECK(gan_step_ws_new(g[k], d[k], v, B, S, S, P, &ws[k], &err) == LIIF_OK, "%s", err.msg);
    }
    CHECK(gan_step_ws_use_cpu(g[1], d[1], v, ws[1], 2, &err) == LIIF_OK, "%s", err.msg);
    size_t nl = (size_t)B * 3 * S * S, np = (size_t)B * 3 * Q;
    float *lr = rand_buf(nl, 0.5f), *gt = rand_buf(np, 0.5f);
    float *coord = malloc((size_t)B * Q * 2 * sizeof(float)), *cell = malloc((size_t)B * Q * 2 * sizeof(float));
    for (size_t i = 0; i < nl; i++) lr[i] += 0.5f;
    for (size_t i = 0; i < np; i++) gt[i] += 0.5f;
    for (int b = 0; b < B; b++) /* an RGS block of an x(33/16) HR grid */
        for (int q = 0; q < Q; q++) {
            size_t i = ((size_t)b * Q + q) * 2;
            coord[i] = liif_coord(b + q / P, H);
            coord[i + 1] = liif_coord(2 * b + q % P, H);
            cell[i] = cell[i + 1] = 2.0f / H;
        }
    gan_step_config cfg = gan_step_defaults();
    cfg.w_adv = 0.5f; /* a large adversarial weight, so its gradient is not lost beside L1's */
    cfg.w_fm = w_fm;
    double grel = w_fm != 0.0f ? 1e-3 : 1e-4;
    for (int k = 0; k < 2; k++) {
        gan_gen_zero_grad(g[k]);
        gan_disc_zero_grad(d[k]);
        gan_step_generator(g[k], d[k], v, ws[k], &cfg, lr, coord, cell, gt, GAN_TERMS_ALL);
        gan_step_discriminator(d[k], ws[k], gt);
    }
    char what[160];
    snprintf(what, sizeof what, "GAN step %s (unfold %d ensemble %d, w_fm %g): decoder 1 output fast vs ref", variant,
             unfold, ensemble, w_fm);
    close_rel(what, ws[1]->gen->d1, ws[0]->gen->d1, np);
    close_rel("  decoder 2 output", ws[1]->gen->d2, ws[0]->gen->d2, np);
    float lf[5] = {ws[1]->loss_d1, ws[1]->loss_adv, ws[1]->loss_per, ws[1]->loss_fm, ws[1]->loss_d};
    float lrf[5] = {ws[0]->loss_d1, ws[0]->loss_adv, ws[0]->loss_per, ws[0]->loss_fm, ws[0]->loss_d};
    CHECK((lrf[3] > 0.0f) == (w_fm != 0.0f), "feature matching loss %g with w_fm %g", lrf[3], cfg.w_fm);
    close_rel("  losses (L1, adversarial, perceptual, feature matching, D)", lf, lrf, 5);
    for (int i = 0; i < g[0]->n_tensors; i++) {
        const liif_train_tensor *t = &g[0]->tensors[i];
        snprintf(what, sizeof what, "  G grad %s", t->name);
        close_grad(what, g[1]->grads + t->offset, g[0]->grads + t->offset, t->numel, grel);
    }
    for (int i = 0; i < d[0]->n_tensors; i++) {
        const liif_train_tensor *t = &d[0]->tensors[i];
        if (!t->trainable) continue;
        snprintf(what, sizeof what, "  D grad %s", t->name);
        close_grad(what, d[1]->grads + t->offset, d[0]->grads + t->offset, t->numel, 1e-4);
    }
    for (int k = 0; k < 2; k++) {
        gan_step_ws_free(ws[k]);
        gan_disc_free(d[k]);
        gan_gen_free(g[k]);
    }
    gan_vgg_free(v);
    free(lr); free(gt); free(coord); free(cell);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    check_conv(1, 1, 1, 3, 4, 1);
    check_conv(2, 5, 7, 3, 8, 2);
    check_conv(3, 11, 13, 16, 16, 2);  /* 429 pixels: blocks span images */
    check_conv(2, 16, 17, 24, 8, 3);
    check_conv2d(1, 3, 1, 1, 4, 3, 1, 1, 1, 2);   /* one sample: sequential samples, whole-team sgemm */
    check_conv2d(3, 5, 13, 11, 7, 3, 1, 1, 1, 2); /* samples over threads, odd sizes */
    check_conv2d(4, 6, 16, 16, 8, 4, 2, 1, 0, 2); /* the discriminator's strided 4x4, no bias */
    check_conv2d(2, 4, 15, 9, 5, 4, 2, 1, 1, 3);  /* odd sides with stride 2, more threads than samples */
    check_conv2d(5, 3, 12, 10, 6, 5, 3, 2, 1, 2); /* a 5x5 stride-3 kernel */
    check_linear(1, 1, 1);
    check_linear(37, 29, 13);
    check_linear(517, 70, 32);

    char dir[] = "/tmp/liif-train-ops-XXXXXX", model[64], ckpt[64];
    if (!mkdtemp(dir)) { printf("FAIL mkdtemp\n"); return 1; }
    snprintf(model, sizeof model, "%s/model.safetensors", dir);
    snprintf(ckpt, sizeof ckpt, "%s/ckpt.safetensors", dir);
    check_step(model, 1, 1, 1);
    check_step(model, 0, 1, 1);
    check_step(model, 1, 0, 1);
    check_step(model, 1, 1, 0);
    check_checkpoint(model, ckpt);
    check_gan_step(model, "liif-gan", 1, 1, 0.0f);
    check_gan_step(model, "liif-gan-sf", 1, 1, 0.0f);
    check_gan_step(model, "liif-gan-s", 1, 1, 0.0f);
    check_gan_step(model, "liif-gan", 0, 0, 0.0f);
    check_gan_step(model, "liif-gan", 1, 1, 0.3f);
    check_gan_step(model, "liif-gan-sf", 1, 1, 0.3f);
    unlink(model);
    unlink(ckpt);
    rmdir(dir);
    return tu_finish("train-ops");
}
