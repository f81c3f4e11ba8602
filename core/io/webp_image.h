/* webp_image.h: WebP reading and atomic WebP writing with libwebp (its mux and demux for the ICC profile and EXIF). */
#ifndef LIIF_WEBP_IMAGE_H
#define LIIF_WEBP_IMAGE_H

#include <stddef.h>

#include "liif.h"
#include "png_image.h"

/* What a WebP file may make the reader allocate: the file itself (read whole, at most LIIF_WEBP_FILE_MAX bytes) and
 * the decoded float pixels, at most LIIF_WEBP_MEM_BASE + LIIF_WEBP_MEM_PER_FILE_BYTE bytes per byte of the file (as a
 * JPEG's: a lossless flat picture compresses further still, so the base is generous), never more than
 * LIIF_PNG_MEM_MAX; at most 16383 px per side (the format's own limit). */
#define LIIF_WEBP_FILE_MAX ((size_t)256 << 20)
#define LIIF_WEBP_MEM_BASE ((size_t)64 << 20)
#define LIIF_WEBP_MEM_PER_FILE_BYTE 512
#define LIIF_WEBP_MAX_SIDE 16383

/* Reads a still WebP (lossy or lossless) as floats in [0,1]: channels 3, or 4 with alpha; bit_depth 8. img->meta gets
 * the ICCP chunk and a well-formed EXIF chunk (as stored: a WebP's orientation is not applied, as browsers do not).
 * An animation, a truncated or corrupt file, or a size over the limits is LIIF_ERR_FORMAT (LIIF_ERR_IO when it
 * cannot be opened or read) with a one-line message naming the file; nothing is kept on failure. */
liif_status liif_webp_read(const char *path, liif_png *img, liif_error *err);
/* The same from fd, a regular file of file_size bytes opened by liif_open_regular at its start; fd is closed. */
liif_status liif_webp_read_fd(const char *path, int fd, size_t file_size, liif_png *img, liif_error *err);

/* Writer, like the PNG and JPEG ones (rows in order; a temporary file renamed into place by finish(); abort() or any
 * failure removes it), but the encoder needs the whole picture: rows are kept as 8-bit RGB(A) (w * h * 4 bytes at
 * most) and encoded by finish(). channels 1-4 (gray is stored as RGB: WebP has no gray); quality 1..99 lossy (alpha
 * lossless), 100 lossless. meta: the ICC profile (ICCP) and EXIF (liif_exif_for_image: the size made w x h); *kept
 * (may be NULL) the LIIF_META_* bits of what goes in (no density or PNG colour chunks: WebP has neither). */
typedef struct liif_webp_writer liif_webp_writer;

liif_status liif_webp_writer_open_meta(const char *path, int w, int h, int channels, int quality,
                                       const liif_image_meta *meta, unsigned *kept, liif_webp_writer **out,
                                       liif_error *err);
liif_status liif_webp_writer_rows(liif_webp_writer *wr, const float *rows, int n_rows, size_t stride,
                                  liif_error *err);
liif_status liif_webp_writer_finish(liif_webp_writer *wr, liif_error *err);
void liif_webp_writer_abort(liif_webp_writer *wr);

#endif
