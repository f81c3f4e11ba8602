/* conv.cuh: 3x3 convolution as im2col + cuBLAS sgemm with a fused bias/residual/ReLU epilogue; the GEMMs in float32,
 * TF32 (the handle's math mode) or with bf16 operands. */
#ifndef LIIF_CUDA_CONV_CUH
#define LIIF_CUDA_CONV_CUH

#include <cuda_bf16.h>

#include "common.cuh"

/* col (n, 9 * cin) = the 3x3 neighbourhoods of pixels [p0, p0 + n) of in (h, w, cin), in the
 * order [ky * 3 + kx][cin] (the permuted weight layout), zeros outside the image; into col16 as bf16
 * (rounded to nearest even) instead when col16 is not NULL. */
__global__ void im2col3x3_kernel(const float *in, int h, int w, int cin, size_t p0, int n, float *col,
                                 __nv_bfloat16 *col16)
{
    size_t kk = 9 * (size_t)cin, total = (size_t)n * kk;
    for (size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x; idx < total; idx += (size_t)gridDim.x * blockDim.x) {
        size_t p = idx / kk;
        int r = (int)(idx % kk), k = r / cin, i = r % cin;
        size_t gp = p0 + p;
        int y = (int)(gp / w) + k / 3 - 1, x = (int)(gp % w) + k % 3 - 1;
        float v = (y < 0 || y >= h || x < 0 || x >= w) ? 0.0f : in[((size_t)y * w + x) * cin + i];
        if (col16) col16[idx] = __float2bfloat16_rn(v);
        else col[idx] = v;
    }
}

/* out (np, cout) = act(out + bias + res), the CPU backend's epilogue order; bias and res may be NULL. */
__global__ void epilogue_kernel(float *out, size_t np, int cout, const float *bias, const float *res, int relu)
{
    size_t total = np * cout;
    for (size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x; idx < total; idx += (size_t)gridDim.x * blockDim.x) {
        float v = __fadd_rn(__fadd_rn(out[idx], bias ? bias[idx % cout] : 0.0f), res ? res[idx] : 0.0f);
        out[idx] = relu && v < 0.0f ? 0.0f : v;
    }
}

/* Row-major y (rows, n) = x (rows, k, rows ldx apart) @ w^T, w (n, k) rows ldw apart: in cuBLAS's
 * column-major terms y^T (n, rows) = w^T^T (n, k) . x^T (k, rows). */
static cublasStatus_t gemm_rows(cublasHandle_t blas, int rows, int n, int k, const float *x, int ldx, const float *w,
                                int ldw, float *y)
{
    const float one = 1.0f, zero = 0.0f;
    return cublasSgemm(blas, CUBLAS_OP_T, CUBLAS_OP_N, n, rows, k, &one, w, ldw, x, ldx, &zero, y, n);
}

/* y (rows, k) contiguous = x (rows, k, rows ldx apart) rounded to bf16, to nearest even. */
__global__ void to_bf16_kernel(const float *x, size_t rows, int k, size_t ldx, __nv_bfloat16 *y)
{
    size_t total = rows * k;
    for (size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x; idx < total; idx += (size_t)gridDim.x * blockDim.x)
        y[idx] = __float2bfloat16_rn(x[idx / k * ldx + idx % k]);
}

/* gemm_rows, with bf16 operands when h16 is not NULL (LIIF_MATH_BF16): x16 (rows, k contiguous), when given, is x
 * already in bf16 (written so by its producer); else x is rounded to bf16 into h16; w is rounded into h16 on every call
 * (at most 256 x 576, small beside x); then one cuBLAS GemmEx with float32 sums and output. */
static liif_status gemm_rows_run(cudaStream_t st, cublasHandle_t blas, dbuf *h16, int rows, int n, int k, const float *x,
                                 int ldx, const __nv_bfloat16 *x16, const float *w, int ldw, float *y, const char *what,
                                 liif_error *err)
{
    if (!h16) {
        BLAS_TRY(gemm_rows(blas, rows, n, k, x, ldx, w, ldw, y), what);
        return LIIF_OK;
    }
    size_t nx = x16 ? 0 : (size_t)rows * k, nw = (size_t)n * k;
    CU_TRY(dbuf_reserve(h16, (nx + nw) * sizeof(__nv_bfloat16)), "allocating the bf16 operands");
    __nv_bfloat16 *wh = (__nv_bfloat16 *)h16->p, *xh = wh + nw;
    to_bf16_kernel<<<cu_blocks(nw), CU_THREADS, 0, st>>>(w, (size_t)n, k, (size_t)ldw, wh);
    LAUNCH_TRY("bf16 operands");
    if (!x16) {
        to_bf16_kernel<<<cu_blocks(nx), CU_THREADS, 0, st>>>(x, (size_t)rows, k, (size_t)ldx, xh);
        LAUNCH_TRY("bf16 operands");
        x16 = xh;
    }
    const float one = 1.0f, zero = 0.0f;
    BLAS_TRY(cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, n, rows, k, &one, wh, CUDA_R_16BF, k, x16, CUDA_R_16BF, k,
                          &zero, y, CUDA_R_32F, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
             what);
    return LIIF_OK;
}

/* out (h, w, cout) = act(conv(in (h, w, cin)) + bias + res) with ksize 3 (wp [cout, 9, cin]) or
 * ksize 1 (wp [cout, cin]); wp rows ldw apart. col holds col_px pixels of im2col at a time; h16: bf16
 * operands (gemm_rows_run), NULL: float32 or TF32. */
static liif_status conv_run(cudaStream_t st, cublasHandle_t blas, dbuf *h16, const float *in, int h, int w, int cin,
                            int ksize, const float *wp, int ldw, const float *bias, const float *res, int relu, int cout,
                            float *out, float *col, size_t col_px, liif_error *err)
{
    size_t np = (size_t)h * w;
    int kk = ksize * ksize * cin;
    for (size_t p0 = 0; p0 < np; p0 += col_px) {
        int n = (int)(np - p0 < col_px ? np - p0 : col_px);
        const float *a = in + p0 * cin;
        const __nv_bfloat16 *a16 = NULL; /* bf16: im2col writes the rounded operand itself (col holds it: half the size) */
        if (ksize == 3) {
            im2col3x3_kernel<<<cu_blocks((size_t)n * kk), CU_THREADS, 0, st>>>(
                in, h, w, cin, p0, n, col, h16 ? (__nv_bfloat16 *)col : NULL);
            LAUNCH_TRY("im2col");
            a = col;
            if (h16) a16 = (const __nv_bfloat16 *)col;
        }
        liif_status s = gemm_rows_run(st, blas, h16, n, cout, kk, a, ksize == 3 ? kk : cin, a16, wp, ldw,
                                      out + p0 * cout, "conv GEMM", err);
        if (s) return s;
    }
    if (bias || res || relu) {
        epilogue_kernel<<<cu_blocks(np * cout), CU_THREADS, 0, st>>>(out, np, cout, bias, res, relu);
        LAUNCH_TRY("conv epilogue");
    }
    return LIIF_OK;
}

/* x (np, c) = (rgb - 0.5) / 0.5, the encoder's input normalisation. */
__global__ void normalise_kernel(float *x, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        x[i] = __fdiv_rn(__fsub_rn(x[i], 0.5f), 0.5f);
}

#endif
