/* decoder.cuh: the whole decoder in one kernel, from the layer-1 precompute to the blended prediction: layer 1
 * (precompute row + bias + coordinate/cell columns, ReLU), every hidden GEMM on the tensor cores (wmma, bf16 or TF32
 * operands, float32 sums) with its activations kept in shared memory, the last layer and the local-ensemble blend.
 * The per-layer path (query.cuh's kernels around cuBLAS GEMMs) writes and reads every hidden layer's activations in
 * device memory (the GEMM's float32 output, then its bias/ReLU); here they never leave the SM, and the weights come
 * from L2 in the operand type. Same arithmetic as the per-layer path of the same precision but for the order of the
 * float32 sums (the GEMM's and the last layer's dot products); TF32 operands are rounded to nearest, as cuBLAS's TF32
 * GEMMs round them. Uses conv.cuh's operand kinds (igemm_bf16, igemm_tf32) and wmma setup. */
#ifndef LIIF_CUDA_DECODER_CUH
#define LIIF_CUDA_DECODER_CUH

#include "conv.cuh"

/* A block: ROWS (query, shift) rows, query-major, so that a query's shifts are in one warp's 16 rows; warp w owns
 * rows 16w .. 16w + 15 through every layer. Shared memory: the activations [ROWS][LDA] (operand type, padded rows: no
 * bank conflicts), a chunk of KC input columns of a layer's weights [FD_MAXW][LDW] (B column-major), and a 16 x 16
 * float32 tile per warp for the epilogues: within the 99 KiB an sm_86/sm_89 block may opt into. bf16 (T = igemm_bf16):
 * 128 rows, 32-column weight chunks, 96256 bytes; TF32 (igemm_tf32, operands as floats): 64 rows, 16 columns, 91136. */
enum { FD_MAXW = 256, FD_MAX_GEMMS = LIIF_MAX_HIDDEN };
template <class T> struct fd_shape;
template <> struct fd_shape<igemm_bf16> {
    enum { ROWS = 128, KC = 32, PAD = 8 };
};
template <> struct fd_shape<igemm_tf32> {
    enum { ROWS = 64, KC = 16, PAD = 4 };
};
template <class T> struct fd_dims {
    enum {
        ROWS = fd_shape<T>::ROWS, KC = fd_shape<T>::KC, WARPS = ROWS / 16, THREADS = WARPS * 32,
        LDA = FD_MAXW + fd_shape<T>::PAD, LDW = KC + fd_shape<T>::PAD,
        SMEM = (ROWS * LDA + FD_MAXW * LDW) * (int)sizeof(typename T::smem_t) + WARPS * 256 * 4
    };
};

/* One decoder's weights. */
typedef struct {
    /* layer 1 from the precompute: pre (latents, h1), bias b1, coordinate/cell weights wc (n_extra, h1) */
    const float *pre, *b1, *wc;
    int h1;
    /* the hidden GEMM layers: k[g] -> n[g], weights w[g] [n][k] in the operand type (T::smem_t, rounded), biases
     * b[g] */
    int n_gemm, k[FD_MAX_GEMMS], n[FD_MAX_GEMMS];
    const void *w[FD_MAX_GEMMS];
    const float *b[FD_MAX_GEMMS];
    /* the last layer [3][n[n_gemm - 1]], its bias */
    const float *wl, *bl;
} fd_dec;

/* A launch: decoders first .. first + n_dec - 1 (LIIF-GAN's two in one pass: the geometry is read once, the blend
 * is summed in registers and total written once). */
typedef struct {
    fd_dec dec[2];
    int n_dec, n_extra;
    /* the job: geometry (lat, extra, weight per row), R rows, ns shifts per query; total (R / ns, 3) receives
     * d1 + alpha * d2 of the decoders run (first = 1: decoder 1 is among them; 0: total + alpha * d2) */
    const int *lat;
    const float *extra, *weight;
    long R;
    int ns, first;
    float alpha;
    float *total;
} fd_args;

/* Whether the fused decoder takes widths h1 -> n[0] -> ... : every width a multiple of 16, at most FD_MAXW, at least
 * one hidden GEMM and at most FD_MAX_GEMMS. */
static int fd_shape_ok(const liif_mlp *mlp)
{
    int last = mlp->n_layers - 1; /* hidden GEMMs: layers 1 .. last - 1 */
    if (last < 2 || last - 1 > FD_MAX_GEMMS || mlp->dims[last + 1] != 3) return 0;
    for (int l = 1; l <= last; l++)
        if (mlp->dims[l] % 16 || mlp->dims[l] > FD_MAXW) return 0;
    return 1;
}

/* y (n) = x rounded to TF32 (floats with the low 13 bits zero): the TF32 decoder's weights. */
__global__ void to_tf32_kernel(const float *x, size_t n, float *y)
{
#ifndef IG_NO_TENSOR_CORES
    for (size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x; idx < n; idx += (size_t)gridDim.x * blockDim.x)
        y[idx] = igemm_tf32::cvt(x[idx]);
#endif
}

template <class T> __global__ void __launch_bounds__(fd_dims<T>::THREADS) decoder_kernel(fd_args args)
{
#ifndef IG_NO_TENSOR_CORES
    typedef typename T::smem_t E;
    typedef fd_dims<T> D;
    extern __shared__ __align__(128) unsigned char fd_smem[];
    E *act = (E *)fd_smem;
    E *wch = act + D::ROWS * D::LDA;
    int warp = (int)(threadIdx.x / 32), lane = (int)(threadIdx.x % 32);
    float *stage = (float *)(wch + FD_MAXW * D::LDW) + warp * 256;
    long row0 = (long)blockIdx.x * D::ROWS;
    int pr = lane % 16, pc = lane / 16 * 8;
    long row = row0 + warp * 16 + pr;
    float tq[3] = {0.0f, 0.0f, 0.0f}; /* the query's d1 + alpha * d2 so far (lanes that own a query) */

    for (int di = 0; di < args.n_dec; di++) {
        const fd_dec &a = args.dec[di];
        __syncthreads(); /* every warp is done with the last decoder's activations */
        /* layer 1 from the precompute, as layer1_pre_kernel, rounded to the operand type; rows past R are zeros */
        for (int i = (int)threadIdx.x; i < D::ROWS * a.h1; i += D::THREADS) {
            int r = i / a.h1, k = i % a.h1;
            long rw = row0 + r;
            float v = 0.0f;
            if (rw < args.R) {
                v = __fadd_rn(a.pre[(size_t)args.lat[rw] * a.h1 + k], a.b1[k]);
                for (int e = 0; e < args.n_extra; e++)
                    v = __fadd_rn(v, __fmul_rn(args.extra[4 * rw + e], a.wc[(size_t)e * a.h1 + k]));
                v = v < 0.0f ? 0.0f : v;
            }
            act[r * D::LDA + k] = T::cvt(v);
        }

        /* the last layer's dot products of this lane's row (lane % 16 of the warp's rows) over its half of each
         * epilogue tile's columns */
        float p[3] = {0.0f, 0.0f, 0.0f};
        for (int g = 0; g < a.n_gemm; g++) {
            int K = a.k[g], N = a.n[g], nj = N / 16, last = g == a.n_gemm - 1;
            const E *W = (const E *)a.w[g];
            wmma::fragment<wmma::accumulator, 16, 16, T::KK, float> acc[FD_MAXW / 16];
            IG_UNROLL
            for (int j = 0; j < FD_MAXW / 16; j++)
                if (j < nj) wmma::fill_fragment(acc[j], 0.0f);
            for (int k0 = 0; k0 < K; k0 += D::KC) {
                int kc = K - k0 < D::KC ? K - k0 : D::KC; /* a multiple of 16 */
                __syncthreads(); /* the last chunk's B fragments are loaded (and, the first time, act is written) */
                for (int i = (int)threadIdx.x; i < N * kc; i += D::THREADS) {
                    int n = i / kc, kk = i % kc;
                    wch[n * D::LDW + kk] = W[(size_t)n * K + k0 + kk];
                }
                __syncthreads();
                for (int kk = 0; kk < kc; kk += T::KK) {
                    wmma::fragment<wmma::matrix_a, 16, 16, T::KK, typename T::frag_t, wmma::row_major> fa;
                    wmma::load_matrix_sync(fa, act + warp * 16 * D::LDA + k0 + kk, D::LDA);
                    IG_UNROLL
                    for (int j = 0; j < FD_MAXW / 16; j++) {
                        if (j >= nj) break;
                        wmma::fragment<wmma::matrix_b, 16, 16, T::KK, typename T::frag_t, wmma::col_major> fb;
                        wmma::load_matrix_sync(fb, wch + j * 16 * D::LDW + kk, D::LDW);
                        wmma::mma_sync(acc[j], fa, fb, acc[j]);
                    }
                }
            }
            /* epilogue, a 16 x 16 tile at a time: + bias, ReLU; into the warp's own rows of act, rounded (the next
             * GEMM's operand: only this warp reads them), or, after the last GEMM, in float32 into the last layer */
            IG_UNROLL
            for (int j = 0; j < FD_MAXW / 16; j++) {
                if (j >= nj) break;
                wmma::store_matrix_sync(stage, acc[j], 16, wmma::mem_row_major);
                __syncwarp();
                if (!last) {
                    for (int i = lane; i < 256; i += 32) {
                        int n = j * 16 + i % 16;
                        float v = __fadd_rn(stage[i], a.b[g][n]);
                        act[(warp * 16 + i / 16) * D::LDA + n] = T::cvt(v < 0.0f ? 0.0f : v);
                    }
                } else {
                    for (int c = pc; c < pc + 8; c++) {
                        int n = j * 16 + c;
                        float v = __fadd_rn(stage[pr * 16 + c], a.b[g][n]);
                        v = v < 0.0f ? 0.0f : v;
                        for (int o = 0; o < 3; o++) p[o] = __fadd_rn(p[o], __fmul_rn(a.wl[(size_t)o * N + n], v));
                    }
                }
                __syncwarp(); /* the tile is read before the next one is stored */
            }
        }

        /* the last layer (the two halves of each row's dot products, + bias) and the blend of a query's ns consecutive
         * rows in shift order, as last_blend_kernel */
        float wt = row < args.R ? args.weight[row] : 0.0f, c[3];
        for (int o = 0; o < 3; o++) {
            p[o] = __fadd_rn(p[o], __shfl_xor_sync(0xffffffffu, p[o], 16));
            c[o] = __fmul_rn(__fadd_rn(p[o], a.bl[o]), wt);
        }
        int base = lane - pr % args.ns; /* the query's first row, in this half-warp */
        float dq[3] = {0.0f, 0.0f, 0.0f};
        for (int s = 0; s < args.ns; s++)
            for (int o = 0; o < 3; o++) dq[o] = __fadd_rn(dq[o], __shfl_sync(0xffffffffu, c[o], base + s));
        /* the order of the two-launch sum: total = d1, then total + alpha * d2 */
        for (int o = 0; o < 3; o++)
            tq[o] = args.first && di == 0 ? dq[o] : __fadd_rn(tq[o], __fmul_rn(args.alpha, dq[o]));
    }

    if (lane < 16 && pr % args.ns == 0 && row < args.R) {
        float *t = args.total + (size_t)(row / args.ns) * 3;
        if (!args.first) /* decoder 2 alone: onto decoder 1's total */
            for (int o = 0; o < 3; o++) tq[o] = __fadd_rn(t[o], tq[o]);
        for (int o = 0; o < 3; o++) t[o] = tq[o];
    }
#endif
}

/* The bits (1 << LIIF_MATH_*) of the kinds whose fused decoder got the shared memory it needs (above the default
 * 48 KiB: an opt-in per kernel). */
static int fd_grant(void)
{
    return (cudaFuncSetAttribute(decoder_kernel<igemm_bf16>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 fd_dims<igemm_bf16>::SMEM) == cudaSuccess) << LIIF_MATH_BF16 |
           (cudaFuncSetAttribute(decoder_kernel<igemm_tf32>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 fd_dims<igemm_tf32>::SMEM) == cudaSuccess) << LIIF_MATH_TF32;
}

/* The fused decoder of kind bf16 (else TF32) on a's rows; the launch's error. */
static cudaError_t fd_launch(int bf16, const fd_args &a, cudaStream_t st)
{
    if (bf16) {
        typedef fd_dims<igemm_bf16> D;
        decoder_kernel<igemm_bf16><<<(unsigned long)((a.R + D::ROWS - 1) / D::ROWS), D::THREADS, D::SMEM, st>>>(a);
    } else {
        typedef fd_dims<igemm_tf32> D;
        decoder_kernel<igemm_tf32><<<(unsigned long)((a.R + D::ROWS - 1) / D::ROWS), D::THREADS, D::SMEM, st>>>(a);
    }
    return cudaGetLastError();
}

#endif
