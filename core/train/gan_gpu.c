/* gan_gpu.c: LIIF-GAN training on the GPU: the core's side of the CUDA module's GAN trainer (layouts, calls, errors). */
#include "gan_gpu.h"

#include <stdlib.h>
#include <string.h>

#include "cuda_module.h"

/* The module's names for the parts must be the ones of gan_gpu.h: the core passes its mask through. */
_Static_assert((int)GAN_GPU_GEN == (int)LIIF_GAN_GEN && (int)GAN_GPU_GEN_ADAM == (int)LIIF_GAN_GEN_ADAM &&
                   (int)GAN_GPU_DISC == (int)LIIF_GAN_DISC && (int)GAN_GPU_DISC_ADAM == (int)LIIF_GAN_DISC_ADAM &&
                   (int)GAN_GPU_ALL == (int)LIIF_GAN_ALL,
               "gan_gpu.h and cuda_module.h disagree on the step parts");
_Static_assert((int)GAN_GPU_PHASES == (int)LIIF_GAN_PHASES && (int)LIIF_CUDA_DISC_STAGES == (int)GAN_DISC_STAGES,
               "gan_gpu.h, disc.h and cuda_module.h disagree");

struct gan_gpu {
    const liif_cuda_module *mod;
    liif_cuda_gan_trainer *t;
    size_t g_n, d_n, d_trainable;
};

static liif_status gpu_fail(liif_status st, const liif_error *in, liif_error *err)
{
    return liif_error_set(err, st, "GPU GAN training: %s", in->msg);
}

static size_t off(const float *p, const float *base) { return (size_t)(p - base); }

void gan_gpu_vgg_shape(const gan_vgg *v, liif_cuda_vgg_shape *out)
{
    _Static_assert((int)GAN_VGG19_MODULES == (int)LIIF_CUDA_VGG_MODULES && (int)GAN_VGG_CONV == LIIF_CUDA_VGG_CONV &&
                       (int)GAN_VGG_RELU == LIIF_CUDA_VGG_RELU && (int)GAN_VGG_POOL == LIIF_CUDA_VGG_POOL,
                   "vgg.h and cuda_module.h disagree");
    memset(out, 0, sizeof *out);
    out->n_modules = v->last + 1;
    out->n_params = v->n_params;
    for (int i = 0; i <= v->last; i++) {
        const gan_vgg_module *m = &v->mod[i];
        out->kind[i] = (int)m->kind;
        out->ic[i] = m->ic;
        out->oc[i] = m->oc;
        if (m->kind == GAN_VGG_CONV) {
            out->w[i] = off(m->w, v->params);
            out->b[i] = off(m->b, v->params);
        }
    }
}

liif_status gan_gpu_new(const gan_gen *g, const gan_disc *d, const gan_vgg *v, int B, int h, int w, int P,
                        int fast_math, gan_gpu **out, liif_error *err)
{
    *out = NULL;
    char reason[400] = "";
    const liif_cuda_module *mod = liif_cuda_module_get(reason, sizeof reason);
    if (!mod) return liif_error_set(err, LIIF_ERR_UNSUPPORTED, "GPU GAN training: %s", reason);
    const liif_config *c = &g->cfg;
    if (d->P != P || d->in_ch != c->in_ch)
        return liif_error_set(err, LIIF_ERR_ARG, "GPU GAN training: the discriminator takes %dx%d patches, not %dx%d",
                              d->P, d->P, P, P);
    for (int l = 0; c->n_decoders == 2 && l <= c->n_hidden; l++)
        if (g->p_dec[0][l].ic != g->p_dec[1][l].ic || g->p_dec[0][l].oc != g->p_dec[1][l].oc)
            return liif_error_set(err, LIIF_ERR_UNSUPPORTED, "GPU GAN training: the two decoders differ in shape");
    int R = c->n_resblocks, n_convs = 2 * R + 2;
    size_t *cw = malloc((size_t)n_convs * sizeof *cw), *cb = malloc((size_t)n_convs * sizeof *cb);
    gan_gpu *t = calloc(1, sizeof *t);
    if (!cw || !cb || !t) {
        free(cw); free(cb); free(t);
        return liif_error_set(err, LIIF_ERR_NOMEM, "GPU GAN training: out of memory");
    }
    liif_cuda_gan_shape sh;
    memset(&sh, 0, sizeof sh);
    sh.cfg = *c;
    sh.B = B; sh.h = h; sh.w = w; sh.P = P;
    sh.g_n_params = g->n_params;
    sh.n_convs = n_convs;
    for (int i = 0; i < n_convs; i++) {
        cw[i] = off(g->p_conv[i].w, g->params);
        cb[i] = off(g->p_conv[i].b, g->params);
    }
    sh.conv_w = cw;
    sh.conv_b = cb;
    for (int k = 0; k < c->n_decoders; k++)
        for (int l = 0; l <= c->n_hidden; l++) {
            sh.dec_w[k][l] = off(g->p_dec[k][l].w, g->params);
            sh.dec_b[k][l] = off(g->p_dec[k][l].b, g->params);
        }
    sh.d_n_params = d->n_params;
    sh.d_n_trainable = d->n_trainable;
    sh.d_hidden = d->hidden;
    sh.d_flat = d->flat;
    sh.d_slope = d->slope;
    sh.d_momentum = d->momentum;
    sh.d_eps = d->eps;
    for (int i = 0; i < GAN_DISC_STAGES; i++) {
        const gan_disc_stage *s = &d->p.st[i];
        sh.d_width[i] = d->width[i];
        sh.d_w[i] = off(s->w, d->params);
        if (i == 0) {
            sh.d_b0 = off(s->b, d->params);
            continue;
        }
        sh.d_gamma[i] = off(s->gamma, d->params);
        sh.d_beta[i] = off(s->beta, d->params);
        sh.d_rmean[i] = off(s->rmean, d->params);
        sh.d_rvar[i] = off(s->rvar, d->params);
    }
    sh.d_l1w = off(d->p.l1w, d->params);
    sh.d_l1b = off(d->p.l1b, d->params);
    sh.d_l2w = off(d->p.l2w, d->params);
    sh.d_l2b = off(d->p.l2b, d->params);
    if (v) gan_gpu_vgg_shape(v, &sh.vgg);
    liif_error e;
    liif_status st = mod->gan_new(&sh, g->params, g->m, g->v, g->step, d->params, d->m, d->v, d->step,
                                  v ? v->params : NULL, fast_math, &t->t, &e);
    free(cw);
    free(cb);
    if (st) {
        free(t);
        return gpu_fail(st, &e, err);
    }
    t->mod = mod;
    t->g_n = g->n_params;
    t->d_n = d->n_params;
    t->d_trainable = d->n_trainable;
    *out = t;
    return LIIF_OK;
}

void gan_gpu_free(gan_gpu *t)
{
    if (!t) return;
    t->mod->gan_free(t->t);
    free(t);
}

liif_status gan_gpu_step_parts(gan_gpu *t, const gan_step_config *cfg, const float *lr, const float *coord,
                               const float *cell, const float *gt_patch, int parts, gan_terms c, liif_error *err)
{
    liif_cuda_gan_step s = {cfg->w_adv, cfg->adv_minimax, c.d1, c.adv, cfg->w_fm, c.fm, cfg->w_per, c.per,
                            cfg->adam.lr, cfg->adam.beta1, cfg->adam.beta2, cfg->adam.eps, parts};
    liif_error e;
    liif_status st = t->mod->gan_step(t->t, lr, coord, cell, gt_patch, &s, &e);
    return st ? gpu_fail(st, &e, err) : LIIF_OK;
}

liif_status gan_gpu_step(gan_gpu *t, const gan_step_config *cfg, const float *lr, const float *coord,
                         const float *cell, const float *gt_patch, liif_error *err)
{
    return gan_gpu_step_parts(t, cfg, lr, coord, cell, gt_patch, GAN_GPU_ALL, GAN_TERMS_ALL, err);
}

liif_status gan_gpu_wait(gan_gpu *t, gan_gpu_losses *out, liif_error *err)
{
    liif_cuda_gan_losses l;
    liif_error e;
    liif_status st = t->mod->gan_wait(t->t, &l, &e);
    if (st) return gpu_fail(st, &e, err);
    if (out) {
        out->loss_d1 = l.loss_d1;
        out->loss_adv = l.loss_adv;
        out->loss_per = l.loss_per;
        out->loss_fm = l.loss_fm;
        out->loss_g = l.loss_g;
        out->loss_d_real = l.loss_d_real;
        out->loss_d_fake = l.loss_d_fake;
        out->loss_d = l.loss_d;
    }
    return LIIF_OK;
}

liif_status gan_gpu_pull(gan_gpu *t, gan_gen *g, gan_disc *d, int grads, liif_error *err)
{
    if (g->n_params != t->g_n || d->n_params != t->d_n || d->n_trainable != t->d_trainable)
        return liif_error_set(err, LIIF_ERR_ARG, "GPU GAN training: pulling into models of another shape");
    liif_cuda_gan_state s;
    memset(&s, 0, sizeof s);
    s.g_params = g->params;
    s.g_m = g->m;
    s.g_v = g->v;
    s.d_params = d->params;
    s.d_m = d->m;
    s.d_v = d->v;
    if (grads) {
        s.g_grads = g->grads;
        s.d_grads = d->grads;
    }
    liif_error e;
    liif_status st = t->mod->gan_download(t->t, &s, &e);
    if (st) return gpu_fail(st, &e, err);
    g->step = s.g_step;
    d->step = s.d_step;
    return LIIF_OK;
}

liif_status gan_gpu_images(gan_gpu *t, float *d1, float *d2, float *fake01, float *logits, liif_error *err)
{
    liif_cuda_gan_state s;
    memset(&s, 0, sizeof s);
    s.d1 = d1;
    s.d2 = d2;
    s.fake01 = fake01;
    s.logits = logits;
    liif_error e;
    liif_status st = t->mod->gan_download(t->t, &s, &e);
    return st ? gpu_fail(st, &e, err) : LIIF_OK;
}

liif_status gan_gpu_profile(const gan_gpu *t, double ms[GAN_GPU_PHASES], long *steps)
{
    liif_cuda_gan_profile p;
    memset(&p, 0, sizeof p);
    t->mod->gan_profile(t->t, &p);
    for (int i = 0; i < GAN_GPU_PHASES; i++) ms[i] = p.steps ? p.ms[i] / (double)p.steps : 0.0;
    *steps = p.steps;
    return LIIF_OK;
}
