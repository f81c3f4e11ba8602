/* replay.c: runs a fuzz harness over files and folders of inputs without libFuzzer (the seed corpora and every
 * input that ever crashed, tests/fuzz/regressions/), so the normal test suite, under ASan too, keeps them fixed.
 * Memory bombs count as crashes: the peak RSS must stay under LIIF_REPLAY_MAX_RSS_MB (default 1024).
 * usage: fuzz-replay-TARGET FILE|FOLDER... */
#include <dirent.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "fuzz_util.h"

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: cannot open\n", path);
        return -1;
    }
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (!buf) return -1;
    printf("%s (%zu bytes)\n", path, n);
    fflush(stdout);
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    return 0;
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Every regular file of a folder, in name order; returns how many, or -1. */
static int replay_folder(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    char **names = NULL;
    int n = 0, done = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        names = realloc(names, (size_t)(n + 1) * sizeof *names);
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n) qsort(names, (size_t)n, sizeof *names, cmp_names);
    for (int i = 0; i < n; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && replay_file(p) == 0) done++;
        free(names[i]);
    }
    free(names);
    return done;
}

int main(int argc, char **argv)
{
    int total = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        int n = stat(argv[i], &st) != 0 ? -1 : S_ISDIR(st.st_mode) ? replay_folder(argv[i]) : replay_file(argv[i]) + 1;
        if (n < 0) {
            fprintf(stderr, "%s: cannot read\n", argv[i]);
            return 1;
        }
        total += n;
    }
    struct rusage ru;
    const char *limit_env = getenv("LIIF_REPLAY_MAX_RSS_MB");
    long limit_mb = limit_env ? atol(limit_env) : 1024;
    if (getrusage(RUSAGE_SELF, &ru) == 0 && ru.ru_maxrss / 1024 > limit_mb) {
        printf("FAIL peak memory %ld MiB, more than %ld MiB\n", ru.ru_maxrss / 1024, limit_mb);
        return 1;
    }
    printf("replayed %d inputs: no crash, peak memory %ld MiB\n", total, ru.ru_maxrss / 1024);
    return total ? 0 : 77; /* nothing to replay: skipped, not passed */
}
