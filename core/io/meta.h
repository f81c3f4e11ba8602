/* meta.h: what travels with the pixels from an input file to the output: colour (ICC profile, PNG's sRGB, gAMA and
 * cHRM), EXIF (camera, date, place) and the pixel density a print uses. */
#ifndef LIIF_META_H
#define LIIF_META_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    LIIF_DENSITY_NONE,      /* not given */
    LIIF_DENSITY_ASPECT,    /* only the ratio x:y of the pixel's sides (PNG unit "unknown", JFIF unit 0) */
    LIIF_DENSITY_PER_METRE, /* pixels per metre (PNG pHYs; JFIF dots per inch or per cm, converted) */
} liif_density_unit;

typedef struct {
    unsigned char *icc; /* ICC colour profile (PNG iCCP, JPEG APP2), or NULL */
    size_t icc_len;
    unsigned char *exif; /* TIFF-structured EXIF (exif.h; PNG eXIf, JPEG APP1 after "Exif\0\0"), or NULL */
    size_t exif_len;
    int density_unit; /* liif_density_unit; a print keeps its pixels per inch, as GIMP's Scale Image does */
    uint32_t density_x, density_y;
    int srgb;          /* PNG sRGB chunk: 1 + its rendering intent (0..3); 0 none */
    uint32_t gamma;    /* PNG gAMA: the file's gamma x 100000; 0 none */
    int has_chrm;      /* PNG cHRM: white, red, green and blue x and y, x 100000 */
    int32_t chrm[8];
} liif_image_meta;

/* What a writer put in (the `kept` of the open functions) and what an image has (liif_image_meta_has). */
enum {
    LIIF_META_ICC = 1,
    LIIF_META_EXIF = 2,
    LIIF_META_DENSITY = 4,
    LIIF_META_COLOUR = 8, /* sRGB, gAMA or cHRM */
};

static inline unsigned liif_image_meta_has(const liif_image_meta *m)
{
    if (!m)
        return 0;
    return (m->icc && m->icc_len ? LIIF_META_ICC : 0u) | (m->exif && m->exif_len ? LIIF_META_EXIF : 0u) |
           (m->density_unit != LIIF_DENSITY_NONE ? LIIF_META_DENSITY : 0u) |
           (m->srgb || m->gamma || m->has_chrm ? LIIF_META_COLOUR : 0u);
}

#endif
