/* fuzz_train_data.c: libFuzzer harness: the training-folder loader (PNG and JPEG photos) on a folder made
 * from the input: up to 4 files, each [1 byte: extension .png/.jpg/.jpeg][3 bytes: length, LE][bytes]. */
#include <string.h>

#include "fuzz_util.h"
#include "train_cli.h"

static const char *const exts[3] = {"png", "jpg", "jpeg"};

static char dir[128];

static void empty_folder(void)
{
    for (int k = 0; k < 4; k++)
        for (int e = 0; e < 3; e++) {
            char p[160];
            snprintf(p, sizeof p, "%s/f%d.%s", dir, k, exts[e]);
            unlink(p);
        }
}

static void remove_folder(void)
{
    empty_folder();
    rmdir(dir);
}

/* A private folder (removed at exit), emptied of the previous input's files. */
static const char *folder(void)
{
    if (!dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/liif-fuzz-data.XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(dir)) abort();
        atexit(remove_folder);
    }
    empty_folder();
    return dir;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *dir = folder();
    size_t pos = 0;
    for (int k = 0; k < 4 && pos + 4 <= size; k++) {
        size_t len = data[pos + 1] | (size_t)data[pos + 2] << 8 | (size_t)data[pos + 3] << 16;
        const char *ext = exts[data[pos] % 3];
        pos += 4;
        if (len > size - pos) len = size - pos;
        char p[160];
        snprintf(p, sizeof p, "%s/f%d.%s", dir, k, ext);
        FILE *f = fopen(p, "wb");
        if (!f || fwrite(data + pos, 1, len, f) != len || fclose(f)) abort();
        pos += len;
    }
    train_data d;
    char msg[1024];
    if (train_data_load(&d, dir, 8, msg, sizeof msg) == 0) {
        for (int i = 0; i < d.n; i++) {
            const train_image *im = &d.img[i];
            if (!im->px || im->w < 8 || im->h < 8 || im->w > LIIF_MAX_SIDE || im->h > LIIF_MAX_SIDE) abort();
            volatile uint8_t last = im->px[(size_t)im->w * im->h * 3 - 1]; /* the whole buffer is there */
            (void)last;
        }
        train_data_free(&d);
    } else if (strchr(msg, '\n')) {
        abort();
    }
    return 0;
}
