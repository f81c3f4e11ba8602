/* fuzz_util.h: what the libFuzzer harnesses share: fuzz data as a file the loaders can open by name. */
#ifndef LIIF_FUZZ_UTIL_H
#define LIIF_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The loaders take paths: data goes into an in-memory regular file (memfd), reachable as
 * /proc/self/fd/N, rewritten for each input. Returns the path (static storage). */
static inline const char *fuzz_as_file(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("liif-fuzz", MFD_CLOEXEC);
        if (fd < 0) {
            perror("memfd_create");
            abort();
        }
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size) {
        perror("memfd write");
        abort();
    }
    return path;
}

#endif
