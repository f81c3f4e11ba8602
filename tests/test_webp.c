/* test_webp.c: WebP reading and writing (core/io/webp_image.c) through the PNG-or-JPEG-or-WebP layer: lossless round
 * trips to the bit (RGB, RGBA, gray stored as RGB), lossy ones within bounds, the ICC profile and EXIF (with JPEG's
 * "Exif" prefix too), and every failure: truncated files, a header that lies about the size, an animation, another
 * RIFF file, the writer's bad arguments; each one line naming the file, no file left behind. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <webp/encode.h>
#include <webp/mux.h>

#include "exif.h"
#include "exif_util.h"
#include "icc_util.h"
#include "image.h"
#include "testutil.h"
#include "tmpdir_util.h"

static int save(const char *name, const void *buf, size_t n)
{
    FILE *f = fopen(path_in(name), "wb");
    int bad = !f || fwrite(buf, 1, n, f) != n;
    if (f && fclose(f))
        bad = 1;
    return bad;
}

static float smooth(int x, int y, int c, int w, int h)
{
    if (c == 3) /* alpha: a ramp with a hard edge */
        return x < w / 3 ? 0.0f : (float)y / (h - 1);
    return (float)(0.1 + 0.8 * (c == 0 ? (double)x / (w - 1) : c == 1 ? (double)y / (h - 1) : 0.5 + 0.3 * sin(x * 0.2)));
}

/* Writes a w x h image of `channels` as path through the image writer; the status. */
static liif_status write_image(const char *path, int w, int h, int channels, int quality, const liif_image_meta *meta,
                               unsigned *kept, float **pixels, liif_error *err)
{
    float *px = malloc(sizeof(float) * w * h * channels);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < channels; c++)
                px[((size_t)y * w + x) * channels + c] = smooth(x, y, channels == 2 && c == 1 ? 3 : c, w, h);
    liif_image_writer *wr;
    liif_status st = liif_image_writer_open(path, LIIF_IMAGE_WEBP, w, h, channels, 8, quality, meta, kept, &wr, err);
    if (st == LIIF_OK && (st = liif_image_writer_rows(wr, px, h, (size_t)w * channels, err)) == LIIF_OK)
        st = liif_image_writer_finish(wr, err);
    else if (st == LIIF_OK)
        liif_image_writer_abort(wr);
    if (pixels)
        *pixels = px;
    else
        free(px);
    return st;
}

/* ------------------------------------------------------------ round trips */

static void round_trip(int channels, int quality, double max_tol, double mean_tol)
{
    enum { W = 61, H = 47 };
    const char *p = path_in("rt.webp");
    float *px;
    liif_error err;
    liif_status st = write_image(p, W, H, channels, quality, NULL, NULL, &px, &err);
    CHECK(st == LIIF_OK, "write %d channels q%d: %s", channels, quality, err.msg);
    liif_png img;
    liif_image_format fmt;
    st = liif_image_read(p, &img, &fmt, NULL, &err);
    CHECK(st == LIIF_OK, "read %d channels q%d: %s", channels, quality, err.msg);
    if (st != LIIF_OK) {
        free(px);
        return;
    }
    int want_c = channels == 2 || channels == 4 ? 4 : 3;
    CHECK(fmt == LIIF_IMAGE_WEBP && img.w == W && img.h == H && img.channels == want_c && img.bit_depth == 8,
          "q%d: read as format %d, %dx%d, %d channels, %d bits", quality, fmt, img.w, img.h, img.channels,
          img.bit_depth);
    double worst = 0, sum = 0;
    size_t n = 0;
    for (int i = 0; img.channels == want_c && i < W * H; i++)
        for (int c = 0; c < want_c; c++) {
            int from = channels <= 2 ? (c == 3 ? 1 : 0) : c; /* gray is stored as RGB */
            double want = round(px[(size_t)i * channels + from] * 255.0), got = round(img.px[(size_t)i * want_c + c] * 255.0);
            /* lossy WebP keeps alpha lossless; colour under fully transparent pixels is not kept */
            if (want_c == 4 && c < 3 && img.px[(size_t)i * 4 + 3] == 0.0f)
                continue;
            worst = fmax(worst, fabs(got - want));
            sum += fabs(got - want);
            n++;
        }
    double mean = n ? sum / n : INFINITY;
    printf("webp round trip %d channels, quality %3d: max %.2f mean %.3f levels (limits %.1f, %.2f)\n", channels,
           quality, worst, mean, max_tol, mean_tol);
    CHECK(worst <= max_tol && mean <= mean_tol, "q%d %d channels: max %.2f mean %.3f", quality, channels, worst, mean);
    liif_png_free(&img);
    free(px);
    unlink(p);
}

/* ------------------------------------------------------------ metadata */

static void metadata(void)
{
    static unsigned char icc[560];
    tu_icc_profile(icc, sizeof icc, 0, 5);
    unsigned char t[160];
    tx_spec s = {1, 1, 4000, 3000, 0, 1};
    liif_image_meta m = {.icc = icc, .icc_len = sizeof icc, .exif = t, .exif_len = tx_build(t, &s),
                         .density_unit = LIIF_DENSITY_PER_METRE, .density_x = 11811, .density_y = 11811};
    unsigned kept = 0;
    liif_error err;
    liif_status st = write_image(path_in("m.webp"), 20, 10, 3, 90, &m, &kept, NULL, &err);
    CHECK(st == LIIF_OK && kept == (LIIF_META_ICC | LIIF_META_EXIF), "write: %s, kept %#x (WebP has no density)",
          st == LIIF_OK ? "ok" : err.msg, kept);
    liif_png img;
    if ((st = liif_image_read(path_in("m.webp"), &img, NULL, NULL, &err)) == LIIF_OK) {
        CHECK(img.meta.icc_len == sizeof icc && !memcmp(img.meta.icc, icc, sizeof icc), "ICC profile of %zu bytes",
              img.meta.icc_len);
        tx_info x = tx_read(img.meta.exif, img.meta.exif_len);
        CHECK(img.meta.exif_len == m.exif_len && x.w == 20 && x.h == 10 && x.make_ok && x.date_ok && x.ifd1 == 130,
              "EXIF: %zu bytes, %ldx%ld, make %d, date %d, IFD1 %lu", img.meta.exif_len, x.w, x.h, x.make_ok,
              x.date_ok, x.ifd1);
        liif_png_free(&img);
    } else {
        CHECK(0, "read: %s", err.msg);
    }
    /* a file whose EXIF chunk keeps JPEG's "Exif\0\0" prefix (some writers do), and one of junk: dropped */
    for (int junk = 0; junk <= 1; junk++) {
        unsigned char pre[6 + 160] = "Exif";
        size_t n = 6 + tx_build(pre + 6, &s);
        if (junk)
            memset(pre + 6, 0x5a, 8);
        size_t size;
        FILE *f = fopen(path_in("m.webp"), "rb");
        static unsigned char file[1 << 16];
        size = f ? fread(file, 1, sizeof file, f) : 0;
        if (f)
            fclose(f);
        WebPData whole = {file, size}, chunk = {pre, n}, out = {NULL, 0};
        WebPMux *mux = WebPMuxCreate(&whole, 0);
        int ok = mux && WebPMuxSetChunk(mux, "EXIF", &chunk, 0) == WEBP_MUX_OK && WebPMuxAssemble(mux, &out) ==
                 WEBP_MUX_OK && save("pre.webp", out.bytes, out.size) == 0;
        WebPMuxDelete(mux);
        WebPDataClear(&out);
        CHECK(ok, "could not make pre.webp");
        if (ok && liif_image_read(path_in("pre.webp"), &img, NULL, NULL, &err) == LIIF_OK) {
            tx_info x = tx_read(img.meta.exif, img.meta.exif_len);
            if (junk)
                CHECK(img.meta.exif == NULL, "a junk EXIF chunk was kept");
            else
                CHECK(img.meta.exif_len == n - 6 && x.make_ok && x.w == 4000, "prefixed EXIF: %zu bytes, make %d, "
                      "width %ld", img.meta.exif_len, x.make_ok, x.w);
            liif_png_free(&img);
        } else if (ok) {
            CHECK(0, "pre.webp: %s", err.msg);
        }
    }
    unlink(path_in("m.webp"));
    unlink(path_in("pre.webp"));
    printf("webp metadata: ICC profile and EXIF (sized) through a file; a prefixed EXIF chunk read, a junk one "
           "dropped\n");
}

/* ------------------------------------------------------------ failures */

static void expect_error(liif_status st, liif_status want, const liif_error *err, const char *file, const char *words)
{
    CHECK(st == want, "%s: status %d, want %d (%s)", file, st, want, st == LIIF_OK ? "read" : err->msg);
    if (st != LIIF_OK)
        CHECK(strstr(err->msg, file) && strstr(err->msg, words) && !strchr(err->msg, '\n'),
              "%s: message '%s' should name the file and say '%s'", file, err->msg, words);
}

static void put32le(unsigned char *p, unsigned v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> 8 * i);
}

static void failures(void)
{
    liif_png img;
    liif_error err;
    liif_status st = write_image(path_in("ok.webp"), 64, 48, 3, 80, NULL, NULL, NULL, &err);
    CHECK(st == LIIF_OK, "ok.webp: %s", err.msg);
    FILE *f = fopen(path_in("ok.webp"), "rb");
    static unsigned char file[1 << 16];
    size_t size = f ? fread(file, 1, sizeof file, f) : 0;
    if (f)
        fclose(f);
    /* every cut: refused (one line naming the file), or read whole; never a crash */
    int refused = 0, cuts = 0;
    for (size_t k = 12; k < size; k += size / 40 + 1, cuts++) {
        save("cut.webp", file, k);
        st = liif_image_read(path_in("cut.webp"), &img, NULL, NULL, &err);
        if (st == LIIF_OK) {
            liif_png_free(&img);
            continue;
        }
        refused++;
        CHECK(st == LIIF_ERR_FORMAT && strstr(err.msg, "cut.webp") && !strchr(err.msg, '\n'), "cut at %zu: '%s'", k,
              err.msg);
    }
    CHECK(refused == cuts && cuts > 20, "%d of %d cuts were refused", refused, cuts);
    /* a lossless header that says 16383 x 16383 in 40 bytes */
    unsigned char liar[40] = "RIFF....WEBPVP8L";
    put32le(liar + 4, sizeof liar - 8);
    put32le(liar + 16, sizeof liar - 20);
    liar[20] = 0x2f;
    unsigned bits = 16382u | 16382u << 14; /* width - 1, height - 1; no alpha, version 0 */
    put32le(liar + 21, bits);
    save("liar.webp", liar, sizeof liar);
    expect_error(liif_image_read(path_in("liar.webp"), &img, NULL, NULL, &err), LIIF_ERR_FORMAT, &err, "liar.webp",
                 "a 16383x16383 image cannot come from a 40-byte file");
    /* an animation of two frames */
    WebPAnimEncoderOptions ao;
    WebPAnimEncoderOptionsInit(&ao);
    WebPAnimEncoder *enc = WebPAnimEncoderNew(8, 8, &ao);
    WebPConfig cfg;
    WebPConfigInit(&cfg);
    WebPPicture pic;
    WebPPictureInit(&pic);
    pic.width = pic.height = 8;
    pic.use_argb = 1;
    WebPPictureAlloc(&pic);
    WebPData anim = {NULL, 0};
    int ok = enc && WebPAnimEncoderAdd(enc, &pic, 0, &cfg);
    for (int i = 0; i < 64; i++) pic.argb[i] = 0xff00ff00u;
    ok = ok && WebPAnimEncoderAdd(enc, &pic, 100, &cfg) && WebPAnimEncoderAdd(enc, NULL, 200, NULL) &&
         WebPAnimEncoderAssemble(enc, &anim) && save("anim.webp", anim.bytes, anim.size) == 0;
    CHECK(ok, "could not make anim.webp");
    WebPPictureFree(&pic);
    WebPAnimEncoderDelete(enc);
    WebPDataClear(&anim);
    expect_error(liif_image_read(path_in("anim.webp"), &img, NULL, NULL, &err), LIIF_ERR_FORMAT, &err, "anim.webp",
                 "an animated WebP");
    /* another RIFF file, and junk after a WebP's name */
    save("wave.webp", "RIFF\x24\0\0\0WAVEfmt ", 16);
    expect_error(liif_image_read(path_in("wave.webp"), &img, NULL, NULL, &err), LIIF_ERR_FORMAT, &err, "wave.webp",
                 "not a PNG, JPEG or WebP image");
    unsigned char junk[64] = "RIFF\x38\0\0\0WEBPVP8 ";
    memset(junk + 16, 0xa5, sizeof junk - 16);
    save("junk.webp", junk, sizeof junk);
    expect_error(liif_image_read(path_in("junk.webp"), &img, NULL, NULL, &err), LIIF_ERR_FORMAT, &err, "junk.webp",
                 "WebP");
    for (const char *const *n = (const char *const[]){"ok.webp", "cut.webp", "liar.webp", "anim.webp", "wave.webp",
                                                       "junk.webp", NULL};
         *n; n++)
        unlink(path_in(*n));
    /* the writer's arguments: refused before any file exists */
    liif_image_writer *wr;
    const char *p = path_in("w.webp");
    expect_error(liif_image_writer_open(p, LIIF_IMAGE_WEBP, 16384, 8, 3, 8, 90, NULL, NULL, &wr, &err), LIIF_ERR_ARG,
                 &err, "w.webp", "a WebP holds 1 to 16383 pixels per side");
    expect_error(liif_image_writer_open(p, LIIF_IMAGE_WEBP, 8, 8, 3, 8, 0, NULL, NULL, &wr, &err), LIIF_ERR_ARG,
                 &err, "w.webp", "quality 0");
    expect_error(liif_image_writer_open(p, LIIF_IMAGE_WEBP, 8, 8, 5, 8, 90, NULL, NULL, &wr, &err), LIIF_ERR_ARG,
                 &err, "w.webp", "5 channels");
    expect_error(liif_image_writer_open(p, LIIF_IMAGE_WEBP, 8, 8, 3, 16, 90, NULL, NULL, &wr, &err), LIIF_ERR_ARG,
                 &err, "w.webp", "bit depth 16 (a WebP holds 8)");
    expect_error(liif_image_writer_open(path_in("no/such/w.webp"), LIIF_IMAGE_WEBP, 8, 8, 3, 8, 90, NULL, NULL, &wr,
                                        &err),
                 LIIF_ERR_IO, &err, "w.webp", "");
    /* too few rows: finish fails and leaves nothing */
    st = liif_image_writer_open(p, LIIF_IMAGE_WEBP, 8, 8, 3, 8, 90, NULL, NULL, &wr, &err);
    CHECK(st == LIIF_OK, "open: %s", err.msg);
    if (st == LIIF_OK) {
        float row[8 * 3] = {0};
        liif_image_writer_rows(wr, row, 1, 24, &err);
        expect_error(liif_image_writer_finish(wr, &err), LIIF_ERR_ARG, &err, "w.webp", "only 1 of 8 rows");
    }
    CHECK(files_in_dir() == 0, "%d files left behind", files_in_dir());
    printf("webp failures: %d of %d cuts refused, a lying header, an animation, other RIFF, junk, bad writer arguments, "
           "too few rows\n", refused, cuts);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    round_trip(3, 100, 0.0, 0.0);
    round_trip(4, 100, 0.0, 0.0);
    round_trip(1, 100, 0.0, 0.0);
    round_trip(2, 100, 0.0, 0.0);
    round_trip(3, 95, 16.0, 2.0);
    round_trip(4, 95, 16.0, 2.0);
    metadata();
    failures();
    rmdir(dir);
    return tu_finish("test-webp");
}
