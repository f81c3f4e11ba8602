/* backend_ref.c: the reference CPU backend: plain loops that follow MODEL.md line by line (the oracle). */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct {
    liif_backend base;
    float *feat_last;   /* [th, tw, F] encoder output */
    float *feat_mid;    /* [th, tw, F] output of residual block mid_block, or NULL */
    int th, tw;
} ref_backend;

/* out[y, x, o] = b[o] + sum_{i, ky, kx} w[o, i, ky, kx] * in[y+ky-1, x+kx-1, i], zero outside.
 * in is (h, w, cin), out is (h, w, cout), both HWC. */
static void conv3x3_ref(const float *in, int h, int w, const liif_conv *cv, float *out)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int o = 0; o < cv->cout; o++) {
                float acc = 0.0f;
                for (int i = 0; i < cv->cin; i++)
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++) {
                            int yy = y + ky - 1, xx = x + kx - 1;
                            if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
                            acc += cv->w[((o * cv->cin + i) * 3 + ky) * 3 + kx] * in[((size_t)yy * w + xx) * cv->cin + i];
                        }
                out[((size_t)y * w + x) * cv->cout + o] = acc + cv->b[o];
            }
}

static void relu_ref(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

static void add_ref(float *x, const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

static liif_status ref_encode(liif_backend *be, const liif_model *m, const float *rgb, size_t stride, int th,
                              int tw, int y0, int precompute, liif_error *err)
{
    (void)y0; /* plain loops: a pixel's result does not depend on its place */
    ref_backend *rb = (ref_backend *)be;
    const liif_config *c = &m->cfg;
    size_t np = (size_t)th * tw, nf = np * c->n_feats;
    (void)precompute;
    free(rb->feat_last);
    free(rb->feat_mid);
    rb->feat_mid = NULL;
    rb->feat_last = malloc(nf * sizeof(float));
    float *x = malloc(np * c->in_ch * sizeof(float));
    float *head = malloc(nf * sizeof(float)), *t = malloc(nf * sizeof(float)), *a = malloc(nf * sizeof(float));
    int need_mid = c->n_decoders == 2 && c->dec_source[0] == LIIF_FEAT_MID;
    if (need_mid) rb->feat_mid = malloc(nf * sizeof(float));
    if (!rb->feat_last || !x || !head || !t || !a || (need_mid && !rb->feat_mid)) {
        free(x); free(head); free(t); free(a);
        return liif_error_set(err, LIIF_ERR_NOMEM, "reference encoder: out of memory for a %dx%d tile", tw, th);
    }
    rb->th = th;
    rb->tw = tw;
    for (int y = 0; y < th; y++)           /* x = (rgb - 0.5) / 0.5 */
        for (int i = 0; i < tw * c->in_ch; i++) x[(size_t)y * tw * c->in_ch + i] = (rgb[y * stride + i] - 0.5f) / 0.5f;
    conv3x3_ref(x, th, tw, &m->head, head);
    memcpy(t, head, nf * sizeof(float));
    for (int b = 0; b < c->n_resblocks; b++) { /* t = t + conv(relu(conv(t))) */
        conv3x3_ref(t, th, tw, &m->body[2 * b], a);
        relu_ref(a, nf);
        conv3x3_ref(a, th, tw, &m->body[2 * b + 1], rb->feat_last);
        add_ref(t, rb->feat_last, nf);
        if (need_mid && b == c->mid_block) memcpy(rb->feat_mid, t, nf * sizeof(float));
    }
    conv3x3_ref(t, th, tw, &m->tail, rb->feat_last);
    add_ref(rb->feat_last, head, nf);    /* global skip */
    free(x); free(head); free(t); free(a);
    return LIIF_OK;
}

/* y = MLP(x): Linear layers with ReLU between them; scratch holds two vectors of the widest layer. */
static void mlp_ref(const liif_mlp *mlp, const float *x, float *y, float *scratch, int maxw)
{
    const float *in = x;
    float *buf[2] = {scratch, scratch + maxw};
    for (int l = 0; l < mlp->n_layers; l++) {
        int k = mlp->dims[l], n = mlp->dims[l + 1];
        float *o = l == mlp->n_layers - 1 ? y : buf[l & 1];
        for (int j = 0; j < n; j++) {
            float acc = 0.0f;
            for (int i = 0; i < k; i++) acc += mlp->w[l][(size_t)j * k + i] * in[i];
            acc += mlp->b[l][j];
            o[j] = (l < mlp->n_layers - 1 && acc < 0.0f) ? 0.0f : acc;
        }
        in = o;
    }
}

/* The MLP input of latent (i, j) (global indices): the 3x3-unfolded feature with channel index
 * c*9 + 3*(dy+1) + (dx+1) (zeros outside the image), or the plain feature without unfold. */
static void gather_ref(const ref_backend *rb, const float *feat, const liif_config *c, const liif_decode_job *job,
                       int i, int j, float *v)
{
    int F = c->n_feats;
    if (!c->feat_unfold) {
        memcpy(v, feat + ((size_t)(i - job->ty) * rb->tw + (j - job->tx)) * F, F * sizeof(float));
        return;
    }
    for (int ch = 0; ch < F; ch++)
        for (int dy = -1; dy <= 1; dy++)
            for (int dx = -1; dx <= 1; dx++) {
                int y = i + dy, x = j + dx;
                float val = 0.0f;
                if (y >= 0 && y < job->h && x >= 0 && x < job->w)
                    val = feat[((size_t)(y - job->ty) * rb->tw + (x - job->tx)) * F + ch];
                v[ch * 9 + (dy + 1) * 3 + (dx + 1)] = val;
            }
}

/* The MLP input rows of output pixel (row, col) of the job for one decoder's features, one row
 * per ensemble shift in the order (-1,-1), (-1,+1), (+1,-1), (+1,+1), and each shift's area.
 * Returns the number of shifts (4, or 1 without the local ensemble). */
static int query_inputs(const ref_backend *rb, const liif_config *c, const float *feat, const liif_decode_job *job,
                        int row, int col, float *rows, float *area)
{
    static const int vs_ens[2] = {-1, 1}, vs_one[1] = {0};
    const int *vs = c->local_ensemble ? vs_ens : vs_one;
    int nv = c->local_ensemble ? 2 : 1, base = c->n_feats * (c->feat_unfold ? 9 : 1), k = 0;
    float qr = liif_coord(job->y0 + row, job->H), qc = liif_coord(job->x0 + col, job->W);
    for (int a = 0; a < nv; a++)
        for (int b = 0; b < nv; b++, k++) {
            int i = liif_nearest(liif_shifted(qr, vs[a], job->h, c->local_ensemble), job->h);
            int j = liif_nearest(liif_shifted(qc, vs[b], job->w, c->local_ensemble), job->w);
            float rel_r = (qr - liif_coord(i, job->h)) * (float)job->h;  /* from the UNshifted query */
            float rel_c = (qc - liif_coord(j, job->w)) * (float)job->w;
            float *v = rows + (size_t)k * c->in_dim;
            gather_ref(rb, feat, c, job, i, j, v);
            v[base] = rel_r;
            v[base + 1] = rel_c;
            if (c->cell_decode) {
                v[base + 2] = (float)(2.0 / job->H) * (float)job->h;
                v[base + 3] = (float)(2.0 / job->W) * (float)job->w;
            }
            area[k] = fabsf(rel_r * rel_c) + 1e-9f;
        }
    return k;
}

static liif_status ref_decode(liif_backend *be, const liif_model *m, const liif_decode_job *job, float *out,
                              size_t out_stride, liif_error *err)
{
    ref_backend *rb = (ref_backend *)be;
    const liif_config *c = &m->cfg;
    int maxw = c->in_dim;
    for (int l = 0; l < c->n_hidden; l++) maxw = c->hidden[l] > maxw ? c->hidden[l] : maxw;
    float *v = malloc(4 * (size_t)c->in_dim * sizeof(float)), *scratch = malloc(2 * (size_t)maxw * sizeof(float));
    if (!v || !scratch) {
        free(v); free(scratch);
        return liif_error_set(err, LIIF_ERR_NOMEM, "reference decoder: out of memory");
    }
    for (int r = 0; r < job->rows; r++)
        for (int col = 0; col < job->cols; col++) {
            float total[3] = {0};
            for (int d = 0; d < liif_decoders_for(c, job->alpha); d++) {
                const float *feat = c->dec_source[d] == LIIF_FEAT_MID ? rb->feat_mid : rb->feat_last;
                float pred[4][3], area[4], d_out[3] = {0};
                int ns = query_inputs(rb, c, feat, job, r, col, v, area);
                for (int k = 0; k < ns; k++) mlp_ref(&m->dec[d], v + (size_t)k * c->in_dim, pred[k], scratch, maxw);
                if (ns == 1) {
                    for (int ch = 0; ch < 3; ch++) d_out[ch] = pred[0][ch] * (area[0] / area[0]);
                } else {
                    float tot = area[0] + area[1] + area[2] + area[3];
                    for (int q = 0; q < 4; q++) /* each prediction weighs the opposite rectangle */
                        for (int ch = 0; ch < 3; ch++) d_out[ch] = d_out[ch] + pred[q][ch] * (area[3 - q] / tot);
                }
                for (int ch = 0; ch < 3; ch++) total[ch] += d == 0 ? d_out[ch] : job->alpha * d_out[ch];
            }
            float *o = out + (size_t)r * out_stride + (size_t)col * 3;
            for (int ch = 0; ch < 3; ch++) o[ch] = liif_output_value(job, total[ch]);
        }
    free(v);
    free(scratch);
    return LIIF_OK;
}

static const float *ref_features(liif_backend *be, int mid)
{
    const ref_backend *rb = (const ref_backend *)be;
    return mid ? rb->feat_mid : rb->feat_last;
}

void liif_ref_mlp_inputs(const liif_backend *be, const liif_model *m, const liif_decode_job *job, int row, int col,
                         float *rows)
{
    const ref_backend *rb = (const ref_backend *)be;
    float area[4];
    query_inputs(rb, &m->cfg, rb->feat_last, job, row, col, rows, area);
}

static size_t ref_bytes_per_tile_px(const liif_backend *be, const liif_model *m)
{
    (void)be;
    return (size_t)m->cfg.n_feats * 5 * sizeof(float);
}

static void ref_destroy(liif_backend *be)
{
    ref_backend *rb = (ref_backend *)be;
    free(rb->feat_last);
    free(rb->feat_mid);
    free(rb);
}

liif_backend *liif_backend_ref_new(void)
{
    ref_backend *rb = calloc(1, sizeof *rb);
    if (!rb) return NULL;
    rb->base.name = "cpu-ref";
    rb->base.encode = ref_encode;
    rb->base.decode = ref_decode;
    rb->base.bytes_per_tile_px = ref_bytes_per_tile_px;
    rb->base.features = ref_features;
    rb->base.destroy = ref_destroy;
    rb->base.threads = 1;
    return &rb->base;
}
