/* jpeg_util.h: encodes test JPEGs (libjpeg, RGB) for the tests' file makers. */
#ifndef LIIF_JPEG_UTIL_H
#define LIIF_JPEG_UTIL_H

#include <stdio.h>
#include <stdlib.h>

#include <jpeglib.h> /* after stdio.h */

/* Sample c (0..2) of pixel (x, y). */
typedef unsigned char (*tj_sample_fn)(int x, int y, int c);

/* A w x h JPEG of px at the given quality, in memory (*n bytes, free() it). */
static inline unsigned char *tj_encode(int w, int h, int quality, tj_sample_fn px, unsigned long *n)
{
    unsigned char *buf = NULL;
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &buf, n);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    jpeg_start_compress(&c, TRUE);
    unsigned char *row = malloc((size_t)w * 3);
    for (int y = 0; y < h; y++) {
        for (int i = 0; i < w * 3; i++) row[i] = px(i / 3, y, i % 3);
        JSAMPROW r = row;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    free(row);
    return buf;
}

/* Writes n bytes to path; 0 on success. */
static inline int tj_save(const char *path, const unsigned char *buf, unsigned long n)
{
    FILE *f = fopen(path, "wb");
    int bad = !f || fwrite(buf, 1, n, f) != n;
    if (f && fclose(f)) bad = 1;
    return bad;
}

#endif
