/* outfile.h: an output file written through a temporary file beside it and renamed into place. */
#ifndef LIIF_OUTFILE_H
#define LIIF_OUTFILE_H

#include <stdio.h>

#include "liif.h"

/* The bytes go to "<dir>/.<base>.XXXXXX" (same folder, so the rename is atomic; hidden, so a
 * crash leaves a dot-file rather than half an image). commit() flushes, fsyncs, closes and
 * renames it over path; discard() removes it. An existing destination is never touched until
 * the rename, and keeps its permissions; a new one gets what fopen() would give. */
typedef struct {
    char *path;     /* destination */
    char *tmp_path; /* the temporary file; NULL once renamed or removed */
    FILE *fp;
} liif_outfile;

/* Creates the temporary file for path ("<path>: is a directory", "cannot create temporary file: ..."). */
liif_status liif_outfile_open(liif_outfile *f, const char *path, liif_error *err);
/* "<path>: <what>: <strerror(e)>" (LIIF_ERR_IO), after discarding the temporary file. */
liif_status liif_outfile_fail(liif_outfile *f, const char *what, int e, liif_error *err);
/* Makes the bytes durable and renames them into place; on failure the temporary file is gone. */
liif_status liif_outfile_commit(liif_outfile *f, liif_error *err);
/* Closes and removes the temporary file (if any); the destination is never touched. */
void liif_outfile_discard(liif_outfile *f);
/* discard() and frees path. */
void liif_outfile_free(liif_outfile *f);

/* The checks every writer makes of its arguments, one message each (LIIF_ERR_ARG): a destination name
 * ("<FORMAT> output: no file name", "<path>: not a file name" for one ending in '/'), and a rows() call
 * (n_rows more rows after rows_done of h, in rows of w * channels floats `stride` apart). */
liif_status liif_outfile_check_name(const char *path, const char *format, liif_error *err);
liif_status liif_outfile_check_rows(const char *path, int rows_done, int h, int n_rows, const float *rows,
                                    size_t stride, int w, int channels, liif_error *err);

/* A sample in [0,1] as 0..maxv, rounded to nearest; NaN and below 0 give 0. Double keeps
 * v / maxv -> v exact for every 16-bit v. Both writers store samples this way. */
static inline unsigned liif_quantize(float x, unsigned maxv)
{
    if (!(x > 0.0f))
        return 0;
    if (x >= 1.0f)
        return maxv;
    return (unsigned)((double)x * maxv + 0.5);
}

#endif
