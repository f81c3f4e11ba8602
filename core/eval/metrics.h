/* metrics.h: evaluation metrics (PSNR, SSIM, sharpness, detail PSNR and the grid score on Y or RGB with a shave) and the LR-generation rule of MODEL.md 4. */
#ifndef LIIF_METRICS_H
#define LIIF_METRICS_H

#include "liif.h"

/* Which channels a metric reads: the three RGB channels (metric averaged over them), or
 * luma Y = (65.738 R + 129.057 G + 25.064 B) / 256 of [0,1] values (offset dropped). */
typedef enum { LIIF_METRIC_RGB = 0, LIIF_METRIC_Y = 1 } liif_metric_channels;

/* Evaluation protocols of MODEL.md 4: benchmark sets (Y, shave ceil(s)) and DIV2K (RGB,
 * shave ceil(s) + 6). */
typedef enum { LIIF_PROTOCOL_BENCHMARK = 0, LIIF_PROTOCOL_DIV2K = 1 } liif_eval_protocol;

liif_metric_channels liif_protocol_channels(liif_eval_protocol p);
/* Border in pixels removed on each side before measuring, for scale s. */
int liif_protocol_shave(liif_eval_protocol p, double s);

/* PSNR = -10 log10(mean squared error) over the region that remains after removing
 * `shave` px from each border; sr and hr are float RGB HWC images of w x h (rows 3*w floats),
 * values in [0,1]; accumulated in double. The MSE is over every remaining element (all three
 * channels for RGB). Identical images give +infinity. */
liif_status liif_psnr(const float *sr, const float *hr, int w, int h, int shave,
                      liif_metric_channels ch, double *psnr, liif_error *err);

/* SSIM as scikit-image's structural_similarity(gaussian_weights=True, sigma=1.5,
 * use_sample_covariance=False, data_range=1, K1=0.01, K2=0.03) on the shaved region:
 * 11x11 Gaussian window, statistics in double, mean of the SSIM map over the positions
 * where the window lies inside the region ("valid"); for RGB the mean over channels.
 * The shaved region must be at least 11x11 (LIIF_ERR_ARG otherwise). */
liif_status liif_ssim(const float *sr, const float *hr, int w, int h, int shave,
                      liif_metric_channels ch, double *ssim, liif_error *err);

/* Detail figures (issue 16), on the same channels and shaved region as PSNR. With the high-pass
 * H(I) = I - G(I), G the separable 9-tap Gaussian blur of sigma 1.5 (taps exp(-k^2 / 4.5),
 * k = -4..4, normalised) with symmetric padding at the region's border (the border sample
 * repeated: ... b a | a b ..., numpy's "symmetric"):
 *   sharpness   = sum H(sr)^2 / sum H(hr)^2   (1 = as much fine detail as the original; a flat
 *                 ground truth, mean H(hr)^2 below 1e-20, gives 1 for a flat sr, +inf otherwise)
 *   detail_psnr = -10 log10(mean (H(sr) - H(hr))^2)   (+inf when equal)
 * For RGB the sums and the mean run over the three channels. Either output may be NULL. */
liif_status liif_detail(const float *sr, const float *hr, int w, int h, int shave,
                        liif_metric_channels ch, double *sharpness, double *detail_psnr,
                        liif_error *err);

/* Grid score: how strongly the image repeats a pattern in every cell of the LR pixel grid it was upscaled from (lr_w x
 * lr_h pixels, each w / lr_w x h / lr_h output pixels), the artefact of a decoder whose output follows the position
 * within the cell rather than the image. On the channels and shaved region of PSNR, along each axis, with a Hann
 * window along it and each line's mean removed: at the cell frequency and three overtones (folded into [0, 1/2]
 * cycles per pixel; those under 10 bins from DC, a bin being 1/N for a region N px long, left out), the mean power
 * within a bin of the frequency over the mean power 4 to 8 bins to either side, summed over lines and channels; the
 * score is the mean of these ratios. About 1 for photographs and smooth upscales (no more power at those
 * frequencies than next to them); a pattern of a single 8-bit level in every cell raises it to several (how much
 * depends on the image's own power there). NaN when no ratio exists (cells of one pixel, or a region too short to
 * tell a peak from its neighbours: under 20 px, more with larger cells). */
liif_status liif_grid_score(const float *img, int w, int h, int lr_w, int lr_h, int shave,
                            liif_metric_channels ch, double *score, liif_error *err);

/* What `liif eval` and `liif train`'s validation measure of one output against its ground truth (both w x h, float
 * RGB HWC, the output upscaled from lr_w x lr_h): PSNR, SSIM (with_ssim; else NaN), sharpness, detail PSNR and the
 * grid score, on the channels and shaved region given (liif_protocol_channels, liif_protocol_shave). */
typedef struct {
    double psnr, ssim, sharpness, detail_psnr, grid;
} liif_measures;
liif_status liif_measure(const float *out, const float *gt, int w, int h, int lr_w, int lr_h, int shave,
                         liif_metric_channels ch, int with_ssim, liif_measures *m, liif_error *err);

/* H(I) of one plane (w x h doubles, row-major) into out (may not alias). For tests. */
liif_status liif_highpass_plane(const double *in, int w, int h, double *out, liif_error *err);

/* The SSIM map of one plane (w x h doubles, row-major) against another: (h-10) x (w-10)
 * doubles in map. For tests. */
liif_status liif_ssim_map_plane(const double *a, const double *b, int w, int h, double *map,
                                liif_error *err);

/* LR generation at scale s >= 1 (MODEL.md 4): lr_w = floor(W / s + 1e-9) (likewise lr_h),
 * the HR image is cropped (top-left) to crop_w = round(lr_w s) x crop_h = round(lr_h s).
 * Fails with LIIF_ERR_ARG when s is not finite or < 1, or the LR image would be empty. */
liif_status liif_eval_lr_size(int hr_w, int hr_h, double s, int *lr_w, int *lr_h, int *crop_w,
                              int *crop_h, liif_error *err);

/* Whole rule on a float RGB HWC HR image: crop_out (crop_w x crop_h x 3, may be NULL)
 * gets the top-left crop, lr_out (lr_w x lr_h x 3) its PIL-compatible bicubic
 * downsampling (liif_resize_bicubic_f32). Sizes from liif_eval_lr_size. */
liif_status liif_eval_make_lr(const float *hr, int hr_w, int hr_h, double s, float *crop_out,
                              float *lr_out, liif_error *err);

#endif
