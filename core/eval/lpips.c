/* lpips.c: AlexNet-LPIPS v0.1: weight loading (lpips package keys), AlexNet features, the distance (reference loops). */
#include "lpips.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dnnl.h>
#include <omp.h>

#include "nn.h"
#include "internal.h"

const liif_lpips_layer liif_lpips_layers[LIIF_LPIPS_TAPS] = {
    {0, 3, 64, 11, 4, 2, 0},   /* conv1, relu1 = features.1 */
    {3, 64, 192, 5, 1, 2, 1},  /* maxpool, conv2, relu2 = features.4 */
    {6, 192, 384, 3, 1, 1, 1}, /* maxpool, conv3, relu3 = features.7 */
    {8, 384, 256, 3, 1, 1, 0}, /* conv4, relu4 = features.9 */
    {10, 256, 256, 3, 1, 1, 0}, /* conv5, relu5 = features.11 */
};

/* The lpips package's ScalingLayer, float32 as it stores them. */
static const float lpips_shift[3] = {-0.030f, -0.088f, -0.188f};
static const float lpips_scale[3] = {0.458f, 0.448f, 0.450f};

enum { POOL_K = 3, POOL_STRIDE = 2 };

static size_t conv_weights(const liif_lpips_layer *L) { return (size_t)L->oc * L->ic * L->ksize * L->ksize; }

liif_status liif_lpips_new(liif_lpips **out, liif_error *err)
{
    *out = NULL;
    liif_lpips *lp = calloc(1, sizeof *lp);
    if (!lp) return liif_error_set(err, LIIF_ERR_NOMEM, "LPIPS: out of memory");
    for (int k = 0; k < LIIF_LPIPS_TAPS; k++)
        lp->n_params += conv_weights(&liif_lpips_layers[k]) + 2 * (size_t)liif_lpips_layers[k].oc;
    lp->params = calloc(lp->n_params, sizeof(float));
    if (!lp->params) {
        free(lp);
        return liif_error_set(err, LIIF_ERR_NOMEM, "LPIPS: out of memory for the weights");
    }
    float *p = lp->params;
    for (int k = 0; k < LIIF_LPIPS_TAPS; k++) {
        const liif_lpips_layer *L = &liif_lpips_layers[k];
        lp->w[k] = p;
        p += conv_weights(L);
        lp->b[k] = p;
        p += L->oc;
        lp->lin[k] = p;
        p += L->oc;
    }
    *out = lp;
    return LIIF_OK;
}

void liif_lpips_free(liif_lpips *lp)
{
    if (!lp) return;
    free(lp->params);
    free(lp);
}

liif_status liif_lpips_from_file(const liif_st_file *f, liif_lpips **out, liif_error *err)
{
    liif_lpips *lp;
    liif_status st = liif_lpips_new(&lp, err);
    char name[64];
    for (int k = 0; st == LIIF_OK && k < LIIF_LPIPS_TAPS; k++) {
        const liif_lpips_layer *L = &liif_lpips_layers[k];
        int64_t ws[4] = {L->oc, L->ic, L->ksize, L->ksize}, bs[1] = {L->oc}, ls[4] = {1, L->oc, 1, 1};
        snprintf(name, sizeof name, "net.features.%d.weight", L->module);
        st = liif_st_read_f32(f, name, 4, ws, lp->w[k], err);
        snprintf(name, sizeof name, "net.features.%d.bias", L->module);
        if (st == LIIF_OK) st = liif_st_read_f32(f, name, 1, bs, lp->b[k], err);
        snprintf(name, sizeof name, "lin%d.model.1.weight", k);
        if (st == LIIF_OK) st = liif_st_read_f32(f, name, 4, ls, lp->lin[k], err);
    }
    if (st != LIIF_OK) {
        liif_lpips_free(lp);
        *out = NULL;
        return st;
    }
    *out = lp;
    return LIIF_OK;
}

liif_status liif_lpips_load(const char *path, liif_lpips **out, liif_error *err)
{
    liif_st_file *f;
    *out = NULL;
    liif_status st = liif_st_open(path, &f, err);
    if (st != LIIF_OK) return st;
    st = liif_lpips_from_file(f, out, err);
    liif_st_close(f);
    return st;
}

liif_status liif_lpips_save(const liif_lpips *lp, const char *path, liif_error *err)
{
    liif_st_entry e[3 * LIIF_LPIPS_TAPS];
    char names[3 * LIIF_LPIPS_TAPS][64];
    int n = 0;
    for (int k = 0; k < LIIF_LPIPS_TAPS; k++) {
        const liif_lpips_layer *L = &liif_lpips_layers[k];
        snprintf(names[n], sizeof names[n], "net.features.%d.weight", L->module);
        e[n] = (liif_st_entry){names[n], LIIF_DT_F32, 4, {L->oc, L->ic, L->ksize, L->ksize}, lp->w[k]};
        n++;
        snprintf(names[n], sizeof names[n], "net.features.%d.bias", L->module);
        e[n] = (liif_st_entry){names[n], LIIF_DT_F32, 1, {L->oc}, lp->b[k]};
        n++;
        snprintf(names[n], sizeof names[n], "lin%d.model.1.weight", k);
        e[n] = (liif_st_entry){names[n], LIIF_DT_F32, 4, {1, L->oc, 1, 1}, lp->lin[k]};
        n++;
    }
    return liif_st_write(path, e, n, NULL, 0, err);
}

/* ------------------------------------------------------------------ features */

static int pool_out(int n) { return n < POOL_K ? 0 : (n - POOL_K) / POOL_STRIDE + 1; }

liif_status liif_lpips_feats_new(int H, int W, liif_lpips_feats **out, liif_error *err)
{
    *out = NULL;
    if (H < LIIF_LPIPS_MIN_SIDE || W < LIIF_LPIPS_MIN_SIDE || H > LIIF_MAX_SIDE || W > LIIF_MAX_SIDE)
        return liif_error_set(err, LIIF_ERR_ARG, "LPIPS: a %dx%d image is outside %d..%d px per side", W, H,
                              LIIF_LPIPS_MIN_SIDE, LIIF_MAX_SIDE);
    liif_lpips_feats *f = calloc(1, sizeof *f);
    if (!f) return liif_error_set(err, LIIF_ERR_NOMEM, "LPIPS: out of memory");
    f->H = H;
    f->W = W;
    size_t total = (size_t)3 * H * W, pool_n[LIIF_LPIPS_TAPS] = {0};
    int h = H, w = W, c = 3;
    for (int k = 0; k < LIIF_LPIPS_TAPS; k++) {
        const liif_lpips_layer *L = &liif_lpips_layers[k];
        if (L->pool_before) {
            h = pool_out(h);
            w = pool_out(w);
            pool_n[k] = (size_t)c * h * w;
            total += pool_n[k];
        }
        f->c[k] = c = L->oc;
        f->h[k] = h = nn_conv_out(h, L->ksize, L->stride, L->pad);
        f->w[k] = w = nn_conv_out(w, L->ksize, L->stride, L->pad);
        total += (size_t)c * h * w;
    }
    f->mem = malloc(total * sizeof(float));
    if (!f->mem) {
        free(f);
        return liif_error_set(err, LIIF_ERR_NOMEM, "LPIPS: out of memory for the features of a %dx%d image", W, H);
    }
    float *p = f->mem;
    f->x = p;
    p += (size_t)3 * H * W;
    for (int k = 0; k < LIIF_LPIPS_TAPS; k++) {
        if (pool_n[k]) {
            f->pool[k] = p;
            p += pool_n[k];
        }
        f->tap[k] = p;
        p += (size_t)f->c[k] * f->h[k] * f->w[k];
    }
    *out = f;
    return LIIF_OK;
}

void liif_lpips_feats_free(liif_lpips_feats *f)
{
    if (!f) return;
    free(f->mem);
    free(f);
}

/* out (C,OH,OW) = max over 3x3 windows of inp (C,H,W), stride 2, no padding, floor mode. */
static void maxpool3s2(float *out, const float *inp, int C, int H, int W)
{
    int OH = pool_out(H), OW = pool_out(W);
    for (int c = 0; c < C; c++) {
        const float *x = inp + (size_t)c * H * W;
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                const float *r = x + (size_t)oy * POOL_STRIDE * W + ox * POOL_STRIDE;
                float m = r[0];
                for (int dy = 0; dy < POOL_K; dy++)
                    for (int dx = 0; dx < POOL_K; dx++) m = r[dy * W + dx] > m ? r[dy * W + dx] : m;
                out[((size_t)c * OH + oy) * OW + ox] = m;
            }
    }
}

/* out (oc,OH,OW) = ReLU(conv_k(inp (ic,H,W))), reference: the plain-loop conv (double sums) on
 * blocks of output channels, one OpenMP task each. */
static void conv_relu_ref(const liif_lpips *lp, int k, float *out, const float *inp, int H, int W, int threads)
{
    enum { BLOCK = 8 };
    const liif_lpips_layer *L = &liif_lpips_layers[k];
    int OH = nn_conv_out(H, L->ksize, L->stride, L->pad), OW = nn_conv_out(W, L->ksize, L->stride, L->pad);
    int n_blocks = (L->oc + BLOCK - 1) / BLOCK;
    size_t wblock = (size_t)L->ic * L->ksize * L->ksize;
#pragma omp parallel for schedule(dynamic) num_threads(threads)
    for (int i = 0; i < n_blocks; i++) {
        int oc0 = i * BLOCK, noc = L->oc - oc0 < BLOCK ? L->oc - oc0 : BLOCK;
        float *o = out + (size_t)oc0 * OH * OW;
        nn_conv2d_forward(o, inp, lp->w[k] + oc0 * wblock, lp->b[k] + oc0, 1, L->ic, H, W, noc, L->ksize, L->stride,
                           L->pad);
        for (size_t j = 0; j < (size_t)noc * OH * OW; j++) o[j] = o[j] > 0.0f ? o[j] : 0.0f;
    }
}

/* The same, fast: blocks of COL_BLOCK output positions, each an im2col col (K, n) with
 * K = ic*k*k in the weight's (ic, ky, kx) order, then out[:, block] = W (oc, K) @ col by a
 * single-threaded sgemm (oneDNN inside an OpenMP parallel region), bias and ReLU. */
static liif_status conv_relu_fast(const liif_lpips *lp, int k, float *out, const float *inp, int H, int W,
                                  int threads)
{
    enum { COL_BLOCK = 256 };
    const liif_lpips_layer *L = &liif_lpips_layers[k];
    int ks = L->ksize, OH = nn_conv_out(H, ks, L->stride, L->pad), OW = nn_conv_out(W, ks, L->stride, L->pad);
    int K = L->ic * ks * ks, failed = 0;
    size_t np = (size_t)OH * OW;
    long n_blocks = (long)((np + COL_BLOCK - 1) / COL_BLOCK);
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        float *col = malloc((size_t)K * COL_BLOCK * sizeof(float));
        if (!col) failed = 1;
#pragma omp for schedule(dynamic)
        for (long blk = 0; blk < n_blocks; blk++) {
            if (failed) continue;
            size_t p0 = (size_t)blk * COL_BLOCK;
            int n = (int)(np - p0 < COL_BLOCK ? np - p0 : COL_BLOCK);
            for (int r = 0; r < K; r++) { /* row r = (ic, ky, kx); zero outside the image */
                int ic = r / (ks * ks), ky = r / ks % ks, kx = r % ks;
                const float *x = inp + (size_t)ic * H * W;
                float *dst = col + (size_t)r * n;
                for (int p = 0; p < n; p++) {
                    int oy = (int)((p0 + p) / OW), ox = (int)((p0 + p) % OW);
                    int iy = oy * L->stride + ky - L->pad, ix = ox * L->stride + kx - L->pad;
                    dst[p] = iy < 0 || iy >= H || ix < 0 || ix >= W ? 0.0f : x[(size_t)iy * W + ix];
                }
            }
            dnnl_sgemm('N', 'N', L->oc, n, K, 1.0f, lp->w[k], K, col, n, 0.0f, out + p0, (int64_t)np);
            for (int c = 0; c < L->oc; c++) {
                float *o = out + (size_t)c * np + p0, bc = lp->b[k][c];
                for (int p = 0; p < n; p++) o[p] = o[p] + bc > 0.0f ? o[p] + bc : 0.0f;
            }
        }
        free(col);
    }
    return failed ? LIIF_ERR_NOMEM : LIIF_OK;
}

/* The AlexNet part, from f->x (already scaled). */
static liif_status features(const liif_lpips *lp, liif_lpips_feats *f, liif_error *err)
{
    const float *in = f->x;
    int h = f->H, w = f->W, c = 3, threads = liif_omp_threads(lp->threads);
    for (int k = 0; k < LIIF_LPIPS_TAPS; k++) {
        if (liif_lpips_layers[k].pool_before) {
            maxpool3s2(f->pool[k], in, c, h, w);
            in = f->pool[k];
            h = pool_out(h);
            w = pool_out(w);
        }
        if (lp->reference) {
            conv_relu_ref(lp, k, f->tap[k], in, h, w, threads);
        } else if (conv_relu_fast(lp, k, f->tap[k], in, h, w, threads) != LIIF_OK) {
            return liif_error_set(err, LIIF_ERR_NOMEM, "LPIPS: out of memory for the im2col blocks");
        }
        in = f->tap[k];
        c = f->c[k];
        h = f->h[k];
        w = f->w[k];
    }
    return LIIF_OK;
}

liif_status liif_lpips_forward(const liif_lpips *lp, const float *x, liif_lpips_feats *f, liif_error *err)
{
    size_t plane = (size_t)f->H * f->W;
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < plane; i++) f->x[c * plane + i] = (x[c * plane + i] - lpips_shift[c]) / lpips_scale[c];
    return features(lp, f, err);
}

liif_status liif_lpips_forward_rgb(const liif_lpips *lp, const float *rgb, size_t stride, liif_lpips_feats *f,
                                   liif_error *err)
{
    size_t plane = (size_t)f->H * f->W;
    for (int y = 0; y < f->H; y++)
        for (int x = 0; x < f->W; x++)
            for (int c = 0; c < 3; c++) {
                float v = 2.0f * rgb[(size_t)y * stride + 3 * (size_t)x + c] - 1.0f; /* lpips normalize=True */
                f->x[c * plane + (size_t)y * f->W + x] = (v - lpips_shift[c]) / lpips_scale[c];
            }
    return features(lp, f, err);
}

double liif_lpips_compare(const liif_lpips *lp, const liif_lpips_feats *a, const liif_lpips_feats *b,
                          double *per_layer)
{
    double dist = 0.0;
    for (int k = 0; k < LIIF_LPIPS_TAPS; k++) {
        size_t hw = (size_t)a->h[k] * a->w[k];
        const float *f0 = a->tap[k], *f1 = b->tap[k], *lin = lp->lin[k];
        double sum = 0.0;
        for (size_t p = 0; p < hw; p++) {
            double n0 = 0.0, n1 = 0.0;
            for (int c = 0; c < a->c[k]; c++) {
                n0 += (double)f0[c * hw + p] * f0[c * hw + p];
                n1 += (double)f1[c * hw + p] * f1[c * hw + p];
            }
            n0 = 1.0 / (sqrt(n0) + 1e-10); /* the lpips package adds eps to the norm */
            n1 = 1.0 / (sqrt(n1) + 1e-10);
            for (int c = 0; c < a->c[k]; c++) {
                double d = f0[c * hw + p] * n0 - f1[c * hw + p] * n1;
                sum += lin[c] * d * d;
            }
        }
        double res = sum / (double)hw;
        if (per_layer) per_layer[k] = res;
        dist += res;
    }
    return dist;
}

liif_status liif_lpips_distance(const liif_lpips *lp, const float *x0, const float *x1, int H, int W,
                                double *dist, double *per_layer, liif_error *err)
{
    liif_lpips_feats *a = NULL, *b = NULL;
    liif_status st = liif_lpips_feats_new(H, W, &a, err);
    if (st == LIIF_OK) st = liif_lpips_feats_new(H, W, &b, err);
    if (st == LIIF_OK) st = liif_lpips_forward(lp, x0, a, err);
    if (st == LIIF_OK) st = liif_lpips_forward(lp, x1, b, err);
    if (st == LIIF_OK) *dist = liif_lpips_compare(lp, a, b, per_layer);
    liif_lpips_feats_free(a);
    liif_lpips_feats_free(b);
    return st;
}
