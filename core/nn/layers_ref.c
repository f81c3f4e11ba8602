/* layers_ref.c: reference (plain loop) NCHW layers: conv kxk, BatchNorm, LeakyReLU, max-pool, Linear, BCE, L1, forward and backward. */
#include "nn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>


/* Output columns [*lo, *hi) whose input column ox*stride + off falls inside [0, W). */
static void valid_cols(int off, int stride, int W, int OW, int *lo, int *hi)
{
    int a = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int b = W - 1 - off < 0 ? 0 : (W - 1 - off) / stride + 1;
    *lo = a;
    *hi = b < OW ? b : OW;
    if (*hi < *lo) *hi = *lo;
}

void nn_conv2d_forward(float *out, const float *inp, const float *weight, const float *bias, int B, int IC, int H,
                        int W, int OC, int k, int stride, int pad)
{
    /* Sums in double: deep VGG layers add up to 4608 products per output, and the float error of a
     * plain running sum would flip ReLU and max-pool decisions that PyTorch's blocked sums keep. */
    int OH = nn_conv_out(H, k, stride, pad), OW = nn_conv_out(W, k, stride, pad);
    double *acc = malloc((size_t)OH * OW * sizeof(double));
    if (!acc) abort(); /* reference code: a few KB per plane */
    for (int b = 0; b < B; b++)
        for (int oc = 0; oc < OC; oc++) {
            for (int i = 0; i < OH * OW; i++) acc[i] = bias ? bias[oc] : 0.0;
            for (int ic = 0; ic < IC; ic++) {
                const float *x = inp + ((size_t)b * IC + ic) * H * W;
                const float *wk = weight + ((size_t)oc * IC + ic) * k * k;
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++) {
                        double wv = wk[ky * k + kx];
                        int lo, hi, off = kx - pad;
                        valid_cols(off, stride, W, OW, &lo, &hi);
                        for (int oy = 0; oy < OH; oy++) {
                            int iy = oy * stride + ky - pad;
                            if (iy < 0 || iy >= H) continue;
                            const float *xr = x + (size_t)iy * W + off;
                            double *orow = acc + (size_t)oy * OW;
                            for (int ox = lo; ox < hi; ox++) orow[ox] += wv * xr[ox * stride];
                        }
                    }
            }
            float *o = out + ((size_t)b * OC + oc) * OH * OW;
            for (int i = 0; i < OH * OW; i++) o[i] = (float)acc[i];
        }
    free(acc);
}

void nn_conv2d_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                         const float *weight, int B, int IC, int H, int W, int OC, int k, int stride, int pad)
{
    int OH = nn_conv_out(H, k, stride, pad), OW = nn_conv_out(W, k, stride, pad);
    for (int b = 0; b < B; b++)
        for (int oc = 0; oc < OC; oc++) {
            const float *d = dout + ((size_t)b * OC + oc) * OH * OW;
            if (dbias) {
                float s = 0.0f;
                for (int i = 0; i < OH * OW; i++) s += d[i];
                dbias[oc] += s;
            }
            for (int ic = 0; ic < IC; ic++) {
                const float *x = inp + ((size_t)b * IC + ic) * H * W;
                float *dx = dinp ? dinp + ((size_t)b * IC + ic) * H * W : NULL;
                const float *wk = weight + ((size_t)oc * IC + ic) * k * k;
                float *dwk = dweight ? dweight + ((size_t)oc * IC + ic) * k * k : NULL;
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++) {
                        float wv = wk[ky * k + kx], acc = 0.0f;
                        int lo, hi, off = kx - pad;
                        valid_cols(off, stride, W, OW, &lo, &hi);
                        for (int oy = 0; oy < OH; oy++) {
                            int iy = oy * stride + ky - pad;
                            if (iy < 0 || iy >= H) continue;
                            const float *drow = d + (size_t)oy * OW;
                            if (dx) {
                                float *dxr = dx + (size_t)iy * W + off;
                                for (int ox = lo; ox < hi; ox++) dxr[ox * stride] += wv * drow[ox];
                            }
                            if (dwk) {
                                const float *xr = x + (size_t)iy * W + off;
                                float s = 0.0f;
#pragma omp simd reduction(+ : s)
                                for (int ox = lo; ox < hi; ox++) s += drow[ox] * xr[ox * stride];
                                acc += s;
                            }
                        }
                        if (dwk) dwk[ky * k + kx] += acc;
                    }
            }
        }
}

void nn_batchnorm_forward(float *out, float *mean, float *rstd, float *running_mean, float *running_var,
                           const float *inp, const float *gamma, const float *beta, int B, int C, int HW,
                           float momentum, float eps)
{
    double n = (double)B * HW;
    for (int c = 0; c < C; c++) {
        double s = 0.0, ss = 0.0;
        for (int b = 0; b < B; b++) {
            const float *x = inp + ((size_t)b * C + c) * HW;
            for (int i = 0; i < HW; i++) s += x[i];
        }
        double mu = s / n;
        for (int b = 0; b < B; b++) {
            const float *x = inp + ((size_t)b * C + c) * HW;
            for (int i = 0; i < HW; i++) ss += (x[i] - mu) * (x[i] - mu);
        }
        double var = ss / n;
        float m = (float)mu, r = (float)(1.0 / sqrt(var + eps));
        mean[c] = m;
        rstd[c] = r;
        for (int b = 0; b < B; b++) {
            const float *x = inp + ((size_t)b * C + c) * HW;
            float *o = out + ((size_t)b * C + c) * HW;
            for (int i = 0; i < HW; i++) o[i] = (x[i] - m) * r * gamma[c] + beta[c];
        }
        if (running_mean) running_mean[c] = (1.0f - momentum) * running_mean[c] + momentum * m;
        if (running_var) {
            float unbiased = (float)(n > 1 ? ss / (n - 1) : ss);
            running_var[c] = (1.0f - momentum) * running_var[c] + momentum * unbiased;
        }
    }
}

void nn_batchnorm_backward(float *dinp, float *dgamma, float *dbeta, const float *dout, const float *inp,
                            const float *mean, const float *rstd, const float *gamma, int B, int C, int HW)
{
    double n = (double)B * HW;
    for (int c = 0; c < C; c++) {
        double sd = 0.0, sdx = 0.0; /* sum dout, sum dout * xhat */
        for (int b = 0; b < B; b++) {
            const float *x = inp + ((size_t)b * C + c) * HW, *d = dout + ((size_t)b * C + c) * HW;
            for (int i = 0; i < HW; i++) {
                sd += d[i];
                sdx += (double)d[i] * ((x[i] - mean[c]) * rstd[c]);
            }
        }
        if (dgamma) dgamma[c] += (float)sdx;
        if (dbeta) dbeta[c] += (float)sd;
        if (!dinp) continue;
        /* dx = gamma rstd (d - mean(d) - xhat mean(d xhat)) */
        float g = gamma[c] * rstd[c], md = (float)(sd / n), mdx = (float)(sdx / n);
        for (int b = 0; b < B; b++) {
            const float *x = inp + ((size_t)b * C + c) * HW, *d = dout + ((size_t)b * C + c) * HW;
            float *dx = dinp + ((size_t)b * C + c) * HW;
            for (int i = 0; i < HW; i++) dx[i] += g * (d[i] - md - (x[i] - mean[c]) * rstd[c] * mdx);
        }
    }
}

void nn_leakyrelu_forward(float *out, const float *inp, size_t n, float slope)
{
    for (size_t i = 0; i < n; i++) out[i] = inp[i] > 0.0f ? inp[i] : slope * inp[i];
}

void nn_leakyrelu_backward(float *dinp, const float *dout, const float *out, size_t n, float slope)
{
    for (size_t i = 0; i < n; i++) dinp[i] = out[i] > 0.0f ? dout[i] : slope * dout[i];
}

void nn_maxpool2x2_forward(float *out, int32_t *arg, const float *inp, int B, int C, int H, int W)
{
    int OH = H / 2, OW = W / 2;
    for (size_t p = 0; p < (size_t)B * C; p++) {
        const float *x = inp + p * H * W;
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                int best = 2 * oy * W + 2 * ox;
                for (int dy = 0; dy < 2; dy++)
                    for (int dx = 0; dx < 2; dx++) {
                        int i = (2 * oy + dy) * W + 2 * ox + dx;
                        if (x[i] > x[best] || isnan(x[i])) best = i;
                    }
                out[p * OH * OW + (size_t)oy * OW + ox] = x[best];
                arg[p * OH * OW + (size_t)oy * OW + ox] = best;
            }
    }
}

void nn_maxpool2x2_backward(float *dinp, const float *dout, const int32_t *arg, int B, int C, int H, int W)
{
    size_t on = (size_t)(H / 2) * (W / 2);
    for (size_t p = 0; p < (size_t)B * C; p++)
        for (size_t i = 0; i < on; i++) dinp[p * H * W + arg[p * on + i]] += dout[p * on + i];
}

void nn_linear_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int IC, int OC)
{
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            const float *x = inp + (size_t)n * IC, *w = weight + (size_t)o * IC;
            float s = 0.0f;
#pragma omp simd reduction(+ : s)
            for (int i = 0; i < IC; i++) s += x[i] * w[i];
            out[(size_t)n * OC + o] = s + (bias ? bias[o] : 0.0f);
        }
}

void nn_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                         const float *weight, int N, int IC, int OC)
{
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            float d = dout[(size_t)n * OC + o];
            const float *x = inp + (size_t)n * IC, *w = weight + (size_t)o * IC;
            if (dbias) dbias[o] += d;
            if (dweight)
                for (int i = 0; i < IC; i++) dweight[(size_t)o * IC + i] += d * x[i];
            if (dinp)
                for (int i = 0; i < IC; i++) dinp[(size_t)n * IC + i] += d * w[i];
        }
}

float nn_bce_logits_forward(const float *z, float target, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        double x = z[i];
        s += (x > 0 ? x : 0) - x * target + log1p(exp(-fabs(x)));
    }
    return (float)(s / (double)n);
}

void nn_bce_logits_backward(float *dz, const float *z, float target, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++) {
        double sig = 1.0 / (1.0 + exp(-(double)z[i]));
        dz[i] += (float)(scale * (sig - target) / (double)n);
    }
}

float nn_l1_forward(const float *a, const float *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += fabsf(a[i] - b[i]);
    return (float)(s / (double)n);
}

void nn_l1_backward(float *da, const float *a, const float *b, size_t n, float scale)
{
    float g = scale / (float)n;
    for (size_t i = 0; i < n; i++) {
        float d = a[i] - b[i];
        da[i] += d > 0 ? g : (d < 0 ? -g : 0.0f);
    }
}
