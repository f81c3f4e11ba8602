/* gan_step.h: one LIIF-GAN training step (MODEL.md 2): two-decoder generator on RGS patches, gradient blocking, D/VGG losses, Adam on G and D. */
#ifndef LIIF_GAN_STEP_H
#define LIIF_GAN_STEP_H

#include <stdint.h>

#include "disc.h"
#include "train.h"
#include "vgg.h"

/* Letters as train.h: B batch, h w LR sides, C channels (3), F encoder features, Q queries per
 * sample (= P*P, the RGS patch pixels in row-major order), K ensemble shifts, D MLP input width.
 * The generator's maps are channels-last (B,h,w,F) like the LIIF trainer's; the images it hands
 * to the discriminator and VGG are NCHW (B,C,P,P) (see nn.h). */

/* The generator's parameters with the trainer's flat layout (trainable tensors in state_dict
 * order: encoder.*, imnet.*, imnet2.*). Decoder 0 (imnet) reads cfg.dec_source[0] (the mid-layer
 * features: output of encoder.body.<cfg.mid_block>, before the global skip, for LIIF-GAN),
 * decoder 1 (imnet2) cfg.dec_source[1] (the last-layer features). */
typedef struct {
    liif_config cfg;
    int n_tensors;
    liif_train_tensor *tensors;
    size_t n_params, n_trainable;
    float *params, *grads, *m, *v;
    liif_train_layer *p_conv, *g_conv;  /* head, body 0..2R-1, tail: 2R+2 convs */
    liif_train_layer p_dec[2][LIIF_MAX_HIDDEN + 1], g_dec[2][LIIF_MAX_HIDDEN + 1];
    int64_t step;
} gan_gen;

/* The generator of a model file (liif_model_load's rules): two decoders (LIIF-GAN / -SF) or one
 * (LIIF-GAN-S: IP = d1, d2 stays 0, and the step sends every loss term into decoder 1). */
liif_status gan_gen_load(const char *path, gan_gen **out, liif_error *err);
void gan_gen_free(gan_gen *g);
const liif_train_tensor *gan_gen_find(const gan_gen *g, const char *name);
void gan_gen_zero_grad(gan_gen *g);
void gan_gen_adam_update(gan_gen *g, const liif_adam_config *o);

/* Generator activations of a batch of B LR images of h x w with P x P patch queries each. */
typedef struct {
    int B, h, w, P, Q, K, D, maxw;
    float *mem;
    int *lat[2];                      /* (B,Q,K) per decoder */
    float *x;                         /* (B,h,w,C) normalised input */
    float *t;                         /* (R+1,B,h,w,F) residual stream, t[r+1] = block r's output */
    float *r;                         /* (R,B,h,w,F) */
    float *feat;                      /* (B,h,w,F) */
    float *wt[2];                     /* (B,Q,K) */
    float *mlp_in[2];                 /* (B,Q,K,D) */
    float *mlp_h[2][LIIF_MAX_HIDDEN + 1]; /* (B,Q,K,dims[l+1]) */
    float *pred[2];                   /* (B,Q,C) */
    float *d1, *d2;                   /* (B,C,P,P) decoder outputs, normalised range */
    /* backward scratch */
    float *dpred;                     /* (B,Q,C) */
    float *dmlp_a, *dmlp_b;           /* (B,Q,K,maxw) */
    float *dsrc[2];                   /* (B,h,w,F) gradient of each feature source */
    float *dt, *dr;                   /* (B,h,w,F) */
    liif_train_cpu *cpu;              /* fast CPU ops' scratch; NULL: the reference layers run */
    liif_train_dec_cpu *dec[2];       /* the fast decoders' scratch (layer-1 precompute kept for the backward) */
    const float *coord, *cell;        /* the last forward's queries (the fast backward recomputes the decoders) */
    float *rowmem;                    /* the (B,Q,K,*) buffers: the reference layers only */
} gan_gen_acts;

liif_status gan_gen_acts_new(const gan_gen *g, int B, int h, int w, int P, gan_gen_acts **out, liif_error *err);
void gan_gen_acts_free(gan_gen_acts *a);
/* Run the generator with the fast CPU ops (liif_conv3x3_*_cpu for the encoder, liif_decoder_cpu
 * for the decoders: layer-1 precompute, chunked MLP, the backward recomputing the forward) on
 * `threads` threads (0 = all cores) from now on; the (B,Q,K,*) buffers (mlp_in, mlp_h, dmlp_*) are
 * freed and become NULL. The coord and cell of a forward must stay valid until its backward. */
liif_status gan_gen_acts_use_cpu(const gan_gen *g, gan_gen_acts *a, int threads, liif_error *err);

/* lr (B,C,h,w) NCHW in [0,1]; coord, cell (B,Q,2). Fills a->d1, a->d2 (B,C,P,P). */
void gan_gen_forward(const gan_gen *g, gan_gen_acts *a, const float *lr, const float *coord, const float *cell);
/* g->grads += from dd1, dd2 (B,C,P,P): the gradients of the loss w.r.t. the two decoder outputs.
 * Decoder k's parameters see only ddk: the gradient blocking of MODEL.md 2.2 is the caller's
 * choice of what goes into dd1 (L_D1 alone). Either may be NULL (zero). */
void gan_gen_backward(gan_gen *g, gan_gen_acts *a, const float *dd1, const float *dd2);

/* ------------------------------------------------------------------ the step */

typedef struct {
    float w_adv, w_per;               /* 5e-3, 1.0 */
    float w_fm;                       /* 0: off; else the weight of the discriminator feature matching
                                       * term L_fm (disc.h), an option beside or instead of w_per */
    liif_adam_config adam;            /* lr 1e-4, betas (0.9, 0.999), eps 1e-8 */
    int adv_minimax;                  /* 0: non-saturating -log D(IP); 1: the paper's log(1 - D(IP)) */
} gan_step_config;

gan_step_config gan_step_defaults(void);

/* Everything one step needs besides the models: the activations and the step's images. */
typedef struct {
    int B, P;
    gan_gen_acts *gen;
    gan_disc_acts *disc;
    gan_vgg_acts *vgg_fake, *vgg_real;
    float *mem;
    float *gt_norm, *ip, *fake01;     /* (B,C,P,P) */
    float *dd1, *dd2, *dfake01;       /* (B,C,P,P) */
    float *logits_g, *logits_real, *logits_fake; /* (B) */
    float *dz;                        /* (B) scratch: d loss / d logits */
    float *fm_real;                   /* D's stage outputs on the real batch (gan_disc_fm_size) */
    float loss_d1, loss_adv, loss_per, loss_fm, loss_g, loss_d_real, loss_d_fake, loss_d;
} gan_step_ws;

/* v may be NULL: no perceptual term (its weight must then be 0; loss_per reads 0). */
liif_status gan_step_ws_new(const gan_gen *g, const gan_disc *d, const gan_vgg *v, int B, int h, int w, int P,
                            gan_step_ws **out, liif_error *err);
void gan_step_ws_free(gan_step_ws *ws);
/* The generator, the discriminator and VGG19 of this workspace use the fast CPU ops from now on. */
liif_status gan_step_ws_use_cpu(const gan_gen *g, const gan_disc *d, const gan_vgg *v, gan_step_ws *ws, int threads,
                                liif_error *err);

/* Multipliers of the generator half's loss terms: all 1 for the real step; 0/1 picks single terms for checks. */
typedef struct {
    float d1, adv, per, fm;
} gan_terms;

#define GAN_TERMS_ALL ((gan_terms){1.0f, 1.0f, 1.0f, 1.0f})

/* Generator half (steps 1-5 of the golden README, no Adam): forward of G, D (train mode,
 * parameters frozen, running stats updated) and VGG on fake01 = ip*0.5 + 0.5 with
 * ip = stopgrad(d1) + d2, losses, and g->grads += the gradient of
 * c.d1 * L_D1 + c.adv * w_adv * L_adv + c.per * w_per * L_per + c.fm * w_fm * L_fm.
 * With w_fm != 0, D first runs on the real patch (train mode: its running stats update once more)
 * and its stage outputs are kept as L_fm's targets. lr (B,C,h,w); coord, cell (B,Q,2);
 * gt_patch (B,C,P,P). */
void gan_step_generator(gan_gen *g, gan_disc *d, const gan_vgg *v, gan_step_ws *ws, const gan_step_config *cfg,
                        const float *lr, const float *coord, const float *cell, const float *gt_patch, gan_terms c);
/* Discriminator half (step 6, no Adam): D(gt_patch) then D(fake01 of the last generator half),
 * two train-mode forwards, real first; d->grads += the gradient of
 * mean BCE(real, 1) + mean BCE(fake, 0). */
void gan_step_discriminator(gan_disc *d, gan_step_ws *ws, const float *gt_patch);

/* One full step: zero grads, generator half, Adam on G, discriminator half, Adam on D. */
void gan_step(gan_gen *g, gan_disc *d, const gan_vgg *v, gan_step_ws *ws, const gan_step_config *cfg,
              const float *lr, const float *coord, const float *cell, const float *gt_patch);

#endif
