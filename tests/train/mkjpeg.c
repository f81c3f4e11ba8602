/* mkjpeg.c: writes a W x H RGB test JPEG (a smooth gradient with a checker) for the training tests. usage: mkjpeg OUT.jpg W H */
#include <stdio.h>
#include <stdlib.h>

#include <jpeglib.h>

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: mkjpeg OUT.jpg W H\n");
        return 2;
    }
    int w = atoi(argv[2]), h = atoi(argv[3]);
    FILE *f = fopen(argv[1], "wb");
    if (w < 1 || h < 1 || !f) return 1;
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 95, TRUE);
    jpeg_start_compress(&c, TRUE);
    unsigned char *row = malloc((size_t)w * 3);
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            row[3 * x] = (unsigned char)(255 * x / (w > 1 ? w - 1 : 1));
            row[3 * x + 1] = (unsigned char)(255 * y / (h > 1 ? h - 1 : 1));
            row[3 * x + 2] = ((x / 8 + y / 8) % 2) ? 200 : 40;
        }
        JSAMPROW r = row;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    free(row);
    return fclose(f) ? 1 : 0;
}
