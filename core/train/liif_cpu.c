/* liif_cpu.c: fast CPU training ops of the LIIF generator: conv 3x3 forward/backward as im2col + oneDNN sgemm on per-thread pixel blocks, Linear as sgemm. */
#include <dnnl.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "train.h"

/* Pixels per im2col block: one block's columns (CONV_BLOCK x 9*IC) stay in L2 while a thread
 * runs its single-threaded sgemm on them (oneDNN runs single-threaded inside a parallel region). */
enum { CONV_BLOCK = 256 };

struct liif_train_cpu {
    int threads, max_ic, max_oc;
    liif_train_dec_cpu *dec; /* the fast decoder's scratch, made on first use */
    float *col;     /* (threads, CONV_BLOCK, 9*max_ic) im2col blocks */
    float *dw;      /* (threads, max_oc*9*max_ic + max_oc) per-thread weight and bias gradients */
    float *wperm;   /* (max_oc, 9, max_ic) weight in the im2col's tap-major order; for dinp flipped and transposed */
};

static void dec_free(liif_train_dec_cpu *d);

liif_train_cpu *liif_train_cpu_new(int max_ic, int max_oc, int threads)
{
    liif_train_cpu *cpu = calloc(1, sizeof *cpu);
    if (!cpu) return NULL;
    cpu->threads = threads > 0 ? threads : omp_get_num_procs();
    cpu->max_ic = max_ic > max_oc ? max_ic : max_oc; /* dinp runs a conv with IC and OC swapped */
    cpu->max_oc = cpu->max_ic;
    size_t kk = 9 * (size_t)cpu->max_ic, wsz = (size_t)cpu->max_oc * kk + cpu->max_oc;
    cpu->col = malloc((size_t)cpu->threads * CONV_BLOCK * kk * sizeof(float));
    cpu->dw = malloc((size_t)cpu->threads * wsz * sizeof(float));
    cpu->wperm = malloc((size_t)cpu->max_oc * kk * sizeof(float));
    if (!cpu->col || !cpu->dw || !cpu->wperm) {
        liif_train_cpu_free(cpu);
        return NULL;
    }
    return cpu;
}

void liif_train_cpu_free(liif_train_cpu *cpu)
{
    if (!cpu) return;
    dec_free(cpu->dec);
    free(cpu->col);
    free(cpu->dw);
    free(cpu->wperm);
    free(cpu);
}

/* col (n, 9*IC) with column (ky*3 + kx)*IC + ic = inp[b, y+ky-1, x+kx-1, ic] (zero outside), for
 * the n pixels p0.. of the flattened (B,h,w) grid: tap-major, so every tap is one contiguous copy;
 * weights are permuted to match (OC, 9, IC). */
static void im2col(float *col, const float *inp, size_t p0, int n, int h, int w, int IC)
{
    for (int p = 0; p < n; p++) {
        size_t g = p0 + p;
        int x = (int)(g % w), y = (int)(g / w % h);
        size_t b = g / ((size_t)w * h);
        float *c = col + (size_t)p * IC * 9;
        for (int k = 0; k < 9; k++) {
            int yy = y + k / 3 - 1, xx = x + k % 3 - 1;
            if (yy < 0 || yy >= h || xx < 0 || xx >= w) memset(c + k * IC, 0, IC * sizeof(float));
            else memcpy(c + k * IC, inp + ((b * h + yy) * w + xx) * IC, IC * sizeof(float));
        }
    }
}

/* dst (OC, 9, IC) = the tap-major order of an OIHW weight (OC, IC, 3, 3); flip: for dinp, dst
 * (IC, 9, OC) = W[oc, ic, 2-ky, 2-kx], the transposed, flipped kernel. */
static void permute_weight(float *dst, const float *weight, int IC, int OC, int flip)
{
    for (int oc = 0; oc < OC; oc++)
        for (int ic = 0; ic < IC; ic++)
            for (int k = 0; k < 9; k++) {
                float v = weight[((size_t)oc * IC + ic) * 9 + k];
                if (flip) dst[((size_t)ic * 9 + (8 - k)) * OC + oc] = v;
                else dst[((size_t)oc * 9 + k) * IC + ic] = v;
            }
}

static long n_blocks(size_t np) { return (long)((np + CONV_BLOCK - 1) / CONV_BLOCK); }

/* out (B,h,w,OC) = (accumulate ? out : 0) + conv3x3(inp (B,h,w,IC)) with the tap-major weight (OC,9,IC), bias (OC) or NULL. */
static void conv_blocks(liif_train_cpu *cpu, float *out, int accumulate, const float *inp, const float *weight,
                        const float *bias, int B, int h, int w, int IC, int OC)
{
    size_t np = (size_t)B * h * w;
    int kk = 9 * IC;
#pragma omp parallel num_threads(liif_omp_threads(cpu->threads))
    {
        float *col = cpu->col + (size_t)omp_get_thread_num() * CONV_BLOCK * 9 * cpu->max_ic;
#pragma omp for schedule(static)
        for (long blk = 0; blk < n_blocks(np); blk++) {
            size_t p0 = (size_t)blk * CONV_BLOCK;
            int n = (int)(np - p0 < CONV_BLOCK ? np - p0 : CONV_BLOCK);
            float *o = out + p0 * OC;
            im2col(col, inp, p0, n, h, w, IC);
            dnnl_sgemm('N', 'T', n, OC, kk, 1.0f, col, kk, weight, kk, accumulate ? 1.0f : 0.0f, o, OC);
            for (int p = 0; bias && p < n; p++)
                for (int oc = 0; oc < OC; oc++) o[(size_t)p * OC + oc] += bias[oc];
        }
    }
}

void liif_conv3x3_forward_cpu(liif_train_cpu *cpu, float *out, const float *inp, const float *weight,
                              const float *bias, int B, int h, int w, int IC, int OC)
{
    // out is (B,h,w,OC), inp is (B,h,w,IC), weight is (OC,IC,3,3), bias is (OC)
    permute_weight(cpu->wperm, weight, IC, OC, 0);
    conv_blocks(cpu, out, 0, inp, cpu->wperm, bias, B, h, w, IC, OC);
}

void liif_conv3x3_backward_cpu(liif_train_cpu *cpu, float *dinp, float *dweight, float *dbias, const float *dout,
                               const float *inp, const float *weight, int B, int h, int w, int IC, int OC)
{
    // dinp and inp are (B,h,w,IC), dweight and weight are (OC,IC,3,3), dbias is (OC), dout is (B,h,w,OC)
    size_t np = (size_t)B * h * w, kk = 9 * (size_t)IC, wsz = (size_t)OC * kk + OC;
    size_t stride = (size_t)cpu->max_oc * 9 * cpu->max_ic + cpu->max_oc;
    int team = 1;
    /* dweight += dout^T @ col (tap-major) and dbias += column sums of dout, per thread, then summed in
     * thread order into OIHW */
#pragma omp parallel num_threads(liif_omp_threads(cpu->threads))
    {
        int t = omp_get_thread_num();
        float *col = cpu->col + (size_t)t * CONV_BLOCK * 9 * cpu->max_ic, *dw = cpu->dw + (size_t)t * stride;
        float *db = dw + (size_t)OC * kk;
        memset(dw, 0, wsz * sizeof(float));
#pragma omp single
        team = omp_get_num_threads(); /* the runtime may give fewer threads than asked for */
#pragma omp for schedule(static)
        for (long blk = 0; blk < n_blocks(np); blk++) {
            size_t p0 = (size_t)blk * CONV_BLOCK;
            int n = (int)(np - p0 < CONV_BLOCK ? np - p0 : CONV_BLOCK);
            const float *d = dout + p0 * OC;
            im2col(col, inp, p0, n, h, w, IC);
            dnnl_sgemm('T', 'N', OC, (long)kk, n, 1.0f, d, OC, col, (long)kk, 1.0f, dw, (long)kk);
            for (int p = 0; p < n; p++)
                for (int oc = 0; oc < OC; oc++) db[oc] += d[(size_t)p * OC + oc];
        }
#pragma omp for schedule(static)
        for (long i = 0; i < (long)wsz; i++) {
            float acc = 0.0f;
            for (int u = 0; u < team; u++) acc += cpu->dw[(size_t)u * stride + i];
            if ((size_t)i >= (size_t)OC * kk) {
                dbias[i - (size_t)OC * kk] += acc;
                continue;
            }
            size_t oc = (size_t)i / kk, r = (size_t)i % kk, k = r / IC, ic = r % IC;
            dweight[(oc * IC + ic) * 9 + k] += acc;
        }
    }
    if (!dinp) return;
    /* dinp += conv3x3(dout) with the flipped, transposed weight W'[ic, oc, ky, kx] = W[oc, ic, 2-ky, 2-kx]:
     * the col2im of dout @ W, computed without scatter races */
    permute_weight(cpu->wperm, weight, IC, OC, 1);
    conv_blocks(cpu, dinp, 1, dout, cpu->wperm, NULL, B, h, w, OC, IC);
}

void liif_linear_forward_cpu(float *out, const float *inp, const float *weight, const float *bias, int N, int IC,
                             int OC)
{
    // out is (N,OC), inp is (N,IC), weight is (OC,IC), bias is (OC)
    liif_omp_threads(omp_get_max_threads());
    dnnl_sgemm('N', 'T', N, OC, IC, 1.0f, inp, IC, weight, IC, 0.0f, out, OC);
    for (size_t n = 0; n < (size_t)N; n++)
        for (int o = 0; o < OC; o++) out[n * OC + o] += bias[o];
}

void liif_linear_backward_cpu(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                              const float *weight, int N, int IC, int OC)
{
    // dinp and inp are (N,IC), dweight and weight are (OC,IC), dbias is (OC), dout is (N,OC)
    liif_omp_threads(omp_get_max_threads());
    dnnl_sgemm('T', 'N', OC, IC, N, 1.0f, dout, OC, inp, IC, 1.0f, dweight, IC);
    if (dinp) dnnl_sgemm('N', 'N', N, IC, OC, 1.0f, dout, OC, weight, IC, 1.0f, dinp, IC);
    for (size_t n = 0; n < (size_t)N; n++)
        for (int o = 0; o < OC; o++) dbias[o] += dout[n * OC + o];
}

/* ------------------------------------------------------------ fast decoder
 * MODEL.md 1.5: the feature part of the first Linear is a conv over the encoder output, computed
 * once per latent (P) instead of once per query row; its backward is the same conv's backward on
 * dP, the per-latent sum of the rows' layer-1 gradients. The MLP runs forward and backward on
 * chunks of QCHUNK queries per thread (single-threaded sgemm inside the parallel region), so no
 * (B,Q,K,D) row buffer exists and nothing of a chunk outlives it. */

enum { QCHUNK = 64 };

struct liif_train_dec_cpu {
    int B, h, w, Q, T;          /* shape and team size the scratch was made for */
    int K, nz, base, H0, L;     /* shifts, coord/cell columns, feature columns, layer-1 width, last layer */
    int dims[LIIF_MAX_HIDDEN + 2];
    size_t dec_n;               /* floats of the decoder's gradients, packed w0 b0 w1 b1 ... */
    size_t woff[LIIF_MAX_HIDDEN + 1], boff[LIIF_MAX_HIDDEN + 1]; /* layer l's weight and bias in that packing */
    float *P;                   /* (B,h,w,H0) feature part of layer 1 per latent */
    int p_ready;                /* P, wf and wz hold a forward-only pass's values, for the dpred pass after it */
    float *wf, *dwf, *dummy;    /* (H0,base) feature columns of layer 1 and their gradient; (H0) */
    float *wz, *wz_grad;        /* (nz,H0) coord/cell columns of layer 1, transposed, and their gradient */
    float *ddec;                /* (dec_n) decoder gradients of the last forward */
    float **dP;                 /* T x (B,h,w,H0) per-thread dP */
    float **dW;                 /* T x (dec_n + nz*H0) per-thread decoder gradients; the tail holds layer 1's
                                 * coord/cell columns transposed (its place in the flat part stays 0) */
    float **buf;                /* T x per-thread chunk scratch (see chunk_layout) */
    size_t buf_n;
    double *loss;               /* (T) per-thread sums of |pred - gt| */
};

static void dec_free(liif_train_dec_cpu *d)
{
    if (!d) return;
    for (int t = 0; t < d->T; t++) {
        if (d->dP) free(d->dP[t]);
        if (d->dW) free(d->dW[t]);
        if (d->buf) free(d->buf[t]);
    }
    free(d->dP); free(d->dW); free(d->buf);
    free(d->P); free(d->wz); free(d->wz_grad); free(d->wf); free(d->dwf); free(d->dummy); free(d->ddec); free(d->loss);
    free(d);
}

/* A chunk's scratch, n = QCHUNK*K rows: z (n,nz) coord/cell columns, h[l] (n,dims[l+1]) layer
 * outputs, da and db (n,maxw) gradients, wt (n) blend weights, lat (n) latent indices. */
typedef struct {
    float *z, *h[LIIF_MAX_HIDDEN + 1], *da, *db, *wt;
    int *lat;
} chunk_bufs;

static size_t chunk_layout(const liif_train_dec_cpu *d, float *base, chunk_bufs *cb)
{
    size_t n = (size_t)QCHUNK * d->K, off = 0;
    int maxw = 0;
    for (int l = 0; l <= d->L; l++) maxw = d->dims[l + 1] > maxw ? d->dims[l + 1] : maxw;
#define TAKE(p, cnt) do { if (cb) p = base + off; off += (cnt); } while (0)
    TAKE(cb->z, n * d->nz);
    for (int l = 0; l <= d->L; l++) TAKE(cb->h[l], n * d->dims[l + 1]);
    TAKE(cb->da, n * maxw);
    TAKE(cb->db, n * maxw);
    TAKE(cb->wt, n);
    if (cb) cb->lat = (int *)(base + off);
    off += n; /* ints are float-sized */
#undef TAKE
    return off;
}

static liif_train_dec_cpu *dec_new(const liif_config *c, int B, int h, int w, int Q, int T)
{
    liif_train_dec_cpu *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->B = B; d->h = h; d->w = w; d->Q = Q; d->T = T;
    d->K = c->local_ensemble ? 4 : 1;
    d->nz = c->cell_decode ? 4 : 2;
    d->base = c->n_feats * (c->feat_unfold ? 9 : 1);
    d->L = c->n_hidden;
    d->dims[0] = c->in_dim;
    for (int l = 0; l < c->n_hidden; l++) d->dims[l + 1] = c->hidden[l];
    d->dims[c->n_hidden + 1] = c->out_dim;
    d->H0 = d->dims[1];
    size_t off = 0; /* the gradients' packing: w0 b0 w1 b1 ..., the state_dict order */
    for (int l = 0; l <= d->L; l++) {
        d->woff[l] = off;
        off += (size_t)d->dims[l + 1] * d->dims[l];
        d->boff[l] = off;
        off += (size_t)d->dims[l + 1];
    }
    d->dec_n = off;
    size_t np = (size_t)d->B * d->h * d->w * d->H0;
    d->buf_n = chunk_layout(d, NULL, NULL);
    d->P = malloc(np * sizeof(float));
    d->wf = malloc((size_t)d->H0 * d->base * sizeof(float));
    d->wz = malloc((size_t)d->H0 * d->nz * sizeof(float));
    d->wz_grad = malloc((size_t)d->H0 * d->nz * sizeof(float));
    d->dwf = malloc((size_t)d->H0 * d->base * sizeof(float));
    d->dummy = malloc((size_t)d->H0 * sizeof(float));
    d->ddec = malloc(d->dec_n * sizeof(float));
    d->loss = calloc((size_t)T, sizeof(double));
    d->dP = calloc((size_t)T, sizeof(float *));
    d->dW = calloc((size_t)T, sizeof(float *));
    d->buf = calloc((size_t)T, sizeof(float *));
    int ok = d->P && d->wz && d->wz_grad && d->wf && d->dwf && d->dummy && d->ddec && d->loss && d->dP && d->dW && d->buf;
    for (int t = 0; ok && t < T; t++) {
        d->dP[t] = malloc(np * sizeof(float));
        d->dW[t] = malloc((d->dec_n + (size_t)d->nz * d->H0) * sizeof(float));
        d->buf[t] = malloc(d->buf_n * sizeof(float));
        ok = d->dP[t] && d->dW[t] && d->buf[t];
    }
    if (!ok) {
        dec_free(d);
        return NULL;
    }
    return d;
}

/* Geometry of queries [q0, q0+n) of the flattened (B,Q): per row (query, shift) its latent, its
 * coord/cell columns z and its blend weight; the arithmetic of liif_query_forward. */
static void chunk_geometry(const liif_train_dec_cpu *d, const liif_config *c, const float *coord, const float *cell,
                           size_t q0, int n, chunk_bufs *cb)
{
    int h = d->h, w = d->w, K = d->K, nz = d->nz;
    for (int q = 0; q < n; q++) {
        size_t bq = q0 + q;
        float qr = coord[bq * 2], qc = coord[bq * 2 + 1], area[4];
        for (int k = 0; k < K; k++) {
            int vr = c->local_ensemble ? (k < 2 ? -1 : 1) : 0, vc = c->local_ensemble ? (k % 2 ? 1 : -1) : 0;
            int i = liif_nearest(liif_shifted(qr, vr, h, c->local_ensemble), h);
            int j = liif_nearest(liif_shifted(qc, vc, w, c->local_ensemble), w);
            float rel_r = (qr - liif_coord(i, h)) * (float)h, rel_c = (qc - liif_coord(j, w)) * (float)w;
            float *z = cb->z + ((size_t)q * K + k) * nz;
            z[0] = rel_r;
            z[1] = rel_c;
            if (c->cell_decode) {
                z[2] = cell[bq * 2] * (float)h;
                z[3] = cell[bq * 2 + 1] * (float)w;
            }
            cb->lat[q * K + k] = (int)(bq / d->Q) * h * w + i * w + j; /* latent index in (B,h,w) */
            area[k] = fabsf(rel_r * rel_c) + 1e-9f;
        }
        if (K == 1) {
            cb->wt[q] = area[0] / area[0];
        } else {
            float tot = area[0] + area[1] + area[2] + area[3];
            for (int k = 0; k < 4; k++) cb->wt[q * 4 + k] = area[3 - k] / tot;
        }
    }
}

/* out (n,OC) = relu?(inp (n,IC) @ W^T + b), single-threaded. */
static void chunk_linear(float *out, const float *inp, const float *W, const float *b, int n, int IC, int OC, int relu)
{
    dnnl_sgemm('N', 'T', n, OC, IC, 1.0f, inp, IC, W, IC, 0.0f, out, OC);
    for (int r = 0; r < n; r++) {
        float *o = out + (size_t)r * OC;
        for (int j = 0; j < OC; j++) {
            float v = o[j] + b[j];
            o[j] = relu && v < 0.0f ? 0.0f : v;
        }
    }
}

/* dW (OC,IC) += dy^T @ x, db (OC) += column sums of dy (n,OC); single-threaded. */
static void chunk_wgrad(float *dW, float *db, const float *dy, const float *x, int n, int IC, int OC)
{
    dnnl_sgemm('T', 'N', OC, IC, n, 1.0f, dy, OC, x, IC, 1.0f, dW, IC);
    for (int r = 0; r < n; r++)
        for (int j = 0; j < OC; j++) db[j] += dy[(size_t)r * OC + j];
}

/* One pass of the decoder over every query: the layers, the queries, and where the gradient of
 * the loss with respect to pred comes from: the L1 to gt (normalised), or dpred given. */
typedef struct {
    const liif_config *c;
    const liif_train_layer *dec;   /* n_hidden + 1 layers */
    const float *feat, *coord, *cell;
    float *pred;                   /* (B,Q,OC) written */
    const float *gt;               /* L1 mode: (B,Q,OC), or NULL */
    const float *dpred;            /* given-gradient mode: (B,Q,OC), or NULL */
} dec_job;

/* One chunk of n queries starting at q0: forward, blend, and with a gradient (L1 to gt, or dpred)
 * the backward into the thread's dW and dP. Returns the chunk's sum of |pred - gt| (L1 mode). */
static double chunk_run(const liif_train_dec_cpu *d, const dec_job *job, size_t q0, int n, chunk_bufs *cb,
                        float *dW, float *dP)
{
    const liif_config *c = job->c;
    const float *coord = job->coord, *cell = job->cell;
    int with_grad = job->gt || job->dpred;
    int K = d->K, nz = d->nz, H0 = d->H0, L = d->L, OC = c->out_dim, rows = n * K;
    chunk_geometry(d, c, coord, cell, q0, n, cb);
    /* layer 1: P[lat] + z @ Wz^T + b, ReLU */
    const float *b0 = job->dec[0].b;
    for (int r = 0; r < rows; r++) {
        const float *p = d->P + (size_t)cb->lat[r] * H0, *z = cb->z + (size_t)r * nz;
        float *o = cb->h[0] + (size_t)r * H0;
        memcpy(o, p, H0 * sizeof(float));
        for (int k = 0; k < nz; k++) {
            const float *wz = d->wz + (size_t)k * H0;
            for (int j = 0; j < H0; j++) o[j] += z[k] * wz[j];
        }
        for (int j = 0; j < H0; j++) {
            float v = o[j] + b0[j];
            o[j] = L > 0 && v < 0.0f ? 0.0f : v;
        }
    }
    for (int l = 1; l <= L; l++)
        chunk_linear(cb->h[l], cb->h[l - 1], job->dec[l].w, job->dec[l].b, rows, d->dims[l], d->dims[l + 1], l < L);
    /* blend, L1, d(last layer's output) = dpred * wt */
    const float *out = cb->h[L];
    float inv = 1.0f / (float)((size_t)d->B * d->Q * OC);
    double sum = 0.0;
    for (int q = 0; q < n; q++) {
        float *pred = job->pred + (q0 + q) * OC;
        for (int o = 0; o < OC; o++) {
            float acc = 0.0f;
            for (int k = 0; k < K; k++) acc = acc + out[((size_t)q * K + k) * OC + o] * cb->wt[q * K + k];
            pred[o] = acc;
        }
        if (!with_grad) continue;
        for (int o = 0; o < OC; o++) {
            float dp;
            if (job->dpred) {
                dp = job->dpred[(q0 + q) * OC + o];
            } else {
                float diff = pred[o] - job->gt[(q0 + q) * OC + o];
                dp = diff > 0.0f ? inv : (diff < 0.0f ? -inv : 0.0f);
                sum += fabsf(diff);
            }
            for (int k = 0; k < K; k++) cb->da[((size_t)q * K + k) * OC + o] = dp * cb->wt[q * K + k];
        }
    }
    if (!with_grad) return 0.0;
    /* backward: dy holds d(layer l's output), after the ReLU mask for hidden layers */
    float *dy = cb->da, *dx = cb->db;
    for (int l = L; l >= 1; l--) {
        int IC = d->dims[l], OCl = d->dims[l + 1];
        if (l < L)
            for (size_t i = 0; i < (size_t)rows * OCl; i++) dy[i] = cb->h[l][i] > 0.0f ? dy[i] : 0.0f;
        chunk_wgrad(dW + d->woff[l], dW + d->boff[l], dy, cb->h[l - 1], rows, IC, OCl);
        dnnl_sgemm('N', 'N', rows, IC, OCl, 1.0f, dy, OCl, job->dec[l].w, IC, 0.0f, dx, IC);
        float *tmp = dy; dy = dx; dx = tmp;
    }
    /* layer 1: its coord/cell columns and bias here, its feature columns through dP */
    float *dwz = dW + d->dec_n, *db0 = dW + d->boff[0];
    for (int r = 0; r < rows; r++) {
        float *g = dy + (size_t)r * H0, *dp = dP + (size_t)cb->lat[r] * H0;
        const float *hr = cb->h[0] + (size_t)r * H0, *z = cb->z + (size_t)r * nz;
        if (L > 0)
            for (int j = 0; j < H0; j++) g[j] = hr[j] > 0.0f ? g[j] : 0.0f;
        for (int j = 0; j < H0; j++) {
            dp[j] += g[j];
            db0[j] += g[j];
        }
        for (int k = 0; k < nz; k++)
            for (int j = 0; j < H0; j++) dwz[(size_t)k * H0 + j] += g[j] * z[k];
    }
    return sum;
}

/* One pass of job over the (B,Q) queries with the scratch *slot (made or remade for this shape
 * and team): fills job->pred; with a gradient, WRITES dfeat (B,h,w,F), keeps the decoder's
 * gradients in (*slot)->ddec and returns the L1 mean in *loss (L1 mode). */
static liif_status decoder_pass(liif_train_cpu *cpu, liif_train_dec_cpu **slot, const dec_job *job, int B, int h, int w,
                                int Q, float *dfeat, float *loss, liif_error *err)
{
    const liif_config *c = job->c;
    int T = liif_omp_threads(cpu->threads), with_grad = job->gt || job->dpred;
    liif_train_dec_cpu *d = *slot;
    if (d && (d->B != B || d->h != h || d->w != w || d->Q != Q || d->T != T || d->K != (c->local_ensemble ? 4 : 1) ||
              d->dims[0] != c->in_dim)) {
        dec_free(d);
        d = *slot = NULL;
    }
    if (!d && !(d = *slot = dec_new(c, B, h, w, Q, T)))
        return liif_error_set(err, LIIF_ERR_NOMEM, "training: out of memory for the fast decoder");
    int F = c->n_feats, H0 = d->H0, D = d->dims[0];
    size_t npx = (size_t)B * h * w, nq = (size_t)B * Q;
    const float *W0 = job->dec[0].w;
    /* a dpred pass right after a forward-only pass on the same features and weights (the
     * contract of liif_decoder_cpu) finds P, wf and wz already made */
    if (!(job->dpred && d->p_ready)) {
        for (int j = 0; j < H0; j++) {
            memcpy(d->wf + (size_t)j * d->base, W0 + (size_t)j * D, d->base * sizeof(float));
            for (int k = 0; k < d->nz; k++) d->wz[(size_t)k * H0 + j] = W0[(size_t)j * D + d->base + k];
        }
        /* P (B,h,w,H0) = the feature columns of layer 1 applied to every latent's (unfolded) feature */
        if (c->feat_unfold) {
            liif_conv3x3_forward_cpu(cpu, d->P, job->feat, d->wf, NULL, B, h, w, F, H0);
        } else {
            liif_omp_threads(cpu->threads);
            dnnl_sgemm('N', 'T', (long)npx, H0, F, 1.0f, job->feat, F, d->wf, F, 0.0f, d->P, H0);
        }
    }
    d->p_ready = !with_grad;
    long nchunks = (long)((nq + QCHUNK - 1) / QCHUNK);
#pragma omp parallel num_threads(T)
    {
        int t = omp_get_thread_num();
        chunk_bufs cb;
        chunk_layout(d, d->buf[t], &cb);
        d->loss[t] = 0.0;
        if (with_grad) {
            memset(d->dW[t], 0, (d->dec_n + (size_t)d->nz * H0) * sizeof(float));
            memset(d->dP[t], 0, npx * H0 * sizeof(float));
        }
#pragma omp for schedule(static)
        for (long ch = 0; ch < nchunks; ch++) {
            size_t q0 = (size_t)ch * QCHUNK;
            int n = (int)(nq - q0 < QCHUNK ? nq - q0 : QCHUNK);
            d->loss[t] += chunk_run(d, job, q0, n, &cb, d->dW[t], d->dP[t]);
        }
        if (with_grad) { /* sum the partials in thread order: deterministic for a team size */
            int team = omp_get_num_threads();
#pragma omp for schedule(static)
            for (long i = 0; i < (long)(d->dec_n + (size_t)d->nz * H0); i++) {
                float acc = 0.0f;
                for (int u = 0; u < team; u++) acc += d->dW[u][i];
                if ((size_t)i < d->dec_n) d->ddec[i] = acc;
                else d->wz_grad[i - d->dec_n] = acc;
            }
#pragma omp for schedule(static)
            for (long i = 0; i < (long)(npx * H0); i++)
                for (int u = 1; u < team; u++) d->dP[0][i] += d->dP[u][i];
        }
    }
    if (!with_grad) {
        if (loss) *loss = 0.0f;
        return LIIF_OK;
    }
    double sum = 0.0;
    for (int t = 0; t < T; t++) sum += d->loss[t];
    if (loss) *loss = (float)(sum / (double)(nq * c->out_dim));
    /* dP back through the feature columns: their gradient and dfeat */
    memset(d->dwf, 0, (size_t)H0 * d->base * sizeof(float));
    memset(dfeat, 0, npx * F * sizeof(float));
    if (c->feat_unfold) {
        liif_conv3x3_backward_cpu(cpu, dfeat, d->dwf, d->dummy, d->dP[0], job->feat, d->wf, B, h, w, F, H0);
    } else {
        liif_omp_threads(cpu->threads);
        dnnl_sgemm('T', 'N', H0, F, (long)npx, 1.0f, d->dP[0], H0, job->feat, F, 0.0f, d->dwf, F);
        dnnl_sgemm('N', 'N', (long)npx, F, H0, 1.0f, d->dP[0], H0, d->wf, F, 0.0f, dfeat, F);
    }
    for (int j = 0; j < H0; j++) {
        float *row = d->ddec + d->woff[0] + (size_t)j * D;
        memcpy(row, d->dwf + (size_t)j * d->base, d->base * sizeof(float));
        for (int k = 0; k < d->nz; k++) row[d->base + k] = d->wz_grad[(size_t)k * H0 + j];
    }
    return LIIF_OK;
}

/* dec[l] += the packed gradients of the last pass with a gradient. */
static void add_decoder_grads(const liif_train_dec_cpu *d, const liif_train_layer *dec)
{
    for (int l = 0; l <= d->L; l++) {
        size_t nw = (size_t)d->dims[l + 1] * d->dims[l];
        for (size_t i = 0; i < nw; i++) dec[l].w[i] += d->ddec[d->woff[l] + i];
        for (int i = 0; i < d->dims[l + 1]; i++) dec[l].b[i] += d->ddec[d->boff[l] + i];
    }
}

liif_status liif_train_decoder_cpu(liif_train_cpu *cpu, const liif_train_state *s, liif_train_acts *a,
                                   const float *coord, const float *cell, int with_grad, liif_error *err)
{
    // a->feat is (B,h,w,F), coord and cell are (B,Q,2), a->gt and a->pred are (B,Q,C), a->dfeat is (B,h,w,F)
    dec_job job = {&s->cfg, s->p.dec, a->feat, coord, cell, a->pred, with_grad ? a->gt : NULL, NULL};
    return decoder_pass(cpu, &cpu->dec, &job, a->B, a->h, a->w, a->Q, a->dfeat, &a->loss, err);
}

liif_status liif_decoder_cpu(liif_train_cpu *cpu, liif_train_dec_cpu **scratch, const liif_config *c,
                             const liif_train_layer *dec, liif_train_layer *ddec, int B, int h, int w, int Q,
                             const float *feat, const float *coord, const float *cell, float *pred,
                             const float *dpred, float *dfeat, liif_error *err)
{
    // feat and dfeat are (B,h,w,F), coord and cell (B,Q,2), pred and dpred (B,Q,C)
    dec_job job = {c, dec, feat, coord, cell, pred, NULL, dpred};
    liif_status st = decoder_pass(cpu, scratch, &job, B, h, w, Q, dfeat, NULL, err);
    if (!st && dpred) add_decoder_grads(*scratch, ddec);
    return st;
}

liif_status liif_decoder_cpu_prepare(liif_train_cpu *cpu, liif_train_dec_cpu **scratch, const liif_config *c, int B,
                                     int h, int w, int Q, liif_error *err)
{
    dec_free(*scratch);
    if (!(*scratch = dec_new(c, B, h, w, Q, liif_omp_threads(cpu->threads))))
        return liif_error_set(err, LIIF_ERR_NOMEM, "training: out of memory for the fast decoder");
    return LIIF_OK;
}

void liif_decoder_cpu_free(liif_train_dec_cpu *d) { dec_free(d); }

void liif_train_decoder_grads_cpu(const liif_train_cpu *cpu, liif_train_state *s)
{
    add_decoder_grads(cpu->dec, s->g.dec);
}
