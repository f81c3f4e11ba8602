/* mkvgg.c: a small random VGG19 feature stack with torchvision key names (features.N.weight/bias), for
 * the GAN cases of `liif train`. usage: mkvgg OUT.safetensors WIDTH [SEED] (every conv WIDTH wide). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "safetensors.h"

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: mkvgg OUT.safetensors WIDTH [SEED]\n");
        return 2;
    }
    static const int conv[] = {0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34};
    enum { N = sizeof conv / sizeof conv[0] };
    int W = atoi(argv[2]);
    unsigned long long s = argc > 3 ? strtoull(argv[3], NULL, 10) : 1;
    liif_st_entry e[2 * N];
    char names[2 * N][32];
    float *bufs[2 * N];
    if (W < 1) return 2;
    for (int i = 0; i < N; i++) {
        int ic = i ? W : 3;
        float bound = sqrtf(6.0f / ((float)ic * 9)); /* He-uniform, so the random stack's ReLUs stay alive */
        for (int j = 0; j < 2; j++) {
            int k = 2 * i + j;
            size_t n = j ? (size_t)W : (size_t)W * ic * 9;
            bufs[k] = malloc(n * sizeof(float));
            if (!bufs[k]) return 1;
            for (size_t q = 0; q < n; q++) {
                s = s * 6364136223846793005ULL + 1442695040888963407ULL;
                float u = (float)((s >> 40) & 0xFFFFFF) / 16777216.0f * 2.0f - 1.0f;
                bufs[k][q] = j ? 0.05f + 0.05f * u : u * bound;
            }
            snprintf(names[k], sizeof names[k], "features.%d.%s", conv[i], j ? "bias" : "weight");
            e[k] = (liif_st_entry){names[k], LIIF_DT_F32, j ? 1 : 4, {W, ic, 3, 3}, bufs[k]};
        }
    }
    liif_error err;
    liif_status st = liif_st_write(argv[1], e, 2 * N, NULL, 0, &err);
    if (st) fprintf(stderr, "mkvgg: %s\n", err.msg);
    for (int k = 0; k < 2 * N; k++) free(bufs[k]);
    return st ? 1 : 0;
}
