/* disc.h: the LIIF-GAN discriminator (MODEL.md 2.2): VGG-style conv/BN/LeakyReLU stack, train-mode forward and backward, flat parameter state. */
#ifndef LIIF_DISC_H
#define LIIF_DISC_H

#include <stdint.h>

#include "safetensors.h"
#include "train.h"

/* Letters: B batch, C image channels, P patch side, Wi width of stage i, S side of a stage's
 * output, M hidden width of linear1. Images and maps are NCHW (see nn.h).
 *
 * Stage i (0..7): conv k x k (3x3 stride 1 for even i, 4x4 stride 2 for odd i, padding 1),
 * then BatchNorm (train mode; stages 1..7; stage 0 has a conv bias instead), then
 * LeakyReLU(0.2). Sides P -> P/2 -> P/4 -> P/8 -> P/16. Then flatten (NCHW order),
 * linear1 W7*(P/16)^2 -> M, LeakyReLU, linear2 M -> 1 logit. Keys disc.conv<s>_<j>.*,
 * disc.bn<s>_<j>.* (i = 2s + j), disc.linear1.*, disc.linear2.*. */
enum { GAN_DISC_STAGES = 8 };

/* Named views of one stage inside a flat buffer (NULL where the stage has no such tensor). */
typedef struct {
    int ic, oc, k, stride, side_in, side_out;
    float *w;                         /* (oc,ic,k,k) */
    float *b;                         /* (oc), stage 0 only */
    float *gamma, *beta;              /* (oc), BN affine, stages 1..7 */
    float *rmean, *rvar;              /* (oc), BN running stats (params only; NULL in grads) */
} gan_disc_stage;

typedef struct {
    gan_disc_stage st[GAN_DISC_STAGES];
    float *l1w, *l1b;                 /* (M, W7*(P/16)^2), (M) */
    float *l2w, *l2b;                 /* (1, M), (1) */
} gan_disc_views;

/* The discriminator's parameters with the trainer's flat layout: params, grads, m and v are one
 * allocation each of n_params floats, trainable tensors first ([0, n_trainable)), then the BN
 * running stats (frozen: never touched by Adam, updated by every train-mode forward). */
typedef struct {
    int in_ch, P, hidden, flat;       /* flat = W7 * (P/16)^2 */
    int width[GAN_DISC_STAGES];
    float slope, momentum, eps;       /* 0.2, 0.1, 1e-5 */
    int n_tensors;
    liif_train_tensor *tensors;       /* official key order */
    size_t n_params, n_trainable;
    float *params, *grads, *m, *v;
    gan_disc_views p, g;
    int64_t step;                     /* Adam steps taken */
} gan_disc;

/* A discriminator of the given widths for P x P patches of in_ch channels (P a multiple of 16),
 * zero weights, running mean 0 and running var 1. */
liif_status gan_disc_new(const int width[GAN_DISC_STAGES], int hidden, int P, int in_ch, gan_disc **out,
                         liif_error *err);
/* Read disc.* from an open file: widths, hidden width and P from the tensor shapes; running
 * stats default to 0/1 when absent (num_batches_tracked is ignored). */
liif_status gan_disc_from_file(const liif_st_file *f, gan_disc **out, liif_error *err);
liif_status gan_disc_load(const char *path, gan_disc **out, liif_error *err);
void gan_disc_free(gan_disc *d);

/* The tensor called name (official key) or NULL. */
const liif_train_tensor *gan_disc_find(const gan_disc *d, const char *name);
void gan_disc_zero_grad(gan_disc *d);
/* One Adam step on the trainable tensors (running stats untouched); increments d->step. */
void gan_disc_adam_update(gan_disc *d, const liif_adam_config *o);

/* Forward activations of a batch of B patches, kept for the backward, plus its scratch. */
typedef struct {
    int B;
    float *mem;
    float *inp;                         /* (B,C,P,P) copy of the input */
    float *pre[GAN_DISC_STAGES];        /* (B,Wi,S,S) conv output (BN input) */
    float *act[GAN_DISC_STAGES];        /* (B,Wi,S,S) after BN and LeakyReLU */
    float *mean[GAN_DISC_STAGES], *rstd[GAN_DISC_STAGES]; /* (Wi) BN batch statistics */
    float *h1;                          /* (B,M) linear1 after LeakyReLU */
    float *logits;                      /* (B) */
    float *da, *db;                     /* backward scratch, (B, max Wi*S*S) each */
    struct nn_cpu *cpu;                /* fast convolutions' scratch; NULL: the reference layers run */
} gan_disc_acts;

liif_status gan_disc_acts_new(const gan_disc *d, int B, gan_disc_acts **out, liif_error *err);
void gan_disc_acts_free(gan_disc_acts *a);
/* Run the convolutions with the fast CPU ops (gan_conv2d_*_cpu) on `threads` threads (0 = all
 * cores) from now on. */
liif_status gan_disc_acts_use_cpu(const gan_disc *d, gan_disc_acts *a, int threads, liif_error *err);

/* Train-mode forward of inp (B,C,P,P): batch statistics, running stats updated once;
 * fills a->logits (B). */
void gan_disc_forward(gan_disc *d, gan_disc_acts *a, const float *inp);
/* Feature matching, an option of the generator step (a stand-in for the perceptual term where no VGG19
 * weights exist): the stage outputs (after LeakyReLU) of the last forward, on the fake batch, against
 * those of the real batch, L_fm = (1/8) sum_i mean |act_i(fake) - act_i(real)|, the real ones constant.
 * real[i] points at a copy of stage i's act of the real forward (same batch size and layout). */
typedef struct {
    const float *real[GAN_DISC_STAGES];
    float scale;                        /* the gradient's factor: d(scale * L_fm) */
} gan_disc_fm;

float gan_disc_fm_loss(const gan_disc *d, const gan_disc_acts *a, const gan_disc_fm *fm);
/* Floats in the stage outputs of a batch of B (what a copy of them for gan_disc_fm takes). */
size_t gan_disc_fm_size(const gan_disc *d, int B);
/* Copy the stage outputs of the last forward into buf (gan_disc_fm_size floats) and point fm->real at them. */
void gan_disc_fm_keep(const gan_disc *d, const gan_disc_acts *a, float *buf, gan_disc_fm *fm);

/* Backward of the last forward from dlogits (B) and, when fm is not NULL, the gradient of
 * fm->scale * L_fm: dinp (B,C,P,P) += d/d inp when not NULL; the parameter gradients accumulate into
 * d->grads when param_grads, else they are skipped (a frozen discriminator in the generator step). */
void gan_disc_backward(gan_disc *d, gan_disc_acts *a, const float *dlogits, const gan_disc_fm *fm, float *dinp,
                       int param_grads);

#endif
