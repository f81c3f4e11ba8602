/* pnginfo.c: prints what the CLI tests check in a PNG.
 *   pnginfo FILE            -> "W H CHANNELS BITS" from the header; CHANNELS is 1..4, or P for
 *                              a palette image
 *   pnginfo FILE stats CH   -> "MIN MAX MEAN" of decoded channel CH, in sample units
 *                              (0..255 for 8-bit, 0..65535 for 16-bit)
 *   pnginfo FILE diff ST NAME -> largest |difference| between the image and tensor NAME
 *                              of safetensors file ST (float, shape [1, H*W, C], values in
 *                              [0,1]), in sample units
 *   pnginfo FILE image      -> "FORMAT W H CHANNELS BITS" of a PNG or JPEG as the CLI reads it
 *                              (a JPEG's EXIF orientation applied)
 *   pnginfo FILE topng OUT  -> the pixels the CLI reads from FILE, written as a PNG
 *   pnginfo FILE versus OTHER -> "MAX MEAN" |difference| of two images of one size, in 8-bit levels
 *   pnginfo FILE icc        -> "BYTES SUM" of the file's ICC profile (SUM: a checksum), or "none"
 *   pnginfo FILE crop X Y W H OUT -> the W x H pixels at (X, Y) of FILE (PNG or JPEG) as a PNG of its depth
 *   pnginfo FILE meta       -> "exif ORIENTATION W H TYPE IFD1 MAKE DATE | exif none; density UNIT X Y;
 *                              colour SRGB GAMMA CHRM" (tests/exif_util.h's tx_read of the EXIF; the density
 *                              unit 0 none, 1 aspect, 2 per metre; colour: sRGB 1 + intent, gAMA x 100000,
 *                              cHRM 1/0)
 * stats reads PNG or JPEG. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

#include "../exif_util.h"
#include "image.h"
#include "safetensors.h"

static int header(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        perror(path);
        return 1;
    }
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        fclose(fp);
        return 1;
    }
    png_init_io(png, fp);
    png_read_info(png, info);
    int type = png_get_color_type(png, info);
    const char *ch = type == PNG_COLOR_TYPE_GRAY         ? "1"
                     : type == PNG_COLOR_TYPE_GRAY_ALPHA ? "2"
                     : type == PNG_COLOR_TYPE_RGB        ? "3"
                     : type == PNG_COLOR_TYPE_RGB_ALPHA  ? "4"
                                                         : "P";
    printf("%u %u %s %d\n", (unsigned)png_get_image_width(png, info),
           (unsigned)png_get_image_height(png, info), ch, png_get_bit_depth(png, info));
    png_destroy_read_struct(&png, &info, NULL);
    fclose(fp);
    return 0;
}

static int stats(const char *path, int ch)
{
    liif_png img;
    liif_error err;
    if (liif_image_read(path, &img, NULL, NULL, &err) != LIIF_OK) {
        fprintf(stderr, "pnginfo: %s\n", err.msg);
        return 1;
    }
    if (ch < 0 || ch >= img.channels) {
        fprintf(stderr, "pnginfo: %s has %d channels\n", path, img.channels);
        liif_png_free(&img);
        return 1;
    }
    double maxv = img.bit_depth == 16 ? 65535 : 255;
    double lo = INFINITY, hi = -INFINITY, sum = 0;
    size_t n = (size_t)img.w * img.h;
    for (size_t i = 0; i < n; i++) {
        double v = img.px[i * img.channels + ch] * maxv;
        lo = fmin(lo, v);
        hi = fmax(hi, v);
        sum += v;
    }
    printf("%.0f %.0f %.2f\n", lo, hi, sum / n);
    liif_png_free(&img);
    return 0;
}

static int diff(const char *path, const char *st_path, const char *name)
{
    liif_png img;
    liif_error err;
    liif_st_file *st = NULL;
    float *ref = NULL;
    int rc = 1;
    if (liif_png_read(path, &img, &err) != LIIF_OK) {
        fprintf(stderr, "pnginfo: %s\n", err.msg);
        return 1;
    }
    size_t n = (size_t)img.w * img.h * img.channels;
    int64_t shape[3] = {1, (int64_t)img.w * img.h, img.channels};
    if (!(ref = malloc(n * sizeof *ref)) || liif_st_open(st_path, &st, &err) != LIIF_OK ||
        liif_st_read_f32(st, name, 3, shape, ref, &err) != LIIF_OK) {
        fprintf(stderr, "pnginfo: %s\n", ref ? err.msg : "out of memory");
        goto done;
    }
    double maxv = img.bit_depth == 16 ? 65535 : 255, worst = 0;
    for (size_t i = 0; i < n; i++)
        worst = fmax(worst, fabs((double)img.px[i] - ref[i]) * maxv);
    printf("%.3f\n", worst);
    rc = 0;
done:
    liif_st_close(st);
    free(ref);
    liif_png_free(&img);
    return rc;
}

/* The "meta" line. */
static void print_meta(const liif_image_meta *m)
{
    if (m->exif) {
        tx_info x = tx_read(m->exif, m->exif_len);
        printf("exif %d %ld %ld %d %lu %d %d; ", x.orientation, x.w, x.h, x.dims_type, x.ifd1, x.make_ok, x.date_ok);
    } else {
        printf("exif none; ");
    }
    printf("density %d %u %u; colour %d %u %d\n", m->density_unit, m->density_x, m->density_y, m->srgb, m->gamma,
           m->has_chrm);
}

static int image(const char *path, const char *topng, const char *other, int icc)
{
    liif_png img, b;
    liif_error err;
    liif_image_format fmt;
    if (liif_image_read(path, &img, &fmt, NULL, &err) != LIIF_OK) {
        fprintf(stderr, "pnginfo: %s\n", err.msg);
        return 1;
    }
    int rc = 0;
    if (topng) {
        rc = liif_png_write(topng, &img, &err) != LIIF_OK;
    } else if (other) {
        rc = liif_image_read(other, &b, NULL, NULL, &err) != LIIF_OK;
        if (!rc && (b.w != img.w || b.h != img.h || b.channels != img.channels)) {
            snprintf(err.msg, sizeof err.msg, "%s and %s differ in size or channels", path, other);
            liif_png_free(&b);
            rc = 1;
        }
        if (!rc) {
            double worst = 0, sum = 0;
            size_t n = (size_t)img.w * img.h * img.channels;
            for (size_t i = 0; i < n; i++) {
                double d = fabs((double)img.px[i] - b.px[i]) * 255;
                worst = fmax(worst, d);
                sum += d;
            }
            printf("%.3f %.4f\n", worst, sum / n);
            liif_png_free(&b);
        }
    } else if (icc == 2) {
        print_meta(&img.meta);
    } else if (icc) {
        unsigned long sum = 0;
        for (size_t i = 0; i < img.meta.icc_len; i++) sum = (sum * 31 + img.meta.icc[i]) % 1000000007ul;
        if (img.meta.icc) printf("%zu %lu\n", img.meta.icc_len, sum);
        else printf("none\n");
    } else {
        printf("%s %d %d %d %d\n", liif_image_format_name(fmt), img.w, img.h, img.channels, img.bit_depth);
    }
    if (rc)
        fprintf(stderr, "pnginfo: %s\n", err.msg);
    liif_png_free(&img);
    return rc;
}

static int crop(const char *path, int x, int y, int w, int h, const char *out)
{
    liif_png img;
    liif_error err;
    if (liif_image_read(path, &img, NULL, NULL, &err) != LIIF_OK) {
        fprintf(stderr, "pnginfo: %s\n", err.msg);
        return 1;
    }
    int rc = x < 0 || y < 0 || w < 1 || h < 1 || x + w > img.w || y + h > img.h;
    if (rc)
        fprintf(stderr, "pnginfo: %dx%d at (%d, %d) is not inside %s (%dx%d)\n", w, h, x, y, path, img.w, img.h);
    liif_png c = {.w = w, .h = h, .channels = img.channels, .bit_depth = img.bit_depth};
    if (!rc && (c.px = malloc(sizeof(float) * w * h * img.channels))) {
        for (int r = 0; r < h; r++)
            memcpy(c.px + (size_t)r * w * img.channels, img.px + ((size_t)(y + r) * img.w + x) * img.channels,
                   sizeof(float) * w * img.channels);
        if ((rc = liif_png_write(out, &c, &err) != LIIF_OK))
            fprintf(stderr, "pnginfo: %s\n", err.msg);
        free(c.px);
    }
    liif_png_free(&img);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 8 && strcmp(argv[2], "crop") == 0)
        return crop(argv[1], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atoi(argv[6]), argv[7]);
    if (argc == 3 && strcmp(argv[2], "image") == 0)
        return image(argv[1], NULL, NULL, 0);
    if (argc == 3 && strcmp(argv[2], "icc") == 0)
        return image(argv[1], NULL, NULL, 1);
    if (argc == 3 && strcmp(argv[2], "meta") == 0)
        return image(argv[1], NULL, NULL, 2);
    if (argc == 4 && strcmp(argv[2], "topng") == 0)
        return image(argv[1], argv[3], NULL, 0);
    if (argc == 4 && strcmp(argv[2], "versus") == 0)
        return image(argv[1], NULL, argv[3], 0);
    if (argc == 2)
        return header(argv[1]);
    if (argc == 4 && strcmp(argv[2], "stats") == 0)
        return stats(argv[1], atoi(argv[3]));
    if (argc == 5 && strcmp(argv[2], "diff") == 0)
        return diff(argv[1], argv[3], argv[4]);
    fprintf(stderr, "usage: pnginfo FILE [stats CHANNEL | diff TENSORS.safetensors NAME | image | topng OUT.png |"
                    " versus OTHER | icc | meta | crop X Y W H OUT.png]\n");
    return 2;
}
