/* train_data.c: the training images (a folder of PNG and JPEG, loaded once as 8-bit RGB) and LIIF's sample recipe (MODEL.md 3). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "jpeg_image.h"
#include "png_image.h"
#include "resize.h"
#include "train_cli.h"

/* ------------------------------------------------------------ RNG (splitmix64: one word of state) */

uint64_t train_rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double train_rng_uniform(uint64_t *s) { return (double)(train_rng_next(s) >> 11) * (1.0 / 9007199254740992.0); }

static size_t rng_below(uint64_t *s, size_t n) { return (size_t)(train_rng_uniform(s) * (double)n) % n; }

/* ------------------------------------------------------------ loading */

/* err's message without the "<printable path>: " it starts with (the caller names the file). */
static void reason(const char *path, const liif_error *err, char *msg, size_t msg_n)
{
    char name[768];
    size_t skip = strlen(liif_printable(path, name, sizeof name));
    int named = strncmp(err->msg, name, skip) == 0 && err->msg[skip] == ':' && err->msg[skip + 1] == ' ';
    snprintf(msg, msg_n, "%s", named ? err->msg + skip + 2 : err->msg);
}

/* An RGB8 copy of a JPEG (EXIF orientation applied), or NULL with msg set (corrupt, truncated, too large, CMYK). */
static uint8_t *load_jpeg(const char *path, int *w, int *h, char *msg, size_t msg_n)
{
    liif_error err;
    uint8_t *px;
    int c;
    if (liif_jpeg_read8(path, 1, w, h, &c, &px, NULL, &err)) {
        reason(path, &err, msg, msg_n);
        return NULL;
    }
    return px;
}

/* An RGB8 copy of a PNG (gray replicated, alpha dropped, 16-bit rounded), or NULL with msg set. */
static uint8_t *load_png(const char *path, int *w, int *h, char *msg, size_t msg_n)
{
    liif_png img;
    liif_error err;
    if (liif_png_read(path, &img, &err)) {
        reason(path, &err, msg, msg_n);
        return NULL;
    }
    uint8_t *px = malloc((size_t)img.w * img.h * 3);
    if (px) {
        int c = img.channels;
        for (size_t i = 0; i < (size_t)img.w * img.h; i++)
            for (int k = 0; k < 3; k++) {
                float v = img.px[i * c + (c >= 3 ? k : 0)];
                px[i * 3 + k] = (uint8_t)(v * 255.0f + 0.5f);
            }
        *w = img.w;
        *h = img.h;
    } else {
        snprintf(msg, msg_n, "out of memory");
    }
    liif_png_free(&img);
    return px;
}

static int has_suffix(const char *name, const char *sfx)
{
    size_t n = strlen(name), k = strlen(sfx);
    return n > k && g_ascii_strcasecmp(name + n - k, sfx) == 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int train_data_load(train_data *d, const char *dir, int min_side, char *msg, size_t msg_n)
{
    memset(d, 0, sizeof *d);
    GError *gerr = NULL;
    GDir *gd = g_dir_open(dir, 0, &gerr);
    if (!gd) {
        snprintf(msg, msg_n, "data folder '%s': %s", dir, gerr->message);
        g_error_free(gerr);
        return -1;
    }
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    for (const char *n; (n = g_dir_read_name(gd));)
        if (has_suffix(n, ".png") || has_suffix(n, ".jpg") || has_suffix(n, ".jpeg")) g_ptr_array_add(names, g_strdup(n));
    g_dir_close(gd);
    if (names->len) qsort(names->pdata, names->len, sizeof(char *), cmp_str); /* the same order on every machine */
    d->img = calloc(names->len ? names->len : 1, sizeof *d->img);
    for (guint i = 0; d->img && i < names->len; i++) {
        char *path = g_build_filename(dir, (const char *)names->pdata[i], NULL), why[768];
        int w = 0, h = 0;
        uint8_t *px = has_suffix(path, ".png") ? load_png(path, &w, &h, why, sizeof why)
                                               : load_jpeg(path, &w, &h, why, sizeof why);
        if (!px) {
            fprintf(stderr, "liif: warning: skipping %s: %s\n", path, why);
        } else if (w < min_side || h < min_side) {
            fprintf(stderr, "liif: warning: skipping %s: %dx%d is smaller than %dx%d\n", path, w, h, min_side, min_side);
            free(px);
        } else {
            d->img[d->n++] = (train_image){px, w, h};
        }
        g_free(path);
    }
    guint found = names->len;
    g_ptr_array_free(names, TRUE);
    if (!d->img) {
        snprintf(msg, msg_n, "out of memory");
        return -1;
    }
    if (d->n == 0) {
        if (found) snprintf(msg, msg_n, "data folder '%s': none of its %u images is usable", dir, found);
        else snprintf(msg, msg_n, "data folder '%s' holds no PNG or JPEG images", dir);
        train_data_free(d);
        return -1;
    }
    return 0;
}

void train_data_free(train_data *d)
{
    for (int i = 0; d->img && i < d->n; i++) free(d->img[i].px);
    free(d->img);
    memset(d, 0, sizeof *d);
}

/* ------------------------------------------------------------ one sample */

/* dst (S,S,3) = src (S,S,3) flipped along rows, cols, then transposed, as LIIF's augment(). */
static void augment(uint8_t *dst, const uint8_t *src, int S, int hflip, int vflip, int dflip)
{
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            int sy = dflip ? x : y, sx = dflip ? y : x; /* dst(y,x) = flipped(sy,sx) */
            if (hflip) sy = S - 1 - sy;
            if (vflip) sx = S - 1 - sx;
            memcpy(dst + ((size_t)y * S + x) * 3, src + ((size_t)sy * S + sx) * 3, 3);
        }
}

/* The part both recipes share: image, scale, crop, LR, flips; sc->hr holds the (S,S,3) HR crop. */
static int sample_lr(const train_data *d, const train_recipe *r, uint64_t *rng, train_scratch *sc, float *inp,
                     int *S_out, liif_error *err)
{
    const train_image *im = &d->img[rng_below(rng, (size_t)d->n)];
    double s = r->scale_min + (r->scale_max - r->scale_min) * train_rng_uniform(rng);
    int S = (int)nearbyint(r->inp_size * s), L = r->inp_size;
    if (S < L) S = L;
    int x0 = (int)rng_below(rng, (size_t)(im->w - S + 1)), y0 = (int)rng_below(rng, (size_t)(im->h - S + 1));
    int hflip = train_rng_uniform(rng) < 0.5, vflip = train_rng_uniform(rng) < 0.5, dflip = train_rng_uniform(rng) < 0.5;
    for (int y = 0; y < S; y++)
        memcpy(sc->crop + (size_t)y * S * 3, im->px + (((size_t)(y0 + y)) * im->w + x0) * 3, (size_t)S * 3);
    if (liif_resize_bicubic_u8(sc->crop, S, S, 3, sc->lr, L, L, err)) return -1;
    augment(sc->hr, sc->crop, S, hflip, vflip, dflip);
    augment(sc->crop, sc->lr, L, hflip, vflip, dflip);
    for (size_t i = 0; i < (size_t)L * L * 3; i++) inp[i] = sc->crop[i] / 255.0f;
    *S_out = S;
    return 0;
}

int train_sample(const train_data *d, const train_recipe *r, uint64_t *rng, train_scratch *sc, float *inp,
                 float *coord, float *cell, float *gt, liif_error *err)
{
    int S;
    if (sample_lr(d, r, rng, sc, inp, &S, err)) return -1;
    /* r->sample_q HR pixels without replacement: a partial Fisher-Yates shuffle */
    size_t n = (size_t)S * S;
    for (size_t i = 0; i < n; i++) sc->idx[i] = (int)i;
    for (int q = 0; q < r->sample_q; q++) {
        size_t j = q + rng_below(rng, n - q);
        int t = sc->idx[q];
        sc->idx[q] = sc->idx[j];
        sc->idx[j] = t;
        int py = sc->idx[q] / S, px = sc->idx[q] % S;
        coord[2 * q] = liif_coord(py, S);
        coord[2 * q + 1] = liif_coord(px, S);
        cell[2 * q] = 2.0f / S;
        cell[2 * q + 1] = 2.0f / S;
        for (int k = 0; k < 3; k++) gt[3 * q + k] = sc->hr[(size_t)sc->idx[q] * 3 + k] / 255.0f;
    }
    return 0;
}

int train_sample_patch(const train_data *d, const train_recipe *r, int P, uint64_t *rng, train_scratch *sc,
                       float *inp, float *coord, float *cell, float *gt_patch, liif_error *err)
{
    int S;
    if (sample_lr(d, r, rng, sc, inp, &S, err)) return -1;
    if (S < P) return liif_error_set(err, LIIF_ERR_ARG, "HR crop %d is smaller than the patch %d", S, P);
    int y0 = (int)rng_below(rng, (size_t)(S - P + 1)), x0 = (int)rng_below(rng, (size_t)(S - P + 1));
    for (int i = 0; i < P; i++)
        for (int j = 0; j < P; j++) {
            int q = i * P + j;
            coord[2 * q] = liif_coord(y0 + i, S);
            coord[2 * q + 1] = liif_coord(x0 + j, S);
            cell[2 * q] = 2.0f / S;
            cell[2 * q + 1] = 2.0f / S;
            for (int k = 0; k < 3; k++)
                gt_patch[(size_t)k * P * P + q] = sc->hr[((size_t)(y0 + i) * S + x0 + j) * 3 + k] / 255.0f;
        }
    return 0;
}
