/* status.c: status names and the error-message helper. */
#include <stdarg.h>
#include <stdio.h>

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
