/* winograd.h: 3x3 convolutions by Winograd's minimal filtering F(4x4, 3x3), for the fast CPU backend's
 * float32 encoder: 36 products where a direct 4x4 output tile takes 144, as one sgemm per transform point. */
#ifndef LIIF_WINOGRAD_H
#define LIIF_WINOGRAD_H

#include <stddef.h>

#include "liif.h"

/* Floats of the transformed weights of a cin -> cout 3x3 convolution: [36, cout, cin]. */
static inline size_t liif_wino_weights_len(int cout, int cin) { return (size_t)36 * cout * cin; }

/* Transforms the weights w[o * ldw + i * 9 + k] (output o, input i, tap k = 3 * row + column: OIHW, or a
 * decoder's layer 1 over unfolded features) into u (liif_wino_weights_len floats), computed in double. */
void liif_wino_weights(const float *w, int cout, int cin, int ldw, float *u);

/* out = act(conv3x3(in) + bias + res) on an (h, w) HWC tile whose first row is row y0 of the image, zero
 * outside the tile; u from liif_wino_weights; bias and res may be NULL. The 4x4 output tiles and the GEMM
 * blocks are aligned to the image's rows (as conv_fast's blocks are), so a pixel is computed the same way
 * to the bit whichever band of rows computes it, for one tile width. threads >= 1. LIIF_ERR_NOMEM, with nothing
 * written, when its buffers cannot be had. */
liif_status liif_conv_wino(const float *in, int h, int w, int y0, int cin, const float *u, const float *bias,
                           const float *res, int relu, int cout, float *out, int threads);

/* Along rows only, F(4, 3): a 3x3 convolution is three 1x3 ones (one per filter row) done as Winograd's 1D
 * F(4, 3), 6 points per 4 outputs where direct takes 12; per point, one GEMM sums the three rows' channels.
 * Half the products of a direct convolution (2D saves three quarters), but no rounding crosses rows: a pixel
 * depends on exactly the rows the convolution reads, so bands of rows give the same bits as the whole image
 * (the fp32 precision's guarantee; its GEMM blocks are aligned to the image as liif_conv_wino's are, y0 the
 * tile's first image row). res may be out itself (out += conv + bias). Weights: [6 points, cout, 3 filter rows,
 * cin]. */
static inline size_t liif_wino_rows_weights_len(int cout, int cin) { return (size_t)18 * cout * cin; }
void liif_wino_rows_weights(const float *w, int cout, int cin, int ldw, float *u);
liif_status liif_conv_wino_rows(const float *in, int h, int w, int y0, int cin, const float *u, const float *bias,
                                const float *res, int relu, int cout, float *out, int threads);

#endif
