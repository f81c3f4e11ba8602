/* common.cuh: error reporting, launch sizes and device buffers shared by the CUDA backend's kernels. */
#ifndef LIIF_CUDA_COMMON_CUH
#define LIIF_CUDA_COMMON_CUH

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

enum { CU_THREADS = 256 };

/* Blocks for n threads of CU_THREADS (grid-stride loops cover any n). */
static inline unsigned cu_blocks(size_t n)
{
    size_t b = (n + CU_THREADS - 1) / CU_THREADS;
    return (unsigned)(b < 1 ? 1 : (b > 65535u * 32u ? 65535u * 32u : b));
}

/* The module cannot call the core's liif_error_set (the host executable need not export it). */
static liif_status cu_error(liif_error *err, liif_status s, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return s;
}

static const char *cublas_name(cublasStatus_t s)
{
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "cuBLAS not initialised";
    case CUBLAS_STATUS_ALLOC_FAILED: return "cuBLAS allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "cuBLAS invalid value";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "cuBLAS architecture mismatch";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "cuBLAS execution failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "cuBLAS: not supported";
    default: return "cuBLAS error";
    }
}

/* Return a liif_status from a failing CUDA or cuBLAS call, naming the step. */
#define CU_TRY(call, what)                                                                               \
    do {                                                                                                 \
        cudaError_t e_ = (call);                                                                         \
        if (e_ != cudaSuccess)                                                                           \
            return cu_error(err, e_ == cudaErrorMemoryAllocation ? LIIF_ERR_NOMEM : LIIF_ERR_UNSUPPORTED, \
                            "CUDA: %s: %s", what, cudaGetErrorString(e_));                              \
    } while (0)
#define BLAS_TRY(call, what)                                                                \
    do {                                                                                    \
        cublasStatus_t s_ = (call);                                                         \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                                    \
            return cu_error(err, LIIF_ERR_UNSUPPORTED, "CUDA: %s: %s", what, cublas_name(s_)); \
    } while (0)
/* After a kernel launch: configuration errors show at once, execution errors at the next sync. */
#define LAUNCH_TRY(what) CU_TRY(cudaGetLastError(), what)

/* A device buffer that only grows (cudaMalloc, never managed memory). */
typedef struct {
    void *p;
    size_t bytes;
} dbuf;

static cudaError_t dbuf_reserve(dbuf *b, size_t bytes)
{
    if (bytes <= b->bytes) return cudaSuccess;
    cudaFree(b->p);
    b->p = NULL;
    b->bytes = 0;
    cudaError_t e = cudaMalloc(&b->p, bytes);
    if (e == cudaSuccess) b->bytes = bytes;
    else (void)cudaGetLastError(); /* clear the sticky-free allocation error */
    return e;
}

static void dbuf_free(dbuf *b)
{
    cudaFree(b->p);
    b->p = NULL;
    b->bytes = 0;
}

#define DF(b) ((float *)(b).p)

#endif
