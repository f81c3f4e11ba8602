/* bench_train_cuda.c: ms per LIIF training step on the GPU (EDSR-baseline LIIF, batch 16, 48x48 LR, 2304 queries)
 * and per LIIF-GAN step (the same generator with two decoders, the spec's discriminator, 48x48 RGS patches,
 * without and with the perceptual term of a random full VGG19 (to conv5_4)) in fp32 and TF32, beside cuBLAS's sgemm rate measured in the same run. usage: bench-train-cuda [--steps N].
 * Exits 77 without a GPU. The step alone: the data pipeline's share is in `liif train`'s log.csv. */
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cuda_util.h"
#include "gan_gpu.h"
#include "randmodel.h"
#include "train.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* A profile's per-phase means (ms) over n steps, on one line. */
static void print_phases(const char *const *phase, const double *ms, int n_phases, long n)
{
    printf("  per phase (ms, mean of %ld steps):", n);
    for (int i = 0; i < n_phases; i++) printf(" %s %.2f%s", phase[i], ms[i], i + 1 < n_phases ? "," : "\n");
}

/* LIIF-GAN steps: an EDSR-baseline liif-gan generator (random), the spec's discriminator (widths 64..512,
 * PyTorch's default bounds, BN 1/0), batch 16, 48x48 LR, one 48x48 patch of a 120x120 crop per sample. */
static int bench_gan(int steps, const char *dir)
{
    int B = 16, L = 48, P = 48, Q = P * P, H = 120;
    char path[160];
    snprintf(path, sizeof path, "%s/g.safetensors", dir);
    rm_spec sp = {64, 16, 4, 256, 1, 1, 1, "liif-gan", 2, 1.0f};
    gan_gen *g;
    gan_disc *d;
    liif_error err;
    int width[GAN_DISC_STAGES] = {64, 64, 128, 128, 256, 256, 512, 512};
    if (rm_write(path, &sp) || gan_gen_load(path, &g, &err)) return 1;
    unlink(path);
    if (gan_disc_new(width, 100, P, 3, &d, &err)) return 1;
    unsigned long long rng = 9;
    size_t fan = 1; /* a bias takes the fan-in of the weight before it (the table's order) */
    for (int i = 0; i < d->n_tensors; i++) {
        const liif_train_tensor *t = &d->tensors[i];
        if (t->ndim > 1) fan = t->numel / (size_t)t->shape[0];
        if (!t->trainable || strncmp(t->name, "disc.bn", 7) == 0) continue; /* BN 1/0, running stats 0/1 */
        for (size_t k = 0; k < t->numel; k++) d->params[t->offset + k] = rm_uniform(&rng) / sqrtf((float)fan);
    }
    for (int i = 1; i < GAN_DISC_STAGES; i++)
        for (int c = 0; c < width[i]; c++) d->p.st[i].gamma[c] = 1.0f;
    size_t ni = (size_t)B * 3 * L * L, nq = (size_t)B * Q;
    float *lr = malloc(ni * 4), *coord = malloc(nq * 8), *cell = malloc(nq * 8), *gt = malloc(nq * 12);
    for (size_t i = 0; i < ni; i++) lr[i] = rm_uniform(&rng) * 0.5f + 0.5f;
    for (size_t i = 0; i < nq; i++) {
        int q = (int)(i % Q), oy = 30, ox = 41;
        coord[2 * i] = liif_coord(oy + q / P, H);
        coord[2 * i + 1] = liif_coord(ox + q % P, H);
        cell[2 * i] = cell[2 * i + 1] = 2.0f / H;
    }
    for (size_t i = 0; i < nq * 3; i++) gt[i] = rm_uniform(&rng) * 0.5f + 0.5f;
    gan_vgg *v; /* VGG19 to conv5_4 with He-scaled random weights: the perceptual term's cost */
    if (gan_vgg_new(GAN_VGG_CONV5_4, NULL, &v, &err)) return 1;
    for (int i = 0; i <= v->last; i++) {
        float *w = gan_vgg_weight(v, i);
        if (!w) continue;
        size_t fan = (size_t)v->mod[i].ic * 9, n = fan * v->mod[i].oc;
        for (size_t k = 0; k < n; k++) w[k] = rm_uniform(&rng) * sqrtf(6.0f / (float)fan);
    }
    gan_step_config cfg = gan_step_defaults();
    for (int run = 0; run < 4; run++) {
        int fast = run & 1, per = run >> 1;
        cfg.w_per = per ? 1.0f : 0.0f;
        gan_gpu *t;
        gan_gpu_losses l;
        if (gan_gpu_new(g, d, per ? v : NULL, B, L, L, P, fast, &t, &err)) {
            printf("FAIL %s\n", err.msg);
            return 1;
        }
        for (int i = 0; i < 3; i++) gan_gpu_step(t, &cfg, lr, coord, cell, gt, &err); /* warm-up */
        gan_gpu_wait(t, &l, &err);
        double t0 = now();
        for (int i = 0; i < steps; i++)
            if (gan_gpu_step(t, &cfg, lr, coord, cell, gt, &err) || gan_gpu_wait(t, &l, &err)) {
                printf("FAIL %s\n", err.msg);
                return 1;
            }
        double dt = (now() - t0) / steps;
        printf("LIIF-GAN step %s (batch %d, %dx%d LR, %dx%d patches, %s): %.2f ms/step, loss_g %.4f, loss_d %.4f\n",
               fast ? "TF32" : "fp32", B, L, L, P, P, per ? "w_per 1, VGG19 to conv5_4" : "w_per 0", dt * 1e3,
               l.loss_g, l.loss_d);
        double ms[GAN_GPU_PHASES];
        long n;
        static const char *phase[GAN_GPU_PHASES] = {"upload", "G fwd", "D and VGG on fake + bwd", "G bwd", "G Adam",
                                                     "D step", "D Adam"};
        gan_gpu_profile(t, ms, &n);
        print_phases(phase, ms, GAN_GPU_PHASES, n);
        gan_gpu_free(t);
    }
    free(lr); free(coord); free(cell); free(gt);
    gan_vgg_free(v);
    gan_gen_free(g);
    gan_disc_free(d);
    return 0;
}

int main(int argc, char **argv)
{
    int steps = 50, B = 16, L = 48, Q = 2304;
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--steps")) steps = atoi(argv[++i]);
    char tmp[] = "/tmp/liif-bench-train-XXXXXX", path[128];
    const liif_cuda_module *mod;
    liif_backend *be = tc_gpu_or_skip(&mod);
    for (int fast = 0; fast < 2; fast++)
        printf("cuBLAS sgemm %s: 147456x256x256 %.1f TFLOP/s, 36864x64x576 %.1f TFLOP/s\n", fast ? "TF32" : "fp32",
               mod->sgemm_gflops(be, 147456, 256, 256, fast, 5) / 1e3, mod->sgemm_gflops(be, 36864, 64, 576, fast, 5) / 1e3);
    be->destroy(be);

    if (!mkdtemp(tmp)) return 1;
    snprintf(path, sizeof path, "%s/m.safetensors", tmp);
    rm_spec sp = {64, 16, 4, 256, 1, 1, 1, "liif", 1, 1.0f};
    liif_train_state *s;
    liif_error err;
    if (rm_write(path, &sp) || liif_train_state_load(path, &s, &err)) return 1;
    unlink(path);
    unsigned long long rng = 7;
    size_t ni = (size_t)B * L * L * 3, nq = (size_t)B * Q;
    float *inp = malloc(ni * 4), *coord = malloc(nq * 8), *cell = malloc(nq * 8), *gt = malloc(nq * 12);
    for (size_t i = 0; i < ni; i++) inp[i] = rm_uniform(&rng) * 0.5f + 0.5f;
    for (size_t i = 0; i < nq; i++) { /* the queries of a x2.5 crop (120 px): a typical LIIF batch */
        int H = 120, r = (int)((rm_uniform(&rng) * 0.5f + 0.5f) * H) % H, c = (int)((rm_uniform(&rng) * 0.5f + 0.5f) * H) % H;
        coord[2 * i] = liif_coord(r, H);
        coord[2 * i + 1] = liif_coord(c, H);
        cell[2 * i] = cell[2 * i + 1] = 2.0f / H;
        for (int k = 0; k < 3; k++) gt[3 * i + k] = rm_uniform(&rng) * 0.5f + 0.5f;
    }
    /* multiply-adds per step: encoder 34 convs x 3 (forward, dweight, dinp), the precompute conv x 3, the MLP x 3 */
    double px = (double)B * L * L, rows = (double)nq * 4;
    double flop = 2 * 3 * (px * 9 * 64 * 64 * 34 + px * 9 * 64 * 256 + rows * (3 * 256.0 * 256 + 256 * 3));
    liif_adam_config opt = liif_adam_defaults();
    for (int run = 0; run < 3; run++) { /* fp32, TF32, TF32 with im2col + cuBLAS convolutions (LIIF_CUDA_CONV=im2col) */
        int fast = run > 0;
        if (run == 2) setenv("LIIF_CUDA_CONV", "im2col", 1);
        liif_train_gpu *g;
        if (liif_train_gpu_new(s, B, L, L, Q, fast, &g, &err)) {
            printf("FAIL %s\n", err.msg);
            return 1;
        }
        float loss = 0;
        for (int i = 0; i < 5; i++) liif_train_gpu_step(g, inp, coord, cell, gt, &opt, &err); /* warm-up */
        liif_train_gpu_wait(g, &loss, &err);
        double t = now();
        for (int i = 0; i < steps; i++)
            if (liif_train_gpu_step(g, inp, coord, cell, gt, &opt, &err)) {
                printf("FAIL %s\n", err.msg);
                return 1;
            }
        if (liif_train_gpu_wait(g, &loss, &err)) {
            printf("FAIL %s\n", err.msg);
            return 1;
        }
        t = (now() - t) / steps;
        printf("LIIF step %s (batch %d, %dx%d, %d queries): %.2f ms/step (%.1f TFLOP/s on %.0f GFLOP), loss %.4f\n",
               run == 2 ? "TF32, im2col convolutions" : fast ? "TF32" : "fp32", B, L, L, Q, t * 1e3, flop / t / 1e12,
               flop / 1e9, loss);
        /* per phase, from CUDA events of steps waited for one by one (as `liif train` runs them) */
        for (int i = 0; i < 10; i++)
            if (liif_train_gpu_step(g, inp, coord, cell, gt, &opt, &err) || liif_train_gpu_wait(g, &loss, &err)) {
                printf("FAIL %s\n", err.msg);
                return 1;
            }
        double ms[LIIF_TRAIN_GPU_PHASES];
        long n;
        static const char *phase[LIIF_TRAIN_GPU_PHASES] = {"upload", "encoder fwd", "decoder fwd+L1", "decoder bwd",
                                                            "encoder bwd", "Adam"};
        liif_train_gpu_profile(g, ms, &n);
        print_phases(phase, ms, LIIF_TRAIN_GPU_PHASES, n);
        liif_train_gpu_free(g);
        unsetenv("LIIF_CUDA_CONV");
    }
    free(inp); free(coord); free(cell); free(gt);
    liif_train_state_free(s);
    int rc = bench_gan(steps, tmp);
    rmdir(tmp);
    return rc;
}
