/* gan_step.c: the LIIF-GAN training step on the CPU: two-decoder generator state and forward/backward (trainer's reference layers), D and VGG losses, Adam. */
#include "gan_step.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn.h"
#include "internal.h"

/* ------------------------------------------------------------------ generator state */

static void add_tensor(gan_gen *g, const char *name, int ndim, const int64_t *shape)
{
    liif_train_tensor *t = &g->tensors[g->n_tensors++];
    snprintf(t->name, sizeof t->name, "%.63s", name);
    t->ndim = ndim;
    t->numel = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        t->numel *= (size_t)shape[i];
    }
    t->offset = g->n_params;
    t->trainable = 1;
    g->n_params += t->numel;
}

static void add_layer(gan_gen *g, const char *prefix, int ic, int oc, int conv)
{
    char name[sizeof g->tensors->name + 16];
    int64_t ws[4] = {oc, ic, 3, 3}, bs[1] = {oc};
    snprintf(name, sizeof name, "%s.weight", prefix);
    add_tensor(g, name, conv ? 4 : 2, ws);
    snprintf(name, sizeof name, "%s.bias", prefix);
    add_tensor(g, name, 1, bs);
}

/* Layer i of the table (tensors 2i, 2i+1) as a view into buf. */
static liif_train_layer layer_view(const gan_gen *g, float *buf, int i)
{
    const liif_train_tensor *w = &g->tensors[2 * i], *b = &g->tensors[2 * i + 1];
    liif_train_layer L = {(int)w->shape[1], (int)w->shape[0], buf + w->offset, buf + b->offset};
    return L;
}

static void copy_in(const liif_train_layer *L, const float *w, const float *b, int conv)
{
    memcpy(L->w, w, (size_t)L->oc * L->ic * (conv ? 9 : 1) * sizeof(float));
    memcpy(L->b, b, (size_t)L->oc * sizeof(float));
}

liif_status gan_gen_load(const char *path, gan_gen **out, liif_error *err)
{
    *out = NULL;
    liif_model *m;
    liif_status st = liif_model_load(path, &m, err);
    if (st) return st;
    const liif_config *c = &m->cfg;
    int R = c->n_resblocks, nconv = 2 * R + 2, L = c->n_hidden + 1, nd = c->n_decoders;
    gan_gen *g = calloc(1, sizeof *g);
    if (g) {
        g->cfg = *c;
        g->tensors = calloc(2 * ((size_t)nconv + 2 * L), sizeof *g->tensors);
        g->p_conv = calloc((size_t)nconv, sizeof *g->p_conv);
        g->g_conv = calloc((size_t)nconv, sizeof *g->g_conv);
    }
    if (!g || !g->tensors || !g->p_conv || !g->g_conv) {
        gan_gen_free(g);
        liif_model_free(m);
        return liif_error_set(err, LIIF_ERR_NOMEM, "generator: out of memory");
    }
    char prefix[64];
    add_layer(g, "encoder.head.0", c->in_ch, c->n_feats, 1);
    for (int i = 0; i < R; i++)
        for (int j = 0; j < 2; j++) {
            snprintf(prefix, sizeof prefix, "encoder.body.%d.body.%d", i, 2 * j);
            add_layer(g, prefix, c->n_feats, c->n_feats, 1);
        }
    snprintf(prefix, sizeof prefix, "encoder.body.%d", R);
    add_layer(g, prefix, c->n_feats, c->n_feats, 1);
    for (int d = 0; d < nd; d++)
        for (int l = 0; l < L; l++) {
            snprintf(prefix, sizeof prefix, "%s.layers.%d", d ? "imnet2" : "imnet", 2 * l);
            add_layer(g, prefix, m->dec[d].dims[l], m->dec[d].dims[l + 1], 0);
        }
    g->n_trainable = g->n_params;
    g->params = calloc(g->n_params, sizeof(float));
    g->grads = calloc(g->n_params, sizeof(float));
    g->m = calloc(g->n_params, sizeof(float));
    g->v = calloc(g->n_params, sizeof(float));
    if (!g->params || !g->grads || !g->m || !g->v) {
        gan_gen_free(g);
        liif_model_free(m);
        return liif_error_set(err, LIIF_ERR_NOMEM, "generator: out of memory for %zu parameters", g->n_params);
    }
    for (int i = 0; i < nconv; i++) {
        g->p_conv[i] = layer_view(g, g->params, i);
        g->g_conv[i] = layer_view(g, g->grads, i);
        const liif_conv *src = i == 0 ? &m->head : (i == nconv - 1 ? &m->tail : &m->body[i - 1]);
        copy_in(&g->p_conv[i], src->w, src->b, 1);
    }
    for (int d = 0; d < nd; d++)
        for (int l = 0; l < L; l++) {
            g->p_dec[d][l] = layer_view(g, g->params, nconv + d * L + l);
            g->g_dec[d][l] = layer_view(g, g->grads, nconv + d * L + l);
            copy_in(&g->p_dec[d][l], m->dec[d].w[l], m->dec[d].b[l], 0);
        }
    liif_model_free(m);
    *out = g;
    return LIIF_OK;
}

void gan_gen_free(gan_gen *g)
{
    if (!g) return;
    free(g->tensors);
    free(g->p_conv);
    free(g->g_conv);
    free(g->params);
    free(g->grads);
    free(g->m);
    free(g->v);
    free(g);
}

const liif_train_tensor *gan_gen_find(const gan_gen *g, const char *name)
{
    for (int i = 0; i < g->n_tensors; i++)
        if (!strcmp(g->tensors[i].name, name)) return &g->tensors[i];
    return NULL;
}

void gan_gen_zero_grad(gan_gen *g) { memset(g->grads, 0, g->n_params * sizeof(float)); }

void gan_gen_adam_update(gan_gen *g, const liif_adam_config *o)
{
    liif_adam_update_arrays(g->params, g->grads, g->m, g->v, g->n_trainable, &g->step, o->lr, o->beta1, o->beta2, o->eps);
}

/* ------------------------------------------------------------------ generator activations */

liif_status gan_gen_acts_new(const gan_gen *g, int B, int h, int w, int P, gan_gen_acts **out, liif_error *err)
{
    *out = NULL;
    const liif_config *c = &g->cfg;
    gan_gen_acts *a = calloc(1, sizeof *a);
    if (!a) return liif_error_set(err, LIIF_ERR_NOMEM, "generator activations: out of memory");
    int R = c->n_resblocks, F = c->n_feats, C = c->in_ch, L = c->n_hidden + 1;
    a->B = B;
    a->h = h;
    a->w = w;
    a->P = P;
    a->Q = P * P;
    a->K = c->local_ensemble ? 4 : 1;
    a->D = c->in_dim;
    a->maxw = c->in_dim;
    for (int l = 0; l < c->n_hidden; l++) a->maxw = c->hidden[l] > a->maxw ? c->hidden[l] : a->maxw;
    size_t nf = (size_t)B * h * w * F, rows = (size_t)B * a->Q * a->K, img = (size_t)B * C * a->Q;
    size_t total = (size_t)B * h * w * C + (size_t)(R + 1) * nf + (size_t)R * nf + nf, rowtotal = 0;
    for (int d = 0; d < 2; d++) {
        total += rows + (size_t)B * a->Q * C;
        rowtotal += rows * a->D;
        for (int l = 0; l < L; l++) rowtotal += rows * (size_t)g->p_dec[d][l].oc;
    }
    total += 2 * img + (size_t)B * a->Q * C + 4 * nf;
    rowtotal += 2 * rows * a->maxw;
    a->mem = malloc(total * sizeof(float));
    a->rowmem = malloc(rowtotal * sizeof(float));
    a->lat[0] = malloc(2 * rows * sizeof(int));
    if (!a->mem || !a->rowmem || !a->lat[0]) {
        gan_gen_acts_free(a);
        return liif_error_set(err, LIIF_ERR_NOMEM, "generator activations: out of memory (batch %d)", B);
    }
    a->lat[1] = a->lat[0] + rows;
    float *p = a->mem;
#define TAKE(ptr, n) (ptr = p, p += (n))
    TAKE(a->x, (size_t)B * h * w * C);
    TAKE(a->t, (size_t)(R + 1) * nf);
    TAKE(a->r, (size_t)R * nf);
    TAKE(a->feat, nf);
    for (int d = 0; d < 2; d++) {
        TAKE(a->wt[d], rows);
        TAKE(a->pred[d], (size_t)B * a->Q * C);
    }
    TAKE(a->d1, img);
    TAKE(a->d2, img);
    TAKE(a->dpred, (size_t)B * a->Q * C);
    TAKE(a->dsrc[0], nf);
    TAKE(a->dsrc[1], nf);
    TAKE(a->dt, nf);
    TAKE(a->dr, nf);
    p = a->rowmem;
    for (int d = 0; d < 2; d++) {
        TAKE(a->mlp_in[d], rows * a->D);
        for (int l = 0; l < L; l++) TAKE(a->mlp_h[d][l], rows * (size_t)g->p_dec[d][l].oc);
    }
    TAKE(a->dmlp_a, rows * a->maxw);
    TAKE(a->dmlp_b, rows * a->maxw);
#undef TAKE
    *out = a;
    return LIIF_OK;
}

liif_status gan_gen_acts_use_cpu(const gan_gen *g, gan_gen_acts *a, int threads, liif_error *err)
{
    const liif_config *c = &g->cfg;
    int F = c->n_feats, C = c->in_ch, H0 = c->n_hidden ? c->hidden[0] : c->out_dim;
    int mx = C > F ? C : F;
    liif_train_cpu_free(a->cpu);
    /* the layer-1 precompute is a conv F -> H0 on the same scratch */
    if (!(a->cpu = liif_train_cpu_new(mx, H0 > F ? H0 : F, threads)))
        return liif_error_set(err, LIIF_ERR_NOMEM, "generator: out of memory for the convolution scratch");
    for (int d = 0; d < c->n_decoders; d++) {
        liif_status st = liif_decoder_cpu_prepare(a->cpu, &a->dec[d], c, a->B, a->h, a->w, a->Q, err);
        if (st) return st;
    }
    free(a->rowmem);
    a->rowmem = NULL;
    for (int d = 0; d < 2; d++) {
        a->mlp_in[d] = NULL;
        for (int l = 0; l <= LIIF_MAX_HIDDEN; l++) a->mlp_h[d][l] = NULL;
    }
    a->dmlp_a = a->dmlp_b = NULL;
    return LIIF_OK;
}

void gan_gen_acts_free(gan_gen_acts *a)
{
    if (!a) return;
    liif_train_cpu_free(a->cpu);
    liif_decoder_cpu_free(a->dec[0]);
    liif_decoder_cpu_free(a->dec[1]);
    free(a->rowmem);
    free(a->mem);
    free(a->lat[0]);
    free(a);
}

/* ------------------------------------------------------------------ generator forward / backward */

/* The feature map decoder d reads: the mid-layer (block mid_block's output) or the last one. */
static float *source(const gan_gen *g, const gan_gen_acts *a, int d)
{
    size_t nf = (size_t)a->B * a->h * a->w * g->cfg.n_feats;
    return g->cfg.dec_source[d] == LIIF_FEAT_MID ? a->t + (size_t)(g->cfg.mid_block + 1) * nf : a->feat;
}

/* (B,Q,C) with Q = P*P row-major <-> (B,C,P,P) */
static void bqc_to_nchw(float *dst, const float *src, int B, int Q, int C)
{
    for (int b = 0; b < B; b++)
        for (int q = 0; q < Q; q++)
            for (int c = 0; c < C; c++) dst[((size_t)b * C + c) * Q + q] = src[((size_t)b * Q + q) * C + c];
}

static void nchw_to_bqc(float *dst, const float *src, int B, int Q, int C)
{
    for (int b = 0; b < B; b++)
        for (int q = 0; q < Q; q++)
            for (int c = 0; c < C; c++) dst[((size_t)b * Q + q) * C + c] = src[((size_t)b * C + c) * Q + q];
}

/* The generator's layers: the fast CPU ops when the activations have their scratch, else the reference. */
static void conv_fwd(gan_gen_acts *a, float *out, const float *inp, const liif_train_layer *L, int IC, int OC)
{
    if (a->cpu) liif_conv3x3_forward_cpu(a->cpu, out, inp, L->w, L->b, a->B, a->h, a->w, IC, OC);
    else liif_conv3x3_forward(out, inp, L->w, L->b, a->B, a->h, a->w, IC, OC);
}

static void conv_bwd(gan_gen_acts *a, float *dinp, const liif_train_layer *dL, const float *dout, const float *inp,
                     const liif_train_layer *L, int IC, int OC)
{
    if (a->cpu) liif_conv3x3_backward_cpu(a->cpu, dinp, dL->w, dL->b, dout, inp, L->w, a->B, a->h, a->w, IC, OC);
    else liif_conv3x3_backward(dinp, dL->w, dL->b, dout, inp, L->w, a->B, a->h, a->w, IC, OC);
}

static void linear_fwd(const gan_gen_acts *a, float *out, const float *inp, const liif_train_layer *L, int N)
{
    if (a->cpu) liif_linear_forward_cpu(out, inp, L->w, L->b, N, L->ic, L->oc);
    else liif_linear_forward(out, inp, L->w, L->b, N, L->ic, L->oc);
}

static void linear_bwd(const gan_gen_acts *a, float *dinp, const liif_train_layer *dL, const float *dout,
                       const float *inp, const liif_train_layer *L, int N)
{
    if (a->cpu) liif_linear_backward_cpu(dinp, dL->w, dL->b, dout, inp, L->w, N, L->ic, L->oc);
    else liif_linear_backward(dinp, dL->w, dL->b, dout, inp, L->w, N, L->ic, L->oc);
}

void gan_gen_forward(const gan_gen *g, gan_gen_acts *a, const float *lr, const float *coord, const float *cell)
{
    const liif_config *c = &g->cfg;
    int B = a->B, h = a->h, w = a->w, F = c->n_feats, C = c->in_ch, R = c->n_resblocks, Q = a->Q, K = a->K;
    size_t nf = (size_t)B * h * w * F, rows = (size_t)B * Q * K;
    for (int b = 0; b < B; b++) /* NCHW [0,1] -> channels-last, normalised */
        for (int ch = 0; ch < C; ch++)
            for (int i = 0; i < h * w; i++)
                a->x[((size_t)b * h * w + i) * C + ch] = (lr[((size_t)b * C + ch) * h * w + i] - 0.5f) / 0.5f;
    const liif_train_layer *cv = g->p_conv;
    conv_fwd(a, a->t, a->x, &cv[0], C, F);
    for (int r = 0; r < R; r++) {
        float *tin = a->t + (size_t)r * nf, *tout = tin + nf, *act = a->r + (size_t)r * nf;
        conv_fwd(a, act, tin, &cv[1 + 2 * r], F, F);
        liif_relu_forward(act, act, nf);
        conv_fwd(a, tout, act, &cv[2 + 2 * r], F, F);
        for (size_t i = 0; i < nf; i++) tout[i] += tin[i];
    }
    conv_fwd(a, a->feat, a->t + (size_t)R * nf, &cv[2 * R + 1], F, F);
    for (size_t i = 0; i < nf; i++) a->feat[i] += a->t[i];
    if (c->n_decoders == 1) memset(a->d2, 0, (size_t)B * C * Q * sizeof(float)); /* LIIF-GAN-S: no decoder 2 */
    a->coord = coord;
    a->cell = cell;
    for (int d = 0; d < c->n_decoders && a->cpu; d++) {
        liif_error err;
        if (liif_decoder_cpu(a->cpu, &a->dec[d], c, g->p_dec[d], NULL, B, h, w, Q, source(g, a, d), coord, cell,
                             a->pred[d], NULL, NULL, &err)) {
            fprintf(stderr, "liif: %s\n", err.msg); /* unreachable: gan_gen_acts_use_cpu made the scratch */
            abort();
        }
        bqc_to_nchw(d ? a->d2 : a->d1, a->pred[d], B, Q, c->out_dim);
    }
    for (int d = 0; d < c->n_decoders && !a->cpu; d++) {
        liif_query_forward(a->mlp_in[d], a->lat[d], a->wt[d], source(g, a, d), coord, cell, c, B, h, w, Q);
        const float *x = a->mlp_in[d];
        for (int l = 0; l <= c->n_hidden; l++) {
            const liif_train_layer *L = &g->p_dec[d][l];
            linear_fwd(a, a->mlp_h[d][l], x, L, (int)rows);
            if (l < c->n_hidden) liif_relu_forward(a->mlp_h[d][l], a->mlp_h[d][l], rows * L->oc);
            x = a->mlp_h[d][l];
        }
        liif_blend_forward(a->pred[d], a->mlp_h[d][c->n_hidden], a->wt[d], B, Q, K, c->out_dim);
        bqc_to_nchw(d ? a->d2 : a->d1, a->pred[d], B, Q, c->out_dim);
    }
}

void gan_gen_backward(gan_gen *g, gan_gen_acts *a, const float *dd1, const float *dd2)
{
    const liif_config *c = &g->cfg;
    int B = a->B, h = a->h, w = a->w, F = c->n_feats, C = c->in_ch, R = c->n_resblocks, Q = a->Q, K = a->K;
    size_t nf = (size_t)B * h * w * F, rows = (size_t)B * Q * K;
    memset(a->dsrc[0], 0, nf * sizeof(float));
    memset(a->dsrc[1], 0, nf * sizeof(float));
    for (int d = 0; d < c->n_decoders; d++) { /* each decoder sees only its own output's gradient */
        const float *dd = d ? dd2 : dd1;
        if (!dd) continue;
        nchw_to_bqc(a->dpred, dd, B, Q, c->out_dim);
        int src = c->dec_source[d] == LIIF_FEAT_MID ? 0 : 1;
        if (a->cpu) { /* the decoder's dfeat into dt (free until the encoder's backward), then added */
            liif_error err;
            if (liif_decoder_cpu(a->cpu, &a->dec[d], c, g->p_dec[d], g->g_dec[d], B, h, w, Q, source(g, a, d),
                                 a->coord, a->cell, a->pred[d], a->dpred, a->dt, &err)) {
                fprintf(stderr, "liif: %s\n", err.msg);
                abort();
            }
            for (size_t i = 0; i < nf; i++) a->dsrc[src][i] += a->dt[i];
            continue;
        }
        float *dy = a->dmlp_a, *dx = a->dmlp_b;
        memset(dy, 0, rows * c->out_dim * sizeof(float));
        liif_blend_backward(dy, a->dpred, a->wt[d], B, Q, K, c->out_dim);
        for (int l = c->n_hidden; l >= 0; l--) {
            const liif_train_layer *L = &g->p_dec[d][l], *dL = &g->g_dec[d][l];
            if (l < c->n_hidden) liif_relu_backward(dy, dy, a->mlp_h[d][l], rows * L->oc);
            const float *x = l ? a->mlp_h[d][l - 1] : a->mlp_in[d];
            memset(dx, 0, rows * L->ic * sizeof(float));
            linear_bwd(a, dx, dL, dy, x, L, (int)rows);
            float *tmp = dy;
            dy = dx;
            dx = tmp;
        }
        /* into the gradient of the feature map this decoder read */
        liif_query_backward(a->dsrc[src], dy, a->lat[d], c, B, h, w, Q);
    }
    /* encoder: dsrc[1] is d feat, dsrc[0] d(t[mid_block + 1]) */
    const liif_train_layer *cv = g->p_conv, *gc = g->g_conv;
    memset(a->dt, 0, nf * sizeof(float));
    conv_bwd(a, a->dt, &gc[2 * R + 1], a->dsrc[1], a->t + (size_t)R * nf, &cv[2 * R + 1], F, F);
    for (int r = R - 1; r >= 0; r--) {
        if (r == c->mid_block) /* dt is d(t[r+1]): add the mid-layer decoder's part */
            for (size_t i = 0; i < nf; i++) a->dt[i] += a->dsrc[0][i];
        float *tin = a->t + (size_t)r * nf, *act = a->r + (size_t)r * nf;
        memset(a->dr, 0, nf * sizeof(float));
        conv_bwd(a, a->dr, &gc[2 + 2 * r], a->dt, act, &cv[2 + 2 * r], F, F);
        liif_relu_backward(a->dr, a->dr, act, nf);
        conv_bwd(a, a->dt, &gc[1 + 2 * r], a->dr, tin, &cv[1 + 2 * r], F, F);
    }
    for (size_t i = 0; i < nf; i++) a->dt[i] += a->dsrc[1][i]; /* global skip */
    conv_bwd(a, NULL, &gc[0], a->dt, a->x, &cv[0], C, F);
}

/* ------------------------------------------------------------------ the step */

gan_step_config gan_step_defaults(void)
{
    gan_step_config c = {5e-3f, 1.0f, 0.0f, liif_adam_defaults(), 0};
    return c;
}

liif_status gan_step_ws_new(const gan_gen *g, const gan_disc *d, const gan_vgg *v, int B, int h, int w, int P,
                            gan_step_ws **out, liif_error *err)
{
    *out = NULL;
    if (d->P != P || d->in_ch != g->cfg.in_ch)
        return liif_error_set(err, LIIF_ERR_ARG, "GAN step: the discriminator takes %dx%d patches, not %dx%d", d->P,
                              d->P, P, P);
    gan_step_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return liif_error_set(err, LIIF_ERR_NOMEM, "GAN step: out of memory");
    ws->B = B;
    ws->P = P;
    size_t img = (size_t)B * g->cfg.in_ch * P * P;
    liif_status st = gan_gen_acts_new(g, B, h, w, P, &ws->gen, err);
    if (!st) st = gan_disc_acts_new(d, B, &ws->disc, err);
    if (!st && v) st = gan_vgg_acts_new(v, B, P, P, &ws->vgg_fake, err);
    if (!st && v) st = gan_vgg_acts_new(v, B, P, P, &ws->vgg_real, err);
    size_t nfm = gan_disc_fm_size(d, B);
    if (!st && !(ws->mem = malloc((6 * img + 4 * (size_t)B + nfm) * sizeof(float))))
        st = liif_error_set(err, LIIF_ERR_NOMEM, "GAN step: out of memory");
    if (st) {
        gan_step_ws_free(ws);
        return st;
    }
    float *p = ws->mem;
    float **imgs[6] = {&ws->gt_norm, &ws->ip, &ws->fake01, &ws->dd1, &ws->dd2, &ws->dfake01};
    for (int i = 0; i < 6; i++, p += img) *imgs[i] = p;
    ws->logits_g = p;
    ws->logits_real = p + B;
    ws->logits_fake = p + 2 * B;
    ws->dz = p + 3 * B;
    ws->fm_real = p + 4 * B;
    *out = ws;
    return LIIF_OK;
}

liif_status gan_step_ws_use_cpu(const gan_gen *g, const gan_disc *d, const gan_vgg *v, gan_step_ws *ws, int threads,
                                liif_error *err)
{
    liif_status st = gan_gen_acts_use_cpu(g, ws->gen, threads, err);
    if (!st) st = gan_disc_acts_use_cpu(d, ws->disc, threads, err);
    if (!st && v) st = gan_vgg_acts_use_cpu(v, ws->vgg_fake, threads, err);
    if (!st && v) st = gan_vgg_acts_use_cpu(v, ws->vgg_real, threads, err);
    return st;
}

void gan_step_ws_free(gan_step_ws *ws)
{
    if (!ws) return;
    gan_gen_acts_free(ws->gen);
    gan_disc_acts_free(ws->disc);
    gan_vgg_acts_free(ws->vgg_fake);
    gan_vgg_acts_free(ws->vgg_real);
    free(ws->mem);
    free(ws);
}

void gan_step_generator(gan_gen *g, gan_disc *d, const gan_vgg *v, gan_step_ws *ws, const gan_step_config *cfg,
                        const float *lr, const float *coord, const float *cell, const float *gt_patch, gan_terms c)
{
    int B = ws->B;
    size_t n = (size_t)B * g->cfg.in_ch * ws->P * ws->P;
    gan_gen_forward(g, ws->gen, lr, coord, cell);
    const float *d1 = ws->gen->d1, *d2 = ws->gen->d2;
    for (size_t i = 0; i < n; i++) {
        ws->gt_norm[i] = (gt_patch[i] - 0.5f) / 0.5f;
        ws->ip[i] = d1[i] + d2[i]; /* stopgrad(d1) + d2: d1's gradient below comes from L_D1 only */
        ws->fake01[i] = ws->ip[i] * 0.5f + 0.5f;
    }
    ws->loss_d1 = nn_l1_forward(d1, ws->gt_norm, n);
    /* feature matching's targets: D's stage outputs on the real patch (constants) */
    gan_disc_fm fm = {{NULL}, c.fm * cfg->w_fm};
    if (cfg->w_fm != 0.0f) {
        gan_disc_forward(d, ws->disc, gt_patch);
        gan_disc_fm_keep(d, ws->disc, ws->fm_real, &fm);
    }
    /* adversarial term: D in train mode, its parameters frozen */
    gan_disc_forward(d, ws->disc, ws->fake01);
    memcpy(ws->logits_g, ws->disc->logits, B * sizeof(float));
    /* minimax: log(1 - D(IP)) = -BCE(z, 0) */
    float target = cfg->adv_minimax ? 0.0f : 1.0f, sign = cfg->adv_minimax ? -1.0f : 1.0f;
    ws->loss_adv = sign * nn_bce_logits_forward(ws->logits_g, target, (size_t)B);
    ws->loss_fm = cfg->w_fm != 0.0f ? gan_disc_fm_loss(d, ws->disc, &fm) : 0.0f;
    memset(ws->dfake01, 0, n * sizeof(float));
    int use_fm = fm.scale != 0.0f;
    if (c.adv != 0.0f || use_fm) {
        float *dz = ws->dz;
        memset(dz, 0, B * sizeof(float));
        nn_bce_logits_backward(dz, ws->logits_g, target, (size_t)B, sign * c.adv * cfg->w_adv);
        gan_disc_backward(d, ws->disc, dz, use_fm ? &fm : NULL, ws->dfake01, 0);
    }
    /* perceptual term against the real patch's features (no gradient) */
    ws->loss_per = 0.0f;
    if (v) {
        gan_vgg_forward(v, ws->vgg_real, gt_patch);
        ws->loss_per = gan_vgg_perceptual(v, ws->vgg_fake, ws->fake01, gan_vgg_output(v, ws->vgg_real, NULL),
                                          c.per != 0.0f ? ws->dfake01 : NULL, c.per * cfg->w_per);
    }
    ws->loss_g = ws->loss_d1 + cfg->w_adv * ws->loss_adv + cfg->w_per * ws->loss_per + cfg->w_fm * ws->loss_fm;
    /* d fake01 -> d ip = d d2; d d1 = the L_D1 part alone */
    memset(ws->dd1, 0, n * sizeof(float));
    if (c.d1 != 0.0f) nn_l1_backward(ws->dd1, d1, ws->gt_norm, n, c.d1);
    for (size_t i = 0; i < n; i++) ws->dd2[i] = ws->dfake01[i] * 0.5f;
    if (g->cfg.n_decoders == 1) /* LIIF-GAN-S: IP = d1 (d2 = 0), every term reaches the one decoder */
        for (size_t i = 0; i < n; i++) ws->dd1[i] += ws->dd2[i];
    gan_gen_backward(g, ws->gen, ws->dd1, ws->dd2);
}

void gan_step_discriminator(gan_disc *d, gan_step_ws *ws, const float *gt_patch)
{
    int B = ws->B;
    float *dz = ws->dz;
    gan_disc_forward(d, ws->disc, gt_patch);
    memcpy(ws->logits_real, ws->disc->logits, B * sizeof(float));
    ws->loss_d_real = nn_bce_logits_forward(ws->logits_real, 1.0f, (size_t)B);
    memset(dz, 0, B * sizeof(float));
    nn_bce_logits_backward(dz, ws->logits_real, 1.0f, (size_t)B, 1.0f);
    gan_disc_backward(d, ws->disc, dz, NULL, NULL, 1);
    gan_disc_forward(d, ws->disc, ws->fake01); /* fake01 detached: no gradient to G */
    memcpy(ws->logits_fake, ws->disc->logits, B * sizeof(float));
    ws->loss_d_fake = nn_bce_logits_forward(ws->logits_fake, 0.0f, (size_t)B);
    memset(dz, 0, B * sizeof(float));
    nn_bce_logits_backward(dz, ws->logits_fake, 0.0f, (size_t)B, 1.0f);
    gan_disc_backward(d, ws->disc, dz, NULL, NULL, 1);
    ws->loss_d = ws->loss_d_real + ws->loss_d_fake;
}

void gan_step(gan_gen *g, gan_disc *d, const gan_vgg *v, gan_step_ws *ws, const gan_step_config *cfg,
              const float *lr, const float *coord, const float *cell, const float *gt_patch)
{
    gan_gen_zero_grad(g);
    gan_step_generator(g, d, v, ws, cfg, lr, coord, cell, gt_patch, GAN_TERMS_ALL);
    gan_gen_adam_update(g, &cfg->adam);
    gan_disc_zero_grad(d);
    gan_step_discriminator(d, ws, gt_patch);
    gan_disc_adam_update(d, &cfg->adam);
}
