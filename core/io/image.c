/* image.c: PNG, JPEG or WebP reading by content, writing by the name's extension. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "image.h"

liif_status liif_image_format_for_name(const char *path, liif_image_format *fmt, liif_error *err)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    const char *dot = strrchr(base, '.');
    *fmt = LIIF_IMAGE_PNG;
    if (!dot || dot == base || !strcasecmp(dot, ".png"))
        return LIIF_OK; /* no extension (or a dot-file): PNG, as before there was a choice */
    if (!strcasecmp(dot, ".webp")) {
        *fmt = LIIF_IMAGE_WEBP;
        return LIIF_OK;
    }
    static const char *const jpeg[] = {".jpg", ".jpeg", ".jpe", ".jfif"};
    for (size_t i = 0; i < sizeof jpeg / sizeof jpeg[0]; i++)
        if (!strcasecmp(dot, jpeg[i])) {
            *fmt = LIIF_IMAGE_JPEG;
            return LIIF_OK;
        }
    char name[64];
    return liif_error_set(err, LIIF_ERR_ARG, "%s: cannot write '%s' files: name it .png, .jpg or .webp", path,
                          liif_printable(dot, name, sizeof name));
}

const char *liif_image_format_name(liif_image_format fmt)
{
    return fmt == LIIF_IMAGE_JPEG ? "JPEG" : fmt == LIIF_IMAGE_WEBP ? "WebP" : "PNG";
}

liif_status liif_image_read(const char *path, liif_png *img, liif_image_format *fmt, int *orientation,
                            liif_error *err)
{
    memset(img, 0, sizeof *img);
    unsigned char magic[12] = {0}; /* PNG's signature is 8 bytes; a WebP says so at bytes 8-11 ("RIFF" size "WEBP") */
    size_t size;
    int fd = liif_open_regular(path, &size, err);
    if (fd < 0)
        return LIIF_ERR_IO;
    ssize_t n = pread(fd, magic, sizeof magic, 0); /* the readers start from the file's start: one open, one file */
    if (n < 0) {
        int e = errno;
        close(fd);
        return liif_error_set(err, LIIF_ERR_IO, "%s: read failed: %s", path, strerror(e));
    }
    int jpeg = n > 0 && liif_jpeg_magic(magic, (size_t)n);
    int webp = n >= 12 && !memcmp(magic, "RIFF", 4) && !memcmp(magic + 8, "WEBP", 4);
    if (fmt)
        *fmt = jpeg ? LIIF_IMAGE_JPEG : webp ? LIIF_IMAGE_WEBP : LIIF_IMAGE_PNG;
    if (orientation)
        *orientation = 1;
    if (jpeg)
        return liif_jpeg_read_fd(path, fd, size, img, orientation, err);
    if (webp)
        return liif_webp_read_fd(path, fd, size, img, err);
    static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (n < 8 || memcmp(magic, png_sig, 8) != 0) {
        close(fd);
        return liif_error_set(err, LIIF_ERR_FORMAT, "%s: not a PNG, JPEG or WebP image", path);
    }
    return liif_png_read_fd(path, fd, size, img, err);
}

struct liif_image_writer {
    liif_png_writer *png;
    liif_jpeg_writer *jpeg;
    liif_webp_writer *webp;
};

liif_status liif_image_writer_open(const char *path, liif_image_format fmt, int w, int h, int channels, int bit_depth,
                                   int quality, const liif_image_meta *meta, unsigned *kept, liif_image_writer **out,
                                   liif_error *err)
{
    *out = NULL;
    if (kept)
        *kept = 0;
    if (fmt != LIIF_IMAGE_PNG && bit_depth != 8)
        return liif_error_set(err, LIIF_ERR_ARG, "%s: bit depth %d (a %s holds 8)", path ? path : "image", bit_depth,
                              liif_image_format_name(fmt));
    liif_image_writer *wr = calloc(1, sizeof *wr);
    if (!wr)
        return liif_error_set(err, LIIF_ERR_NOMEM, "%s: out of memory", path ? path : "image");
    liif_status st = fmt == LIIF_IMAGE_JPEG
                         ? liif_jpeg_writer_open_meta(path, w, h, channels, quality, meta, kept, &wr->jpeg, err)
                     : fmt == LIIF_IMAGE_WEBP
                         ? liif_webp_writer_open_meta(path, w, h, channels, quality, meta, kept, &wr->webp, err)
                         : liif_png_writer_open_meta(path, w, h, channels, bit_depth, meta, kept, &wr->png, err);
    if (st != LIIF_OK) {
        free(wr);
        return st;
    }
    *out = wr;
    return LIIF_OK;
}

void liif_image_writer_set_threads(liif_image_writer *wr, int threads)
{
    if (wr && wr->png)
        liif_png_writer_set_threads(wr->png, threads);
}

liif_status liif_image_writer_rows(liif_image_writer *wr, const float *rows, int n_rows, size_t stride,
                                   liif_error *err)
{
    if (!wr)
        return liif_error_set(err, LIIF_ERR_ARG, "image output: no writer");
    return wr->jpeg ? liif_jpeg_writer_rows(wr->jpeg, rows, n_rows, stride, err)
           : wr->webp ? liif_webp_writer_rows(wr->webp, rows, n_rows, stride, err)
                      : liif_png_writer_rows(wr->png, rows, n_rows, stride, err);
}

liif_status liif_image_writer_finish(liif_image_writer *wr, liif_error *err)
{
    if (!wr)
        return liif_error_set(err, LIIF_ERR_ARG, "image output: no writer");
    liif_status st = wr->jpeg   ? liif_jpeg_writer_finish(wr->jpeg, err)
                     : wr->webp ? liif_webp_writer_finish(wr->webp, err)
                                : liif_png_writer_finish(wr->png, err);
    free(wr);
    return st;
}

void liif_image_writer_abort(liif_image_writer *wr)
{
    if (!wr)
        return;
    liif_jpeg_writer_abort(wr->jpeg);
    liif_webp_writer_abort(wr->webp);
    liif_png_writer_abort(wr->png);
    free(wr);
}
