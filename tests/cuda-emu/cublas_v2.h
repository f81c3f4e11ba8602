/* cublas_v2.h of the CUDA emulation (tests/cuda-emu): the cuBLAS calls of the training code as plain column-major
 * loops with double sums, refusing the arguments cuBLAS refuses (leading dimensions), so a wrong lda shows here
 * too. In TF32 math mode (cublasSetMathMode) the float32 GEMMs round both operands to TF32 first (10 fraction bits,
 * to nearest, ties away from zero: what cvt.rna.tf32.f32 does; cuBLAS documents no rounding, but on the H200 one op
 * case's TF32 error matched rounded operands; truncation would at most double it), as cuBLAS's TF32 kernels consume
 * them; products and sums stay exact in double, so this is the error of the operands alone. GEMV has no TF32 form.
 * A call checks its arguments and reads alpha and beta (host pointer mode) at once, and queues the product
 * (emu_enqueue). */
#pragma once
#include "cuda_bf16.h"
#include "cuda_runtime.h"

typedef struct emu_blas {
    int tf32;
} *cublasHandle_t;
typedef enum {
    CUBLAS_STATUS_SUCCESS = 0, CUBLAS_STATUS_NOT_INITIALIZED = 1, CUBLAS_STATUS_ALLOC_FAILED = 3,
    CUBLAS_STATUS_INVALID_VALUE = 7, CUBLAS_STATUS_ARCH_MISMATCH = 8, CUBLAS_STATUS_EXECUTION_FAILED = 13,
    CUBLAS_STATUS_NOT_SUPPORTED = 15
} cublasStatus_t;
typedef enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 } cublasOperation_t;
typedef enum { CUBLAS_DEFAULT_MATH = 0, CUBLAS_TF32_TENSOR_OP_MATH = 3 } cublasMath_t;

static inline cublasStatus_t cublasCreate(cublasHandle_t *h)
{
    *h = (cublasHandle_t)calloc(1, sizeof **h);
    return *h ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_ALLOC_FAILED;
}
static inline cublasStatus_t cublasDestroy(cublasHandle_t h)
{
    emu_flush();
    free(h);
    return CUBLAS_STATUS_SUCCESS;
}
static inline cublasStatus_t cublasSetStream(cublasHandle_t, cudaStream_t) { return CUBLAS_STATUS_SUCCESS; }
static inline cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t m)
{
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    h->tf32 = m == CUBLAS_TF32_TENSOR_OP_MATH;
    return CUBLAS_STATUS_SUCCESS;
}

typedef enum { CUDA_R_32F = 0, CUDA_R_16BF = 14 } cudaDataType;
typedef enum { CUBLAS_COMPUTE_32F = 68 } cublasComputeType_t;
typedef enum { CUBLAS_GEMM_DEFAULT = -1 } cublasGemmAlgo_t;

static inline int emu_ld_ok(int ld, int rows) { return ld >= (rows > 1 ? rows : 1); }

/* op(A) and op(B) are first copied so that each output's k products are contiguous, then summed in double (four
 * partial sums: exact to far below float32's rounding, as cuBLAS's own order is not the reference's either). */
static inline int emu_gemm_args_ok(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, int lda, int ldb,
                                   int ldc)
{
    return m >= 0 && n >= 0 && k >= 0 && emu_ld_ok(lda, ta == CUBLAS_OP_N ? m : k) &&
           emu_ld_ok(ldb, tb == CUBLAS_OP_N ? k : n) && emu_ld_ok(ldc, m);
}

static inline void emu_sgemm_now(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const float *alpha,
                                 const float *A, int lda, const float *B, int ldb, const float *beta, float *C, int ldc,
                                 int tf32)
{
    float *a = (float *)malloc(((size_t)m * k + 1) * sizeof(float)), *b = (float *)malloc(((size_t)n * k + 1) * sizeof(float));
    if (!a || !b) {
        fprintf(stderr, "cuda-emu: no memory for a GEMM\n");
        abort();
    }
    for (int p = 0; p < k; p++) /* a[i*k + p] = op(A)[i][p], b[j*k + p] = op(B)[p][j] */
        for (int i = 0; i < m; i++) a[(size_t)i * k + p] = ta == CUBLAS_OP_N ? A[i + (size_t)p * lda] : A[p + (size_t)i * lda];
    for (int j = 0; j < n; j++)
        for (int p = 0; p < k; p++) b[(size_t)j * k + p] = tb == CUBLAS_OP_N ? B[p + (size_t)j * ldb] : B[j + (size_t)p * ldb];
    if (tf32) {
        for (size_t i = 0; i < (size_t)m * k; i++) a[i] = emu_tf32(a[i]);
        for (size_t i = 0; i < (size_t)n * k; i++) b[i] = emu_tf32(b[i]);
    }
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            const float *ai = a + (size_t)i * k, *bj = b + (size_t)j * k;
            double s0 = 0, s1 = 0, s2 = 0, s3 = 0; /* four chains: the adds' latency, not their count, bounds a loop */
            int p = 0;
            for (; p + 4 <= k; p += 4) {
                s0 += (double)ai[p] * bj[p];
                s1 += (double)ai[p + 1] * bj[p + 1];
                s2 += (double)ai[p + 2] * bj[p + 2];
                s3 += (double)ai[p + 3] * bj[p + 3];
            }
            for (; p < k; p++) s0 += (double)ai[p] * bj[p];
            double s = (s0 + s1) + (s2 + s3);
            float *c = &C[i + (size_t)j * ldc];
            *c = *beta == 0.0f ? (float)(*alpha * s) : (float)(*alpha * s + (double)*beta * *c);
        }
    free(a);
    free(b);
}

static inline cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                         int k, const float *alpha, const float *A, int lda, const float *B, int ldb,
                                         const float *beta, float *C, int ldc)
{
    if (!emu_gemm_args_ok(ta, tb, m, n, k, lda, ldb, ldc)) return CUBLAS_STATUS_INVALID_VALUE;
    float al = *alpha, be = *beta;
    int tf32 = h && h->tf32;
    emu_enqueue([=]() { emu_sgemm_now(ta, tb, m, n, k, &al, A, lda, B, ldb, &be, C, ldc, tf32); });
    return CUBLAS_STATUS_SUCCESS;
}

static inline cublasStatus_t cublasSgemv(cublasHandle_t, cublasOperation_t ta, int m, int n, const float *alpha,
                                         const float *A, int lda, const float *x, int incx, const float *beta,
                                         float *y, int incy)
{
    if (ta != CUBLAS_OP_N || !emu_ld_ok(lda, m) || incx != 1 || incy != 1) return CUBLAS_STATUS_INVALID_VALUE;
    float al = *alpha, be = *beta;
    emu_enqueue([=]() {
        for (int i = 0; i < m; i++) {
            double s = 0;
            for (int j = 0; j < n; j++) s += (double)A[i + (size_t)j * lda] * x[j];
            y[i] = be == 0.0f ? (float)(al * s) : (float)(al * s + (double)be * y[i]);
        }
    });
    return CUBLAS_STATUS_SUCCESS;
}

/* GemmEx for the combinations the module uses: float32 or bf16 A and B (both alike), float32 C, float32 compute.
 * The bf16 operands' products are exact in double, so this is the bf16 GEMM's ideal; cuBLAS sums in float32. */
static inline cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                          int k, const void *alpha, const void *A, cudaDataType at, int lda,
                                          const void *B, cudaDataType bt, int ldb, const void *beta, void *C,
                                          cudaDataType ct, int ldc, cublasComputeType_t, cublasGemmAlgo_t)
{
    if (at != bt || ct != CUDA_R_32F || (at != CUDA_R_32F && at != CUDA_R_16BF)) return CUBLAS_STATUS_NOT_SUPPORTED;
    if (at == CUDA_R_32F)
        return cublasSgemm(h, ta, tb, m, n, k, (const float *)alpha, (const float *)A, lda, (const float *)B, ldb,
                           (const float *)beta, (float *)C, ldc);
    if (!emu_gemm_args_ok(ta, tb, m, n, k, lda, ldb, ldc)) return CUBLAS_STATUS_INVALID_VALUE;
    float al = *(const float *)alpha, be = *(const float *)beta;
    /* widen the operands' stored extent (column-major: (cols - 1) * ld + rows) to float, reuse the float32 loops */
    emu_enqueue([=]() {
        int ar = ta == CUBLAS_OP_N ? m : k, ac = ta == CUBLAS_OP_N ? k : m, br = tb == CUBLAS_OP_N ? k : n,
            bc = tb == CUBLAS_OP_N ? n : k;
        size_t na = ac ? (size_t)(ac - 1) * lda + ar : 0, nb = bc ? (size_t)(bc - 1) * ldb + br : 0;
        float *a = (float *)malloc((na + 1) * sizeof(float)), *b = (float *)malloc((nb + 1) * sizeof(float));
        if (!a || !b) {
            fprintf(stderr, "cuda-emu: no memory for a GEMM\n");
            abort();
        }
        for (size_t i = 0; i < na; i++) a[i] = __bfloat162float(((const __nv_bfloat16 *)A)[i]);
        for (size_t i = 0; i < nb; i++) b[i] = __bfloat162float(((const __nv_bfloat16 *)B)[i]);
        emu_sgemm_now(ta, tb, m, n, k, &al, a, lda, b, ldb, &be, (float *)C, ldc, 0);
        free(a);
        free(b);
    });
    return CUBLAS_STATUS_SUCCESS;
}
