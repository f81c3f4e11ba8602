/* bench_train.c: seconds per LIIF training step on the fast CPU ops beside the machine's sgemm rate measured in the same run.
 * usage: liif-bench-train [--threads N] [--steps N] [--batch B] [--size S] [--queries Q]
 * The model is random with the official EDSR-baseline LIIF shape (same FLOPs as the real one). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "randmodel.h"
#include "train.h"

int main(int argc, char **argv)
{
    int threads = 2, steps = 3, B = 16, S = 48, Q = 2304;
    for (int i = 1; i + 1 < argc; i += 2) {
        int v = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--threads")) threads = v;
        else if (!strcmp(argv[i], "--steps")) steps = v;
        else if (!strcmp(argv[i], "--batch")) B = v;
        else if (!strcmp(argv[i], "--size")) S = v;
        else if (!strcmp(argv[i], "--queries")) Q = v;
        else { fprintf(stderr, "usage: %s [--threads N] [--steps N] [--batch B] [--size S] [--queries Q]\n", argv[0]); return 2; }
    }
    if (threads < 1 || steps < 1 || B < 1 || S < 1 || Q < 1) { fprintf(stderr, "bad arguments\n"); return 2; }
    char path[] = "/tmp/liif-bench-train-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) { perror("mkstemp"); return 1; }
    close(fd);
    rm_spec sp = {.n_feats = 64, .n_resblocks = 16, .n_hidden = 4, .hidden = 256, .feat_unfold = 1,
                  .local_ensemble = 1, .cell_decode = 1, .variant = "liif", .seed = 3, .out_gain = 1.0f};
    liif_error err;
    liif_train_state *s = NULL;
    liif_train_acts *a = NULL;
    if (rm_write(path, &sp) || liif_train_state_load(path, &s, &err) ||
        liif_train_acts_new(&s->cfg, B, S, S, Q, &a, &err) || liif_train_acts_use_cpu(a, &s->cfg, threads, &err)) {
        fprintf(stderr, "setup failed: %s\n", err.msg);
        unlink(path);
        return 1;
    }
    unlink(path);
    unsigned long long r = 99;
    size_t ni = (size_t)B * S * S * 3, nq = (size_t)B * Q;
    float *inp = malloc(ni * 4), *coord = malloc(nq * 8), *cell = malloc(nq * 8), *gt = malloc(nq * 12);
    for (size_t i = 0; i < ni; i++) inp[i] = 0.5f + 0.5f * rm_uniform(&r);
    for (size_t i = 0; i < nq * 3; i++) gt[i] = 0.5f + 0.5f * rm_uniform(&r);
    for (size_t i = 0; i < nq; i++) { /* HR pixel centres of a x2.5 crop */
        int H = S * 5 / 2;
        coord[2 * i] = liif_coord((int)((rm_uniform(&r) + 1.0f) * 0.5f * H) % H, H);
        coord[2 * i + 1] = liif_coord((int)((rm_uniform(&r) + 1.0f) * 0.5f * H) % H, H);
        cell[2 * i] = cell[2 * i + 1] = 2.0f / H;
    }
    /* the plain model's multiply-adds (no precompute), forward; a step is ~3x (backward = 2 products) */
    const liif_config *c = &s->cfg;
    double px = (double)B * S * S, rows = (double)B * Q * (c->local_ensemble ? 4 : 1), mlp = 0;
    int prev = c->in_dim;
    for (int l = 0; l < c->n_hidden; l++) { mlp += (double)prev * c->hidden[l]; prev = c->hidden[l]; }
    mlp += (double)prev * c->out_dim;
    double enc = px * 9.0 * c->n_feats * (c->in_ch + (2.0 * c->n_resblocks + 1) * c->n_feats);
    double step_flop = 3.0 * 2.0 * (enc + rows * mlp);
    liif_adam_config opt = liif_adam_defaults();
    double best = 1e30, sum = 0, tf = 0, tb = 0, gf = 0, best_eff = 0;
    for (int k = 0; k < steps + 1; k++) { /* step 0 warms up */
        double g = bench_sgemm_gflops(36864, 256, 256, threads, 2); /* beside every step: the machine is shared */
        double t0 = bench_now();
        liif_train_forward(s, a, inp, coord, cell, gt, &err);
        double t1 = bench_now();
        liif_train_zero_grad(s);
        liif_train_backward(s, a);
        liif_adam_update(s, &opt);
        double t2 = bench_now();
        if (k == 0) continue;
        double eff = step_flop / (t2 - t0) / 1e9 / g;
        printf("step %d: %.3f s, sgemm %.1f GFLOP/s just before, step at %.0f%% of it\n", k, t2 - t0, g, 100 * eff);
        if (eff > best_eff) best_eff = eff;
        gf += g / steps;
        sum += t2 - t0;
        tf += t1 - t0;
        tb += t2 - t1;
        if (t2 - t0 < best) best = t2 - t0;
    }
    printf("LIIF training step: batch %d, %dx%d LR, %d queries, %d threads (OMP_THREAD_LIMIT %d)\n", B, S, S, Q,
           threads, omp_get_thread_limit());
    printf("sgemm 36864x256x256 (oneDNN, same run): %.1f GFLOP/s mean\n", gf);
    printf("model: %.0f GFLOP per step (3x the plain forward's products)\n", step_flop / 1e9);
    printf("step: %.3f s best, %.3f s mean of %d (forward %.3f s, backward + Adam %.3f s), loss %.4f\n", best,
           sum / steps, steps, tf / steps, tb / steps, a->loss);
    printf("best step at %.0f%% of the same-run sgemm rate (%.3f s/step at that rate's full speed)\n",
           100 * best_eff, step_flop / 1e9 / gf / best_eff);
    free(inp); free(coord); free(cell); free(gt);
    liif_train_acts_free(a);
    liif_train_state_free(s);
    return 0;
}
