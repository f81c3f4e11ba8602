/* conv.cuh: 3x3 convolution, two ways:
 *  - im2col + cuBLAS GEMM with a bias/residual/ReLU epilogue kernel: float32, TF32 (the handle's math mode) or bf16
 *    operands; the reference path, and the only one for float32, for the encoder's head (3 input channels) and on GPUs
 *    before sm_80;
 *  - an implicit-GEMM kernel on the tensor cores (wmma; TF32 or bf16 operands, float32 sums) that reads the input
 *    tile from shared memory instead of an im2col matrix in device memory, with the bias, residual and ReLU in its
 *    epilogue: one pass over the input and the output per convolution. */
#ifndef LIIF_CUDA_CONV_CUH
#define LIIF_CUDA_CONV_CUH

#include <cuda_bf16.h>
#include <mma.h>

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

/* ------------------------------------------------------------ implicit GEMM on the tensor cores */

using namespace nvcuda;

/* The two operand kinds: per step of the K loop, KK input channels of every pixel (32 bytes), staged in shared memory
 * already rounded to the operand type (TF32 values are floats with 13 low bits zero). */
struct igemm_bf16 {
    typedef __nv_bfloat16 frag_t;
    typedef __nv_bfloat16 smem_t;
    enum { KK = 16 };
    static __device__ __forceinline__ smem_t cvt(float v) { return __float2bfloat16_rn(v); }
};
#ifdef __CUDACC__
#define IG_UNROLL _Pragma("unroll")
#else
#define IG_UNROLL /* host C++ (the emulation) */
#endif
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#define IG_NO_TENSOR_CORES 1 /* this pass of nvcc: the kernel's body is empty, its types stand-ins */
#endif
struct igemm_tf32 {
#ifndef IG_NO_TENSOR_CORES
    typedef wmma::precision::tf32 frag_t;
    static __device__ __forceinline__ float cvt(float v) { return wmma::__float_to_tf32(v); }
#else
    typedef float frag_t;
    static __device__ __forceinline__ float cvt(float v) { return v; }
#endif
    typedef float smem_t;
    enum { KK = 8 };
};

/* A block computes a 16 x 16 pixel tile for 64 output channels with 8 warps, each warp two tile rows of 16 pixels
 * (two A fragments) x 64 channels (four B fragments, eight accumulators). Shared memory, for each step of KK
 * channels: the tile's input with its 1-pixel halo (18 x 18 x KK) and the weights of those channels for the 9 taps
 * and 64 outputs ([tap][out][KK]: B column-major); after the K loop the same bytes stage the accumulators for the
 * epilogue (8 warps x 16 pixels x 64 outputs). */
enum {
    IG_T = 16, IG_BN = 64, IG_WARPS = 8, IG_THREADS = IG_WARPS * 32, IG_HALO = (IG_T + 2) * (IG_T + 2),
    IG_LOOP_BYTES = (IG_HALO + 9 * IG_BN) * 32, IG_STAGE_BYTES = IG_WARPS * 16 * IG_BN * 4,
    IG_SMEM = IG_LOOP_BYTES > IG_STAGE_BYTES ? IG_LOOP_BYTES : IG_STAGE_BYTES
};

/* out (B, h, w, cout) = act(conv3x3(in (B, h, w, cin)) + bias + res), the weight of output n, tap t (ky * 3 + kx)
 * and input channel c at wp[n * sn + t * stp + c * sc] (strides of any sign: the inference's [cout, 9, cin], the
 * trainer's OIHW, or OIHW flipped and transposed for a data gradient); cin a multiple of K::KK, cout of 16 (the last
 * column block may have fewer than IG_BN); blocks: B images times tiles (tiles_x per row) times nbn =
 * ceil(cout / IG_BN) column blocks; out must not alias in (it may be res: each element reads res before it writes). Sums: float32 on the tensor cores over (tap, channel) in the order of the K loop, then + bias + res as the
 * im2col path's epilogue. sm_80 and later (elsewhere the body is empty and conv_run does not launch it). */
template <class K>
__global__ void __launch_bounds__(IG_THREADS) conv3x3_igemm_kernel(const float *in, int h, int w, int cin,
                                                                    const float *wp, long sn, long stp, long sc,
                                                                    int cout, const float *bias, const float *res,
                                                                    int relu, float *out, int tiles_x, int tiles,
                                                                    int nbn)
{
#ifndef IG_NO_TENSOR_CORES
    typedef typename K::smem_t S;
    enum { KK = K::KK };
    __shared__ __align__(128) unsigned char smem[IG_SMEM];
    S *halo = (S *)smem;             /* [IG_HALO][KK] */
    S *wt = halo + IG_HALO * KK;     /* [9][IG_BN][KK] */
    float *stage = (float *)smem;    /* after the K loop: [IG_WARPS][16][IG_BN] */
    int nb = (int)(blockIdx.x % (unsigned)nbn), tile = (int)(blockIdx.x / (unsigned)nbn % (unsigned)tiles);
    size_t img = blockIdx.x / ((unsigned)nbn * (unsigned)tiles), npx = (size_t)h * w;
    in += img * npx * cin;
    out += img * npx * cout;
    if (res) res += img * npx * cout;
    int ty0 = tile / tiles_x * IG_T, tx0 = tile % tiles_x * IG_T, n0 = nb * IG_BN;
    int nn = cout - n0 < IG_BN ? cout - n0 : IG_BN, nj = nn / 16; /* this block's outputs, in fragments */
    int warp = (int)(threadIdx.x / 32), lane = (int)(threadIdx.x % 32);
    /* acc is indexed by constants only (unrolled loops, j < nj as a test), or it would live in local memory */
    wmma::fragment<wmma::accumulator, 16, 16, KK, float> acc[2][4];
    IG_UNROLL
    for (int r = 0; r < 2; r++)
        IG_UNROLL
        for (int j = 0; j < 4; j++) wmma::fill_fragment(acc[r][j], 0.0f);
    for (int c0 = 0; c0 < cin; c0 += KK) {
        __syncthreads(); /* the previous step's fragments are loaded */
        for (int i = (int)threadIdx.x; i < IG_HALO * KK; i += IG_THREADS) {
            int px = i / KK, k = i % KK, y = ty0 + px / (IG_T + 2) - 1, x = tx0 + px % (IG_T + 2) - 1;
            halo[i] = K::cvt(y >= 0 && y < h && x >= 0 && x < w ? in[((size_t)y * w + x) * cin + c0 + k] : 0.0f);
        }
        for (int i = (int)threadIdx.x; i < 9 * IG_BN * KK; i += IG_THREADS) {
            int t = i / (IG_BN * KK), n = i / KK % IG_BN, k = i % KK;
            wt[i] = K::cvt(n < nn ? wp[(n0 + n) * sn + t * stp + (c0 + k) * sc] : 0.0f);
        }
        __syncthreads();
        for (int t = 0; t < 9; t++) { /* tap (ky, kx): tile row R reads halo row R + ky from column kx on */
            wmma::fragment<wmma::matrix_a, 16, 16, KK, typename K::frag_t, wmma::row_major> a[2];
            IG_UNROLL
            for (int r = 0; r < 2; r++)
                wmma::load_matrix_sync(a[r], halo + ((warp * 2 + r + t / 3) * (IG_T + 2) + t % 3) * KK, KK);
            IG_UNROLL
            for (int j = 0; j < 4; j++) {
                if (j >= nj) break;
                wmma::fragment<wmma::matrix_b, 16, 16, KK, typename K::frag_t, wmma::col_major> b;
                wmma::load_matrix_sync(b, wt + (t * IG_BN + j * 16) * KK, KK);
                wmma::mma_sync(acc[0][j], a[0], b, acc[0][j]);
                wmma::mma_sync(acc[1][j], a[1], b, acc[1][j]);
            }
        }
    }
    float *mine = stage + warp * 16 * IG_BN;
    IG_UNROLL
    for (int r = 0; r < 2; r++) {
        __syncthreads(); /* the K loop's (or the last row's) reads of these bytes are done */
        IG_UNROLL
        for (int j = 0; j < 4; j++)
            if (j < nj) wmma::store_matrix_sync(mine + j * 16, acc[r][j], IG_BN, wmma::mem_row_major);
        __syncthreads();
        int y = ty0 + warp * 2 + r;
        for (int i = lane; i < 16 * IG_BN; i += 32) {
            int x = tx0 + i / IG_BN, n = n0 + i % IG_BN;
            if (y >= h || x >= w || i % IG_BN >= nn) continue;
            size_t o = ((size_t)y * w + x) * cout + n;
            float v = __fadd_rn(__fadd_rn(mine[i], bias ? bias[n] : 0.0f), res ? res[o] : 0.0f);
            out[o] = relu && v < 0.0f ? 0.0f : v;
        }
    }
#endif
}

/* The kind of implicit-GEMM convolutions for a run of LIIF_MATH_* kind math on a device of compute capability sm:
 * the kind itself for TF32 and bf16 on sm_80 and later, unless the environment has LIIF_CUDA_CONV=im2col (for
 * benchmarks: the im2col path is the reference); else 0 (im2col + GEMM). */
static int conv_igemm_kind(int math, int sm)
{
    const char *env = getenv("LIIF_CUDA_CONV");
    if (env && strcmp(env, "im2col") == 0) return 0;
    return (math == LIIF_MATH_TF32 || math == LIIF_MATH_BF16) && sm >= 80 ? math : 0;
}

/* The implicit-GEMM convolution (weights as conv3x3_igemm_kernel's) for a kind of conv_igemm_kind, when it applies:
 * TF32 or bf16 (math), cin a multiple of the step's channels, cout of 16, out not aliasing in. 1 if it ran (or
 * failed: *s says), 0 if it does not apply. */
/* Whether the implicit-GEMM kernel of kind math takes a 3x3 convolution of cin -> cout channels. */
static int conv_igemm_takes(int math, int cin, int cout)
{
    int kk = math == LIIF_MATH_BF16 ? (int)igemm_bf16::KK : math == LIIF_MATH_TF32 ? (int)igemm_tf32::KK : 0;
    return kk && cin % kk == 0 && cout % 16 == 0;
}

static int conv_igemm(cudaStream_t st, int math, const float *in, int B, int h, int w, int cin, const float *wp,
                      long sn, long stp, long sc, const float *bias, const float *res, int relu, int cout, float *out,
                      liif_status *s, liif_error *err)
{
    if (!conv_igemm_takes(math, cin, cout) || out == in || B < 1 || h < 1 || w < 1) return 0;
    int tiles_x = (w + IG_T - 1) / IG_T, tiles = tiles_x * ((h + IG_T - 1) / IG_T), nbn = (cout + IG_BN - 1) / IG_BN;
    unsigned long blocks = (unsigned long)B * tiles * nbn;
    if (math == LIIF_MATH_BF16)
        conv3x3_igemm_kernel<igemm_bf16><<<blocks, IG_THREADS, 0, st>>>(in, h, w, cin, wp, sn, stp, sc, cout, bias, res,
                                                                          relu, out, tiles_x, tiles, nbn);
    else
        conv3x3_igemm_kernel<igemm_tf32><<<blocks, IG_THREADS, 0, st>>>(in, h, w, cin, wp, sn, stp, sc, cout, bias, res,
                                                                          relu, out, tiles_x, tiles, nbn);
    cudaError_t e = cudaGetLastError();
    *s = e == cudaSuccess ? LIIF_OK
                          : cu_error(err, LIIF_ERR_UNSUPPORTED, "CUDA: implicit-GEMM convolution: %s", cudaGetErrorString(e));
    return 1;
}

/* out (h, w, cout) = act(conv(in (h, w, cin)) + bias + res) with ksize 3 (wp [cout, 9, cin]) or
 * ksize 1 (wp [cout, cin]); wp rows ldw apart. igemm: the LIIF_MATH_* kind of the implicit-GEMM kernel where it
 * applies (conv_igemm), 0 for im2col + GEMM only. Else col holds col_px pixels of im2col at a time; h16: bf16
 * operands (gemm_rows_run), NULL: float32 or TF32. */
static liif_status conv_run(cudaStream_t st, cublasHandle_t blas, dbuf *h16, int igemm, const float *in, int h, int w,
                            int cin, int ksize, const float *wp, int ldw, const float *bias, const float *res, int relu,
                            int cout, float *out, float *col, size_t col_px, liif_error *err)
{
    liif_status is = LIIF_OK;
    if (ksize == 3 && igemm &&
        conv_igemm(st, igemm, in, 1, h, w, cin, wp, ldw, cin, 1, bias, res, relu, cout, out, &is, err))
        return is;
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
