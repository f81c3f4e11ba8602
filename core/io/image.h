/* image.h: PNG, JPEG or WebP, chosen by the file's bytes when reading and by the name's extension when writing. */
#ifndef LIIF_IMAGE_H
#define LIIF_IMAGE_H

#include "jpeg_image.h"
#include "png_image.h"
#include "webp_image.h"

typedef enum { LIIF_IMAGE_PNG, LIIF_IMAGE_JPEG, LIIF_IMAGE_WEBP } liif_image_format;

/* The format an output name asks for: .jpg, .jpeg, .jpe or .jfif (any case) JPEG, .webp WebP, .png or no
 * extension PNG; any other extension (.tif, .webp, ...) is LIIF_ERR_ARG with a one-line message, rather than a PNG
 * under a name that says otherwise. */
liif_status liif_image_format_for_name(const char *path, liif_image_format *fmt, liif_error *err);
const char *liif_image_format_name(liif_image_format fmt);

/* Reads a PNG (liif_png_read), a JPEG (liif_jpeg_read: 8-bit gray or RGB, EXIF orientation applied) or a WebP
 * (liif_webp_read) as its first bytes say; anything else is LIIF_ERR_FORMAT ("not a PNG, JPEG or WebP image"). fmt
 * and orientation (1 for PNG and WebP) may be NULL. */
liif_status liif_image_read(const char *path, liif_png *img, liif_image_format *fmt, int *orientation,
                            liif_error *err);

/* One streaming writer for the three: PNG takes 1-4 channels at 8 or 16 bits, JPEG 1 or 3 channels at 8 bits
 * with `quality` (1..100), WebP 1-4 channels at 8 bits with `quality` (1..99 lossy, 100 lossless); PNG ignores it. Threads apply to PNG's deflate. meta (NULL: none) is the input's
 * metadata to carry over (liif_png_writer_open_meta, liif_jpeg_writer_open_meta say what each format takes);
 * *kept (may be NULL) gets the LIIF_META_* bits of what went in. */
typedef struct liif_image_writer liif_image_writer;

liif_status liif_image_writer_open(const char *path, liif_image_format fmt, int w, int h, int channels, int bit_depth,
                                   int quality, const liif_image_meta *meta, unsigned *kept, liif_image_writer **out,
                                   liif_error *err);
void liif_image_writer_set_threads(liif_image_writer *wr, int threads);
liif_status liif_image_writer_rows(liif_image_writer *wr, const float *rows, int n_rows, size_t stride,
                                   liif_error *err);
liif_status liif_image_writer_finish(liif_image_writer *wr, liif_error *err);
void liif_image_writer_abort(liif_image_writer *wr);

#endif
