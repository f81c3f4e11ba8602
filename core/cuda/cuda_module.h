/* cuda_module.h: the C interface between the engine (loader.c) and the run-time CUDA module liif-cuda.so. */
#ifndef LIIF_CUDA_MODULE_H
#define LIIF_CUDA_MODULE_H

#include <stddef.h>

#include "internal.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever this struct or the structs it passes (liif_backend, liif_model, liif_decode_job) change. */
#define LIIF_CUDA_ABI 1

/* The module's one exported symbol; the loader looks it up with dlsym. */
#define LIIF_CUDA_ENTRY "liif_cuda_module_entry"

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
