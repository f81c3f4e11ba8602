/* bench.c: end-to-end speed of the fast CPU engine (fp32, the fast precision and int8) beside the machine's sgemm rate measured in the same run.
 * usage: liif-bench [MODEL.safetensors] [--threads N] [--reps N]
 * Without a model it writes a random model of the official EDSR-baseline LIIF shape (same FLOPs). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "liif.h"
#include "randmodel.h"

/* The official model's cost (MODEL.md / the issue): per LR pixel and per output pixel. */
#define ENC_FLOP_PER_LR_PX 2.44e6
#define DEC_FLOP_PER_OUT_PX 2.77e6

static double run_case(liif_engine *e, int w, int h, int scale, int threads, int reps, int precompute,
                       liif_precision precision)
{
    float *img = malloc((size_t)w * h * 3 * sizeof(float));
    unsigned long long s = 42;
    for (size_t i = 0; i < (size_t)w * h * 3; i++) img[i] = 0.5f + 0.5f * rm_uniform(&s);
    int W = w * scale, H = h * scale;
    float *out = malloc((size_t)W * H * 3 * sizeof(float));
    liif_image in = {img, w, h, (size_t)w * 3};
    liif_region r = {W, H, 0, 0, W, H};
    liif_options o;
    liif_options_init(&o);
    o.threads = threads;
    o.precompute = precompute;
    o.precision = precision;
    double best = 1e30;
    for (int k = 0; k < reps; k++) {
        liif_error err;
        double t = bench_now();
        if (liif_upscale_region(e, &in, &r, out, (size_t)W * 3, &o, &err)) {
            fprintf(stderr, "liif-bench: %s\n", err.msg);
            exit(1);
        }
        t = bench_now() - t;
        best = t < best ? t : best;
    }
    free(img);
    free(out);
    return best;
}

int main(int argc, char **argv)
{
    const char *model_path = NULL;
    int threads = 2, reps = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--help")) {
            printf("usage: liif-bench [MODEL.safetensors] [--threads N] [--reps N]\n");
            return 0;
        } else model_path = argv[i];
    }
    char tmp[] = "/tmp/liif-bench-XXXXXX.safetensors";
    if (!model_path) {
        int fd = mkstemps(tmp, 12);
        if (fd < 0) return 1;
        close(fd);
        rm_spec sp = {64, 16, 4, 256, 1, 1, 1, "liif", 1, 1.0f};
        if (rm_write(tmp, &sp)) return 1;
        model_path = tmp;
    }
    liif_model *m;
    liif_engine *e;
    liif_error err;
    if (liif_model_load(model_path, &m, &err) || liif_engine_new(m, LIIF_BACKEND_CPU, &e, NULL, 0, &err)) {
        fprintf(stderr, "liif-bench: %s\n", err.msg);
        return 1;
    }
    if (model_path == tmp) unlink(tmp);
    double gf = bench_sgemm_gflops(30000, 256, 580, threads, reps); /* the decoder's biggest product */
    char note[200];
    const char *fast = liif_engine_precision_name(e, LIIF_PRECISION_FAST, note, sizeof note);
    printf("threads %d, best of %d runs; fast precision: %s%s%s\n", threads, reps, fast, note[0] ? ": " : "", note);
    printf("sgemm 30000x256x580 (oneDNN): %.1f GFLOP/s\n\n", gf);
    printf("%-22s %-11s %-9s %9s %9s %12s %9s %9s\n", "case", "precompute", "precision", "seconds", "out MP/s",
           "eff GFLOP/s", "% sgemm", "vs fp32");
    struct { int w, h, s; } cases[] = {{128, 128, 4}, {256, 256, 2}};
    /* fp32, the fast precision where it is not fp32, and int8 where fast is not int8 already */
    const liif_precision precs[3] = {LIIF_PRECISION_FP32, LIIF_PRECISION_FAST, LIIF_PRECISION_INT8};
    const char *names[3];
    for (int p = 0; p < 3; p++) names[p] = liif_engine_precision_name(e, precs[p], NULL, 0);
    for (int c = 0; c < 2; c++)
        for (int pre = 1; pre >= 0; pre--) {
            double t32 = 0;
            for (int fa = 0; fa < 3; fa++) {
                if ((fa == 1 && !strcmp(names[1], "fp32")) || (fa == 2 && !strcmp(names[1], "int8"))) continue;
                int w = cases[c].w, h = cases[c].h, s = cases[c].s;
                double t = run_case(e, w, h, s, threads, reps, pre, precs[fa]);
                t32 = fa ? t32 : t;
                double out_px = (double)w * s * h * s;
                double flop = ENC_FLOP_PER_LR_PX * w * h + DEC_FLOP_PER_OUT_PX * out_px;
                char name[64];
                snprintf(name, sizeof name, "%dx%d -> x%d", w, h, s);
                printf("%-22s %-11s %-9s %9.3f %9.3f %12.1f %8.0f%% %8.2fx\n", name, pre ? "yes" : "no",
                       names[fa], t, out_px / t / 1e6, flop / t / 1e9, 100.0 * flop / t / 1e9 / gf, t32 / t);
            }
        }
    liif_engine_free(e);
    liif_model_free(m);
    return 0;
}
