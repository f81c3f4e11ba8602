/* bench_train_cuda.c: ms per LIIF training step on the GPU (EDSR-baseline LIIF, batch 16, 48x48 LR, 2304 queries)
 * in fp32 and TF32, beside cuBLAS's sgemm rate measured in the same run. usage: bench-train-cuda [--steps N].
 * Exits 77 without a GPU. The step alone: the data pipeline's share is in `liif train`'s log.csv. */
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cuda_util.h"
#include "randmodel.h"
#include "train.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
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
    rmdir(tmp);
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
    for (int fast = 0; fast < 2; fast++) {
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
               fast ? "TF32" : "fp32", B, L, L, Q, t * 1e3, flop / t / 1e12, flop / 1e9, loss);
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
        printf("  per phase (ms, mean of %ld steps):", n);
        for (int i = 0; i < LIIF_TRAIN_GPU_PHASES; i++) printf(" %s %.2f%s", phase[i], ms[i], i + 1 < LIIF_TRAIN_GPU_PHASES ? "," : "\n");
        liif_train_gpu_free(g);
    }
    free(inp); free(coord); free(cell); free(gt);
    liif_train_state_free(s);
    return 0;
}
