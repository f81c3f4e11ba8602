/* exif.c: EXIF orientation and the edits an output needs, with every offset checked (see exif.h). */
#include <stdlib.h>
#include <string.h>

#include "exif.h"

enum {
    TAG_ORIENTATION = 0x0112,
    TAG_EXIF_IFD = 0x8769,
    TAG_PIXEL_X = 0xA002,
    TAG_PIXEL_Y = 0xA003,
    TYPE_SHORT = 3,
    TYPE_LONG = 4,
    TYPE_IFD = 13,
};

static unsigned get16(const uint8_t *p, int le) { return le ? p[0] | p[1] << 8 : p[0] << 8 | p[1]; }
static uint32_t get32(const uint8_t *p, int le)
{
    return le ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
              : (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}
static void put16(uint8_t *p, unsigned v, int le)
{
    p[le ? 0 : 1] = (uint8_t)(v & 0xff);
    p[le ? 1 : 0] = (uint8_t)(v >> 8 & 0xff);
}
static void put32(uint8_t *p, uint32_t v, int le)
{
    for (int i = 0; i < 4; i++)
        p[le ? i : 3 - i] = (uint8_t)(v >> 8 * i & 0xff);
}

/* The byte order (1 little, 0 big), or -1 without a TIFF header. */
static int byte_order(const uint8_t *t, size_t n)
{
    if (n < 8)
        return -1;
    int le = t[0] == 'I' && t[1] == 'I';
    if (!le && !(t[0] == 'M' && t[1] == 'M'))
        return -1;
    return get16(t + 2, le) == 42 ? le : -1;
}

/* The number of entries of the IFD at offset off when the count and every entry lie inside the block (the
 * next-IFD offset after them too), else -1. */
static long ifd_entries(const uint8_t *t, size_t n, uint32_t off, int le)
{
    if (off < 8 || n < 2 || off > n - 2)
        return -1;
    size_t count = get16(t + off, le);
    if (count * 12 + 4 > n - off - 2)
        return -1;
    return (long)count;
}

/* The offset of the 12-byte entry for tag in the IFD at off, or 0 when it has none. */
static size_t find_entry(const uint8_t *t, uint32_t off, long count, unsigned tag, int le)
{
    for (long i = 0; i < count; i++) {
        size_t e = off + 2 + (size_t)12 * i;
        if (get16(t + e, le) == tag)
            return e;
    }
    return 0;
}

int liif_exif_check(const uint8_t *t, size_t n)
{
    int le = byte_order(t, n);
    return le >= 0 && ifd_entries(t, n, get32(t + 4, le), le) >= 0;
}

int liif_exif_orientation(const uint8_t *t, size_t n)
{
    int le = byte_order(t, n);
    if (le < 0)
        return 1;
    uint32_t ifd0 = get32(t + 4, le);
    long count = ifd_entries(t, n, ifd0, le);
    size_t e = count > 0 ? find_entry(t, ifd0, count, TAG_ORIENTATION, le) : 0;
    /* SHORT, one value, stored left-justified in the 4-byte value field */
    if (!e || get16(t + e + 2, le) != TYPE_SHORT || get32(t + e + 4, le) != 1)
        return 1;
    unsigned v = get16(t + e + 8, le);
    return v >= 1 && v <= 8 ? (int)v : 1;
}

/* Sets the one-value SHORT or LONG entry at e to v (a SHORT that cannot hold v becomes a LONG: both fit the
 * 4-byte value field). Other types and counts are left alone. */
static void set_number(uint8_t *t, size_t e, uint32_t v, int le)
{
    unsigned type = get16(t + e + 2, le);
    if ((type != TYPE_SHORT && type != TYPE_LONG) || get32(t + e + 4, le) != 1)
        return;
    if (type == TYPE_SHORT && v <= 0xffff) {
        put16(t + e + 8, v, le);
        put16(t + e + 10, 0, le);
    } else {
        put16(t + e + 2, TYPE_LONG, le);
        put32(t + e + 8, v, le);
    }
}

int liif_exif_for_image(const uint8_t *t, size_t n, int w, int h, int turned, uint8_t **out, size_t *out_n)
{
    *out = NULL;
    *out_n = 0;
    if (!t || !liif_exif_check(t, n) || w < 1 || h < 1)
        return -1;
    uint8_t *c = malloc(n);
    if (!c)
        return -1;
    memcpy(c, t, n);
    int le = byte_order(c, n);
    uint32_t ifd0 = get32(c + 4, le);
    long count = ifd_entries(c, n, ifd0, le);
    if (turned) {
        size_t e = find_entry(c, ifd0, count, TAG_ORIENTATION, le);
        if (e)
            set_number(c, e, 1, le);
        put32(c + ifd0 + 2 + (size_t)12 * count, 0, le); /* no IFD1: its thumbnail is not turned */
    }
    size_t e = find_entry(c, ifd0, count, TAG_EXIF_IFD, le);
    unsigned type = e ? get16(c + e + 2, le) : 0;
    if (e && (type == TYPE_LONG || type == TYPE_IFD) && get32(c + e + 4, le) == 1) {
        uint32_t sub = get32(c + e + 8, le);
        long sub_count = ifd_entries(c, n, sub, le);
        for (long i = 0; i < sub_count; i++) { /* a malformed Exif IFD (-1) is left as it is */
            size_t s = sub + 2 + (size_t)12 * i;
            unsigned tag = get16(c + s, le);
            if (tag == TAG_PIXEL_X || tag == TAG_PIXEL_Y)
                set_number(c, s, (uint32_t)(tag == TAG_PIXEL_X ? w : h), le);
        }
    }
    *out = c;
    *out_n = n;
    return 0;
}
