/* bench_conv.c: one encoder convolution (64 -> 64, and layer 1's 64 -> 256 over unfolded features) on a 256x256
 * feature map by im2col + sgemm on 256-pixel blocks (the encoder's way before Winograd; bf16's still), by
 * Winograd along rows only (fp32's encoder) and by Winograd F(4x4, 3x3) (int8's), interleaved, with the
 * machine's sgemm rate from the same run.
 * usage: liif-bench-conv [--threads N] [--reps N] [--size S] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "engine/winograd.h"

/* out = conv3x3(in) by im2col of 256-pixel blocks and one sgemm per block, blocks over the threads. */
static void conv_im2col(const float *in, int h, int w, int cin, const float *wp, int cout, float *out, int threads)
{
    long np = (long)h * w, nb = (np + 255) / 256;
    int kk = 9 * cin;
#pragma omp parallel num_threads(threads)
    {
        float *col = malloc((size_t)256 * kk * sizeof *col);
#pragma omp for schedule(dynamic)
        for (long b = 0; b < nb; b++) {
            int n = (int)(np - b * 256 < 256 ? np - b * 256 : 256);
            for (int p = 0; p < n; p++) {
                long q = b * 256 + p;
                int y = (int)(q / w), x = (int)(q % w);
                for (int k = 0; k < 9; k++) {
                    int yy = y + k / 3 - 1, xx = x + k % 3 - 1;
                    float *dst = col + (size_t)p * kk + (size_t)k * cin;
                    if (yy < 0 || yy >= h || xx < 0 || xx >= w) memset(dst, 0, cin * sizeof *dst);
                    else memcpy(dst, in + ((size_t)yy * w + xx) * cin, cin * sizeof *dst);
                }
            }
            dnnl_sgemm('N', 'T', n, cout, kk, 1.0f, col, kk, wp, kk, 0.0f, out + (size_t)b * 256 * cout, cout);
        }
        free(col);
    }
}

int main(int argc, char **argv)
{
    int threads = 2, reps = 5, size = 256;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--size") && i + 1 < argc) size = atoi(argv[++i]);
        else {
            printf("usage: liif-bench-conv [--threads N] [--reps N] [--size S]\n");
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    if (threads < 1 || reps < 1 || size < 4 || size > 4096) {
        fprintf(stderr, "liif-bench-conv: threads and reps at least 1, size 4 to 4096\n");
        return 2;
    }
    printf("threads %d, best of %d runs, %dx%d feature map; sgemm 30000x256x580 (oneDNN): %.1f GFLOP/s\n\n", threads,
           reps, size, size, bench_sgemm_gflops(30000, 256, 580, threads, 3));
    printf("%-12s %12s %14s %10s %14s %10s %14s   %s\n", "conv", "im2col (s)", "rows only (s)", "speed-up", "4x4 tiles (s)",
           "speed-up", "im2col GFLOP/s", "max|diff| rows / tiles of largest |out|");
    int h = size, w = size, cin = 64, couts[2] = {64, 256};
    for (int c = 0; c < 2; c++) {
        int cout = couts[c];
        size_t ni = (size_t)h * w * cin, no = (size_t)h * w * cout, nw = (size_t)cout * cin * 9;
        float *in = malloc(ni * sizeof *in), *out = malloc(no * sizeof *out), *wt = malloc(nw * sizeof *wt);
        float *wp = malloc(nw * sizeof *wp), *u = malloc(liif_wino_weights_len(cout, cin) * sizeof *u);
        float *ur = malloc(liif_wino_rows_weights_len(cout, cin) * sizeof *ur);
        for (size_t i = 0; i < ni; i++) in[i] = (float)(i % 251) / 251.0f;
        for (size_t i = 0; i < nw; i++) wt[i] = (float)(i % 17) / 17.0f - 0.5f;
        for (int o = 0; o < cout; o++) /* [cout, cin, 9] -> [cout, 9, cin], im2col's order */
            for (int i = 0; i < cin; i++)
                for (int k = 0; k < 9; k++) wp[((size_t)o * 9 + k) * cin + i] = wt[((size_t)o * cin + i) * 9 + k];
        liif_wino_weights(wt, cout, cin, cin * 9, u);
        liif_wino_rows_weights(wt, cout, cin, cin * 9, ur);
        double best_i = 1e30, best[2] = {1e30, 1e30}, diff[2] = {0, 0}; /* [0] rows only, [1] 4x4 tiles */
        float *ref = malloc(no * sizeof *ref);
        for (int r = 0; r < reps + 1; r++) { /* the first round warms up */
            double t = bench_now();
            conv_im2col(in, h, w, cin, wp, cout, ref, threads);
            t = bench_now() - t;
            if (r && t < best_i) best_i = t;
            for (int f = 0; f < 2; f++) { /* what is timed computes the same convolution: its largest difference */
                t = bench_now();
                liif_status st = f ? liif_conv_wino(in, h, w, 0, cin, u, NULL, NULL, 0, cout, out, threads)
                                   : liif_conv_wino_rows(in, h, w, 0, cin, ur, NULL, NULL, 0, cout, out, threads);
                if (st != LIIF_OK) {
                    fprintf(stderr, "liif-bench-conv: out of memory\n");
                    return 1;
                }
                t = bench_now() - t;
                if (r && t < best[f]) best[f] = t;
                for (size_t i = 0; i < no; i++) diff[f] = fmax(diff[f], fabs((double)out[i] - ref[i]));
            }
        }
        char name[32];
        snprintf(name, sizeof name, "%d -> %d", cin, cout);
        double mag = 0;
        for (size_t i = 0; i < no; i++) mag = fmax(mag, fabs(ref[i]));
        printf("%-12s %12.4f %14.4f %9.2fx %14.4f %9.2fx %14.1f   %.2g / %.2g of %.3g\n", name, best_i, best[0],
               best_i / best[0], best[1], best_i / best[1], 2.0 * h * w * cin * cout * 9 / best_i / 1e9, diff[0], diff[1],
               mag);
        free(in); free(out); free(wt); free(wp); free(u); free(ur); free(ref);
    }
    return 0;
}
