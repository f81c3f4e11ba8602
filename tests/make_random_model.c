/* make_random_model.c: writes a random model for tests and benchmarks.
 * usage: make_random_model OUT.safetensors [variant] [n_feats] [n_resblocks] [hidden] [seed] [n_hidden] */
#include <math.h>

#include "randmodel.h"

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s OUT.safetensors [liif|liif-gan|liif-gan-s|liif-gan-sf] [n_feats] [n_resblocks] [hidden] [seed] [n_hidden]\n", argv[0]);
        return 2;
    }
    rm_spec sp = {.n_feats = argc > 3 ? atoi(argv[3]) : 16, .n_resblocks = argc > 4 ? atoi(argv[4]) : 2,
                  .n_hidden = argc > 7 ? atoi(argv[7]) : 2, .hidden = argc > 5 ? atoi(argv[5]) : 32, .feat_unfold = 1, .local_ensemble = 1,
                  .cell_decode = 1, .variant = argc > 2 ? argv[2] : "liif", .seed = argc > 6 ? (unsigned)atoi(argv[6]) : 1,
                  .out_gain = 2.0f};
    return rm_write(argv[1], &sp);
}
