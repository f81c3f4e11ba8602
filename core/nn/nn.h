/* nn.h: NCHW network layers (reference loops and fast CPU convolutions), forward/backward pairs, for the LIIF-GAN losses (discriminator, VGG19) and LPIPS. */
#ifndef LIIF_NN_H
#define LIIF_NN_H

#include <stddef.h>
#include <stdint.h>

/* Layout and letters: every image and feature map here is NCHW, row-major (last index fastest),
 * as PyTorch and the component goldens store them (unlike the LIIF trainer's channels-last maps):
 *   B batch, IC/OC in/out channels, H W input rows/cols, OH OW output rows/cols, C channels,
 *   k kernel side, N rows of a matrix. Conv weights are OIHW (OC,IC,k,k), Linear (OC,IC).
 * Gradients are named d<x> and ACCUMULATE (+=) into their buffers, as in train.h, unless a
 * function says it writes. */

/* Output side of a convolution: (H + 2 pad - k) / stride + 1. */
static inline int nn_conv_out(int H, int k, int stride, int pad) { return (H + 2 * pad - k) / stride + 1; }

/* out (B,OC,OH,OW) = conv(inp (B,IC,H,W)) with weight (OC,IC,k,k), bias (OC) or NULL, zero padding. */
void nn_conv2d_forward(float *out, const float *inp, const float *weight, const float *bias, int B, int IC, int H,
                        int W, int OC, int k, int stride, int pad);
/* dinp (B,IC,H,W) (may be NULL), dweight (OC,IC,k,k) (may be NULL), dbias (OC) (may be NULL)
 * += from dout (B,OC,OH,OW). */
void nn_conv2d_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                         const float *weight, int B, int IC, int H, int W, int OC, int k, int stride, int pad);

/* BatchNorm2d in training mode: out (B,C,HW) = (inp - mean) * rstd * gamma + beta with the batch
 * statistics over B*HW values per channel, the biased variance and eps; saves mean (C) and
 * rstd (C) = 1/sqrt(var + eps) for the backward; when running_mean/running_var (C) are not NULL,
 * updates them as r = (1 - momentum) r + momentum s with the unbiased variance (n/(n-1)).
 * out may alias inp. */
void nn_batchnorm_forward(float *out, float *mean, float *rstd, float *running_mean, float *running_var,
                           const float *inp, const float *gamma, const float *beta, int B, int C, int HW,
                           float momentum, float eps);
/* dinp (B,C,HW) (may be NULL), dgamma (C), dbeta (C) += from dout (B,C,HW); inp is the forward's
 * input, mean and rstd what it saved. */
void nn_batchnorm_backward(float *dinp, float *dgamma, float *dbeta, const float *dout, const float *inp,
                            const float *mean, const float *rstd, const float *gamma, int B, int C, int HW);

/* out (n) = inp > 0 ? inp : slope * inp; out may alias inp. */
void nn_leakyrelu_forward(float *out, const float *inp, size_t n, float slope);
/* WRITES dinp (n) = dout * (out > 0 ? 1 : slope), out the forward's output (slope > 0);
 * dinp may alias dout. */
void nn_leakyrelu_backward(float *dinp, const float *dout, const float *out, size_t n, float slope);

/* out (B,C,H/2,W/2) = max over each 2x2 block of inp (B,C,H,W) (stride 2, odd last row/col
 * dropped); arg (B,C,H/2,W/2) receives the index y*W + x of the maximum within its plane, the
 * first in scan order on ties (PyTorch's choice). */
void nn_maxpool2x2_forward(float *out, int32_t *arg, const float *inp, int B, int C, int H, int W);
/* dinp (B,C,H,W) += dout (B,C,H/2,W/2) routed to the saved maxima. */
void nn_maxpool2x2_backward(float *dinp, const float *dout, const int32_t *arg, int B, int C, int H, int W);

/* out (N,OC) = inp (N,IC) @ weight (OC,IC)^T + bias (OC) (bias may be NULL). */
void nn_linear_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int IC, int OC);
/* dinp (N,IC), dweight (OC,IC), dbias (OC) (each may be NULL) += from dout (N,OC). */
void nn_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                         const float *weight, int N, int IC, int OC);

/* Mean over n logits z of BCE(z, target) = max(z,0) - z t + log(1 + exp(-|z|)). */
float nn_bce_logits_forward(const float *z, float target, size_t n);
/* dz (n) += scale * (sigmoid(z) - target) / n. */
void nn_bce_logits_backward(float *dz, const float *z, float target, size_t n, float scale);

/* Mean |a - b| over n values. */
float nn_l1_forward(const float *a, const float *b, size_t n);
/* da (n) += scale * sign(a - b) / n, sign(0) = 0. */
void nn_l1_backward(float *da, const float *a, const float *b, size_t n, float scale);

/* ------------------------------------------------------------------ fast CPU convolutions
 * Same contracts as nn_conv2d_forward/backward; per-sample im2col + oneDNN sgemm, samples spread
 * over threads. Results differ from the reference by float summation order only (the reference
 * sums in double) and are deterministic for a given thread count. */
typedef struct nn_cpu nn_cpu;

/* Floats of one sample's im2col for a convolution of this shape (the max_col a nn_cpu needs). */
size_t nn_conv2d_col_size(int IC, int H, int W, int k, int stride, int pad);
/* Scratch for convolutions whose im2col needs at most max_col floats per sample and whose weight
 * and bias gradients hold at most max_w floats, on `threads` threads (0 = all cores, never above
 * OMP_THREAD_LIMIT). NULL when out of memory. */
nn_cpu *nn_cpu_new(size_t max_col, size_t max_w, int threads);
void nn_cpu_free(nn_cpu *cpu);
void nn_conv2d_forward_cpu(nn_cpu *cpu, float *out, const float *inp, const float *weight, const float *bias, int B,
                            int IC, int H, int W, int OC, int k, int stride, int pad);
void nn_conv2d_backward_cpu(nn_cpu *cpu, float *dinp, float *dweight, float *dbias, const float *dout,
                             const float *inp, const float *weight, int B, int IC, int H, int W, int OC, int k,
                             int stride, int pad);

#endif
