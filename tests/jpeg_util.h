/* jpeg_util.h: encodes test JPEGs (libjpeg, RGB) for the tests' file makers. */
#ifndef LIIF_JPEG_UTIL_H
#define LIIF_JPEG_UTIL_H

#include <stdio.h>
#include <stdlib.h>

#include <jpeglib.h> /* after stdio.h */

/* Sample c (0..2) of pixel (x, y). */
typedef unsigned char (*tj_sample_fn)(int x, int y, int c);

/* How tj_encode_ex writes: components 1 (gray), 3 (RGB) or 4 (CMYK), progressive scans, an APP1
 * marker of app1_n bytes (an EXIF block, say) when app1 is not NULL, and a JFIF density of dpi dots per
 * inch when dpi > 0. */
typedef struct {
    int components, progressive;
    const unsigned char *app1;
    unsigned app1_n;
    int dpi;
} tj_layout;

/* A w x h JPEG of px at the given quality, in memory (*n bytes, free() it); store_rgb keeps 3 components as RGB
 * (Adobe marker) instead of YCbCr. */
static inline unsigned char *tj_encode_cs(int w, int h, int quality, tj_sample_fn px, const tj_layout *l,
                                          int store_rgb, unsigned long *n)
{
    unsigned char *buf = NULL;
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &buf, n);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = l->components;
    c.in_color_space = l->components == 1 ? JCS_GRAYSCALE : l->components == 4 ? JCS_CMYK : JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    if (store_rgb)
        jpeg_set_colorspace(&c, JCS_RGB);
    if (l->progressive)
        jpeg_simple_progression(&c);
    if (l->dpi > 0) {
        c.density_unit = 1;
        c.X_density = c.Y_density = (UINT16)l->dpi;
    }
    jpeg_start_compress(&c, TRUE);
    if (l->app1)
        jpeg_write_marker(&c, JPEG_APP0 + 1, l->app1, l->app1_n);
    int k = l->components;
    unsigned char *row = malloc((size_t)w * k);
    for (int y = 0; y < h; y++) {
        for (int i = 0; i < w * k; i++) row[i] = px(i / k, y, i % k);
        JSAMPROW r = row;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    free(row);
    return buf;
}

/* The same, YCbCr for 3 components. */
static inline unsigned char *tj_encode_ex(int w, int h, int quality, tj_sample_fn px, const tj_layout *l,
                                          unsigned long *n)
{
    return tj_encode_cs(w, h, quality, px, l, 0, n);
}

/* An RGB JPEG, baseline, no markers. */
static inline unsigned char *tj_encode(int w, int h, int quality, tj_sample_fn px, unsigned long *n)
{
    const tj_layout rgb = {3, 0, NULL, 0, 0};
    return tj_encode_ex(w, h, quality, px, &rgb, n);
}

/* An APP1 EXIF block holding one IFD0 entry, Orientation (0x0112, SHORT, 1) = o, in little- or big-endian
 * TIFF order: 32 bytes into out. */
static inline unsigned tj_exif_orientation(unsigned char *out, int o, int little)
{
    static const unsigned char head[6] = {'E', 'x', 'i', 'f', 0, 0};
    unsigned char t[26] = {0}; /* header 8, entry count 2, one entry 12, next IFD 4 (none) */
    for (int i = 0; i < 6; i++) out[i] = head[i];
#define TJ_PUT16(p, v) (little ? ((p)[0] = (unsigned char)(v), (p)[1] = (unsigned char)((v) >> 8)) \
                               : ((p)[0] = (unsigned char)((v) >> 8), (p)[1] = (unsigned char)(v)))
    t[0] = t[1] = little ? 'I' : 'M';
    TJ_PUT16(t + 2, 42);
    TJ_PUT16(t + 4, little ? 8 : 0); /* IFD0 at offset 8 (a 32-bit field) */
    TJ_PUT16(t + 6, little ? 0 : 8);
    TJ_PUT16(t + 8, 1);              /* one entry */
    TJ_PUT16(t + 10, 0x0112);
    TJ_PUT16(t + 12, 3);             /* SHORT */
    TJ_PUT16(t + 14, little ? 1 : 0); /* count 1 (32-bit) */
    TJ_PUT16(t + 16, little ? 0 : 1);
    TJ_PUT16(t + 18, o);             /* the value, left-justified */
#undef TJ_PUT16
    for (int i = 0; i < 26; i++) out[6 + i] = t[i];
    return 32;
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
