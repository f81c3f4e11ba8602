/* train.cuh: plain LIIF training on the GPU: encoder convs forward/backward (im2col + cuBLAS, col2im), the
 * decoder with the layer-1 precompute and its scatter-add backward, L1, Adam; the twin of core/train/liif_cpu.c. */
#ifndef LIIF_CUDA_TRAIN_CUH
#define LIIF_CUDA_TRAIN_CUH

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.cuh"
#include "cuda_module.h"
#include "query.cuh"

/* Letters as core/train/train.h: B batch, h w LR sides, C channels, F features, Q queries per sample, K
 * ensemble shifts, D MLP input width, H0 layer-1 width, npx = B*h*w latents, rows = B*Q*K.
 * Maps are channels-last (B,h,w,*); conv weights OIHW (OC,IC,3,3) with rows ldw floats apart, so that
 * layer 1's feature columns (rows of D floats) run as a conv in place. Gradients accumulate (+=). */

/* ------------------------------------------------------------ kernels */

#define GRID_LOOP(i, n) for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

/* dst (n) = (src - 0.5) / 0.5 */
static __global__ void tk_normalise(float *dst, const float *src, size_t n)
{
    GRID_LOOP(i, n) dst[i] = __fdiv_rn(__fsub_rn(src[i], 0.5f), 0.5f);
}

/* col (npx, 9*IC), column ic*9 + ky*3 + kx = inp[b, y+ky-1, x+kx-1, ic] (zero outside): the OIHW order. */
static __global__ void tk_im2col(const float *inp, int B, int h, int w, int IC, float *col)
{
    size_t kk = 9 * (size_t)IC, total = (size_t)B * h * w * kk;
    GRID_LOOP(idx, total) {
        size_t p = idx / kk;
        int r = (int)(idx % kk), ic = r / 9, k = r % 9;
        int x = (int)(p % w), y = (int)(p / w % h);
        size_t b = p / ((size_t)w * h);
        int yy = y + k / 3 - 1, xx = x + k % 3 - 1;
        col[idx] = (yy < 0 || yy >= h || xx < 0 || xx >= w) ? 0.0f : inp[((b * h + yy) * w + xx) * IC + ic];
    }
}

/* dinp (npx, IC) += the adjoint of tk_im2col applied to dcol (npx, 9*IC), as a gather (no races). */
static __global__ void tk_col2im(const float *dcol, int B, int h, int w, int IC, float *dinp)
{
    size_t kk = 9 * (size_t)IC, total = (size_t)B * h * w * IC;
    GRID_LOOP(idx, total) {
        size_t p = idx / IC;
        int ic = (int)(idx % IC), x = (int)(p % w), y = (int)(p / w % h);
        size_t b = p / ((size_t)w * h);
        float acc = 0.0f;
        for (int k = 0; k < 9; k++) {
            int ys = y - k / 3 + 1, xs = x - k % 3 + 1; /* the pixel whose tap k reads (y, x) */
            if (ys < 0 || ys >= h || xs < 0 || xs >= w) continue;
            acc = __fadd_rn(acc, dcol[((b * h + ys) * w + xs) * kk + (size_t)ic * 9 + k]);
        }
        dinp[idx] = __fadd_rn(dinp[idx], acc);
    }
}

/* y (rows, n) = act((y + bias) + res); bias and res may be NULL. */
static __global__ void tk_bias_act(float *y, size_t rows, int n, const float *bias, const float *res, int relu)
{
    GRID_LOOP(idx, rows * n) {
        float v = y[idx];
        if (bias) v = __fadd_rn(v, bias[idx % n]);
        if (res) v = __fadd_rn(v, res[idx]);
        y[idx] = relu && v < 0.0f ? 0.0f : v;
    }
}

/* dy (n) = out > 0 ? dy : 0, the ReLU's backward on its output. */
static __global__ void tk_relu_mask(float *dy, const float *out, size_t n)
{
    GRID_LOOP(i, n) dy[i] = out[i] > 0.0f ? dy[i] : 0.0f;
}

static __global__ void tk_add(float *dst, const float *src, size_t n)
{
    GRID_LOOP(i, n) dst[i] = __fadd_rn(dst[i], src[i]);
}

static __global__ void tk_fill(float *dst, float v, size_t n)
{
    GRID_LOOP(i, n) dst[i] = v;
}

/* One thread per query (b, q): its K rows' latent index lat (rows) into (B,h,w), coord/cell
 * columns z (rows, nz) and blend weight wt (rows): core/train/liif_cpu.c's chunk_geometry. */
static __global__ void tk_geometry(const float *coord, const float *cell, int B, int Q, int h, int w, int ensemble,
                                   int cell_decode, int K, int nz, int *lat, float *z, float *wt)
{
    size_t nq = (size_t)B * Q;
    GRID_LOOP(bq, nq) {
        float qr = coord[bq * 2], qc = coord[bq * 2 + 1], area[4];
        for (int k = 0; k < K; k++) {
            int vr = ensemble ? (k < 2 ? -1 : 1) : 0, vc = ensemble ? (k % 2 ? 1 : -1) : 0;
            int i = cu_nearest(cu_shifted(qr, vr, h, ensemble), h);
            int j = cu_nearest(cu_shifted(qc, vc, w, ensemble), w);
            float rel_r = __fmul_rn(__fsub_rn(qr, cu_coord(i, h)), (float)h);
            float rel_c = __fmul_rn(__fsub_rn(qc, cu_coord(j, w)), (float)w);
            size_t row = bq * K + k;
            float *zr = z + row * nz;
            zr[0] = rel_r;
            zr[1] = rel_c;
            if (cell_decode) {
                zr[2] = __fmul_rn(cell[bq * 2], (float)h);
                zr[3] = __fmul_rn(cell[bq * 2 + 1], (float)w);
            }
            lat[row] = (int)(bq / Q) * h * w + i * w + j;
            area[k] = __fadd_rn(fabsf(__fmul_rn(rel_r, rel_c)), 1e-9f);
        }
        if (K == 1) {
            wt[bq] = __fdiv_rn(area[0], area[0]);
        } else {
            float tot = __fadd_rn(__fadd_rn(__fadd_rn(area[0], area[1]), area[2]), area[3]);
            for (int k = 0; k < 4; k++) wt[bq * 4 + k] = __fdiv_rn(area[3 - k], tot);
        }
    }
}

/* Layer 1 from the precompute: h0 (rows, H0) = act(P[lat] + z @ Wz^T + b0), Wz the columns base..base+nz-1
 * of W0 (rows D floats apart), in the CPU's order of additions. */
static __global__ void tk_layer1(const float *P, const float *W0, int D, int base, int nz, const float *b0,
                                 const int *lat, const float *z, size_t rows, int H0, int relu, float *h0)
{
    GRID_LOOP(idx, rows * H0) {
        size_t r = idx / H0;
        int j = (int)(idx % H0);
        float v = P[(size_t)lat[r] * H0 + j];
        for (int k = 0; k < nz; k++) v = __fadd_rn(v, __fmul_rn(z[r * nz + k], W0[(size_t)j * D + base + k]));
        v = __fadd_rn(v, b0[j]);
        h0[idx] = relu && v < 0.0f ? 0.0f : v;
    }
}

/* Per query: pred (nq, OC) = sum_k out (rows, OC) * wt; with gt (nq, OC, normalised): dout (rows, OC) =
 * sign(pred - gt) * inv * wt and *loss += sum |pred - gt| (block partial sums, one atomic per block). */
static __global__ void tk_blend_l1(const float *out, const float *wt, const float *gt, size_t nq, int K, int OC,
                                   float inv, float *pred, float *dout, double *loss)
{
    __shared__ double part[32];
    double sum = 0.0;
    for (size_t q = blockIdx.x * (size_t)blockDim.x + threadIdx.x; q < nq; q += (size_t)gridDim.x * blockDim.x)
        for (int o = 0; o < OC; o++) {
            float acc = 0.0f;
            for (int k = 0; k < K; k++) acc = __fadd_rn(acc, __fmul_rn(out[(q * K + k) * OC + o], wt[q * K + k]));
            pred[q * OC + o] = acc;
            if (!gt) continue;
            float diff = __fsub_rn(acc, gt[q * OC + o]);
            float dp = diff > 0.0f ? inv : (diff < 0.0f ? -inv : 0.0f);
            sum += fabs((double)diff);
            for (int k = 0; k < K; k++) dout[(q * K + k) * OC + o] = __fmul_rn(dp, wt[q * K + k]);
        }
    if (!gt) return;
    for (int off = 16; off > 0; off >>= 1) sum += __shfl_down_sync(0xffffffffu, sum, off);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) part[warp] = sum;
    __syncthreads();
    if (threadIdx.x == 0) {
        double s = 0.0;
        for (int i = 0; i < (int)(blockDim.x + 31) / 32; i++) s += part[i];
        atomicAdd(loss, s);
    }
}

/* dP (npx, H0) += the rows' layer-1 gradients g (rows, H0) at their latents. */
static __global__ void tk_scatter(const float *g, const int *lat, size_t rows, int H0, float *dP)
{
    GRID_LOOP(idx, rows * H0) atomicAdd(&dP[(size_t)lat[idx / H0] * H0 + idx % H0], g[idx]);
}

/* PyTorch 1.13 Adam on n values, in the order of core/train/state.c's liif_adam_update. */
static __global__ void tk_adam(float *p, const float *g, float *m, float *v, size_t n, float b1, float one_b1,
                               float b2, float one_b2, float neg_step, float corr, float eps)
{
    GRID_LOOP(i, n) {
        float gi = g[i];
        float mi = __fadd_rn(__fmul_rn(m[i], b1), __fmul_rn(one_b1, gi));
        float vi = __fadd_rn(__fmul_rn(v[i], b2), __fmul_rn(__fmul_rn(one_b2, gi), gi));
        float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), corr), eps);
        m[i] = mi;
        v[i] = vi;
        p[i] = __fadd_rn(p[i], __fdiv_rn(__fmul_rn(neg_step, mi), denom));
    }
}

/* ------------------------------------------------------------ GEMMs (row-major, in cuBLAS's column-major terms) */

/* Y (rows, n) = X (rows, k) @ W^T + beta * Y, W (n, k); leading dimensions in floats. */
static cublasStatus_t tg_nt(cublasHandle_t hb, int rows, int n, int k, const float *X, int ldx, const float *W, int ldw,
                            float beta, float *Y, int ldy)
{
    const float one = 1.0f;
    return cublasSgemm(hb, CUBLAS_OP_T, CUBLAS_OP_N, n, rows, k, &one, W, ldw, X, ldx, &beta, Y, ldy);
}

/* dW (n, k) += dY^T (n, rows) @ X (rows, k). */
static cublasStatus_t tg_tn_acc(cublasHandle_t hb, int rows, int n, int k, const float *dY, int ldy, const float *X,
                                int ldx, float *dW, int ldw)
{
    const float one = 1.0f;
    return cublasSgemm(hb, CUBLAS_OP_N, CUBLAS_OP_T, k, n, rows, &one, X, ldx, dY, ldy, &one, dW, ldw);
}

/* dX (rows, k) = dY (rows, n) @ W (n, k) + beta * dX. */
static cublasStatus_t tg_nn(cublasHandle_t hb, int rows, int n, int k, const float *dY, int ldy, const float *W,
                            int ldw, float beta, float *dX, int ldx)
{
    const float one = 1.0f;
    return cublasSgemm(hb, CUBLAS_OP_N, CUBLAS_OP_N, k, rows, n, &one, W, ldw, dY, ldy, &beta, dX, ldx);
}

/* db (n) += column sums of dY (rows, n), as dY^T @ ones. */
static cublasStatus_t tg_colsum(cublasHandle_t hb, int rows, int n, const float *dY, const float *ones, float *db)
{
    const float one = 1.0f;
    return cublasSgemv(hb, CUBLAS_OP_N, n, rows, &one, dY, n, ones, 1, &one, db, 1);
}

/* ------------------------------------------------------------ convolutions */

/* The device context the conv ops run in: stream, cuBLAS handle, im2col scratch (npx * 9 * max IC)
 * and a vector of ones (at least npx); igemm: conv_igemm_kind's kind of the forward and data-gradient convolutions
 * (TF32 runs on sm_80+: the implicit-GEMM kernel where it applies; 0: im2col + cuBLAS). */
typedef struct {
    cudaStream_t st;
    cublasHandle_t blas;
    float *col, *ones;
    int igemm;
} tconv_ctx;

/* out (B,h,w,OC) = act(conv3x3(inp (B,h,w,IC)) + bias + res), W (OC, IC*9) rows ldw apart; bias, res may be NULL. */
static liif_status tconv_forward(const tconv_ctx *x, float *out, const float *inp, const float *W, int ldw,
                                 const float *bias, const float *res, int relu, int B, int h, int w, int IC, int OC,
                                 liif_error *err)
{
    size_t npx = (size_t)B * h * w;
    int kk = 9 * IC;
    liif_status is = LIIF_OK; /* OIHW: output n, tap t, input c at W[n * ldw + c * 9 + t] */
    if (conv_igemm(x->st, x->igemm, inp, B, h, w, IC, W, ldw, 1, 9, bias, res, relu, OC, out, &is, err)) return is;
    tk_im2col<<<cu_blocks(npx * kk), CU_THREADS, 0, x->st>>>(inp, B, h, w, IC, x->col);
    LAUNCH_TRY("training im2col");
    BLAS_TRY(tg_nt(x->blas, (int)npx, OC, kk, x->col, kk, W, ldw, 0.0f, out, OC), "training conv sgemm");
    if (bias || res || relu) {
        tk_bias_act<<<cu_blocks(npx * OC), CU_THREADS, 0, x->st>>>(out, npx, OC, bias, res, relu);
        LAUNCH_TRY("training conv epilogue");
    }
    return LIIF_OK;
}

/* dW (rows ldw apart; may be NULL: frozen weights, inp unread) += d/dW, db (may be NULL) += d/db, dinp (may be NULL)
 * += d/dinp of conv3x3 from dout (B,h,w,OC); the data gradient as dcol = dout @ W, then col2im, or as the
 * implicit-GEMM convolution of dout with the flipped, transposed kernel (output ic, tap t, input oc at
 * W[oc * ldw + ic * 9 + 8 - t]) added onto dinp. */
/* The weight gradient of a 3x3 convolution on the tensor cores without an im2col matrix (TF32 operands, float32 sums):
 * block (chunk c, tap k, tile t; c fastest) sums dout^T . in_k over DW_PC pixels for a DW_T x DW_T (OC x IC) tile,
 * where in_k is the input shifted by tap k (zeros outside the image), and writes the partial sum to part [c][k][OC][IC];
 * tk_dw_reduce adds the chunks, in order, to dW. 4 warps, each 16 rows of OC by the tile's IC; DW_PK pixels of dout
 * and of in_k staged in shared memory at a time, rounded to TF32. */
enum { DW_T = 64, DW_PK = 32, DW_PC = 512, DW_LD = DW_T + 4 };

static __global__ void __launch_bounds__(128)
    tk_dw_igemm(const float *dout, const float *inp, int B, int h, int w, int IC, int OC, int nc, float *part)
{
#ifndef IG_NO_TENSOR_CORES
    __shared__ __align__(128) float ds[DW_PK * DW_LD]; /* [pixel][o] */
    __shared__ __align__(128) float xs[DW_PK * DW_LD]; /* [pixel][i] */
    long npx = (long)B * h * w, c = (long)(blockIdx.x % nc);
    int k = (int)(blockIdx.x / nc % 9), t = (int)(blockIdx.x / nc / 9), nit = IC / DW_T;
    int o0 = t / nit * DW_T, i0 = t % nit * DW_T;
    int warp = (int)(threadIdx.x / 32), dy = k / 3 - 1, dx = k % 3 - 1;
    long p_end = (c + 1) * DW_PC < npx ? (c + 1) * DW_PC : npx;
    wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc[DW_T / 16];
    for (int j = 0; j < DW_T / 16; j++) wmma::fill_fragment(acc[j], 0.0f);
    for (long pb = c * DW_PC; pb < p_end; pb += DW_PK) {
        __syncthreads(); /* the last stage's fragments are loaded */
        for (int e = (int)threadIdx.x; e < DW_PK * DW_T; e += 128) {
            int pp = e / DW_T, q = e % DW_T;
            long p = pb + pp;
            float dv = 0.0f, xv = 0.0f;
            if (p < p_end) {
                dv = dout[p * OC + o0 + q];
                int x0 = (int)(p % w), y0 = (int)(p / w % h), yy = y0 + dy, xx = x0 + dx;
                if (yy >= 0 && yy < h && xx >= 0 && xx < w) xv = inp[(p + (long)dy * w + dx) * IC + i0 + q];
            }
            ds[pp * DW_LD + q] = igemm_tf32::cvt(dv);
            xs[pp * DW_LD + q] = igemm_tf32::cvt(xv);
        }
        __syncthreads();
        for (int kk = 0; kk < DW_PK; kk += 8) {
            wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::col_major> fa;
            wmma::load_matrix_sync(fa, ds + kk * DW_LD + warp * 16, DW_LD);
            for (int j = 0; j < DW_T / 16; j++) {
                wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fb;
                wmma::load_matrix_sync(fb, xs + kk * DW_LD + j * 16, DW_LD);
                wmma::mma_sync(acc[j], fa, fb, acc[j]);
            }
        }
    }
    float *dst = part + (((size_t)c * 9 + k) * OC + o0 + warp * 16) * IC + i0;
    for (int j = 0; j < DW_T / 16; j++) wmma::store_matrix_sync(dst + j * 16, acc[j], IC, wmma::mem_row_major);
#endif
}

/* dW (OC, IC * 9, rows ldw apart; PyTorch's [o][i][tap]) += the sum over the nc chunks of part, in chunk order. */
static __global__ void tk_dw_reduce(const float *part, int nc, int IC, int OC, float *dW, int ldw)
{
    size_t total = (size_t)OC * IC * 9;
    GRID_LOOP(idx, total) {
        int o = (int)(idx / ((size_t)IC * 9)), r = (int)(idx % ((size_t)IC * 9)), i = r / 9, k = r % 9;
        float acc = 0.0f;
        for (int c = 0; c < nc; c++) acc = __fadd_rn(acc, part[(((size_t)c * 9 + k) * OC + o) * IC + i]);
        float *d = dW + (size_t)o * ldw + r;
        *d = __fadd_rn(*d, acc);
    }
}

static liif_status tconv_backward(const tconv_ctx *x, float *dinp, float *dW, float *db, const float *dout,
                                  const float *inp, const float *W, int ldw, int B, int h, int w, int IC, int OC,
                                  liif_error *err)
{
    size_t npx = (size_t)B * h * w;
    int kk = 9 * IC;
    unsigned nc = (unsigned)((npx + DW_PC - 1) / DW_PC);
    /* the partial sums go into the im2col scratch (npx * 9 * IC floats), 32-byte aligned for wmma; x->igemm is 0
     * under LIIF_CUDA_CONV=im2col (conv_igemm_kind) */
    float *part = (float *)(((uintptr_t)x->col + 31) & ~(uintptr_t)31);
    if (dW && x->igemm == LIIF_MATH_TF32 && IC % DW_T == 0 && OC % DW_T == 0 &&
        (size_t)nc * OC * 9 * IC + 8 <= npx * 9 * IC) {
        unsigned long blocks = (unsigned long)nc * 9 * (OC / DW_T) * (IC / DW_T); /* chunk, then tap, then tile */
        tk_dw_igemm<<<blocks, 128, 0, x->st>>>(dout, inp, B, h, w, IC, OC, (int)nc, part);
        LAUNCH_TRY("implicit-GEMM weight gradient");
        tk_dw_reduce<<<cu_blocks((size_t)OC * IC * 9), CU_THREADS, 0, x->st>>>(part, (int)nc, IC, OC, dW, ldw);
        LAUNCH_TRY("weight-gradient sum");
        dW = NULL; /* done */
    }
    if (dW) {
        tk_im2col<<<cu_blocks(npx * kk), CU_THREADS, 0, x->st>>>(inp, B, h, w, IC, x->col);
        LAUNCH_TRY("training im2col");
        BLAS_TRY(tg_tn_acc(x->blas, (int)npx, OC, kk, dout, OC, x->col, kk, dW, ldw), "conv weight-gradient sgemm");
    }
    if (db) BLAS_TRY(tg_colsum(x->blas, (int)npx, OC, dout, x->ones, db), "conv bias-gradient sgemv");
    if (!dinp) return LIIF_OK;
    liif_status is = LIIF_OK;
    if (conv_igemm(x->st, x->igemm, dout, B, h, w, OC, W + 8, 9, -1, ldw, NULL, dinp, 0, IC, dinp, &is, err)) return is;
    BLAS_TRY(tg_nn(x->blas, (int)npx, OC, kk, dout, OC, W, ldw, 0.0f, x->col, kk), "conv data-gradient sgemm");
    tk_col2im<<<cu_blocks(npx * IC), CU_THREADS, 0, x->st>>>(x->col, B, h, w, IC, dinp);
    LAUNCH_TRY("training col2im");
    return LIIF_OK;
}

/* ------------------------------------------------------------ pieces of this trainer and train_gan.cuh's */

/* The templates take either trainer: both name these fields alike (shape letters, cx, conv_w/conv_b, and the
 * generator's buffers x, t, r, feat, z, wt, lat, dt, dr). */

/* Device 0, a non-blocking stream, cuBLAS on it (TF32 GEMMs when fast) and nev profile events. */
static liif_status tdev_start(tconv_ctx *cx, cudaEvent_t *ev, int nev, int fast, liif_error *err)
{
    CU_TRY(cudaSetDevice(0), "selecting device 0");
    CU_TRY(cudaStreamCreateWithFlags(&cx->st, cudaStreamNonBlocking), "creating a stream");
    BLAS_TRY(cublasCreate(&cx->blas), "starting cuBLAS");
    BLAS_TRY(cublasSetStream(cx->blas, cx->st), "cuBLAS stream");
    BLAS_TRY(cublasSetMathMode(cx->blas, fast ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH), "cuBLAS math mode");
    cudaDeviceProp prop;
    CU_TRY(cudaGetDeviceProperties(&prop, 0), "reading device 0's properties");
    cx->igemm = conv_igemm_kind(fast ? LIIF_MATH_TF32 : LIIF_MATH_FP32, prop.major * 10 + prop.minor);
    for (int i = 0; i < nev; i++) CU_TRY(cudaEventCreate(&ev[i]), "profile events");
    return LIIF_OK;
}

/* cudaMalloc (at least 4 bytes) into *pp, listed in allocs (n of max used) for tdev_release; *pp NULL on failure. */
static cudaError_t tdev_alloc(void **allocs, int *n, int max, void *pp, size_t bytes)
{
    void **p = (void **)pp;
    *p = NULL;
    if (*n == max) return cudaErrorMemoryAllocation;
    cudaError_t e = cudaMalloc(p, bytes < 4 ? 4 : bytes);
    if (e == cudaSuccess) allocs[(*n)++] = *p;
    else (void)cudaGetLastError();
    return e;
}

/* What tdev_start and tdev_alloc made, after the stream's work: each part only if it was made. */
static void tdev_release(tconv_ctx *cx, cudaEvent_t *ev, int nev, void **allocs, int n)
{
    if (cx->st) cudaStreamSynchronize(cx->st);
    for (int i = 0; i < nev; i++)
        if (ev[i]) cudaEventDestroy(ev[i]);
    for (int i = 0; i < n; i++) cudaFree(allocs[i]);
    if (cx->blas) cublasDestroy(cx->blas);
    if (cx->st) cudaStreamDestroy(cx->st);
}

/* Profile: records phase boundary i of the step in flight into ev[i]; bit i of *marks says it was recorded. */
static void tprof_mark(cudaStream_t st, cudaEvent_t *ev, int *marks, int i)
{
    if (i == 0) *marks = 0;
    if (cudaEventRecord(ev[i], st) == cudaSuccess) *marks |= 1 << i;
}

/* After a wait: when all n + 1 boundaries of the step were recorded, its n phases into ms and steps. */
static void tprof_account(const cudaEvent_t *ev, int *marks, int n, double *ms, long *steps)
{
    if (*marks != (1 << (n + 1)) - 1) return;
    for (int i = 0; i < n; i++) {
        float f = 0.0f;
        if (cudaEventElapsedTime(&f, ev[i], ev[i + 1]) == cudaSuccess) ms[i] += f;
    }
    ++*steps;
    *marks = 0;
}

/* The generator's letters from c (t->B, h, w, Q set): R F C OC, the decoder's K nz base D L dims H0, the sizes
 * npx nf nq rows, and host copies of the n_convs conv offsets; on failure the caller frees t. */
template <class T>
static liif_status tgen_init(T *t, const liif_config *c, int n_convs, const size_t *conv_w, const size_t *conv_b,
                             liif_error *err)
{
    t->R = c->n_resblocks; t->F = c->n_feats; t->C = c->in_ch; t->OC = c->out_dim;
    t->K = c->local_ensemble ? 4 : 1;
    t->nz = c->cell_decode ? 4 : 2;
    t->base = c->n_feats * (c->feat_unfold ? 9 : 1);
    t->D = c->in_dim;
    t->L = c->n_hidden;
    t->dims[0] = c->in_dim;
    for (int l = 0; l < c->n_hidden; l++) t->dims[l + 1] = c->hidden[l];
    t->dims[c->n_hidden + 1] = c->out_dim;
    t->H0 = t->dims[1];
    if (t->D != t->base + t->nz)
        return cu_error(err, LIIF_ERR_MODEL, "decoder input width %d is not %d", c->in_dim, t->base + t->nz);
    t->npx = (size_t)t->B * t->h * t->w;
    t->nf = t->npx * t->F;
    t->nq = (size_t)t->B * t->Q;
    t->rows = t->nq * t->K;
    t->conv_w = (size_t *)malloc(n_convs * sizeof(size_t));
    t->conv_b = (size_t *)malloc(n_convs * sizeof(size_t));
    if (!t->conv_w || !t->conv_b) return cu_error(err, LIIF_ERR_NOMEM, "out of host memory");
    memcpy(t->conv_w, conv_w, n_convs * sizeof(size_t));
    memcpy(t->conv_b, conv_b, n_convs * sizeof(size_t));
    return LIIF_OK;
}

/* The encoder from t->x, parameters W: t0 = head(x); t[r+1] = t[r] + conv2(relu(conv1(t[r]))) (relu into r[r]);
 * feat = tail(t[R]) + t0. */
template <class T> static liif_status tenc_forward(const T *t, const float *W, liif_error *err)
{
    const tconv_ctx *x = &t->cx;
    const size_t *cw = t->conv_w, *cb = t->conv_b;
    int B = t->B, h = t->h, w = t->w, F = t->F, C = t->C, R = t->R;
    size_t nf = t->nf;
    liif_status s;
    int last = 2 * R + 1;
    if ((s = tconv_forward(x, t->t, t->x, W + cw[0], 9 * C, W + cb[0], NULL, 0, B, h, w, C, F, err))) return s;
    for (int r = 0; r < R; r++) {
        float *tin = t->t + (size_t)r * nf, *tout = tin + nf, *act = t->r + (size_t)r * nf;
        if ((s = tconv_forward(x, act, tin, W + cw[1 + 2 * r], 9 * F, W + cb[1 + 2 * r], NULL, 1, B, h, w, F, F, err)))
            return s;
        if ((s = tconv_forward(x, tout, act, W + cw[2 + 2 * r], 9 * F, W + cb[2 + 2 * r], tin, 0, B, h, w, F, F, err)))
            return s;
    }
    return tconv_forward(x, t->feat, t->t + (size_t)R * nf, W + cw[last], 9 * F, W + cb[last], t->t, 0, B, h, w, F, F,
                         err);
}

/* The encoder's backward into G (+=) from dfeat (d feat), last conv first: t->dt holds d(t[r+1]) at the top of
 * iteration r, and dmid (NULL: none) joins it at r == mid (the map t[mid+1] a mid-layer decoder read). */
template <class T>
static liif_status tenc_backward(const T *t, const float *W, float *G, const float *dfeat, const float *dmid, int mid,
                                 liif_error *err)
{
    cudaStream_t st = t->cx.st;
    const tconv_ctx *x = &t->cx;
    const size_t *cw = t->conv_w, *cb = t->conv_b;
    int B = t->B, h = t->h, w = t->w, F = t->F, C = t->C, R = t->R;
    size_t nf = t->nf;
    liif_status s;
    int last = 2 * R + 1;
    CU_TRY(cudaMemsetAsync(t->dt, 0, nf * sizeof(float), st), "zeroing dt");
    if ((s = tconv_backward(x, t->dt, G + cw[last], G + cb[last], dfeat, t->t + (size_t)R * nf, W + cw[last], 9 * F, B,
                            h, w, F, F, err)))
        return s;
    for (int r = R - 1; r >= 0; r--) {
        if (dmid && r == mid) {
            tk_add<<<cu_blocks(nf), CU_THREADS, 0, st>>>(t->dt, dmid, nf);
            LAUNCH_TRY("mid-layer gradient");
        }
        float *tin = t->t + (size_t)r * nf, *act = t->r + (size_t)r * nf;
        CU_TRY(cudaMemsetAsync(t->dr, 0, nf * sizeof(float), st), "zeroing dr");
        if ((s = tconv_backward(x, t->dr, G + cw[2 + 2 * r], G + cb[2 + 2 * r], t->dt, act, W + cw[2 + 2 * r], 9 * F, B,
                                h, w, F, F, err)))
            return s;
        tk_relu_mask<<<cu_blocks(nf), CU_THREADS, 0, st>>>(t->dr, act, nf);
        LAUNCH_TRY("ReLU backward");
        /* dt already holds the skip path's gradient; the conv path adds to it */
        if ((s = tconv_backward(x, t->dt, G + cw[1 + 2 * r], G + cb[1 + 2 * r], t->dr, tin, W + cw[1 + 2 * r], 9 * F, B,
                                h, w, F, F, err)))
            return s;
    }
    tk_add<<<cu_blocks(nf), CU_THREADS, 0, st>>>(t->dt, dfeat, nf); /* the global skip */
    LAUNCH_TRY("global skip");
    return tconv_backward(x, NULL, G + cw[0], G + cb[0], t->dt, t->x, W + cw[0], 9 * C, B, h, w, C, F, err);
}

/* One decoder (layer l: weight W + dw[l], bias W + db[l]) over the geometry t->lat, z: the precompute P of
 * layer 1's feature columns over the feature map S (a conv with unfold), then per row the rest of layer 1 and
 * the MLP into hid[0..L]. */
template <class T>
static liif_status tdec_forward(const T *t, const float *W, const size_t *dw, const size_t *db, int unfold,
                                const float *S, float *P, float *const *hid, liif_error *err)
{
    cudaStream_t st = t->cx.st;
    const tconv_ctx *x = &t->cx;
    int H0 = t->H0, L = t->L;
    size_t rows = t->rows;
    liif_status s;
    const float *W0 = W + dw[0];
    if (unfold) {
        if ((s = tconv_forward(x, P, S, W0, t->D, NULL, NULL, 0, t->B, t->h, t->w, t->F, H0, err))) return s;
    } else {
        BLAS_TRY(tg_nt(x->blas, (int)t->npx, H0, t->F, S, t->F, W0, t->D, 0.0f, P, H0), "precompute sgemm");
    }
    tk_layer1<<<cu_blocks(rows * H0), CU_THREADS, 0, st>>>(P, W0, t->D, t->base, t->nz, W + db[0], t->lat, t->z, rows,
                                                           H0, L > 0, hid[0]);
    LAUNCH_TRY("decoder layer 1");
    for (int l = 1; l <= L; l++) {
        int IC = t->dims[l], OCl = t->dims[l + 1];
        BLAS_TRY(tg_nt(x->blas, (int)rows, OCl, IC, hid[l - 1], IC, W + dw[l], IC, 0.0f, hid[l], OCl), "decoder sgemm");
        tk_bias_act<<<cu_blocks(rows * OCl), CU_THREADS, 0, st>>>(hid[l], rows, OCl, W + db[l], NULL, l < L);
        LAUNCH_TRY("decoder bias");
    }
    return LIIF_OK;
}

/* tdec_forward's backward into G (+=) from dy (rows, OC), the gradient of hid[L] (dy and dx, each rows * max
 * width, are overwritten): the MLP, layer 1's bias and coord/cell columns, its feature columns through dP
 * (npx, H0) and the precompute into dS (d S): += with unfold; without, dS = beta * dS + the precompute's. */
template <class T>
static liif_status tdec_backward(const T *t, const float *W, float *G, const size_t *dw, const size_t *db, int unfold,
                                 const float *S, float *const *hid, float *dy, float *dx, float *dP, float *dS,
                                 float beta, liif_error *err)
{
    cudaStream_t st = t->cx.st;
    const tconv_ctx *x = &t->cx;
    cublasHandle_t hb = x->blas;
    int H0 = t->H0, L = t->L, D = t->D, F = t->F;
    size_t npx = t->npx, rows = t->rows;
    for (int l = L; l >= 1; l--) { /* dy holds d(layer l's output) */
        int IC = t->dims[l], OCl = t->dims[l + 1];
        if (l < L) {
            tk_relu_mask<<<cu_blocks(rows * OCl), CU_THREADS, 0, st>>>(dy, hid[l], rows * OCl);
            LAUNCH_TRY("ReLU backward");
        }
        BLAS_TRY(tg_tn_acc(hb, (int)rows, OCl, IC, dy, OCl, hid[l - 1], IC, G + dw[l], IC), "decoder dW sgemm");
        BLAS_TRY(tg_colsum(hb, (int)rows, OCl, dy, x->ones, G + db[l]), "decoder db sgemv");
        BLAS_TRY(tg_nn(hb, (int)rows, OCl, IC, dy, OCl, W + dw[l], IC, 0.0f, dx, IC), "decoder dx sgemm");
        float *tmp = dy;
        dy = dx;
        dx = tmp;
    }
    if (L > 0) {
        tk_relu_mask<<<cu_blocks(rows * H0), CU_THREADS, 0, st>>>(dy, hid[0], rows * H0);
        LAUNCH_TRY("ReLU backward");
    }
    float *dW0 = G + dw[0];
    const float *W0 = W + dw[0];
    BLAS_TRY(tg_colsum(hb, (int)rows, H0, dy, x->ones, G + db[0]), "layer-1 db sgemv");
    BLAS_TRY(tg_tn_acc(hb, (int)rows, H0, t->nz, dy, H0, t->z, t->nz, dW0 + t->base, D), "layer-1 coord/cell sgemm");
    CU_TRY(cudaMemsetAsync(dP, 0, npx * H0 * sizeof(float), st), "zeroing dP");
    tk_scatter<<<cu_blocks(rows * H0), CU_THREADS, 0, st>>>(dy, t->lat, rows, H0, dP);
    LAUNCH_TRY("scatter into dP");
    if (unfold) return tconv_backward(x, dS, dW0, NULL, dP, S, W0, D, t->B, t->h, t->w, F, H0, err);
    BLAS_TRY(tg_tn_acc(hb, (int)npx, H0, F, dP, H0, S, F, dW0, D), "precompute dW sgemm");
    BLAS_TRY(tg_nn(hb, (int)npx, H0, F, dP, H0, W0, D, beta, dS, F), "precompute dfeat sgemm");
    return LIIF_OK;
}

/* One Adam step (PyTorch 1.13's, as liif_adam_update) on n values: ++*step, bias corrections in double. */
static liif_status tadam(cudaStream_t st, float *p, const float *g, float *m, float *v, size_t n, int64_t *step,
                         double lr, double beta1, double beta2, double eps, liif_error *err)
{
    ++*step;
    double tt = (double)*step;
    double bc1 = 1.0 - pow(beta1, tt), bc2_sqrt = sqrt(1.0 - pow(beta2, tt));
    float b1 = (float)beta1, one_b1 = (float)(1.0 - beta1), b2 = (float)beta2, one_b2 = (float)(1.0 - beta2);
    float neg_step = (float)(-(lr / bc1)), corr = (float)bc2_sqrt, e = (float)eps;
    tk_adam<<<cu_blocks(n), CU_THREADS, 0, st>>>(p, g, m, v, n, b1, one_b1, b2, one_b2, neg_step, corr, e);
    LAUNCH_TRY("Adam");
    return LIIF_OK;
}

/* dev (n) = host, or zeros where host is NULL (legacy stream: the caller syncs the device before its stream). */
static liif_status tdev_put(float *dev, const float *host, size_t n, const char *up, const char *zero, liif_error *err)
{
    if (host) CU_TRY(cudaMemcpy(dev, host, n * sizeof(float), cudaMemcpyHostToDevice), up);
    else CU_TRY(cudaMemset(dev, 0, n * sizeof(float)), zero);
    return LIIF_OK;
}

/* ------------------------------------------------------------ the trainer */

enum { TRAIN_MAX_ALLOCS = 40 };

struct liif_cuda_trainer {
    liif_config cfg;
    int B, h, w, Q, R, F, C, K, nz, base, D, H0, L, OC;
    int dims[LIIF_MAX_HIDDEN + 2];
    size_t npx, nf, nq, rows, n_params, n_trainable;
    size_t *conv_w, *conv_b;       /* (2R+2) host copies of the offsets */
    size_t dec_w[LIIF_MAX_HIDDEN + 1], dec_b[LIIF_MAX_HIDDEN + 1];
    int64_t step;
    tconv_ctx cx;
    /* device memory */
    void *allocs[TRAIN_MAX_ALLOCS];
    int n_allocs;
    float *params, *grads, *m, *v;
    float *inp, *x, *t, *r, *feat, *P, *dP, *z, *wt, *hid[LIIF_MAX_HIDDEN + 1], *da, *db;
    float *coord, *cell, *gt, *pred, *dfeat, *dt, *dr;
    int *lat;
    double *loss;
    int have_gt;
    /* profile: events at the phase boundaries of the current step, which of them were recorded */
    int marks;
    cudaEvent_t ev[LIIF_TRAIN_PHASES + 1];
    liif_cuda_train_profile prof;
};

/* Records phase boundary i (0: before the upload .. 6: after Adam) of the step in flight. */
static void train_mark(liif_cuda_trainer *t, int i) { tprof_mark(t->cx.st, t->ev, &t->marks, i); }

/* After a wait: a whole step's phases into the totals. */
static void train_account(liif_cuda_trainer *t)
{
    tprof_account(t->ev, &t->marks, LIIF_TRAIN_PHASES, t->prof.ms, &t->prof.steps);
}

static void train_profile(const liif_cuda_trainer *t, liif_cuda_train_profile *out) { *out = t->prof; }

static cudaError_t talloc(liif_cuda_trainer *t, void *pp, size_t bytes)
{
    return tdev_alloc(t->allocs, &t->n_allocs, TRAIN_MAX_ALLOCS, pp, bytes);
}

static void train_free(liif_cuda_trainer *t)
{
    if (!t) return;
    tdev_release(&t->cx, t->ev, LIIF_TRAIN_PHASES + 1, t->allocs, t->n_allocs);
    free(t->conv_w);
    free(t->conv_b);
    free(t);
}

/* Fills t (zeroed) for sh; on failure t holds what was made so far, for train_free. */
static liif_status train_init(liif_cuda_trainer *t, const liif_cuda_train_shape *sh, const float *params,
                              const float *m, const float *v, int64_t step, int fast, liif_error *err)
{
    const liif_config *c = &sh->cfg;
    t->cfg = *c;
    t->B = sh->B; t->h = sh->h; t->w = sh->w; t->Q = sh->Q;
    liif_status s = tgen_init(t, c, sh->n_convs, sh->conv_w, sh->conv_b, err);
    if (s) return s;
    t->n_params = sh->n_params;
    t->n_trainable = sh->n_trainable;
    t->step = step;
    memcpy(t->dec_w, sh->dec_w, sizeof t->dec_w);
    memcpy(t->dec_b, sh->dec_b, sizeof t->dec_b);
    if ((s = tdev_start(&t->cx, t->ev, LIIF_TRAIN_PHASES + 1, fast, err))) return s;

    size_t P = t->n_params, nt = t->n_trainable, npx = t->npx, nf = t->nf, rows = t->rows;
    int maxic = t->F > t->C ? t->F : t->C, maxw = 0;
    for (int l = 0; l <= t->L; l++) maxw = t->dims[l + 1] > maxw ? t->dims[l + 1] : maxw;
    size_t hsum = 0;
    for (int l = 0; l <= t->L; l++) hsum += rows * t->dims[l + 1];
    size_t n_ones = npx > rows ? npx : rows;
    float *hmem;
    const char *what = "allocating the trainer's device memory";
    CU_TRY(talloc(t, &t->params, P * sizeof(float)), what);
    CU_TRY(talloc(t, &t->grads, P * sizeof(float)), what);
    CU_TRY(talloc(t, &t->m, nt * sizeof(float)), what);
    CU_TRY(talloc(t, &t->v, nt * sizeof(float)), what);
    CU_TRY(talloc(t, &t->inp, npx * t->C * sizeof(float)), what);
    CU_TRY(talloc(t, &t->x, npx * t->C * sizeof(float)), what);
    CU_TRY(talloc(t, &t->t, (size_t)(t->R + 1) * nf * sizeof(float)), what);
    CU_TRY(talloc(t, &t->r, (size_t)(t->R > 0 ? t->R : 1) * nf * sizeof(float)), what);
    CU_TRY(talloc(t, &t->feat, nf * sizeof(float)), what);
    CU_TRY(talloc(t, &t->cx.col, npx * 9 * maxic * sizeof(float)), what);
    CU_TRY(talloc(t, &t->cx.ones, n_ones * sizeof(float)), what);
    CU_TRY(talloc(t, &t->P, npx * t->H0 * sizeof(float)), what);
    CU_TRY(talloc(t, &t->dP, npx * t->H0 * sizeof(float)), what);
    CU_TRY(talloc(t, &t->z, rows * t->nz * sizeof(float)), what);
    CU_TRY(talloc(t, &t->wt, rows * sizeof(float)), what);
    CU_TRY(talloc(t, &t->lat, rows * sizeof(int)), what);
    CU_TRY(talloc(t, &hmem, hsum * sizeof(float)), what);
    CU_TRY(talloc(t, &t->da, rows * maxw * sizeof(float)), what);
    CU_TRY(talloc(t, &t->db, rows * maxw * sizeof(float)), what);
    CU_TRY(talloc(t, &t->coord, t->nq * 2 * sizeof(float)), what);
    CU_TRY(talloc(t, &t->cell, t->nq * 2 * sizeof(float)), what);
    CU_TRY(talloc(t, &t->gt, t->nq * t->OC * sizeof(float)), what);
    CU_TRY(talloc(t, &t->pred, t->nq * t->OC * sizeof(float)), what);
    CU_TRY(talloc(t, &t->dfeat, nf * sizeof(float)), what);
    CU_TRY(talloc(t, &t->dt, nf * sizeof(float)), what);
    CU_TRY(talloc(t, &t->dr, nf * sizeof(float)), what);
    CU_TRY(talloc(t, &t->loss, sizeof(double)), what);
    for (int l = 0; l <= t->L; l++) {
        t->hid[l] = hmem;
        hmem += rows * t->dims[l + 1];
    }
    tk_fill<<<cu_blocks(n_ones), CU_THREADS, 0, t->cx.st>>>(t->cx.ones, 1.0f, n_ones);
    LAUNCH_TRY("filling ones");
    CU_TRY(cudaMemcpy(t->params, params, P * sizeof(float), cudaMemcpyHostToDevice), "uploading the parameters");
    if ((s = tdev_put(t->m, m, nt, "uploading Adam's m", "zeroing Adam's m", err))) return s;
    if ((s = tdev_put(t->v, v, nt, "uploading Adam's v", "zeroing Adam's v", err))) return s;
    CU_TRY(cudaMemset(t->grads, 0, P * sizeof(float)), "zeroing the gradients");
    CU_TRY(cudaMemset(t->loss, 0, sizeof(double)), "zeroing the loss");
    /* the legacy-stream copies and memsets above are not ordered before the non-blocking stream: the whole device */
    CU_TRY(cudaDeviceSynchronize(), "starting the trainer");
    return LIIF_OK;
}

static liif_status train_new(const liif_cuda_train_shape *sh, const float *params, const float *m, const float *v,
                             int64_t step, int fast, liif_cuda_trainer **out, liif_error *err)
{
    *out = NULL;
    const liif_config *c = &sh->cfg;
    if (c->n_decoders != 1 || c->in_ch != 3 || c->out_dim != 3 || sh->n_convs != 2 * c->n_resblocks + 2)
        return cu_error(err, LIIF_ERR_UNSUPPORTED, "only plain LIIF models with 3 channels are supported");
    if (sh->B < 1 || sh->h < 1 || sh->w < 1 || sh->Q < 1)
        return cu_error(err, LIIF_ERR_ARG, "bad batch shape");
    char why[400] = "";
    liif_backend *probe = backend_new(why, sizeof why); /* the inference backend's checks and reasons */
    if (!probe) return cu_error(err, LIIF_ERR_UNSUPPORTED, "%s", why);
    probe->destroy(probe);
    liif_cuda_trainer *t = (liif_cuda_trainer *)calloc(1, sizeof *t);
    if (!t) return cu_error(err, LIIF_ERR_NOMEM, "out of host memory");
    liif_status s = train_init(t, sh, params, m, v, step, fast, err);
    if (s) {
        train_free(t);
        return s;
    }
    *out = t;
    return LIIF_OK;
}

static liif_status train_forward(liif_cuda_trainer *t, const float *inp, const float *coord, const float *cell,
                                 const float *gt, liif_error *err)
{
    cudaStream_t st = t->cx.st;
    int B = t->B, h = t->h, w = t->w, C = t->C, L = t->L, OC = t->OC;
    size_t npx = t->npx, nq = t->nq;
    train_mark(t, 0);
    /* pageable uploads return once the source is staged: the caller may refill its buffers */
    CU_TRY(cudaMemcpyAsync(t->inp, inp, npx * C * sizeof(float), cudaMemcpyHostToDevice, st), "uploading the batch");
    CU_TRY(cudaMemcpyAsync(t->coord, coord, nq * 2 * sizeof(float), cudaMemcpyHostToDevice, st), "uploading the batch");
    CU_TRY(cudaMemcpyAsync(t->cell, cell, nq * 2 * sizeof(float), cudaMemcpyHostToDevice, st), "uploading the batch");
    t->have_gt = gt != NULL;
    if (gt) {
        CU_TRY(cudaMemcpyAsync(t->gt, gt, nq * OC * sizeof(float), cudaMemcpyHostToDevice, st), "uploading the batch");
        tk_normalise<<<cu_blocks(nq * OC), CU_THREADS, 0, st>>>(t->gt, t->gt, nq * OC);
        LAUNCH_TRY("normalising the target");
    }
    tk_normalise<<<cu_blocks(npx * C), CU_THREADS, 0, st>>>(t->x, t->inp, npx * C);
    LAUNCH_TRY("normalising the input");
    train_mark(t, 1);
    liif_status s;
    if ((s = tenc_forward(t, t->params, err))) return s;
    train_mark(t, 2);
    /* decoder: P = layer 1's feature columns over every latent, then per row the rest of layer 1 (the geometry,
     * independent of P, first) */
    tk_geometry<<<cu_blocks(nq), CU_THREADS, 0, st>>>(t->coord, t->cell, B, t->Q, h, w, t->cfg.local_ensemble,
                                                       t->cfg.cell_decode, t->K, t->nz, t->lat, t->z, t->wt);
    LAUNCH_TRY("query geometry");
    if ((s = tdec_forward(t, t->params, t->dec_w, t->dec_b, t->cfg.feat_unfold, t->feat, t->P, t->hid, err))) return s;
    if (gt) CU_TRY(cudaMemsetAsync(t->loss, 0, sizeof(double), st), "zeroing the loss");
    float inv = 1.0f / (float)(nq * OC);
    tk_blend_l1<<<cu_blocks(nq), CU_THREADS, 0, st>>>(t->hid[L], t->wt, gt ? t->gt : NULL, nq, t->K, OC, inv, t->pred,
                                                      t->da, t->loss);
    LAUNCH_TRY("blend and L1");
    train_mark(t, 3);
    return LIIF_OK;
}

static liif_status train_backward(liif_cuda_trainer *t, liif_error *err)
{
    if (!t->have_gt) return cu_error(err, LIIF_ERR_ARG, "backward without a forward with a target");
    cudaStream_t st = t->cx.st;
    liif_status s;
    CU_TRY(cudaMemsetAsync(t->grads, 0, t->n_params * sizeof(float), st), "zeroing the gradients");
    CU_TRY(cudaMemsetAsync(t->dfeat, 0, t->nf * sizeof(float), st), "zeroing dfeat");
    /* the decoder from d pred (in da), the precompute's feature gradient into dfeat */
    if ((s = tdec_backward(t, t->params, t->grads, t->dec_w, t->dec_b, t->cfg.feat_unfold, t->feat, t->hid, t->da,
                           t->db, t->dP, t->dfeat, 0.0f, err)))
        return s;
    train_mark(t, 4);
    if ((s = tenc_backward(t, t->params, t->grads, t->dfeat, NULL, -1, err))) return s;
    train_mark(t, 5);
    return LIIF_OK;
}

static liif_status train_adam(liif_cuda_trainer *t, double lr, double beta1, double beta2, double eps, liif_error *err)
{
    liif_status s =
        tadam(t->cx.st, t->params, t->grads, t->m, t->v, t->n_trainable, &t->step, lr, beta1, beta2, eps, err);
    if (s) return s;
    train_mark(t, 6);
    return LIIF_OK;
}

static liif_status train_wait(liif_cuda_trainer *t, float *loss, float *pred, liif_error *err)
{
    CU_TRY(cudaStreamSynchronize(t->cx.st), "training step");
    train_account(t);
    if (loss) {
        double sum = 0.0;
        if (t->have_gt) CU_TRY(cudaMemcpy(&sum, t->loss, sizeof sum, cudaMemcpyDeviceToHost), "reading the loss");
        *loss = (float)(sum / (double)(t->nq * t->OC));
    }
    if (pred) CU_TRY(cudaMemcpy(pred, t->pred, t->nq * t->OC * sizeof(float), cudaMemcpyDeviceToHost), "reading pred");
    return LIIF_OK;
}

static liif_status train_download(liif_cuda_trainer *t, float *params, float *grads, float *m, float *v, float *dfeat,
                                  int64_t *step, liif_error *err)
{
    CU_TRY(cudaStreamSynchronize(t->cx.st), "training step");
    const char *what = "downloading the training state";
    if (params) CU_TRY(cudaMemcpy(params, t->params, t->n_params * sizeof(float), cudaMemcpyDeviceToHost), what);
    if (grads) CU_TRY(cudaMemcpy(grads, t->grads, t->n_trainable * sizeof(float), cudaMemcpyDeviceToHost), what);
    if (m) CU_TRY(cudaMemcpy(m, t->m, t->n_trainable * sizeof(float), cudaMemcpyDeviceToHost), what);
    if (v) CU_TRY(cudaMemcpy(v, t->v, t->n_trainable * sizeof(float), cudaMemcpyDeviceToHost), what);
    if (dfeat) CU_TRY(cudaMemcpy(dfeat, t->dfeat, t->nf * sizeof(float), cudaMemcpyDeviceToHost), what);
    if (step) *step = t->step;
    return LIIF_OK;
}

/* ------------------------------------------------------------ test op */

static liif_status op_conv3x3_train_run(cuda_backend *cb, const float *inp, int B, int h, int w, int IC, int OC,
                                        const float *weight, const float *bias, const float *dout, float *out,
                                        float *dinp, float *dweight, float *dbias, int fast, float **dev,
                                        liif_error *err)
{
    size_t npx = (size_t)B * h * w, nw = (size_t)OC * IC * 9;
    size_t sizes[9] = {npx * IC, nw, (size_t)OC, npx * OC, npx * OC, npx * IC, nw, (size_t)OC, npx * 9 * (IC > OC ? IC : OC)};
    for (int i = 0; i < 9; i++) CU_TRY(cudaMalloc(&dev[i], (sizes[i] ? sizes[i] : 1) * sizeof(float)), "test buffers");
    float *d_ones;
    CU_TRY(cudaMalloc(&d_ones, npx * sizeof(float)), "test buffers");
    dev[9] = d_ones;
    tconv_ctx x = {cb->st, cb->blas, dev[8], d_ones, conv_igemm_kind(fast ? LIIF_MATH_TF32 : LIIF_MATH_FP32, cb->sm)};
    BLAS_TRY(cublasSetMathMode(cb->blas, fast ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH), "math mode");
    tk_fill<<<cu_blocks(npx), CU_THREADS, 0, cb->st>>>(d_ones, 1.0f, npx);
    LAUNCH_TRY("fill");
    CU_TRY(cudaMemcpy(dev[0], inp, sizes[0] * sizeof(float), cudaMemcpyHostToDevice), "upload");
    CU_TRY(cudaMemcpy(dev[1], weight, nw * sizeof(float), cudaMemcpyHostToDevice), "upload");
    if (bias) CU_TRY(cudaMemcpy(dev[2], bias, OC * sizeof(float), cudaMemcpyHostToDevice), "upload");
    CU_TRY(cudaDeviceSynchronize(), "upload"); /* the legacy-stream uploads before work on the non-blocking stream */
    liif_status s = tconv_forward(&x, dev[3], dev[0], dev[1], 9 * IC, bias ? dev[2] : NULL, NULL, 0, B, h, w, IC, OC, err);
    if (s) return s;
    CU_TRY(cudaStreamSynchronize(cb->st), "conv forward");
    CU_TRY(cudaMemcpy(out, dev[3], npx * OC * sizeof(float), cudaMemcpyDeviceToHost), "download");
    if (!dout) return LIIF_OK;
    CU_TRY(cudaMemcpy(dev[4], dout, npx * OC * sizeof(float), cudaMemcpyHostToDevice), "upload");
    CU_TRY(cudaMemset(dev[5], 0, sizes[5] * sizeof(float)), "zero");
    CU_TRY(cudaMemset(dev[6], 0, nw * sizeof(float)), "zero");
    CU_TRY(cudaMemset(dev[7], 0, OC * sizeof(float)), "zero");
    CU_TRY(cudaDeviceSynchronize(), "zero"); /* the legacy-stream upload and memsets before the non-blocking stream */
    s = tconv_backward(&x, dinp ? dev[5] : NULL, dev[6], bias ? dev[7] : NULL, dev[4], dev[0], dev[1], 9 * IC, B, h, w,
                       IC, OC, err);
    if (s) return s;
    CU_TRY(cudaStreamSynchronize(cb->st), "conv backward");
    if (dinp) CU_TRY(cudaMemcpy(dinp, dev[5], sizes[5] * sizeof(float), cudaMemcpyDeviceToHost), "download");
    CU_TRY(cudaMemcpy(dweight, dev[6], nw * sizeof(float), cudaMemcpyDeviceToHost), "download");
    if (bias && dbias) CU_TRY(cudaMemcpy(dbias, dev[7], OC * sizeof(float), cudaMemcpyDeviceToHost), "download");
    return LIIF_OK;
}

static liif_status op_conv3x3_train(liif_backend *be, const float *inp, int B, int h, int w, int IC, int OC,
                                    const float *weight, const float *bias, const float *dout, float *out, float *dinp,
                                    float *dweight, float *dbias, int fast, liif_error *err)
{
    cuda_backend *cb = (cuda_backend *)be;
    float *dev[10] = {0};
    liif_status s = op_conv3x3_train_run(cb, inp, B, h, w, IC, OC, weight, bias, dout, out, dinp, dweight, dbias, fast,
                                         dev, err);
    cudaStreamSynchronize(cb->st);
    for (int i = 0; i < 10; i++) cudaFree(dev[i]);
    cublasSetMathMode(cb->blas, CUBLAS_DEFAULT_MATH);
    return s;
}

#endif
