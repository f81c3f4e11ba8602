/* model.c: builds a liif_model (config + float32 parameters) from a safetensors file. */
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "safetensors.h"

/* ------------------------------------------------------------ shape lookup */

static const liif_st_tensor *find_fmt(const liif_st_file *f, char *name, size_t n, const char *fmt, int i)
{
    snprintf(name, n, fmt, i);
    return liif_st_find(f, name);
}

static liif_status need(const liif_st_file *f, const char *name, int ndim, const liif_st_tensor **out,
                        liif_error *err)
{
    const liif_st_tensor *t = liif_st_find(f, name);
    if (!t)
        return liif_error_set(err, LIIF_ERR_MODEL, "%s: missing tensor '%s'", liif_st_path(f), name);
    if (t->ndim != ndim)
        return liif_error_set(err, LIIF_ERR_MODEL, "%s: tensor '%s' has %d dimensions, expected %d",
                              liif_st_path(f), name, t->ndim, ndim);
    for (int d = 0; d < ndim; d++)
        if (t->shape[d] < 1 || t->shape[d] > 65536)
            return liif_error_set(err, LIIF_ERR_MODEL, "%s: tensor '%s' has an implausible size %lld",
                                  liif_st_path(f), name, (long long)t->shape[d]);
    *out = t;
    return LIIF_OK;
}

/* Parse a boolean metadata value; -1 when absent. */
static int meta_bool(const liif_st_file *f, const char *key, int *out, liif_error *err)
{
    const char *v = liif_st_meta(f, key);
    *out = -1;
    if (!v) return 0;
    if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "True")) *out = 1;
    else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "False")) *out = 0;
    else {
        char q[64];
        liif_error_set(err, LIIF_ERR_MODEL, "%s: metadata '%s' must be true or false, got '%s'",
                       liif_st_path(f), key, liif_printable(v, q, sizeof q));
        return -1;
    }
    return 0;
}

/* Count the Linear layers of decoder `prefix` (imnet or imnet2) and check the chain of shapes. */
static liif_status read_mlp_shape(const liif_st_file *f, const char *prefix, liif_mlp *mlp, liif_error *err)
{
    char name[128];
    int n = 0;
    while (n <= LIIF_MAX_HIDDEN + 1) {
        snprintf(name, sizeof name, "%s.layers.%d.weight", prefix, 2 * n);
        if (!liif_st_find(f, name)) break;
        n++;
    }
    if (n == 0)
        return liif_error_set(err, LIIF_ERR_MODEL, "%s: missing tensor '%s.layers.0.weight'", liif_st_path(f), prefix);
    if (n > LIIF_MAX_HIDDEN + 1)
        return liif_error_set(err, LIIF_ERR_MODEL, "%s: decoder '%s' has more than %d layers",
                              liif_st_path(f), prefix, LIIF_MAX_HIDDEN + 1);
    mlp->n_layers = n;
    for (int l = 0; l < n; l++) {
        const liif_st_tensor *t = NULL;
        snprintf(name, sizeof name, "%s.layers.%d.weight", prefix, 2 * l);
        liif_status s = need(f, name, 2, &t, err);
        if (s) return s;
        if (l == 0) mlp->dims[0] = (int)t->shape[1];
        else if (t->shape[1] != mlp->dims[l])
            return liif_error_set(err, LIIF_ERR_MODEL, "%s: tensor '%s' has shape [%lld, %lld], expected [*, %d]",
                                  liif_st_path(f), name, (long long)t->shape[0], (long long)t->shape[1], mlp->dims[l]);
        mlp->dims[l + 1] = (int)t->shape[0];
    }
    return LIIF_OK;
}

/* Infer feat_unfold and cell_decode from the decoder's input width; metadata, if present, must agree. */
static liif_status infer_flags(const liif_st_file *f, liif_config *c, liif_error *err)
{
    int mu, mc, me;
    if (meta_bool(f, "liif.feat_unfold", &mu, err) || meta_bool(f, "liif.cell_decode", &mc, err) ||
        meta_bool(f, "liif.local_ensemble", &me, err))
        return LIIF_ERR_MODEL;
    int found = 0;
    for (int u = 0; u < 2; u++)
        for (int cell = 0; cell < 2; cell++) {
            if ((mu >= 0 && mu != u) || (mc >= 0 && mc != cell)) continue;
            if (c->n_feats * (u ? 9 : 1) + 2 + (cell ? 2 : 0) == c->in_dim) {
                c->feat_unfold = u;
                c->cell_decode = cell;
                found = 1;
            }
        }
    if (!found)
        return liif_error_set(err, LIIF_ERR_MODEL,
                              "%s: tensor 'imnet.layers.0.weight' has %d inputs, which fits no decoder for %d features",
                              liif_st_path(f), c->in_dim, c->n_feats);
    c->local_ensemble = me >= 0 ? me : 1;
    return LIIF_OK;
}

/* Decide the decoders' feature sources from imnet2's presence and the variant metadata. */
static liif_status infer_variant(const liif_st_file *f, liif_config *c, liif_error *err)
{
    const char *v = liif_st_meta(f, "liif.variant");
    c->dec_source[0] = c->dec_source[1] = LIIF_FEAT_LAST;
    if (c->n_decoders == 2) c->dec_source[0] = LIIF_FEAT_MID; /* LIIF-GAN unless said otherwise */
    if (v) {
        int two = !strcmp(v, "liif-gan") || !strcmp(v, "liif-gan-sf");
        int one = !strcmp(v, "liif") || !strcmp(v, "liif-gan-s");
        char q[64];
        liif_printable(v, q, sizeof q);
        if (!one && !two)
            return liif_error_set(err, LIIF_ERR_MODEL, "%s: unknown model variant '%s'", liif_st_path(f), q);
        if ((two ? 2 : 1) != c->n_decoders)
            return liif_error_set(err, LIIF_ERR_MODEL, "%s: variant '%s' needs %d decoder(s), the file has %d",
                                  liif_st_path(f), q, two ? 2 : 1, c->n_decoders);
        if (!strcmp(v, "liif-gan-sf")) c->dec_source[0] = LIIF_FEAT_LAST;
    }
    c->mid_block = c->n_resblocks / 2 - 1;
    const char *mb = liif_st_meta(f, "liif.mid_block");
    if (mb) {
        char *end;
        long b = strtol(mb, &end, 10);
        char q[64];
        if (!*mb || *end || b < 0 || b >= c->n_resblocks)
            return liif_error_set(err, LIIF_ERR_MODEL,
                                  "%s: metadata 'liif.mid_block' = '%s' is not a block index (0..%d)",
                                  liif_st_path(f), liif_printable(mb, q, sizeof q), c->n_resblocks - 1);
        c->mid_block = (int)b;
    }
    if (c->dec_source[0] == LIIF_FEAT_MID && c->mid_block < 0)
        return liif_error_set(err, LIIF_ERR_MODEL, "%s: a mid-layer decoder needs at least 2 residual blocks",
                              liif_st_path(f));
    return LIIF_OK;
}

/* A value outside [lo, hi]: "<file>: <what> is <v>; the engine supports <lo>..<hi>". */
static liif_status out_of_range(const char *path, const char *what, int v, int lo, int hi, liif_error *err)
{
    if (v >= lo && v <= hi)
        return LIIF_OK;
    if (lo == hi)
        return liif_error_set(err, LIIF_ERR_MODEL, "%s: %s is %d; every backend needs %d", path, what, v, lo);
    return liif_error_set(err, LIIF_ERR_MODEL, "%s: %s is %d; the engine supports %d..%d", path, what, v, lo, hi);
}

/* The one check of a model's shape against what every backend and the trainer run (liif.h):
 * they size their buffers from these fields and assume RGB in and out. */
static liif_status check_config(const char *path, const liif_config *c, liif_error *err)
{
    liif_status s = out_of_range(path, "the input channel count of 'encoder.head.0.weight'", c->in_ch,
                                 LIIF_MODEL_CHANNELS, LIIF_MODEL_CHANNELS, err);
    if (!s) s = out_of_range(path, "the output width of the decoder's last layer", c->out_dim, LIIF_MODEL_CHANNELS,
                             LIIF_MODEL_CHANNELS, err);
    if (!s) s = out_of_range(path, "the encoder width (n_feats)", c->n_feats, 1, LIIF_MAX_FEATS, err);
    if (!s) s = out_of_range(path, "the residual block count (n_resblocks)", c->n_resblocks, 0, LIIF_MAX_RESBLOCKS,
                             err);
    if (!s) s = out_of_range(path, "the decoder's hidden layer count", c->n_hidden, 1, LIIF_MAX_HIDDEN, err);
    for (int l = 0; !s && l < c->n_hidden; l++) {
        char what[64];
        snprintf(what, sizeof what, "the width of decoder hidden layer %d", l);
        s = out_of_range(path, what, c->hidden[l], 1, LIIF_MAX_WIDTH, err);
    }
    return s;
}

static liif_status read_config(const liif_st_file *f, liif_config *c, liif_mlp dec[2], liif_error *err)
{
    const liif_st_tensor *head = NULL;
    char name[128];
    liif_status s = need(f, "encoder.head.0.weight", 4, &head, err);
    if (s) return s;
    memset(c, 0, sizeof *c);
    c->n_feats = (int)head->shape[0];
    c->in_ch = (int)head->shape[1];
    while (find_fmt(f, name, sizeof name, "encoder.body.%d.body.0.weight", c->n_resblocks)) c->n_resblocks++;
    if (!find_fmt(f, name, sizeof name, "encoder.body.%d.weight", c->n_resblocks))
        return liif_error_set(err, LIIF_ERR_MODEL, "%s: missing tensor '%s'", liif_st_path(f), name);

    if ((s = read_mlp_shape(f, "imnet", &dec[0], err))) return s;
    c->n_decoders = liif_st_find(f, "imnet2.layers.0.weight") ? 2 : 1;
    if (c->n_decoders == 2) {
        if ((s = read_mlp_shape(f, "imnet2", &dec[1], err))) return s;
        if (dec[1].n_layers != dec[0].n_layers || memcmp(dec[1].dims, dec[0].dims, sizeof dec[0].dims))
            return liif_error_set(err, LIIF_ERR_MODEL, "%s: decoders 'imnet' and 'imnet2' differ in shape", liif_st_path(f));
    }
    c->in_dim = dec[0].dims[0];
    c->out_dim = dec[0].dims[dec[0].n_layers];
    c->n_hidden = dec[0].n_layers - 1;
    for (int l = 0; l < c->n_hidden; l++) c->hidden[l] = dec[0].dims[l + 1];
    if ((s = check_config(liif_st_path(f), c, err))) return s;
    if ((s = infer_flags(f, c, err))) return s;
    return infer_variant(f, c, err);
}

/* A plain decimal number ("0.35", "1", ".5"), read the same in every locale (strtod follows LC_NUMERIC, which a GIMP
 * plug-in sets from the user's language); -1 when the text is anything else. */
static double parse_decimal(const char *t)
{
    double v = 0, scale = 1;
    int digits = 0, point = 0;
    for (; *t; t++) {
        if (*t == '.' && !point) {
            point = 1;
        } else if (*t >= '0' && *t <= '9' && digits < 18) {
            v = v * 10 + (*t - '0');
            if (point) scale *= 10;
            digits++;
        } else {
            return -1;
        }
    }
    return digits ? v / scale : -1;
}

/* The detail a two-decoder model is meant to be used at (metadata liif.detail, chosen by whoever shipped it): a
 * decimal number in [0,1]; 1 when absent. */
static liif_status read_default_detail(const liif_st_file *f, const liif_config *c, double *out, liif_error *err)
{
    const char *v = liif_st_meta(f, "liif.detail");
    *out = 1.0;
    if (!v) return LIIF_OK;
    char q[64];
    double d = parse_decimal(v);
    if (!(d >= 0.0 && d <= 1.0))
        return liif_error_set(err, LIIF_ERR_MODEL, "%s: metadata 'liif.detail' = '%s' is not a detail in [0, 1]",
                              liif_st_path(f), liif_printable(v, q, sizeof q));
    if (c->n_decoders != 2)
        return liif_error_set(err, LIIF_ERR_MODEL, "%s: metadata 'liif.detail' on a model without a detail decoder",
                              liif_st_path(f));
    *out = d;
    return LIIF_OK;
}

/* ------------------------------------------------------------ parameters */

typedef struct {
    const liif_st_file *f;
    float *next;      /* where the next tensor goes; NULL while only counting */
    size_t count;
} param_reader;

static liif_status take(param_reader *r, const char *name, int ndim, const int64_t *shape, const float **out,
                        liif_error *err)
{
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d];
    if (r->next) {
        liif_status s = liif_st_read_f32(r->f, name, ndim, shape, r->next, err);
        if (s) return s;
        *out = r->next;
        r->next += n;
    }
    r->count += (size_t)n;
    return LIIF_OK;
}

static liif_status take_conv(param_reader *r, const char *prefix, int cin, int cout, liif_conv *cv, liif_error *err)
{
    char name[160];
    int64_t ws[4] = {cout, cin, 3, 3}, bs[1] = {cout};
    cv->cin = cin;
    cv->cout = cout;
    snprintf(name, sizeof name, "%s.weight", prefix);
    liif_status s = take(r, name, 4, ws, &cv->w, err);
    if (s) return s;
    snprintf(name, sizeof name, "%s.bias", prefix);
    return take(r, name, 1, bs, &cv->b, err);
}

static liif_status take_all(param_reader *r, liif_model *m, liif_error *err)
{
    const liif_config *c = &m->cfg;
    char prefix[128];
    liif_status s = take_conv(r, "encoder.head.0", c->in_ch, c->n_feats, &m->head, err);
    for (int i = 0; !s && i < c->n_resblocks; i++) {
        snprintf(prefix, sizeof prefix, "encoder.body.%d.body.0", i);
        s = take_conv(r, prefix, c->n_feats, c->n_feats, &m->body[2 * i], err);
        snprintf(prefix, sizeof prefix, "encoder.body.%d.body.2", i);
        if (!s) s = take_conv(r, prefix, c->n_feats, c->n_feats, &m->body[2 * i + 1], err);
    }
    snprintf(prefix, sizeof prefix, "encoder.body.%d", c->n_resblocks);
    if (!s) s = take_conv(r, prefix, c->n_feats, c->n_feats, &m->tail, err);
    for (int d = 0; !s && d < c->n_decoders; d++) {
        liif_mlp *mlp = &m->dec[d];
        for (int l = 0; !s && l < mlp->n_layers; l++) {
            char name[160];
            int64_t ws[2] = {mlp->dims[l + 1], mlp->dims[l]}, bs[1] = {mlp->dims[l + 1]};
            snprintf(name, sizeof name, "%s.layers.%d.weight", d ? "imnet2" : "imnet", 2 * l);
            s = take(r, name, 2, ws, &mlp->w[l], err);
            snprintf(name, sizeof name, "%s.layers.%d.bias", d ? "imnet2" : "imnet", 2 * l);
            if (!s) s = take(r, name, 1, bs, &mlp->b[l], err);
        }
    }
    return s;
}

liif_status liif_model_load(const char *path, liif_model **out, liif_error *err)
{
    liif_st_file *f = NULL;
    *out = NULL;
    liif_status s = liif_st_open(path, &f, err);
    if (s) return s;
    liif_model *m = calloc(1, sizeof *m);
    if (!m) {
        liif_st_close(f);
        return liif_error_set(err, LIIF_ERR_NOMEM, "%s: out of memory", path);
    }
    static _Atomic uint64_t next_serial;
    m->serial = atomic_fetch_add(&next_serial, 1) + 1;
    s = read_config(f, &m->cfg, m->dec, err);
    if (!s) s = read_default_detail(f, &m->cfg, &m->default_detail, err);
    if (!s) {
        m->body = calloc(2 * (size_t)m->cfg.n_resblocks + 1, sizeof *m->body);
        param_reader count = {f, NULL, 0};
        s = m->body ? take_all(&count, m, err) : liif_error_set(err, LIIF_ERR_NOMEM, "%s: out of memory", path);
        if (!s) {
            m->n_params = count.count;
            m->params = malloc(count.count * sizeof(float));
            param_reader fill = {f, m->params, 0};
            s = m->params ? take_all(&fill, m, err)
                          : liif_error_set(err, LIIF_ERR_NOMEM, "%s: out of memory for %zu parameters", path, count.count);
        }
    }
    liif_st_close(f);
    if (s) {
        liif_model_free(m);
        return s;
    }
    *out = m;
    return LIIF_OK;
}

void liif_model_free(liif_model *m)
{
    if (!m) return;
    free(m->params);
    free(m->body);
    free(m);
}

const liif_config *liif_model_config(const liif_model *m) { return &m->cfg; }

double liif_model_default_detail(const liif_model *m) { return m->default_detail; }

int liif_model_halo(const liif_model *m)
{
    const liif_config *c = &m->cfg;
    return liif_model_n_convs(c) + (c->feat_unfold ? 1 : 0) + (c->local_ensemble ? 1 : 0);
}
