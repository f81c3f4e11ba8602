/* decoder.cuh: the whole bf16 decoder in one kernel, from the layer-1 precompute to the blended prediction: layer 1
 * (precompute row + bias + coordinate/cell columns, ReLU), every hidden GEMM on the tensor cores (wmma, bf16 operands,
 * float32 sums) with its activations kept in shared memory, the last layer and the local-ensemble blend. The
 * per-layer path (query.cuh's kernels around cuBLAS GEMMs) writes and reads every hidden layer's activations in device
 * memory, twice (the GEMM's float32 output, then its bias/ReLU in bf16); here they never leave the SM, and the weights
 * come from L2 in bf16. Same arithmetic as the per-layer bf16 path but for the order of the float32 sums (the GEMM's
 * and the last layer's dot products). Uses conv.cuh's wmma setup (IG_UNROLL, IG_NO_TENSOR_CORES). */
#ifndef LIIF_CUDA_DECODER_CUH
#define LIIF_CUDA_DECODER_CUH

#include "conv.cuh"

/* A block: FD_ROWS (query, shift) rows, query-major, so that a query's shifts are in one warp's 16 rows; warp w owns
 * rows 16w .. 16w + 15 through every layer. Shared memory: the activations [FD_ROWS][FD_LDA] bf16 (padded rows: no
 * bank conflicts), a chunk of FD_KC input columns of a layer's weights [FD_MAXW][FD_LDW] bf16 (B column-major), and a
 * 16 x 16 float32 tile per warp for the epilogues: 96256 bytes, within the 99 KiB an sm_86/sm_89 block may opt into. */
enum {
    FD_ROWS = 128, FD_WARPS = FD_ROWS / 16, FD_THREADS = FD_WARPS * 32, FD_MAXW = 256, FD_LDA = FD_MAXW + 8,
    FD_KC = 32, FD_LDW = FD_KC + 8, FD_MAX_GEMMS = LIIF_MAX_HIDDEN,
    FD_SMEM = FD_ROWS * FD_LDA * 2 + FD_MAXW * FD_LDW * 2 + FD_WARPS * 256 * 4
};

/* One decoder's weights. */
typedef struct {
    /* layer 1 from the precompute: pre (latents, h1), bias b1, coordinate/cell weights wc (n_extra, h1) */
    const float *pre, *b1, *wc;
    int h1;
    /* the hidden GEMM layers: k[g] -> n[g], weights w16[g] [n][k] bf16, biases b[g] */
    int n_gemm, k[FD_MAX_GEMMS], n[FD_MAX_GEMMS];
    const __nv_bfloat16 *w16[FD_MAX_GEMMS];
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

__global__ void __launch_bounds__(FD_THREADS) decoder_bf16_kernel(fd_args args)
{
#ifndef IG_NO_TENSOR_CORES
    extern __shared__ __align__(128) unsigned char fd_smem[];
    __nv_bfloat16 *act = (__nv_bfloat16 *)fd_smem;
    __nv_bfloat16 *wch = act + FD_ROWS * FD_LDA;
    int warp = (int)(threadIdx.x / 32), lane = (int)(threadIdx.x % 32);
    float *stage = (float *)(wch + FD_MAXW * FD_LDW) + warp * 256;
    long row0 = (long)blockIdx.x * FD_ROWS;
    int pr = lane % 16, pc = lane / 16 * 8;
    long row = row0 + warp * 16 + pr;
    float tq[3] = {0.0f, 0.0f, 0.0f}; /* the query's d1 + alpha * d2 so far (lanes that own a query) */

    for (int di = 0; di < args.n_dec; di++) {
        const fd_dec &a = args.dec[di];
        __syncthreads(); /* every warp is done with the last decoder's activations */
        /* layer 1 from the precompute, as layer1_pre_kernel, rounded to bf16; rows past R are zeros */
        for (int i = (int)threadIdx.x; i < FD_ROWS * a.h1; i += FD_THREADS) {
            int r = i / a.h1, k = i % a.h1;
            long rw = row0 + r;
            float v = 0.0f;
            if (rw < args.R) {
                v = __fadd_rn(a.pre[(size_t)args.lat[rw] * a.h1 + k], a.b1[k]);
                for (int e = 0; e < args.n_extra; e++)
                    v = __fadd_rn(v, __fmul_rn(args.extra[4 * rw + e], a.wc[(size_t)e * a.h1 + k]));
                v = v < 0.0f ? 0.0f : v;
            }
            act[r * FD_LDA + k] = __float2bfloat16_rn(v);
        }

        /* the last layer's dot products of this lane's row (lane % 16 of the warp's rows) over its half of each
         * epilogue tile's columns */
        float p[3] = {0.0f, 0.0f, 0.0f};
        for (int g = 0; g < a.n_gemm; g++) {
            int K = a.k[g], N = a.n[g], nj = N / 16, last = g == a.n_gemm - 1;
            const __nv_bfloat16 *W = a.w16[g];
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[FD_MAXW / 16];
            IG_UNROLL
            for (int j = 0; j < FD_MAXW / 16; j++)
                if (j < nj) wmma::fill_fragment(acc[j], 0.0f);
            for (int k0 = 0; k0 < K; k0 += FD_KC) {
                int kc = K - k0 < FD_KC ? K - k0 : FD_KC; /* 16 or 32 */
                __syncthreads(); /* the last chunk's B fragments are loaded (and, the first time, act is written) */
                for (int i = (int)threadIdx.x; i < N * kc; i += FD_THREADS) {
                    int n = i / kc, kk = i % kc;
                    wch[n * FD_LDW + kk] = W[(size_t)n * K + k0 + kk];
                }
                __syncthreads();
                for (int kk = 0; kk < kc; kk += 16) {
                    wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa;
                    wmma::load_matrix_sync(fa, act + warp * 16 * FD_LDA + k0 + kk, FD_LDA);
                    IG_UNROLL
                    for (int j = 0; j < FD_MAXW / 16; j++) {
                        if (j >= nj) break;
                        wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> fb;
                        wmma::load_matrix_sync(fb, wch + j * 16 * FD_LDW + kk, FD_LDW);
                        wmma::mma_sync(acc[j], fa, fb, acc[j]);
                    }
                }
            }
            /* epilogue, a 16 x 16 tile at a time: + bias, ReLU; into the warp's own rows of act in bf16 (the next
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
                        act[(warp * 16 + i / 16) * FD_LDA + n] = __float2bfloat16_rn(v < 0.0f ? 0.0f : v);
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

#endif
