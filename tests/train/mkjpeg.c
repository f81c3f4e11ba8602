/* mkjpeg.c: writes a W x H RGB test JPEG (a smooth gradient with a checker) for the training tests. usage: mkjpeg OUT.jpg W H */
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
    if (argc != 4) {
        fprintf(stderr, "usage: mkjpeg OUT.jpg W H\n");
        return 2;
    }
    W = atoi(argv[2]), H = atoi(argv[3]);
    if (W < 1 || H < 1) return 1;
    unsigned long n = 0;
    unsigned char *buf = tj_encode(W, H, 95, gradient_checker, &n);
    int rc = tj_save(argv[1], buf, n);
    free(buf);
    return rc;
}
