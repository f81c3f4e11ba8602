/* icc_util.h: a minimal ICC colour profile for the tests: a valid v4 header (display class, RGB or gray, XYZ
 * connection space with the D50 illuminant libpng checks for) and no tags, padded with zeros to `size` bytes
 * (at least 132), its bytes after the header numbered by `seed` so that two profiles differ. */
#ifndef LIIF_ICC_UTIL_H
#define LIIF_ICC_UTIL_H

#include <stddef.h>
#include <string.h>

static inline void tu_put32(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16), p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static inline void tu_icc_profile(unsigned char *out, size_t size, int gray, unsigned seed)
{
    memset(out, 0, size);
    tu_put32(out, (unsigned)size);
    tu_put32(out + 8, 0x04300000u);                 /* version 4.3 */
    memcpy(out + 12, "mntr", 4);                    /* a display */
    memcpy(out + 16, gray ? "GRAY" : "RGB ", 4);
    memcpy(out + 20, "XYZ ", 4);
    memcpy(out + 36, "acsp", 4);
    tu_put32(out + 68, 0x0000F6D6u);                /* D50: X 0.9642, Y 1.0, Z 0.8249 (s15Fixed16) */
    tu_put32(out + 72, 0x00010000u);
    tu_put32(out + 76, 0x0000D32Du);
    out[100] = (unsigned char)seed;                 /* inside the profile ID's field: a different profile */
    tu_put32(out + 128, 0);                         /* no tags */
    for (size_t i = 132; i < size; i++)
        out[i] = (unsigned char)(i * 7 + seed);
}

#endif
