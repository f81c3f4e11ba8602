/* cuda_module.h: the C interface between the engine (loader.c) and the run-time CUDA module liif-cuda.so. */
#ifndef LIIF_CUDA_MODULE_H
#define LIIF_CUDA_MODULE_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever this struct or the structs it passes (liif_backend, liif_model, liif_decode_job) change.
 * 3: the LIIF-GAN trainer (gan_*) and its test ops; 7: VGG19's perceptual loss in it (vgg, w_per, op_vgg_perceptual);
 * 8: liif_decode_job.unclamped, liif_model.default_detail. */
#define LIIF_CUDA_ABI 9
/* op_conv3x3: take the im2col + cuBLAS path whatever the kind. */
#define LIIF_CUDA_OP_IM2COL 0x100

/* The module's one exported symbol; the loader looks it up with dlsym. */
#define LIIF_CUDA_ENTRY "liif_cuda_module_entry"

/* ---- training (plain LIIF) ----
 * A trainer owns, on the device, a copy of the parameters, their gradients and Adam moments, laid out
 * as liif_train_state's flat buffers (trainable tensors first), and the activations of one batch
 * shape. Calls are queued on the trainer's stream and return at once unless they say they wait. */
typedef struct liif_cuda_trainer liif_cuda_trainer;

/* What a trainer is made for; offsets are in floats into the flat parameter buffer. */
typedef struct {
    liif_config cfg;                 /* plain LIIF: one decoder reading the last-layer features */
    int B, h, w, Q;                  /* batch, LR side lengths, queries per sample */
    size_t n_params, n_trainable;
    int n_convs;                     /* 2 * n_resblocks + 2: head, body 0..2R-1, tail */
    const size_t *conv_w, *conv_b;   /* (n_convs) each conv's weight (OC,IC,3,3) and bias (OC) */
    size_t dec_w[LIIF_MAX_HIDDEN + 1], dec_b[LIIF_MAX_HIDDEN + 1]; /* decoder layer l: (OC,IC), (OC) */
} liif_cuda_train_shape;

/* Milliseconds spent in each phase of a step (CUDA events: microseconds a step), summed over `steps` whole
 * steps that were waited for. */
enum { LIIF_TRAIN_PHASES = 6 };
typedef struct {
    double ms[LIIF_TRAIN_PHASES]; /* upload, encoder forward, decoder forward + L1, decoder backward (to dfeat),
                                   * encoder backward, Adam */
    long steps;
} liif_cuda_train_profile;

/* ---- VGG19 features for the perceptual loss (core/train/vgg.h) ----
 * Modules 0..n_modules-1 of torchvision's vgg19().features: 3x3 convs (padding 1, bias), ReLUs and 2x2 max
 * pools, in its order; frozen weights (only the input's gradient is computed). Offsets in floats into one flat
 * parameter buffer (gan_vgg's params). */
enum { LIIF_CUDA_VGG_MODULES = 37, LIIF_CUDA_VGG_CONV = 0, LIIF_CUDA_VGG_RELU = 1, LIIF_CUDA_VGG_POOL = 2 };
typedef struct {
    int n_modules;                          /* 0: no VGG */
    int kind[LIIF_CUDA_VGG_MODULES];        /* LIIF_CUDA_VGG_* */
    int ic[LIIF_CUDA_VGG_MODULES], oc[LIIF_CUDA_VGG_MODULES];
    size_t w[LIIF_CUDA_VGG_MODULES], b[LIIF_CUDA_VGG_MODULES]; /* convs: (oc, ic, 3, 3), (oc) */
    size_t n_params;
} liif_cuda_vgg_shape;

/* ---- training (LIIF-GAN, MODEL.md 2; the twin of core/train/gan_step.c) ----
 * A GAN trainer owns, on the device, the generator's flat buffers (gan_gen's layout: all trainable)
 * and the discriminator's (gan_disc's layout: trainable tensors first, then the BN running stats),
 * Adam moments of both, and the activations of one batch shape. */
typedef struct liif_cuda_gan_trainer liif_cuda_gan_trainer;

enum { LIIF_CUDA_DISC_STAGES = 8 }; /* GAN_DISC_STAGES of core/train/disc.h */

typedef struct {
    liif_config cfg;                 /* n_decoders 1 (LIIF-GAN-S) or 2; dec_source, mid_block */
    int B, h, w, P;                  /* batch, LR sides, RGS patch side (Q = P*P queries per sample) */
    size_t g_n_params;               /* generator floats, all trainable */
    int n_convs;                     /* 2 * n_resblocks + 2 */
    const size_t *conv_w, *conv_b;   /* (n_convs) as liif_cuda_train_shape */
    size_t dec_w[2][LIIF_MAX_HIDDEN + 1], dec_b[2][LIIF_MAX_HIDDEN + 1]; /* decoder d, layer l */
    /* discriminator: stage i = conv k x k (3 s1 for even i, 4 s2 for odd), padding 1 */
    size_t d_n_params, d_n_trainable;
    int d_width[LIIF_CUDA_DISC_STAGES], d_hidden, d_flat;
    float d_slope, d_momentum, d_eps;
    size_t d_w[LIIF_CUDA_DISC_STAGES];     /* (oc, ic, k, k) */
    size_t d_b0;                           /* stage 0's conv bias (oc) */
    size_t d_gamma[LIIF_CUDA_DISC_STAGES], d_beta[LIIF_CUDA_DISC_STAGES]; /* stages 1..7 */
    size_t d_rmean[LIIF_CUDA_DISC_STAGES], d_rvar[LIIF_CUDA_DISC_STAGES]; /* stages 1..7, frozen part */
    size_t d_l1w, d_l1b, d_l2w, d_l2b;
    liif_cuda_vgg_shape vgg;               /* the perceptual loss's network (n_modules 0: none, w_per must be 0) */
} liif_cuda_gan_shape;

/* Which parts of a step to queue (all four: gan_step of core/train/gan_step.c). */
enum { LIIF_GAN_GEN = 1, LIIF_GAN_GEN_ADAM = 2, LIIF_GAN_DISC = 4, LIIF_GAN_DISC_ADAM = 8, LIIF_GAN_ALL = 15 };

typedef struct {
    float w_adv;                     /* weight of L_adv in loss_g */
    int adv_minimax;                 /* 0: -log D(IP); 1: log(1 - D(IP)) */
    float c_d1, c_adv;               /* multipliers of the L_D1 and L_adv gradients (1 in training) */
    float w_fm, c_fm;                /* feature matching (core/train/disc.h): its weight (0: off) and multiplier */
    float w_per, c_per;              /* perceptual loss: its weight (0: off; needs the shape's vgg) and multiplier */
    double lr, beta1, beta2, eps;    /* Adam, both networks */
    int parts;                       /* LIIF_GAN_* bits */
} liif_cuda_gan_step;

/* Losses of the last step (gan_step_ws's names); loss_per is 0 when w_per is. */
typedef struct {
    float loss_d1, loss_adv, loss_per, loss_fm, loss_g, loss_d_real, loss_d_fake, loss_d;
} liif_cuda_gan_losses;

/* Host arrays a download fills (each may be NULL). */
typedef struct {
    float *g_params, *g_grads, *g_m, *g_v;   /* g_n_params each */
    float *d_params, *d_grads, *d_m, *d_v;   /* d_n_params; d_n_trainable; d_n_trainable; d_n_trainable */
    float *d1, *d2, *fake01;                 /* (B,C,P,P) of the last generator half */
    float *logits;                           /* (3,B): D(fake01) in the generator half, D(real), D(fake01) */
    int64_t g_step, d_step;                  /* always written */
} liif_cuda_gan_state;

enum { LIIF_GAN_PHASES = 7 };
typedef struct {
    double ms[LIIF_GAN_PHASES]; /* upload, generator forward, D on the fake + losses + D backward to the image,
                                 * generator backward, generator Adam, discriminator step, discriminator Adam */
    long steps;
} liif_cuda_gan_profile;

typedef struct {
    int abi;                   /* LIIF_CUDA_ABI of the module */
    size_t sizeof_backend;     /* sizeof(liif_backend), sizeof(liif_model), sizeof(liif_decode_job) */
    size_t sizeof_model;       /*   as the module saw them: a mismatch means a stale module */
    size_t sizeof_job;
    /* A backend on CUDA device 0, or NULL with a one-line reason (no driver, no GPU, cuBLAS failed). */
    liif_backend *(*backend_new)(char *reason, size_t reason_size);
    /* Name and memory of device 0 (for tests and benchmarks); 0 on success. */
    int (*device_info)(char *name, size_t name_size, size_t *free_bytes, size_t *total_bytes);

    /* Single ops for tests, on a backend from backend_new, with host arrays in and out; each runs
     * the kernels the backend runs. fast is the GEMMs' LIIF_MATH_* kind (internal.h): 0 float32, 1 TF32,
     * 2 bf16 operands. They return LIIF_OK or an error. */
    /* out (h, w, cout) = act(conv3x3(in (h, w, cin)) + bias + res), weight [cout, cin, 3, 3];
     * bias and res may be NULL. The backend's path for the kind: the implicit-GEMM kernel for TF32 and bf16 where it
     * applies; fast | LIIF_CUDA_OP_IM2COL forces im2col + cuBLAS. */
    liif_status (*op_conv3x3)(liif_backend *be, const float *in, int h, int w, int cin, const float *weight,
                              const float *bias, const float *res, int relu, int cout, float *out, int fast,
                              liif_error *err);
    /* y (rows, n) = act(x (rows, k) @ weight^T + bias), weight [n, k] (PyTorch Linear). */
    liif_status (*op_linear)(liif_backend *be, const float *x, int rows, int k, const float *weight,
                             const float *bias, int relu, int n, float *y, int fast, liif_error *err);
    /* The (query, shift) geometry of a job, rows in reference order (query-major, shifts
     * (-1,-1), (-1,+1), (+1,-1), (+1,+1)): lat (rows) tile-local latent index, extra (rows, 4)
     * rel_r, rel_c, cell_r, cell_c, weight (rows) blend weight. rows = job->rows * job->cols * ns. */
    liif_status (*op_geometry)(liif_backend *be, const liif_config *c, const liif_decode_job *job, int *lat,
                               float *extra, float *weight, liif_error *err);
    /* Measured cuBLAS GEMM rate in GFLOP/s for an M x N x K product in arithmetic fast (as the ops'; bf16: the
     * GemmEx alone, on bf16 operands) (benchmarks), < 0 on error. */
    double (*sgemm_gflops)(liif_backend *be, int M, int N, int K, int fast, int reps);

    /* A trainer on device 0 with params (n_params), m and v (n_trainable each; NULL: zero) uploaded
     * and the Adam step count `step`; fast = 1 allows TF32 GEMMs. Waits. */
    liif_status (*train_new)(const liif_cuda_train_shape *sh, const float *params, const float *m, const float *v,
                             int64_t step, int fast, liif_cuda_trainer **out, liif_error *err);
    /* Queue the forward of a batch: inp (B,h,w,C) rgb in [0,1], coord and cell (B,Q,2), gt (B,Q,C)
     * in [0,1] or NULL (no loss). With gt, the loss and d loss / d pred are computed too. */
    liif_status (*train_forward)(liif_cuda_trainer *t, const float *inp, const float *coord, const float *cell,
                                 const float *gt, liif_error *err);
    /* Queue zeroing the gradients and the backward of the last forward with gt. */
    liif_status (*train_backward)(liif_cuda_trainer *t, liif_error *err);
    /* Queue one Adam step (PyTorch 1.13's formula; the step count advances first). */
    liif_status (*train_adam)(liif_cuda_trainer *t, double lr, double beta1, double beta2, double eps,
                              liif_error *err);
    /* Wait for everything queued; the last forward's L1 loss into *loss and, if pred is not NULL,
     * its prediction (B,Q,C) in the normalised range. */
    liif_status (*train_wait)(liif_cuda_trainer *t, float *loss, float *pred, liif_error *err);
    /* Wait, then copy out whichever of these is not NULL: params (n_params), grads, m, v
     * (n_trainable each), dfeat (B,h,w,F) the last backward's encoder-output gradient; and the step. */
    liif_status (*train_download)(liif_cuda_trainer *t, float *params, float *grads, float *m, float *v,
                                  float *dfeat, int64_t *step, liif_error *err);
    void (*train_free)(liif_cuda_trainer *t);
    /* The phase times so far. */
    void (*train_profile)(const liif_cuda_trainer *t, liif_cuda_train_profile *out);
    /* Test op: conv 3x3 of the trainer's kernels on host arrays, inp (B,h,w,IC), weight (OC,IC,3,3),
     * bias (OC) or NULL: WRITES out (B,h,w,OC); with dout (B,h,w,OC) also WRITES dinp (or NULL),
     * dweight and dbias (NULL without bias). */
    liif_status (*op_conv3x3_train)(liif_backend *be, const float *inp, int B, int h, int w, int IC, int OC,
                                    const float *weight, const float *bias, const float *dout, float *out,
                                    float *dinp, float *dweight, float *dbias, int fast, liif_error *err);

    /* GAN trainer (ABI 3). gan_new uploads the generator (params, m, v: g_n_params each; m, v may be
     * NULL: zero), the discriminator (d_params: d_n_params; d_m, d_v: d_n_trainable or NULL) with their
     * Adam step counts and, when sh->vgg.n_modules > 0, VGG19's vgg_params (sh->vgg.n_params); fast = 1 allows
     * TF32 GEMMs. Waits. */
    liif_status (*gan_new)(const liif_cuda_gan_shape *sh, const float *g_params, const float *g_m, const float *g_v,
                           int64_t g_step, const float *d_params, const float *d_m, const float *d_v, int64_t d_step,
                           const float *vgg_params, int fast, liif_cuda_gan_trainer **out, liif_error *err);
    /* Queue a step (the parts of cfg): lr (B,C,h,w) NCHW in [0,1], coord and cell (B,Q,2), gt_patch
     * (B,C,P,P) in [0,1]. The uploads are staged before it returns: the caller may refill its arrays. */
    liif_status (*gan_step)(liif_cuda_gan_trainer *t, const float *lr, const float *coord, const float *cell,
                            const float *gt_patch, const liif_cuda_gan_step *cfg, liif_error *err);
    /* Wait for everything queued; the last step's losses (the parts it ran; others read 0). */
    liif_status (*gan_wait)(liif_cuda_gan_trainer *t, liif_cuda_gan_losses *out, liif_error *err);
    /* Wait, then copy out what out asks for. */
    liif_status (*gan_download)(liif_cuda_gan_trainer *t, liif_cuda_gan_state *out, liif_error *err);
    void (*gan_free)(liif_cuda_gan_trainer *t);
    void (*gan_profile)(const liif_cuda_gan_trainer *t, liif_cuda_gan_profile *out);
    /* Test ops on host arrays with the GAN trainer's kernels, NCHW like core/nn/nn.h; each WRITES
     * its outputs (every gradient starts from zero). */
    /* conv k x k, stride, padding: out (B,OC,OH,OW); with dout also dinp (or NULL), dweight, dbias (NULL
     * without bias). */
    liif_status (*op_conv2d_train)(liif_backend *be, const float *inp, int B, int IC, int H, int W, int OC, int k,
                                   int stride, int pad, const float *weight, const float *bias, const float *dout,
                                   float *out, float *dinp, float *dweight, float *dbias, int fast, liif_error *err);
    /* BatchNorm train mode over inp (B,C,HW), then LeakyReLU(slope) when slope > 0 (the D's stage):
     * out, mean and rstd (C), running_mean/var (C) updated in place; with dout (gradient of out) also
     * dinp, dgamma, dbeta. */
    liif_status (*op_batchnorm_train)(liif_backend *be, const float *inp, int B, int C, int HW, const float *gamma,
                                      const float *beta, float *running_mean, float *running_var, float momentum,
                                      float eps, float slope, const float *dout, float *out, float *mean, float *rstd,
                                      float *dinp, float *dgamma, float *dbeta, liif_error *err);
    /* out (N,OC) = lrelu(inp (N,IC) @ weight^T + bias) (slope <= 0: no LeakyReLU); with dout (gradient
     * of out) also dinp, dweight, dbias. */
    liif_status (*op_linear_train)(liif_backend *be, const float *inp, int N, int IC, int OC, const float *weight,
                                   const float *bias, float slope, const float *dout, float *out, float *dinp,
                                   float *dweight, float *dbias, int fast, liif_error *err);
    /* *loss = mean BCE-with-logits of z (n) against target; dz (n) = scale * (sigmoid(z) - target) / n. */
    liif_status (*op_bce_logits)(liif_backend *be, const float *z, int n, float target, float scale, float *loss,
                                 float *dz, liif_error *err);
    /* The perceptual loss of the GAN trainer (ABI 7): VGG (shape vs, weights params) of img and ref (B,3,H,W) in
     * [0,1]; *loss = mean |VGG(img) - VGG(ref)|, feat (B,C_last,H_last,W_last) NCHW = VGG(img) (or NULL) and,
     * when dimg is not NULL, dimg (B,3,H,W) = scale * d loss / d img (VGG(ref) held constant). */
    liif_status (*op_vgg_perceptual)(liif_backend *be, const liif_cuda_vgg_shape *vs, const float *params, int B,
                                     int H, int W, const float *img, const float *ref, float scale, float *loss,
                                     float *feat, float *dimg, int fast, liif_error *err);
} liif_cuda_module;

typedef const liif_cuda_module *(*liif_cuda_entry_fn)(void);

/* loader.c: the module, loaded once per process (NULL with the reason when it cannot be used). */
const liif_cuda_module *liif_cuda_module_get(char *reason, size_t reason_size);
/* A CUDA backend, or NULL with the reason (no module, no driver, no GPU). */
liif_backend *liif_backend_cuda_new(char *reason, size_t reason_size);

#ifdef __cplusplus
}
#endif
#endif
