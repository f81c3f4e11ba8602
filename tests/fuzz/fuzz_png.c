/* fuzz_png.c: libFuzzer harness: the PNG reader (libpng with the project's limits) on any bytes. */
#include <math.h>

#include "fuzz_util.h"
#include "png_image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    liif_png img;
    liif_error err;
    if (liif_png_read(fuzz_as_file(data, size), &img, &err) == LIIF_OK) {
        size_t n = (size_t)img.w * img.h * img.channels;
        if (img.channels < 1 || img.channels > 4 || (img.bit_depth != 8 && img.bit_depth != 16) ||
            n * sizeof(float) > liif_png_memory_cap(size))
            abort();
        for (size_t i = 0; i < n; i++)
            if (!(img.px[i] >= 0.0f && img.px[i] <= 1.0f)) /* every sample was written, in range */
                abort();
        liif_png_free(&img);
    }
    return 0;
}
