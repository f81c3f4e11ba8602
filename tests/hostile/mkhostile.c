/* mkhostile.c: writes the hostile files of tests/hostile/hostile_test.sh, and measures a command.
 *   mkhostile model OUT IN_CH OUT_DIM           a small model reading IN_CH / writing OUT_DIM channels
 *   mkhostile png-chunk OUT TYPE                a 1x1 PNG whose ancillary chunk TYPE claims 2^31-1 bytes
 *   mkhostile png-lying OUT W H                 an RGB PNG header of W x H with a few bytes of image data
 *   mkhostile png-zeros OUT W H                 a valid all-black gray PNG (a decompression bomb)
 *   mkhostile jpeg OUT W H [CLAIM_W CLAIM_H]    a W x H JPEG, its header patched to claim CLAIM_W x CLAIM_H
 *   mkhostile jpeg-scans OUT W H              a W x H progressive JPEG of 2090 scans
 *   mkhostile st-header OUT BYTES               a safetensors file whose header is BYTES of "[0,0,...]"
 *   mkhostile measure -- CMD...                 runs CMD; prints "<exit> <ms> <peak RSS KiB>" on fd 3 */
#include <errno.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>

#include "../jpeg_util.h"
#include "../randmodel.h"

#include <png.h>

static FILE *create(const char *path)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    return f;
}

static void be32(unsigned char *p, uint32_t v)
{
    p[0] = v >> 24, p[1] = v >> 16 & 255, p[2] = v >> 8 & 255, p[3] = v & 255;
}

static uint32_t crc32_of(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xffffffffu;
}

/* A chunk: length, type, data, CRC (over type and data). */
static void chunk(FILE *f, const char *type, const unsigned char *data, uint32_t n)
{
    unsigned char *b = malloc(12 + (size_t)n);
    be32(b, n);
    memcpy(b + 4, type, 4);
    if (n) memcpy(b + 8, data, n);
    be32(b + 8 + n, crc32_of(b + 4, 4 + (size_t)n));
    fwrite(b, 1, 12 + (size_t)n, f);
    free(b);
}

static void png_header(FILE *f, uint32_t w, uint32_t h, int color_type)
{
    unsigned char ihdr[13] = {0};
    fwrite("\x89PNG\r\n\x1a\n", 1, 8, f);
    be32(ihdr, w);
    be32(ihdr + 4, h);
    ihdr[8] = 8;
    ihdr[9] = (unsigned char)color_type;
    chunk(f, "IHDR", ihdr, 13);
}

static int png_chunk_bomb(const char *out, const char *type)
{
    FILE *f = create(out);
    png_header(f, 1, 1, 0);
    unsigned char head[12] = {0x7f, 0xff, 0xff, 0xff};
    memcpy(head + 4, type, 4);
    memcpy(head + 8, "abcd", 4); /* a few bytes of the claimed 2 GB, then the file ends */
    fwrite(head, 1, sizeof head, f);
    return fclose(f) != 0;
}

static int png_lying(const char *out, uint32_t w, uint32_t h)
{
    FILE *f = create(out);
    png_header(f, w, h, 2);
    static const unsigned char z[] = {0x78, 0x9c, 0x63, 0x60, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01};
    chunk(f, "IDAT", z, sizeof z);
    chunk(f, "IEND", NULL, 0);
    return fclose(f) != 0;
}

static int png_zeros(const char *out, int w, int h)
{
    FILE *f = create(out);
    png_structp p = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(p);
    if (setjmp(png_jmpbuf(p))) return 1;
    png_init_io(p, f);
    png_set_compression_level(p, 9);
    png_set_IHDR(p, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(p, info);
    unsigned char *row = calloc((size_t)w, 1);
    for (int y = 0; y < h; y++) png_write_row(p, row);
    png_write_end(p, NULL);
    png_destroy_write_struct(&p, &info);
    free(row);
    return fclose(f) != 0;
}

static unsigned char busy(int x, int y, int c) { return (unsigned char)(x * 15 + c * 5 + y * 11 + (x * x) % 7); }

/* A w x h JPEG of a busy pattern, then its SOF0 width and height patched to cw, ch. */
static int jpeg_claiming(const char *out, int w, int h, int cw, int ch)
{
    unsigned long n = 0;
    unsigned char *buf = tj_encode(w, h, 75, busy, &n);
    for (unsigned long i = 0; i + 9 < n; i++)
        if (buf[i] == 0xff && buf[i + 1] == 0xc0) {
            buf[i + 5] = (unsigned char)(ch >> 8), buf[i + 6] = (unsigned char)ch;
            buf[i + 7] = (unsigned char)(cw >> 8), buf[i + 8] = (unsigned char)cw;
            break;
        }
    int rc = tj_save(out, buf, n);
    free(buf);
    return rc;
}

/* A w x h progressive JPEG of the busy pattern in 2090 scans, every scan libjpeg allows: for each component and
 * each of the 63 AC coefficients on its own, a first scan at 10 bits of shift and its 10 refinements, and the same
 * for the three DC coefficients together. Valid, small, and a pass over the whole image per scan. */
static int jpeg_many_scans(const char *out, int w, int h)
{
    enum { AL = 10, PER = AL + 1 };
    static jpeg_scan_info scans[PER + 3 * 63 * PER];
    int n = 0;
    for (int a = AL; a >= 0; a--, n++)
        scans[n] = (jpeg_scan_info){3, {0, 1, 2, 0}, 0, 0, a == AL ? 0 : a + 1, a};
    for (int c = 0; c < 3; c++)
        for (int k = 1; k < 64; k++)
            for (int a = AL; a >= 0; a--, n++)
                scans[n] = (jpeg_scan_info){1, {c, 0, 0, 0}, k, k, a == AL ? 0 : a + 1, a};
    unsigned char *buf = NULL, *row = malloc((size_t)w * 3);
    unsigned long len = 0;
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr e;
    ci.err = jpeg_std_error(&e);
    jpeg_create_compress(&ci);
    jpeg_mem_dest(&ci, &buf, &len);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = 3;
    ci.in_color_space = JCS_RGB;
    jpeg_set_defaults(&ci);
    ci.scan_info = scans;
    ci.num_scans = n;
    jpeg_start_compress(&ci, TRUE);
    for (int y = 0; y < h; y++) {
        for (int i = 0; i < w * 3; i++) row[i] = busy(i / 3, y, i % 3);
        JSAMPROW r = row;
        jpeg_write_scanlines(&ci, &r, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    int rc = tj_save(out, buf, len);
    free(buf);
    free(row);
    return rc;
}

static int st_header(const char *out, size_t bytes)
{
    FILE *f = create(out);
    unsigned char len[8];
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)((uint64_t)bytes >> (8 * i));
    fwrite(len, 1, 8, f);
    fputs("{\"a\":[0", f);
    size_t n = 7;
    for (; n + 4 <= bytes; n += 2) fputs(",0", f);
    fputs("]}", f);
    for (n += 2; n < bytes; n++) fputc(' ', f);
    return fclose(f) != 0;
}

static int measure(char **argv)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid == 0) {
        execvp(argv[0], argv);
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    if (pid < 0 || wait4(pid, &status, 0, &ru) < 0) return 127;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    dprintf(3, "%d %ld %ld\n", rc, ms, ru.ru_maxrss);
    return 0;
}

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "";
    if (!strcmp(what, "measure") && argc > 3) return measure(argv + 3);
    if (!strcmp(what, "model") && argc == 5) {
        rm_spec sp = {4, 1, 1, 8, 1, 1, 1, "liif", 1, 2.0f};
        return rm_write_channels(argv[2], &sp, atoi(argv[3]), atoi(argv[4]));
    }
    if (!strcmp(what, "png-chunk") && argc == 4 && strlen(argv[3]) == 4) return png_chunk_bomb(argv[2], argv[3]);
    if (!strcmp(what, "png-lying") && argc == 5) return png_lying(argv[2], (uint32_t)atol(argv[3]), (uint32_t)atol(argv[4]));
    if (!strcmp(what, "png-zeros") && argc == 5) return png_zeros(argv[2], atoi(argv[3]), atoi(argv[4]));
    if (!strcmp(what, "jpeg") && (argc == 5 || argc == 7)) {
        int w = atoi(argv[3]), h = atoi(argv[4]);
        return jpeg_claiming(argv[2], w, h, argc == 7 ? atoi(argv[5]) : w, argc == 7 ? atoi(argv[6]) : h);
    }
    if (!strcmp(what, "jpeg-scans") && argc == 5) return jpeg_many_scans(argv[2], atoi(argv[3]), atoi(argv[4]));
    if (!strcmp(what, "st-header") && argc == 4) return st_header(argv[2], (size_t)atol(argv[3]));
    fprintf(stderr, "usage: see mkhostile.c\n");
    return 2;
}
