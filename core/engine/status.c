/* status.c: status names and the error-message helper. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "liif.h"

const char *liif_status_name(liif_status s)
{
    switch (s) {
    case LIIF_OK: return "ok";
    case LIIF_ERR_IO: return "I/O error";
    case LIIF_ERR_FORMAT: return "bad file format";
    case LIIF_ERR_MODEL: return "bad model";
    case LIIF_ERR_ARG: return "invalid argument";
    case LIIF_ERR_NOMEM: return "out of memory";
    case LIIF_ERR_UNSUPPORTED: return "unsupported";
    case LIIF_ERR_CANCELLED: return "cancelled";
    }
    return "unknown status";
}

liif_status liif_error_set(liif_error *err, liif_status status, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return status;
}

/* Length of the well-formed UTF-8 sequence at s (1..4), or 0 when s starts none. */
static size_t utf8_len(const unsigned char *s)
{
    unsigned char c = s[0];
    size_t n = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
    if (c >= 0xf5)
        n = 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((n == 3 && ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0))) ||
        (n == 4 && ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90))))
        return 0; /* overlong, surrogate or past U+10FFFF */
    return n;
}

/* Control characters (C0, DEL and the C1 range U+0080..U+009F, whose CSI starts terminal
 * escapes) and bytes that are not UTF-8 become \xNN, and long text is cut (never inside a
 * sequence), so a hostile string can neither split, recolour nor swamp a one-line message. */
const char *liif_printable(const char *s, char *buf, size_t size)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0;
    while (*u) {
        size_t n = *u < 0x80 ? 1 : utf8_len(u);
        int escape = n == 0 || *u < 0x20 || *u == 0x7f || (*u == 0xc2 && u[1] < 0xa0);
        size_t bytes = escape ? (n ? n : 1) : n, need = escape ? 4 * bytes : n;
        if (o + need + 4 > size) { /* keep room for "..." and the NUL */
            memcpy(buf + o, "...", 4);
            return buf;
        }
        for (size_t i = 0; i < bytes; i++) {
            if (escape)
                o += (size_t)snprintf(buf + o, size - o, "\\x%02x", u[i]);
            else
                buf[o++] = (char)u[i];
        }
        u += bytes;
    }
    buf[o] = '\0';
    return buf;
}
