/* exif_util.h: camera-like EXIF blocks for the tests, and a reader of what the tests check in one. Written apart from
 * core/io/exif.c, so that each checks the other. A block is TIFF-structured (no "Exif\0\0" prefix):
 *   IFD0: Make "LIIF test camera", Orientation, the Exif IFD's offset; then IFD1 (a thumbnail's IFD) or none
 *   Exif IFD: DateTimeOriginal "2026:12:06 10:20:30", PixelXDimension, PixelYDimension (SHORT or LONG) */
#ifndef LIIF_TESTS_EXIF_UTIL_H
#define LIIF_TESTS_EXIF_UTIL_H

#include <stddef.h>
#include <string.h>

#define TX_MAKE "LIIF test camera"
#define TX_DATE "2026:12:06 10:20:30"

typedef struct {
    int little;      /* byte order */
    int orientation; /* 1..8 */
    int w, h;        /* PixelXDimension, PixelYDimension */
    int long_dims;   /* LONG rather than SHORT */
    int ifd1;        /* a thumbnail IFD after IFD0 */
} tx_spec;

static inline void tx_put(unsigned char *p, unsigned long v, int bytes, int little)
{
    for (int i = 0; i < bytes; i++)
        p[little ? i : bytes - 1 - i] = (unsigned char)(v >> (8 * i));
}

static inline unsigned long tx_get(const unsigned char *p, int bytes, int little)
{
    unsigned long v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (unsigned long)p[little ? i : bytes - 1 - i] << (8 * i);
    return v;
}

/* One 12-byte entry at p; a SHORT value sits left-justified in the value field. */
static inline void tx_entry(unsigned char *p, unsigned tag, unsigned type, unsigned long count, unsigned long value,
                            int little)
{
    tx_put(p, tag, 2, little);
    tx_put(p + 2, type, 2, little);
    tx_put(p + 4, count, 4, little);
    memset(p + 8, 0, 4);
    tx_put(p + 8, value, type == 3 ? 2 : 4, little);
}

/* The block for s into t (at least 160 bytes); its length. */
static inline size_t tx_build(unsigned char *t, const tx_spec *s)
{
    int le = s->little;
    memset(t, 0, 160);
    t[0] = t[1] = le ? 'I' : 'M';
    tx_put(t + 2, 42, 2, le);
    tx_put(t + 4, 8, 4, le);
    tx_put(t + 8, 3, 2, le); /* IFD0 at 8: 3 entries, next IFD at 46 */
    tx_entry(t + 10, 0x010F, 2, sizeof TX_MAKE, 50, le);
    tx_entry(t + 22, 0x0112, 3, 1, (unsigned long)s->orientation, le);
    tx_entry(t + 34, 0x8769, 4, 1, 68, le);
    tx_put(t + 46, s->ifd1 ? 130 : 0, 4, le);
    memcpy(t + 50, TX_MAKE, sizeof TX_MAKE); /* 17 bytes */
    tx_put(t + 68, 3, 2, le);                /* Exif IFD at 68: 3 entries, next at 106 (none) */
    tx_entry(t + 70, 0x9003, 2, sizeof TX_DATE, 110, le);
    tx_entry(t + 82, 0xA002, s->long_dims ? 4 : 3, 1, (unsigned long)s->w, le);
    tx_entry(t + 94, 0xA003, s->long_dims ? 4 : 3, 1, (unsigned long)s->h, le);
    memcpy(t + 110, TX_DATE, sizeof TX_DATE); /* 20 bytes */
    if (!s->ifd1)
        return 130;
    tx_put(t + 130, 1, 2, le); /* IFD1 at 130: Compression = 6 (JPEG thumbnail) */
    tx_entry(t + 132, 0x0103, 3, 1, 6, le);
    return 148;
}

/* What a block says, as the tests check it. */
typedef struct {
    int ok;          /* a TIFF header and IFD0 in bounds */
    int orientation; /* 0: none */
    long w, h;       /* -1: none */
    int dims_type;   /* 3 SHORT, 4 LONG */
    unsigned long ifd1;
    int make_ok, date_ok; /* the strings are there and unchanged */
} tx_info;

/* The value of tag in the IFD at off (SHORT or LONG, count 1), its type into *type; -1 when absent. */
static inline long tx_find(const unsigned char *t, size_t n, int le, unsigned long off, unsigned tag, int *type)
{
    if (off + 2 > n)
        return -1;
    unsigned long count = tx_get(t + off, 2, le);
    for (unsigned long i = 0; i < count && off + 2 + 12 * (i + 1) <= n; i++) {
        const unsigned char *e = t + off + 2 + 12 * i;
        if (tx_get(e, 2, le) != tag)
            continue;
        *type = (int)tx_get(e + 2, 2, le);
        return *type == 3 ? (long)tx_get(e + 8, 2, le) : (long)tx_get(e + 8, 4, le);
    }
    return -1;
}

static inline tx_info tx_read(const unsigned char *t, size_t n)
{
    tx_info r = {0, 0, -1, -1, 0, 0, 0, 0};
    if (n < 8 || !(t[0] == t[1] && (t[0] == 'I' || t[0] == 'M')))
        return r;
    int le = t[0] == 'I', type = 0;
    unsigned long ifd0 = tx_get(t + 4, 4, le);
    if (ifd0 + 2 > n)
        return r;
    r.ok = 1;
    unsigned long count = tx_get(t + ifd0, 2, le);
    if (ifd0 + 2 + 12 * count + 4 <= n)
        r.ifd1 = tx_get(t + ifd0 + 2 + 12 * count, 4, le);
    long o = tx_find(t, n, le, ifd0, 0x0112, &type);
    r.orientation = o < 0 ? 0 : (int)o;
    long make = tx_find(t, n, le, ifd0, 0x010F, &type); /* ASCII: the offset, as a LONG would read */
    r.make_ok = make > 0 && (size_t)make + sizeof TX_MAKE <= n && !memcmp(t + make, TX_MAKE, sizeof TX_MAKE);
    long sub = tx_find(t, n, le, ifd0, 0x8769, &type);
    if (sub > 0) {
        long date = tx_find(t, n, le, (unsigned long)sub, 0x9003, &type);
        r.date_ok = date > 0 && (size_t)date + sizeof TX_DATE <= n && !memcmp(t + date, TX_DATE, sizeof TX_DATE);
        r.w = tx_find(t, n, le, (unsigned long)sub, 0xA002, &type);
        r.h = tx_find(t, n, le, (unsigned long)sub, 0xA003, &r.dims_type);
    }
    return r;
}

#endif
