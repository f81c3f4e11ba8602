/* fuzz_model.c: libFuzzer harness: a safetensors file through the reader, the model loader and its
 * validation, then (for models small enough to run quickly) a tiny engine run whose output must be in [0,1]. */
#include <math.h>

#include "fuzz_util.h"
#include "liif.h"
#include "safetensors.h"

/* Every tensor and metadata entry of an opened file is reachable and consistent. */
static void walk(const char *path)
{
    liif_st_file *f = NULL;
    liif_error err;
    if (liif_st_open(path, &f, &err))
        return;
    for (int i = 0; i < liif_st_count(f); i++) {
        const liif_st_tensor *t = liif_st_at(f, i);
        if (liif_st_find(f, t->name) != t || t->nbytes != (size_t)t->numel * liif_dtype_size(t->dtype))
            abort();
        if (t->numel <= 4096) {
            float buf[4096];
            liif_st_read_f32(f, t->name, t->ndim, t->shape, buf, &err);
        }
    }
    liif_st_meta(f, "liif.variant");
    liif_st_close(f);
}

static void run_tiny(const liif_model *m)
{
    const liif_config *c = liif_model_config(m);
    long work = (long)c->n_feats * c->n_feats * (2L * c->n_resblocks + 2);
    for (int l = 0; l < c->n_hidden; l++) work += (long)c->hidden[l] * (l ? c->hidden[l - 1] : c->in_dim);
    if (work > 2000000) /* keeps an execution in milliseconds; the shapes themselves are tested apart */
        return;
    enum { W = 3, H = 2, OW = 5, OH = 3 };
    float img[H * W * 3], out[OH * OW * 3];
    for (int i = 0; i < H * W * 3; i++) img[i] = (float)((i * 37) % 11) / 10.0f;
    liif_engine *e = NULL;
    liif_error err;
    if (liif_engine_new(m, LIIF_BACKEND_CPU, &e, NULL, 0, &err))
        return;
    liif_options o;
    liif_options_init(&o);
    o.threads = 1;
    liif_image in = {img, W, H, W * 3};
    liif_region r = {OW, OH, 0, 0, OW, OH};
    if (liif_upscale_region(e, &in, &r, out, OW * 3, &o, &err) == LIIF_OK)
        for (int i = 0; i < OH * OW * 3; i++)
            if (!(out[i] >= 0.0f && out[i] <= 1.0f) && !isnan(out[i]))
                abort(); /* outputs are clamped; NaN weights may give NaN, nothing else may escape */
    liif_engine_free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_as_file(data, size);
    walk(path);
    liif_model *m = NULL;
    liif_error err;
    if (liif_model_load(path, &m, &err) == LIIF_OK) {
        run_tiny(m);
        liif_model_free(m);
    }
    return 0;
}
