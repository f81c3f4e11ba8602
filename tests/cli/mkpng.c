/* mkpng.c: writes test PNGs for the CLI tests: mkpng OUT.png W H CHANNELS BITS [PATTERN].
 *
 * CHANNELS: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA, P palette, PA palette with tRNS (alpha).
 * BITS: 8 or 16 (palette: 8).
 * PATTERN: gradient (default; smooth colours, opaque alpha), const=V (every sample V in
 * [0,1]), alpha=V (gradient colours, constant alpha V), icc (the gradient with a 560-byte ICC
 * profile, tests/icc_util.h's: RGB, or gray for 1 and 2 channels), meta (the gradient with tests/exif_util.h's
 * camera EXIF, big-endian, orientation 1, W x H, a thumbnail IFD; 300 dots per inch; gamma 1.0). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

#include "../exif_util.h"
#include "../icc_util.h"
#include "png_image.h"

typedef struct {
    int constant; /* 1: every sample is value */
    double value;
    double alpha; /* alpha of the gradient pattern */
    int icc;      /* embed a profile */
    int meta;     /* EXIF, density and gamma */
} pattern;

static int usage(void)
{
    fprintf(stderr, "usage: mkpng OUT.png W H 1|2|3|4|P|PA 8|16 [gradient|const=V|alpha=V|icc|meta]\n");
    return 2;
}

/* Smooth, distinct per channel, in [0,1]. */
static double gradient(int x, int y, int w, int h, int c)
{
    double u = (x + 0.5) / w, v = (y + 0.5) / h;
    return 0.5 + 0.45 * sin(3.1 * u * (c + 1) + 2.3 * v + 1.7 * c) * cos(1.3 * v * (c + 2));
}

static double sample(const pattern *pt, int x, int y, int w, int h, int c, int channels)
{
    if (pt->constant)
        return pt->value;
    int has_alpha = channels == 2 || channels == 4;
    if (has_alpha && c == channels - 1)
        return pt->alpha;
    return gradient(x, y, w, h, c);
}

static int write_plain(const char *path, int w, int h, int channels, int bits,
                       const pattern *pt)
{
    static unsigned char icc[560];
    tu_icc_profile(icc, sizeof icc, channels < 3, 9);
    liif_png img = {.w = w, .h = h, .channels = channels, .bit_depth = bits,
                    .px = malloc(sizeof(float) * w * h * channels)};
    if (pt->icc) {
        img.meta.icc = icc;
        img.meta.icc_len = sizeof icc;
    }
    unsigned char exif[160];
    if (pt->meta) {
        tx_spec s = {0, 1, w, h, 0, 1};
        img.meta.exif = exif;
        img.meta.exif_len = tx_build(exif, &s);
        img.meta.density_unit = LIIF_DENSITY_PER_METRE;
        img.meta.density_x = img.meta.density_y = 11811; /* 300 dpi */
        img.meta.gamma = 100000;
    }
    if (!img.px)
        return 1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < channels; c++)
                img.px[((size_t)y * w + x) * channels + c] =
                    (float)sample(pt, x, y, w, h, c, channels);
    liif_error err;
    liif_status s = liif_png_write(path, &img, &err);
    free(img.px);
    if (s != LIIF_OK) {
        fprintf(stderr, "mkpng: %s\n", err.msg);
        return 1;
    }
    return 0;
}

/* 16-entry palette; pixel index (x + 2y) mod 16; with tRNS, entry i has alpha
 * pattern alpha (or 17 i when the pattern is the gradient). */
static int write_palette(const char *path, int w, int h, int with_trns, const pattern *pt)
{
    FILE *fp = fopen(path, "wb");
    if (!fp) {
        perror(path);
        return 1;
    }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    unsigned char *row = malloc((size_t)w);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(fp);
        free(row);
        return 1;
    }
    png_init_io(png, fp);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_PALETTE,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_color pal[16];
    png_byte trns[16];
    for (int i = 0; i < 16; i++) {
        double v = pt->constant ? pt->value : i / 15.0;
        pal[i].red = (png_byte)lround(255 * v);
        pal[i].green = (png_byte)lround(255 * (pt->constant ? v : 1 - v));
        pal[i].blue = (png_byte)lround(255 * (pt->constant ? v : 0.5));
        trns[i] = (png_byte)lround(255 * (pt->alpha < 1 ? pt->alpha : i / 15.0));
    }
    png_set_PLTE(png, info, pal, 16);
    if (with_trns)
        png_set_tRNS(png, info, trns, 16, NULL);
    png_write_info(png, info);
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++)
            row[x] = (unsigned char)((x + 2 * y) % 16);
        png_write_row(png, row);
    }
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    free(row);
    return fclose(fp) != 0;
}

int main(int argc, char **argv)
{
    if (argc < 6 || argc > 7)
        return usage();
    int w = atoi(argv[2]), h = atoi(argv[3]), bits = atoi(argv[5]);
    const char *ch = argv[4];
    pattern pt = {0, 0, 1, 0, 0};
    if (argc == 7) {
        if (strncmp(argv[6], "const=", 6) == 0) {
            pt.constant = 1;
            pt.value = atof(argv[6] + 6);
        } else if (strncmp(argv[6], "alpha=", 6) == 0) {
            pt.alpha = atof(argv[6] + 6);
        } else if (strcmp(argv[6], "icc") == 0) {
            pt.icc = 1;
        } else if (strcmp(argv[6], "meta") == 0) {
            pt.meta = 1;
        } else if (strcmp(argv[6], "gradient") != 0) {
            return usage();
        }
    }
    if (w < 1 || h < 1 || (bits != 8 && bits != 16))
        return usage();
    if (strcmp(ch, "P") == 0 || strcmp(ch, "PA") == 0)
        return bits == 8 ? write_palette(argv[1], w, h, ch[1] == 'A', &pt) : usage();
    int channels = atoi(ch);
    if (channels < 1 || channels > 4)
        return usage();
    return write_plain(argv[1], w, h, channels, bits, &pt);
}
