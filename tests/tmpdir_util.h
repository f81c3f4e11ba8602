/* tmpdir_util.h: a test's own temporary folder (made with mkdtemp(dir) in main, removed at the end), paths in it,
 * and a count of what is left there (temporary files of the writers included: they start with a dot). */
#ifndef LIIF_TESTS_TMPDIR_UTIL_H
#define LIIF_TESTS_TMPDIR_UTIL_H

#include <dirent.h>
#include <stdio.h>
#include <string.h>

static char dir[] = "/tmp/liif-test.XXXXXX";

/* dir/name; the last four results stay valid. */
static const char *path_in(const char *name)
{
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static inline int files_in_dir(void)
{
    int n = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));)
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    if (d)
        closedir(d);
    return n;
}

#endif
