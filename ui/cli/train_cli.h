/* train_cli.h: pieces of `liif train`: the RNG, the training images and one sample of LIIF's recipe. */
#ifndef LIIF_TRAIN_CLI_H
#define LIIF_TRAIN_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* splitmix64: the whole state is one word, saved in checkpoints. */
uint64_t train_rng_next(uint64_t *s);
/* Uniform in [0,1) with 53 bits. */
double train_rng_uniform(uint64_t *s);

typedef struct {
    uint8_t *px; /* (h,w,3) RGB8 */
    int w, h;
} train_image;

typedef struct {
    train_image *img;
    int n;
} train_data;

/* Load every *.png / *.jpg / *.jpeg of dir (sorted by name) as RGB8; corrupt images and images
 * with a side below min_side are skipped with a warning on stderr. Returns -1 with a one-line
 * msg when the folder cannot be read or no image is usable. */
int train_data_load(train_data *d, const char *dir, int min_side, char *msg, size_t msg_n);
void train_data_free(train_data *d);

typedef struct {
    int inp_size, sample_q;
    double scale_min, scale_max;
} train_recipe;

/* Per-sample scratch for HR crops up to max_hr squared. */
typedef struct {
    uint8_t *crop, *hr, *lr;
    int *idx;
} train_scratch;

/* One sample (MODEL.md 3): a random image, s ~ U(scale_min, scale_max), an HR crop of
 * round(inp_size s) squared, LR = PIL bicubic to inp_size squared on 8-bit values, the same random
 * flips/transpose on both, sample_q HR pixels without replacement. inp (L,L,3) in [0,1], coord and
 * cell (Q,2), gt (Q,3) in [0,1]. All randomness comes from rng, in a fixed order. */
int train_sample(const train_data *d, const train_recipe *r, uint64_t *rng, train_scratch *sc, float *inp,
                 float *coord, float *cell, float *gt, liif_error *err);
/* The same crop, LR and flips (the same random draws), then one random P x P block of contiguous
 * HR pixels (RGS on the integer grid, MODEL.md 2.3) as the queries, row-major: coord and cell
 * (P*P,2), gt_patch (3,P,P) in [0,1]. Needs P <= inp_size. */
int train_sample_patch(const train_data *d, const train_recipe *r, int P, uint64_t *rng, train_scratch *sc,
                       float *inp, float *coord, float *cell, float *gt_patch, liif_error *err);

#endif
