/* query.cuh: query geometry (coordinates, nearest latents, ensemble weights), MLP input gather, layer-1
 * from the precompute, bias/ReLU, last layer with the local-ensemble blend, and the output clamp. */
#ifndef LIIF_CUDA_QUERY_CUH
#define LIIF_CUDA_QUERY_CUH

#include <cuda_bf16.h>

#include "common.cuh"

/* Device twins of internal.h's liif_coord / liif_nearest / liif_shifted: the same float32 (and
 * double) operations in the same order, each rounded on its own (explicit _rn intrinsics, and the
 * module is compiled with -fmad=false), so that ties round exactly as PyTorch's do. */
__device__ static float cu_coord(int i, int n)
{
    float v0 = (float)__dadd_rn(-1.0, __ddiv_rn(1.0, (double)n));
    float step = (float)__ddiv_rn(2.0, (double)n);
    return __fadd_rn(v0, __fmul_rn(step, (float)i));
}

__device__ static int cu_nearest(float c, int n)
{
    float t = __fsub_rn(__fmul_rn(__fadd_rn(c, 1.0f), __fmul_rn((float)n, 0.5f)), 0.5f);
    int i = (int)rintf(t); /* round half to even, as nearbyintf in the default rounding mode */
    return i < 0 ? 0 : (i >= n ? n - 1 : i);
}

__device__ static float cu_shifted(float q, int v, int n, int ensemble)
{
    float s = ensemble ? (float)__dadd_rn(__dmul_rn((double)v, __ddiv_rn(__ddiv_rn(2.0, (double)n), 2.0)), 1e-6) : 0.0f;
    float c = __fadd_rn(q, s);
    const float lo = (float)(-1.0 + 1e-6), hi = (float)(1.0 - 1e-6);
    return c < lo ? lo : (c > hi ? hi : c);
}

/* The geometry of a decode job, what every later kernel of the decoder reads. */
typedef struct {
    int H, W, h, w, ty, tx, tw, y0, x0, cols;
    int ensemble, ns;   /* local ensemble on; shifts per query (4 or 1) */
    float cell_r, cell_c;
} geom_args;

/* One thread per query: its ns (query, shift) rows in reference order. lat (R) tile-local latent,
 * ij (R, 2) global latent, extra (R, 4) rel_r, rel_c, cell_r, cell_c, weight (R) blend weight. */
__global__ void geometry_kernel(geom_args g, long nq, int *lat, int *ij, float *extra, float *weight)
{
    const int vs_ens[2] = {-1, 1};
    int nv = g.ensemble ? 2 : 1;
    for (long q = blockIdx.x * (long)blockDim.x + threadIdx.x; q < nq; q += (long)gridDim.x * blockDim.x) {
        int r = (int)(q / g.cols), col = (int)(q % g.cols);
        float qr = cu_coord(g.y0 + r, g.H), qc = cu_coord(g.x0 + col, g.W);
        float area[4];
        for (int a = 0, k = 0; a < nv; a++)
            for (int b = 0; b < nv; b++, k++) {
                int va = g.ensemble ? vs_ens[a] : 0, vb = g.ensemble ? vs_ens[b] : 0;
                int i = cu_nearest(cu_shifted(qr, va, g.h, g.ensemble), g.h);
                int j = cu_nearest(cu_shifted(qc, vb, g.w, g.ensemble), g.w);
                float rr = __fmul_rn(__fsub_rn(qr, cu_coord(i, g.h)), (float)g.h);
                float rc = __fmul_rn(__fsub_rn(qc, cu_coord(j, g.w)), (float)g.w);
                long row = q * g.ns + k;
                lat[row] = (i - g.ty) * g.tw + (j - g.tx);
                ij[2 * row] = i;
                ij[2 * row + 1] = j;
                extra[4 * row] = rr;
                extra[4 * row + 1] = rc;
                extra[4 * row + 2] = g.cell_r;
                extra[4 * row + 3] = g.cell_c;
                area[k] = __fadd_rn(fabsf(__fmul_rn(rr, rc)), 1e-9f);
            }
        if (g.ns == 1) {
            weight[q] = __fdiv_rn(area[0], area[0]);
        } else {
            float tot = __fadd_rn(__fadd_rn(__fadd_rn(area[0], area[1]), area[2]), area[3]);
            for (int k = 0; k < 4; k++) weight[q * 4 + k] = __fdiv_rn(area[3 - k], tot);
        }
    }
}

/* The plain layer-1 input x (R, in_dim): 9 neighbour feature vectors in the permuted [9][F] order
 * (zeros outside the image), or the feature alone without unfold, then the n_extra extras; into x16 as
 * bf16 instead when x16 is not NULL. */
__global__ void gather_kernel(const float *feat, int F, int unfold, int in_dim, int h, int w, int ty, int tx, int tw,
                              const int *lat, const int *ij, const float *extra, long R, float *x, __nv_bfloat16 *x16)
{
    int base = F * (unfold ? 9 : 1);
    size_t total = (size_t)R * in_dim;
    for (size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x; idx < total; idx += (size_t)gridDim.x * blockDim.x) {
        size_t r = idx / in_dim;
        int c = (int)(idx % in_dim);
        float v;
        if (c >= base) v = extra[4 * r + (c - base)];
        else if (!unfold) v = feat[(size_t)lat[r] * F + c];
        else {
            int k = c / F, ch = c % F;
            int y = ij[2 * r] + k / 3 - 1, xx = ij[2 * r + 1] + k % 3 - 1;
            v = (y < 0 || y >= h || xx < 0 || xx >= w) ? 0.0f : feat[((size_t)(y - ty) * tw + (xx - tx)) * F + ch];
        }
        if (x16) x16[idx] = __float2bfloat16_rn(v);
        else x[idx] = v;
    }
}

/* Layer 1 from the precompute: hid (R, out) = relu(pre[lat] + bias + sum_e extra_e * wc[e]), wc (n_extra, out);
 * into hid16 as bf16 instead when hid16 is not NULL (the next layer's GEMM operand). */
__global__ void layer1_pre_kernel(const float *pre, const float *bias, const float *wc, int out, int n_extra,
                                  const int *lat, const float *extra, long R, float *hid, __nv_bfloat16 *hid16)
{
    size_t total = (size_t)R * out;
    for (size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x; idx < total; idx += (size_t)gridDim.x * blockDim.x) {
        size_t r = idx / out;
        int k = (int)(idx % out);
        float v = __fadd_rn(pre[(size_t)lat[r] * out + k], bias[k]);
        for (int e = 0; e < n_extra; e++) v = __fadd_rn(v, __fmul_rn(extra[4 * r + e], wc[(size_t)e * out + k]));
        v = v < 0.0f ? 0.0f : v;
        if (hid16) hid16[idx] = __float2bfloat16_rn(v);
        else hid[idx] = v;
    }
}

/* y (rows, n) = act(y + bias); into y16 (another buffer) as bf16 instead when y16 is not NULL. */
__global__ void bias_act_kernel(float *y, size_t rows, int n, const float *bias, int relu, __nv_bfloat16 *y16)
{
    size_t total = rows * n;
    for (size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x; idx < total; idx += (size_t)gridDim.x * blockDim.x) {
        float v = __fadd_rn(y[idx], bias[idx % n]);
        v = relu && v < 0.0f ? 0.0f : v;
        if (y16) y16[idx] = __float2bfloat16_rn(v);
        else y[idx] = v;
    }
}

/* The last layer (k -> 3) and the ensemble blend, one warp per query: pred_s = w . hid[q*ns+s] + b,
 * dq = sum_s pred_s * weight_s (in shift order), then total[q] = dq (first decoder) or
 * total[q] + alpha * dq. hid (nq * ns, k), w [3, k], total (nq, 3). */
__global__ void last_blend_kernel(const float *hid, int k, const float *w, const float *b, const float *weight, int ns,
                                  long nq, int first, float alpha, float *total)
{
    int lane = threadIdx.x & 31;
    long warps = (long)gridDim.x * (blockDim.x / 32);
    for (long q = (blockIdx.x * (long)blockDim.x + threadIdx.x) / 32; q < nq; q += warps) {
        float dq[3] = {0.0f, 0.0f, 0.0f};
        for (int s = 0; s < ns; s++) {
            const float *v = hid + ((size_t)q * ns + s) * k;
            float acc[3] = {0.0f, 0.0f, 0.0f};
            for (int i = lane; i < k; i += 32)
                for (int o = 0; o < 3; o++) acc[o] = __fadd_rn(acc[o], __fmul_rn(w[(size_t)o * k + i], v[i]));
            for (int off = 16; off > 0; off >>= 1)
                for (int o = 0; o < 3; o++) acc[o] = __fadd_rn(acc[o], __shfl_xor_sync(0xffffffffu, acc[o], off));
            float wt = weight[(size_t)q * ns + s];
            for (int o = 0; o < 3; o++) dq[o] = __fadd_rn(dq[o], __fmul_rn(__fadd_rn(acc[o], b[o]), wt));
        }
        if (lane < 3) {
            float *t = total + (size_t)q * 3 + lane;
            *t = first ? dq[lane] : __fadd_rn(*t, __fmul_rn(alpha, dq[lane]));
        }
    }
}

/* rgb (n) = clamp(total * 0.5 + 0.5, 0, 1), the denormalisation; without the clamp when `unclamped`. */
__global__ void output_kernel(const float *total, size_t n, float *rgb, int unclamped)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float p = __fadd_rn(__fmul_rn(total[i], 0.5f), 0.5f);
        rgb[i] = unclamped ? p : (p < 0.0f ? 0.0f : (p > 1.0f ? 1.0f : p));
    }
}

#endif
