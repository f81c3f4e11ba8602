/* bench_png.c: liif-bench-png [PHOTO.png]: the PNG writer's speed on a 3840x2160 output (the 4K upscale the GPU makes
 * in a fraction of a second) beside libpng's own encoder in the same run (PNG_ALL_FILTERS, zlib level 6, one thread:
 * what the writer did before). The image is PHOTO enlarged 2x bilinearly (an upscaled photo compresses like the
 * model's output: smooth, with the photo's detail), or without PHOTO a smooth field with grain. Prints seconds,
 * MB/s of raw rows and the file's size, for 1 thread and each power of two up to the processors. */
#include <math.h>
#include <omp.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "bench_util.h"
#include "png_image.h"

enum { W = 3840, H = 2160 };

static float *make_image(const char *photo)
{
    float *px = malloc((size_t)W * H * 3 * sizeof *px);
    liif_png p = {0};
    liif_error err;
    if (photo && liif_png_read(photo, &p, &err) != LIIF_OK) {
        fprintf(stderr, "liif-bench-png: %s\n", err.msg);
        exit(1);
    }
    unsigned s = 1;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < 3; c++) {
                float v;
                if (photo) { /* bilinear 2x of the photo, repeated when it is smaller than 1920x1080 */
                    float fy = (y + 0.5f) / 2 - 0.5f, fx = (x + 0.5f) / 2 - 0.5f;
                    int y0 = (int)floorf(fy), x0 = (int)floorf(fx);
                    float ay = fy - y0, ax = fx - x0, acc = 0;
                    for (int dy = 0; dy < 2; dy++)
                        for (int dx = 0; dx < 2; dx++) {
                            int yy = (y0 + dy < 0 ? 0 : y0 + dy) % p.h, xx = (x0 + dx < 0 ? 0 : x0 + dx) % p.w;
                            float wgt = (dy ? ay : 1 - ay) * (dx ? ax : 1 - ax);
                            acc += wgt * p.px[((size_t)yy * p.w + xx) * p.channels + (p.channels >= 3 ? c : 0)];
                        }
                    v = acc;
                } else {
                    s = s * 1103515245u + 12345u;
                    v = 0.5f + 0.3f * sinf(x * 0.004f + c) * cosf(y * 0.006f) + ((s >> 16) % 9 - 4) / 255.0f;
                }
                px[((size_t)y * W + x) * 3 + c] = v;
            }
    liif_png_free(&p);
    return px;
}

/* What the writer did before: libpng alone. Seconds, and the file's size in *bytes. */
static double libpng_write(const char *path, const float *px, long *bytes)
{
    unsigned char *row = malloc((size_t)W * 3);
    volatile double t = bench_now();
    FILE *f = fopen(path, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (!f || !info || setjmp(png_jmpbuf(png))) {
        fprintf(stderr, "liif-bench-png: libpng failed on %s\n", path);
        exit(1);
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, W, H, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_ALL_FILTERS);
    png_set_compression_level(png, 6);
    png_write_info(png, info);
    for (int y = 0; y < H; y++) {
        for (int i = 0; i < W * 3; i++) {
            float v = px[(size_t)y * W * 3 + i];
            /* the writer's rounding */
            row[i] = (unsigned char)(v > 0 ? (v >= 1 ? 255 : (int)((double)v * 255 + 0.5)) : 0);
        }
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    fflush(f);
    fsync(fileno(f)); /* as the writer does */
    fclose(f);
    t = bench_now() - t;
    FILE *g = fopen(path, "rb");
    fseek(g, 0, SEEK_END);
    *bytes = ftell(g);
    fclose(g);
    free(row);
    return t;
}

/* The writer in bands of 360 rows (the CLI writes bands of up to 64 MiB of floats), on `threads` threads. */
static double liif_write(const char *path, const float *px, int threads, long *bytes)
{
    liif_error err;
    liif_png_writer *wr;
    double t = bench_now();
    if (liif_png_writer_open(path, W, H, 3, 8, &wr, &err) != LIIF_OK) {
        fprintf(stderr, "liif-bench-png: %s\n", err.msg);
        exit(1);
    }
    liif_png_writer_set_threads(wr, threads);
    for (int y = 0; y < H; y += 360)
        if (liif_png_writer_rows(wr, px + (size_t)y * W * 3, 360, (size_t)W * 3, &err) != LIIF_OK) {
            fprintf(stderr, "liif-bench-png: %s\n", err.msg);
            exit(1);
        }
    if (liif_png_writer_finish(wr, &err) != LIIF_OK) {
        fprintf(stderr, "liif-bench-png: %s\n", err.msg);
        exit(1);
    }
    t = bench_now() - t;
    FILE *g = fopen(path, "rb");
    fseek(g, 0, SEEK_END);
    *bytes = ftell(g);
    fclose(g);
    return t;
}

int main(int argc, char **argv)
{
    if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
        fprintf(stderr, "usage: liif-bench-png [PHOTO.png]\n");
        return 2;
    }
    const char *photo = argc == 2 ? argv[1] : NULL;
    float *px = make_image(photo);
    char path[64];
    snprintf(path, sizeof path, "/tmp/liif-bench-png-%d.png", (int)getpid());
    int procs = omp_get_num_procs(), reps = 3;
    double raw_mb = (double)W * H * 3 / 1e6;
    printf("3840x2160 RGB 8-bit (%s), best of %d, %d processors\n", photo ? photo : "synthetic", reps, procs);
    long bytes = 0;
    double base = 1e30;
    for (int r = 0; r < reps; r++) {
        double t = libpng_write(path, px, &bytes);
        base = t < base ? t : base;
    }
    printf("%-28s %7.3f s %7.1f MB/s %9ld bytes\n", "libpng, 1 thread (before)", base, raw_mb / base, bytes);
    for (int th = 1;; th = th * 2 > procs && th < procs ? procs : th * 2) {
        double best = 1e30;
        for (int r = 0; r < reps; r++) {
            double t = liif_write(path, px, th, &bytes);
            best = t < best ? t : best;
        }
        char name[40];
        snprintf(name, sizeof name, "liif writer, %d thread%s", th, th > 1 ? "s" : "");
        printf("%-28s %7.3f s %7.1f MB/s %9ld bytes  %.2fx libpng\n", name, best, raw_mb / best, bytes, base / best);
        if (th >= procs) break;
    }
    if (getenv("LIIF_BENCH_PNG_KEEP")) printf("kept %s\n", path); else unlink(path);
    free(px);
    return 0;
}
