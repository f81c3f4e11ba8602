/* train.h: training of the LIIF generator: parameter/gradient/Adam state and checkpoints, reference layer pairs and step, fast CPU ops, the GPU trainer. */
#ifndef LIIF_TRAIN_H
#define LIIF_TRAIN_H

#include <stdint.h>

#include "internal.h"

/* Dimension letters, the same everywhere in the training code:
 *   B batch, h w LR (latent) rows and cols, C image channels (3), F encoder features (64),
 *   Q queries per sample, K ensemble shifts per query (4, or 1 without the local ensemble),
 *   D MLP input width (in_dim), N rows of a matrix (N = B*Q*K for the MLP), IC/OC in/out width.
 * Images and feature maps are channels-last, (B,h,w,F), like the engine's HWC tiles.
 * Conv weights are PyTorch's OIHW (OC,IC,3,3), Linear weights PyTorch's (OC,IC).
 * Gradients are named d<x> and ACCUMULATE (+=) into their buffers, as in llm.c, unless a
 * function says it writes. */

/* ------------------------------------------------------------------ parameters */

/* One named tensor of the state: its official key, shape and place in the flat buffers. */
typedef struct {
    char name[64];
    int ndim;
    int64_t shape[4];
    size_t offset;   /* in floats, into params / grads / m / v */
    size_t numel;
    int trainable;   /* 0 for encoder.sub_mean.* / encoder.add_mean.* (kept, never updated) */
} liif_train_tensor;

/* A conv or Linear layer's weight and bias inside one flat buffer. */
typedef struct {
    int ic, oc;
    float *w;   /* conv (oc,ic,3,3), Linear (oc,ic) */
    float *b;   /* (oc) */
} liif_train_layer;

/* Named views of a flat buffer, in the official state_dict order. */
typedef struct {
    liif_train_layer head;                          /* encoder.head.0: C -> F */
    liif_train_layer *body;                         /* 2*n_resblocks: encoder.body.i.body.{0,2} */
    liif_train_layer tail;                          /* encoder.body.<n_resblocks>: F -> F */
    liif_train_layer dec[LIIF_MAX_HIDDEN + 1];      /* imnet.layers.{0,2,4,...} */
} liif_train_views;

/* Everything that changes during training. params, grads, m and v are one allocation each of
 * n_params floats, laid out alike: trainable tensors first ([0, n_trainable)), then the frozen
 * ones, so zeroing, Adam and checkpoints are each one loop. */
typedef struct {
    liif_config cfg;
    int n_tensors;
    liif_train_tensor *tensors;
    size_t n_params, n_trainable;
    float *params, *grads, *m, *v;
    liif_train_views p, g;      /* views into params and grads */
    int64_t step;               /* Adam steps taken so far */
} liif_train_state;

/* A training state holding a copy of a model's parameters (plain LIIF: one decoder), zero
 * gradients and moments, step 0. The model lacks sub_mean/add_mean, so the state has none. */
liif_status liif_train_state_from_model(const liif_model *m, liif_train_state **out, liif_error *err);

/* Load parameters from a safetensors file with the official keys (encoder.sub_mean.* and
 * encoder.add_mean.* are kept as frozen tensors when present, never required). When the file
 * holds Adam moments ("adam.m.<key>", "adam.v.<key>") and the metadata "adam.step", they are
 * loaded too (a checkpoint), else moments start at zero and step at 0. */
liif_status liif_train_state_load(const char *path, liif_train_state **out, liif_error *err);

/* Write the parameters (official keys, loadable by liif_model_load) and, when with_adam, the
 * moments and step, atomically. */
liif_status liif_train_state_save(const liif_train_state *s, const char *path, int with_adam, liif_error *err);

/* Same, with the parameters as float16 when fp16 (never the moments), and n_extra more metadata
 * key/value pairs (meta_extra[2i] = key, [2i+1] = value) after liif.variant and adam.step. */
liif_status liif_train_state_save_ex(const liif_train_state *s, const char *path, int with_adam, int fp16,
                                     const char *const *meta_extra, int n_extra, liif_error *err);

void liif_train_state_free(liif_train_state *s);

/* The state's tensor called name, or NULL. */
const liif_train_tensor *liif_train_state_find(const liif_train_state *s, const char *name);

void liif_train_zero_grad(liif_train_state *s);

/* PyTorch 1.13 Adam (single-tensor path), no weight decay, no amsgrad. */
typedef struct {
    double lr, beta1, beta2, eps;
} liif_adam_config;

/* lr 1e-4, betas (0.9, 0.999), eps 1e-8 (LIIF's config). */
liif_adam_config liif_adam_defaults(void);

/* One Adam step on every trainable parameter from s->grads; increments s->step first. */
void liif_adam_update(liif_train_state *s, const liif_adam_config *o);
/* One PyTorch 1.13 Adam step (see liif_adam_update) on n flat trainable values; increments *step first.
 * lr, beta1, beta2, eps as liif_adam_config. */
void liif_adam_update_arrays(float *params, const float *grads, float *m, float *v, size_t n, int64_t *step, double lr,
                             double beta1, double beta2, double eps);

/* ------------------------------------------------------------------ activations */

/* Forward activations kept for the backward pass, plus the backward's scratch: one float
 * allocation (mem) and one int allocation (lat), with pointers into them. */
typedef struct {
    int B, h, w, Q, K, D, maxw;
    float *mem;
    int *lat;            /* (B,Q,K) latent index i*w + j of each ensemble shift */
    float *x;            /* (B,h,w,C) normalised input (rgb - 0.5) / 0.5 */
    float *t;            /* (R+1,B,h,w,F) residual stream: t[0] head output, t[r+1] block r output */
    float *r;            /* (R,B,h,w,F) relu(conv1(t[r])) inside block r */
    float *feat;         /* (B,h,w,F) encoder output: tail(t[R]) + t[0] */
    float *wt;           /* (B,Q,K) blend weight of each shift: area of the opposite rectangle / total */
    float *mlp_in;       /* (B,Q,K,D) MLP input rows */
    float *mlp_h[LIIF_MAX_HIDDEN + 1]; /* (B,Q,K,dims[l+1]) layer outputs, after ReLU for hidden layers */
    float *pred;         /* (B,Q,C) model output, normalised range */
    float *gt;           /* (B,Q,C) normalised target (gt - 0.5) / 0.5 */
    float loss;          /* L1, mean over B*Q*C */
    /* backward scratch */
    float *dpred;        /* (B,Q,C) */
    float *dmlp_a, *dmlp_b; /* (B,Q,K,maxw) gradients flowing down the MLP */
    float *dfeat, *dt, *dr; /* (B,h,w,F) */
    struct liif_train_cpu *cpu; /* scratch of the fast CPU ops; NULL: the reference ops run */
} liif_train_acts;

/* Activations for batches of B images of h x w LR pixels with Q queries each. */
liif_status liif_train_acts_new(const liif_config *c, int B, int h, int w, int Q, liif_train_acts **out,
                                liif_error *err);
void liif_train_acts_free(liif_train_acts *a);

/* Run the model with the fast CPU ops (im2col + oneDNN sgemm, OpenMP, the chunked decoder of
 * liif_train_decoder_cpu) on `threads` threads (0 = all cores, never above OMP_THREAD_LIMIT) from
 * now on. The (B,Q,K,*) decoder buffers (mlp_in, mlp_h, dmlp_*) are freed and become NULL; the
 * forward with gt already computes the decoder's gradients, which the backward then adds. */
liif_status liif_train_acts_use_cpu(liif_train_acts *a, const liif_config *c, int threads, liif_error *err);

/* ------------------------------------------------------------------ one step */

/* Forward and L1 loss, as train_liif.py: inp (B,h,w,C) rgb in [0,1]; coord (B,Q,2) query
 * centres (row, col) in [-1,1]; cell (B,Q,2) cell sizes (row, col); gt (B,Q,C) rgb in [0,1],
 * or NULL to skip the loss. Fills a->pred and a->loss. */
liif_status liif_train_forward(const liif_train_state *s, liif_train_acts *a, const float *inp, const float *coord,
                               const float *cell, const float *gt, liif_error *err);

/* d loss / d params of the last forward (with gt), accumulated into s->grads. */
void liif_train_backward(liif_train_state *s, liif_train_acts *a);

/* ------------------------------------------------------------------ reference layers
 * Plain loops, the oracle for the fast paths. */

/* out (B,h,w,OC) = conv3x3(inp (B,h,w,IC)) with weight (OC,IC,3,3), bias (OC), zero padding 1. */
void liif_conv3x3_forward(float *out, const float *inp, const float *weight, const float *bias, int B, int h, int w,
                          int IC, int OC);
/* dinp (B,h,w,IC) (may be NULL), dweight (OC,IC,3,3), dbias (OC) += from dout (B,h,w,OC). */
void liif_conv3x3_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                           const float *weight, int B, int h, int w, int IC, int OC);

/* out (n) = max(inp, 0); out may alias inp. */
void liif_relu_forward(float *out, const float *inp, size_t n);
/* WRITES dinp (n) = dout where out > 0, else 0; dinp may alias dout. out is the forward's output. */
void liif_relu_backward(float *dinp, const float *dout, const float *out, size_t n);

/* out (N,OC) = inp (N,IC) @ weight (OC,IC)^T + bias (OC). */
void liif_linear_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int IC, int OC);
/* dinp (N,IC) (may be NULL), dweight (OC,IC), dbias (OC) += from dout (N,OC). */
void liif_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                          const float *weight, int N, int IC, int OC);

/* The LIIF query (MODEL.md 1.4): for every query and ensemble shift k, the nearest latent lat
 * (B,Q,K), the MLP input row mlp_in (B,Q,K,D) = [unfolded feat (F*9 or F), rel coord (2),
 * rel cell (2, if cell_decode)] and the blend weight wt (B,Q,K). feat (B,h,w,F), coord and
 * cell (B,Q,2). Coordinates carry no gradient. */
void liif_query_forward(float *mlp_in, int *lat, float *wt, const float *feat, const float *coord, const float *cell,
                        const liif_config *c, int B, int h, int w, int Q);
/* dfeat (B,h,w,F) += the adjoint of the gather and unfold (scatter-add of the feature part of
 * dmlp_in (B,Q,K,D) into the 3x3 neighbourhood of each selected latent). */
void liif_query_backward(float *dfeat, const float *dmlp_in, const int *lat, const liif_config *c, int B, int h,
                         int w, int Q);

/* pred (B,Q,OC) = sum_k mlp_out (B,Q,K,OC) * wt (B,Q,K). */
void liif_blend_forward(float *pred, const float *mlp_out, const float *wt, int B, int Q, int K, int OC);
/* dmlp_out (B,Q,K,OC) += dpred (B,Q,OC) * wt (B,Q,K). */
void liif_blend_backward(float *dmlp_out, const float *dpred, const float *wt, int B, int Q, int K, int OC);

/* Mean |pred - gt| over n values. */
float liif_l1_forward(const float *pred, const float *gt, size_t n);
/* WRITES dpred (n) = sign(pred - gt) / n, sign(0) = 0. */
void liif_l1_backward(float *dpred, const float *pred, const float *gt, size_t n);

/* ------------------------------------------------------------------ fast CPU layers
 * Same contracts as the reference layers above; the convolutions need scratch for their shapes
 * (liif_train_cpu_new). Results differ from the reference by float summation order only, and
 * are deterministic for a given thread count. */

typedef struct liif_train_cpu liif_train_cpu;

/* Scratch for convolutions of at most max_ic inputs and max_oc outputs on `threads` threads. */
liif_train_cpu *liif_train_cpu_new(int max_ic, int max_oc, int threads);
void liif_train_cpu_free(liif_train_cpu *cpu);

void liif_conv3x3_forward_cpu(liif_train_cpu *cpu, float *out, const float *inp, const float *weight,
                              const float *bias, int B, int h, int w, int IC, int OC);
void liif_conv3x3_backward_cpu(liif_train_cpu *cpu, float *dinp, float *dweight, float *dbias, const float *dout,
                               const float *inp, const float *weight, int B, int h, int w, int IC, int OC);
void liif_linear_forward_cpu(float *out, const float *inp, const float *weight, const float *bias, int N, int IC,
                             int OC);
void liif_linear_backward_cpu(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                              const float *weight, int N, int IC, int OC);

/* The fast decoder (MODEL.md 1.5's layer-1 precompute; the MLP forward and backward on chunks of
 * queries, one per thread at a time): from a->feat, coord and cell (B,Q,2), fills a->pred and,
 * with with_grad (a->gt normalised), a->loss, WRITES a->dfeat and keeps the decoder's parameter
 * gradients until liif_train_decoder_grads_cpu adds them to s->grads. Memory is O(B*h*w), not
 * O(B*Q*K*D): the (B,Q,K,*) row buffers of the reference are never made. */
liif_status liif_train_decoder_cpu(liif_train_cpu *cpu, const liif_train_state *s, liif_train_acts *a,
                                   const float *coord, const float *cell, int with_grad, liif_error *err);
/* s->grads += the decoder gradients of the last liif_train_decoder_cpu with with_grad. */
void liif_train_decoder_grads_cpu(const liif_train_cpu *cpu, liif_train_state *s);

/* The same fast decoder for any decoder's layers (the LIIF-GAN generator's two), in two passes:
 * without dpred, fills pred (B,Q,C) from feat (B,h,w,F) and keeps the layer-1 precompute in
 * *scratch (made on first use; free it with liif_decoder_cpu_free); with dpred (B,Q,C), the
 * gradient of the loss with respect to pred, right after that forward pass on the same feat and
 * weights, reuses its precompute, recomputes the MLP forward, WRITES dfeat
 * (B,h,w,F) and adds the decoder's gradients into ddec (views like dec). No (B,Q,K,*) buffer exists. */
typedef struct liif_train_dec_cpu liif_train_dec_cpu;
liif_status liif_decoder_cpu(liif_train_cpu *cpu, liif_train_dec_cpu **scratch, const liif_config *c,
                             const liif_train_layer *dec, liif_train_layer *ddec, int B, int h, int w, int Q,
                             const float *feat, const float *coord, const float *cell, float *pred,
                             const float *dpred, float *dfeat, liif_error *err);
/* Make *scratch for this shape now (the passes then allocate nothing). */
liif_status liif_decoder_cpu_prepare(liif_train_cpu *cpu, liif_train_dec_cpu **scratch, const liif_config *c, int B,
                                     int h, int w, int Q, liif_error *err);
void liif_decoder_cpu_free(liif_train_dec_cpu *d);

/* ------------------------------------------------------------------ GPU training
 * Plain LIIF on an NVIDIA GPU through the CUDA module (core/cuda/train.cuh, loaded at run time):
 * the parameters, gradients and Adam moments stay on the device between steps and come back only
 * when asked (checkpoints, tests). The same ops as the fast CPU path: encoder convs as im2col +
 * cuBLAS sgemm, the decoder with the layer-1 precompute; the feature gradient is a scatter of float
 * atomic adds, so two runs agree to float rounding, not bit for bit. */

typedef struct liif_train_gpu liif_train_gpu;

/* A GPU trainer holding a copy of s (parameters, moments, step) for batches of B images of h x w
 * LR pixels with Q queries each; fast_math allows TF32 tensor-core GEMMs. Without a usable GPU or
 * CUDA module: LIIF_ERR_UNSUPPORTED with the reason. */
liif_status liif_train_gpu_new(const liif_train_state *s, int B, int h, int w, int Q, int fast_math,
                               liif_train_gpu **out, liif_error *err);
void liif_train_gpu_free(liif_train_gpu *g);

/* Queue one whole step (forward with L1 to gt, backward, Adam with o) and return without waiting:
 * the caller may refill inp, coord, cell and gt (same layouts as liif_train_forward) at once. */
liif_status liif_train_gpu_step(liif_train_gpu *g, const float *inp, const float *coord, const float *cell,
                                const float *gt, const liif_adam_config *o, liif_error *err);
/* Wait for the queued work; the L1 loss of its last forward. */
liif_status liif_train_gpu_wait(liif_train_gpu *g, float *loss, liif_error *err);

/* The pieces of a step, each waiting (tests): forward with pred (B,Q,C) normalised (may be NULL)
 * and the loss (gt NULL: none, *loss 0); backward of the last forward with gt, WRITING the
 * trainable part of s->grads and, when dfeat is not NULL, dfeat (B,h,w,F); one Adam step. */
liif_status liif_train_gpu_forward(liif_train_gpu *g, const float *inp, const float *coord, const float *cell,
                                   const float *gt, float *pred, float *loss, liif_error *err);
liif_status liif_train_gpu_backward(liif_train_gpu *g, liif_train_state *s, float *dfeat, liif_error *err);
liif_status liif_train_gpu_adam(liif_train_gpu *g, const liif_adam_config *o, liif_error *err);

/* Mean milliseconds per step in each phase (upload, encoder forward, decoder forward + L1, decoder
 * backward, encoder backward, Adam) over the *steps whole steps waited for so far. */
enum { LIIF_TRAIN_GPU_PHASES = 6 };
liif_status liif_train_gpu_profile(const liif_train_gpu *g, double ms[LIIF_TRAIN_GPU_PHASES], long *steps);

/* Wait, then copy the device's parameters, moments and step into s (a state of the same model). */
liif_status liif_train_gpu_pull(liif_train_gpu *g, liif_train_state *s, liif_error *err);

#endif
