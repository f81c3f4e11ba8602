/* test_png.c: PNG reader and atomic writer: round trips, format expansion, errors, no leftovers. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <png.h>
#include <zlib.h>

#include "png_idat.h"
#include "png_image.h"

static int n_failed, n_checks;
static char g_dir[256];

static void check(int ok, const char *fmt, ...)
{
    va_list ap;
    n_checks++;
    if (!ok)
        n_failed++;
    printf("%s - ", ok ? "ok  " : "FAIL");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

/* Path of a file in the test's own scratch folder (one of a few rotating buffers). */
static const char *path_in(const char *name)
{
    static char buf[4][512];
    static int k;
    char *p = buf[k++ & 3];
    snprintf(p, sizeof buf[0], "%s/%s", g_dir, name);
    return p;
}

/* ---------------------------------------------------------------- helpers */

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(len > 0 ? (size_t)len : 1);
    *n = b ? fread(b, 1, (size_t)len, f) : 0;
    fclose(f);
    return b;
}

static int spit(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int ok = fwrite(data, 1, n, f) == n;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

static int same_contents(const char *path, const void *data, size_t n)
{
    size_t m = 0;
    unsigned char *b = slurp(path, &m);
    int same = b && m == n && memcmp(b, data, n) == 0;
    free(b);
    return same;
}

/* Dot-files in the scratch folder: temporary files the writer failed to remove. */
static int leftovers(void)
{
    DIR *d = opendir(g_dir);
    int n = 0;
    struct dirent *e;
    if (!d)
        return -1;
    while ((e = readdir(d)))
        if (e->d_name[0] == '.' && strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static int one_line(const liif_error *e)
{
    return e->msg[0] && !strchr(e->msg, '\n');
}

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static unsigned rng_state = 12345;
static unsigned rng(void)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return rng_state >> 8;
}

/* ------------------------------------------------- raw libpng writer/reader */

/* A PNG described by unpacked sample values (one unsigned per sample, row-major), so
 * the tests can produce what liif's writer cannot: palettes, low bit depths, tRNS,
 * interlacing. */
typedef struct {
    int w, h, bit_depth, color_type, interlace;
    const unsigned *samples;
    const png_color *palette;
    int n_palette;
    const png_byte *trans_alpha; /* palette tRNS */
    int n_trans;
    const png_color_16 *trans_color; /* gray / RGB tRNS */
    png_uint_32 user_max;            /* > 0: lift libpng's write-side size limit */
    int header_only;                 /* write IHDR and a stub IDAT, no real image data */
} raw_png;

static int samples_per_pixel(int color_type)
{
    switch (color_type) {
    case PNG_COLOR_TYPE_GRAY_ALPHA: return 2;
    case PNG_COLOR_TYPE_RGB: return 3;
    case PNG_COLOR_TYPE_RGB_ALPHA: return 4;
    default: return 1; /* gray, palette */
    }
}

static void pack_rows(const raw_png *s, unsigned char *dst, size_t rowbytes)
{
    size_t n = (size_t)s->w * samples_per_pixel(s->color_type);
    for (int y = 0; y < s->h; y++) {
        unsigned char *row = dst + (size_t)y * rowbytes;
        const unsigned *v = s->samples + (size_t)y * n;
        memset(row, 0, rowbytes);
        for (size_t i = 0; i < n; i++) {
            if (s->bit_depth == 16) {
                row[2 * i] = (unsigned char)(v[i] >> 8);
                row[2 * i + 1] = (unsigned char)v[i];
            } else if (s->bit_depth == 8) {
                row[i] = (unsigned char)v[i];
            } else { /* MSB first within a byte */
                size_t bit = i * (size_t)s->bit_depth;
                row[bit / 8] |= (unsigned char)(v[i] << (8 - s->bit_depth - bit % 8));
            }
        }
    }
}

static int raw_write(const char *path, const raw_png *s)
{
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return -1;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    size_t rowbytes = ((size_t)s->w * samples_per_pixel(s->color_type) * s->bit_depth + 7) / 8;
    unsigned char *data = s->header_only ? NULL : malloc(rowbytes * (size_t)s->h);
    png_bytep *rows = s->header_only ? NULL : malloc(sizeof(png_bytep) * (size_t)s->h);
    int rc = -1;
    if (!info || (!s->header_only && (!data || !rows)))
        goto done;
    if (setjmp(png_jmpbuf(png)))
        goto done; /* rc is still -1: nothing local changed since setjmp */
    png_init_io(png, fp);
    if (s->user_max)
        png_set_user_limits(png, s->user_max, s->user_max);
    png_set_IHDR(png, info, (png_uint_32)s->w, (png_uint_32)s->h, s->bit_depth, s->color_type,
                 s->interlace, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (s->palette)
        png_set_PLTE(png, info, s->palette, s->n_palette);
    if (s->trans_alpha || s->trans_color)
        png_set_tRNS(png, info, s->trans_alpha, s->n_trans, s->trans_color);
    png_write_info(png, info);
    if (s->header_only) {
        static const png_byte stub[16];
        png_write_chunk(png, (png_const_bytep) "IDAT", stub, sizeof stub);
    } else {
        pack_rows(s, data, rowbytes);
        for (int y = 0; y < s->h; y++)
            rows[y] = data + (size_t)y * rowbytes;
        png_write_image(png, rows); /* sets up interlacing itself */
        png_write_end(png, NULL);
    }
    png_destroy_write_struct(&png, &info);
    free(rows);
    free(data);
    return fclose(fp) == 0 ? 0 : -1;
done:
    png_destroy_write_struct(&png, info ? &info : NULL);
    free(rows);
    free(data);
    fclose(fp);
    return rc;
}

/* What libpng itself sees in a file liif wrote. */
typedef struct {
    png_uint_32 w, h;
    int bit_depth, color_type, interlace;
    int colour_chunks; /* gAMA, sRGB, iCCP or cHRM present */
    unsigned char *bytes; /* raw rows, no transforms */
    size_t rowbytes;
} raw_info;

static int raw_read(const char *path, raw_info *ri)
{
    memset(ri, 0, sizeof *ri);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return -1;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info || setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, info ? &info : NULL, NULL);
        fclose(fp);
        free(ri->bytes); /* ri is not local: its pointer survives the longjmp */
        ri->bytes = NULL;
        return -1;
    }
    png_init_io(png, fp);
    png_read_info(png, info);
    png_get_IHDR(png, info, &ri->w, &ri->h, &ri->bit_depth, &ri->color_type, &ri->interlace,
                 NULL, NULL);
    ri->colour_chunks = png_get_valid(png, info,
                                      PNG_INFO_gAMA | PNG_INFO_sRGB | PNG_INFO_iCCP | PNG_INFO_cHRM) != 0;
    ri->rowbytes = png_get_rowbytes(png, info);
    ri->bytes = malloc(ri->rowbytes * ri->h);
    if (!ri->bytes)
        png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < ri->h; y++)
        png_read_row(png, ri->bytes + y * ri->rowbytes, NULL);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    fclose(fp);
    return 0;
}

/* -------------------------------------------------------------- round trips */

static float *ramp(int w, int h, int ch, unsigned maxv, unsigned mul)
{
    size_t n = (size_t)w * h * ch;
    float *px = malloc(n * sizeof *px);
    for (size_t i = 0; i < n; i++)
        px[i] = (float)((i * mul + i / 7) % (maxv + 1)) / (float)maxv;
    return px;
}

static int same_floats(const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

static void test_round_trip(int ch, int depth)
{
    unsigned maxv = depth == 16 ? 65535u : 255u;
    int w = depth == 16 ? 256 : 37, h = depth == 16 ? 256 : 23;
    /* 256x256 gray visits every 16-bit value once; the mixing multiplier hits all 8-bit values */
    liif_png img = {.w = w, .h = h, .channels = ch, .bit_depth = depth,
                    .px = ramp(w, h, ch, maxv, depth == 16 ? 1 : 97)};
    liif_error err = {{0}};
    const char *p = path_in("rt.png");
    liif_status st = liif_png_write(p, &img, &err);
    check(st == LIIF_OK, "write %d-bit %d-channel %dx%d (%s)", depth, ch, w, h, err.msg);
    liif_png back;
    st = liif_png_read(p, &back, &err);
    check(st == LIIF_OK && back.w == w && back.h == h && back.channels == ch &&
              back.bit_depth == depth,
          "read back %d-bit %d-channel: %dx%d, %d channels, %d-bit", depth, ch, back.w, back.h,
          back.channels, back.bit_depth);
    if (st == LIIF_OK && back.channels == ch)
        check(same_floats(img.px, back.px, (size_t)w * h * ch),
              "round trip %d-bit %d-channel is exact", depth, ch);
    raw_info ri;
    int ok = raw_read(p, &ri) == 0;
    static const int types[] = {PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                                PNG_COLOR_TYPE_RGB_ALPHA};
    check(ok && ri.bit_depth == depth && ri.color_type == types[ch - 1] &&
              ri.interlace == PNG_INTERLACE_NONE && !ri.colour_chunks,
          "libpng sees %d-bit colour type %d, not interlaced, no colour-space chunks",
          ri.bit_depth, ri.color_type);
    free(ri.bytes);
    liif_png_free(&back);
    free(img.px);
    check(leftovers() == 0, "no temporary file left after writing");
}

static void test_quantize(int depth)
{
    static const float in[10] = {-0.5f, NAN, 0.0f, 0.2f, 0.5f, 1.0f, 1.5f, 0.0019f, 0.0021f, INFINITY};
    static const unsigned want8[10] = {0, 0, 0, 51, 128, 255, 255, 0, 1, 255};
    static const unsigned want16[10] = {0, 0, 0, 13107, 32768, 65535, 65535, 125, 138, 65535};
    liif_png img = {.w = 10, .h = 1, .channels = 1, .bit_depth = depth, .px = (float *)in};
    liif_error err = {{0}};
    const char *p = path_in("q.png");
    check(liif_png_write(p, &img, &err) == LIIF_OK, "write %d-bit clamp/round row", depth);
    raw_info ri;
    int ok = raw_read(p, &ri) == 0, same = ok;
    for (int i = 0; ok && i < 10; i++) {
        unsigned v = depth == 16 ? (unsigned)(ri.bytes[2 * i] << 8 | ri.bytes[2 * i + 1]) : ri.bytes[i];
        unsigned want = depth == 16 ? want16[i] : want8[i];
        if (v != want) {
            printf("     sample %d: got %u want %u\n", i, v, want);
            same = 0;
        }
    }
    check(same, "%d-bit quantization rounds to nearest and clamps (NaN, <0, >1, inf)", depth);
    free(ri.bytes);
}

/* Rows in uneven bands from a padded buffer (stride > w * channels). */
static void test_streaming(void)
{
    const int w = 50, h = 31, ch = 3, pad = 5;
    size_t stride = (size_t)w * ch + pad;
    float *buf = malloc(stride * h * sizeof *buf);
    for (size_t i = 0; i < stride * h; i++)
        buf[i] = (float)(rng() % 256) / 255.0f;
    liif_png_writer *wr;
    liif_error err = {{0}};
    const char *p = path_in("stream.png");
    liif_status st = liif_png_writer_open(p, w, h, ch, 8, &wr, &err);
    check(st == LIIF_OK, "streaming writer opens (%s)", err.msg);
    if (st != LIIF_OK) {
        free(buf);
        return;
    }
    int y = 0, band = 1;
    while (st == LIIF_OK && y < h) {
        int n = band < h - y ? band : h - y;
        st = liif_png_writer_rows(wr, buf + (size_t)y * stride, n, stride, &err);
        y += n;
        band = band * 2 + 1;
    }
    check(st == LIIF_OK, "bands of 1, 3, 7, 15, 5 rows accepted");
    check(liif_png_writer_rows(wr, buf, 0, stride, &err) == LIIF_OK, "zero rows is a no-op");
    st = liif_png_writer_finish(wr, &err);
    check(st == LIIF_OK, "finish (%s)", err.msg);
    liif_png back;
    st = liif_png_read(p, &back, &err);
    int same = st == LIIF_OK && back.w == w && back.h == h && back.channels == ch;
    for (int r = 0; same && r < h; r++)
        same = same_floats(buf + (size_t)r * stride, back.px + (size_t)r * w * ch, (size_t)w * ch);
    check(same, "streamed padded rows read back exactly");
    liif_png_free(&back);

    /* one row too many is refused and the writer is then dead, leaving nothing */
    st = liif_png_writer_open(path_in("toomany.png"), w, 2, ch, 8, &wr, &err);
    if (st == LIIF_OK) {
        st = liif_png_writer_rows(wr, buf, 3, stride, &err);
        check(st == LIIF_ERR_ARG, "3 rows into a 2-row image: %s", err.msg);
        st = liif_png_writer_finish(wr, &err);
        check(st != LIIF_OK, "finish after a failure fails: %s", err.msg);
        check(access(path_in("toomany.png"), F_OK) != 0 && leftovers() == 0,
              "nothing created by the failed writer");
    }
    free(buf);
}

/* ------------------------------------------------ formats liif cannot write */

/* Expected output of pixel i of s, in its output scale (0..255, or 0..65535 for 16-bit
 * files): palettes and low depths expanded, tRNS turned into alpha. Returns channels. */
static int expand_pixel(const raw_png *s, size_t i, unsigned out[4])
{
    int spp = samples_per_pixel(s->color_type);
    const unsigned *v = s->samples + i * spp;
    unsigned top = s->bit_depth == 16 ? 65535u : 255u;
    if (s->color_type == PNG_COLOR_TYPE_PALETTE) {
        png_color c = s->palette[v[0]];
        out[0] = c.red, out[1] = c.green, out[2] = c.blue;
        if (!s->trans_alpha)
            return 3;
        out[3] = (int)v[0] < s->n_trans ? s->trans_alpha[v[0]] : 255u;
        return 4;
    }
    unsigned scale = s->bit_depth < 8 ? 255u / ((1u << s->bit_depth) - 1) : 1u;
    for (int k = 0; k < spp; k++)
        out[k] = v[k] * scale;
    if (!s->trans_color)
        return spp;
    const png_color_16 *t = s->trans_color;
    int transparent = spp == 1 ? v[0] == t->gray
                               : v[0] == t->red && v[1] == t->green && v[2] == t->blue;
    out[spp] = transparent ? 0 : top;
    return spp + 1;
}

/* Writes s (plain and interlaced) with raw libpng, reads it with liif, compares. */
static void check_expansion(const char *what, raw_png s)
{
    for (int il = 0; il < 2; il++) {
        s.interlace = il ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE;
        const char *p = path_in("raw.png");
        if (raw_write(p, &s) != 0) {
            check(0, "%s: raw libpng write", what);
            continue;
        }
        liif_png img;
        liif_error err = {{0}};
        liif_status st = liif_png_read(p, &img, &err);
        unsigned e[4];
        int want_ch = expand_pixel(&s, 0, e), want_depth = s.bit_depth == 16 ? 16 : 8;
        float top = want_depth == 16 ? 65535.0f : 255.0f;
        int ok = st == LIIF_OK && img.w == s.w && img.h == s.h && img.channels == want_ch &&
                 img.bit_depth == want_depth;
        for (size_t i = 0; ok && i < (size_t)s.w * s.h; i++) {
            expand_pixel(&s, i, e);
            for (int k = 0; k < want_ch; k++)
                if (img.px[i * want_ch + k] != (float)e[k] / top) {
                    printf("     pixel %zu channel %d: got %.7f want %u/%.0f\n", i, k,
                           (double)img.px[i * want_ch + k], e[k], (double)top);
                    ok = 0;
                    break;
                }
        }
        check(ok, "%s%s %dx%d -> %d channels, %d-bit (got %d, %d) %s", what,
              il ? ", interlaced" : "", s.w, s.h, want_ch, want_depth, img.channels,
              img.bit_depth, err.msg);
        liif_png_free(&img);
    }
}

static unsigned *random_samples(size_t n, unsigned below)
{
    unsigned *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = rng() % below;
    return v;
}

static const png_color k_palette[5] = {{0, 0, 0}, {255, 0, 0}, {10, 200, 30}, {1, 2, 3}, {255, 255, 255}};
static const png_byte k_palette_alpha[3] = {0, 128, 77}; /* entries 3, 4 stay opaque */

static void test_palette(void)
{
    for (int bd = 1; bd <= 8; bd *= 2) {
        int n_pal = bd == 1 ? 2 : bd == 2 ? 4 : 5; /* at most 2^bd entries */
        unsigned *idx = random_samples(13 * 11, (unsigned)n_pal);
        raw_png s = {13, 11, bd, PNG_COLOR_TYPE_PALETTE, 0, idx, k_palette, n_pal, NULL, 0, NULL, 0, 0};
        char what[64];
        snprintf(what, sizeof what, "%d-bit palette", bd);
        check_expansion(what, s);
        s.trans_alpha = k_palette_alpha;
        s.n_trans = n_pal < 3 ? n_pal : 3;
        snprintf(what, sizeof what, "%d-bit palette + tRNS", bd);
        check_expansion(what, s);
        free(idx);
    }
    /* the same numbers written out, independent of expand_pixel */
    static const unsigned idx[4] = {0, 1, 3, 4};
    raw_png s = {4, 1, 8, PNG_COLOR_TYPE_PALETTE, 0, idx, k_palette, 5, k_palette_alpha, 3, NULL, 0, 0};
    liif_png img;
    liif_error err;
    if (raw_write(path_in("pal.png"), &s) == 0 && liif_png_read(path_in("pal.png"), &img, &err) == LIIF_OK) {
        static const float want[16] = {0, 0, 0, 0,                  1, 0, 0, 128 / 255.0f,
                                       1 / 255.0f, 2 / 255.0f, 3 / 255.0f, 1, 1, 1, 1, 1};
        check(img.channels == 4 && same_floats(img.px, want, 16),
              "palette entries 0,1,3,4 with tRNS {0,128,77} -> RGBA values as listed");
        liif_png_free(&img);
    } else {
        check(0, "palette literal case: %s", err.msg);
    }
}

static void test_gray(void)
{
    for (int bd = 1; bd <= 16; bd *= 2) {
        unsigned *v = random_samples(10 * 9, 1u << bd);
        png_color_16 t = {0, 0, 0, 0, (png_uint_16)((1u << bd) - 2)};
        v[0] = v[7] = t.gray; /* some pixels surely transparent */
        raw_png s = {10, 9, bd, PNG_COLOR_TYPE_GRAY, 0, v, NULL, 0, NULL, 0, NULL, 0, 0};
        char what[64];
        snprintf(what, sizeof what, "%d-bit gray", bd);
        check_expansion(what, s);
        s.trans_color = &t;
        snprintf(what, sizeof what, "%d-bit gray + tRNS", bd);
        check_expansion(what, s);
        free(v);
    }
    /* literal low-bit expansion: 1-bit 1 -> 255, 2-bit 2 -> 170, 4-bit 9 -> 153 */
    static const struct { int bd; unsigned v; float want; } lit[3] = {
        {1, 1, 1.0f}, {2, 2, 170 / 255.0f}, {4, 9, 153 / 255.0f}};
    for (int i = 0; i < 3; i++) {
        raw_png s = {1, 1, lit[i].bd, PNG_COLOR_TYPE_GRAY, 0, &lit[i].v, NULL, 0, NULL, 0, NULL, 0, 0};
        liif_png img;
        liif_error err;
        int ok = raw_write(path_in("g.png"), &s) == 0 &&
                 liif_png_read(path_in("g.png"), &img, &err) == LIIF_OK;
        check(ok && img.channels == 1 && img.bit_depth == 8 && img.px[0] == lit[i].want,
              "%d-bit gray %u reads as %.6f", lit[i].bd, lit[i].v, ok ? (double)img.px[0] : -1.0);
        if (ok)
            liif_png_free(&img);
    }
}

static void test_colour(void)
{
    static const int types[3] = {PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
    for (int bd = 8; bd <= 16; bd += 8) {
        for (int t = 0; t < 3; t++) {
            size_t n = (size_t)9 * 7 * samples_per_pixel(types[t]);
            unsigned *v = random_samples(n, bd == 16 ? 65536u : 256u);
            raw_png s = {9, 7, bd, types[t], 0, v, NULL, 0, NULL, 0, NULL, 0, 0};
            char what[64];
            snprintf(what, sizeof what, "%d-bit colour type %d", bd, types[t]);
            check_expansion(what, s);
            if (types[t] == PNG_COLOR_TYPE_RGB) {
                png_color_16 tc = {0, (png_uint_16)v[3], (png_uint_16)v[4], (png_uint_16)v[5], 0};
                s.trans_color = &tc; /* pixel 1 is transparent, others almost surely not */
                snprintf(what, sizeof what, "%d-bit RGB + tRNS", bd);
                check_expansion(what, s);
            }
            free(v);
        }
    }
    /* tiny interlaced images leave most Adam7 passes empty */
    static const int sizes[4][2] = {{1, 1}, {2, 3}, {3, 2}, {5, 1}};
    for (int i = 0; i < 4; i++) {
        unsigned *v = random_samples((size_t)sizes[i][0] * sizes[i][1] * 3, 256);
        raw_png s = {sizes[i][0], sizes[i][1], 8, PNG_COLOR_TYPE_RGB, 0, v, NULL, 0, NULL, 0, NULL, 0, 0};
        check_expansion("tiny RGB", s);
        free(v);
    }
}

/* --------------------------------------------------------------- bad input */

static void test_bad_input(void)
{
    liif_png img;
    liif_error err = {{0}};
    const char *jpg = path_in("x.jpg");
    spit(jpg, "this is not an image\n", 21);
    liif_status st = liif_png_read(jpg, &img, &err);
    char want[600];
    snprintf(want, sizeof want, "%s: not a PNG file", jpg);
    check(st == LIIF_ERR_FORMAT && strcmp(err.msg, want) == 0 && img.px == NULL,
          "text file -> LIIF_ERR_FORMAT \"%s\"", err.msg);
    spit(jpg, "", 0);
    st = liif_png_read(jpg, &img, &err);
    check(st == LIIF_ERR_FORMAT && strcmp(err.msg, want) == 0, "empty file -> \"%s\"", err.msg);

    const char *missing = path_in("missing.png");
    st = liif_png_read(missing, &img, &err);
    check(st == LIIF_ERR_IO && starts_with(err.msg, missing) && strstr(err.msg, strerror(ENOENT)),
          "missing file -> LIIF_ERR_IO \"%s\"", err.msg);

    /* a noisy image, so its IDAT is most of the file */
    float *px = ramp(64, 64, 3, 255, 1);
    for (size_t i = 0; i < 64 * 64 * 3; i++)
        px[i] = (float)(rng() % 256) / 255.0f;
    liif_png noisy = {.w = 64, .h = 64, .channels = 3, .bit_depth = 8, .px = px};
    const char *good = path_in("good.png"), *bad = path_in("bad.png");
    size_t n = 0;
    unsigned char *bytes = NULL;
    if (liif_png_write(good, &noisy, &err) == LIIF_OK)
        bytes = slurp(good, &n);
    free(px);
    if (!bytes) {
        check(0, "could not make the file to truncate");
        return;
    }
    spit(bad, bytes, n / 2);
    st = liif_png_read(bad, &img, &err);
    check(st == LIIF_ERR_FORMAT && starts_with(err.msg, bad) && one_line(&err) && img.px == NULL,
          "cut in half -> LIIF_ERR_FORMAT \"%s\"", err.msg);

    /* every cut point: each must fail cleanly (ASan/LSan watch for leaks on longjmp) */
    int all_fail = 1;
    for (size_t cut = 0; cut < n; cut += (cut < 64 ? 1 : 37)) {
        spit(bad, bytes, cut);
        st = liif_png_read(bad, &img, &err);
        if (st != LIIF_ERR_FORMAT || !one_line(&err) || !starts_with(err.msg, bad)) {
            printf("     cut at %zu: status %d \"%s\"\n", cut, (int)st, err.msg);
            all_fail = 0;
        }
    }
    check(all_fail, "every truncation of a %zu-byte file -> LIIF_ERR_FORMAT, one line", n);

    bytes[n / 2] ^= 0x55; /* inside IDAT */
    spit(bad, bytes, n);
    st = liif_png_read(bad, &img, &err);
    check(st == LIIF_ERR_FORMAT && starts_with(err.msg, bad), "flipped IDAT byte -> \"%s\"", err.msg);
    bytes[n / 2] ^= 0x55;
    bytes[20] ^= 0x01; /* IHDR height */
    spit(bad, bytes, n);
    st = liif_png_read(bad, &img, &err);
    check(st == LIIF_ERR_FORMAT && starts_with(err.msg, bad), "corrupt IHDR -> \"%s\"", err.msg);
    free(bytes);
}

static void test_too_large(void)
{
    static const struct { png_uint_32 w, h; } big[3] = {
        {LIIF_MAX_SIDE + 1, 1}, {1, 2000000}, {LIIF_MAX_SIDE, LIIF_MAX_PIXELS / LIIF_MAX_SIDE + 1}};
    for (int i = 0; i < 3; i++) {
        raw_png s = {(int)big[i].w, (int)big[i].h, 8, PNG_COLOR_TYPE_GRAY, 0, NULL, NULL, 0, NULL, 0,
                     NULL, 0x7fffffff, 1};
        const char *p = path_in("big.png");
        liif_png img;
        liif_error err = {{0}};
        liif_status st = raw_write(p, &s) == 0 ? liif_png_read(p, &img, &err) : LIIF_OK;
        check(st == LIIF_ERR_FORMAT && starts_with(err.msg, p) && strstr(err.msg, "too large"),
              "%ux%u header -> LIIF_ERR_FORMAT \"%s\"", (unsigned)big[i].w, (unsigned)big[i].h, err.msg);
    }
    liif_png_writer *wr;
    liif_error err;
    liif_status st = liif_png_writer_open(path_in("w.png"), LIIF_MAX_SIDE + 1, 1, 3, 8, &wr, &err);
    check(st == LIIF_ERR_ARG && wr == NULL && strstr(err.msg, "too large"), "writer refuses %d wide: %s",
          LIIF_MAX_SIDE + 1, err.msg);
    st = liif_png_writer_open(path_in("w.png"), 4, 4, 5, 8, &wr, &err);
    check(st == LIIF_ERR_ARG, "writer refuses 5 channels: %s", err.msg);
    st = liif_png_writer_open(path_in("w.png"), 4, 4, 3, 12, &wr, &err);
    check(st == LIIF_ERR_ARG, "writer refuses 12-bit: %s", err.msg);
    st = liif_png_writer_open(path_in("w.png"), 0, 4, 3, 8, &wr, &err);
    check(st == LIIF_ERR_ARG, "writer refuses width 0: %s", err.msg);
    check(leftovers() == 0 && access(path_in("w.png"), F_OK) != 0, "refused writers create nothing");
}

/* ---------------------------------------------------------- atomic writing */

static const char k_old[] = "old contents: must survive any failed write";

static liif_png_writer *open_over_old(const char *p, int w, int h)
{
    spit(p, k_old, sizeof k_old);
    liif_png_writer *wr = NULL;
    liif_error err;
    if (liif_png_writer_open(p, w, h, 3, 8, &wr, &err) != LIIF_OK)
        check(0, "open writer over %s: %s", p, err.msg);
    return wr;
}

static void test_atomic(void)
{
    float row[3 * 64];
    for (int i = 0; i < 3 * 64; i++)
        row[i] = (float)(i % 256) / 255.0f;
    liif_error err = {{0}};

    const char *nodir = "/nonexistent-liif-test-dir/out.png";
    liif_png_writer *wr = NULL;
    liif_status st = liif_png_writer_open(nodir, 8, 8, 3, 8, &wr, &err);
    check(st == LIIF_ERR_IO && wr == NULL &&
              strcmp(err.msg, "/nonexistent-liif-test-dir/out.png: cannot create temporary file: "
                              "No such file or directory") == 0,
          "destination in a missing folder -> LIIF_ERR_IO \"%s\"", err.msg);
    check(access(nodir, F_OK) != 0, "and no file appears there");

    st = liif_png_writer_open(g_dir, 8, 8, 3, 8, &wr, &err);
    check(st != LIIF_OK && wr == NULL, "a folder as destination is refused: %s", err.msg);

    const char *p = path_in("keep.png");
    wr = open_over_old(p, 64, 10);
    if (wr) {
        liif_png_writer_rows(wr, row, 1, 0, &err); /* stride 0 < w * channels: refused */
        liif_png_writer_abort(wr);
    }
    check(same_contents(p, k_old, sizeof k_old) && leftovers() == 0,
          "failed rows() + abort(): old file intact, no temporary left");

    wr = open_over_old(p, 64, 10);
    if (wr) {
        for (int y = 0; y < 5; y++)
            liif_png_writer_rows(wr, row, 1, 3 * 64, &err);
        check(leftovers() == 1, "a temporary dot-file exists while writing");
        liif_png_writer_abort(wr);
    }
    check(same_contents(p, k_old, sizeof k_old) && leftovers() == 0,
          "abort() after 5 of 10 rows: old file intact, no temporary left");

    wr = open_over_old(p, 64, 10);
    if (wr) {
        liif_png_writer_rows(wr, row, 1, 3 * 64, &err);
        st = liif_png_writer_finish(wr, &err);
        check(st == LIIF_ERR_ARG && starts_with(err.msg, p), "finish() after 1 of 10 rows fails: %s",
              err.msg);
    }
    check(same_contents(p, k_old, sizeof k_old) && leftovers() == 0,
          "failed finish(): old file intact, no temporary left");

    wr = open_over_old(p, 64, 2);
    if (wr) {
        liif_png_writer_rows(wr, row, 1, 3 * 64, &err);
        liif_png_writer_rows(wr, row, 1, 3 * 64, &err);
        st = liif_png_writer_finish(wr, &err);
        liif_png img;
        check(st == LIIF_OK && liif_png_read(p, &img, &err) == LIIF_OK && img.w == 64 && img.h == 2,
              "successful finish() replaces the old file");
        liif_png_free(&img);
    }
    check(leftovers() == 0, "no temporary left after success");
}

/* A real write(2) failure, not a simulated one. /dev/full cannot serve: the temporary
 * file is created beside the destination, i.e. in /dev, and rename() would replace the
 * device node. A tiny RLIMIT_FSIZE makes write() fail with EFBIG instead of ENOSPC,
 * through the same code path. */
static void test_write_failure(void)
{
    struct rlimit old, tiny;
    if (getrlimit(RLIMIT_FSIZE, &old) != 0) {
        check(0, "getrlimit");
        return;
    }
    const int w = 200, h = 200;
    float *px = malloc((size_t)w * h * 3 * sizeof *px);
    for (size_t i = 0; i < (size_t)w * h * 3; i++)
        px[i] = (float)(rng() % 256) / 255.0f; /* incompressible: ~120 KB */
    liif_png img = {.w = w, .h = h, .channels = 3, .bit_depth = 8, .px = px};
    const char *p = path_in("full.png");
    spit(p, k_old, sizeof k_old);

    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN); /* get EFBIG instead of being killed */
    tiny = old;
    tiny.rlim_cur = 16384;
    liif_error err = {{0}};
    liif_status st = LIIF_OK;
    if (setrlimit(RLIMIT_FSIZE, &tiny) == 0) {
        st = liif_png_write(p, &img, &err);
        setrlimit(RLIMIT_FSIZE, &old);
    }
    signal(SIGXFSZ, prev);
    char want[600];
    snprintf(want, sizeof want, "%s: write failed: %s", p, strerror(EFBIG));
    check(st == LIIF_ERR_IO && starts_with(err.msg, want),
          "write beyond RLIMIT_FSIZE -> LIIF_ERR_IO \"%s\"", err.msg);
    check(same_contents(p, k_old, sizeof k_old) && leftovers() == 0,
          "old file intact, no temporary left after the write error");
    free(px);
}

static void test_permissions(void)
{
    mode_t prev = umask(022);
    float px[3] = {0.1f, 0.2f, 0.3f};
    liif_png img = {.w = 1, .h = 1, .channels = 3, .bit_depth = 8, .px = px};
    liif_error err;
    const char *p = path_in("mode.png");
    struct stat st;
    int ok = liif_png_write(p, &img, &err) == LIIF_OK && stat(p, &st) == 0;
    check(ok && (st.st_mode & 0777) == 0644, "new file gets 0666 & ~umask (0%o)",
          ok ? (unsigned)(st.st_mode & 0777) : 0u);
    chmod(p, 0600);
    ok = liif_png_write(p, &img, &err) == LIIF_OK && stat(p, &st) == 0;
    check(ok && (st.st_mode & 0777) == 0600, "replaced file keeps its mode (0%o)",
          ok ? (unsigned)(st.st_mode & 0777) : 0u);
    umask(prev);
}

/* ------------------------------------------------------ parallel image data */

/* The concatenated IDAT payloads of a PNG file (malloc'd), or NULL. */
static unsigned char *idat_of(const char *path, size_t *n)
{
    size_t len;
    unsigned char *f = slurp(path, &len), *out = NULL;
    *n = 0;
    for (size_t i = 8; f && i + 12 <= len;) {
        size_t l = (size_t)f[i] << 24 | (size_t)f[i + 1] << 16 | (size_t)f[i + 2] << 8 | f[i + 3];
        if (i + 12 + l > len) break;
        if (memcmp(f + i + 4, "IDAT", 4) == 0) {
            unsigned char *o = realloc(out, *n + l + 1);
            if (!o) break;
            out = o;
            memcpy(out + *n, f + i + 8, l);
            *n += l;
        }
        i += 12 + l;
    }
    free(f);
    return out;
}

/* The filtered rows of a PNG (its IDAT stream inflated; zlib checks the Adler-32), or NULL. */
static unsigned char *filtered_of(const char *path, size_t want)
{
    size_t n;
    unsigned char *z = idat_of(path, &n), *out = malloc(want + 1);
    uLongf got = (uLongf)want + 1;
    int ok = z && out && uncompress(out, &got, z, (uLong)n) == Z_OK && got == want;
    free(z);
    if (!ok) free(out);
    return ok ? out : NULL;
}

/* What libpng itself writes for these pixels (PNG_ALL_FILTERS, level 6): the reference encoder. */
static int libpng_write(const char *path, const unsigned char *raw, int w, int h, int ch, int depth)
{
    static const int types[] = {PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                                PNG_COLOR_TYPE_RGB_ALPHA};
    FILE *f = fopen(path, "wb");
    png_structp png = f ? png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL) : NULL;
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info || setjmp(png_jmpbuf(png))) {
        if (png) png_destroy_write_struct(&png, info ? &info : NULL);
        if (f) fclose(f);
        return -1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, types[ch - 1], PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_ALL_FILTERS);
    png_set_compression_level(png, 6);
    png_write_info(png, info);
    for (int y = 0; y < h; y++) png_write_row(png, raw + (size_t)y * w * ch * (depth / 8));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return fclose(f);
}

/* Rows of every kind a filter wins on: flat, horizontal ramps (Sub), repeated rows (Up), smooth
 * 2-D fields (Average, Paeth), noise (None), so that each of the five filters is chosen somewhere. */
static float *mixed_image(int w, int h, int ch, unsigned maxv)
{
    float *px = malloc((size_t)w * h * ch * sizeof *px);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < ch; c++) {
                float v;
                switch ((y / 8) % 5) {
                case 0: v = 0.4f; break;
                case 1: v = (float)((x * 3 + c * 50) % 256) / 255.0f; break;
                case 2: v = (float)((x * 7 + y / 8 * 13 + c) % 256) / 255.0f; break;
                case 3: v = 0.5f + 0.4f * sinf(x * 0.05f + c) * cosf(y * 0.07f); break;
                default: v = (float)(rng() % 256) / 255.0f; break;
                }
                px[((size_t)y * w + x) * ch + c] = (float)((unsigned)(v * maxv + 0.5f)) / (float)maxv; /* exact */
            }
    return px;
}

/* Writes px through the streaming writer in bands of `band` rows on `threads` threads. */
static liif_status write_banded(const char *p, const float *px, int w, int h, int ch, int depth, int band,
                                int threads, liif_error *err)
{
    liif_png_writer *wr;
    liif_status st = liif_png_writer_open(p, w, h, ch, depth, &wr, err);
    if (st) return st;
    liif_png_writer_set_threads(wr, threads);
    for (int y = 0; st == LIIF_OK && y < h; y += band)
        st = liif_png_writer_rows(wr, px + (size_t)y * w * ch, band < h - y ? band : h - y, (size_t)w * ch, err);
    if (st) {
        liif_png_writer_abort(wr);
        return st;
    }
    return liif_png_writer_finish(wr, err);
}

/* The image data is filtered and deflated in pieces on several threads: the file must not depend on the
 * thread count or on the bands, must read back exactly, must use each filter as libpng would, and must
 * be about as small as libpng's own. */
static void test_parallel_idat(int ch, int depth)
{
    const int w = 700, h = 300; /* 16-bit RGBA: 1.68 MB of filtered rows, 7 pieces */
    float *px = mixed_image(w, h, ch, depth == 16 ? 65535u : 255u);
    size_t rowbytes = (size_t)w * ch * (depth / 8), nfilt = (size_t)h * (rowbytes + 1);
    liif_error err = {{0}};
    const char *ref = path_in("par-ref.png");
    liif_status st = write_banded(ref, px, w, h, ch, depth, h, 1, &err);
    check(st == LIIF_OK, "%d-bit %d-channel %dx%d on 1 thread in one call (%s)", depth, ch, w, h, err.msg);
    size_t nref = 0;
    unsigned char *want = slurp(ref, &nref);
    static const int bands[] = {1, 37, 300, 301}, threads[] = {2, 5, 2, 3};
    int same = want != NULL;
    for (int i = 0; i < 4; i++) {
        const char *p = path_in("par.png");
        size_t n = 0;
        st = write_banded(p, px, w, h, ch, depth, bands[i], threads[i], &err);
        unsigned char *got = st == LIIF_OK ? slurp(p, &n) : NULL;
        if (!got || n != nref || memcmp(got, want, n) != 0) {
            printf("     bands of %d rows on %d threads: %zu bytes against %zu\n", bands[i], threads[i], n, nref);
            same = 0;
        }
        free(got);
    }
    check(same, "%d-bit %d-channel: the same file byte for byte in bands of 1, 37, 300, 301 rows on 1-5 threads",
          depth, ch);
    liif_png back;
    st = liif_png_read(ref, &back, &err);
    check(st == LIIF_OK && back.channels == ch && back.bit_depth == depth && back.w == w &&
              same_floats(px, back.px, (size_t)w * h * ch),
          "%d-bit %d-channel: libpng reads back every sample exactly", depth, ch);
    if (st == LIIF_OK) liif_png_free(&back);

    /* libpng's own encoder on the same samples: the same filter on every row, a size within 1%. */
    unsigned char *raw = malloc((size_t)h * rowbytes);
    for (size_t i = 0; i < (size_t)w * h * ch; i++) {
        unsigned v = (unsigned)((double)px[i] * (depth == 16 ? 65535 : 255) + 0.5); /* the writer's rounding */
        if (depth == 16) {
            raw[2 * i] = (unsigned char)(v >> 8);
            raw[2 * i + 1] = (unsigned char)v;
        } else
            raw[i] = (unsigned char)v;
    }
    const char *lp = path_in("par-libpng.png");
    size_t nlib = 0;
    int ok = libpng_write(lp, raw, w, h, ch, depth) == 0;
    free(slurp(lp, &nlib));
    unsigned char *fa = filtered_of(ref, nfilt), *fb = ok ? filtered_of(lp, nfilt) : NULL;
    int used[5] = {0}, differ = 0;
    for (int y = 0; fa && fb && y < h; y++) {
        used[fa[(size_t)y * (rowbytes + 1)] % 5]++;
        differ += memcmp(fa + (size_t)y * (rowbytes + 1), fb + (size_t)y * (rowbytes + 1), rowbytes + 1) != 0;
    }
    check(fa && fb && differ == 0, "%d-bit %d-channel: the filtered rows equal libpng's PNG_ALL_FILTERS (%d differ)",
          depth, ch, differ);
    check(used[0] && used[1] && used[2] && used[3] && used[4],
          "%d-bit %d-channel: rows use filters None %d, Sub %d, Up %d, Average %d, Paeth %d", depth, ch, used[0],
          used[1], used[2], used[3], used[4]);
    check(nref <= nlib + nlib / 100, "%d-bit %d-channel: %zu bytes against libpng's %zu (at most 1%% more)", depth,
          ch, nref, nlib);
    free(fa);
    free(fb);
    free(raw);
    free(want);
    free(px);
    check(leftovers() == 0, "no temporary file left after the parallel writes");
}

/* Calls with no rows (before the first, between bands, after the last) change nothing: the stream ends once. */
static void test_zero_row_calls(void)
{
    const int w = 300, h = 200, ch = 3;
    float *px = mixed_image(w, h, ch, 255);
    liif_error err = {{0}};
    const char *ref = path_in("zero-ref.png"), *p = path_in("zero.png");
    int ok = write_banded(ref, px, w, h, ch, 8, h, 2, &err) == LIIF_OK;
    liif_png_writer *wr;
    ok = ok && liif_png_writer_open(p, w, h, ch, 8, &wr, &err) == LIIF_OK;
    if (ok) {
        liif_status st = liif_png_writer_rows(wr, px, 0, (size_t)w * ch, &err);
        for (int y = 0; st == LIIF_OK && y < h; y += 50) {
            st = liif_png_writer_rows(wr, px + (size_t)y * w * ch, 50, (size_t)w * ch, &err);
            if (st == LIIF_OK) st = liif_png_writer_rows(wr, px, 0, (size_t)w * ch, &err);
        }
        ok = st == LIIF_OK && liif_png_writer_finish(wr, &err) == LIIF_OK;
        if (st != LIIF_OK) liif_png_writer_abort(wr);
    }
    size_t na = 0, nb = 0;
    unsigned char *a = slurp(ref, &na), *b = ok ? slurp(p, &nb) : NULL;
    check(a && b && na == nb && memcmp(a, b, na) == 0, "calls with no rows change nothing (%s)", err.msg);
    free(a);
    free(b);
    free(px);
}

/* Each filter against the PNG specification's definition, on bytes where every edge case (left edge
 * within bpp, no previous row, Paeth ties) occurs. */
static void test_filters(void)
{
    unsigned char row[24], prev[24], out[24];
    int ok = 1;
    for (int t = 0; t < 24; t++) {
        row[t] = (unsigned char)(rng() % 256);
        prev[t] = (unsigned char)(t % 3 == 0 ? row[t] : rng() % 256);
    }
    for (int type = 0; type <= 4; type++)
        for (int bpp = 1; bpp <= 8; bpp *= 2)
            for (int has_prev = 0; has_prev <= 1; has_prev++) {
                const unsigned char *pv = has_prev ? prev : NULL;
                liif_png_filter_row(type, row, pv, 24, bpp, out);
                for (int i = 0; i < 24; i++) {
                    int a = i >= bpp ? row[i - bpp] : 0, b = pv ? pv[i] : 0, c = pv && i >= bpp ? pv[i - bpp] : 0;
                    int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
                    int pred = type == 0 ? 0 : type == 1 ? a : type == 2 ? b : type == 3 ? (a + b) / 2
                               : (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
                    ok &= out[i] == (unsigned char)(row[i] - pred);
                }
            }
    check(ok, "filters None, Sub, Up, Average, Paeth as the PNG specification writes them (bpp 1-8, first row)");
}

/* ---------------------------------------------------------------- cleanup */

static void remove_scratch(void)
{
    DIR *d = opendir(g_dir);
    struct dirent *e;
    if (d) {
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                unlink(path_in(e->d_name));
        closedir(d);
    }
    rmdir(g_dir);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/liif-test-png.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 2;
    }
    for (int ch = 1; ch <= 4; ch++) {
        test_round_trip(ch, 8);
        test_round_trip(ch, 16);
    }
    test_quantize(8);
    test_quantize(16);
    test_streaming();
    test_filters();
    test_parallel_idat(3, 8);
    test_parallel_idat(4, 16);
    test_parallel_idat(1, 8);
    test_zero_row_calls();
    test_palette();
    test_gray();
    test_colour();
    test_bad_input();
    test_too_large();
    test_atomic();
    test_write_failure();
    test_permissions();
    liif_png_free(NULL);
    remove_scratch();
    printf("%d of %d checks passed\n", n_checks - n_failed, n_checks);
    return n_failed ? 1 : 0;
}
