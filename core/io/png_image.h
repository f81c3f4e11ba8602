/* png_image.h: PNG reading and atomic (temporary file + rename) writing with libpng, as float pixels. */
#ifndef LIIF_PNG_IMAGE_H
#define LIIF_PNG_IMAGE_H

#include "liif.h"
#include "meta.h"

/* A decoded image: interleaved float samples in [0,1].
 * channels: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA. Palette images come back as RGB or
 * RGBA (RGBA when the palette has a tRNS chunk), gray with tRNS as gray+alpha, and
 * bit depths below 8 as 8. bit_depth is 8 or 16: the depth a faithful copy needs. */
typedef struct {
    int w, h;
    int channels;
    int bit_depth;
    float *px; /* w * h * channels floats, row-major */
    liif_image_meta meta; /* the file's colour profile and chunks, EXIF and density; freed with the image */
} liif_png;

/* What a PNG file may make the reader allocate. Every ancillary chunk (text, ICC profile, ...)
 * at most LIIF_PNG_CHUNK_MAX bytes, at most LIIF_PNG_CHUNK_CACHE_MAX of them kept; at most
 * LIIF_MAX_SIDE pixels per side and LIIF_MAX_PIXELS in all; and the decoded float pixels at
 * most LIIF_PNG_MEM_BASE + LIIF_PNG_MEM_PER_FILE_BYTE bytes per byte of the file (a photo
 * needs ~10, a flat screenshot ~100), never more than LIIF_PNG_MEM_MAX. A larger claim is a
 * decompression bomb or a lying header: refused before the pixel buffer is allocated. */
#define LIIF_PNG_CHUNK_MAX ((size_t)8 << 20)
#define LIIF_PNG_CHUNK_CACHE_MAX 256
#define LIIF_PNG_SIDE_TEXT "65536" /* LIIF_MAX_SIDE, for messages made at compile time */
#define LIIF_PNG_MEM_BASE ((size_t)32 << 20)
#define LIIF_PNG_MEM_PER_FILE_BYTE 128
#define LIIF_PNG_MEM_MAX ((size_t)4 << 30)

/* The decoded-pixel budget of a file of file_size bytes (see above). */
size_t liif_png_memory_cap(size_t file_size);

/* Read a PNG. A file that is not a PNG, is truncated or corrupt, is larger than
 * LIIF_MAX_SIDE per side or breaks a limit above gives LIIF_ERR_FORMAT (or LIIF_ERR_IO
 * when it cannot be opened or is not a regular file: a FIFO or device is never opened
 * for reading) with a one-line message naming the file; nothing is kept on failure. */
liif_status liif_png_read(const char *path, liif_png *img, liif_error *err);
/* The same from fd, a regular file of file_size bytes opened by liif_open_regular at its start (path names it in
 * messages); fd is closed whatever the outcome. */
liif_status liif_png_read_fd(const char *path, int fd, size_t file_size, liif_png *img, liif_error *err);
void liif_png_free(liif_png *img);

/* Streaming writer: rows are appended in order, so an output larger than memory can
 * be written band by band. Pixels go to a temporary file in the destination folder;
 * finish() flushes, fsyncs and renames it over path; abort() (or any failure) removes
 * it, so a failed run never leaves a partial file or touches an existing one. */
typedef struct liif_png_writer liif_png_writer;

liif_status liif_png_writer_open(const char *path, int w, int h, int channels, int bit_depth,
                                 liif_png_writer **out, liif_error *err);
/* The same with the input's metadata (meta NULL: none): the ICC profile as iCCP; without one, the sRGB, or gAMA
 * and cHRM, chunks; EXIF as eXIf (liif_exif_for_image: the size made w x h); the density as pHYs. What libpng
 * refuses for this image (a profile that is malformed or of another colour space) is left out, not an error:
 * *kept (may be NULL) gets the LIIF_META_* bits of what went in. */
liif_status liif_png_writer_open_meta(const char *path, int w, int h, int channels, int bit_depth,
                                      const liif_image_meta *meta, unsigned *kept, liif_png_writer **out,
                                      liif_error *err);
/* Threads that filter and deflate the rows (0, the default: all processors). The file does not
 * depend on it: pieces are cut at fixed offsets (png_idat.h). */
void liif_png_writer_set_threads(liif_png_writer *wr, int threads);
/* n_rows rows of w * channels floats in [0,1] (clamped, rounded to nearest), rows `stride` floats apart. */
liif_status liif_png_writer_rows(liif_png_writer *wr, const float *rows, int n_rows, size_t stride,
                                 liif_error *err);
/* Completes the file and renames it into place; frees wr whatever the outcome. */
liif_status liif_png_writer_finish(liif_png_writer *wr, liif_error *err);
/* Removes the temporary file and frees wr. */
void liif_png_writer_abort(liif_png_writer *wr);

/* Whole-image convenience: open + rows + finish (with img->meta, as far as libpng takes it). */
liif_status liif_png_write(const char *path, const liif_png *img, liif_error *err);

#endif
