/* golden_util.h: reading the PyTorch goldens of <golden>/liif-edsr-baseline in the C tests. */
#ifndef LIIF_GOLDEN_UTIL_H
#define LIIF_GOLDEN_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "safetensors.h"

static const char *golden; /* the golden folder, from the command line */
static char tmpdir[256];   /* the test's scratch folder (mkdtemp) */

static inline float *read_tensor(const char *file, const char *name, int64_t *numel)
{
    char path[512];
    liif_st_file *f;
    liif_error err;
    snprintf(path, sizeof path, "%s/liif-edsr-baseline/%s", golden, file);
    if (liif_st_open(path, &f, &err)) { printf("FAIL %s\n", err.msg); exit(1); }
    const liif_st_tensor *t = liif_st_find(f, name);
    if (!t) { printf("FAIL %s: no tensor %s\n", path, name); exit(1); }
    float *v = malloc(t->numel * sizeof(float));
    if (t->dtype == LIIF_DT_I64) {
        for (int64_t i = 0; i < t->numel; i++) {
            int64_t x;
            memcpy(&x, (const char *)t->data + 8 * i, 8);
            v[i] = (float)x;
        }
    } else if (liif_st_read_f32(f, name, t->ndim, t->shape, v, &err)) { printf("FAIL %s\n", err.msg); exit(1); }
    *numel = t->numel;
    liif_st_close(f);
    return v;
}

/* weights.safetensors with imnet.layers.0.weight from layer0_file (if any) and metadata, in tmpdir. */
static inline liif_model *load_variant(const char *layer0_file, const char *meta_key, const char *meta_val)
{
    char path[512], out[512];
    liif_st_file *f, *g = NULL;
    liif_error err;
    snprintf(path, sizeof path, "%s/liif-edsr-baseline/weights.safetensors", golden);
    if (liif_st_open(path, &f, &err)) { printf("FAIL %s\n", err.msg); exit(1); }
    if (layer0_file) {
        snprintf(path, sizeof path, "%s/liif-edsr-baseline/%s", golden, layer0_file);
        if (liif_st_open(path, &g, &err)) { printf("FAIL %s\n", err.msg); exit(1); }
    }
    int n = liif_st_count(f);
    liif_st_entry *e = calloc(n, sizeof *e);
    for (int i = 0; i < n; i++) {
        const liif_st_tensor *t = liif_st_at(f, i);
        if (g && !strcmp(t->name, "imnet.layers.0.weight")) t = liif_st_find(g, t->name);
        e[i].name = t->name;
        e[i].dtype = t->dtype;
        e[i].ndim = t->ndim;
        memcpy(e[i].shape, t->shape, sizeof t->shape);
        e[i].data = t->data;
    }
    const char *meta[2] = {meta_key, meta_val};
    snprintf(out, sizeof out, "%s/variant.safetensors", tmpdir);
    if (liif_st_write(out, e, n, meta, meta_key ? 1 : 0, &err)) { printf("FAIL %s\n", err.msg); exit(1); }
    free(e);
    liif_st_close(f);
    if (g) liif_st_close(g);
    liif_model *m;
    if (liif_model_load(out, &m, &err)) { printf("FAIL %s\n", err.msg); exit(1); }
    unlink(out);
    return m;
}

static inline float *input_hwc(int *w, int *h)
{
    int64_t n;
    float *nchw = read_tensor("input.safetensors", "inp", &n);
    *h = 24;
    *w = 20;
    float *hwc = malloc(n * sizeof(float));
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 24 * 20; i++) hwc[i * 3 + c] = nchw[c * 24 * 20 + i];
    free(nchw);
    return hwc;
}
#endif
