/* test_meta.c: what travels from the input file to the output (core/io/exif.c, meta.h, the PNG and JPEG readers and
 * writers): EXIF edits in both byte orders against tests/exif_util.h's separate reader, every cut and crafted offset
 * of a block (the sanitizer build catches a read or write outside it), and round trips through files of EXIF, the
 * density and PNG's colour chunks, with what each format leaves out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exif.h"
#include "exif_util.h"
#include "image.h"
#include "jpeg_util.h"
#include "testutil.h"
#include "tmpdir_util.h"

/* ------------------------------------------------------------ the EXIF block */

static void exif_edits(void)
{
    for (int little = 0; little <= 1; little++)
        for (int long_dims = 0; long_dims <= 1; long_dims++) {
            unsigned char t[160];
            tx_spec s = {little, 6, 640, 480, long_dims, 1};
            size_t n = tx_build(t, &s);
            const char *order = little ? "II" : "MM";
            CHECK(liif_exif_check(t, n), "%s: a good block fails the check", order);
            CHECK(liif_exif_orientation(t, n) == 6, "%s: orientation %d, want 6", order, liif_exif_orientation(t, n));

            uint8_t *out;
            size_t out_n;
            CHECK(liif_exif_for_image(t, n, 1920, 1440, 0, &out, &out_n) == 0 && out_n == n, "%s: for_image failed",
                  order);
            tx_info x = tx_read(out, out_n);
            CHECK(x.w == 1920 && x.h == 1440 && x.dims_type == (long_dims ? 4 : 3),
                  "%s: size %ldx%ld type %d, want 1920x1440 type %d", order, x.w, x.h, x.dims_type, long_dims ? 4 : 3);
            CHECK(x.orientation == 6 && x.ifd1 == 130 && x.make_ok && x.date_ok,
                  "%s: not turned, yet orientation %d, IFD1 %lu, make %d, date %d", order, x.orientation, x.ifd1,
                  x.make_ok, x.date_ok);
            free(out);

            /* turned upright: orientation 1, no thumbnail; a SHORT that cannot hold the size becomes a LONG */
            CHECK(liif_exif_for_image(t, n, 70000, 65536, 1, &out, &out_n) == 0, "%s: for_image (turned) failed",
                  order);
            x = tx_read(out, out_n);
            CHECK(x.orientation == 1 && x.ifd1 == 0 && x.w == 70000 && x.h == 65536 && x.dims_type == 4 && x.make_ok &&
                      x.date_ok,
                  "%s turned: orientation %d, IFD1 %lu, %ldx%ld type %d", order, x.orientation, x.ifd1, x.w, x.h,
                  x.dims_type);
            CHECK(memcmp(out + 50, t + 50, 18) == 0 && memcmp(out + 110, t + 110, 20) == 0,
                  "%s: the strings changed", order);
            free(out);
        }
    for (int o = 1; o <= 8; o++) {
        unsigned char t[160];
        tx_spec s = {o & 1, o, 4, 4, 0, 0};
        size_t n = tx_build(t, &s);
        CHECK(liif_exif_orientation(t, n) == o, "orientation %d read as %d", o, liif_exif_orientation(t, n));
    }
    printf("exif: sizes set (SHORT, LONG, SHORT made LONG), orientation 1 and no thumbnail when turned, in both "
           "byte orders\n");
}

/* Every cut of a block and crafted offsets: refused or edited inside the block, never a read or write outside. */
static void exif_hostile(void)
{
    unsigned char t[160];
    tx_spec s = {1, 3, 10, 10, 0, 1};
    size_t n = tx_build(t, &s);
    int passing = 0;
    for (size_t k = 0; k <= n; k++) {
        uint8_t *cut = malloc(k ? k : 1), *out;
        size_t out_n;
        memcpy(cut, t, k);
        int ok = liif_exif_check(cut, k);
        passing += ok;
        /* IFD0 (3 entries and the next-IFD offset) ends at byte 50 */
        CHECK(ok == (k >= 50), "a block cut to %zu bytes %s the check", k, ok ? "passes" : "fails");
        int o = liif_exif_orientation(cut, k);
        CHECK(o == (k >= 50 ? 3 : 1), "cut to %zu: orientation %d", k, o);
        int r = liif_exif_for_image(cut, k, 99, 77, 1, &out, &out_n);
        CHECK((r == 0) == ok, "cut to %zu: for_image %d", k, r);
        if (r == 0) {
            tx_info x = tx_read(out, out_n);
            /* the Exif IFD (68..110) whole: the size is set; cut: left as it was */
            CHECK(k >= 110 ? x.w == 99 && x.h == 77 : 1, "cut to %zu: size %ldx%ld", k, x.w, x.h);
            CHECK(x.orientation == 1 && x.ifd1 == 0, "cut to %zu: orientation %d, IFD1 %lu", k, x.orientation, x.ifd1);
            free(out);
        }
        free(cut);
    }
    static const struct {
        const char *what;
        size_t at, len;
        uint32_t value;
        int check;
    } crafted[] = {
        {"IFD0 at 0xfffffff0", 4, 4, 0xfffffff0u, 0},
        {"IFD0 at 4 (inside the header)", 4, 4, 4, 0},
        {"IFD0 at the last byte", 4, 4, 147, 0},
        {"65535 entries", 8, 2, 0xffff, 0},
        {"Exif IFD at 0xfffffffe", 42, 4, 0xfffffffeu, 1},
        {"Exif IFD at the end", 42, 4, 128, 1},
        {"Exif IFD is IFD0", 42, 4, 8, 1},
        {"Exif IFD with 65535 entries", 68, 2, 0xffff, 1},
        {"Exif IFD pointer counts 2", 38, 4, 2, 1},
        {"orientation counts 0", 26, 4, 0, 1},
        {"orientation is a LONG", 24, 2, 4, 1},
        {"bad magic", 2, 2, 43, 0},
    };
    for (size_t i = 0; i < sizeof crafted / sizeof crafted[0]; i++) {
        unsigned char c[160];
        memcpy(c, t, n);
        tx_put(c + crafted[i].at, crafted[i].value, (int)crafted[i].len, 1);
        uint8_t *copy = malloc(n), *out;
        memcpy(copy, c, n);
        size_t out_n;
        int ok = liif_exif_check(copy, n), o = liif_exif_orientation(copy, n);
        int r = liif_exif_for_image(copy, n, 5, 6, 1, &out, &out_n);
        CHECK(ok == crafted[i].check && (r == 0) == ok, "%s: check %d, for_image %d", crafted[i].what, ok, r);
        CHECK(o >= 1 && o <= 8, "%s: orientation %d", crafted[i].what, o);
        if (r == 0) {
            tx_info x = tx_read(out, out_n);
            CHECK(x.ifd1 == 0, "%s: IFD1 still linked", crafted[i].what);
            free(out);
        }
        free(copy);
    }
    printf("exif: %zu cuts (%d pass the check) and %zu crafted blocks handled inside their bytes\n", n + 1, passing,
           sizeof crafted / sizeof crafted[0]);
}

/* ------------------------------------------------------------ through files */

enum { W = 12, H = 9 };

/* Writes a W x H RGB image with meta to path (format by name); what went in. */
static unsigned write_with(const char *path, const liif_image_meta *meta)
{
    float px[W * H * 3];
    for (int i = 0; i < W * H * 3; i++) px[i] = (float)(i % 29) / 28.0f;
    liif_image_format fmt;
    liif_error err;
    liif_image_writer *wr = NULL;
    unsigned kept = 0xdead;
    liif_status st = liif_image_format_for_name(path, &fmt, &err);
    if (st == LIIF_OK)
        st = liif_image_writer_open(path, fmt, W, H, 3, 8, 90, meta, &kept, &wr, &err);
    if (st == LIIF_OK && (st = liif_image_writer_rows(wr, px, H, W * 3, &err)) == LIIF_OK)
        st = liif_image_writer_finish(wr, &err);
    else if (st == LIIF_OK)
        liif_image_writer_abort(wr);
    CHECK(st == LIIF_OK, "%s: %s", path, err.msg);
    return kept;
}

static int read_back(const char *path, liif_png *img)
{
    liif_error err;
    liif_status st = liif_image_read(path, img, NULL, NULL, &err);
    CHECK(st == LIIF_OK, "%s: %s", path, err.msg);
    return st == LIIF_OK;
}

/* The file's EXIF is the block for a W x H image (liif_exif_for_image, untouched otherwise). */
static void expect_exif(const liif_png *img, const uint8_t *t, size_t n, const char *what)
{
    uint8_t *want;
    size_t want_n;
    if (liif_exif_for_image(t, n, W, H, 0, &want, &want_n) != 0)
        return;
    CHECK(img->meta.exif_len == want_n && img->meta.exif && !memcmp(img->meta.exif, want, want_n),
          "%s: EXIF of %zu bytes read back, want %zu", what, img->meta.exif_len, want_n);
    tx_info x = tx_read(img->meta.exif, img->meta.exif_len);
    CHECK(x.w == W && x.h == H && x.make_ok && x.date_ok, "%s: EXIF says %ldx%ld, make %d, date %d", what, x.w, x.h,
          x.make_ok, x.date_ok);
    free(want);
}

static void round_trips(void)
{
    unsigned char t[160];
    tx_spec s = {0, 1, 3000, 2000, 0, 1};
    size_t n = tx_build(t, &s);
    liif_image_meta m = {.exif = t, .exif_len = n, .density_unit = LIIF_DENSITY_PER_METRE, .density_x = 11811,
                         .density_y = 11811, .gamma = 100000, .has_chrm = 1,
                         .chrm = {31270, 32900, 70800, 29200, 17000, 79700, 13100, 4600}}; /* Rec.2020 primaries */
    const char *png = path_in("m.png"), *jpg = path_in("m.jpg");
    liif_png img;

    unsigned kept = write_with(png, &m);
    CHECK(kept == (LIIF_META_EXIF | LIIF_META_DENSITY | LIIF_META_COLOUR), "PNG kept %#x", kept);
    if (read_back(png, &img)) {
        expect_exif(&img, t, n, "PNG");
        CHECK(img.meta.density_unit == LIIF_DENSITY_PER_METRE && img.meta.density_x == 11811 &&
                  img.meta.density_y == 11811,
              "PNG density %d %u %u", img.meta.density_unit, img.meta.density_x, img.meta.density_y);
        CHECK(img.meta.gamma == 100000 && img.meta.has_chrm && !memcmp(img.meta.chrm, m.chrm, sizeof m.chrm) &&
                  !img.meta.srgb,
              "PNG colour: gamma %u, cHRM %d, sRGB %d", img.meta.gamma, img.meta.has_chrm, img.meta.srgb);
        liif_png_free(&img);
    }

    kept = write_with(jpg, &m);
    CHECK(kept == (LIIF_META_EXIF | LIIF_META_DENSITY), "JPEG kept %#x (no colour chunks in a JPEG)", kept);
    if (read_back(jpg, &img)) {
        expect_exif(&img, t, n, "JPEG");
        CHECK(img.meta.density_unit == LIIF_DENSITY_PER_METRE && img.meta.density_x == 11811 &&
                  img.meta.density_y == 11811,
              "JPEG density %d %u %u (300 dpi there and back)", img.meta.density_unit, img.meta.density_x,
              img.meta.density_y);
        CHECK(!img.meta.gamma && !img.meta.has_chrm && !img.meta.srgb, "JPEG: colour chunks read back");
        liif_png_free(&img);
    }

    /* sRGB alone in a PNG; a profile wins over colour chunks */
    liif_image_meta srgb = {.srgb = 1 + 2};
    CHECK(write_with(png, &srgb) == LIIF_META_COLOUR, "PNG sRGB not kept");
    if (read_back(png, &img)) {
        CHECK(img.meta.srgb == 3, "PNG sRGB intent read back as %d", img.meta.srgb - 1);
        liif_png_free(&img);
    }

    /* densities: a ratio, and one too fine for 16-bit dots per inch (written per cm) */
    liif_image_meta aspect = {.density_unit = LIIF_DENSITY_ASPECT, .density_x = 3, .density_y = 2};
    liif_image_meta fine = {.density_unit = LIIF_DENSITY_PER_METRE, .density_x = 3000000, .density_y = 1500000};
    const liif_image_meta *dens[] = {&aspect, &fine};
    for (int i = 0; i < 2; i++)
        for (int f = 0; f < 2; f++) {
            const char *p = f ? jpg : png;
            CHECK(write_with(p, dens[i]) == LIIF_META_DENSITY, "%s: density %d not kept", p, i);
            if (read_back(p, &img)) {
                CHECK(img.meta.density_unit == dens[i]->density_unit && img.meta.density_x == dens[i]->density_x &&
                          img.meta.density_y == dens[i]->density_y,
                      "%s: density %d %u %u, want %d %u %u", p, img.meta.density_unit, img.meta.density_x,
                      img.meta.density_y, dens[i]->density_unit, dens[i]->density_x, dens[i]->density_y);
                liif_png_free(&img);
            }
        }

    /* an EXIF block larger than a JPEG marker holds: left out of a JPEG (the file still written), kept in a PNG */
    size_t big_n = LIIF_EXIF_JPEG_MAX + 1;
    unsigned char *big = calloc(1, big_n);
    memcpy(big, t, n);
    liif_image_meta bm = {.exif = big, .exif_len = big_n};
    CHECK(write_with(jpg, &bm) == 0, "JPEG: a %zu-byte EXIF went in", big_n);
    if (read_back(jpg, &img)) {
        CHECK(img.meta.exif == NULL, "JPEG: EXIF read back");
        liif_png_free(&img);
    }
    CHECK(write_with(png, &bm) == LIIF_META_EXIF, "PNG: a %zu-byte EXIF was left out", big_n);
    if (read_back(png, &img)) {
        CHECK(img.meta.exif_len == big_n, "PNG: EXIF of %zu bytes read back, want %zu", img.meta.exif_len, big_n);
        liif_png_free(&img);
    }
    free(big);
    CHECK(write_with(png, NULL) == 0 && write_with(jpg, NULL) == 0, "nothing to keep, yet something kept");
    unlink(png);
    unlink(jpg);
    printf("round trips: EXIF, density (per metre, ratio, per cm) and colour chunks; a JPEG leaves out colour chunks "
           "and EXIF over %zu bytes\n", LIIF_EXIF_JPEG_MAX);
}

static unsigned char pattern(int x, int y, int c) { return (unsigned char)(x * 7 + y * 3 + c * 50); }

/* A camera JPEG stored on its side (orientation 6): read upright, its EXIF says so (orientation 1, no thumbnail, the
 * upright size); written again, the output's EXIF has the output's size. */
static void jpeg_turned(void)
{
    unsigned char app1[6 + 160] = "Exif";
    tx_spec s = {1, 6, 16, 10, 0, 1};
    tj_layout l = {3, 0, app1, 6 + (unsigned)tx_build(app1 + 6, &s), 72};
    unsigned long n;
    unsigned char *j = tj_encode_ex(16, 10, 90, pattern, &l, &n);
    CHECK(tj_save(path_in("side.jpg"), j, n) == 0, "cannot write side.jpg");
    free(j);
    liif_png img;
    liif_error err;
    int o = 0;
    liif_status st = liif_image_read(path_in("side.jpg"), &img, NULL, &o, &err);
    CHECK(st == LIIF_OK, "side.jpg: %s", err.msg);
    if (st != LIIF_OK)
        return;
    tx_info x = tx_read(img.meta.exif, img.meta.exif_len);
    CHECK(o == 6 && img.w == 10 && img.h == 16, "side.jpg read as %dx%d, orientation %d", img.w, img.h, o);
    CHECK(x.orientation == 1 && x.ifd1 == 0 && x.w == 10 && x.h == 16 && x.make_ok && x.date_ok,
          "side.jpg EXIF: orientation %d, IFD1 %lu, %ldx%ld", x.orientation, x.ifd1, x.w, x.h);
    CHECK(img.meta.density_unit == LIIF_DENSITY_PER_METRE && img.meta.density_x == 2835,
          "side.jpg density %d %u (72 dpi is 2835 per metre)", img.meta.density_unit, img.meta.density_x);
    unsigned kept = write_with(path_in("up.jpg"), &img.meta);
    liif_png_free(&img);
    CHECK(kept == (LIIF_META_EXIF | LIIF_META_DENSITY), "up.jpg kept %#x", kept);
    st = liif_image_read(path_in("up.jpg"), &img, NULL, &o, &err);
    CHECK(st == LIIF_OK && o == 1, "up.jpg: orientation %d (%s)", o, st == LIIF_OK ? "" : err.msg);
    if (st == LIIF_OK) {
        x = tx_read(img.meta.exif, img.meta.exif_len);
        CHECK(x.orientation == 1 && x.w == W && x.h == H, "up.jpg EXIF: orientation %d, %ldx%ld", x.orientation, x.w,
              x.h);
        liif_png_free(&img);
    }
    unlink(path_in("side.jpg"));
    unlink(path_in("up.jpg"));
    printf("jpeg turned: EXIF made upright on reading, sized on writing\n");
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    exif_edits();
    exif_hostile();
    round_trips();
    jpeg_turned();
    rmdir(dir);
    return tu_finish("test-meta");
}
