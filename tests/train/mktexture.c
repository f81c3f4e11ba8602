/* mktexture.c: writes a W x H RGB 8-bit PNG of a smooth texture (crossed sinusoids of a few
 * periods, different per channel) for the overfitting test. usage: mktexture OUT.png W H */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: mktexture OUT.png W H\n");
        return 2;
    }
    int w = atoi(argv[2]), h = atoi(argv[3]);
    if (w < 1 || h < 1 || w > 4096 || h > 4096) {
        fprintf(stderr, "mktexture: bad size %s x %s\n", argv[2], argv[3]);
        return 2;
    }
    const double tau = 6.283185307179586;
    unsigned char *px = malloc((size_t)w * h * 3);
    if (!px) return 1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double v[3] = {
                0.5 + 0.35 * sin(tau * (x / 13.0 + y / 29.0)),
                0.5 + 0.35 * sin(tau * (y / 11.0 - x / 37.0) + 1.0),
                0.5 + 0.30 * sin(tau * x / 17.0) * cos(tau * y / 19.0),
            };
            for (int c = 0; c < 3; c++) px[((size_t)y * w + x) * 3 + c] = (unsigned char)lround(255.0 * v[c]);
        }
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)w;
    img.height = (png_uint_32)h;
    img.format = PNG_FORMAT_RGB;
    int ok = png_image_write_to_file(&img, argv[1], 0, px, 0, NULL);
    if (!ok) fprintf(stderr, "mktexture: %s: %s\n", argv[1], img.message);
    free(px);
    return ok ? 0 : 1;
}
