/* jpeg_image.h: JPEG reading (EXIF orientation applied) and atomic streaming JPEG writing, with libjpeg. */
#ifndef LIIF_JPEG_IMAGE_H
#define LIIF_JPEG_IMAGE_H

#include <stdint.h>

#include "liif.h"
#include "png_image.h"

/* What a JPEG file may make the reader allocate: at most LIIF_MAX_SIDE pixels per side and
 * LIIF_MAX_PIXELS in all, and the decoded float pixels at most LIIF_JPEG_MEM_BASE +
 * LIIF_JPEG_MEM_PER_FILE_BYTE bytes per byte of the file (a photo needs ~40-150, a very smooth
 * one ~400: JPEG compresses more than PNG, whose reader allows 128), never more than
 * LIIF_PNG_MEM_MAX. A larger claim is refused before the pixel buffer is allocated. */
#define LIIF_JPEG_MEM_BASE ((size_t)64 << 20)
#define LIIF_JPEG_MEM_PER_FILE_BYTE 512

/* Whether the n bytes at b begin a JPEG: a start-of-image marker and another marker (FF D8 FF). */
int liif_jpeg_magic(const unsigned char *b, size_t n);

/* 8-bit pixels of a JPEG: channels 1 (gray) or 3 (RGB; rgb != 0 asks for RGB from gray too),
 * row-major, malloc'd into *px. The EXIF orientation (APP1) is applied, so the pixels stand as
 * a viewer shows them; *orientation (may be NULL) gets its value (1 = as stored, 1..8). A file
 * that is not a JPEG, is truncated or corrupt (libjpeg's warnings for bad data or a premature
 * end: it would pad with grey or decode noise), is CMYK, or breaks a limit above gives
 * LIIF_ERR_FORMAT (LIIF_ERR_IO when it cannot be opened or is not a regular file) with a one-line
 * message naming the file; nothing is kept on failure. */
liif_status liif_jpeg_read8(const char *path, int rgb, int *w, int *h, int *channels, uint8_t **px,
                            int *orientation, liif_error *err);

/* The same as floats in [0,1] (img->bit_depth 8, channels 1 or 3), with the file's metadata in img->meta: its ICC
 * profile (APP2) when one of at most LIIF_PNG_CHUNK_MAX bytes; its EXIF (APP1) when well formed, made upright
 * (Orientation 1, no thumbnail) when the orientation was applied; the JFIF density. */
liif_status liif_jpeg_read(const char *path, liif_png *img, int *orientation, liif_error *err);
/* The same from fd, a regular file of file_size bytes opened by liif_open_regular at its start (path names it in
 * messages); fd is closed whatever the outcome. */
liif_status liif_jpeg_read_fd(const char *path, int fd, size_t file_size, liif_png *img, int *orientation,
                              liif_error *err);

/* Deblocking: img was read from the JPEG at path (liif_image_read, with its orientation) and gets, in place, a
 * smoother picture that the file allows: every DCT coefficient of each component (luma, and chroma at its own
 * resolution) stays within the interval its quantised value stands for, to the 8-bit decode's rounding, so block
 * edges and ringing fade while nothing the file states is lost (projected descent on total variation, stopped early;
 * the changes put into RGB through JFIF's YCbCr, chroma's upsampled). *done is 1 when applied; 0, img untouched, for
 * a layout it does not take (an RGB or CMYK JPEG, subsampled luma, chroma at less than half). The file is read again
 * (its coefficients); a file that is no longer the one read gives LIIF_ERR_FORMAT. threads 0: all processors. */
liif_status liif_jpeg_deblock(const char *path, liif_png *img, int orientation, int threads, int *done,
                              liif_error *err);

/* What liif_jpeg_deblock_pixels found. */
typedef enum {
    LIIF_JPEG_DEBLOCKED = 1,     /* the pixels are the file's: deblocked */
    LIIF_JPEG_LAYOUT = 0,        /* they are, in a layout deblocking does not take (liif_jpeg_deblock's done 0) */
    LIIF_JPEG_NOT_THE_FILE = -1, /* they are not the file's decode (edited, another size or mode): untouched */
} liif_jpeg_match;

/* Deblocking pixels another program decoded from the JPEG at path (an image editor's layer): img (channels 1 or 3,
 * floats in [0,1], any bit_depth) is compared with this reader's decode (libjpeg's default integer IDCT, then its
 * float IDCT, which GIMP's loader uses: the two differ by up to a few levels), upright (EXIF orientation applied)
 * or as the file stores it; when every sample is within 2.5 levels of 255 and they are half a level apart on average, it
 * is deblocked in place as liif_jpeg_deblock does, standing as it was found. *match says which; img is untouched
 * unless LIIF_JPEG_DEBLOCKED. A file that cannot be read as a JPEG gives liif_jpeg_read's errors. */
liif_status liif_jpeg_deblock_pixels(const char *path, liif_png *img, int threads, liif_jpeg_match *match,
                                     liif_error *err);

/* Streaming writer, like liif_png_writer: rows in order, a temporary file in the destination
 * folder renamed into place by finish(); abort() or any failure removes it. channels 1 (gray) or
 * 3 (RGB), 8 bits; quality 1..100 (libjpeg's scale); chroma is not subsampled (4:4:4), since an
 * upscaler's output is all fine detail, and the Huffman tables are optimized. */
typedef struct liif_jpeg_writer liif_jpeg_writer;

liif_status liif_jpeg_writer_open(const char *path, int w, int h, int channels, int quality, liif_jpeg_writer **out,
                                  liif_error *err);
/* The same with the input's metadata (meta NULL: none): the ICC profile as APP2 markers, EXIF as APP1
 * (liif_exif_for_image: the size made w x h; left out when over LIIF_EXIF_JPEG_MAX bytes), the density in the JFIF
 * header (dots per inch, or per cm when dpi do not fit 16 bits). PNG's sRGB, gAMA and cHRM have no place in a JPEG.
 * *kept (may be NULL) gets the LIIF_META_* bits of what went in. */
liif_status liif_jpeg_writer_open_meta(const char *path, int w, int h, int channels, int quality,
                                       const liif_image_meta *meta, unsigned *kept, liif_jpeg_writer **out,
                                       liif_error *err);
/* The same with chroma at half resolution both ways (4:2:0, libjpeg's default and what cameras and most programs
 * write) for channels 3, no metadata: for measuring what such files do to an upscale (liif eval --lr-jpeg). */
liif_status liif_jpeg_writer_open_420(const char *path, int w, int h, int channels, int quality,
                                      liif_jpeg_writer **out, liif_error *err);
/* n_rows rows of w * channels floats in [0,1] (clamped, rounded to nearest), rows `stride` floats apart. */
liif_status liif_jpeg_writer_rows(liif_jpeg_writer *wr, const float *rows, int n_rows, size_t stride,
                                  liif_error *err);
liif_status liif_jpeg_writer_finish(liif_jpeg_writer *wr, liif_error *err);
void liif_jpeg_writer_abort(liif_jpeg_writer *wr);

#endif
