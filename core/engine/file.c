/* file.c: opening the files the engine reads (models, images) without blocking on FIFOs or devices. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "liif.h"

int liif_open_regular(const char *path, size_t *size, liif_error *err)
{
    char name[200];
    liif_printable(path, name, sizeof name);
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        liif_error_set(err, LIIF_ERR_IO, "%s: cannot open: %s", name, strerror(errno));
        return -1;
    }
    struct stat st;
    int stat_failed = fstat(fd, &st) != 0, e = errno;
    if (stat_failed || !S_ISREG(st.st_mode)) {
        close(fd);
        if (stat_failed)
            liif_error_set(err, LIIF_ERR_IO, "%s: cannot stat: %s", name, strerror(e));
        else
            liif_error_set(err, LIIF_ERR_IO, "%s: not a regular file (%s)", name,
                           S_ISDIR(st.st_mode) ? "a folder" : S_ISFIFO(st.st_mode) ? "a FIFO" : "a device or socket");
        return -1;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
        e = errno;
        close(fd);
        liif_error_set(err, LIIF_ERR_IO, "%s: cannot open: %s", name, strerror(e));
        return -1;
    }
    if (size)
        *size = (size_t)st.st_size;
    return fd;
}
