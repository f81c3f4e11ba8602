/* lpips.h: AlexNet-LPIPS v0.1 perceptual distance (reference loops): weights from safetensors, features, distance. */
#ifndef LIIF_LPIPS_H
#define LIIF_LPIPS_H

#include <stddef.h>

#include "liif.h"
#include "safetensors.h"

/* Letters: H W input rows/cols, k the tap (0..4), C_k h_k w_k tap k's channels and sides.
 * Images and maps are planar (C,H,W), one image at a time (batch 1).
 *
 * The network (the lpips package, net='alex', version 0.1):
 *   s = (x - shift) / scale, x in [-1,1], shift (-.030, -.088, -.188), scale (.458, .448, .450)
 *   torchvision alexnet().features: conv 11x11 s4 p2 3->64, ReLU (tap 0) | maxpool 3 s2,
 *   conv 5x5 p2 64->192, ReLU (tap 1) | maxpool 3 s2, conv 3x3 p1 192->384, ReLU (tap 2) |
 *   conv 3x3 p1 384->256, ReLU (tap 3) | conv 3x3 p1 256->256, ReLU (tap 4)
 *   per tap, per position: n = f / (sqrt(sum_c f^2) + 1e-10); d = (n0 - n1)^2;
 *   res_k = mean over (h,w) of sum_c lin_k[c] d[c]; distance = sum_k res_k.
 * Weight keys: net.features.N.weight / .bias (N = 0, 3, 6, 8, 10) and linK.model.1.weight
 * ([1,C_k,1,1]), the names of the lpips package's weights/v0.1/alex.pth. */
enum { LIIF_LPIPS_TAPS = 5, LIIF_LPIPS_MIN_SIDE = 31 };

/* The conv of tap k: torchvision module index, channels, kernel side, stride, padding, and whether a
 * 3x3 stride-2 max pool precedes it. */
typedef struct {
    int module, ic, oc, ksize, stride, pad, pool_before;
} liif_lpips_layer;

extern const liif_lpips_layer liif_lpips_layers[LIIF_LPIPS_TAPS];

typedef struct {
    float *w[LIIF_LPIPS_TAPS];   /* (oc,ic,k,k) conv weight of tap k, inside params */
    float *b[LIIF_LPIPS_TAPS];   /* (oc) conv bias */
    float *lin[LIIF_LPIPS_TAPS]; /* (oc) 1x1 lin weights */
    float *params;               /* one allocation holding all of them */
    size_t n_params;
    int threads;                 /* OpenMP threads of the convs; 0: all cores */
    int reference;               /* 1: plain-loop convs with double sums (the oracle); 0 (default):
                                  * im2col + oneDNN sgemm, float sums like PyTorch's */
} liif_lpips;

/* Zero weights (the caller fills w, b, lin). */
liif_status liif_lpips_new(liif_lpips **out, liif_error *err);
/* Weights read from f with the keys above (LIIF_ERR_MODEL naming file and tensor when one is
 * missing or has the wrong shape or dtype). */
liif_status liif_lpips_from_file(const liif_st_file *f, liif_lpips **out, liif_error *err);
liif_status liif_lpips_load(const char *path, liif_lpips **out, liif_error *err);
/* Write the weights to path under the keys above (a test helper: safetensors, F32). */
liif_status liif_lpips_save(const liif_lpips *lp, const char *path, liif_error *err);
void liif_lpips_free(liif_lpips *lp);

/* Features of one H x W image: the five raw ReLU outputs (before the unit normalisation) and
 * the scratch of the forward. */
typedef struct {
    int H, W;
    int c[LIIF_LPIPS_TAPS], h[LIIF_LPIPS_TAPS], w[LIIF_LPIPS_TAPS];
    float *tap[LIIF_LPIPS_TAPS]; /* (C_k,h_k,w_k) */
    float *x;                    /* (3,H,W) scaled input */
    float *pool[LIIF_LPIPS_TAPS]; /* (C_{k-1},.,.) pooled input of tap k where pool_before, else NULL */
    float *mem;
} liif_lpips_feats;

/* Buffers for an H x W input; LIIF_ERR_ARG when a side is below LIIF_LPIPS_MIN_SIDE (the second
 * max pool needs a 7 px map). */
liif_status liif_lpips_feats_new(int H, int W, liif_lpips_feats **out, liif_error *err);
void liif_lpips_feats_free(liif_lpips_feats *f);

/* Forward of x (3,H,W), values in [-1,1] (the LPIPS input range), into f (made for H x W).
 * Fails only with LIIF_ERR_NOMEM (the fast convs' im2col blocks). */
liif_status liif_lpips_forward(const liif_lpips *lp, const float *x, liif_lpips_feats *f, liif_error *err);
/* Forward of an interleaved RGB image in [0,1] (rows of `stride` floats, pixel (x,y) at
 * rgb[y*stride + 3x]), mapped to [-1,1] as 2v - 1, into f (made for its h x w). */
liif_status liif_lpips_forward_rgb(const liif_lpips *lp, const float *rgb, size_t stride, liif_lpips_feats *f,
                                   liif_error *err);
/* Distance between two forwards of the same size; per_layer (5, may be NULL) receives res_k.
 * Sums in double. */
double liif_lpips_compare(const liif_lpips *lp, const liif_lpips_feats *a, const liif_lpips_feats *b,
                          double *per_layer);

/* Both steps for two (3,H,W) images in [-1,1]. */
liif_status liif_lpips_distance(const liif_lpips *lp, const float *x0, const float *x1, int H, int W,
                                double *dist, double *per_layer, liif_error *err);

#endif
