/* train_gan.cuh: LIIF-GAN training on the GPU, the twin of core/train/gan_step.c: the two-decoder
 * generator on RGS patches (train.cuh's encoder and decoder kernels), the discriminator (k x k convs by
 * im2col + cuBLAS, BatchNorm in train mode, LeakyReLU, Linear, BCE with logits), VGG19's perceptual loss
 * (vgg.cuh), the loss assembly with its gradient blocking, and Adam on both networks. Included after train.cuh. */
#ifndef LIIF_CUDA_TRAIN_GAN_CUH
#define LIIF_CUDA_TRAIN_GAN_CUH

#include "train.cuh"

/* Letters as core/train/gan_step.h and core/train/disc.h: B batch, C channels (3), h w LR sides, F features, P patch
 * side, Q = P*P queries per sample, K shifts, n = B*C*Q patch values; discriminator stage i has ic -> oc
 * channels, sides Sin -> Sout, N = B*Sout*Sout output pixels, kk = ic*k*k im2col columns.
 * Layouts: the generator's maps channels-last (B,h,w,F) as train.cuh; the patches handed between the
 * generator and D (d1, d2, fake01, gt, their gradients) NCHW (B,C,P,P) as on the CPU; D's maps NHWC
 * (N, oc) so that a conv is one GEMM and BatchNorm reduces a column; its Linear reads the last map in
 * PyTorch's NCHW flatten order (gk_flatten), so D's weights keep the CPU's flat layout.
 * Names: gk_* kernels, cg_* host functions (CUDA GAN: the CPU's gan_* have the same roles). */

/* ------------------------------------------------------------ reductions */

/* Sum of v over the block, returned to every thread (blockDim.x a multiple of 32, at most 1024). */
static __device__ double gk_block_allsum(double v)
{
    __shared__ double part[32];
    __shared__ double total;
    for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads(); /* part and total may still be read by an earlier call */
    if (lane == 0) part[warp] = v;
    __syncthreads();
    if (threadIdx.x == 0) {
        double s = 0.0;
        for (int i = 0; i < (int)(blockDim.x + 31) / 32; i++) s += part[i];
        total = s;
    }
    __syncthreads();
    return total;
}

/* ------------------------------------------------------------ generator-side kernels */

/* dst (B,HW,C) = (src (B,C,HW) - 0.5) / 0.5: the NCHW LR batch to the encoder's normalised channels-last input. */
static __global__ void gk_nchw_to_nhwc_norm(const float *src, int B, int C, int HW, float *dst)
{
    GRID_LOOP(idx, (size_t)B * HW * C) {
        int c = (int)(idx % C);
        size_t bi = idx / C, b = bi / HW, i = bi % HW;
        dst[idx] = __fdiv_rn(__fsub_rn(src[(b * C + c) * HW + i], 0.5f), 0.5f);
    }
}

/* pred (B,OC,Q) NCHW = sum_k out (rows, OC) * wt (rows): the local-ensemble blend of liif_blend_forward,
 * written in the patch layout (bqc_to_nchw of gan_step.c). */
static __global__ void gk_blend(const float *out, const float *wt, int B, int Q, int K, int OC, float *pred)
{
    GRID_LOOP(idx, (size_t)B * Q * OC) {
        int o = (int)(idx % OC);
        size_t bq = idx / OC, b = bq / Q, q = bq % Q;
        float acc = 0.0f;
        for (int k = 0; k < K; k++) acc = __fadd_rn(acc, __fmul_rn(out[(bq * K + k) * OC + o], wt[bq * K + k]));
        pred[(b * OC + o) * Q + q] = acc;
    }
}

/* dout (rows, OC) = dpred * wt with dpred (B,OC,Q) NCHW: liif_blend_backward after nchw_to_bqc (writes). */
static __global__ void gk_blend_backward(const float *dpred, const float *wt, int B, int Q, int K, int OC, float *dout)
{
    GRID_LOOP(idx, (size_t)B * Q * K * OC) {
        int o = (int)(idx % OC);
        size_t row = idx / OC, bq = row / K, b = bq / Q, q = bq % Q;
        dout[idx] = __fmul_rn(dpred[(b * OC + o) * Q + q], wt[row]);
    }
}

/* The images of gan_step_generator over n values: gt_norm = (gt - 0.5) / 0.5, ip = d1 + d2 (d2 NULL:
 * LIIF-GAN-S, ip = d1), fake01 = ip * 0.5 + 0.5; *l1 += sum |d1 - gt_norm| (double); dd1 = the L_D1
 * gradient sign(d1 - gt_norm) * g (g = c_d1 / n in float; 0 everywhere when use_d1 is 0). */
static __global__ void gk_images(const float *d1, const float *d2, const float *gt, size_t n, int use_d1, float g,
                                 float *fake01, float *dd1, double *l1)
{
    double sum = 0.0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float gn = __fdiv_rn(__fsub_rn(gt[i], 0.5f), 0.5f);
        float ip = d2 ? __fadd_rn(d1[i], d2[i]) : d1[i];
        fake01[i] = __fadd_rn(__fmul_rn(ip, 0.5f), 0.5f);
        float diff = __fsub_rn(d1[i], gn);
        sum += (double)fabsf(diff);
        dd1[i] = use_d1 ? (diff > 0.0f ? g : (diff < 0.0f ? -g : 0.0f)) : 0.0f;
    }
    double s = gk_block_allsum(sum);
    if (threadIdx.x == 0) atomicAdd(l1, s);
}

/* dd2 (n) = dfake01 * 0.5 (d fake01 / d ip = 0.5, and d ip / d d2 = 1); with dd1 (LIIF-GAN-S) also
 * dd1 += dd2: every term reaches the one decoder. */
static __global__ void gk_dd2(const float *dfake01, size_t n, float *dd2, float *dd1)
{
    GRID_LOOP(i, n) {
        float v = __fmul_rn(dfake01[i], 0.5f);
        dd2[i] = v;
        if (dd1) dd1[i] = __fadd_rn(dd1[i], v);
    }
}

/* Feature matching on one D stage (n values): *loss += sum |act - real| * inv_n (double) when loss is not NULL;
 * dact += sign(act - real) * g (g = scale / 8 / n in float, nn_l1_backward's) when dact is not NULL. */
static __global__ void gk_fm(const float *act, const float *real, size_t n, double inv_n, double *loss, float g,
                             float *dact)
{
    double sum = 0.0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float diff = __fsub_rn(act[i], real[i]);
        if (loss) sum += (double)fabsf(diff);
        if (dact) dact[i] = __fadd_rn(dact[i], diff > 0.0f ? g : (diff < 0.0f ? -g : 0.0f));
    }
    if (!loss) return;
    double s = gk_block_allsum(sum);
    if (threadIdx.x == 0) atomicAdd(loss, s * inv_n);
}

/* ------------------------------------------------------------ discriminator kernels */

/* Element (b, c, y, x) of a map sits at b*sb + c*sc + y*sy + x*sx: one im2col for NCHW and NHWC inputs. */
typedef struct {
    size_t sb, sc, sy, sx;
} gk_layout;

static gk_layout gk_nchw(int C, int H, int W) { return gk_layout{(size_t)C * H * W, (size_t)H * W, (size_t)W, 1}; }
static gk_layout gk_nhwc(int C, int H, int W) { return gk_layout{(size_t)H * W * C, 1, (size_t)W * C, (size_t)C}; }

/* col (B*OH*OW, IC*k*k), column ic*k*k + ky*k + kx (OIHW order) = inp[b, ic, oy*stride + ky - pad,
 * ox*stride + kx - pad], zero outside. */
static __global__ void gk_im2col(const float *inp, gk_layout L, int B, int IC, int H, int W, int k, int stride,
                                 int pad, int OH, int OW, float *col)
{
    size_t kk = (size_t)IC * k * k;
    GRID_LOOP(idx, (size_t)B * OH * OW * kk) {
        size_t p = idx / kk;
        int r = (int)(idx % kk), ic = r / (k * k), ky = r % (k * k) / k, kx = r % k;
        int ox = (int)(p % OW), oy = (int)(p / OW % OH);
        size_t b = p / ((size_t)OW * OH);
        int iy = oy * stride + ky - pad, ix = ox * stride + kx - pad;
        col[idx] = (iy < 0 || iy >= H || ix < 0 || ix >= W) ? 0.0f : inp[b * L.sb + ic * L.sc + iy * L.sy + ix * L.sx];
    }
}

/* dinp (B,IC,H,W in layout L) = the adjoint of gk_im2col applied to dcol, as a gather (WRITES). */
static __global__ void gk_col2im(const float *dcol, gk_layout L, int B, int IC, int H, int W, int k, int stride,
                                 int pad, int OH, int OW, float *dinp)
{
    size_t kk = (size_t)IC * k * k;
    GRID_LOOP(idx, (size_t)B * H * W * IC) {
        int ic = (int)(idx % IC);
        size_t p = idx / IC;
        int x = (int)(p % W), y = (int)(p / W % H);
        size_t b = p / ((size_t)W * H);
        float acc = 0.0f;
        for (int ky = 0; ky < k; ky++) {
            int ty = y + pad - ky; /* = oy * stride for the output row whose tap ky reads row y */
            if (ty < 0 || ty % stride) continue;
            int oy = ty / stride;
            if (oy >= OH) continue;
            for (int kx = 0; kx < k; kx++) {
                int tx = x + pad - kx;
                if (tx < 0 || tx % stride) continue;
                int ox = tx / stride;
                if (ox >= OW) continue;
                acc = __fadd_rn(acc, dcol[((b * OH + oy) * OW + ox) * kk + (size_t)ic * k * k + ky * k + kx]);
            }
        }
        dinp[b * L.sb + ic * L.sc + (size_t)y * L.sy + (size_t)x * L.sx] = acc;
    }
}

/* x (n) = LeakyReLU(x) in place; with src, from src (x = lrelu(src)). */
static __global__ void gk_lrelu(float *x, const float *src, size_t n, float slope)
{
    GRID_LOOP(i, n) {
        float v = src ? src[i] : x[i];
        x[i] = v > 0.0f ? v : __fmul_rn(slope, v);
    }
}

/* d (n) = out > 0 ? d : slope * d, the LeakyReLU's backward on its output (slope > 0), in place. */
static __global__ void gk_lrelu_backward(float *d, const float *out, size_t n, float slope)
{
    GRID_LOOP(i, n) d[i] = out[i] > 0.0f ? d[i] : __fmul_rn(slope, d[i]);
}

/* BatchNorm in training mode, one block per channel c of pre (N, C) NHWC, then LeakyReLU (slope > 0):
 * nn_batchnorm_forward's arithmetic (double sums, two passes, float normalisation, running stats with the
 * unbiased variance; running_mean / running_var may be NULL). */
static __global__ void gk_bn_forward(const float *pre, size_t N, int C, const float *gamma, const float *beta,
                                     float *running_mean, float *running_var, float momentum, float eps, float slope,
                                     float *mean, float *rstd, float *act)
{
    int c = blockIdx.x;
    if (c >= C) return; /* whole block: the reductions below see every thread of the blocks that stay */
    double s = 0.0;
    for (size_t i = threadIdx.x; i < N; i += blockDim.x) s += pre[i * C + c];
    double n = (double)N, mu = gk_block_allsum(s) / n, ss = 0.0;
    for (size_t i = threadIdx.x; i < N; i += blockDim.x) {
        double d = pre[i * C + c] - mu;
        ss += d * d;
    }
    ss = gk_block_allsum(ss);
    double var = ss / n;
    float m = (float)mu, r = (float)(1.0 / sqrt(var + (double)eps));
    if (threadIdx.x == 0) {
        mean[c] = m;
        rstd[c] = r;
        float keep = 1.0f - momentum;
        if (running_mean) running_mean[c] = __fadd_rn(__fmul_rn(keep, running_mean[c]), __fmul_rn(momentum, m));
        if (running_var) {
            float unbiased = (float)(N > 1 ? ss / (n - 1.0) : ss);
            running_var[c] = __fadd_rn(__fmul_rn(keep, running_var[c]), __fmul_rn(momentum, unbiased));
        }
    }
    float g = gamma[c], b = beta[c];
    for (size_t i = threadIdx.x; i < N; i += blockDim.x) {
        float v = __fadd_rn(__fmul_rn(__fmul_rn(__fsub_rn(pre[i * C + c], m), r), g), b);
        act[i * C + c] = slope > 0.0f ? (v > 0.0f ? v : __fmul_rn(slope, v)) : v;
    }
}

/* BatchNorm's backward, one block per channel: dinp (N, C) WRITES gamma rstd (d - mean(d) - xhat mean(d xhat)),
 * dgamma += sum d xhat and dbeta += sum d when not NULL (nn_batchnorm_backward's arithmetic). */
static __global__ void gk_bn_backward(const float *dout, const float *pre, const float *mean, const float *rstd,
                                      const float *gamma, size_t N, int C, float *dgamma, float *dbeta, float *dinp)
{
    int c = blockIdx.x;
    if (c >= C) return;
    float m = mean[c], r = rstd[c];
    double sd = 0.0, sdx = 0.0;
    for (size_t i = threadIdx.x; i < N; i += blockDim.x) {
        float d = dout[i * C + c];
        sd += d;
        sdx += (double)d * __fmul_rn(__fsub_rn(pre[i * C + c], m), r);
    }
    sd = gk_block_allsum(sd);
    sdx = gk_block_allsum(sdx);
    if (threadIdx.x == 0) {
        if (dgamma) dgamma[c] = __fadd_rn(dgamma[c], (float)sdx);
        if (dbeta) dbeta[c] = __fadd_rn(dbeta[c], (float)sd);
    }
    double n = (double)N;
    float g = __fmul_rn(gamma[c], r), md = (float)(sd / n), mdx = (float)(sdx / n);
    for (size_t i = threadIdx.x; i < N; i += blockDim.x) {
        float xhat_mdx = __fmul_rn(__fmul_rn(__fsub_rn(pre[i * C + c], m), r), mdx);
        dinp[i * C + c] = __fmul_rn(g, __fsub_rn(__fsub_rn(dout[i * C + c], md), xhat_mdx));
    }
}

/* flat (B, C*SS) in NCHW order (c*SS + s) from act (B, SS, C) NHWC: what PyTorch's flatten feeds linear1. */
static __global__ void gk_flatten(const float *act, int B, int SS, int C, float *flat)
{
    GRID_LOOP(idx, (size_t)B * SS * C) {
        int c = (int)(idx % C);
        size_t bs = idx / C, b = bs / SS, s = bs % SS;
        flat[(b * C + c) * SS + s] = act[idx];
    }
}

/* dact (B, SS, C) NHWC = dflat (B, C*SS) back in the map's order (WRITES). */
static __global__ void gk_unflatten(const float *dflat, int B, int SS, int C, float *dact)
{
    GRID_LOOP(idx, (size_t)B * SS * C) {
        int c = (int)(idx % C);
        size_t bs = idx / C, b = bs / SS, s = bs % SS;
        dact[idx] = dflat[(b * C + c) * SS + s];
    }
}

/* Mean BCE with logits of z (n) against target into *loss (double, nn_bce_logits_forward before its float
 * rounding); dz (n) WRITES scale * (sigmoid(z) - target) / n (nn_bce_logits_backward). One thread: n is the
 * batch size. */
static __global__ void gk_bce(const float *z, int n, float target, float scale, double *loss, float *dz)
{
    if (blockIdx.x || threadIdx.x) return;
    double s = 0.0;
    for (int i = 0; i < n; i++) {
        double x = z[i];
        s += (x > 0 ? x : 0) - x * target + log1p(exp(-fabs(x)));
        double sig = 1.0 / (1.0 + exp(-x));
        if (dz) dz[i] = (float)((double)scale * (sig - target) / (double)n);
    }
    *loss = s / (double)n;
}

/* ------------------------------------------------------------ discriminator layers (host side) */

/* out (N, OC) NHWC = conv(inp (B,IC,H,W in layout L)) + bias (or NULL), N = B*OH*OW. */
static liif_status gconv_forward(const tconv_ctx *x, float *out, const float *inp, gk_layout L, const float *W,
                                 const float *bias, int B, int IC, int H, int Wd, int OC, int k, int stride, int pad,
                                 liif_error *err)
{
    int OH = (H + 2 * pad - k) / stride + 1, OW = (Wd + 2 * pad - k) / stride + 1, kk = IC * k * k;
    size_t N = (size_t)B * OH * OW;
    gk_im2col<<<cu_blocks(N * kk), CU_THREADS, 0, x->st>>>(inp, L, B, IC, H, Wd, k, stride, pad, OH, OW, x->col);
    LAUNCH_TRY("discriminator im2col");
    BLAS_TRY(tg_nt(x->blas, (int)N, OC, kk, x->col, kk, W, kk, 0.0f, out, OC), "discriminator conv sgemm");
    if (bias) {
        tk_bias_act<<<cu_blocks(N * OC), CU_THREADS, 0, x->st>>>(out, N, OC, bias, NULL, 0);
        LAUNCH_TRY("discriminator conv bias");
    }
    return LIIF_OK;
}

/* From dout (N, OC) NHWC: dW (OC, kk) and db (OC) += (either NULL: skipped), dinp (layout L) WRITTEN (NULL:
 * skipped). */
static liif_status gconv_backward(const tconv_ctx *x, float *dinp, float *dW, float *db, const float *dout,
                                  const float *inp, gk_layout L, const float *W, int B, int IC, int H, int Wd, int OC,
                                  int k, int stride, int pad, liif_error *err)
{
    int OH = (H + 2 * pad - k) / stride + 1, OW = (Wd + 2 * pad - k) / stride + 1, kk = IC * k * k;
    size_t N = (size_t)B * OH * OW;
    if (dW) {
        gk_im2col<<<cu_blocks(N * kk), CU_THREADS, 0, x->st>>>(inp, L, B, IC, H, Wd, k, stride, pad, OH, OW, x->col);
        LAUNCH_TRY("discriminator im2col");
        BLAS_TRY(tg_tn_acc(x->blas, (int)N, OC, kk, dout, OC, x->col, kk, dW, kk), "discriminator dW sgemm");
    }
    if (db) BLAS_TRY(tg_colsum(x->blas, (int)N, OC, dout, x->ones, db), "discriminator db sgemv");
    if (!dinp) return LIIF_OK;
    BLAS_TRY(tg_nn(x->blas, (int)N, OC, kk, dout, OC, W, kk, 0.0f, x->col, kk), "discriminator dinp sgemm");
    gk_col2im<<<cu_blocks((size_t)B * H * Wd * IC), CU_THREADS, 0, x->st>>>(x->col, L, B, IC, H, Wd, k, stride, pad,
                                                                           OH, OW, dinp);
    LAUNCH_TRY("discriminator col2im");
    return LIIF_OK;
}

/* out (N, OC) = inp (N, IC) @ W^T + bias, then LeakyReLU when slope > 0. */
static liif_status glinear_forward(const tconv_ctx *x, float *out, const float *inp, const float *W, const float *bias,
                                   int N, int IC, int OC, float slope, liif_error *err)
{
    BLAS_TRY(tg_nt(x->blas, N, OC, IC, inp, IC, W, IC, 0.0f, out, OC), "discriminator linear sgemm");
    tk_bias_act<<<cu_blocks((size_t)N * OC), CU_THREADS, 0, x->st>>>(out, (size_t)N, OC, bias, NULL, 0);
    LAUNCH_TRY("discriminator linear bias");
    if (slope > 0.0f) {
        gk_lrelu<<<cu_blocks((size_t)N * OC), CU_THREADS, 0, x->st>>>(out, NULL, (size_t)N * OC, slope);
        LAUNCH_TRY("discriminator LeakyReLU");
    }
    return LIIF_OK;
}

/* From dout (N, OC) (the gradient after the activation: the caller ran gk_lrelu_backward): dW, db +=
 * (NULL: skipped), dinp (N, IC) WRITTEN (NULL: skipped). */
static liif_status glinear_backward(const tconv_ctx *x, float *dinp, float *dW, float *db, const float *dout,
                                    const float *inp, const float *W, int N, int IC, int OC, liif_error *err)
{
    if (dW) BLAS_TRY(tg_tn_acc(x->blas, N, OC, IC, dout, OC, inp, IC, dW, IC), "discriminator linear dW sgemm");
    if (db) BLAS_TRY(tg_colsum(x->blas, N, OC, dout, x->ones, db), "discriminator linear db sgemv");
    if (dinp) BLAS_TRY(tg_nn(x->blas, N, OC, IC, dout, OC, W, IC, 0.0f, dinp, IC), "discriminator linear dx sgemm");
    return LIIF_OK;
}

#include "vgg.cuh" /* uses gk_block_allsum */

/* ------------------------------------------------------------ the GAN trainer */

/* 83 fixed device buffers plus 3 + (n_hidden + 1) per decoder: 99 at most with LIIF_MAX_HIDDEN 8 */
enum { GAN_MAX_ALLOCS = 128, GAN_MARKS = LIIF_GAN_PHASES + 1 };

typedef struct {
    float *P, *dP;                       /* (npx, H0) layer-1 precompute and its gradient */
    float *hid[LIIF_MAX_HIDDEN + 1];     /* (rows, dims[l+1]) */
    float *pred;                         /* (B,C,P,P) the decoder's output, normalised range */
} gan_dec;

struct liif_cuda_gan_trainer {
    liif_cuda_gan_shape sh;              /* conv_w / conv_b point at the copies below */
    int B, h, w, P, Q, R, F, C, K, nz, base, D, H0, L, OC, nd;
    int src[2];                          /* per decoder: 0 mid-layer, 1 last-layer features */
    int dims[LIIF_MAX_HIDDEN + 2];
    size_t npx, nf, nq, rows, nimg;
    size_t *conv_w, *conv_b;
    int side[LIIF_CUDA_DISC_STAGES + 1]; /* D's sides: side[i] into stage i, side[i+1] out */
    int64_t g_step, d_step;
    tconv_ctx cx;
    void *allocs[GAN_MAX_ALLOCS];
    int n_allocs;
    /* parameters, gradients, Adam moments */
    float *gp, *gg, *gm, *gv, *dp, *dg, *dm, *dv;
    /* generator */
    float *lr, *x, *t, *r, *feat, *z, *wt, *da, *db, *coord, *cell, *dsrc[2], *dt, *dr;
    int *lat;
    gan_dec dec[2];
    /* patches (B,C,P,P) */
    float *gt, *fake01, *dd1, *dd2, *dfake01;
    /* discriminator activations: pre (BN input) and act (after BN and LeakyReLU), NHWC (N_i, oc) */
    float *pre[LIIF_CUDA_DISC_STAGES], *act[LIIF_CUDA_DISC_STAGES];
    float *mean[LIIF_CUDA_DISC_STAGES], *rstd[LIIF_CUDA_DISC_STAGES];
    float *fm_real[LIIF_CUDA_DISC_STAGES];  /* act of the generator half's D(real): feature matching's targets */
    float *flat, *h1, *logits, *dz, *dh1, *dflat, *s3[3];
    const float *d_in;                   /* the last D forward's input (B,C,P,P) */
    double *acc;                         /* [0] sum |d1 - gt|, [1..3] BCE means: generator half, real, fake,
                                          * [4] sum over D's stages of mean |act - fm_real|, [5] sum |VGG(fake) -
                                          * VGG(real)| */
    int has_vgg;                         /* the perceptual term's network is on the device */
    vgg_dev vgg;
    liif_cuda_gan_step last;             /* the last step's settings, for its losses */
    int marks;
    cudaEvent_t ev[GAN_MARKS];
    liif_cuda_gan_profile prof;
};

static void cg_mark(liif_cuda_gan_trainer *t, int i) { tprof_mark(t->cx.st, t->ev, &t->marks, i); }

static void cg_account(liif_cuda_gan_trainer *t)
{
    tprof_account(t->ev, &t->marks, LIIF_GAN_PHASES, t->prof.ms, &t->prof.steps);
}

static void cg_profile(const liif_cuda_gan_trainer *t, liif_cuda_gan_profile *out) { *out = t->prof; }

static cudaError_t cg_alloc(liif_cuda_gan_trainer *t, void *pp, size_t bytes)
{
    return tdev_alloc(t->allocs, &t->n_allocs, GAN_MAX_ALLOCS, pp, bytes);
}

static void cg_free(liif_cuda_gan_trainer *t)
{
    if (!t) return;
    tdev_release(&t->cx, t->ev, GAN_MARKS, t->allocs, t->n_allocs);
    free(t->conv_w);
    free(t->conv_b);
    free(t);
}

/* Stage i of D: k, stride, in and out channels (padding 1 everywhere, MODEL.md 2.2). */
static void cg_stage(const liif_cuda_gan_trainer *t, int i, int *k, int *stride, int *ic, int *oc)
{
    *k = i % 2 ? 4 : 3;
    *stride = i % 2 ? 2 : 1;
    *ic = i ? t->sh.d_width[i - 1] : t->C;
    *oc = t->sh.d_width[i];
}

enum { GAN_ACC = 6 };

static liif_status cg_init(liif_cuda_gan_trainer *t, const liif_cuda_gan_shape *sh, const float *g_params,
                            const float *g_m, const float *g_v, const float *d_params, const float *d_m,
                            const float *d_v, const float *vgg_params, int fast, liif_error *err)
{
    const liif_config *c = &sh->cfg;
    t->sh = *sh;
    t->B = sh->B; t->h = sh->h; t->w = sh->w; t->P = sh->P; t->Q = sh->P * sh->P; t->nd = c->n_decoders;
    liif_status st = tgen_init(t, c, sh->n_convs, sh->conv_w, sh->conv_b, err);
    if (st) return st;
    t->sh.conv_w = t->conv_w;
    t->sh.conv_b = t->conv_b;
    for (int d = 0; d < t->nd; d++) {
        t->src[d] = c->dec_source[d] == LIIF_FEAT_MID ? 0 : 1;
        if (!t->src[d] && (c->mid_block < 0 || c->mid_block >= t->R))
            return cu_error(err, LIIF_ERR_MODEL, "mid-layer block %d outside 0..%d", c->mid_block, t->R - 1);
    }
    t->side[0] = t->P;
    for (int i = 0; i < LIIF_CUDA_DISC_STAGES; i++) {
        int k, s, ic, oc;
        cg_stage(t, i, &k, &s, &ic, &oc);
        t->side[i + 1] = (t->side[i] + 2 - k) / s + 1;
    }
    int S7 = t->side[LIIF_CUDA_DISC_STAGES];
    if (sh->d_flat != sh->d_width[LIIF_CUDA_DISC_STAGES - 1] * S7 * S7)
        return cu_error(err, LIIF_ERR_MODEL, "discriminator: linear1 takes %d inputs, not %d x %d x %d", sh->d_flat,
                        sh->d_width[LIIF_CUDA_DISC_STAGES - 1], S7, S7);
    t->nimg = t->nq * t->C;
    size_t vgg_bytes = 0;
    t->has_vgg = sh->vgg.n_modules > 0;
    if (t->has_vgg && (st = vgg_plan(&t->vgg, &sh->vgg, t->B, t->P, t->P, &vgg_bytes, err))) return st;
    if ((st = tdev_start(&t->cx, t->ev, GAN_MARKS, fast, err))) return st;

    /* sizes: the im2col scratch serves the encoder, the precompute and every D stage */
    size_t npx = t->npx, nf = t->nf, rows = t->rows, nimg = t->nimg, B = (size_t)t->B;
    int maxic = t->F > t->C ? t->F : t->C, maxw = 0;
    for (int l = 0; l <= t->L; l++) maxw = t->dims[l + 1] > maxw ? t->dims[l + 1] : maxw;
    size_t col = npx * 9 * maxic, ones = npx > rows ? npx : rows, maxmap = nimg;
    for (int i = 0; i < LIIF_CUDA_DISC_STAGES; i++) {
        int k, s, ic, oc;
        cg_stage(t, i, &k, &s, &ic, &oc);
        size_t N = B * t->side[i + 1] * t->side[i + 1];
        col = N * ic * k * k > col ? N * ic * k * k : col;
        ones = N > ones ? N : ones;
        maxmap = N * oc > maxmap ? N * oc : maxmap;
        maxmap = B * t->side[i] * t->side[i] * ic > maxmap ? B * t->side[i] * t->side[i] * ic : maxmap;
    }
    col = t->vgg.col > col ? t->vgg.col : col;
    const char *what = "allocating the GAN trainer's device memory";
    size_t gn = sh->g_n_params, dn = sh->d_n_params, dt = sh->d_n_trainable;
    CU_TRY(cg_alloc(t, &t->gp, gn * sizeof(float)), what);
    CU_TRY(cg_alloc(t, &t->gg, gn * sizeof(float)), what);
    CU_TRY(cg_alloc(t, &t->gm, gn * sizeof(float)), what);
    CU_TRY(cg_alloc(t, &t->gv, gn * sizeof(float)), what);
    CU_TRY(cg_alloc(t, &t->dp, dn * sizeof(float)), what);
    CU_TRY(cg_alloc(t, &t->dg, dn * sizeof(float)), what);
    CU_TRY(cg_alloc(t, &t->dm, dt * sizeof(float)), what);
    CU_TRY(cg_alloc(t, &t->dv, dt * sizeof(float)), what);
    CU_TRY(cg_alloc(t, &t->lr, npx * t->C * sizeof(float)), what);
    CU_TRY(cg_alloc(t, &t->x, npx * t->C * sizeof(float)), what);
    CU_TRY(cg_alloc(t, &t->t, (size_t)(t->R + 1) * nf * sizeof(float)), what);
    CU_TRY(cg_alloc(t, &t->r, (size_t)(t->R > 0 ? t->R : 1) * nf * sizeof(float)), what);
    CU_TRY(cg_alloc(t, &t->feat, nf * sizeof(float)), what);
    CU_TRY(cg_alloc(t, &t->cx.col, col * sizeof(float)), what);
    CU_TRY(cg_alloc(t, &t->cx.ones, ones * sizeof(float)), what);
    CU_TRY(cg_alloc(t, &t->z, rows * t->nz * sizeof(float)), what);
    CU_TRY(cg_alloc(t, &t->wt, rows * sizeof(float)), what);
    CU_TRY(cg_alloc(t, &t->lat, rows * sizeof(int)), what);
    CU_TRY(cg_alloc(t, &t->da, rows * maxw * sizeof(float)), what);
    CU_TRY(cg_alloc(t, &t->db, rows * maxw * sizeof(float)), what);
    CU_TRY(cg_alloc(t, &t->coord, t->nq * 2 * sizeof(float)), what);
    CU_TRY(cg_alloc(t, &t->cell, t->nq * 2 * sizeof(float)), what);
    CU_TRY(cg_alloc(t, &t->dsrc[0], nf * sizeof(float)), what);
    CU_TRY(cg_alloc(t, &t->dsrc[1], nf * sizeof(float)), what);
    CU_TRY(cg_alloc(t, &t->dt, nf * sizeof(float)), what);
    CU_TRY(cg_alloc(t, &t->dr, nf * sizeof(float)), what);
    for (int d = 0; d < t->nd; d++) {
        gan_dec *dc = &t->dec[d];
        CU_TRY(cg_alloc(t, &dc->P, npx * t->H0 * sizeof(float)), what);
        CU_TRY(cg_alloc(t, &dc->dP, npx * t->H0 * sizeof(float)), what);
        CU_TRY(cg_alloc(t, &dc->pred, nimg * sizeof(float)), what);
        for (int l = 0; l <= t->L; l++) CU_TRY(cg_alloc(t, &dc->hid[l], rows * t->dims[l + 1] * sizeof(float)), what);
    }
    CU_TRY(cg_alloc(t, &t->gt, nimg * sizeof(float)), what);
    CU_TRY(cg_alloc(t, &t->fake01, nimg * sizeof(float)), what);
    CU_TRY(cg_alloc(t, &t->dd1, nimg * sizeof(float)), what);
    CU_TRY(cg_alloc(t, &t->dd2, nimg * sizeof(float)), what);
    CU_TRY(cg_alloc(t, &t->dfake01, nimg * sizeof(float)), what);
    for (int i = 0; i < LIIF_CUDA_DISC_STAGES; i++) {
        size_t n = B * t->side[i + 1] * t->side[i + 1] * sh->d_width[i];
        CU_TRY(cg_alloc(t, &t->pre[i], n * sizeof(float)), what);
        CU_TRY(cg_alloc(t, &t->act[i], n * sizeof(float)), what);
        CU_TRY(cg_alloc(t, &t->fm_real[i], n * sizeof(float)), what);
        CU_TRY(cg_alloc(t, &t->mean[i], sh->d_width[i] * sizeof(float)), what);
        CU_TRY(cg_alloc(t, &t->rstd[i], sh->d_width[i] * sizeof(float)), what);
    }
    for (int i = 0; i < 3; i++) CU_TRY(cg_alloc(t, &t->s3[i], maxmap * sizeof(float)), what);
    CU_TRY(cg_alloc(t, &t->flat, B * sh->d_flat * sizeof(float)), what);
    CU_TRY(cg_alloc(t, &t->dflat, B * sh->d_flat * sizeof(float)), what);
    CU_TRY(cg_alloc(t, &t->h1, B * sh->d_hidden * sizeof(float)), what);
    CU_TRY(cg_alloc(t, &t->dh1, B * sh->d_hidden * sizeof(float)), what);
    CU_TRY(cg_alloc(t, &t->logits, 3 * B * sizeof(float)), what);
    CU_TRY(cg_alloc(t, &t->dz, B * sizeof(float)), what);
    CU_TRY(cg_alloc(t, &t->acc, GAN_ACC * sizeof(double)), what);
    if (t->has_vgg) {
        float *vp;
        void *mem;
        CU_TRY(cg_alloc(t, &vp, sh->vgg.n_params * sizeof(float)), what);
        CU_TRY(cg_alloc(t, &mem, vgg_bytes), what);
        vgg_carve(&t->vgg, mem, vp);
        CU_TRY(cudaMemcpy(vp, vgg_params, sh->vgg.n_params * sizeof(float), cudaMemcpyHostToDevice),
               "uploading VGG19");
    }

    tk_fill<<<cu_blocks(ones), CU_THREADS, 0, t->cx.st>>>(t->cx.ones, 1.0f, ones);
    LAUNCH_TRY("filling ones");
    CU_TRY(cudaMemcpy(t->gp, g_params, gn * sizeof(float), cudaMemcpyHostToDevice), "uploading the generator");
    if ((st = tdev_put(t->gm, g_m, gn, "uploading Adam's m", "zeroing Adam's m", err))) return st;
    if ((st = tdev_put(t->gv, g_v, gn, "uploading Adam's v", "zeroing Adam's v", err))) return st;
    CU_TRY(cudaMemcpy(t->dp, d_params, dn * sizeof(float), cudaMemcpyHostToDevice), "uploading the discriminator");
    if ((st = tdev_put(t->dm, d_m, dt, "uploading D's Adam m", "zeroing D's Adam m", err))) return st;
    if ((st = tdev_put(t->dv, d_v, dt, "uploading D's Adam v", "zeroing D's Adam v", err))) return st;
    CU_TRY(cudaMemset(t->gg, 0, gn * sizeof(float)), "zeroing the gradients");
    CU_TRY(cudaMemset(t->dg, 0, dn * sizeof(float)), "zeroing the gradients");
    CU_TRY(cudaMemset(t->acc, 0, GAN_ACC * sizeof(double)), "zeroing the losses");
    CU_TRY(cudaMemset(t->logits, 0, 3 * B * sizeof(float)), "zeroing the logits");
    /* the copies and memsets above ran on the legacy stream, which the non-blocking trainer stream does not wait
     * for (and a pageable upload may return before its DMA ends): the whole device */
    CU_TRY(cudaDeviceSynchronize(), "starting the GAN trainer");
    return LIIF_OK;
}

static liif_status cg_new(const liif_cuda_gan_shape *sh, const float *g_params, const float *g_m, const float *g_v,
                           int64_t g_step, const float *d_params, const float *d_m, const float *d_v, int64_t d_step,
                           const float *vgg_params, int fast, liif_cuda_gan_trainer **out, liif_error *err)
{
    *out = NULL;
    const liif_config *c = &sh->cfg;
    if (c->n_decoders < 1 || c->n_decoders > 2 || c->in_ch != 3 || c->out_dim != 3 ||
        sh->n_convs != 2 * c->n_resblocks + 2)
        return cu_error(err, LIIF_ERR_UNSUPPORTED, "only LIIF-GAN generators with 3 channels are supported");
    if (sh->B < 1 || sh->h < 1 || sh->w < 1 || sh->P < 16 || sh->P % 16 || sh->d_hidden < 1 || sh->d_flat < 1)
        return cu_error(err, LIIF_ERR_ARG, "bad GAN batch shape");
    if (sh->vgg.n_modules > 0 && !vgg_params) return cu_error(err, LIIF_ERR_ARG, "VGG19 without its weights");
    char why[400] = "";
    liif_backend *probe = backend_new(why, sizeof why);
    if (!probe) return cu_error(err, LIIF_ERR_UNSUPPORTED, "%s", why);
    probe->destroy(probe);
    liif_cuda_gan_trainer *t = (liif_cuda_gan_trainer *)calloc(1, sizeof *t);
    if (!t) return cu_error(err, LIIF_ERR_NOMEM, "out of host memory");
    t->g_step = g_step;
    t->d_step = d_step;
    liif_status s = cg_init(t, sh, g_params, g_m, g_v, d_params, d_m, d_v, vgg_params, fast, err);
    if (s) {
        cg_free(t);
        return s;
    }
    *out = t;
    return LIIF_OK;
}

/* Floats in D's stage i output for the batch. */
static size_t cg_stage_numel(const liif_cuda_gan_trainer *t, int i)
{
    return (size_t)t->B * t->side[i + 1] * t->side[i + 1] * t->sh.d_width[i];
}

/* The feature map decoder d reads: block mid_block's output (t[mid_block + 1]) or the last layer. */
static const float *cg_source(const liif_cuda_gan_trainer *t, int d)
{
    return t->src[d] ? t->feat : t->t + (size_t)(t->sh.cfg.mid_block + 1) * t->nf;
}

/* gan_gen_forward of core/train/gan_step.c: encoder, geometry, each decoder into dec[d].pred (B,C,P,P). */
static liif_status cg_gen_forward(liif_cuda_gan_trainer *t, liif_error *err)
{
    cudaStream_t st = t->cx.st;
    int B = t->B, h = t->h, w = t->w, C = t->C, L = t->L;
    liif_status s;
    gk_nchw_to_nhwc_norm<<<cu_blocks(t->npx * C), CU_THREADS, 0, st>>>(t->lr, B, C, h * w, t->x);
    LAUNCH_TRY("normalising the input");
    if ((s = tenc_forward(t, t->gp, err))) return s;
    /* the queries' geometry is the same for both decoders (same coords, same LR grid) */
    tk_geometry<<<cu_blocks(t->nq), CU_THREADS, 0, st>>>(t->coord, t->cell, B, t->Q, h, w, t->sh.cfg.local_ensemble,
                                                          t->sh.cfg.cell_decode, t->K, t->nz, t->lat, t->z, t->wt);
    LAUNCH_TRY("query geometry");
    for (int d = 0; d < t->nd; d++) {
        gan_dec *dc = &t->dec[d];
        if ((s = tdec_forward(t, t->gp, t->sh.dec_w[d], t->sh.dec_b[d], t->sh.cfg.feat_unfold, cg_source(t, d), dc->P,
                              dc->hid, err)))
            return s;
        gk_blend<<<cu_blocks(t->nq * t->OC), CU_THREADS, 0, st>>>(dc->hid[L], t->wt, B, t->Q, t->K, t->OC, dc->pred);
        LAUNCH_TRY("decoder blend");
    }
    return LIIF_OK;
}

/* gan_gen_backward of core/train/gan_step.c: gg += from dd1, dd2 (B,C,P,P), each decoder seeing only its own;
 * the mid-layer decoder's feature gradient joins the residual stream at block mid_block. */
static liif_status cg_gen_backward(liif_cuda_gan_trainer *t, liif_error *err)
{
    cudaStream_t st = t->cx.st;
    size_t nf = t->nf, rows = t->rows;
    liif_status s;
    CU_TRY(cudaMemsetAsync(t->dsrc[0], 0, nf * sizeof(float), st), "zeroing dsrc");
    CU_TRY(cudaMemsetAsync(t->dsrc[1], 0, nf * sizeof(float), st), "zeroing dsrc");
    for (int d = 0; d < t->nd; d++) {
        gan_dec *dc = &t->dec[d];
        gk_blend_backward<<<cu_blocks(rows * t->OC), CU_THREADS, 0, st>>>(d ? t->dd2 : t->dd1, t->wt, t->B, t->Q, t->K,
                                                                          t->OC, t->da);
        LAUNCH_TRY("blend backward");
        /* dsrc accumulates (beta 1): LIIF-GAN-SF's two decoders read the same map */
        if ((s = tdec_backward(t, t->gp, t->gg, t->sh.dec_w[d], t->sh.dec_b[d], t->sh.cfg.feat_unfold, cg_source(t, d),
                               dc->hid, t->da, t->db, dc->dP, t->dsrc[t->src[d]], 1.0f, err)))
            return s;
    }
    /* the encoder; the mid-layer decoder read t[mid_block + 1] (dsrc[0] is zero where none did) */
    return tenc_backward(t, t->gp, t->gg, t->dsrc[1], t->dsrc[0], t->sh.cfg.mid_block, err);
}

/* gan_disc_forward (core/train/disc.c) of inp (B,C,P,P) NCHW: logits into slot (B floats at logits + slot*B); the running
 * stats update once. */
static liif_status cg_disc_forward(liif_cuda_gan_trainer *t, const float *inp, int slot, liif_error *err)
{
    cudaStream_t st = t->cx.st;
    const liif_cuda_gan_shape *sh = &t->sh;
    int B = t->B;
    liif_status s;
    t->d_in = inp;
    const float *x = inp;
    gk_layout lay = gk_nchw(t->C, t->P, t->P);
    for (int i = 0; i < LIIF_CUDA_DISC_STAGES; i++) {
        int k, str, ic, oc, Si = t->side[i], So = t->side[i + 1];
        cg_stage(t, i, &k, &str, &ic, &oc);
        size_t N = (size_t)B * So * So;
        if ((s = gconv_forward(&t->cx, t->pre[i], x, lay, t->dp + sh->d_w[i], i ? NULL : t->dp + sh->d_b0, B, ic, Si,
                               Si, oc, k, str, 1, err)))
            return s;
        if (i == 0) {
            gk_lrelu<<<cu_blocks(N * oc), CU_THREADS, 0, st>>>(t->act[0], t->pre[0], N * oc, sh->d_slope);
            LAUNCH_TRY("discriminator LeakyReLU");
        } else {
            gk_bn_forward<<<oc, CU_THREADS, 0, st>>>(t->pre[i], N, oc, t->dp + sh->d_gamma[i], t->dp + sh->d_beta[i],
                                                     t->dp + sh->d_rmean[i], t->dp + sh->d_rvar[i], sh->d_momentum,
                                                     sh->d_eps, sh->d_slope, t->mean[i], t->rstd[i], t->act[i]);
            LAUNCH_TRY("discriminator BatchNorm");
        }
        x = t->act[i];
        lay = gk_nhwc(oc, So, So);
    }
    int S7 = t->side[LIIF_CUDA_DISC_STAGES], W7 = sh->d_width[LIIF_CUDA_DISC_STAGES - 1];
    gk_flatten<<<cu_blocks((size_t)B * sh->d_flat), CU_THREADS, 0, st>>>(x, B, S7 * S7, W7, t->flat);
    LAUNCH_TRY("discriminator flatten");
    if ((s = glinear_forward(&t->cx, t->h1, t->flat, t->dp + sh->d_l1w, t->dp + sh->d_l1b, B, sh->d_flat, sh->d_hidden,
                             sh->d_slope, err)))
        return s;
    return glinear_forward(&t->cx, t->logits + (size_t)slot * B, t->h1, t->dp + sh->d_l2w, t->dp + sh->d_l2b, B,
                           sh->d_hidden, 1, 0.0f, err);
}

/* gan_disc_backward (core/train/disc.c) of the last forward from t->dz (B) and, when fm_scale is not 0, the gradient of
 * fm_scale * L_fm against t->fm_real: dinp (B,C,P,P) WRITTEN when not NULL; D's parameter gradients += only with
 * param_grads (frozen in the generator half). */
static liif_status cg_disc_backward(liif_cuda_gan_trainer *t, float fm_scale, float *dinp, int param_grads,
                                    liif_error *err)
{
    cudaStream_t st = t->cx.st;
    const liif_cuda_gan_shape *sh = &t->sh;
    int B = t->B, pg = param_grads;
    float *dg = t->dg;
    liif_status s;
    if ((s = glinear_backward(&t->cx, t->dh1, pg ? dg + sh->d_l2w : NULL, pg ? dg + sh->d_l2b : NULL, t->dz, t->h1,
                              t->dp + sh->d_l2w, B, sh->d_hidden, 1, err)))
        return s;
    gk_lrelu_backward<<<cu_blocks((size_t)B * sh->d_hidden), CU_THREADS, 0, st>>>(t->dh1, t->h1,
                                                                                 (size_t)B * sh->d_hidden, sh->d_slope);
    LAUNCH_TRY("discriminator LeakyReLU backward");
    if ((s = glinear_backward(&t->cx, t->dflat, pg ? dg + sh->d_l1w : NULL, pg ? dg + sh->d_l1b : NULL, t->dh1,
                              t->flat, t->dp + sh->d_l1w, B, sh->d_flat, sh->d_hidden, err)))
        return s;
    int S7 = t->side[LIIF_CUDA_DISC_STAGES], W7 = sh->d_width[LIIF_CUDA_DISC_STAGES - 1];
    int a = 0, b = 1, c = 2; /* s3[a]: d(act[i]); s3[b]: d(pre[i]) after BN; s3[c]: d(act[i-1]) */
    gk_unflatten<<<cu_blocks((size_t)B * sh->d_flat), CU_THREADS, 0, st>>>(t->dflat, B, S7 * S7, W7, t->s3[a]);
    LAUNCH_TRY("discriminator unflatten");
    for (int i = LIIF_CUDA_DISC_STAGES - 1; i >= 0; i--) {
        int k, str, ic, oc, Si = t->side[i], So = t->side[i + 1];
        cg_stage(t, i, &k, &str, &ic, &oc);
        size_t N = (size_t)B * So * So;
        if (fm_scale != 0.0f) { /* s3[a] is d act[i] */
            float g = fm_scale / LIIF_CUDA_DISC_STAGES / (float)(N * oc);
            gk_fm<<<cu_blocks(N * oc), CU_THREADS, 0, st>>>(t->act[i], t->fm_real[i], N * oc, 0.0, NULL, g, t->s3[a]);
            LAUNCH_TRY("feature matching backward");
        }
        gk_lrelu_backward<<<cu_blocks(N * oc), CU_THREADS, 0, st>>>(t->s3[a], t->act[i], N * oc, sh->d_slope);
        LAUNCH_TRY("discriminator LeakyReLU backward");
        float *dpre = t->s3[a];
        if (i) {
            gk_bn_backward<<<oc, CU_THREADS, 0, st>>>(t->s3[a], t->pre[i], t->mean[i], t->rstd[i],
                                                      t->dp + sh->d_gamma[i], N, oc, pg ? dg + sh->d_gamma[i] : NULL,
                                                      pg ? dg + sh->d_beta[i] : NULL, t->s3[b]);
            LAUNCH_TRY("discriminator BatchNorm backward");
            dpre = t->s3[b];
        }
        const float *xin = i ? t->act[i - 1] : t->d_in;
        gk_layout lay = i ? gk_nhwc(ic, Si, Si) : gk_nchw(ic, Si, Si);
        float *dprev = i ? t->s3[c] : dinp;
        if ((s = gconv_backward(&t->cx, dprev, pg ? dg + sh->d_w[i] : NULL, pg && !i ? dg + sh->d_b0 : NULL, dpre, xin,
                                lay, t->dp + sh->d_w[i], B, ic, Si, Si, oc, k, str, 1, err)))
            return s;
        int old_a = a;
        a = c;
        c = old_a;
    }
    return LIIF_OK;
}

static liif_status cg_step(liif_cuda_gan_trainer *t, const float *lr, const float *coord, const float *cell,
                            const float *gt_patch, const liif_cuda_gan_step *cfg, liif_error *err)
{
    cudaStream_t st = t->cx.st;
    int B = t->B;
    size_t n = t->nimg;
    liif_status s;
    t->last = *cfg;
    cg_mark(t, 0);
    if (cfg->w_per != 0.0f && !t->has_vgg)
        return cu_error(err, LIIF_ERR_ARG, "a perceptual loss (w_per %g) without VGG19 weights", cfg->w_per);
    CU_TRY(cudaMemsetAsync(t->acc, 0, GAN_ACC * sizeof(double), st), "zeroing the losses");
    CU_TRY(cudaMemcpyAsync(t->gt, gt_patch, n * sizeof(float), cudaMemcpyHostToDevice, st), "uploading the batch");
    if (cfg->parts & LIIF_GAN_GEN) {
        CU_TRY(cudaMemcpyAsync(t->lr, lr, t->npx * t->C * sizeof(float), cudaMemcpyHostToDevice, st),
               "uploading the batch");
        CU_TRY(cudaMemcpyAsync(t->coord, coord, t->nq * 2 * sizeof(float), cudaMemcpyHostToDevice, st),
               "uploading the batch");
        CU_TRY(cudaMemcpyAsync(t->cell, cell, t->nq * 2 * sizeof(float), cudaMemcpyHostToDevice, st),
               "uploading the batch");
    }
    cg_mark(t, 1);
    if (cfg->parts & LIIF_GAN_GEN) {
        CU_TRY(cudaMemsetAsync(t->gg, 0, t->sh.g_n_params * sizeof(float), st), "zeroing the gradients");
        if ((s = cg_gen_forward(t, err))) return s;
        cg_mark(t, 2);
        /* ip = stopgrad(d1) + d2, fake01, L_D1 and its gradient (the only one decoder 1 of LIIF-GAN gets) */
        gk_images<<<cu_blocks(n), CU_THREADS, 0, st>>>(t->dec[0].pred, t->nd == 2 ? t->dec[1].pred : NULL, t->gt, n,
                                                       cfg->c_d1 != 0.0f, cfg->c_d1 / (float)n, t->fake01, t->dd1,
                                                       t->acc);
        LAUNCH_TRY("L1 and the fake image");
        /* feature matching's targets: D's stage outputs on the real patch (train mode, running stats update) */
        if (cfg->w_fm != 0.0f) {
            if ((s = cg_disc_forward(t, t->gt, 0, err))) return s;
            for (int i = 0; i < LIIF_CUDA_DISC_STAGES; i++)
                CU_TRY(cudaMemcpyAsync(t->fm_real[i], t->act[i], cg_stage_numel(t, i) * sizeof(float),
                                       cudaMemcpyDeviceToDevice, st),
                       "keeping D's features of the real patch");
        }
        /* adversarial term: D in train mode (its running stats update), its parameters frozen */
        if ((s = cg_disc_forward(t, t->fake01, 0, err))) return s;
        float target = cfg->adv_minimax ? 0.0f : 1.0f, sign = cfg->adv_minimax ? -1.0f : 1.0f;
        gk_bce<<<1, 32, 0, st>>>(t->logits, B, target, sign * cfg->c_adv * cfg->w_adv, t->acc + 1, t->dz);
        LAUNCH_TRY("adversarial loss");
        for (int i = 0; cfg->w_fm != 0.0f && i < LIIF_CUDA_DISC_STAGES; i++) {
            size_t ni = cg_stage_numel(t, i);
            gk_fm<<<cu_blocks(ni), CU_THREADS, 0, st>>>(t->act[i], t->fm_real[i], ni, 1.0 / (double)ni, t->acc + 4,
                                                        0.0f, NULL);
            LAUNCH_TRY("feature matching loss");
        }
        CU_TRY(cudaMemsetAsync(t->dfake01, 0, n * sizeof(float), st), "zeroing d fake01");
        float fm_scale = cfg->c_fm * cfg->w_fm;
        if ((cfg->c_adv != 0.0f || fm_scale != 0.0f) && (s = cg_disc_backward(t, fm_scale, t->dfake01, 0, err)))
            return s;
        /* perceptual term against the real patch's features (no gradient to them), added onto D's gradient */
        float per_scale = cfg->c_per * cfg->w_per;
        if (t->has_vgg &&
            (s = vgg_perceptual(&t->cx, &t->vgg, t->fake01, t->gt, per_scale, t->acc + 5,
                                cfg->c_per != 0.0f ? t->dfake01 : NULL, err)))
            return s;
        gk_dd2<<<cu_blocks(n), CU_THREADS, 0, st>>>(t->dfake01, n, t->dd2, t->nd == 1 ? t->dd1 : NULL);
        LAUNCH_TRY("gradient of the fake image");
        cg_mark(t, 3);
        if ((s = cg_gen_backward(t, err))) return s;
        cg_mark(t, 4);
    } else {
        cg_mark(t, 2);
        cg_mark(t, 3);
        cg_mark(t, 4);
    }
    if ((cfg->parts & LIIF_GAN_GEN_ADAM) && (s = tadam(st, t->gp, t->gg, t->gm, t->gv, t->sh.g_n_params, &t->g_step,
                                                        cfg->lr, cfg->beta1, cfg->beta2, cfg->eps, err)))
        return s;
    cg_mark(t, 5);
    if (cfg->parts & LIIF_GAN_DISC) { /* real first, then the last generator half's fake01 (detached) */
        CU_TRY(cudaMemsetAsync(t->dg, 0, t->sh.d_n_params * sizeof(float), st), "zeroing D's gradients");
        if ((s = cg_disc_forward(t, t->gt, 1, err))) return s;
        gk_bce<<<1, 32, 0, st>>>(t->logits + B, B, 1.0f, 1.0f, t->acc + 2, t->dz);
        LAUNCH_TRY("discriminator loss");
        if ((s = cg_disc_backward(t, 0.0f, NULL, 1, err))) return s;
        if ((s = cg_disc_forward(t, t->fake01, 2, err))) return s;
        gk_bce<<<1, 32, 0, st>>>(t->logits + 2 * B, B, 0.0f, 1.0f, t->acc + 3, t->dz);
        LAUNCH_TRY("discriminator loss");
        if ((s = cg_disc_backward(t, 0.0f, NULL, 1, err))) return s;
    }
    cg_mark(t, 6);
    if ((cfg->parts & LIIF_GAN_DISC_ADAM) && (s = tadam(st, t->dp, t->dg, t->dm, t->dv, t->sh.d_n_trainable, &t->d_step,
                                                         cfg->lr, cfg->beta1, cfg->beta2, cfg->eps, err)))
        return s;
    cg_mark(t, 7);
    return LIIF_OK;
}

static liif_status cg_wait(liif_cuda_gan_trainer *t, liif_cuda_gan_losses *out, liif_error *err)
{
    CU_TRY(cudaStreamSynchronize(t->cx.st), "GAN training step");
    if (t->last.parts == LIIF_GAN_ALL) cg_account(t);
    if (!out) return LIIF_OK;
    double acc[GAN_ACC];
    CU_TRY(cudaMemcpy(acc, t->acc, sizeof acc, cudaMemcpyDeviceToHost), "reading the losses");
    memset(out, 0, sizeof *out);
    const liif_cuda_gan_step *c = &t->last;
    if (c->parts & LIIF_GAN_GEN) { /* gan_step_generator's float arithmetic */
        float sign = c->adv_minimax ? -1.0f : 1.0f;
        out->loss_d1 = (float)(acc[0] / (double)t->nimg);
        out->loss_adv = sign * (float)acc[1];
        out->loss_fm = (float)(acc[4] / LIIF_CUDA_DISC_STAGES);
        out->loss_per = t->has_vgg ? (float)(acc[5] / (double)vgg_output_numel(&t->vgg)) : 0.0f;
        out->loss_g = out->loss_d1 + c->w_adv * out->loss_adv + c->w_per * out->loss_per + c->w_fm * out->loss_fm;
    }
    if (c->parts & LIIF_GAN_DISC) {
        out->loss_d_real = (float)acc[2];
        out->loss_d_fake = (float)acc[3];
        out->loss_d = out->loss_d_real + out->loss_d_fake;
    }
    return LIIF_OK;
}

static liif_status cg_download(liif_cuda_gan_trainer *t, liif_cuda_gan_state *o, liif_error *err)
{
    CU_TRY(cudaStreamSynchronize(t->cx.st), "GAN training step");
    const char *what = "downloading the GAN training state";
    size_t gn = t->sh.g_n_params * sizeof(float), dn = t->sh.d_n_params * sizeof(float);
    size_t dt = t->sh.d_n_trainable * sizeof(float), img = t->nimg * sizeof(float);
    if (o->g_params) CU_TRY(cudaMemcpy(o->g_params, t->gp, gn, cudaMemcpyDeviceToHost), what);
    if (o->g_grads) CU_TRY(cudaMemcpy(o->g_grads, t->gg, gn, cudaMemcpyDeviceToHost), what);
    if (o->g_m) CU_TRY(cudaMemcpy(o->g_m, t->gm, gn, cudaMemcpyDeviceToHost), what);
    if (o->g_v) CU_TRY(cudaMemcpy(o->g_v, t->gv, gn, cudaMemcpyDeviceToHost), what);
    if (o->d_params) CU_TRY(cudaMemcpy(o->d_params, t->dp, dn, cudaMemcpyDeviceToHost), what);
    if (o->d_grads) CU_TRY(cudaMemcpy(o->d_grads, t->dg, dt, cudaMemcpyDeviceToHost), what);
    if (o->d_m) CU_TRY(cudaMemcpy(o->d_m, t->dm, dt, cudaMemcpyDeviceToHost), what);
    if (o->d_v) CU_TRY(cudaMemcpy(o->d_v, t->dv, dt, cudaMemcpyDeviceToHost), what);
    if (o->d1) CU_TRY(cudaMemcpy(o->d1, t->dec[0].pred, img, cudaMemcpyDeviceToHost), what);
    if (o->d2) {
        if (t->nd == 2) CU_TRY(cudaMemcpy(o->d2, t->dec[1].pred, img, cudaMemcpyDeviceToHost), what);
        else memset(o->d2, 0, img);
    }
    if (o->fake01) CU_TRY(cudaMemcpy(o->fake01, t->fake01, img, cudaMemcpyDeviceToHost), what);
    if (o->logits) CU_TRY(cudaMemcpy(o->logits, t->logits, 3 * (size_t)t->B * sizeof(float), cudaMemcpyDeviceToHost), what);
    o->g_step = t->g_step;
    o->d_step = t->d_step;
    return LIIF_OK;
}

/* ------------------------------------------------------------ test ops (NCHW host arrays, as core/nn/nn.h) */

/* Device copies of the test ops' arrays: freed together. */
typedef struct {
    void *p[16];
    int n;
} gop_bufs;

static float *gop_up(gop_bufs *b, const float *host, size_t n, liif_error *err, liif_status *s)
{
    float *d = NULL;
    if (*s) return NULL;
    if (b->n == 16 || cudaMalloc(&d, (n ? n : 1) * sizeof(float)) != cudaSuccess) {
        (void)cudaGetLastError();
        *s = cu_error(err, LIIF_ERR_NOMEM, "CUDA: test buffers");
        return NULL;
    }
    b->p[b->n++] = d;
    cudaError_t e = host ? cudaMemcpy(d, host, n * sizeof(float), cudaMemcpyHostToDevice)
                         : cudaMemset(d, 0, (n ? n : 1) * sizeof(float));
    if (e == cudaSuccess) e = cudaDeviceSynchronize(); /* the backend's stream does not wait for the legacy one */
    if (e != cudaSuccess) *s = cu_error(err, LIIF_ERR_UNSUPPORTED, "CUDA: test upload: %s", cudaGetErrorString(e));
    return d;
}

static liif_status gop_down(float *host, const float *dev, size_t n, liif_error *err)
{
    if (!host) return LIIF_OK;
    CU_TRY(cudaMemcpy(host, dev, n * sizeof(float), cudaMemcpyDeviceToHost), "test download");
    return LIIF_OK;
}

static liif_status gop_end(cuda_backend *cb, gop_bufs *b, liif_status s, liif_error *err)
{
    cudaError_t e = cudaStreamSynchronize(cb->st);
    for (int i = 0; i < b->n; i++) cudaFree(b->p[i]);
    cublasSetMathMode(cb->blas, CUBLAS_DEFAULT_MATH);
    if (!s && e != cudaSuccess) s = cu_error(err, LIIF_ERR_UNSUPPORTED, "CUDA: test op: %s", cudaGetErrorString(e));
    return s;
}

/* (B,C,HW) <-> (B,HW,C) on the host. */
static void gop_transpose(const float *src, int B, int C, int HW, int to_nhwc, float *dst)
{
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++)
            for (int i = 0; i < HW; i++) {
                size_t nchw = ((size_t)b * C + c) * HW + i, nhwc = ((size_t)b * HW + i) * C + c;
                if (to_nhwc) dst[nhwc] = src[nchw];
                else dst[nchw] = src[nhwc];
            }
}

static liif_status op_conv2d_train(liif_backend *be, const float *inp, int B, int IC, int H, int W, int OC, int k,
                                   int stride, int pad, const float *weight, const float *bias, const float *dout,
                                   float *out, float *dinp, float *dweight, float *dbias, int fast, liif_error *err)
{
    cuda_backend *cb = (cuda_backend *)be;
    int OH = (H + 2 * pad - k) / stride + 1, OW = (W + 2 * pad - k) / stride + 1;
    if (B < 1 || IC < 1 || OC < 1 || k < 1 || stride < 1 || pad < 0 || OH < 1 || OW < 1)
        return cu_error(err, LIIF_ERR_ARG, "bad conv shape");
    size_t N = (size_t)B * OH * OW, ni = (size_t)B * IC * H * W, nw = (size_t)OC * IC * k * k;
    size_t ncol = N * IC * k * k > ni ? N * IC * k * k : ni;
    float *host = (float *)malloc(N * OC * sizeof(float));
    if (!host) return cu_error(err, LIIF_ERR_NOMEM, "out of host memory");
    gop_bufs b = {{0}, 0};
    liif_status s = LIIF_OK;
    float *d_in = gop_up(&b, inp, ni, err, &s), *d_w = gop_up(&b, weight, nw, err, &s);
    float *d_b = bias ? gop_up(&b, bias, OC, err, &s) : NULL, *d_out = gop_up(&b, NULL, N * OC, err, &s);
    float *d_col = gop_up(&b, NULL, ncol, err, &s), *d_ones = gop_up(&b, NULL, N, err, &s);
    float *d_dout = gop_up(&b, NULL, N * OC, err, &s), *d_dinp = gop_up(&b, NULL, ni, err, &s);
    float *d_dw = gop_up(&b, NULL, nw, err, &s), *d_db = gop_up(&b, NULL, OC, err, &s);
    tconv_ctx x = {cb->st, cb->blas, d_col, d_ones, 0}; /* D convs: strided, im2col + cuBLAS */
    if (!s && cublasSetMathMode(cb->blas, fast ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH))
        s = cu_error(err, LIIF_ERR_UNSUPPORTED, "CUDA: math mode");
    if (!s) {
        tk_fill<<<cu_blocks(N), CU_THREADS, 0, cb->st>>>(d_ones, 1.0f, N);
        if (cudaGetLastError() != cudaSuccess) s = cu_error(err, LIIF_ERR_UNSUPPORTED, "CUDA: fill");
    }
    if (!s) s = gconv_forward(&x, d_out, d_in, gk_nchw(IC, H, W), d_w, d_b, B, IC, H, W, OC, k, stride, pad, err);
    if (!s && cudaStreamSynchronize(cb->st) != cudaSuccess) s = cu_error(err, LIIF_ERR_UNSUPPORTED, "CUDA: conv forward");
    if (!s) s = gop_down(host, d_out, N * OC, err);
    if (!s) gop_transpose(host, B, OC, OH * OW, 0, out);
    if (!s && dout) {
        gop_transpose(dout, B, OC, OH * OW, 1, host);
        if (cudaMemcpy(d_dout, host, N * OC * sizeof(float), cudaMemcpyHostToDevice) != cudaSuccess ||
            cudaDeviceSynchronize() != cudaSuccess)
            s = cu_error(err, LIIF_ERR_UNSUPPORTED, "CUDA: test upload");
        if (!s) s = gconv_backward(&x, dinp ? d_dinp : NULL, d_dw, bias ? d_db : NULL, d_dout, d_in, gk_nchw(IC, H, W),
                                   d_w, B, IC, H, W, OC, k, stride, pad, err);
        if (!s && cudaStreamSynchronize(cb->st) != cudaSuccess)
            s = cu_error(err, LIIF_ERR_UNSUPPORTED, "CUDA: conv backward");
        if (!s) s = gop_down(dinp, d_dinp, ni, err);
        if (!s) s = gop_down(dweight, d_dw, nw, err);
        if (!s && bias) s = gop_down(dbias, d_db, OC, err);
    }
    free(host);
    return gop_end(cb, &b, s, err);
}

static liif_status op_batchnorm_train(liif_backend *be, const float *inp, int B, int C, int HW, const float *gamma,
                                      const float *beta, float *running_mean, float *running_var, float momentum,
                                      float eps, float slope, const float *dout, float *out, float *mean, float *rstd,
                                      float *dinp, float *dgamma, float *dbeta, liif_error *err)
{
    cuda_backend *cb = (cuda_backend *)be;
    if (B < 1 || C < 1 || HW < 1) return cu_error(err, LIIF_ERR_ARG, "bad BatchNorm shape");
    size_t n = (size_t)B * C * HW, N = (size_t)B * HW;
    float *host = (float *)malloc(n * sizeof(float));
    if (!host) return cu_error(err, LIIF_ERR_NOMEM, "out of host memory");
    gop_transpose(inp, B, C, HW, 1, host);
    gop_bufs b = {{0}, 0};
    liif_status s = LIIF_OK;
    float *d_pre = gop_up(&b, host, n, err, &s), *d_g = gop_up(&b, gamma, C, err, &s), *d_b = gop_up(&b, beta, C, err, &s);
    float *d_rm = gop_up(&b, running_mean, C, err, &s), *d_rv = gop_up(&b, running_var, C, err, &s);
    float *d_m = gop_up(&b, NULL, C, err, &s), *d_r = gop_up(&b, NULL, C, err, &s), *d_out = gop_up(&b, NULL, n, err, &s);
    float *d_dout = gop_up(&b, NULL, n, err, &s), *d_din = gop_up(&b, NULL, n, err, &s);
    float *d_dg = gop_up(&b, NULL, C, err, &s), *d_db = gop_up(&b, NULL, C, err, &s);
    if (!s) {
        gk_bn_forward<<<C, CU_THREADS, 0, cb->st>>>(d_pre, N, C, d_g, d_b, d_rm, d_rv, momentum, eps, slope, d_m, d_r,
                                                    d_out);
        if (cudaGetLastError() != cudaSuccess || cudaStreamSynchronize(cb->st) != cudaSuccess)
            s = cu_error(err, LIIF_ERR_UNSUPPORTED, "CUDA: BatchNorm forward");
    }
    if (!s) s = gop_down(host, d_out, n, err);
    if (!s) gop_transpose(host, B, C, HW, 0, out);
    if (!s) s = gop_down(mean, d_m, C, err);
    if (!s) s = gop_down(rstd, d_r, C, err);
    if (!s) s = gop_down(running_mean, d_rm, C, err);
    if (!s) s = gop_down(running_var, d_rv, C, err);
    if (!s && dout) {
        gop_transpose(dout, B, C, HW, 1, host);
        if (cudaMemcpy(d_dout, host, n * sizeof(float), cudaMemcpyHostToDevice) != cudaSuccess ||
            cudaDeviceSynchronize() != cudaSuccess)
            s = cu_error(err, LIIF_ERR_UNSUPPORTED, "CUDA: test upload");
        if (!s && slope > 0.0f) {
            gk_lrelu_backward<<<cu_blocks(n), CU_THREADS, 0, cb->st>>>(d_dout, d_out, n, slope);
            if (cudaGetLastError() != cudaSuccess) s = cu_error(err, LIIF_ERR_UNSUPPORTED, "CUDA: LeakyReLU backward");
        }
        if (!s) {
            gk_bn_backward<<<C, CU_THREADS, 0, cb->st>>>(d_dout, d_pre, d_m, d_r, d_g, N, C, d_dg, d_db, d_din);
            if (cudaGetLastError() != cudaSuccess || cudaStreamSynchronize(cb->st) != cudaSuccess)
                s = cu_error(err, LIIF_ERR_UNSUPPORTED, "CUDA: BatchNorm backward");
        }
        if (!s) s = gop_down(host, d_din, n, err);
        if (!s && dinp) gop_transpose(host, B, C, HW, 0, dinp);
        if (!s) s = gop_down(dgamma, d_dg, C, err);
        if (!s) s = gop_down(dbeta, d_db, C, err);
    }
    free(host);
    return gop_end(cb, &b, s, err);
}

static liif_status op_linear_train(liif_backend *be, const float *inp, int N, int IC, int OC, const float *weight,
                                   const float *bias, float slope, const float *dout, float *out, float *dinp,
                                   float *dweight, float *dbias, int fast, liif_error *err)
{
    cuda_backend *cb = (cuda_backend *)be;
    if (N < 1 || IC < 1 || OC < 1) return cu_error(err, LIIF_ERR_ARG, "bad Linear shape");
    size_t ni = (size_t)N * IC, no = (size_t)N * OC, nw = (size_t)OC * IC;
    gop_bufs b = {{0}, 0};
    liif_status s = LIIF_OK;
    float *d_in = gop_up(&b, inp, ni, err, &s), *d_w = gop_up(&b, weight, nw, err, &s);
    float *d_b = gop_up(&b, bias, OC, err, &s), *d_out = gop_up(&b, NULL, no, err, &s);
    float *d_ones = gop_up(&b, NULL, N, err, &s), *d_dout = gop_up(&b, dout, dout ? no : 1, err, &s);
    float *d_din = gop_up(&b, NULL, ni, err, &s), *d_dw = gop_up(&b, NULL, nw, err, &s);
    float *d_db = gop_up(&b, NULL, OC, err, &s);
    tconv_ctx x = {cb->st, cb->blas, NULL, d_ones, 0};
    if (!s && cublasSetMathMode(cb->blas, fast ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH))
        s = cu_error(err, LIIF_ERR_UNSUPPORTED, "CUDA: math mode");
    if (!s) {
        tk_fill<<<cu_blocks(N), CU_THREADS, 0, cb->st>>>(d_ones, 1.0f, N);
        if (cudaGetLastError() != cudaSuccess) s = cu_error(err, LIIF_ERR_UNSUPPORTED, "CUDA: fill");
    }
    if (!s) s = glinear_forward(&x, d_out, d_in, d_w, d_b, N, IC, OC, slope, err);
    if (!s && dout && slope > 0.0f) {
        gk_lrelu_backward<<<cu_blocks(no), CU_THREADS, 0, cb->st>>>(d_dout, d_out, no, slope);
        if (cudaGetLastError() != cudaSuccess) s = cu_error(err, LIIF_ERR_UNSUPPORTED, "CUDA: LeakyReLU backward");
    }
    if (!s && dout) s = glinear_backward(&x, d_din, d_dw, d_db, d_dout, d_in, d_w, N, IC, OC, err);
    if (!s && cudaStreamSynchronize(cb->st) != cudaSuccess) s = cu_error(err, LIIF_ERR_UNSUPPORTED, "CUDA: Linear");
    if (!s) s = gop_down(out, d_out, no, err);
    if (!s && dout) s = gop_down(dinp, d_din, ni, err);
    if (!s && dout) s = gop_down(dweight, d_dw, nw, err);
    if (!s && dout) s = gop_down(dbias, d_db, OC, err);
    return gop_end(cb, &b, s, err);
}

static liif_status op_bce_logits(liif_backend *be, const float *z, int n, float target, float scale, float *loss,
                                 float *dz, liif_error *err)
{
    cuda_backend *cb = (cuda_backend *)be;
    if (n < 1) return cu_error(err, LIIF_ERR_ARG, "bad BCE size");
    gop_bufs b = {{0}, 0};
    liif_status s = LIIF_OK;
    float *d_z = gop_up(&b, z, n, err, &s), *d_dz = gop_up(&b, NULL, n, err, &s), *d_l = gop_up(&b, NULL, 2, err, &s);
    double l = 0.0;
    if (!s) {
        gk_bce<<<1, 32, 0, cb->st>>>(d_z, n, target, scale, (double *)d_l, d_dz);
        if (cudaGetLastError() != cudaSuccess || cudaStreamSynchronize(cb->st) != cudaSuccess ||
            cudaMemcpy(&l, d_l, sizeof l, cudaMemcpyDeviceToHost) != cudaSuccess)
            s = cu_error(err, LIIF_ERR_UNSUPPORTED, "CUDA: BCE");
    }
    if (!s) *loss = (float)l;
    if (!s) s = gop_down(dz, d_dz, n, err);
    return gop_end(cb, &b, s, err);
}

static liif_status op_vgg_perceptual(liif_backend *be, const liif_cuda_vgg_shape *vs, const float *params, int B,
                                     int H, int W, const float *img, const float *ref, float scale, float *loss,
                                     float *feat, float *dimg, int fast, liif_error *err)
{
    cuda_backend *cb = (cuda_backend *)be;
    vgg_dev v;
    size_t bytes;
    liif_status s = vgg_plan(&v, vs, B, H, W, &bytes, err);
    if (s) return s;
    size_t ni = (size_t)B * 3 * H * W, nf = vgg_output_numel(&v);
    int last = vs->n_modules - 1;
    float *host = (float *)malloc(nf * sizeof(float));
    if (!host) return cu_error(err, LIIF_ERR_NOMEM, "out of host memory");
    gop_bufs b = {{0}, 0};
    float *d_p = gop_up(&b, params, vs->n_params, err, &s), *d_img = gop_up(&b, img, ni, err, &s);
    float *d_ref = gop_up(&b, ref, ni, err, &s), *d_dimg = gop_up(&b, NULL, ni, err, &s);
    float *d_mem = gop_up(&b, NULL, (bytes + 3) / 4, err, &s), *d_col = gop_up(&b, NULL, v.col, err, &s);
    double *d_loss = (double *)gop_up(&b, NULL, 2, err, &s);
    tconv_ctx x = {cb->st, cb->blas, d_col, NULL, conv_igemm_kind(fast ? LIIF_MATH_TF32 : LIIF_MATH_FP32, cb->sm)};
    if (!s && cublasSetMathMode(cb->blas, fast ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH))
        s = cu_error(err, LIIF_ERR_UNSUPPORTED, "CUDA: math mode");
    if (!s) vgg_carve(&v, d_mem, d_p);
    if (!s) s = vgg_perceptual(&x, &v, d_img, d_ref, scale, d_loss, dimg ? d_dimg : NULL, err);
    double l = 0.0;
    if (!s && (cudaStreamSynchronize(cb->st) != cudaSuccess ||
               cudaMemcpy(&l, d_loss, sizeof l, cudaMemcpyDeviceToHost) != cudaSuccess))
        s = cu_error(err, LIIF_ERR_UNSUPPORTED, "CUDA: VGG19 perceptual loss");
    if (!s) *loss = (float)(l / (double)nf);
    if (!s && feat) s = gop_down(host, vgg_output(&v), nf, err);
    if (!s && feat) gop_transpose(host, B, vs->oc[last], v.oh[last] * v.ow[last], 0, feat);
    if (!s) s = gop_down(dimg, d_dimg, ni, err);
    free(host);
    return gop_end(cb, &b, s, err);
}

/* The module table's training entries, in cuda_module.h's order (backend_cuda.cu and tests/cuda-emu). */
#define LIIF_CUDA_TRAIN_ENTRIES                                                                            \
    train_new, train_forward, train_backward, train_adam, train_wait, train_download, train_free, train_profile, \
        op_conv3x3_train, cg_new, cg_step, cg_wait, cg_download, cg_free, cg_profile, op_conv2d_train,      \
        op_batchnorm_train, op_linear_train, op_bce_logits, op_vgg_perceptual

#endif
