/* disc.c: the LIIF-GAN discriminator: parameter table, weight loading, train-mode forward and backward (reference loops). */
#include "disc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn.h"

/* ------------------------------------------------------------------ parameter table */

/* What a discriminator file may declare: channel widths and the patch side (checked before use). */
enum { DISC_MAX_WIDTH = 1 << 14, DISC_MAX_PATCH = 1024 };

static void add_tensor(gan_disc *d, const char *name, int ndim, const int64_t *shape, int trainable)
{
    liif_train_tensor *t = &d->tensors[d->n_tensors++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->numel = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        t->numel *= (size_t)shape[i];
    }
    t->trainable = trainable;
}

/* Every tensor in the official key order (shapes only). */
static void build_table(gan_disc *d)
{
    char name[64];
    for (int i = 0; i < GAN_DISC_STAGES; i++) {
        int s = i / 2, j = i % 2, k = j ? 4 : 3, ic = i ? d->width[i - 1] : d->in_ch, oc = d->width[i];
        int64_t wshape[4] = {oc, ic, k, k}, vshape[1] = {oc};
        snprintf(name, sizeof name, "disc.conv%d_%d.weight", s, j);
        add_tensor(d, name, 4, wshape, 1);
        if (i == 0) {
            snprintf(name, sizeof name, "disc.conv%d_%d.bias", s, j);
            add_tensor(d, name, 1, vshape, 1);
            continue;
        }
        static const char *bn[4] = {"weight", "bias", "running_mean", "running_var"};
        for (int q = 0; q < 4; q++) {
            snprintf(name, sizeof name, "disc.bn%d_%d.%s", s, j, bn[q]);
            add_tensor(d, name, 1, vshape, q < 2);
        }
    }
    int64_t l1w[2] = {d->hidden, d->flat}, l1b[1] = {d->hidden}, l2w[2] = {1, d->hidden}, l2b[1] = {1};
    add_tensor(d, "disc.linear1.weight", 2, l1w, 1);
    add_tensor(d, "disc.linear1.bias", 1, l1b, 1);
    add_tensor(d, "disc.linear2.weight", 2, l2w, 1);
    add_tensor(d, "disc.linear2.bias", 1, l2b, 1);
    /* trainable tensors first, then the running stats */
    size_t off = 0;
    for (int pass = 1; pass >= 0; pass--)
        for (int i = 0; i < d->n_tensors; i++)
            if (d->tensors[i].trainable == pass) {
                d->tensors[i].offset = off;
                off += d->tensors[i].numel;
            }
    d->n_params = off;
    d->n_trainable = 0;
    for (int i = 0; i < d->n_tensors; i++)
        if (d->tensors[i].trainable) d->n_trainable += d->tensors[i].numel;
}

const liif_train_tensor *gan_disc_find(const gan_disc *d, const char *name)
{
    for (int i = 0; i < d->n_tensors; i++)
        if (!strcmp(d->tensors[i].name, name)) return &d->tensors[i];
    return NULL;
}

static float *view(const gan_disc *d, float *buf, const char *fmt, int s, int j)
{
    char name[64];
    snprintf(name, sizeof name, fmt, s, j);
    const liif_train_tensor *t = gan_disc_find(d, name);
    return t ? buf + t->offset : NULL;
}

static void make_views(const gan_disc *d, float *buf, gan_disc_views *v, int with_stats)
{
    int side = d->P;
    for (int i = 0; i < GAN_DISC_STAGES; i++) {
        gan_disc_stage *st = &v->st[i];
        int s = i / 2, j = i % 2;
        st->ic = i ? d->width[i - 1] : d->in_ch;
        st->oc = d->width[i];
        st->k = j ? 4 : 3;
        st->stride = j ? 2 : 1;
        st->side_in = side;
        st->side_out = side = nn_conv_out(side, st->k, st->stride, 1);
        st->w = view(d, buf, "disc.conv%d_%d.weight", s, j);
        st->b = view(d, buf, "disc.conv%d_%d.bias", s, j);
        st->gamma = view(d, buf, "disc.bn%d_%d.weight", s, j);
        st->beta = view(d, buf, "disc.bn%d_%d.bias", s, j);
        st->rmean = with_stats ? view(d, buf, "disc.bn%d_%d.running_mean", s, j) : NULL;
        st->rvar = with_stats ? view(d, buf, "disc.bn%d_%d.running_var", s, j) : NULL;
    }
    v->l1w = buf + gan_disc_find(d, "disc.linear1.weight")->offset;
    v->l1b = buf + gan_disc_find(d, "disc.linear1.bias")->offset;
    v->l2w = buf + gan_disc_find(d, "disc.linear2.weight")->offset;
    v->l2b = buf + gan_disc_find(d, "disc.linear2.bias")->offset;
}

liif_status gan_disc_new(const int width[GAN_DISC_STAGES], int hidden, int P, int in_ch, gan_disc **out,
                         liif_error *err)
{
    *out = NULL;
    if (P < 16 || P % 16 || hidden < 1 || in_ch < 1)
        return liif_error_set(err, LIIF_ERR_ARG, "discriminator: bad shape (P %d, hidden %d, channels %d)", P, hidden,
                              in_ch);
    for (int i = 0; i < GAN_DISC_STAGES; i++)
        if (width[i] < 1) return liif_error_set(err, LIIF_ERR_ARG, "discriminator: width %d of stage %d", width[i], i);
    gan_disc *d = calloc(1, sizeof *d);
    if (!d) return liif_error_set(err, LIIF_ERR_NOMEM, "discriminator: out of memory");
    d->in_ch = in_ch;
    d->P = P;
    d->hidden = hidden;
    memcpy(d->width, width, sizeof d->width);
    d->flat = width[GAN_DISC_STAGES - 1] * (P / 16) * (P / 16);
    d->slope = 0.2f;
    d->momentum = 0.1f;
    d->eps = 1e-5f;
    d->tensors = calloc(5 * GAN_DISC_STAGES + 4, sizeof *d->tensors);
    if (d->tensors) build_table(d);
    size_t n = d->n_params;
    d->params = calloc(n, sizeof(float));
    d->grads = calloc(n, sizeof(float));
    d->m = calloc(n, sizeof(float));
    d->v = calloc(n, sizeof(float));
    if (!d->tensors || !d->params || !d->grads || !d->m || !d->v) {
        gan_disc_free(d);
        return liif_error_set(err, LIIF_ERR_NOMEM, "discriminator: out of memory for %zu parameters", n);
    }
    make_views(d, d->params, &d->p, 1);
    make_views(d, d->grads, &d->g, 0);
    for (int i = 1; i < GAN_DISC_STAGES; i++)
        for (int c = 0; c < width[i]; c++) d->p.st[i].rvar[c] = 1.0f;
    *out = d;
    return LIIF_OK;
}

liif_status gan_disc_from_file(const liif_st_file *f, gan_disc **out, liif_error *err)
{
    *out = NULL;
    char name[64];
    int width[GAN_DISC_STAGES], in_ch = 0;
    for (int i = 0; i < GAN_DISC_STAGES; i++) { /* sizes checked before anything is divided or allocated */
        snprintf(name, sizeof name, "disc.conv%d_%d.weight", i / 2, i % 2);
        const liif_st_tensor *t = liif_st_find(f, name);
        if (!t || t->ndim != 4)
            return liif_error_set(err, LIIF_ERR_MODEL, "%s: no 4-d tensor %s", liif_st_path(f), name);
        if (t->shape[0] < 1 || t->shape[0] > DISC_MAX_WIDTH || (i == 0 && (t->shape[1] < 1 || t->shape[1] > 4)))
            return liif_error_set(err, LIIF_ERR_MODEL, "%s: %s is [%lld, %lld, ...]: widths 1..%d, 1..4 image channels",
                                  liif_st_path(f), name, (long long)t->shape[0], (long long)t->shape[1],
                                  DISC_MAX_WIDTH);
        width[i] = (int)t->shape[0];
        if (i == 0) in_ch = (int)t->shape[1];
    }
    const liif_st_tensor *l1 = liif_st_find(f, "disc.linear1.weight");
    if (!l1 || l1->ndim != 2)
        return liif_error_set(err, LIIF_ERR_MODEL, "%s: no 2-d tensor disc.linear1.weight", liif_st_path(f));
    int64_t w7 = width[GAN_DISC_STAGES - 1], max_cells = (int64_t)(DISC_MAX_PATCH / 16) * (DISC_MAX_PATCH / 16);
    if (l1->shape[0] < 1 || l1->shape[0] > DISC_MAX_WIDTH || l1->shape[1] < 1 || l1->shape[1] > w7 * max_cells)
        return liif_error_set(err, LIIF_ERR_MODEL,
                              "%s: disc.linear1.weight is [%lld, %lld]: 1..%d outputs, inputs for a patch of at most %d px",
                              liif_st_path(f), (long long)l1->shape[0], (long long)l1->shape[1], DISC_MAX_WIDTH,
                              DISC_MAX_PATCH);
    int hidden = (int)l1->shape[0];
    int64_t cells = l1->shape[1] / w7;
    int side = (int)lround(sqrt((double)cells));
    if (cells * w7 != l1->shape[1] || (int64_t)side * side != cells || side < 1)
        return liif_error_set(err, LIIF_ERR_MODEL,
                              "%s: disc.linear1.weight has %lld inputs, not %d channels times a square map",
                              liif_st_path(f), (long long)l1->shape[1], width[GAN_DISC_STAGES - 1]);
    gan_disc *d;
    liif_status st = gan_disc_new(width, hidden, side * 16, in_ch, &d, err);
    if (st) return st;
    for (int i = 0; !st && i < d->n_tensors; i++) {
        const liif_train_tensor *t = &d->tensors[i];
        if (!t->trainable && !liif_st_find(f, t->name)) continue; /* running stats: keep 0/1 */
        st = liif_st_read_f32(f, t->name, t->ndim, t->shape, d->params + t->offset, err);
    }
    if (st) {
        gan_disc_free(d);
        return st;
    }
    *out = d;
    return LIIF_OK;
}

liif_status gan_disc_load(const char *path, gan_disc **out, liif_error *err)
{
    liif_st_file *f;
    *out = NULL;
    liif_status st = liif_st_open(path, &f, err);
    if (st) return st;
    st = gan_disc_from_file(f, out, err);
    liif_st_close(f);
    return st;
}

void gan_disc_free(gan_disc *d)
{
    if (!d) return;
    free(d->tensors);
    free(d->params);
    free(d->grads);
    free(d->m);
    free(d->v);
    free(d);
}

void gan_disc_zero_grad(gan_disc *d) { memset(d->grads, 0, d->n_params * sizeof(float)); }

void gan_disc_adam_update(gan_disc *d, const liif_adam_config *o)
{
    liif_adam_update_arrays(d->params, d->grads, d->m, d->v, d->n_trainable, &d->step, o->lr, o->beta1, o->beta2, o->eps);
}

/* ------------------------------------------------------------------ activations */

liif_status gan_disc_acts_new(const gan_disc *d, int B, gan_disc_acts **out, liif_error *err)
{
    *out = NULL;
    gan_disc_acts *a = calloc(1, sizeof *a);
    if (!a) return liif_error_set(err, LIIF_ERR_NOMEM, "discriminator activations: out of memory");
    a->B = B;
    size_t in = (size_t)B * d->in_ch * d->P * d->P, total = in, maxmap = in;
    if ((size_t)B * d->hidden > maxmap) maxmap = (size_t)B * d->hidden;
    for (int i = 0; i < GAN_DISC_STAGES; i++) {
        const gan_disc_stage *st = &d->p.st[i];
        size_t n = (size_t)B * st->oc * st->side_out * st->side_out;
        total += 2 * n + 2 * (size_t)st->oc;
        if (n > maxmap) maxmap = n;
    }
    total += (size_t)B * d->hidden + B + 2 * maxmap;
    a->mem = malloc(total * sizeof(float));
    if (!a->mem) {
        free(a);
        return liif_error_set(err, LIIF_ERR_NOMEM, "discriminator activations: out of memory (batch %d)", B);
    }
    float *p = a->mem;
    a->inp = p;
    p += in;
    for (int i = 0; i < GAN_DISC_STAGES; i++) {
        const gan_disc_stage *st = &d->p.st[i];
        size_t n = (size_t)B * st->oc * st->side_out * st->side_out;
        a->pre[i] = p;
        p += n;
        a->act[i] = p;
        p += n;
        a->mean[i] = p;
        p += st->oc;
        a->rstd[i] = p;
        p += st->oc;
    }
    a->h1 = p;
    p += (size_t)B * d->hidden;
    a->logits = p;
    p += B;
    a->da = p;
    p += maxmap;
    a->db = p;
    *out = a;
    return LIIF_OK;
}

liif_status gan_disc_acts_use_cpu(const gan_disc *d, gan_disc_acts *a, int threads, liif_error *err)
{
    size_t max_col = 0, max_w = (size_t)d->hidden;
    for (int i = 0; i < GAN_DISC_STAGES; i++) {
        const gan_disc_stage *st = &d->p.st[i];
        size_t col = nn_conv2d_col_size(st->ic, st->side_in, st->side_in, st->k, st->stride, 1);
        size_t w = (size_t)st->oc * st->ic * st->k * st->k + st->oc;
        max_col = col > max_col ? col : max_col;
        max_w = w > max_w ? w : max_w;
    }
    nn_cpu_free(a->cpu);
    if (!(a->cpu = nn_cpu_new(max_col, max_w, threads)))
        return liif_error_set(err, LIIF_ERR_NOMEM, "discriminator: out of memory for the convolution scratch");
    return LIIF_OK;
}

void gan_disc_acts_free(gan_disc_acts *a)
{
    if (!a) return;
    nn_cpu_free(a->cpu);
    free(a->mem);
    free(a);
}

/* ------------------------------------------------------------------ forward / backward */

void gan_disc_forward(gan_disc *d, gan_disc_acts *a, const float *inp)
{
    int B = a->B;
    memcpy(a->inp, inp, (size_t)B * d->in_ch * d->P * d->P * sizeof(float));
    const float *x = a->inp;
    for (int i = 0; i < GAN_DISC_STAGES; i++) {
        const gan_disc_stage *st = &d->p.st[i];
        int S = st->side_out;
        size_t n = (size_t)B * st->oc * S * S;
        if (a->cpu)
            nn_conv2d_forward_cpu(a->cpu, a->pre[i], x, st->w, st->b, B, st->ic, st->side_in, st->side_in, st->oc,
                                   st->k, st->stride, 1);
        else
            nn_conv2d_forward(a->pre[i], x, st->w, st->b, B, st->ic, st->side_in, st->side_in, st->oc, st->k,
                               st->stride, 1);
        if (st->gamma)
            nn_batchnorm_forward(a->act[i], a->mean[i], a->rstd[i], st->rmean, st->rvar, a->pre[i], st->gamma,
                                  st->beta, B, st->oc, S * S, d->momentum, d->eps);
        else
            memcpy(a->act[i], a->pre[i], n * sizeof(float));
        nn_leakyrelu_forward(a->act[i], a->act[i], n, d->slope);
        x = a->act[i];
    }
    /* act[7] (B,W7,S,S) is already the flattened (B, flat) matrix in NCHW order */
    nn_linear_forward(a->h1, x, d->p.l1w, d->p.l1b, B, d->flat, d->hidden);
    nn_leakyrelu_forward(a->h1, a->h1, (size_t)B * d->hidden, d->slope);
    nn_linear_forward(a->logits, a->h1, d->p.l2w, d->p.l2b, B, d->hidden, 1);
}

static size_t stage_numel(const gan_disc *d, int B, int i)
{
    const gan_disc_stage *st = &d->p.st[i];
    return (size_t)B * st->oc * st->side_out * st->side_out;
}

size_t gan_disc_fm_size(const gan_disc *d, int B)
{
    size_t n = 0;
    for (int i = 0; i < GAN_DISC_STAGES; i++) n += stage_numel(d, B, i);
    return n;
}

void gan_disc_fm_keep(const gan_disc *d, const gan_disc_acts *a, float *buf, gan_disc_fm *fm)
{
    for (int i = 0; i < GAN_DISC_STAGES; i++) {
        size_t n = stage_numel(d, a->B, i);
        memcpy(buf, a->act[i], n * sizeof(float));
        fm->real[i] = buf;
        buf += n;
    }
}

float gan_disc_fm_loss(const gan_disc *d, const gan_disc_acts *a, const gan_disc_fm *fm)
{
    float loss = 0.0f;
    for (int i = 0; i < GAN_DISC_STAGES; i++) loss += nn_l1_forward(a->act[i], fm->real[i], stage_numel(d, a->B, i));
    return loss / GAN_DISC_STAGES;
}

void gan_disc_backward(gan_disc *d, gan_disc_acts *a, const float *dlogits, const gan_disc_fm *fm, float *dinp,
                       int param_grads)
{
    int B = a->B, L = GAN_DISC_STAGES - 1;
    gan_disc_views *g = &d->g;
    /* dh1 and dflat live in the scratch: da holds the gradient of the current stage output */
    float *dh1 = a->db;
    memset(dh1, 0, (size_t)B * d->hidden * sizeof(float));
    nn_linear_backward(dh1, param_grads ? g->l2w : NULL, param_grads ? g->l2b : NULL, dlogits, a->h1, d->p.l2w, B,
                        d->hidden, 1);
    nn_leakyrelu_backward(dh1, dh1, a->h1, (size_t)B * d->hidden, d->slope);
    float *dx = a->da;
    memset(dx, 0, (size_t)B * d->flat * sizeof(float));
    nn_linear_backward(dx, param_grads ? g->l1w : NULL, param_grads ? g->l1b : NULL, dh1, a->act[L], d->p.l1w, B,
                        d->flat, d->hidden);
    float *other = a->db;
    for (int i = L; i >= 0; i--) {
        const gan_disc_stage *st = &d->p.st[i];
        const gan_disc_stage *gs = &g->st[i];
        int S = st->side_out;
        size_t n = (size_t)B * st->oc * S * S;
        if (fm) nn_l1_backward(dx, a->act[i], fm->real[i], n, fm->scale / GAN_DISC_STAGES); /* dx is d act[i] */
        nn_leakyrelu_backward(dx, dx, a->act[i], n, d->slope);
        float *dpre = dx;
        if (st->gamma) { /* BN backward into the other scratch buffer */
            memset(other, 0, n * sizeof(float));
            nn_batchnorm_backward(other, param_grads ? gs->gamma : NULL, param_grads ? gs->beta : NULL, dx,
                                   a->pre[i], a->mean[i], a->rstd[i], st->gamma, B, st->oc, S * S);
            dpre = other;
            other = dx;
        }
        const float *x = i ? a->act[i - 1] : a->inp;
        float *dprev = NULL;
        if (i) {
            dprev = other;
            memset(dprev, 0, (size_t)B * st->ic * st->side_in * st->side_in * sizeof(float));
        } else {
            dprev = dinp;
        }
        if (a->cpu)
            nn_conv2d_backward_cpu(a->cpu, dprev, param_grads ? gs->w : NULL, param_grads ? gs->b : NULL, dpre, x,
                                    st->w, B, st->ic, st->side_in, st->side_in, st->oc, st->k, st->stride, 1);
        else
            nn_conv2d_backward(dprev, param_grads ? gs->w : NULL, param_grads ? gs->b : NULL, dpre, x, st->w, B,
                                st->ic, st->side_in, st->side_in, st->oc, st->k, st->stride, 1);
        if (i) {
            other = dpre;
            dx = dprev;
        }
    }
}
