/* stcmp.c: stcmp A.safetensors B.safetensors PREFIX [TOL]: every tensor of A whose key starts with PREFIX is in B with
 * the same dtype, shape and bytes (with TOL: float32 values within TOL of each other). Prints how many were compared;
 * exit 0 when all agree (and there was at least one), 1 when one differs or is missing, 2 on a usage or file error.
 * For the training tests. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: stcmp A.safetensors B.safetensors PREFIX [TOL]\n");
        return 2;
    }
    double tol = argc == 5 ? atof(argv[4]) : -1, worst = 0;
    liif_st_file *a, *b;
    liif_error err;
    if (liif_st_open(argv[1], &a, &err) || liif_st_open(argv[2], &b, &err)) {
        fprintf(stderr, "stcmp: %s\n", err.msg);
        return 2;
    }
    size_t plen = strlen(argv[3]);
    int n = 0, bad = 0;
    for (int i = 0; i < liif_st_count(a); i++) {
        const liif_st_tensor *ta = liif_st_at(a, i), *tb;
        if (strncmp(ta->name, argv[3], plen)) continue;
        n++;
        tb = liif_st_find(b, ta->name);
        int same = tb && tb->dtype == ta->dtype && tb->ndim == ta->ndim &&
                   !memcmp(tb->shape, ta->shape, (size_t)ta->ndim * sizeof ta->shape[0]) && tb->nbytes == ta->nbytes;
        if (same && tol >= 0 && ta->dtype == LIIF_DT_F32)
            for (int64_t j = 0; j < ta->numel; j++) {
                float x, y;
                memcpy(&x, (const char *)ta->data + 4 * j, 4);
                memcpy(&y, (const char *)tb->data + 4 * j, 4);
                double d = fabs((double)x - y);
                worst = d > worst ? d : worst;
                same &= d <= tol;
            }
        else if (same)
            same = !memcmp(tb->data, ta->data, ta->nbytes);
        if (!same) {
            printf("stcmp: %s differs%s\n", ta->name, tb ? "" : " (absent from the second file)");
            bad = 1;
        }
    }
    printf("stcmp: %d tensors '%s*' compared, %s", n, argv[3], bad ? "some differ" : n ? "all equal" : "none found");
    if (tol >= 0) printf(" (largest difference %.3g, tolerance %g)", worst, tol);
    printf("\n");
    liif_st_close(a);
    liif_st_close(b);
    return bad || n == 0;
}
