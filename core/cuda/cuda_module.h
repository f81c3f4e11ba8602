/* cuda_module.h: the C interface between the engine (loader.c) and the run-time CUDA module liif-cuda.so. */
#ifndef LIIF_CUDA_MODULE_H
#define LIIF_CUDA_MODULE_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever this struct or the structs it passes (liif_backend, liif_model, liif_decode_job) change. */
#define LIIF_CUDA_ABI 2

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
     * the kernels the backend runs. fast = 1 allows TF32 GEMMs. They return LIIF_OK or an error. */
    /* out (h, w, cout) = act(conv3x3(in (h, w, cin)) + bias + res), weight [cout, cin, 3, 3];
     * bias and res may be NULL. */
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
    /* Measured cuBLAS sgemm rate in GFLOP/s for an M x N x K product (benchmarks), < 0 on error. */
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
