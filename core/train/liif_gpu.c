/* liif_gpu.c: plain LIIF training on the GPU: the core's side of the CUDA module's trainer (layouts, calls, errors). */
#include <stdlib.h>
#include <string.h>

#include "cuda_module.h"
#include "train.h"

struct liif_train_gpu {
    const liif_cuda_module *mod;
    liif_cuda_trainer *t;
    int B, Q, C, nf;
};

/* The module's status, with the message prefixed so the user knows it came from the GPU trainer. */
static liif_status gpu_fail(liif_status st, const liif_error *in, liif_error *err)
{
    return liif_error_set(err, st, "GPU training: %s", in->msg);
}

liif_status liif_train_gpu_new(const liif_train_state *s, int B, int h, int w, int Q, int fast_math,
                               liif_train_gpu **out, liif_error *err)
{
    *out = NULL;
    char reason[400] = "";
    const liif_cuda_module *mod = liif_cuda_module_get(reason, sizeof reason);
    if (!mod) return liif_error_set(err, LIIF_ERR_UNSUPPORTED, "GPU training: %s", reason);
    const liif_config *c = &s->cfg;
    if (c->n_decoders != 1)
        return liif_error_set(err, LIIF_ERR_UNSUPPORTED, "GPU training: only plain LIIF (one decoder) runs on the GPU");
    int R = c->n_resblocks, n_convs = 2 * R + 2;
    size_t *cw = malloc((size_t)n_convs * sizeof *cw), *cb = malloc((size_t)n_convs * sizeof *cb);
    liif_train_gpu *g = calloc(1, sizeof *g);
    if (!cw || !cb || !g) {
        free(cw); free(cb); free(g);
        return liif_error_set(err, LIIF_ERR_NOMEM, "GPU training: out of memory");
    }
    /* conv i: head, body 0..2R-1, tail; offsets into the flat buffers */
    for (int i = 0; i < n_convs; i++) {
        const liif_train_layer *L = i == 0 ? &s->p.head : (i == n_convs - 1 ? &s->p.tail : &s->p.body[i - 1]);
        cw[i] = (size_t)(L->w - s->params);
        cb[i] = (size_t)(L->b - s->params);
    }
    liif_cuda_train_shape sh;
    memset(&sh, 0, sizeof sh);
    sh.cfg = *c;
    sh.B = B; sh.h = h; sh.w = w; sh.Q = Q;
    sh.n_params = s->n_params;
    sh.n_trainable = s->n_trainable;
    sh.n_convs = n_convs;
    sh.conv_w = cw;
    sh.conv_b = cb;
    for (int l = 0; l <= c->n_hidden; l++) {
        sh.dec_w[l] = (size_t)(s->p.dec[l].w - s->params);
        sh.dec_b[l] = (size_t)(s->p.dec[l].b - s->params);
    }
    liif_error e;
    liif_status st = mod->train_new(&sh, s->params, s->m, s->v, s->step, fast_math, &g->t, &e);
    free(cw);
    free(cb);
    if (st) {
        free(g);
        return gpu_fail(st, &e, err);
    }
    g->mod = mod;
    g->B = B;
    g->Q = Q;
    g->C = c->out_dim;
    g->nf = c->n_feats;
    *out = g;
    return LIIF_OK;
}

void liif_train_gpu_free(liif_train_gpu *g)
{
    if (!g) return;
    g->mod->train_free(g->t);
    free(g);
}

liif_status liif_train_gpu_step(liif_train_gpu *g, const float *inp, const float *coord, const float *cell,
                                const float *gt, const liif_adam_config *o, liif_error *err)
{
    liif_error e;
    liif_status st = g->mod->train_forward(g->t, inp, coord, cell, gt, &e);
    if (!st) st = g->mod->train_backward(g->t, &e);
    if (!st) st = g->mod->train_adam(g->t, o->lr, o->beta1, o->beta2, o->eps, &e);
    return st ? gpu_fail(st, &e, err) : LIIF_OK;
}

liif_status liif_train_gpu_wait(liif_train_gpu *g, float *loss, liif_error *err)
{
    liif_error e;
    liif_status st = g->mod->train_wait(g->t, loss, NULL, &e);
    return st ? gpu_fail(st, &e, err) : LIIF_OK;
}

liif_status liif_train_gpu_forward(liif_train_gpu *g, const float *inp, const float *coord, const float *cell,
                                   const float *gt, float *pred, float *loss, liif_error *err)
{
    liif_error e;
    float l = 0.0f;
    liif_status st = g->mod->train_forward(g->t, inp, coord, cell, gt, &e);
    if (!st) st = g->mod->train_wait(g->t, &l, pred, &e);
    if (loss) *loss = l;
    return st ? gpu_fail(st, &e, err) : LIIF_OK;
}

liif_status liif_train_gpu_backward(liif_train_gpu *g, liif_train_state *s, float *dfeat, liif_error *err)
{
    liif_error e;
    liif_status st = g->mod->train_backward(g->t, &e);
    if (!st) st = g->mod->train_download(g->t, NULL, s->grads, NULL, NULL, dfeat, NULL, &e);
    return st ? gpu_fail(st, &e, err) : LIIF_OK;
}

liif_status liif_train_gpu_adam(liif_train_gpu *g, const liif_adam_config *o, liif_error *err)
{
    liif_error e;
    liif_status st = g->mod->train_adam(g->t, o->lr, o->beta1, o->beta2, o->eps, &e);
    if (!st) st = g->mod->train_wait(g->t, NULL, NULL, &e);
    return st ? gpu_fail(st, &e, err) : LIIF_OK;
}

liif_status liif_train_gpu_pull(liif_train_gpu *g, liif_train_state *s, liif_error *err)
{
    liif_error e;
    int64_t step = 0;
    liif_status st = g->mod->train_download(g->t, s->params, NULL, s->m, s->v, NULL, &step, &e);
    if (st) return gpu_fail(st, &e, err);
    s->step = step;
    return LIIF_OK;
}

liif_status liif_train_gpu_profile(const liif_train_gpu *g, double ms[LIIF_TRAIN_GPU_PHASES], long *steps)
{
    liif_cuda_train_profile p;
    memset(&p, 0, sizeof p);
    g->mod->train_profile(g->t, &p);
    for (int i = 0; i < LIIF_TRAIN_GPU_PHASES; i++) ms[i] = p.steps ? p.ms[i] / (double)p.steps : 0.0;
    *steps = p.steps;
    return LIIF_OK;
}
