/* vgg.c: VGG19 features for the perceptual loss: loading with torchvision keys, forward, backward to the input (reference loops). */
#include "vgg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn.h"

/* ImageNet normalisation, float32 as torchvision's Normalize sees them. */
static const float vgg_mean[3] = {0.485f, 0.456f, 0.406f};
static const float vgg_std[3] = {0.229f, 0.224f, 0.225f};

/* The widest conv a VGG file may declare (VGG19's is 512), checked before the int it becomes. */
enum { VGG_MAX_WIDTH = 1 << 14 };

/* VGG19's configuration: conv widths, 0 = max pool. Each conv is followed by a ReLU module. */
static const int vgg19_cfg[] = {64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0,
                                512, 512, 512, 512, 0};

/* Width of VGG19's conv number k (0..15). */
static int vgg19_width(int k)
{
    for (size_t c = 0; c < sizeof vgg19_cfg / sizeof vgg19_cfg[0]; c++)
        if (vgg19_cfg[c] && k-- == 0) return vgg19_cfg[c];
    return 0;
}

static void layout(gan_vgg *v)
{
    int i = 0;
    for (size_t c = 0; c < sizeof vgg19_cfg / sizeof vgg19_cfg[0]; c++) {
        if (vgg19_cfg[c]) {
            v->mod[i++].kind = GAN_VGG_CONV;
            v->mod[i++].kind = GAN_VGG_RELU;
        } else {
            v->mod[i++].kind = GAN_VGG_POOL;
        }
    }
}

liif_status gan_vgg_new(int last, const int *widths, gan_vgg **out, liif_error *err)
{
    *out = NULL;
    if (last < 0 || last >= GAN_VGG19_MODULES)
        return liif_error_set(err, LIIF_ERR_ARG, "VGG19: no module %d (0..%d)", last, GAN_VGG19_MODULES - 1);
    gan_vgg *v = calloc(1, sizeof *v);
    if (!v) return liif_error_set(err, LIIF_ERR_NOMEM, "VGG19: out of memory");
    v->last = last;
    layout(v);
    int ch = 3, k = 0;
    for (int i = 0; i <= last; i++) {
        gan_vgg_module *m = &v->mod[i];
        m->ic = ch;
        if (m->kind == GAN_VGG_CONV) {
            ch = widths ? widths[k] : vgg19_width(k);
            k++;
            if (ch < 1) {
                free(v);
                return liif_error_set(err, LIIF_ERR_ARG, "VGG19: conv %d has width %d", k - 1, ch);
            }
            v->n_params += (size_t)ch * m->ic * 9 + ch;
        }
        m->oc = ch;
    }
    v->params = calloc(v->n_params ? v->n_params : 1, sizeof(float));
    if (!v->params) {
        size_t n = v->n_params;
        free(v);
        return liif_error_set(err, LIIF_ERR_NOMEM, "VGG19: out of memory for %zu parameters", n);
    }
    float *p = v->params;
    for (int i = 0; i <= last; i++) {
        gan_vgg_module *m = &v->mod[i];
        if (m->kind != GAN_VGG_CONV) continue;
        m->w = p;
        p += (size_t)m->oc * m->ic * 9;
        m->b = p;
        p += m->oc;
    }
    *out = v;
    return LIIF_OK;
}

liif_status gan_vgg_from_file(const liif_st_file *f, int last, gan_vgg **out, liif_error *err)
{
    *out = NULL;
    if (last < 0 || last >= GAN_VGG19_MODULES)
        return liif_error_set(err, LIIF_ERR_ARG, "VGG19: no module %d (0..%d)", last, GAN_VGG19_MODULES - 1);
    gan_vgg shape;
    layout(&shape);
    int widths[GAN_VGG19_MODULES] = {0}, k = 0, ch = 3;
    char name[64];
    for (int i = 0; i <= last; i++) {
        if (shape.mod[i].kind != GAN_VGG_CONV) continue;
        snprintf(name, sizeof name, "features.%d.weight", i);
        const liif_st_tensor *t = liif_st_find(f, name);
        if (!t || t->ndim != 4 || t->shape[1] != ch || t->shape[2] != 3 || t->shape[3] != 3 || t->shape[0] < 1 ||
            t->shape[0] > VGG_MAX_WIDTH)
            return liif_error_set(err, LIIF_ERR_MODEL, "%s: %s missing or not [1..%d, %d, 3, 3]", liif_st_path(f), name,
                                  VGG_MAX_WIDTH, ch);
        widths[k++] = ch = (int)t->shape[0];
    }
    gan_vgg *v;
    liif_status st = gan_vgg_new(last, widths, &v, err);
    for (int i = 0; !st && i <= last; i++) {
        gan_vgg_module *m = &v->mod[i];
        if (m->kind != GAN_VGG_CONV) continue;
        int64_t ws[4] = {m->oc, m->ic, 3, 3}, bs[1] = {m->oc};
        snprintf(name, sizeof name, "features.%d.weight", i);
        st = liif_st_read_f32(f, name, 4, ws, m->w, err);
        snprintf(name, sizeof name, "features.%d.bias", i);
        if (!st) st = liif_st_read_f32(f, name, 1, bs, m->b, err);
    }
    if (st) {
        gan_vgg_free(v);
        return st;
    }
    *out = v;
    return LIIF_OK;
}

liif_status gan_vgg_load(const char *path, int last, gan_vgg **out, liif_error *err)
{
    liif_st_file *f;
    *out = NULL;
    liif_status st = liif_st_open(path, &f, err);
    if (st) return st;
    st = gan_vgg_from_file(f, last, out, err);
    liif_st_close(f);
    return st;
}

float *gan_vgg_weight(gan_vgg *v, int i) { return i <= v->last && v->mod[i].kind == GAN_VGG_CONV ? v->mod[i].w : NULL; }
float *gan_vgg_bias(gan_vgg *v, int i) { return i <= v->last && v->mod[i].kind == GAN_VGG_CONV ? v->mod[i].b : NULL; }

void gan_vgg_free(gan_vgg *v)
{
    if (!v) return;
    free(v->params);
    free(v);
}

/* ------------------------------------------------------------------ activations */

liif_status gan_vgg_acts_new(const gan_vgg *v, int B, int H, int W, gan_vgg_acts **out, liif_error *err)
{
    *out = NULL;
    gan_vgg_acts *a = calloc(1, sizeof *a);
    if (!a) return liif_error_set(err, LIIF_ERR_NOMEM, "VGG19 activations: out of memory");
    a->B = B;
    a->H = H;
    a->W = W;
    size_t in = (size_t)B * 3 * H * W, total = in, maxmap = in, nargs = 0;
    int h = H, w = W;
    for (int i = 0; i <= v->last; i++) {
        if (v->mod[i].kind == GAN_VGG_POOL) {
            h /= 2;
            w /= 2;
        }
        a->side_h[i] = h;
        a->side_w[i] = w;
        a->ch[i] = v->mod[i].oc;
        size_t n = (size_t)B * v->mod[i].oc * h * w;
        total += n;
        if (v->mod[i].kind == GAN_VGG_POOL) nargs += n;
        if (n > maxmap) maxmap = n;
    }
    if (h < 1 || w < 1) {
        free(a);
        return liif_error_set(err, LIIF_ERR_ARG, "VGG19: a %dx%d image is too small for module %d", H, W, v->last);
    }
    total += 2 * maxmap;
    a->mem = malloc(total * sizeof(float));
    a->arg = malloc((nargs ? nargs : 1) * sizeof(int32_t));
    if (!a->mem || !a->arg) {
        gan_vgg_acts_free(a);
        return liif_error_set(err, LIIF_ERR_NOMEM, "VGG19 activations: out of memory (batch %d, %dx%d)", B, H, W);
    }
    float *p = a->mem;
    int32_t *q = a->arg;
    a->x = p;
    p += in;
    for (int i = 0; i <= v->last; i++) {
        size_t n = (size_t)B * a->ch[i] * a->side_h[i] * a->side_w[i];
        a->out[i] = p;
        p += n;
        if (v->mod[i].kind == GAN_VGG_POOL) {
            a->pool_arg[i] = q;
            q += n;
        }
    }
    a->da = p;
    p += maxmap;
    a->db = p;
    *out = a;
    return LIIF_OK;
}

liif_status gan_vgg_acts_use_cpu(const gan_vgg *v, gan_vgg_acts *a, int threads, liif_error *err)
{
    size_t max_col = 1, max_w = 1;
    for (int i = 0; i <= v->last; i++) {
        const gan_vgg_module *m = &v->mod[i];
        if (m->kind != GAN_VGG_CONV) continue;
        int h = i ? a->side_h[i - 1] : a->H, w = i ? a->side_w[i - 1] : a->W;
        size_t col = nn_conv2d_col_size(m->ic, h, w, 3, 1, 1), wsz = (size_t)m->oc * m->ic * 9 + m->oc;
        max_col = col > max_col ? col : max_col;
        max_w = wsz > max_w ? wsz : max_w;
    }
    nn_cpu_free(a->cpu);
    if (!(a->cpu = nn_cpu_new(max_col, max_w, threads)))
        return liif_error_set(err, LIIF_ERR_NOMEM, "VGG19: out of memory for the convolution scratch");
    return LIIF_OK;
}

void gan_vgg_acts_free(gan_vgg_acts *a)
{
    if (!a) return;
    nn_cpu_free(a->cpu);
    free(a->mem);
    free(a->arg);
    free(a);
}

const float *gan_vgg_output(const gan_vgg *v, const gan_vgg_acts *a, size_t *n)
{
    int L = v->last;
    if (n) *n = (size_t)a->B * a->ch[L] * a->side_h[L] * a->side_w[L];
    return a->out[L];
}

/* ------------------------------------------------------------------ forward / backward */

void gan_vgg_forward(const gan_vgg *v, gan_vgg_acts *a, const float *img)
{
    int B = a->B, HW = a->H * a->W;
    for (int b = 0; b < B; b++)
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < HW; i++) {
                size_t k = ((size_t)b * 3 + c) * HW + i;
                a->x[k] = (img[k] - vgg_mean[c]) / vgg_std[c];
            }
    const float *x = a->x;
    int h = a->H, w = a->W;
    for (int i = 0; i <= v->last; i++) {
        const gan_vgg_module *m = &v->mod[i];
        size_t n = (size_t)B * m->oc * a->side_h[i] * a->side_w[i];
        switch (m->kind) {
        case GAN_VGG_CONV:
            if (a->cpu) nn_conv2d_forward_cpu(a->cpu, a->out[i], x, m->w, m->b, B, m->ic, h, w, m->oc, 3, 1, 1);
            else nn_conv2d_forward(a->out[i], x, m->w, m->b, B, m->ic, h, w, m->oc, 3, 1, 1);
            break;
        case GAN_VGG_RELU:
            for (size_t k = 0; k < n; k++) a->out[i][k] = x[k] > 0.0f ? x[k] : 0.0f;
            break;
        case GAN_VGG_POOL: nn_maxpool2x2_forward(a->out[i], a->pool_arg[i], x, B, m->ic, h, w); break;
        }
        x = a->out[i];
        h = a->side_h[i];
        w = a->side_w[i];
    }
}

void gan_vgg_backward(const gan_vgg *v, gan_vgg_acts *a, const float *dout, float *dimg)
{
    int B = a->B, L = v->last;
    float *dcur = a->da, *other = a->db;
    memcpy(dcur, dout, (size_t)B * a->ch[L] * a->side_h[L] * a->side_w[L] * sizeof(float));
    for (int i = L; i >= 0; i--) {
        const gan_vgg_module *m = &v->mod[i];
        int h = i ? a->side_h[i - 1] : a->H, w = i ? a->side_w[i - 1] : a->W;
        size_t n = (size_t)B * m->oc * a->side_h[i] * a->side_w[i], nin = (size_t)B * m->ic * h * w;
        const float *x = i ? a->out[i - 1] : a->x;
        if (m->kind == GAN_VGG_RELU) {
            for (size_t k = 0; k < n; k++) dcur[k] = a->out[i][k] > 0.0f ? dcur[k] : 0.0f;
            continue;
        }
        memset(other, 0, nin * sizeof(float));
        if (m->kind == GAN_VGG_POOL) nn_maxpool2x2_backward(other, dcur, a->pool_arg[i], B, m->ic, h, w);
        else if (a->cpu) nn_conv2d_backward_cpu(a->cpu, other, NULL, NULL, dcur, x, m->w, B, m->ic, h, w, m->oc, 3, 1, 1);
        else nn_conv2d_backward(other, NULL, NULL, dcur, x, m->w, B, m->ic, h, w, m->oc, 3, 1, 1);
        float *t = dcur;
        dcur = other;
        other = t;
    }
    int HW = a->H * a->W; /* through the normalisation: d/dx of (x - mean) / std */
    for (int b = 0; b < B; b++)
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < HW; i++) {
                size_t k = ((size_t)b * 3 + c) * HW + i;
                dimg[k] += dcur[k] / vgg_std[c];
            }
}

float gan_vgg_perceptual(const gan_vgg *v, gan_vgg_acts *a, const float *img, const float *feat_ref, float *dimg,
                         float scale)
{
    size_t n;
    gan_vgg_forward(v, a, img);
    const float *feat = gan_vgg_output(v, a, &n);
    float loss = nn_l1_forward(feat, feat_ref, n);
    if (dimg) { /* dfeat in the scratch db: the backward copies it to da before it writes db */
        float *dfeat = a->db;
        memset(dfeat, 0, n * sizeof(float));
        nn_l1_backward(dfeat, feat, feat_ref, n, scale);
        gan_vgg_backward(v, a, dfeat, dimg);
    }
    return loss;
}
