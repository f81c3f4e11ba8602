/* outfile.c: atomic output files (temporary file, fsync, rename), shared by the PNG and JPEG writers. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "outfile.h"

static char *temp_template(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
    const char *base = path + dir_len;
    size_t len = dir_len + 1 + strlen(base) + 8 + 1;
    char *t = malloc(len);
    if (t)
        snprintf(t, len, "%.*s.%s.XXXXXX", (int)dir_len, path, base);
    return t;
}

/* Permissions the result should get: an existing file keeps its own, a new one gets
 * what fopen() would give (0666 less the umask), not mkstemp's private 0600. umask()
 * can only be read by setting it, so it is set back at once. */
static mode_t output_mode(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
        return st.st_mode & 0777; /* not set-id bits */
    mode_t mask = umask(077);
    umask(mask);
    return 0666 & ~mask;
}

liif_status liif_outfile_open(liif_outfile *f, const char *path, liif_error *err)
{
    memset(f, 0, sizeof *f);
    if (!(f->path = strdup(path)))
        return liif_error_set(err, LIIF_ERR_NOMEM, "%s: out of memory", path);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return liif_error_set(err, LIIF_ERR_IO, "%s: is a directory", path);
    mode_t mode = output_mode(path);
    f->tmp_path = temp_template(path);
    if (!f->tmp_path)
        return liif_error_set(err, LIIF_ERR_NOMEM, "%s: out of memory", path);
    int fd = mkstemp(f->tmp_path);
    if (fd < 0) {
        int e = errno;
        free(f->tmp_path); /* nothing was created: nothing to unlink */
        f->tmp_path = NULL;
        return liif_error_set(err, LIIF_ERR_IO, "%s: cannot create temporary file: %s", path, strerror(e));
    }
    if (fchmod(fd, mode) != 0 || !(f->fp = fdopen(fd, "wb"))) {
        int e = errno;
        close(fd);
        return liif_error_set(err, LIIF_ERR_IO, "%s: cannot create temporary file: %s", path, strerror(e));
    }
    return LIIF_OK;
}

void liif_outfile_discard(liif_outfile *f)
{
    if (f->fp) {
        fclose(f->fp); /* the data is being thrown away: a close error changes nothing */
        f->fp = NULL;
    }
    if (f->tmp_path) {
        unlink(f->tmp_path);
        free(f->tmp_path);
        f->tmp_path = NULL;
    }
}

void liif_outfile_free(liif_outfile *f)
{
    liif_outfile_discard(f);
    free(f->path);
    f->path = NULL;
}

liif_status liif_outfile_fail(liif_outfile *f, const char *what, int e, liif_error *err)
{
    liif_outfile_discard(f);
    return liif_error_set(err, LIIF_ERR_IO, "%s: %s: %s", f->path, what, strerror(e));
}

/* Best effort: persists the rename itself. The new file is already in place, so a
 * failure here is not reported as a failed write. */
static void sync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, (size_t)(slash - path) + 1) : strdup(".");
    if (!dir)
        return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

/* The data is made durable before the rename publishes it: otherwise a crash soon after
 * could leave the new name pointing at an empty file. */
liif_status liif_outfile_commit(liif_outfile *f, liif_error *err)
{
    if (!f->fp || !f->tmp_path)
        return liif_error_set(err, LIIF_ERR_ARG, "%s: no temporary file to commit", f->path);
    if (fflush(f->fp) != 0)
        return liif_outfile_fail(f, "write failed", errno, err);
    if (fsync(fileno(f->fp)) != 0)
        return liif_outfile_fail(f, "write failed (fsync)", errno, err);
    FILE *fp = f->fp;
    f->fp = NULL; /* fclose releases the stream even when it fails */
    if (fclose(fp) != 0)
        return liif_outfile_fail(f, "write failed (close)", errno, err);
    if (rename(f->tmp_path, f->path) != 0)
        return liif_outfile_fail(f, "cannot replace the file", errno, err);
    free(f->tmp_path); /* it is the destination now: discard() must not unlink it */
    f->tmp_path = NULL;
    sync_parent_dir(f->path);
    return LIIF_OK;
}

liif_status liif_outfile_check_name(const char *path, const char *format, liif_error *err)
{
    if (!path || !*path)
        return liif_error_set(err, LIIF_ERR_ARG, "%s output: no file name", format);
    if (path[strlen(path) - 1] == '/')
        return liif_error_set(err, LIIF_ERR_ARG, "%s: not a file name", path);
    return LIIF_OK;
}

liif_status liif_outfile_check_rows(const char *path, int rows_done, int h, int n_rows, const float *rows,
                                    size_t stride, int w, int channels, liif_error *err)
{
    if (n_rows < 0 || n_rows > h - rows_done)
        return liif_error_set(err, LIIF_ERR_ARG, "%s: %d more rows after %d of %d", path, n_rows, rows_done, h);
    if (n_rows > 0 && (!rows || stride < (size_t)w * (size_t)channels))
        return liif_error_set(err, LIIF_ERR_ARG, "%s: bad row buffer (stride %zu for %d x %d floats)", path, stride, w,
                              channels);
    return LIIF_OK;
}
