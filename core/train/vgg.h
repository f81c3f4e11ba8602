/* vgg.h: VGG19 features (torchvision layout) up to a chosen module, forward and backward to the input, the perceptual loss. */
#ifndef LIIF_VGG_H
#define LIIF_VGG_H

#include <stdint.h>

#include "liif.h"
#include "safetensors.h"

/* Letters: B batch, C image channels (3), H W image rows/cols, Ci channels of module i's output,
 * Hi Wi its sides. Images and maps are NCHW (see nn.h).
 *
 * torchvision vgg19().features: module i is a 3x3 conv (padding 1, bias), a ReLU (in place in
 * torchvision) or a 2x2 max pool, in the order of the VGG19 configuration
 * (64 64 M 128 128 M 256x4 M 512x4 M 512x4 M). The network here runs modules 0..last and outputs
 * module last's output: last = 8 is relu2_2 (after its ReLU), last = 34 is conv5_4 BEFORE its
 * ReLU (the spec's perceptual features). The input is first normalised per channel,
 * (x - mean) / std with ImageNet's float32 mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225).
 * Weights are frozen: the backward gives the gradient of the input only. */
enum { GAN_VGG19_MODULES = 37, GAN_VGG_RELU2_2 = 8, GAN_VGG_CONV5_4 = 34 };

typedef enum { GAN_VGG_CONV, GAN_VGG_RELU, GAN_VGG_POOL } gan_vgg_kind;

typedef struct {
    gan_vgg_kind kind;
    int ic, oc;          /* channels in and out */
    float *w, *b;        /* conv: (oc,ic,3,3), (oc), inside gan_vgg.params */
} gan_vgg_module;

typedef struct {
    int last;                                 /* modules 0..last run */
    gan_vgg_module mod[GAN_VGG19_MODULES];
    float *params;                            /* one allocation holding every conv's weight and bias */
    size_t n_params;
} gan_vgg;

/* Modules 0..last of VGG19, zero weights; widths[k] is the width of the k-th conv (NULL: VGG19's
 * own 64..512). The caller fills the weights (gan_vgg_weight / gan_vgg_bias). */
liif_status gan_vgg_new(int last, const int *widths, gan_vgg **out, liif_error *err);
/* Modules 0..last of VGG19 with the weights features.<i>.weight / .bias of every conv among them
 * read from f (torchvision key names; widths taken from the shapes, checked for consistency). */
liif_status gan_vgg_from_file(const liif_st_file *f, int last, gan_vgg **out, liif_error *err);
liif_status gan_vgg_load(const char *path, int last, gan_vgg **out, liif_error *err);
/* The conv weight / bias pointer of module i (the buffer to fill when the caller makes weights). */
float *gan_vgg_weight(gan_vgg *v, int i);
float *gan_vgg_bias(gan_vgg *v, int i);
void gan_vgg_free(gan_vgg *v);

/* Activations of one forward of B images of H x W, kept for the backward. */
typedef struct {
    int B, H, W;
    float *mem;
    int32_t *arg;                        /* max-pool argmax of every pool module, concatenated */
    float *x;                            /* (B,C,H,W) normalised input */
    float *out[GAN_VGG19_MODULES];       /* (B,Ci,Hi,Wi) output of module i */
    int32_t *pool_arg[GAN_VGG19_MODULES]; /* (B,Ci,Hi,Wi) for pool modules, else NULL */
    int side_h[GAN_VGG19_MODULES], side_w[GAN_VGG19_MODULES], ch[GAN_VGG19_MODULES];
    float *da, *db;                      /* backward scratch */
    struct nn_cpu *cpu;                 /* fast convolutions' scratch; NULL: the reference layers run */
} gan_vgg_acts;

liif_status gan_vgg_acts_new(const gan_vgg *v, int B, int H, int W, gan_vgg_acts **out, liif_error *err);
void gan_vgg_acts_free(gan_vgg_acts *a);
/* Run the convolutions with the fast CPU ops (gan_conv2d_*_cpu) on `threads` threads (0 = all
 * cores) from now on. */
liif_status gan_vgg_acts_use_cpu(const gan_vgg *v, gan_vgg_acts *a, int threads, liif_error *err);
/* The output (B,C_last,H_last,W_last) of the last forward and its element count. */
const float *gan_vgg_output(const gan_vgg *v, const gan_vgg_acts *a, size_t *n);

/* Forward of img (B,C,H,W) in [0,1] (normalised inside). */
void gan_vgg_forward(const gan_vgg *v, gan_vgg_acts *a, const float *img);
/* dimg (B,C,H,W) += d/d img of the last forward, given dout (B,C_last,H_last,W_last) (may be a->db). */
void gan_vgg_backward(const gan_vgg *v, gan_vgg_acts *a, const float *dout, float *dimg);

/* Perceptual loss mean |VGG(img) - feat_ref| over all B*C_last*H_last*W_last elements, where
 * feat_ref is VGG(reference) held constant (a gan_vgg_output of another forward). Runs the forward
 * of img; when dimg is not NULL, also dimg (B,C,H,W) += scale * d loss / d img. */
float gan_vgg_perceptual(const gan_vgg *v, gan_vgg_acts *a, const float *img, const float *feat_ref, float *dimg,
                         float scale);

#endif
