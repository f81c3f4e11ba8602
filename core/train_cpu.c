/* train_cpu.c: fast CPU training ops: conv 3x3 forward/backward as im2col + oneDNN sgemm on per-thread pixel blocks, Linear as sgemm. */
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
    float *col;     /* (threads, CONV_BLOCK, 9*max_ic) im2col blocks */
    float *dw;      /* (threads, max_oc*9*max_ic + max_oc) per-thread weight and bias gradients */
    float *wflip;   /* (max_ic, max_oc, 3, 3) flipped, transposed weight for dinp */
};

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
    cpu->wflip = malloc((size_t)cpu->max_oc * kk * sizeof(float));
    if (!cpu->col || !cpu->dw || !cpu->wflip) {
        liif_train_cpu_free(cpu);
        return NULL;
    }
    return cpu;
}

void liif_train_cpu_free(liif_train_cpu *cpu)
{
    if (!cpu) return;
    free(cpu->col);
    free(cpu->dw);
    free(cpu->wflip);
    free(cpu);
}

/* col (n, IC*9) with column ic*9 + ky*3 + kx = inp[b, y+ky-1, x+kx-1, ic] (zero outside), for the
 * n pixels p0.. of the flattened (B,h,w) grid; this order makes OIHW weights usable as they are. */
static void im2col(float *col, const float *inp, size_t p0, int n, int h, int w, int IC)
{
    for (int p = 0; p < n; p++) {
        size_t g = p0 + p;
        int x = (int)(g % w), y = (int)(g / w % h);
        size_t b = g / ((size_t)w * h);
        float *c = col + (size_t)p * IC * 9;
        for (int k = 0; k < 9; k++) {
            int yy = y + k / 3 - 1, xx = x + k % 3 - 1;
            if (yy < 0 || yy >= h || xx < 0 || xx >= w) {
                for (int ic = 0; ic < IC; ic++) c[ic * 9 + k] = 0.0f;
                continue;
            }
            const float *src = inp + ((b * h + yy) * w + xx) * IC;
            for (int ic = 0; ic < IC; ic++) c[ic * 9 + k] = src[ic];
        }
    }
}

static long n_blocks(size_t np) { return (long)((np + CONV_BLOCK - 1) / CONV_BLOCK); }

/* out (B,h,w,OC) = (accumulate ? out : 0) + conv3x3(inp (B,h,w,IC)) with weight (OC,IC*9), bias (OC) or NULL. */
static void conv_blocks(liif_train_cpu *cpu, float *out, int accumulate, const float *inp, const float *weight,
                        const float *bias, int B, int h, int w, int IC, int OC)
{
    size_t np = (size_t)B * h * w;
    int kk = 9 * IC;
#pragma omp parallel num_threads(cpu->threads)
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
    conv_blocks(cpu, out, 0, inp, weight, bias, B, h, w, IC, OC);
}

void liif_conv3x3_backward_cpu(liif_train_cpu *cpu, float *dinp, float *dweight, float *dbias, const float *dout,
                               const float *inp, const float *weight, int B, int h, int w, int IC, int OC)
{
    // dinp and inp are (B,h,w,IC), dweight and weight are (OC,IC,3,3), dbias is (OC), dout is (B,h,w,OC)
    size_t np = (size_t)B * h * w, kk = 9 * (size_t)IC, wsz = (size_t)OC * kk + OC;
    size_t stride = (size_t)cpu->max_oc * 9 * cpu->max_ic + cpu->max_oc;
    int team = 1;
    /* dweight += dout^T @ col and dbias += column sums of dout, per thread, then summed in thread order */
#pragma omp parallel num_threads(cpu->threads)
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
            if ((size_t)i < (size_t)OC * kk) dweight[i] += acc;
            else dbias[i - (size_t)OC * kk] += acc;
        }
    }
    if (!dinp) return;
    /* dinp += conv3x3(dout) with the flipped, transposed weight W'[ic, oc, ky, kx] = W[oc, ic, 2-ky, 2-kx]:
     * the col2im of dout @ W, computed without scatter races */
    for (int oc = 0; oc < OC; oc++)
        for (int ic = 0; ic < IC; ic++)
            for (int k = 0; k < 9; k++)
                cpu->wflip[((size_t)ic * OC + oc) * 9 + k] = weight[((size_t)oc * IC + ic) * 9 + (8 - k)];
    conv_blocks(cpu, dinp, 1, dout, cpu->wflip, NULL, B, h, w, OC, IC);
}

void liif_linear_forward_cpu(float *out, const float *inp, const float *weight, const float *bias, int N, int IC,
                             int OC)
{
    // out is (N,OC), inp is (N,IC), weight is (OC,IC), bias is (OC)
    dnnl_sgemm('N', 'T', N, OC, IC, 1.0f, inp, IC, weight, IC, 0.0f, out, OC);
    for (size_t n = 0; n < (size_t)N; n++)
        for (int o = 0; o < OC; o++) out[n * OC + o] += bias[o];
}

void liif_linear_backward_cpu(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                              const float *weight, int N, int IC, int OC)
{
    // dinp and inp are (N,IC), dweight and weight are (OC,IC), dbias is (OC), dout is (N,OC)
    dnnl_sgemm('T', 'N', OC, IC, N, 1.0f, dout, OC, inp, IC, 1.0f, dweight, IC);
    if (dinp) dnnl_sgemm('N', 'N', N, IC, OC, 1.0f, dout, OC, weight, IC, 1.0f, dinp, IC);
    for (size_t n = 0; n < (size_t)N; n++)
        for (int o = 0; o < OC; o++) dbias[o] += dout[n * OC + o];
}
