/* bench_gan.c: seconds per LIIF-GAN training step (generator + discriminator + VGG19 perceptual loss, both Adam
 * updates) on the fast CPU ops, and optionally on the reference layers, beside the machine's sgemm rate.
 * usage: liif-bench-gan [--threads N] [--steps N] [--batch B] [--size S] [--patch P] [--reference 0|1]
 * Every network is random with the real shapes (EDSR-baseline two-decoder generator, the 8-stage
 * discriminator, the 16-conv VGG19 up to conv5_4), so the work per step is the real one. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "gan_step.h"
#include "randmodel.h"

/* Uniform values of He scale for a layer with fan_in inputs. */
static void fill(float *x, size_t n, int fan_in, unsigned long long *r)
{
    float s = sqrtf(6.0f / (float)fan_in);
    for (size_t i = 0; i < n; i++) x[i] = s * rm_uniform(r);
}

static int setup(const char *path, int B, int S, int P, int threads, gan_gen **g, gan_disc **d, gan_vgg **v,
                 gan_step_ws **ws, liif_error *err)
{
    unsigned long long r = 7;
    int width[GAN_DISC_STAGES] = {64, 64, 128, 128, 256, 256, 512, 512};
    if (gan_gen_load(path, g, err) || gan_disc_new(width, 100, P, 3, d, err) || gan_vgg_new(GAN_VGG_CONV5_4, NULL, v, err))
        return 1;
    for (int i = 0; i < GAN_DISC_STAGES; i++) {
        gan_disc_stage *st = &(*d)->p.st[i];
        fill(st->w, (size_t)st->oc * st->ic * st->k * st->k, st->ic * st->k * st->k, &r);
    }
    fill((*d)->p.l1w, (size_t)(*d)->hidden * (*d)->flat, (*d)->flat, &r);
    fill((*d)->p.l2w, (size_t)(*d)->hidden, (*d)->hidden, &r);
    for (int i = 0; i <= (*v)->last; i++) {
        float *w = gan_vgg_weight(*v, i);
        if (w) fill(w, (size_t)(*v)->mod[i].oc * (*v)->mod[i].ic * 9, (*v)->mod[i].ic * 9, &r);
    }
    if (gan_step_ws_new(*g, *d, *v, B, S, S, P, ws, err)) return 1;
    return threads > 0 && gan_step_ws_use_cpu(*g, *d, *v, *ws, threads, err);
}

/* Mean seconds per step over `steps` steps after one warm-up step; threads 0 = the reference layers. */
static double run(const char *path, int B, int S, int P, int threads, int steps)
{
    gan_gen *g = NULL;
    gan_disc *d = NULL;
    gan_vgg *v = NULL;
    gan_step_ws *ws = NULL;
    liif_error err;
    if (setup(path, B, S, P, threads, &g, &d, &v, &ws, &err)) {
        fprintf(stderr, "setup failed: %s\n", err.msg);
        exit(1);
    }
    unsigned long long r = 5;
    int Q = P * P, H = S * 3;
    size_t nl = (size_t)B * 3 * S * S, nq = (size_t)B * Q, np = (size_t)B * 3 * Q;
    float *lr = malloc(nl * 4), *coord = malloc(nq * 8), *cell = malloc(nq * 8), *gt = malloc(np * 4);
    for (size_t i = 0; i < nl; i++) lr[i] = 0.5f + 0.5f * rm_uniform(&r);
    for (size_t i = 0; i < np; i++) gt[i] = 0.5f + 0.5f * rm_uniform(&r);
    for (int b = 0; b < B; b++) /* one P x P block of a x3 crop's HR grid (RGS) */
        for (int q = 0; q < Q; q++) {
            size_t k = (size_t)b * Q + q;
            coord[2 * k] = liif_coord(10 + q / P, H);
            coord[2 * k + 1] = liif_coord(20 + q % P, H);
            cell[2 * k] = cell[2 * k + 1] = 2.0f / H;
        }
    gan_step_config cfg = gan_step_defaults();
    double sum = 0;
    for (int k = 0; k < steps + 1; k++) {
        double t = bench_now();
        gan_step(g, d, v, ws, &cfg, lr, coord, cell, gt);
        t = bench_now() - t;
        if (k) sum += t;
        printf("  %s step %d: %.3f s (loss_g %.4f, loss_d %.4f)\n", threads ? "fast" : "reference", k, t, ws->loss_g,
               ws->loss_d);
    }
    free(lr); free(coord); free(cell); free(gt);
    gan_step_ws_free(ws);
    gan_vgg_free(v);
    gan_disc_free(d);
    gan_gen_free(g);
    return sum / steps;
}

int main(int argc, char **argv)
{
    int threads = 2, steps = 2, B = 16, S = 48, P = 48, ref = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        int x = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--threads")) threads = x;
        else if (!strcmp(argv[i], "--steps")) steps = x;
        else if (!strcmp(argv[i], "--batch")) B = x;
        else if (!strcmp(argv[i], "--size")) S = x;
        else if (!strcmp(argv[i], "--patch")) P = x;
        else if (!strcmp(argv[i], "--reference")) ref = x;
        else {
            fprintf(stderr, "usage: %s [--threads N] [--steps N] [--batch B] [--size S] [--patch P] [--reference 0|1]\n",
                    argv[0]);
            return 2;
        }
    }
    if (threads < 1 || steps < 1 || B < 1 || S < 1 || P < 16 || P % 16 || P > 3 * S) {
        fprintf(stderr, "bad arguments (P a multiple of 16, at most 3 S)\n");
        return 2;
    }
    char path[] = "/tmp/liif-bench-gan-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) { perror("mkstemp"); return 1; }
    close(fd);
    rm_spec sp = {.n_feats = 64, .n_resblocks = 16, .n_hidden = 4, .hidden = 256, .feat_unfold = 1,
                  .local_ensemble = 1, .cell_decode = 1, .variant = "liif-gan", .seed = 3, .out_gain = 1.0f};
    if (rm_write(path, &sp)) { fprintf(stderr, "cannot write %s\n", path); return 1; }
    double g0 = bench_sgemm_gflops(36864, 256, 256, threads, 2);
    double fast = run(path, B, S, P, threads, steps);
    double g1 = bench_sgemm_gflops(36864, 256, 256, threads, 2);
    printf("LIIF-GAN training step: batch %d, %dx%d LR, %dx%d patches, %d threads\n", B, S, S, P, P, threads);
    printf("sgemm 36864x256x256 (oneDNN, same run): %.1f GFLOP/s before, %.1f after\n", g0, g1);
    printf("fast CPU ops: %.3f s per step (mean of %d)\n", fast, steps);
    if (ref) {
        double slow = run(path, B, S, P, 0, 1);
        printf("reference layers: %.3f s per step -> fast ops %.1fx faster\n", slow, slow / fast);
    }
    unlink(path);
    return 0;
}
