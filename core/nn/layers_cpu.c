/* layers_cpu.c: fast NCHW convolutions (discriminator, VGG19, LPIPS): per-sample im2col + oneDNN sgemm, samples spread over threads. */
#include <dnnl.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "nn.h"
#include "internal.h"

struct nn_cpu {
    int threads;
    size_t max_col, max_w;
    float *col; /* (threads, max_col): one sample's im2col, reused for its gradient */
    float *dw;  /* (threads, max_w): per-thread weight and bias gradients, summed in thread order */
};

nn_cpu *nn_cpu_new(size_t max_col, size_t max_w, int threads)
{
    nn_cpu *cpu = calloc(1, sizeof *cpu);
    if (!cpu) return NULL;
    cpu->threads = threads > 0 ? threads : omp_get_num_procs();
    cpu->max_col = max_col;
    cpu->max_w = max_w;
    cpu->col = malloc((size_t)cpu->threads * max_col * sizeof(float));
    cpu->dw = malloc((size_t)cpu->threads * max_w * sizeof(float));
    if (!cpu->col || !cpu->dw) {
        nn_cpu_free(cpu);
        return NULL;
    }
    return cpu;
}

void nn_cpu_free(nn_cpu *cpu)
{
    if (!cpu) return;
    free(cpu->col);
    free(cpu->dw);
    free(cpu);
}

size_t nn_conv2d_col_size(int IC, int H, int W, int k, int stride, int pad)
{
    return (size_t)IC * k * k * nn_conv_out(H, k, stride, pad) * nn_conv_out(W, k, stride, pad);
}

/* col (IC*k*k, OH*OW), row (ic*k + ky)*k + kx (the OIHW weight's column order), column oy*OW + ox
 * = x[ic, oy*stride + ky - pad, ox*stride + kx - pad], zero outside; x is one sample (IC,H,W). */
static void im2col(float *col, const float *x, int IC, int H, int W, int k, int stride, int pad, int OH, int OW)
{
    for (int ic = 0; ic < IC; ic++)
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                float *row = col + ((size_t)(ic * k + ky) * k + kx) * OH * OW;
                const float *xc = x + (size_t)ic * H * W;
                for (int oy = 0; oy < OH; oy++) {
                    int iy = oy * stride + ky - pad;
                    float *r = row + (size_t)oy * OW;
                    if (iy < 0 || iy >= H) {
                        memset(r, 0, OW * sizeof(float));
                        continue;
                    }
                    const float *xr = xc + (size_t)iy * W;
                    for (int ox = 0; ox < OW; ox++) {
                        int ix = ox * stride + kx - pad;
                        r[ox] = ix >= 0 && ix < W ? xr[ix] : 0.0f;
                    }
                }
            }
}

/* dx (IC,H,W) += the adjoint of im2col applied to dcol (IC*k*k, OH*OW). */
static void col2im(float *dx, const float *dcol, int IC, int H, int W, int k, int stride, int pad, int OH, int OW)
{
    for (int ic = 0; ic < IC; ic++)
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                const float *row = dcol + ((size_t)(ic * k + ky) * k + kx) * OH * OW;
                float *xc = dx + (size_t)ic * H * W;
                for (int oy = 0; oy < OH; oy++) {
                    int iy = oy * stride + ky - pad;
                    if (iy < 0 || iy >= H) continue;
                    const float *r = row + (size_t)oy * OW;
                    float *xr = xc + (size_t)iy * W;
                    for (int ox = 0; ox < OW; ox++) {
                        int ix = ox * stride + kx - pad;
                        if (ix >= 0 && ix < W) xr[ix] += r[ox];
                    }
                }
            }
}

/* Samples go to threads (each runs a single-threaded sgemm inside the parallel region) when there
 * are at least as many samples as threads; otherwise they run one after another, each sgemm on the
 * whole team. */
static int spread_samples(const nn_cpu *cpu, int B) { return B >= liif_omp_threads(cpu->threads); }

typedef struct {
    const float *inp, *weight, *bias, *dout;
    float *out, *dinp;
    int IC, H, W, OC, k, stride, pad, OH, OW;
} conv_args;

static void forward_sample(const conv_args *c, float *col, int b)
{
    long KK = (long)c->IC * c->k * c->k, NP = (long)c->OH * c->OW;
    float *o = c->out + (size_t)b * c->OC * NP;
    im2col(col, c->inp + (size_t)b * c->IC * c->H * c->W, c->IC, c->H, c->W, c->k, c->stride, c->pad, c->OH, c->OW);
    dnnl_sgemm('N', 'N', c->OC, NP, KK, 1.0f, c->weight, KK, col, NP, 0.0f, o, NP);
    for (int oc = 0; c->bias && oc < c->OC; oc++)
        for (long p = 0; p < NP; p++) o[(size_t)oc * NP + p] += c->bias[oc];
}

/* dw (OC*KK) += this sample's weight gradient when dw, db (OC) += its bias gradient when db,
 * dinp's sample b += its input gradient when c->dinp. */
static void backward_sample(const conv_args *c, float *col, float *dw, float *db, int b)
{
    long KK = (long)c->IC * c->k * c->k, NP = (long)c->OH * c->OW;
    const float *d = c->dout + (size_t)b * c->OC * NP;
    size_t xo = (size_t)b * c->IC * c->H * c->W;
    if (dw) {
        im2col(col, c->inp + xo, c->IC, c->H, c->W, c->k, c->stride, c->pad, c->OH, c->OW);
        dnnl_sgemm('N', 'T', c->OC, KK, NP, 1.0f, d, NP, col, NP, 1.0f, dw, KK);
    }
    for (int oc = 0; db && oc < c->OC; oc++) {
        float s = 0.0f;
        for (long p = 0; p < NP; p++) s += d[(size_t)oc * NP + p];
        db[oc] += s;
    }
    if (c->dinp) { /* dcol = W^T dout, scattered back into this sample's dinp: no races */
        dnnl_sgemm('T', 'N', KK, NP, c->OC, 1.0f, c->weight, KK, d, NP, 0.0f, col, NP);
        col2im(c->dinp + xo, col, c->IC, c->H, c->W, c->k, c->stride, c->pad, c->OH, c->OW);
    }
}

void nn_conv2d_forward_cpu(nn_cpu *cpu, float *out, const float *inp, const float *weight, const float *bias, int B,
                            int IC, int H, int W, int OC, int k, int stride, int pad)
{
    // out is (B,OC,OH,OW), inp is (B,IC,H,W), weight is (OC,IC,k,k), bias is (OC) or NULL
    conv_args c = {inp, weight, bias, NULL, out, NULL, IC, H, W, OC, k, stride, pad,
                   nn_conv_out(H, k, stride, pad), nn_conv_out(W, k, stride, pad)};
    if (spread_samples(cpu, B)) {
#pragma omp parallel for schedule(static) num_threads(liif_omp_threads(cpu->threads))
        for (int b = 0; b < B; b++) forward_sample(&c, cpu->col + (size_t)omp_get_thread_num() * cpu->max_col, b);
    } else {
        for (int b = 0; b < B; b++) forward_sample(&c, cpu->col, b);
    }
}

void nn_conv2d_backward_cpu(nn_cpu *cpu, float *dinp, float *dweight, float *dbias, const float *dout,
                             const float *inp, const float *weight, int B, int IC, int H, int W, int OC, int k,
                             int stride, int pad)
{
    // dinp and inp are (B,IC,H,W), dweight and weight are (OC,IC,k,k), dbias is (OC), dout is (B,OC,OH,OW)
    conv_args c = {inp, weight, NULL, dout, NULL, dinp, IC, H, W, OC, k, stride, pad,
                   nn_conv_out(H, k, stride, pad), nn_conv_out(W, k, stride, pad)};
    size_t KK = (size_t)IC * k * k, wsz = (size_t)OC * KK + OC;
    int params = dweight || dbias, used = 1;
    if (spread_samples(cpu, B)) {
#pragma omp parallel num_threads(liif_omp_threads(cpu->threads))
        {
            int t = omp_get_thread_num();
            float *dw = cpu->dw + (size_t)t * cpu->max_w;
            if (params) memset(dw, 0, wsz * sizeof(float));
#pragma omp single
            used = omp_get_num_threads(); /* the runtime may give fewer threads than asked for */
#pragma omp for schedule(static)
            for (int b = 0; b < B; b++)
                backward_sample(&c, cpu->col + (size_t)t * cpu->max_col, dweight ? dw : NULL,
                                dbias ? dw + OC * KK : NULL, b);
        }
    } else {
        if (params) memset(cpu->dw, 0, wsz * sizeof(float));
        for (int b = 0; b < B; b++)
            backward_sample(&c, cpu->col, dweight ? cpu->dw : NULL, dbias ? cpu->dw + OC * KK : NULL, b);
    }
    if (!params) return;
    for (size_t i = 0; i < wsz; i++) { /* in thread order: deterministic for a thread count */
        float acc = 0.0f;
        for (int u = 0; u < used; u++) acc += cpu->dw[(size_t)u * cpu->max_w + i];
        if (i < OC * KK) {
            if (dweight) dweight[i] += acc;
        } else if (dbias) {
            dbias[i - OC * KK] += acc;
        }
    }
}
