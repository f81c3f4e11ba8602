/* test_jpeg.c: JPEG reading and writing (core/io/jpeg_image.c) and the PNG-or-JPEG layer (core/io/image.c):
 * round trips in gray and RGB, every EXIF orientation in both byte orders against the stored image turned by
 * hand, malformed EXIF ignored, and the failures (truncated, CMYK, lying header, not an image, alpha, bad
 * quality, too few rows, a missing folder) each one line naming the file, leaving no file behind.
 * usage: test-jpeg */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "icc_util.h"
#include "image.h"
#include "jpeg_util.h"
#include "testutil.h"
#include "tmpdir_util.h"

/* A stored 24x16 picture whose every pixel differs from its mirror images: the red ramp runs left to right, the
 * green one top to bottom, blue marks the top-left quarter. Flat 8x8 blocks keep JPEG from blurring it much. */
static unsigned char stored(int x, int y, int c)
{
    if (c == 0) return (unsigned char)(20 + 200 * (x / 8) / 2);
    if (c == 1) return (unsigned char)(20 + 200 * (y / 8));
    return (x < 8 && y < 8) ? 230 : 30;
}

static int save(const char *name, const unsigned char *buf, unsigned long n)
{
    return tj_save(path_in(name), buf, n);
}

/* ------------------------------------------------------------ round trips */

static float smooth(int x, int y, int c, int w, int h)
{
    return (float)(0.1 + 0.8 * (c == 0 ? (double)x / (w - 1) : c == 1 ? (double)y / (h - 1) : 0.5 + 0.3 * sin(x * 0.05)));
}

static void round_trip(int channels, int quality, int stripes, double tol)
{
    int w = 67, h = 41;
    float *px = malloc(sizeof(float) * w * h * channels);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < channels; c++)
                px[((size_t)y * w + x) * channels + c] = smooth(x, y, c, w, h);
    liif_error err;
    liif_image_writer *wr;
    const char *p = path_in("rt.jpg");
    liif_status st = liif_image_writer_open(p, LIIF_IMAGE_JPEG, w, h, channels, 8, quality, NULL, NULL, &wr, &err);
    CHECK(st == LIIF_OK, "open %d channels: %s", channels, err.msg);
    if (st != LIIF_OK) {
        free(px);
        return;
    }
    for (int y = 0; st == LIIF_OK && y < h; y += stripes) /* rows handed in stripes: the file is the same */
        st = liif_image_writer_rows(wr, px + (size_t)y * w * channels, y + stripes > h ? h - y : stripes,
                                    (size_t)w * channels, &err);
    if (st == LIIF_OK)
        st = liif_image_writer_finish(wr, &err);
    else
        liif_image_writer_abort(wr);
    CHECK(st == LIIF_OK, "write %d channels: %s", channels, err.msg);
    liif_png img;
    liif_image_format fmt;
    int o = 0;
    st = liif_image_read(p, &img, &fmt, &o, &err);
    CHECK(st == LIIF_OK && fmt == LIIF_IMAGE_JPEG && o == 1, "read back: %s", err.msg);
    if (st == LIIF_OK) {
        CHECK(img.w == w && img.h == h && img.channels == channels && img.bit_depth == 8, "%dx%d c%d d%d", img.w,
              img.h, img.channels, img.bit_depth);
        double worst = 0, sum = 0;
        for (size_t i = 0; img.channels == channels && i < (size_t)w * h * channels; i++) {
            double d = fabs(img.px[i] - px[i]) * 255;
            worst = d > worst ? d : worst;
            sum += d;
        }
        printf("jpeg round trip: %d channels, quality %d, rows in stripes of %d: max %.2f, mean %.3f levels\n",
               channels, quality, stripes, worst, sum / ((double)w * h * channels));
        CHECK(worst <= tol, "%d channels at quality %d: max error %.2f levels > %.1f", channels, quality, worst, tol);
        liif_png_free(&img);
    }
    free(px);
    unlink(p);
}

/* ------------------------------------------------------------ EXIF orientation */

/* Where the viewer's pixel (x, y) comes from in the stored w x h image, as the EXIF standard (and PIL's
 * exif_transpose) has it. */
static void source_of(int o, int x, int y, int w, int h, int *sx, int *sy)
{
    switch (o) {
    case 2: *sx = w - 1 - x, *sy = y; break;
    case 3: *sx = w - 1 - x, *sy = h - 1 - y; break;
    case 4: *sx = x, *sy = h - 1 - y; break;
    case 5: *sx = y, *sy = x; break;
    case 6: *sx = y, *sy = h - 1 - x; break;
    case 7: *sx = w - 1 - y, *sy = h - 1 - x; break;
    case 8: *sx = w - 1 - y, *sy = x; break;
    default: *sx = x, *sy = y; break;
    }
}

static void orientations(void)
{
    const int w = 24, h = 16;
    const tj_layout plain = {3, 0, NULL, 0, 0};
    unsigned long n;
    unsigned char *buf = tj_encode_ex(w, h, 95, stored, &plain, &n);
    save("o1.jpg", buf, n);
    free(buf);
    liif_png ref;
    liif_error err;
    int o = 0;
    if (liif_image_read(path_in("o1.jpg"), &ref, NULL, &o, &err) != LIIF_OK) {
        CHECK(0, "plain: %s", err.msg);
        return;
    }
    CHECK(o == 1, "no EXIF: orientation %d", o);
    /* the picture itself: the top-left quarter is blue, the red ramp grows to the right */
    CHECK(ref.px[2] > 0.8f && ref.px[((size_t)15 * w + 23) * 3 + 2] < 0.2f, "stored picture");
    for (int little = 0; little <= 1; little++)
        for (int want = 1; want <= 8; want++) {
            unsigned char exif[64];
            tj_layout l = {3, 0, exif, tj_exif_orientation(exif, want, little), 0};
            buf = tj_encode_ex(w, h, 95, stored, &l, &n);
            save("o.jpg", buf, n);
            free(buf);
            liif_png img;
            liif_status st = liif_image_read(path_in("o.jpg"), &img, NULL, &o, &err);
            CHECK(st == LIIF_OK && o == want, "orientation %d (%s): got %d, %s", want, little ? "II" : "MM", o,
                  st ? err.msg : "ok");
            if (st != LIIF_OK)
                continue;
            int ow = want >= 5 ? h : w, oh = want >= 5 ? w : h, bad = 0;
            CHECK(img.w == ow && img.h == oh, "orientation %d: %dx%d, want %dx%d", want, img.w, img.h, ow, oh);
            for (int y = 0; img.w == ow && y < oh; y++)
                for (int x = 0; x < ow; x++) {
                    int sx, sy;
                    source_of(want, x, y, w, h, &sx, &sy);
                    bad += memcmp(img.px + ((size_t)y * ow + x) * 3, ref.px + ((size_t)sy * w + sx) * 3,
                                  3 * sizeof(float)) != 0;
                }
            CHECK(bad == 0, "orientation %d (%s): %d pixels are not the stored ones turned", want,
                  little ? "II" : "MM", bad);
            liif_png_free(&img);
        }
    printf("jpeg orientation: 8 EXIF orientations x 2 byte orders turned as the standard says\n");

    /* malformed EXIF: ignored (orientation 1, the stored picture), never a crash or a read outside the block */
    unsigned char exif[64];
    struct {
        const char *what;
        int at, value, at2, value2, len;
    } broken[] = { /* bytes of the little-endian block: TIFF at 6, IFD0 at 14, its entry at 16 (value at 24) */
        {"IFD offset past the end", 10, 0xff, 0, 0, 32},
        {"no entries", 14, 0, 0, 0, 32},
        {"entry count past the end, no orientation tag", 14, 0x7f, 16, 0x13, 32},
        {"type LONG", 18, 4, 0, 0, 32},
        {"orientation 9", 24, 9, 0, 0, 32},
        {"cut short", 0, 0, 0, 0, 20},
        {"not II or MM", 6, 'X', 0, 0, 32},
        {"TIFF magic 43", 8, 43, 0, 0, 32},
    };
    for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
        tj_exif_orientation(exif, 6, 1);
        if (broken[i].at)
            exif[broken[i].at] = (unsigned char)broken[i].value;
        if (broken[i].at2)
            exif[broken[i].at2] = (unsigned char)broken[i].value2;
        tj_layout l = {3, 0, exif, (unsigned)broken[i].len, 0};
        buf = tj_encode_ex(w, h, 95, stored, &l, &n);
        save("bad-exif.jpg", buf, n);
        free(buf);
        liif_png img;
        liif_status st = liif_image_read(path_in("bad-exif.jpg"), &img, NULL, &o, &err);
        CHECK(st == LIIF_OK && o == 1 && img.w == w && memcmp(img.px, ref.px, sizeof(float) * w * h * 3) == 0,
              "EXIF %s: status %d, orientation %d", broken[i].what, st, o);
        if (st == LIIF_OK)
            liif_png_free(&img);
    }
    liif_png_free(&ref);
    unlink(path_in("o1.jpg"));
    unlink(path_in("o.jpg"));
    unlink(path_in("bad-exif.jpg"));
}

/* ------------------------------------------------------------ failures */

/* The call failed with status want, one line naming the file and containing `words`. */
static void expect_error(liif_status st, liif_status want, const liif_error *err, const char *file, const char *words)
{
    CHECK(st == want, "%s: status %d, want %d (%s)", file, st, want, err->msg);
    CHECK(strstr(err->msg, file) && strstr(err->msg, words) && !strchr(err->msg, '\n'), "%s: message '%s' lacks '%s'",
          file, err->msg, words);
}

static void reading_errors(void)
{
    liif_png img;
    liif_error err;
    unsigned long n;
    const tj_layout rgb = {3, 0, NULL, 0, 0}, prog = {3, 1, NULL, 0, 0}, cmyk = {4, 0, NULL, 0, 0},
                    gray = {1, 0, NULL, 0, 0};
    unsigned char *buf = tj_encode_ex(256, 192, 90, stored, &rgb, &n);
    tj_save(path_in("half.jpg"), buf, n * 3 / 4); /* cut in the image data: libjpeg would pad it with grey */
    expect_error(liif_image_read(path_in("half.jpg"), &img, NULL, NULL, &err), LIIF_ERR_FORMAT, &err, "half.jpg",
                 "corrupt or truncated JPEG data");
    /* the header claims 20000x20000 of a few hundred bytes */
    /* SOF0: FF C0, length, precision, height, width */
    for (unsigned long i = 2; i + 9 < n; i++)
        if (buf[i] == 0xff && buf[i + 1] == 0xc0) {
            buf[i + 5] = 20000 >> 8, buf[i + 6] = 20000 & 0xff, buf[i + 7] = 20000 >> 8, buf[i + 8] = 20000 & 0xff;
            break;
        }
    tj_save(path_in("liar.jpg"), buf, n);
    expect_error(liif_image_read(path_in("liar.jpg"), &img, NULL, NULL, &err), LIIF_ERR_FORMAT, &err, "liar.jpg",
                 "a 20000x20000 image cannot come from");
    free(buf);
    buf = tj_encode_ex(16, 16, 90, stored, &cmyk, &n);
    tj_save(path_in("cmyk.jpg"), buf, n);
    free(buf);
    expect_error(liif_image_read(path_in("cmyk.jpg"), &img, NULL, NULL, &err), LIIF_ERR_FORMAT, &err, "cmyk.jpg",
                 "CMYK");
    tj_save(path_in("text.jpg"), (const unsigned char *)"hello, not an image\n", 20);
    expect_error(liif_image_read(path_in("text.jpg"), &img, NULL, NULL, &err), LIIF_ERR_FORMAT, &err, "text.jpg",
                 "not a PNG, JPEG or WebP image");
    expect_error(liif_image_read(path_in("missing.jpg"), &img, NULL, NULL, &err), LIIF_ERR_IO, &err, "missing.jpg",
                 "");
    /* progressive and gray JPEGs read; gray stays one channel unless RGB is asked for */
    buf = tj_encode_ex(40, 30, 90, stored, &prog, &n);
    tj_save(path_in("prog.jpg"), buf, n);
    free(buf);
    liif_status st = liif_image_read(path_in("prog.jpg"), &img, NULL, NULL, &err);
    CHECK(st == LIIF_OK && img.w == 40 && img.h == 30 && img.channels == 3, "progressive: %s", err.msg);
    if (st == LIIF_OK)
        liif_png_free(&img);
    buf = tj_encode_ex(40, 30, 90, stored, &gray, &n);
    tj_save(path_in("gray.jpg"), buf, n);
    free(buf);
    st = liif_image_read(path_in("gray.jpg"), &img, NULL, NULL, &err);
    CHECK(st == LIIF_OK && img.channels == 1, "gray: %s", err.msg);
    if (st == LIIF_OK)
        liif_png_free(&img);
    int w, h, c;
    uint8_t *px8;
    st = liif_jpeg_read8(path_in("gray.jpg"), 1, &w, &h, &c, &px8, NULL, &err);
    CHECK(st == LIIF_OK && c == 3 && px8[0] == px8[1] && px8[1] == px8[2], "gray as RGB: %s", err.msg);
    if (st == LIIF_OK)
        free(px8);
    const char *names[] = {"half.jpg", "liar.jpg", "cmyk.jpg", "text.jpg", "prog.jpg", "gray.jpg"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        unlink(path_in(names[i]));
    printf("jpeg reading errors: truncated, lying header, CMYK, not an image, missing file\n");
}

static void writing_errors(void)
{
    liif_error err;
    liif_image_writer *wr;
    const char *p = path_in("w.jpg");
    expect_error(liif_image_writer_open(p, LIIF_IMAGE_JPEG, 8, 8, 4, 8, 90, NULL, NULL, &wr, &err), LIIF_ERR_ARG, &err, "w.jpg",
                 "no alpha");
    expect_error(liif_image_writer_open(p, LIIF_IMAGE_JPEG, 8, 8, 3, 16, 90, NULL, NULL, &wr, &err), LIIF_ERR_ARG, &err, "w.jpg",
                 "bit depth 16");
    expect_error(liif_image_writer_open(p, LIIF_IMAGE_JPEG, 8, 8, 3, 8, 0, NULL, NULL, &wr, &err), LIIF_ERR_ARG, &err, "w.jpg",
                 "quality 0");
    expect_error(liif_image_writer_open(p, LIIF_IMAGE_JPEG, 70000, 8, 3, 8, 90, NULL, NULL, &wr, &err), LIIF_ERR_ARG, &err,
                 "w.jpg", "65500");
    expect_error(liif_image_writer_open(path_in("no/such/dir/w.jpg"), LIIF_IMAGE_JPEG, 8, 8, 3, 8, 90, NULL, NULL, &wr, &err),
                 LIIF_ERR_IO, &err, "w.jpg", "cannot create temporary file");
    /* too few rows: finish fails, nothing is left and an existing file keeps its bytes */
    tj_save(p, (const unsigned char *)"old", 3);
    float row[8 * 3] = {0};
    liif_status st = liif_image_writer_open(p, LIIF_IMAGE_JPEG, 8, 8, 3, 8, 90, NULL, NULL, &wr, &err);
    CHECK(st == LIIF_OK, "open: %s", err.msg);
    if (st == LIIF_OK) {
        st = liif_image_writer_rows(wr, row, 1, 24, &err);
        CHECK(st == LIIF_OK, "one row: %s", err.msg);
        expect_error(liif_image_writer_finish(wr, &err), LIIF_ERR_ARG, &err, "w.jpg", "only 1 of 8 rows");
    }
    FILE *f = fopen(p, "rb");
    char old[8] = {0};
    CHECK(f && fread(old, 1, sizeof old, f) == 3 && !memcmp(old, "old", 3), "the existing file was touched");
    if (f)
        fclose(f);
    /* abort leaves only the old file */
    st = liif_image_writer_open(p, LIIF_IMAGE_JPEG, 8, 8, 3, 8, 90, NULL, NULL, &wr, &err);
    if (st == LIIF_OK)
        liif_image_writer_abort(wr);
    CHECK(files_in_dir() == 1, "%d files in the folder after a failed and an aborted write (want the old one)",
          files_in_dir());
    unlink(p);
    /* output names */
    static const struct {
        const char *name;
        int ok;
        liif_image_format fmt;
    } names[] = {{"a.png", 1, LIIF_IMAGE_PNG},   {"a.PNG", 1, LIIF_IMAGE_PNG},      {"out", 1, LIIF_IMAGE_PNG},
                 {"dir.v2/out", 1, LIIF_IMAGE_PNG}, {".hidden", 1, LIIF_IMAGE_PNG},  {"a.jpg", 1, LIIF_IMAGE_JPEG},
                 {"a.JPEG", 1, LIIF_IMAGE_JPEG}, {"x/a.jpe", 1, LIIF_IMAGE_JPEG},   {"a.jfif", 1, LIIF_IMAGE_JPEG},
                 {"a.tif", 0, LIIF_IMAGE_PNG},   {"a.WebP", 1, LIIF_IMAGE_WEBP},    {"a.jpg.txt", 0, LIIF_IMAGE_PNG},
                 {"a.webm", 0, LIIF_IMAGE_PNG}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        liif_image_format fmt;
        st = liif_image_format_for_name(names[i].name, &fmt, &err);
        CHECK((st == LIIF_OK) == names[i].ok && (!names[i].ok || fmt == names[i].fmt), "name %s: status %d, format %d",
              names[i].name, st, fmt);
        if (!names[i].ok)
            CHECK(strstr(err.msg, names[i].name) && strstr(err.msg, ".png, .jpg or .webp"), "name %s: '%s'", names[i].name,
                  err.msg);
    }
    printf("jpeg writing errors: alpha, 16 bits, quality, size, missing folder, too few rows, abort; output names\n");
}

/* ------------------------------------------------------------ ICC profiles */

/* Writes a w x h gray-ramp image of `channels` to path in fmt with the profile; whether it went in. */
static int write_with_icc(const char *path, liif_image_format fmt, int channels, const unsigned char *icc, size_t n)
{
    enum { W = 12, H = 9 };
    float px[W * H * 3];
    for (int i = 0; i < W * H * channels; i++) px[i] = (float)(i % 37) / 36.0f;
    liif_error err;
    liif_image_writer *wr;
    unsigned kept = 0;
    liif_image_meta meta = {.icc = (unsigned char *)icc, .icc_len = n};
    liif_status st = liif_image_writer_open(path, fmt, W, H, channels, 8, 90, &meta, &kept, &wr, &err);
    if (st == LIIF_OK && (st = liif_image_writer_rows(wr, px, H, (size_t)W * channels, &err)) == LIIF_OK)
        st = liif_image_writer_finish(wr, &err);
    else if (st == LIIF_OK)
        liif_image_writer_abort(wr);
    CHECK(st == LIIF_OK, "%s: %s", path, err.msg);
    return (kept & LIIF_META_ICC) != 0;
}

/* The profile read back from path equals icc (n bytes; n = 0: the file has none). */
static void expect_icc(const char *path, const unsigned char *icc, size_t n, const char *what)
{
    liif_png img;
    liif_error err;
    liif_status st = liif_image_read(path, &img, NULL, NULL, &err);
    CHECK(st == LIIF_OK, "%s: %s", what, err.msg);
    if (st != LIIF_OK)
        return;
    CHECK(img.meta.icc_len == n && (n == 0 ? img.meta.icc == NULL : img.meta.icc && memcmp(img.meta.icc, icc, n) == 0),
          "%s: profile of %zu bytes read back, want %zu", what, img.meta.icc_len, n);
    liif_png_free(&img);
}

static void icc_profiles(void)
{
    static unsigned char rgb[560], gray[560], big[150000], junk[200]; /* libpng reads no profile under ~200 bytes */
    tu_icc_profile(rgb, sizeof rgb, 0, 1);
    tu_icc_profile(gray, sizeof gray, 1, 2);
    tu_icc_profile(big, sizeof big, 0, 3); /* more than one APP2 marker holds (65519 bytes each) */
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (unsigned char)(i * 13 + 5);
    const char *png = path_in("icc.png"), *jpg = path_in("icc.jpg");
    CHECK(write_with_icc(png, LIIF_IMAGE_PNG, 3, rgb, sizeof rgb) == 1, "PNG: an RGB profile was left out");
    expect_icc(png, rgb, sizeof rgb, "PNG, RGB profile");
    CHECK(write_with_icc(png, LIIF_IMAGE_PNG, 1, gray, sizeof gray) == 1, "PNG: a gray profile was left out");
    expect_icc(png, gray, sizeof gray, "PNG, gray profile");
    CHECK(write_with_icc(jpg, LIIF_IMAGE_JPEG, 3, rgb, sizeof rgb) == 1, "JPEG: the profile was left out");
    expect_icc(jpg, rgb, sizeof rgb, "JPEG, RGB profile");
    CHECK(write_with_icc(jpg, LIIF_IMAGE_JPEG, 3, big, sizeof big) == 1, "JPEG: the 150 kB profile was left out");
    expect_icc(jpg, big, sizeof big, "JPEG, a profile over 3 APP2 markers");
    /* what libpng refuses is left out and the file is still written: junk, an RGB profile on a gray image */
    CHECK(write_with_icc(png, LIIF_IMAGE_PNG, 3, junk, sizeof junk) == 0, "PNG: a junk profile went in");
    expect_icc(png, NULL, 0, "PNG, junk profile left out");
    CHECK(write_with_icc(png, LIIF_IMAGE_PNG, 1, rgb, sizeof rgb) == 0, "PNG: an RGB profile went into a gray image");
    expect_icc(png, NULL, 0, "PNG, RGB profile on gray left out");
    CHECK(write_with_icc(png, LIIF_IMAGE_PNG, 3, NULL, 0) == 0, "PNG without a profile");
    expect_icc(png, NULL, 0, "PNG without a profile");
    /* a JPEG carries whatever it is given (libjpeg does not look inside), and reads back the same */
    CHECK(write_with_icc(jpg, LIIF_IMAGE_JPEG, 3, junk, sizeof junk) == 1, "JPEG: the junk profile was left out");
    expect_icc(jpg, junk, sizeof junk, "JPEG, junk profile");
    unlink(png);
    unlink(jpg);
    printf("icc profiles: PNG and JPEG carry them (RGB, gray, 150 kB over 3 markers); PNG leaves out what libpng "
           "refuses\n");
}

/* ------------------------------------------------------------ deblocking */

/* A 96x72 photo-like picture within 30..220 (no clamping at either end): a diagonal ramp, a disc with a sharp rim
 * and fine texture; its channels differ. */
static unsigned char photo(int x, int y, int c)
{
    double v = 60 + 0.8 * x + 0.5 * y + 12 * sin(x * 0.9 + c) * sin(y * 0.7);
    double dx = x - 50, dy = y - 34;
    if (dx * dx + dy * dy < 400) v += 60 - 20 * c;
    return (unsigned char)(v < 30 ? 30 : v > 220 ? 220 : v);
}

/* Fur-like texture over the whole range (the float and the integer IDCT part most on such detail). */
static unsigned char texture(int x, int y, int c)
{
    unsigned hsh = (unsigned)x * 73856093u ^ (unsigned)y * 19349663u ^ (unsigned)c * 83492791u;
    hsh = (hsh ^ (hsh >> 13)) * 0x5bd1e995u;
    double v = 128 + 100 * sin(x * 0.45 + c) * cos(y * 0.3) + (double)(hsh >> 24) - 128;
    return (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
}

static unsigned char photo_gray(int x, int y, int c)
{
    (void)c;
    return photo(x, y, 0);
}

static double psnr_to_photo(const liif_png *img)
{
    double se = 0;
    int c = img->channels;
    for (int y = 0; y < img->h; y++)
        for (int x = 0; x < img->w; x++)
            for (int k = 0; k < c; k++) {
                double d = img->px[((size_t)y * img->w + x) * c + k] * 255.0 - photo(x, y, k);
                se += d * d;
            }
    return 10 * log10(255.0 * 255.0 / (se / ((double)img->w * img->h * c)));
}

/* libjpeg's decompressor on the (test's own, well-formed) JPEG at path, its header read; the caller closes the file. */
static FILE *open_jpeg(const char *path, struct jpeg_decompress_struct *ci, struct jpeg_error_mgr *e)
{
    ci->err = jpeg_std_error(e);
    jpeg_create_decompress(ci);
    FILE *f = fopen(path, "rb");
    jpeg_stdio_src(ci, f);
    jpeg_read_header(ci, TRUE);
    return f;
}

/* The largest distance, in levels, of the luma's block DCT coefficients of img (gray) outside the intervals that
 * the quantised coefficients c of the JPEG at path stand for (0 when all are inside). With decoded (the 8-bit decode
 * img started from), the coefficients are those of the change img - decoded added to the plain decode c q: deblocking
 * adds its change to the 8-bit decode, whose own rounding (half a level a pixel) is not deblocking's to answer for. */
static double outside_intervals(const char *path, const liif_png *img, const liif_png *decoded)
{
    struct jpeg_decompress_struct ci;
    struct jpeg_error_mgr e;
    FILE *f = open_jpeg(path, &ci, &e);
    jvirt_barray_ptr *arrays = jpeg_read_coefficients(&ci);
    const jpeg_component_info *comp = &ci.comp_info[0];
    double worst = 0;
    for (int by = 0; by * 8 + 8 <= img->h; by++) { /* whole blocks: the padding is not in the image */
        JBLOCKARRAY row = (*ci.mem->access_virt_barray)((j_common_ptr)&ci, arrays[0], (JDIMENSION)by, 1, FALSE);
        for (int bx = 0; bx * 8 + 8 <= img->w; bx++)
            for (int v = 0; v < 8; v++)
                for (int u = 0; u < 8; u++) {
                    double q = comp->quant_table->quantval[v * 8 + u], c = row[0][bx][v * 8 + u];
                    double a = decoded ? c * q : 0;
                    for (int y = 0; y < 8; y++)
                        for (int x = 0; x < 8; x++) {
                            size_t i = (size_t)(by * 8 + y) * img->w + bx * 8 + x;
                            double sample = decoded ? (img->px[i] - decoded->px[i]) * 255.0 : img->px[i] * 255.0 - 128;
                            a += sample * (u ? 0.5 : sqrt(0.125)) * cos((2 * x + 1) * u * M_PI / 16) *
                                 (v ? 0.5 : sqrt(0.125)) * cos((2 * y + 1) * v * M_PI / 16);
                        }
                    double out = fmax((c - 0.5) * q - a, a - (c + 0.5) * q);
                    if (out > worst) worst = out;
                }
    }
    jpeg_finish_decompress(&ci);
    jpeg_destroy_decompress(&ci);
    fclose(f);
    return worst;
}

/* The JPEG at path as libjpeg's float IDCT decodes it (GIMP's loader does), 8-bit samples as floats in [0,1]. */
static float *decode_float_idct(const char *path, int *w, int *h, int *ch)
{
    struct jpeg_decompress_struct ci;
    struct jpeg_error_mgr e;
    FILE *f = open_jpeg(path, &ci, &e);
    ci.dct_method = JDCT_FLOAT;
    jpeg_start_decompress(&ci);
    *w = (int)ci.output_width, *h = (int)ci.output_height, *ch = ci.output_components;
    float *px = malloc((size_t)*w * *h * *ch * sizeof(float));
    JSAMPLE *row = malloc((size_t)*w * *ch);
    while (ci.output_scanline < ci.output_height) {
        size_t y = ci.output_scanline;
        jpeg_read_scanlines(&ci, &row, 1);
        for (size_t i = 0; i < (size_t)*w * *ch; i++) px[y * *w * *ch + i] = row[i] / 255.0f;
    }
    jpeg_finish_decompress(&ci);
    jpeg_destroy_decompress(&ci);
    fclose(f);
    free(row);
    return px;
}

static void deblocking(void)
{
    const int w = 96, h = 72;
    unsigned long n;
    liif_error err;
    int o, done;
    /* gray at quality 30: closer to the picture than the plain decode, and every coefficient still the file's */
    const tj_layout gray = {1, 0, NULL, 0, 0};
    unsigned char *buf = tj_encode_ex(w, h, 30, photo, &gray, &n);
    save("db-gray.jpg", buf, n);
    free(buf);
    liif_png g;
    if (liif_image_read(path_in("db-gray.jpg"), &g, NULL, &o, &err) != LIIF_OK) {
        CHECK(0, "gray: %s", err.msg);
        return;
    }
    liif_png g0 = g; /* the 8-bit decode, kept */
    g0.px = malloc((size_t)w * h * sizeof(float));
    memcpy(g0.px, g.px, (size_t)w * h * sizeof(float));
    double before = psnr_to_photo(&g);
    liif_status st = liif_jpeg_deblock(path_in("db-gray.jpg"), &g, o, 0, &done, &err);
    CHECK(st == LIIF_OK && done == 1, "gray deblock: %s, done %d", st ? err.msg : "ok", done);
    double after = psnr_to_photo(&g), outside = outside_intervals(path_in("db-gray.jpg"), &g, &g0),
           outside_8bit = outside_intervals(path_in("db-gray.jpg"), &g, NULL);
    printf("deblocking gray q30: PSNR %.3f -> %.3f dB; coefficients outside their intervals by %.5f levels (with the "
           "8-bit decode's own rounding: %.4f)\n", before, after, outside, outside_8bit);
    CHECK(after > before + 0.2, "gray q30: deblocked PSNR %.3f, plain %.3f: want at least 0.2 dB more", after, before);
    CHECK(outside < 0.01, "a deblocked coefficient is %.5f levels outside what the file says", outside);

    /* the same file with EXIF orientation 6: the deblocked picture is the upright one turned, to the bit */
    unsigned char exif[64];
    tj_layout turned = {1, 0, exif, tj_exif_orientation(exif, 6, 1), 0};
    buf = tj_encode_ex(w, h, 30, photo, &turned, &n);
    save("db-o6.jpg", buf, n);
    free(buf);
    liif_png t;
    if (liif_image_read(path_in("db-o6.jpg"), &t, NULL, &o, &err) == LIIF_OK) {
        st = liif_jpeg_deblock(path_in("db-o6.jpg"), &t, o, 0, &done, &err);
        int bad = 0;
        for (int y = 0; st == LIIF_OK && y < t.h; y++)
            for (int x = 0; x < t.w; x++) {
                int sx, sy;
                source_of(6, x, y, w, h, &sx, &sy);
                bad += t.px[(size_t)y * t.w + x] != g.px[(size_t)sy * w + sx];
            }
        CHECK(st == LIIF_OK && o == 6 && t.w == h && bad == 0, "orientation 6: %s, %d pixels not the upright ones turned",
              st ? err.msg : "ok", bad);
        liif_png_free(&t);
    } else
        CHECK(0, "orientation 6: %s", err.msg);

    /* pixels another decoder made (an editor's layer), here the plain decode: found to be the file's and deblocked to
     * the bit as liif_jpeg_deblock does, upright or as stored; a level off here and there still counts, an edit or a
     * shift does not, and then nothing changes */
    {
        size_t np = (size_t)w * h;
        liif_png p = g0, u = g0, e = g0;
        p.px = malloc(np * sizeof(float));
        u.px = malloc(np * sizeof(float));
        e.px = malloc(np * sizeof(float));
        liif_jpeg_match m;
        memcpy(p.px, g0.px, np * sizeof(float));
        st = liif_jpeg_deblock_pixels(path_in("db-gray.jpg"), &p, 0, &m, &err);
        CHECK(st == LIIF_OK && m == LIIF_JPEG_DEBLOCKED && !memcmp(p.px, g.px, np * sizeof(float)),
              "the plain decode as a layer: %s, match %d, %s", st ? err.msg : "ok", (int)m,
              memcmp(p.px, g.px, np * sizeof(float)) ? "not liif_jpeg_deblock's result" : "same result");
        memcpy(p.px, g0.px, np * sizeof(float)); /* db-o6.jpg stores db-gray.jpg's pixels */
        p.bit_depth = 16;
        st = liif_jpeg_deblock_pixels(path_in("db-o6.jpg"), &p, 0, &m, &err);
        CHECK(st == LIIF_OK && m == LIIF_JPEG_DEBLOCKED && !memcmp(p.px, g.px, np * sizeof(float)),
              "a layer as orientation 6 stores it: %s, match %d", st ? err.msg : "ok", (int)m);
        u.w = h, u.h = w;
        for (int y = 0; y < u.h; y++)
            for (int x = 0; x < u.w; x++) {
                int sx, sy;
                source_of(6, x, y, w, h, &sx, &sy);
                u.px[(size_t)y * u.w + x] = g0.px[(size_t)sy * w + sx];
            }
        st = liif_jpeg_deblock_pixels(path_in("db-o6.jpg"), &u, 0, &m, &err);
        int bad = 0;
        for (int y = 0; y < u.h; y++)
            for (int x = 0; x < u.w; x++) {
                int sx, sy;
                source_of(6, x, y, w, h, &sx, &sy);
                bad += u.px[(size_t)y * u.w + x] != g.px[(size_t)sy * w + sx];
            }
        CHECK(st == LIIF_OK && m == LIIF_JPEG_DEBLOCKED && bad == 0,
              "a layer turned upright (orientation 6): %s, match %d, %d pixels not the deblocked ones turned",
              st ? err.msg : "ok", (int)m, bad);
        /* another decoder's rounding: every fifth sample a level off */
        memcpy(p.px, g0.px, np * sizeof(float));
        for (size_t i = 0; i < np; i += 5) p.px[i] += p.px[i] < 0.5f ? 1 / 255.0f : -1 / 255.0f;
        st = liif_jpeg_deblock_pixels(path_in("db-gray.jpg"), &p, 0, &m, &err);
        CHECK(st == LIIF_OK && m == LIIF_JPEG_DEBLOCKED, "a level off in a fifth of the samples: %s, match %d",
              st ? err.msg : "ok", (int)m);
        /* an edit (one pixel 10 levels off), everything a level brighter, a gray file as RGB: untouched */
        for (int t = 0; t < 3; t++) {
            memcpy(p.px, g0.px, np * sizeof(float));
            p.channels = 1, p.w = w, p.h = h;
            if (t == 0)
                p.px[w * 7 + 9] += p.px[w * 7 + 9] < 0.5f ? 10 / 255.0f : -10 / 255.0f;
            else if (t == 1)
                for (size_t i = 0; i < np; i++) p.px[i] = fminf(1.0f, p.px[i] + 1 / 255.0f);
            else
                p.channels = 3, p.w = w / 3; /* the same number of samples, as RGB */
            memcpy(e.px, p.px, np * sizeof(float));
            st = liif_jpeg_deblock_pixels(path_in("db-gray.jpg"), &p, 0, &m, &err);
            CHECK(st == LIIF_OK && m == LIIF_JPEG_NOT_THE_FILE && !memcmp(p.px, e.px, np * sizeof(float)),
                  "%s: %s, match %d", t == 0 ? "an edited pixel" : t == 1 ? "a level brighter" : "gray as RGB",
                  st ? err.msg : "ok", (int)m);
        }
        free(p.px);
        free(u.px);
        free(e.px);
    }
    free(g0.px);

    /* another file under the same name (a different size): refused, the image untouched */
    const tj_layout rgb = {3, 0, NULL, 0, 0};
    buf = tj_encode_ex(w / 2, h, 30, photo, &rgb, &n);
    save("db-other.jpg", buf, n);
    free(buf);
    float first = g.px[0];
    st = liif_jpeg_deblock(path_in("db-other.jpg"), &g, 1, 0, &done, &err);
    CHECK(st == LIIF_ERR_FORMAT && strstr(err.msg, "db-other.jpg") && strstr(err.msg, "changed") && g.px[0] == first &&
              !done, "a file of another size: %s", st ? err.msg : "accepted");
    /* not a JPEG */
    FILE *f = fopen(path_in("db-not.jpg"), "wb");
    fputs("not a jpeg at all", f);
    fclose(f);
    st = liif_jpeg_deblock(path_in("db-not.jpg"), &g, 1, 0, &done, &err);
    CHECK(st == LIIF_ERR_FORMAT && strstr(err.msg, "db-not.jpg"), "not a JPEG: %s", st ? err.msg : "accepted");
    liif_jpeg_match m;
    st = liif_jpeg_deblock_pixels(path_in("db-not.jpg"), &g, 0, &m, &err);
    CHECK(st == LIIF_ERR_FORMAT && m == LIIF_JPEG_NOT_THE_FILE && strstr(err.msg, "db-not.jpg"),
          "not a JPEG, for a layer: %s", st ? err.msg : "accepted");
    liif_png_free(&g);

    /* colour, 4:2:0 (libjpeg's default): closer to the picture, luma and chroma (at half resolution) deblocked */
    buf = tj_encode_ex(w, h, 30, photo, &rgb, &n);
    save("db-rgb.jpg", buf, n);
    free(buf);
    liif_png c;
    if (liif_image_read(path_in("db-rgb.jpg"), &c, NULL, &o, &err) != LIIF_OK) {
        CHECK(0, "rgb: %s", err.msg);
        return; /* the files stay in the test's folder, named in the failure */
    }
    before = psnr_to_photo(&c);
    /* GIMP's decode (the float IDCT), a few levels from libjpeg's default one in places (on fine texture): the file's
     * too */
    {
        int fw, fh, fc;
        buf = tj_encode_ex(w, h, 50, texture, &rgb, &n);
        save("db-float.jpg", buf, n);
        free(buf);
        liif_png c10;
        if (liif_image_read(path_in("db-float.jpg"), &c10, NULL, &o, &err) != LIIF_OK)
            CHECK(0, "texture: %s", err.msg);
        float *fpx = decode_float_idct(path_in("db-float.jpg"), &fw, &fh, &fc);
        size_t ns = (size_t)w * h * 3;
        double apart = 0;
        for (size_t i = 0; fw == w && fh == h && fc == 3 && i < ns; i++)
            apart = fmax(apart, fabs(fpx[i] - c10.px[i]) * 255);
        liif_png_free(&c10);
        liif_png fl = c;
        fl.px = fpx;
        liif_jpeg_match m;
        float *plain = malloc(ns * sizeof(float));
        memcpy(plain, fpx, ns * sizeof(float));
        st = liif_jpeg_deblock_pixels(path_in("db-float.jpg"), &fl, 0, &m, &err);
        printf("GIMP's decode (float IDCT) of a texture at quality 50: up to %.0f levels from libjpeg's default\n", apart);
        CHECK(st == LIIF_OK && m == LIIF_JPEG_DEBLOCKED && memcmp(plain, fpx, ns * sizeof(float)) != 0 && apart > 2.5,
              "the float IDCT's decode (%.0f levels apart, want more than 2.5 for this check to count) as a layer: %s, "
              "match %d", apart, st ? err.msg : "ok", (int)m);
        free(plain);
        free(fpx);
    }
    st = liif_jpeg_deblock(path_in("db-rgb.jpg"), &c, o, 0, &done, &err);
    after = psnr_to_photo(&c);
    printf("deblocking RGB q30: PSNR %.3f -> %.3f dB\n", before, after);
    CHECK(st == LIIF_OK && done == 1 && after > before + 0.3, "rgb: %s, PSNR %.3f -> %.3f", st ? err.msg : "ok",
          before, after);
    liif_png_free(&c);
    /* a JPEG stored as RGB (no YCbCr): not taken, left as decoded */
    buf = tj_encode_cs(w, h, 30, photo, &rgb, 1, &n);
    save("db-rgbstore.jpg", buf, n);
    free(buf);
    if (liif_image_read(path_in("db-rgbstore.jpg"), &c, NULL, &o, &err) == LIIF_OK) {
        liif_png c0;
        liif_image_read(path_in("db-rgbstore.jpg"), &c0, NULL, &o, &err);
        st = liif_jpeg_deblock(path_in("db-rgbstore.jpg"), &c, o, 0, &done, &err);
        CHECK(st == LIIF_OK && done == 0 && !memcmp(c.px, c0.px, (size_t)w * h * 3 * sizeof(float)),
              "a JPEG stored as RGB: %s, done %d", st ? err.msg : "ok", done);
        st = liif_jpeg_deblock_pixels(path_in("db-rgbstore.jpg"), &c, 0, &m, &err);
        CHECK(st == LIIF_OK && m == LIIF_JPEG_LAYOUT && !memcmp(c.px, c0.px, (size_t)w * h * 3 * sizeof(float)),
              "a JPEG stored as RGB, for a layer: %s, match %d", st ? err.msg : "ok", (int)m);
        liif_png_free(&c);
        liif_png_free(&c0);
    } else
        CHECK(0, "stored RGB: %s", err.msg);
    /* a gray picture stored in colour: its chroma is flat, so deblocking adds no colour */
    buf = tj_encode_ex(w, h, 30, photo_gray, &rgb, &n);
    save("db-neutral.jpg", buf, n);
    free(buf);
    if (liif_image_read(path_in("db-neutral.jpg"), &c, NULL, &o, &err) == LIIF_OK) {
        st = liif_jpeg_deblock(path_in("db-neutral.jpg"), &c, o, 0, &done, &err);
        double tint = 0;
        for (size_t i = 0; i < (size_t)w * h; i++)
            tint = fmax(tint, fmax(fabsf(c.px[i * 3] - c.px[i * 3 + 1]), fabsf(c.px[i * 3] - c.px[i * 3 + 2])));
        CHECK(st == LIIF_OK && done == 1 && tint == 0, "a gray picture in colour: %s, R, G, B apart by %g",
              st ? err.msg : "ok", tint);
        liif_png_free(&c);
    } else
        CHECK(0, "neutral: %s", err.msg);
    /* the writer's 4:2:0 (liif eval --lr-jpeg-420): luma's blocks twice as dense both ways, read back close to the
     * picture, and deblocked */
    {
        float *src = malloc((size_t)w * h * 3 * sizeof(float));
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int k = 0; k < 3; k++) src[((size_t)y * w + x) * 3 + k] = photo(x, y, k) / 255.0f;
        liif_jpeg_writer *jw;
        st = liif_jpeg_writer_open_420(path_in("db-420.jpg"), w, h, 3, 90, &jw, &err);
        if (st == LIIF_OK) {
            st = liif_jpeg_writer_rows(jw, src, h, (size_t)w * 3, &err);
            st = st == LIIF_OK ? liif_jpeg_writer_finish(jw, &err) : (liif_jpeg_writer_abort(jw), st);
        }
        free(src);
        struct jpeg_decompress_struct ci;
        struct jpeg_error_mgr e;
        int sampling[6] = {0};
        if (st == LIIF_OK) {
            FILE *f = open_jpeg(path_in("db-420.jpg"), &ci, &e);
            for (int k = 0; k < 3 && k < ci.num_components; k++)
                sampling[2 * k] = ci.comp_info[k].h_samp_factor, sampling[2 * k + 1] = ci.comp_info[k].v_samp_factor;
            jpeg_destroy_decompress(&ci);
            fclose(f);
        }
        CHECK(st == LIIF_OK && sampling[0] == 2 && sampling[1] == 2 && sampling[2] == 1 && sampling[3] == 1 &&
                  sampling[4] == 1 && sampling[5] == 1,
              "4:2:0 writer: %s, sampling %dx%d %dx%d %dx%d", st ? err.msg : "ok", sampling[0], sampling[1], sampling[2],
              sampling[3], sampling[4], sampling[5]);
        if (st == LIIF_OK && liif_image_read(path_in("db-420.jpg"), &c, NULL, &o, &err) == LIIF_OK) {
            double p420 = psnr_to_photo(&c);
            st = liif_jpeg_deblock(path_in("db-420.jpg"), &c, o, 0, &done, &err);
            printf("writer at 4:2:0, quality 90: PSNR %.2f dB read back, %.2f deblocked\n", p420, psnr_to_photo(&c));
            CHECK(p420 > 30 && st == LIIF_OK && done == 1, "4:2:0 read back: PSNR %.2f, deblock %s, done %d", p420,
                  st ? err.msg : "ok", done);
            liif_png_free(&c);
        }
    }
    const char *names[] = {"db-gray.jpg", "db-o6.jpg", "db-other.jpg", "db-not.jpg", "db-rgb.jpg", "db-neutral.jpg",
                           "db-rgbstore.jpg", "db-float.jpg", "db-420.jpg"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) unlink(path_in(names[i]));
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    round_trip(3, 100, 41, 4.5); /* YCbCr's rounding: a few levels even at quality 100 */
    round_trip(3, 95, 7, 5.0);
    round_trip(1, 100, 5, 2.0);
    orientations();
    reading_errors();
    writing_errors();
    icc_profiles();
    deblocking();
    rmdir(dir);
    return tu_finish("jpeg");
}
