/* randmodel.h: writes small random LIIF / LIIF-GAN models as safetensors, for tests and benchmarks. */
#ifndef LIIF_RANDMODEL_H
#define LIIF_RANDMODEL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "safetensors.h"

typedef struct {
    int n_feats, n_resblocks, n_hidden, hidden;
    int feat_unfold, local_ensemble, cell_decode;
    const char *variant;   /* "liif", "liif-gan", "liif-gan-s" or "liif-gan-sf" */
    unsigned seed;
    float out_gain;        /* scale of the last layer, so outputs span a useful range */
} rm_spec;

static float rm_uniform(unsigned long long *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((*s >> 40) & 0xFFFFFF) / 16777216.0f * 2.0f - 1.0f;
}

/* Adds a weight [dims] filled with U(-1,1)/sqrt(fan_in) * gain and returns its storage. */
static float *rm_add(liif_st_entry *e, int *n, const char *name, int ndim, const int64_t *shape, int fan_in, float gain,
                     unsigned long long *rng, float **pool, int *npool)
{
    int64_t numel = 1;
    for (int d = 0; d < ndim; d++) numel *= shape[d];
    float *v = malloc(numel * sizeof(float));
    for (int64_t i = 0; i < numel; i++) v[i] = rm_uniform(rng) * gain / sqrtf((float)fan_in);
    e[*n].name = strdup(name);
    e[*n].dtype = LIIF_DT_F32;
    e[*n].ndim = ndim;
    memcpy(e[*n].shape, shape, ndim * sizeof(int64_t));
    e[*n].data = v;
    pool[(*npool)++] = v;
    (*n)++;
    return v;
}

static void rm_conv(liif_st_entry *e, int *n, const char *prefix, int cin, int cout, unsigned long long *rng,
                    float **pool, int *npool)
{
    char name[128];
    int64_t ws[4] = {cout, cin, 3, 3}, bs[1] = {cout};
    snprintf(name, sizeof name, "%s.weight", prefix);
    rm_add(e, n, name, 4, ws, cin * 9, 1.0f, rng, pool, npool);
    snprintf(name, sizeof name, "%s.bias", prefix);
    rm_add(e, n, name, 1, bs, cin * 9, 1.0f, rng, pool, npool);
}

/* Writes the model to path with an encoder reading in_ch channels and decoders writing out_dim (3 for any
 * usable model; others test that loading refuses them); returns 0 on success (prints the error otherwise). */
/* detail: metadata liif.detail when not NULL. */
static int rm_write_meta(const char *path, const rm_spec *sp, int in_ch, int out_dim, const char *detail)
{
    int cap = 16 + 4 * sp->n_resblocks + 4 * (sp->n_hidden + 1), n = 0, npool = 0;
    liif_st_entry *e = calloc(cap, sizeof *e);
    float **pool = calloc(cap, sizeof *pool);
    unsigned long long rng = 0x9E3779B97F4A7C15ULL ^ sp->seed;
    char name[128];
    int F = sp->n_feats;
    rm_conv(e, &n, "encoder.head.0", in_ch, F, &rng, pool, &npool);
    for (int b = 0; b < sp->n_resblocks; b++) {
        snprintf(name, sizeof name, "encoder.body.%d.body.0", b);
        rm_conv(e, &n, name, F, F, &rng, pool, &npool);
        snprintf(name, sizeof name, "encoder.body.%d.body.2", b);
        rm_conv(e, &n, name, F, F, &rng, pool, &npool);
    }
    snprintf(name, sizeof name, "encoder.body.%d", sp->n_resblocks);
    rm_conv(e, &n, name, F, F, &rng, pool, &npool);
    int two = !strcmp(sp->variant, "liif-gan") || !strcmp(sp->variant, "liif-gan-sf");
    int in_dim = F * (sp->feat_unfold ? 9 : 1) + 2 + (sp->cell_decode ? 2 : 0);
    for (int d = 0; d < (two ? 2 : 1); d++)
        for (int l = 0; l <= sp->n_hidden; l++) {
            int k = l == 0 ? in_dim : sp->hidden, o = l == sp->n_hidden ? out_dim : sp->hidden;
            int64_t ws[2] = {o, k}, bs[1] = {o};
            float gain = l == sp->n_hidden ? sp->out_gain : 1.7f;
            snprintf(name, sizeof name, "%s.layers.%d.weight", d ? "imnet2" : "imnet", 2 * l);
            rm_add(e, &n, name, 2, ws, k, gain, &rng, pool, &npool);
            snprintf(name, sizeof name, "%s.layers.%d.bias", d ? "imnet2" : "imnet", 2 * l);
            rm_add(e, &n, name, 1, bs, k, 1.0f, &rng, pool, &npool);
        }
    const char *meta[10] = {"liif.variant", sp->variant, "liif.local_ensemble", sp->local_ensemble ? "true" : "false",
                            "liif.feat_unfold", sp->feat_unfold ? "true" : "false", "liif.cell_decode",
                            sp->cell_decode ? "true" : "false", "liif.detail", detail};
    liif_error err;
    liif_status s = liif_st_write(path, e, n, meta, detail ? 5 : 4, &err);
    if (s) printf("rm_write: %s\n", err.msg);
    for (int i = 0; i < n; i++) free((char *)e[i].name);
    for (int i = 0; i < npool; i++) free(pool[i]);
    free(e);
    free(pool);
    return s ? 1 : 0;
}

static inline int rm_write_channels(const char *path, const rm_spec *sp, int in_ch, int out_dim)
{
    return rm_write_meta(path, sp, in_ch, out_dim, NULL);
}

/* Writes the model to path; returns 0 on success (prints the error otherwise). */
static inline int rm_write(const char *path, const rm_spec *sp) { return rm_write_channels(path, sp, 3, 3); }

/* Writes sp to dir/m.safetensors and loads it (the file is removed); exits on failure. */
static inline liif_model *rm_load(const char *dir, const rm_spec *sp)
{
    char path[512];
    liif_model *m;
    liif_error err = {{0}};
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    if (rm_write(path, sp) || liif_model_load(path, &m, &err)) {
        printf("FAIL cannot make a random model: %s\n", err.msg);
        exit(1);
    }
    unlink(path);
    return m;
}

/* A w x h RGB image (HWC, [0,1]): a smooth pattern plus noise, structure for the encoder, no flat areas. */
static inline float *rm_image(int w, int h, unsigned seed)
{
    unsigned long long s = seed;
    float *p = malloc((size_t)w * h * 3 * sizeof(float));
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) {
                float v = 0.5f + 0.3f * sinf(0.3f * x + 0.7f * c) * cosf(0.21f * y) + 0.15f * rm_uniform(&s);
                p[((size_t)y * w + x) * 3 + c] = v < 0 ? 0 : (v > 1 ? 1 : v);
            }
    return p;
}

#endif
