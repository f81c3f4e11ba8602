/* png_image.h: PNG reading and atomic (temporary file + rename) writing with libpng, as float pixels. */
#ifndef LIIF_PNG_IMAGE_H
#define LIIF_PNG_IMAGE_H

#include "liif.h"

/* A decoded image: interleaved float samples in [0,1].
 * channels: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA. Palette images come back as RGB or
 * RGBA (RGBA when the palette has a tRNS chunk), gray with tRNS as gray+alpha, and
 * bit depths below 8 as 8. bit_depth is 8 or 16: the depth a faithful copy needs. */
typedef struct {
    int w, h;
    int channels;
    int bit_depth;
    float *px; /* w * h * channels floats, row-major */
} liif_png;

/* Read a PNG. A file that is not a PNG, is truncated or corrupt, or is larger than
 * LIIF_MAX_SIDE per side gives LIIF_ERR_FORMAT (or LIIF_ERR_IO when it cannot be
 * opened) with a one-line message naming the file. */
liif_status liif_png_read(const char *path, liif_png *img, liif_error *err);
void liif_png_free(liif_png *img);

/* Streaming writer: rows are appended in order, so an output larger than memory can
 * be written band by band. Pixels go to a temporary file in the destination folder;
 * finish() flushes, fsyncs and renames it over path; abort() (or any failure) removes
 * it, so a failed run never leaves a partial file or touches an existing one. */
typedef struct liif_png_writer liif_png_writer;

liif_status liif_png_writer_open(const char *path, int w, int h, int channels, int bit_depth,
                                 liif_png_writer **out, liif_error *err);
/* n_rows rows of w * channels floats in [0,1] (clamped, rounded to nearest), rows `stride` floats apart. */
liif_status liif_png_writer_rows(liif_png_writer *wr, const float *rows, int n_rows, size_t stride,
                                 liif_error *err);
/* Completes the file and renames it into place; frees wr whatever the outcome. */
liif_status liif_png_writer_finish(liif_png_writer *wr, liif_error *err);
/* Removes the temporary file and frees wr. */
void liif_png_writer_abort(liif_png_writer *wr);

/* Whole-image convenience: open + rows + finish. */
liif_status liif_png_write(const char *path, const liif_png *img, liif_error *err);

#endif
