/* fuzz_image.c: libFuzzer harness: the CLI's image reader (PNG, JPEG or WebP by the first bytes; JPEG with its EXIF
 * orientation, scan limit and memory cap; the metadata for the output) on any bytes, a JPEG's deblocking (small
 * images: of the read, and of the same pixels as another program's layer, which must be found to be the file's and
 * come out the same), and the EXIF edit a writer makes of what it read. */
#include <stdlib.h>
#include <string.h>

#include "exif.h"
#include "fuzz_util.h"
#include "image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    liif_png img;
    liif_error err;
    liif_image_format fmt;
    int orientation = 0;
    if (liif_image_read(fuzz_as_file(data, size), &img, &fmt, &orientation, &err) == LIIF_OK) {
        size_t n = (size_t)img.w * img.h * img.channels;
        size_t cap = fmt == LIIF_IMAGE_JPEG   ? LIIF_JPEG_MEM_BASE + size * (size_t)LIIF_JPEG_MEM_PER_FILE_BYTE
                     : fmt == LIIF_IMAGE_WEBP ? LIIF_WEBP_MEM_BASE + size * (size_t)LIIF_WEBP_MEM_PER_FILE_BYTE
                                              : liif_png_memory_cap(size);
        if (img.w < 1 || img.h < 1 || img.channels < 1 || img.channels > 4 || n * sizeof(float) > cap ||
            orientation < 1 || orientation > 8 || (fmt == LIIF_IMAGE_JPEG && img.channels != 1 && img.channels != 3) ||
            (fmt == LIIF_IMAGE_WEBP && (img.channels < 3 || img.w > LIIF_WEBP_MAX_SIDE || img.h > LIIF_WEBP_MAX_SIDE)))
            abort();
        for (size_t i = 0; i < n; i++)
            if (!(img.px[i] >= 0.0f && img.px[i] <= 1.0f))
                abort();
        const liif_image_meta *m = &img.meta;
        if ((m->exif && !liif_exif_check(m->exif, m->exif_len)) || (m->icc && !m->icc_len) ||
            m->density_unit < LIIF_DENSITY_NONE || m->density_unit > LIIF_DENSITY_PER_METRE || m->srgb < 0 ||
            m->srgb > 4)
            abort();
        if (fmt == LIIF_IMAGE_JPEG && (size_t)img.w * img.h <= 1 << 16) { /* deblocking: the file read again */
            /* the reader's own decode as another program's pixels: always the file's, deblocked the same */
            liif_png copy = img;
            liif_jpeg_match match = LIIF_JPEG_NOT_THE_FILE;
            liif_status ps = LIIF_ERR_NOMEM;
            if ((copy.px = malloc(n * sizeof(float)))) {
                memcpy(copy.px, img.px, n * sizeof(float));
                ps = liif_jpeg_deblock_pixels(fuzz_as_file(data, size), &copy, 1, &match, &err);
            }
            int done = -1;
            liif_status ds = liif_jpeg_deblock(fuzz_as_file(data, size), &img, orientation, 1, &done, &err);
            if (ds == LIIF_OK && done != 0 && done != 1)
                abort();
            if (ps == LIIF_OK && (match == LIIF_JPEG_NOT_THE_FILE ||
                                  (ds == LIIF_OK && memcmp(copy.px, img.px, n * sizeof(float)) != 0)))
                abort();
            free(copy.px);
            for (size_t i = 0; ds == LIIF_OK && i < n; i++)
                if (!(img.px[i] >= 0.0f && img.px[i] <= 1.0f))
                    abort();
        }
        uint8_t *out;
        size_t out_n;
        if (m->exif) {
            if (liif_exif_for_image(m->exif, m->exif_len, img.w * 3, img.h * 3, 0, &out, &out_n) != 0)
                abort();
            free(out);
        }
        liif_png_free(&img);
    }
    return 0;
}
