/* state.c: the training state (flat params, grads, Adam moments with a table of named tensors), Adam, checkpoints. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"
#include "train.h"

/* ------------------------------------------------------------ tensor table */

static void add_tensor(liif_train_state *s, const char *name, int ndim, const int64_t *shape, int trainable)
{
    liif_train_tensor *t = &s->tensors[s->n_tensors++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->numel = 1;
    for (int d = 0; d < ndim; d++) {
        t->shape[d] = shape[d];
        t->numel *= (size_t)shape[d];
    }
    t->offset = s->n_params;
    t->trainable = trainable;
    s->n_params += t->numel;
    if (trainable) s->n_trainable = s->n_params;
}

static void add_conv(liif_train_state *s, const char *prefix, int ic, int oc)
{
    char name[64];
    int64_t ws[4] = {oc, ic, 3, 3}, bs[1] = {oc};
    snprintf(name, sizeof name, "%s.weight", prefix);
    add_tensor(s, name, 4, ws, 1);
    snprintf(name, sizeof name, "%s.bias", prefix);
    add_tensor(s, name, 1, bs, 1);
}

/* The trainable tensors of a plain LIIF in state_dict order, then the frozen mean shifts of f. */
static void build_table(liif_train_state *s, const liif_st_file *f)
{
    const liif_config *c = &s->cfg;
    char prefix[64];
    add_conv(s, "encoder.head.0", c->in_ch, c->n_feats);
    for (int i = 0; i < c->n_resblocks; i++) {
        snprintf(prefix, sizeof prefix, "encoder.body.%d.body.0", i);
        add_conv(s, prefix, c->n_feats, c->n_feats);
        snprintf(prefix, sizeof prefix, "encoder.body.%d.body.2", i);
        add_conv(s, prefix, c->n_feats, c->n_feats);
    }
    snprintf(prefix, sizeof prefix, "encoder.body.%d", c->n_resblocks);
    add_conv(s, prefix, c->n_feats, c->n_feats);
    int dims[LIIF_MAX_HIDDEN + 2];
    dims[0] = c->in_dim;
    for (int l = 0; l < c->n_hidden; l++) dims[l + 1] = c->hidden[l];
    dims[c->n_hidden + 1] = c->out_dim;
    for (int l = 0; l <= c->n_hidden; l++) {
        char name[64];
        int64_t ws[2] = {dims[l + 1], dims[l]}, bs[1] = {dims[l + 1]};
        snprintf(name, sizeof name, "imnet.layers.%d.weight", 2 * l);
        add_tensor(s, name, 2, ws, 1);
        snprintf(name, sizeof name, "imnet.layers.%d.bias", 2 * l);
        add_tensor(s, name, 1, bs, 1);
    }
    static const char *frozen[4] = {"encoder.sub_mean.weight", "encoder.sub_mean.bias", "encoder.add_mean.weight",
                                    "encoder.add_mean.bias"};
    for (int i = 0; f && i < 4; i++) {
        const liif_st_tensor *t = liif_st_find(f, frozen[i]);
        if (t && t->ndim <= 4 && t->dtype != LIIF_DT_BOOL && t->dtype != LIIF_DT_U8 && t->dtype != LIIF_DT_I64)
            add_tensor(s, frozen[i], t->ndim, t->shape, 0);
    }
}

/* Point the named views at buffer base (params or grads). */
static void set_views(const liif_train_state *s, float *base, liif_train_views *v)
{
    const liif_config *c = &s->cfg;
    int k = 0;
    liif_train_layer *layers[2 * 64 + 4 + LIIF_MAX_HIDDEN + 1];
    layers[k++] = &v->head;
    for (int i = 0; i < 2 * c->n_resblocks; i++) layers[k++] = &v->body[i];
    layers[k++] = &v->tail;
    for (int l = 0; l <= c->n_hidden; l++) layers[k++] = &v->dec[l];
    for (int i = 0; i < k; i++) { /* tensors 2i, 2i+1 are layer i's weight and bias */
        const liif_train_tensor *w = &s->tensors[2 * i], *b = &s->tensors[2 * i + 1];
        layers[i]->oc = (int)w->shape[0];
        layers[i]->ic = (int)w->shape[1];
        layers[i]->w = base + w->offset;
        layers[i]->b = base + b->offset;
    }
}

/* A state with its table and zeroed buffers for cfg (plain LIIF only). */
static liif_status state_new(const liif_config *cfg, const liif_st_file *f, liif_train_state **out, liif_error *err)
{
    *out = NULL;
    if (cfg->n_decoders != 1)
        return liif_error_set(err, LIIF_ERR_UNSUPPORTED, "training: only plain LIIF (one decoder) is supported so far");
    if (cfg->n_resblocks > 64)
        return liif_error_set(err, LIIF_ERR_UNSUPPORTED, "training: at most 64 residual blocks");
    liif_train_state *s = calloc(1, sizeof *s);
    if (!s) return liif_error_set(err, LIIF_ERR_NOMEM, "training: out of memory");
    s->cfg = *cfg;
    s->tensors = calloc(4 * (size_t)cfg->n_resblocks + 4 + 2 * (LIIF_MAX_HIDDEN + 1) + 4, sizeof *s->tensors);
    s->p.body = calloc(2 * (size_t)cfg->n_resblocks + 1, sizeof(liif_train_layer));
    s->g.body = calloc(2 * (size_t)cfg->n_resblocks + 1, sizeof(liif_train_layer));
    if (s->tensors && s->p.body && s->g.body) {
        build_table(s, f);
        s->params = calloc(s->n_params, sizeof(float));
        s->grads = calloc(s->n_params, sizeof(float));
        s->m = calloc(s->n_params, sizeof(float));
        s->v = calloc(s->n_params, sizeof(float));
    }
    if (!s->params || !s->grads || !s->m || !s->v) {
        liif_train_state_free(s);
        return liif_error_set(err, LIIF_ERR_NOMEM, "training: out of memory for the parameters");
    }
    set_views(s, s->params, &s->p);
    set_views(s, s->grads, &s->g);
    *out = s;
    return LIIF_OK;
}

static void copy_layer(const liif_train_layer *dst, const float *w, const float *b, int conv)
{
    memcpy(dst->w, w, (size_t)dst->oc * dst->ic * (conv ? 9 : 1) * sizeof(float));
    memcpy(dst->b, b, (size_t)dst->oc * sizeof(float));
}

static void copy_model(liif_train_state *s, const liif_model *m)
{
    copy_layer(&s->p.head, m->head.w, m->head.b, 1);
    for (int i = 0; i < 2 * s->cfg.n_resblocks; i++) copy_layer(&s->p.body[i], m->body[i].w, m->body[i].b, 1);
    copy_layer(&s->p.tail, m->tail.w, m->tail.b, 1);
    for (int l = 0; l <= s->cfg.n_hidden; l++) copy_layer(&s->p.dec[l], m->dec[0].w[l], m->dec[0].b[l], 0);
}

liif_status liif_train_state_from_model(const liif_model *m, liif_train_state **out, liif_error *err)
{
    liif_status st = state_new(&m->cfg, NULL, out, err);
    if (st) return st;
    copy_model(*out, m);
    return LIIF_OK;
}

const liif_train_tensor *liif_train_state_find(const liif_train_state *s, const char *name)
{
    for (int i = 0; i < s->n_tensors; i++)
        if (!strcmp(s->tensors[i].name, name)) return &s->tensors[i];
    return NULL;
}

/* Frozen tensors and, when present, Adam moments and step from f. */
static liif_status load_extras(liif_train_state *s, const liif_st_file *f, liif_error *err)
{
    char name[96];
    liif_status st = LIIF_OK;
    for (int i = 0; !st && i < s->n_tensors; i++) {
        const liif_train_tensor *t = &s->tensors[i];
        if (!t->trainable) st = liif_st_read_f32(f, t->name, t->ndim, t->shape, s->params + t->offset, err);
    }
    const char *step = liif_st_meta(f, "adam.step");
    if (st || !step) return st;
    char *end;
    long long n = strtoll(step, &end, 10);
    char quoted[64];
    if (*end || n < 0)
        return liif_error_set(err, LIIF_ERR_MODEL, "%s: metadata 'adam.step' = '%s' is not a step count",
                              liif_st_path(f), liif_printable(step, quoted, sizeof quoted));
    s->step = n;
    for (int i = 0; !st && i < s->n_tensors; i++) {
        const liif_train_tensor *t = &s->tensors[i];
        if (!t->trainable) continue;
        snprintf(name, sizeof name, "adam.m.%s", t->name);
        st = liif_st_read_f32(f, name, t->ndim, t->shape, s->m + t->offset, err);
        snprintf(name, sizeof name, "adam.v.%s", t->name);
        if (!st) st = liif_st_read_f32(f, name, t->ndim, t->shape, s->v + t->offset, err);
    }
    return st;
}

liif_status liif_train_state_load(const char *path, liif_train_state **out, liif_error *err)
{
    liif_model *m = NULL;
    liif_st_file *f = NULL;
    *out = NULL;
    liif_status st = liif_model_load(path, &m, err);
    if (!st) st = liif_st_open(path, &f, err);
    if (!st) st = state_new(&m->cfg, f, out, err);
    if (!st) {
        copy_model(*out, m);
        st = load_extras(*out, f, err);
        if (st) {
            liif_train_state_free(*out);
            *out = NULL;
        }
    }
    liif_st_close(f);
    liif_model_free(m);
    return st;
}

liif_status liif_train_state_save(const liif_train_state *s, const char *path, int with_adam, liif_error *err)
{
    return liif_train_state_save_ex(s, path, with_adam, 0, NULL, 0, err);
}

liif_status liif_train_state_save_ex(const liif_train_state *s, const char *path, int with_adam, int fp16,
                                     const char *const *meta_extra, int n_extra, liif_error *err)
{
    int n = s->n_tensors, total = n;
    for (int i = 0; with_adam && i < n; i++) total += s->tensors[i].trainable ? 2 : 0;
    liif_st_entry *e = calloc((size_t)total, sizeof *e);
    char (*names)[96] = calloc((size_t)total, sizeof *names);
    const char **meta = calloc(4 + 2 * (size_t)(n_extra > 0 ? n_extra : 0), sizeof *meta);
    uint16_t *half = fp16 ? malloc(s->n_params * sizeof *half) : NULL;
    if (!e || !names || !meta || (fp16 && !half)) {
        free(e);
        free(names);
        free(meta);
        free(half);
        return liif_error_set(err, LIIF_ERR_NOMEM, "%s: out of memory", path);
    }
    for (size_t i = 0; half && i < s->n_params; i++) half[i] = liif_f32_to_f16(s->params[i]);
    int k = 0;
    for (int pass = 0; pass < (with_adam ? 3 : 1); pass++)
        for (int i = 0; i < n; i++) {
            const liif_train_tensor *t = &s->tensors[i];
            if (pass && !t->trainable) continue;
            const float *buf = pass == 0 ? s->params : (pass == 1 ? s->m : s->v);
            snprintf(names[k], sizeof names[k], "%s%s", pass == 0 ? "" : (pass == 1 ? "adam.m." : "adam.v."), t->name);
            e[k].name = names[k];
            e[k].dtype = pass == 0 && half ? LIIF_DT_F16 : LIIF_DT_F32;
            e[k].ndim = t->ndim;
            memcpy(e[k].shape, t->shape, sizeof t->shape);
            e[k].data = pass == 0 && half ? (const void *)(half + t->offset) : (const void *)(buf + t->offset);
            k++;
        }
    char step[32];
    snprintf(step, sizeof step, "%lld", (long long)s->step);
    int nm = 0;
    meta[nm++] = "liif.variant";
    meta[nm++] = "liif";
    if (with_adam) {
        meta[nm++] = "adam.step";
        meta[nm++] = step;
    }
    for (int i = 0; i < 2 * n_extra; i++) meta[nm++] = meta_extra[i];
    liif_status st = liif_st_write(path, e, k, meta, nm / 2, err);
    free(e);
    free(names);
    free(meta);
    free(half);
    return st;
}

void liif_train_state_free(liif_train_state *s)
{
    if (!s) return;
    free(s->tensors);
    free(s->p.body);
    free(s->g.body);
    free(s->params);
    free(s->grads);
    free(s->m);
    free(s->v);
    free(s);
}

/* ------------------------------------------------------------ optimizer */

void liif_train_zero_grad(liif_train_state *s)
{
    memset(s->grads, 0, s->n_params * sizeof(float));
}

liif_adam_config liif_adam_defaults(void)
{
    liif_adam_config o = {1e-4, 0.9, 0.999, 1e-8};
    return o;
}

/* torch.optim.Adam 1.13, _single_tensor_adam: the moment updates in float with the Python
 * scalars rounded to float; bias corrections and step size in double (Python floats);
 * denom = sqrt(v) / sqrt(1 - b2^t) + eps, eps added AFTER the correction; p += (-step_size) * m / denom. */
void liif_adam_update_arrays(float *params, const float *grads, float *m, float *v, size_t n, int64_t *step, double lr,
                             double beta1, double beta2, double eps)
{
    ++*step;
    double t = (double)*step;
    double bc1 = 1.0 - pow(beta1, t), bc2_sqrt = sqrt(1.0 - pow(beta2, t));
    float b1 = (float)beta1, one_b1 = (float)(1.0 - beta1);
    float b2 = (float)beta2, one_b2 = (float)(1.0 - beta2);
    float neg_step = (float)(-(lr / bc1)), corr = (float)bc2_sqrt, e = (float)eps;
    for (size_t i = 0; i < n; i++) {
        float g = grads[i];
        m[i] = m[i] * b1 + one_b1 * g;
        v[i] = v[i] * b2 + one_b2 * g * g;
        float denom = sqrtf(v[i]) / corr + e;
        params[i] = params[i] + neg_step * m[i] / denom;
    }
}

void liif_adam_update(liif_train_state *s, const liif_adam_config *o)
{
    liif_adam_update_arrays(s->params, s->grads, s->m, s->v, s->n_trainable, &s->step, o->lr, o->beta1, o->beta2,
                            o->eps);
}
