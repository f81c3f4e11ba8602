/* mkjpeg.c: writes a W x H test JPEG (a smooth gradient with a checker) for the training and CLI tests, RGB or gray,
 * with an EXIF orientation when one is given; "camera": RGB with tests/exif_util.h's camera EXIF (that orientation,
 * W x H, a thumbnail IFD) and 300 dots per inch. usage: mkjpeg OUT.jpg W H [ORIENTATION [gray|camera]] */
#include <string.h>

#include "../exif_util.h"
#include "../jpeg_util.h"

static int W, H;

static unsigned char gradient_checker(int x, int y, int c)
{
    if (c == 0) return (unsigned char)(255 * x / (W > 1 ? W - 1 : 1));
    if (c == 1) return (unsigned char)(255 * y / (H > 1 ? H - 1 : 1));
    return ((x / 8 + y / 8) % 2) ? 200 : 40;
}

int main(int argc, char **argv)
{
    int camera = argc == 6 && !strcmp(argv[5], "camera");
    if (argc < 4 || argc > 6 || (argc == 6 && strcmp(argv[5], "gray") && !camera)) {
        fprintf(stderr, "usage: mkjpeg OUT.jpg W H [ORIENTATION [gray|camera]]\n");
        return 2;
    }
    W = atoi(argv[2]), H = atoi(argv[3]);
    int o = argc >= 5 ? atoi(argv[4]) : 0;
    if (W < 1 || H < 1 || o < 0 || o > 8) return 1;
    unsigned char exif[6 + 160] = "Exif";
    tx_spec cs = {1, o ? o : 1, W, H, 0, 1};
    tj_layout l = {argc == 6 && !camera ? 1 : 3, 0, o || camera ? exif : NULL,
                   camera ? 6 + (unsigned)tx_build(exif + 6, &cs) : o ? tj_exif_orientation(exif, o, 1) : 0,
                   camera ? 300 : 0};
    unsigned long n = 0;
    unsigned char *buf = tj_encode_ex(W, H, 95, gradient_checker, &l, &n);
    int rc = tj_save(argv[1], buf, n);
    free(buf);
    return rc;
}
