/* backend_cpu.c: the fast CPU backend: oneDNN sgemm on cache-sized blocks, OpenMP threads, layer-1 precompute. */
#include <dnnl.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Pixels per convolution block and queries per decoder block: each thread runs a whole block
 * (im2col + GEMM + epilogue, or the whole MLP) while its data sits in L2, with a single-threaded
 * sgemm (oneDNN runs single-threaded inside an OpenMP parallel region). */
enum { CONV_BLOCK = 256, QUERY_BLOCK = 64 };

/* Weights rearranged once per model for the im2col layout used here: a 3x3 conv weight
 * [cout, cin, 3, 3] becomes [cout, 9, cin] so that an im2col row is 9 contiguous pixel
 * vectors. Layer 1 of each decoder becomes [out, in_dim] with its feature part in the same
 * [9, F] order; its 4 coordinate/cell columns are also kept transposed as [4, out]. */
typedef struct {
    const liif_model *m;
    float **conv;          /* n_convs permuted conv weights: head, body..., tail */
    float *w1[2];          /* permuted layer-1 weights, [out, in_dim] */
    float *w1_coord[2];    /* [4, out] */
} prepared;

typedef struct {
    liif_backend base;
    prepared prep;
    /* encoder buffers, [cap, F] each; P is [cap, hidden0] per decoder */
    size_t cap;
    float *x, *head, *t, *u, *a, *feat_last, *feat_mid, *pre[2];
    int th, tw, have_pre;
} cpu_backend;

/* ------------------------------------------------------------ preparation */

static void permute_conv(const float *w, int cout, int cin, int ldw, float *dst, int ldd)
{
    for (int o = 0; o < cout; o++)
        for (int i = 0; i < cin; i++)
            for (int k = 0; k < 9; k++) dst[(size_t)o * ldd + k * cin + i] = w[(size_t)o * ldw + i * 9 + k];
}

static void prepared_free(prepared *p, int n_convs)
{
    if (p->conv)
        for (int i = 0; i < n_convs; i++) free(p->conv[i]);
    free(p->conv);
    for (int d = 0; d < 2; d++) {
        free(p->w1[d]);
        free(p->w1_coord[d]);
    }
    memset(p, 0, sizeof *p);
}

static const liif_conv *conv_at(const liif_model *m, int i)
{
    int n = liif_model_n_convs(&m->cfg);
    return i == 0 ? &m->head : (i == n - 1 ? &m->tail : &m->body[i - 1]);
}

static liif_status prepare(cpu_backend *cb, const liif_model *m, liif_error *err)
{
    prepared *p = &cb->prep;
    if (p->m == m) return LIIF_OK;
    if (p->m) prepared_free(p, liif_model_n_convs(&p->m->cfg));
    const liif_config *c = &m->cfg;
    int n = liif_model_n_convs(c), F = c->n_feats, unf = c->feat_unfold ? 9 : 1;
    p->conv = calloc((size_t)n, sizeof *p->conv);
    int ok = p->conv != NULL;
    for (int i = 0; ok && i < n; i++) {
        const liif_conv *cv = conv_at(m, i);
        p->conv[i] = malloc((size_t)cv->cout * 9 * cv->cin * sizeof(float));
        ok = p->conv[i] != NULL;
        if (ok) permute_conv(cv->w, cv->cout, cv->cin, cv->cin * 9, p->conv[i], cv->cin * 9);
    }
    for (int d = 0; ok && d < c->n_decoders; d++) {
        const liif_mlp *mlp = &m->dec[d];
        int out = mlp->dims[1], in = mlp->dims[0], base = F * unf;
        p->w1[d] = malloc((size_t)out * in * sizeof(float));
        p->w1_coord[d] = calloc(4 * (size_t)out, sizeof(float));
        ok = p->w1[d] && p->w1_coord[d];
        if (!ok) break;
        if (c->feat_unfold) permute_conv(mlp->w[0], out, F, in, p->w1[d], in);
        for (int o = 0; o < out; o++) {
            if (!c->feat_unfold) memcpy(p->w1[d] + (size_t)o * in, mlp->w[0] + (size_t)o * in, F * sizeof(float));
            for (int k = base; k < in; k++) {
                p->w1[d][(size_t)o * in + k] = mlp->w[0][(size_t)o * in + k];
                p->w1_coord[d][(size_t)(k - base) * out + o] = mlp->w[0][(size_t)o * in + k];
            }
        }
    }
    p->m = m;
    if (!ok) {
        prepared_free(p, n);
        return liif_error_set(err, LIIF_ERR_NOMEM, "fast CPU backend: out of memory preparing weights");
    }
    return LIIF_OK;
}

/* ------------------------------------------------------------ convolution */

/* out = act(conv3x3(in) + bias + res) (ksize 3) or act(in @ W^T + bias + res) (ksize 1).
 * in (h, w, cin), out and res (h, w, cout), HWC. wp is [cout, ksize^2 * cin] rows ldw apart.
 * bias and res may be NULL. Blocks of CONV_BLOCK pixels run in parallel. */
static liif_status conv_fast(const float *in, int h, int w, int cin, int ksize, const float *wp, int ldw,
                             const float *bias, const float *res, int relu, int cout, float *out, int threads)
{
    size_t np = (size_t)h * w;
    long nblocks = (long)((np + CONV_BLOCK - 1) / CONV_BLOCK);
    int kk = ksize * ksize * cin, failed = 0;
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        float *col = ksize == 3 ? malloc((size_t)CONV_BLOCK * kk * sizeof(float)) : NULL;
        if (ksize == 3 && !col) failed = 1;
#pragma omp for schedule(dynamic)
        for (long blk = 0; blk < nblocks; blk++) {
            if (failed) continue;
            size_t p0 = (size_t)blk * CONV_BLOCK;
            int n = (int)(np - p0 < CONV_BLOCK ? np - p0 : CONV_BLOCK);
            const float *a = in + p0 * cin;
            if (ksize == 3) {
                for (int p = 0; p < n; p++) { /* im2col: 9 neighbour vectors, zero outside */
                    int y = (int)((p0 + p) / w), x = (int)((p0 + p) % w);
                    for (int k = 0; k < 9; k++) {
                        int yy = y + k / 3 - 1, xx = x + k % 3 - 1;
                        float *dst = col + (size_t)p * kk + k * cin;
                        if (yy < 0 || yy >= h || xx < 0 || xx >= w) memset(dst, 0, cin * sizeof(float));
                        else memcpy(dst, in + ((size_t)yy * w + xx) * cin, cin * sizeof(float));
                    }
                }
                a = col;
            }
            float *o = out + p0 * cout;
            dnnl_sgemm('N', 'T', n, cout, kk, 1.0f, a, ksize == 3 ? kk : cin, wp, ldw, 0.0f, o, cout);
            for (int p = 0; p < n; p++) {
                float *row = o + (size_t)p * cout;
                const float *r = res ? res + (p0 + p) * cout : NULL;
                for (int c = 0; c < cout; c++) {
                    float v = row[c] + (bias ? bias[c] : 0.0f) + (r ? r[c] : 0.0f);
                    row[c] = relu && v < 0.0f ? 0.0f : v;
                }
            }
        }
        free(col);
    }
    return failed ? LIIF_ERR_NOMEM : LIIF_OK;
}

/* ------------------------------------------------------------ encoder */

static int grow(float **buf, size_t n)
{
    float *p = realloc(*buf, n * sizeof(float));
    if (!p) return 0;
    *buf = p;
    return 1;
}

static liif_status reserve(cpu_backend *cb, const liif_config *c, size_t np)
{
    if (np <= cb->cap) return LIIF_OK;
    size_t nf = np * c->n_feats;
    int ok = grow(&cb->x, np * c->in_ch) && grow(&cb->head, nf) && grow(&cb->t, nf) && grow(&cb->u, nf) &&
             grow(&cb->a, nf) && grow(&cb->feat_last, nf);
    if (ok && c->n_decoders == 2 && c->dec_source[0] == LIIF_FEAT_MID) ok = grow(&cb->feat_mid, nf);
    for (int d = 0; ok && d < c->n_decoders; d++) ok = grow(&cb->pre[d], np * c->hidden[0]);
    if (!ok) return LIIF_ERR_NOMEM;
    cb->cap = np;
    return LIIF_OK;
}

static liif_status cpu_encode(liif_backend *be, const liif_model *m, const float *rgb, size_t stride, int th,
                              int tw, int precompute, liif_error *err)
{
    cpu_backend *cb = (cpu_backend *)be;
    const liif_config *c = &m->cfg;
    size_t np = (size_t)th * tw;
    int F = c->n_feats, T = liif_omp_threads(be->threads);
    liif_status s = prepare(cb, m, err);
    if (s) return s;
    if (reserve(cb, c, np))
        return liif_error_set(err, LIIF_ERR_NOMEM, "fast CPU encoder: out of memory for a %dx%d tile", tw, th);
    cb->th = th;
    cb->tw = tw;
    cb->have_pre = 0;
    for (int y = 0; y < th; y++)
        for (int i = 0; i < tw * c->in_ch; i++) cb->x[(size_t)y * tw * c->in_ch + i] = (rgb[y * stride + i] - 0.5f) / 0.5f;
    float **W = cb->prep.conv;
    s = conv_fast(cb->x, th, tw, c->in_ch, 3, W[0], 9 * c->in_ch, m->head.b, NULL, 0, F, cb->head, T);
    const float *t = cb->head;
    for (int b = 0; !s && b < c->n_resblocks; b++) { /* t = t + conv(relu(conv(t))) */
        float *next = t == cb->t ? cb->u : cb->t;
        s = conv_fast(t, th, tw, F, 3, W[1 + 2 * b], 9 * F, m->body[2 * b].b, NULL, 1, F, cb->a, T);
        if (!s) s = conv_fast(cb->a, th, tw, F, 3, W[2 + 2 * b], 9 * F, m->body[2 * b + 1].b, t, 0, F, next, T);
        t = next;
        if (cb->feat_mid && b == c->mid_block && c->n_decoders == 2 && c->dec_source[0] == LIIF_FEAT_MID)
            memcpy(cb->feat_mid, t, np * F * sizeof(float));
    }
    if (!s) s = conv_fast(t, th, tw, F, 3, W[liif_model_n_convs(c) - 1], 9 * F, m->tail.b, cb->head, 0, F, cb->feat_last, T);
    for (int d = 0; !s && precompute && d < c->n_decoders; d++) { /* layer 1's feature part, once per latent */
        const float *src = c->dec_source[d] == LIIF_FEAT_MID ? cb->feat_mid : cb->feat_last;
        s = conv_fast(src, th, tw, F, c->feat_unfold ? 3 : 1, cb->prep.w1[d], c->in_dim, NULL, NULL, 0,
                      c->hidden[0], cb->pre[d], T);
    }
    if (s) return liif_error_set(err, s, "fast CPU encoder: out of memory for a %dx%d tile", tw, th);
    cb->have_pre = precompute;
    return LIIF_OK;
}

/* ------------------------------------------------------------ decoder */

/* Geometry of one (query, shift) pair: the latent (tile-local offset), the MLP's 4 extra
 * inputs and the blend weight. */
typedef struct {
    size_t lat;          /* (i - ty) * tw + (j - tx) */
    int i, j;            /* global latent */
    float extra[4];      /* rel_r, rel_c, cell_r, cell_c */
    float weight;
} query_geom;

/* Computes the (query, shift) geometry of queries [q0, q0+n) of the job in reference order. */
static int geometry(const liif_config *c, const liif_decode_job *job, long q0, int n, query_geom *g)
{
    int nv = c->local_ensemble ? 2 : 1, ns = nv * nv;
    static const int vs_ens[2] = {-1, 1}, vs_one[1] = {0};
    const int *vs = c->local_ensemble ? vs_ens : vs_one;
    float cr = (float)(2.0 / job->H) * (float)job->h, cc = (float)(2.0 / job->W) * (float)job->w;
    for (int q = 0; q < n; q++) {
        int r = (int)((q0 + q) / job->cols), col = (int)((q0 + q) % job->cols);
        float qr = liif_coord(job->y0 + r, job->H), qc = liif_coord(job->x0 + col, job->W);
        query_geom *gq = g + (size_t)q * ns;
        float area[4];
        for (int a = 0, k = 0; a < nv; a++)
            for (int b = 0; b < nv; b++, k++) {
                int i = liif_nearest(liif_shifted(qr, vs[a], job->h, c->local_ensemble), job->h);
                int j = liif_nearest(liif_shifted(qc, vs[b], job->w, c->local_ensemble), job->w);
                float rr = (qr - liif_coord(i, job->h)) * (float)job->h;
                float rc = (qc - liif_coord(j, job->w)) * (float)job->w;
                gq[k].i = i;
                gq[k].j = j;
                gq[k].lat = (size_t)(i - job->ty) * job->tw + (size_t)(j - job->tx);
                gq[k].extra[0] = rr;
                gq[k].extra[1] = rc;
                gq[k].extra[2] = cr;
                gq[k].extra[3] = cc;
                area[k] = fabsf(rr * rc) + 1e-9f;
            }
        if (ns == 1) gq[0].weight = area[0] / area[0];
        else {
            float tot = area[0] + area[1] + area[2] + area[3];
            for (int k = 0; k < 4; k++) gq[k].weight = area[3 - k] / tot;
        }
    }
    return n * ns;
}

/* Layer 1 from the precomputed feature term: h = relu(P[lat] + b + W_coord . extra). */
static void layer1_pre(const float *pre, const float *bias, const float *wc, int out, int n_extra,
                       const query_geom *g, int rows, float *h)
{
    for (int r = 0; r < rows; r++) {
        const float *p = pre + g[r].lat * out;
        float *o = h + (size_t)r * out;
        for (int k = 0; k < out; k++) o[k] = p[k] + bias[k];
        for (int e = 0; e < n_extra; e++) {
            float v = g[r].extra[e];
            const float *w = wc + (size_t)e * out;
            for (int k = 0; k < out; k++) o[k] += v * w[k];
        }
        for (int k = 0; k < out; k++) o[k] = o[k] < 0.0f ? 0.0f : o[k];
    }
}

/* The plain layer-1 input: 9 neighbour feature vectors (zeros outside the image) in the
 * permuted order, or the feature alone without unfold, then the extra inputs. */
static void gather_plain(const cpu_backend *cb, const float *feat, const liif_config *c, const liif_decode_job *job,
                         const query_geom *g, int rows, float *xin)
{
    int F = c->n_feats, in = c->in_dim, base = F * (c->feat_unfold ? 9 : 1);
    for (int r = 0; r < rows; r++) {
        float *v = xin + (size_t)r * in;
        if (!c->feat_unfold) memcpy(v, feat + g[r].lat * F, F * sizeof(float));
        else
            for (int k = 0; k < 9; k++) {
                int y = g[r].i + k / 3 - 1, x = g[r].j + k % 3 - 1;
                if (y < 0 || y >= job->h || x < 0 || x >= job->w) memset(v + k * F, 0, F * sizeof(float));
                else memcpy(v + k * F, feat + ((size_t)(y - job->ty) * cb->tw + (x - job->tx)) * F, F * sizeof(float));
            }
        memcpy(v + base, g[r].extra, (size_t)(in - base) * sizeof(float));
    }
}

static void bias_relu(float *x, int rows, int n, const float *b, int relu)
{
    for (int r = 0; r < rows; r++) {
        float *o = x + (size_t)r * n;
        for (int k = 0; k < n; k++) {
            float v = o[k] + b[k];
            o[k] = relu && v < 0.0f ? 0.0f : v;
        }
    }
}

/* Dot product with 8 independent partial sums, so the compiler can keep them in one vector register. */
static float dot(const float *a, const float *b, int n)
{
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += a[i + j] * b[i + j];
    float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

/* Decoder d on `rows` (query, shift) rows; the prediction of row r goes to pred[r*out_dim]. */
static void mlp_block(const cpu_backend *cb, const liif_model *m, int d, const liif_decode_job *job,
                      const query_geom *g, int rows, float *bufa, float *bufb, float *pred)
{
    const liif_config *c = &m->cfg;
    const liif_mlp *mlp = &m->dec[d];
    int h1 = mlp->dims[1], base = c->n_feats * (c->feat_unfold ? 9 : 1);
    if (cb->have_pre) {
        layer1_pre(cb->pre[d], mlp->b[0], cb->prep.w1_coord[d], h1, c->in_dim - base, g, rows, bufa);
    } else {
        const float *feat = c->dec_source[d] == LIIF_FEAT_MID ? cb->feat_mid : cb->feat_last;
        gather_plain(cb, feat, c, job, g, rows, bufb);
        dnnl_sgemm('N', 'T', rows, h1, c->in_dim, 1.0f, bufb, c->in_dim, cb->prep.w1[d], c->in_dim, 0.0f, bufa, h1);
        bias_relu(bufa, rows, h1, mlp->b[0], 1);
    }
    float *x = bufa, *y = bufb;
    for (int l = 1; l < mlp->n_layers - 1; l++) {
        int k = mlp->dims[l], n = mlp->dims[l + 1];
        dnnl_sgemm('N', 'T', rows, n, k, 1.0f, x, k, mlp->w[l], k, 0.0f, y, n);
        bias_relu(y, rows, n, mlp->b[l], 1);
        float *t = x; x = y; y = t;
    }
    int l = mlp->n_layers - 1, k = mlp->dims[l], n = mlp->dims[l + 1];
    for (int r = 0; r < rows; r++) /* the last layer is narrow (3 outputs): dot products */
        for (int o = 0; o < n; o++)
            pred[(size_t)r * n + o] = dot(mlp->w[l] + (size_t)o * k, x + (size_t)r * k, k) + mlp->b[l][o];
}

static liif_status cpu_decode(liif_backend *be, const liif_model *m, const liif_decode_job *job, float *out,
                              size_t out_stride, liif_error *err)
{
    cpu_backend *cb = (cpu_backend *)be;
    const liif_config *c = &m->cfg;
    int ns = c->local_ensemble ? 4 : 1, maxw = c->in_dim;
    for (int l = 0; l < c->n_hidden; l++) maxw = c->hidden[l] > maxw ? c->hidden[l] : maxw;
    long nq = (long)job->rows * job->cols, nblocks = (nq + QUERY_BLOCK - 1) / QUERY_BLOCK;
    size_t rows_max = (size_t)QUERY_BLOCK * ns;
    int failed = 0, threads = liif_omp_threads(be->threads);
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        query_geom *g = malloc(rows_max * sizeof *g);
        float *bufa = malloc(rows_max * maxw * sizeof(float)), *bufb = malloc(rows_max * maxw * sizeof(float));
        float *pred = malloc(rows_max * 3 * sizeof(float));
        if (!g || !bufa || !bufb || !pred) failed = 1;
#pragma omp for schedule(dynamic)
        for (long blk = 0; blk < nblocks; blk++) {
            if (failed) continue;
            long q0 = blk * QUERY_BLOCK;
            int n = (int)(nq - q0 < QUERY_BLOCK ? nq - q0 : QUERY_BLOCK);
            int rows = geometry(c, job, q0, n, g);
            float total[QUERY_BLOCK][3];
            memset(total, 0, sizeof total);
            for (int d = 0; d < c->n_decoders; d++) {
                mlp_block(cb, m, d, job, g, rows, bufa, bufb, pred);
                for (int q = 0; q < n; q++) {
                    float dq[3] = {0, 0, 0};
                    for (int k = 0; k < ns; k++)
                        for (int ch = 0; ch < 3; ch++)
                            dq[ch] = dq[ch] + pred[((size_t)q * ns + k) * 3 + ch] * g[q * ns + k].weight;
                    for (int ch = 0; ch < 3; ch++) total[q][ch] += d == 0 ? dq[ch] : job->alpha * dq[ch];
                }
            }
            for (int q = 0; q < n; q++) {
                long gq = q0 + q;
                float *o = out + (size_t)(gq / job->cols) * out_stride + (size_t)(gq % job->cols) * 3;
                for (int ch = 0; ch < 3; ch++) {
                    float p = total[q][ch] * 0.5f + 0.5f;
                    o[ch] = p < 0.0f ? 0.0f : (p > 1.0f ? 1.0f : p);
                }
            }
        }
        free(g); free(bufa); free(bufb); free(pred);
    }
    if (failed) return liif_error_set(err, LIIF_ERR_NOMEM, "fast CPU decoder: out of memory");
    return LIIF_OK;
}

static size_t cpu_bytes_per_tile_px(const liif_backend *be, const liif_model *m)
{
    (void)be;
    const liif_config *c = &m->cfg;
    return ((size_t)c->n_feats * 6 + (size_t)c->hidden[0] * c->n_decoders + c->in_ch) * sizeof(float);
}

static const float *cpu_features(liif_backend *be, int mid)
{
    const cpu_backend *cb = (const cpu_backend *)be;
    return mid ? cb->feat_mid : cb->feat_last;
}

static void cpu_destroy(liif_backend *be)
{
    cpu_backend *cb = (cpu_backend *)be;
    if (cb->prep.m) prepared_free(&cb->prep, liif_model_n_convs(&cb->prep.m->cfg));
    free(cb->x); free(cb->head); free(cb->t); free(cb->u); free(cb->a);
    free(cb->feat_last); free(cb->feat_mid); free(cb->pre[0]); free(cb->pre[1]);
    free(cb);
}

liif_backend *liif_backend_cpu_new(int threads)
{
    cpu_backend *cb = calloc(1, sizeof *cb);
    if (!cb) return NULL;
    cb->base.name = "cpu";
    cb->base.encode = cpu_encode;
    cb->base.decode = cpu_decode;
    cb->base.bytes_per_tile_px = cpu_bytes_per_tile_px;
    cb->base.features = cpu_features;
    cb->base.destroy = cpu_destroy;
    cb->base.threads = threads > 0 ? threads : omp_get_num_procs();
    return &cb->base;
}
