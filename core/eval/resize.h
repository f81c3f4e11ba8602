/* resize.h: PIL-compatible (Pillow 9.4) antialiased bicubic resize of 8-bit images, and LIIF's float wrapper. */
#ifndef LIIF_RESIZE_H
#define LIIF_RESIZE_H

#include <stdint.h>

#include "liif.h"

/* Resize an interleaved 8-bit image exactly as Pillow 9.4's Image.resize(size, BICUBIC)
 * does for "L"/"RGB" images: Keys cubic a = -0.5, support widened by the scale when
 * shrinking (antialias), 22-bit fixed-point taps, horizontal pass first into an 8-bit
 * intermediate, a pass whose size does not change skipped.
 * src: (sh, sw, channels) u8, dst: (dh, dw, channels) u8; channels 1..4, each resized on
 * its own (no alpha premultiplication: callers wanting PIL's RGBA behaviour premultiply).
 * Sides 1..LIIF_MAX_SIDE. Returns LIIF_ERR_ARG / LIIF_ERR_NOMEM with a message. */
liif_status liif_resize_bicubic_u8(const uint8_t *src, int sw, int sh, int channels, uint8_t *dst,
                                   int dw, int dh, liif_error *err);

/* Same, and hands back the horizontal-pass intermediate (sh, dw, channels) in hpass when
 * non-NULL (a copy of src when the width does not change). For tests and debugging. */
liif_status liif_resize_bicubic_u8_ex(const uint8_t *src, int sw, int sh, int channels,
                                      uint8_t *dst, int dw, int dh, uint8_t *hpass,
                                      liif_error *err);

/* LIIF's resize_fn on float images in [0,1] (torchvision ToPILImage -> Resize(BICUBIC) ->
 * ToTensor): each value becomes (uint8)(x * 255.0f) (float product, truncated; values
 * outside [0,1] clamped first), resized by liif_resize_bicubic_u8, then (float)u8 / 255.0f.
 * src: (sh, sw, channels) floats, dst: (dh, dw, channels) floats, interleaved. */
liif_status liif_resize_bicubic_f32(const float *src, int sw, int sh, int channels, float *dst,
                                    int dw, int dh, liif_error *err);

#endif
