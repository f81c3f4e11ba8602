/* fuzz_exif.c: libFuzzer harness: the EXIF block reader and editor (core/io/exif.c) on any bytes, as the PNG and JPEG
 * readers and writers call it: the check, the orientation, and the edit for an output (turned and not). */
#include <stdlib.h>
#include <string.h>

#include "exif.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *block = malloc(size ? size : 1); /* exactly size bytes: ASan sees any read past them */
    if (!block)
        return 0;
    memcpy(block, data, size);
    int ok = liif_exif_check(block, size);
    int o = liif_exif_orientation(block, size);
    if (o < 1 || o > 8)
        abort();
    for (int turned = 0; turned <= 1; turned++) {
        uint8_t *out;
        size_t n;
        int r = liif_exif_for_image(block, size, 70000, 3, turned, &out, &n);
        if ((r == 0) != ok || (r == 0 && n != size))
            abort();
        if (r == 0) { /* a crafted block's IFDs may overlap, so an edit may change what is read after: only safety */
            (void)liif_exif_check(out, n);
            (void)liif_exif_orientation(out, n);
            free(out);
        }
    }
    free(block);
    return 0;
}
