/* exif.h: the few things an upscaler reads from or changes in an EXIF block, on untrusted bytes.
 *
 * An EXIF block here is TIFF-structured: what follows "Exif\0\0" in a JPEG's APP1 marker, or the whole of a PNG's
 * eXIf chunk: "II*\0" (little-endian) or "MM\0*" (big-endian), the offset of IFD0, then IFDs of 12-byte entries. Every
 * offset is checked against the block's size before it is followed; nothing here allocates from a value in the
 * block. */
#ifndef LIIF_EXIF_H
#define LIIF_EXIF_H

#include <stddef.h>
#include <stdint.h>

/* A JPEG APP1 marker holds at most 65533 bytes, 6 of them "Exif\0\0". */
#define LIIF_EXIF_JPEG_MAX ((size_t)65527)

/* 1 when the block has a TIFF header and an IFD0 whose entries lie inside it, else 0. */
int liif_exif_check(const uint8_t *t, size_t n);

/* Tag 0x0112 (Orientation) of IFD0: 1..8, or 1 when missing or malformed. */
int liif_exif_orientation(const uint8_t *t, size_t n);

/* A copy of the block for an image of w x h pixels, malloc'd into *out (*out_n bytes): PixelXDimension and
 * PixelYDimension (0xA002/0xA003 of the Exif IFD) say w and h when present. When turned != 0 the pixels were turned
 * upright by the reader: Orientation becomes 1, and the thumbnail (IFD1, still as stored) is unlinked. Returns 0,
 * or -1 (nothing allocated) when the block fails liif_exif_check or memory runs out. */
int liif_exif_for_image(const uint8_t *t, size_t n, int w, int h, int turned, uint8_t **out, size_t *out_n);

#endif
