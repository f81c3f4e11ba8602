/* liif_ref.c: reference training of the LIIF generator (the oracle): plain-loop <layer>_forward/_backward pairs and the model's forward/backward. */
#include <stdlib.h>
#include <string.h>

#include "train.h"

/* ------------------------------------------------------------ conv 3x3 */

void liif_conv3x3_forward(float *out, const float *inp, const float *weight, const float *bias, int B, int h, int w,
                          int IC, int OC)
{
    // out is (B,h,w,OC), inp is (B,h,w,IC), weight is (OC,IC,3,3), bias is (OC)
    for (int b = 0; b < B; b++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                float *o = out + (((size_t)b * h + y) * w + x) * OC;
                for (int oc = 0; oc < OC; oc++) {
                    float acc = 0.0f;
                    for (int ic = 0; ic < IC; ic++)
                        for (int ky = 0; ky < 3; ky++)
                            for (int kx = 0; kx < 3; kx++) {
                                int yy = y + ky - 1, xx = x + kx - 1;
                                if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
                                acc += weight[((oc * IC + ic) * 3 + ky) * 3 + kx] *
                                       inp[(((size_t)b * h + yy) * w + xx) * IC + ic];
                            }
                    o[oc] = acc + bias[oc];
                }
            }
}

void liif_conv3x3_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                           const float *weight, int B, int h, int w, int IC, int OC)
{
    // dinp and inp are (B,h,w,IC), dweight and weight are (OC,IC,3,3), dbias is (OC), dout is (B,h,w,OC)
    for (int b = 0; b < B; b++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                const float *d = dout + (((size_t)b * h + y) * w + x) * OC;
                for (int oc = 0; oc < OC; oc++) {
                    dbias[oc] += d[oc];
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++) {
                            int yy = y + ky - 1, xx = x + kx - 1;
                            if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
                            size_t px = (((size_t)b * h + yy) * w + xx) * IC;
                            for (int ic = 0; ic < IC; ic++) {
                                size_t wi = ((size_t)(oc * IC + ic) * 3 + ky) * 3 + kx;
                                dweight[wi] += d[oc] * inp[px + ic];
                                if (dinp) dinp[px + ic] += d[oc] * weight[wi];
                            }
                        }
                }
            }
}

/* ------------------------------------------------------------ relu, linear */

void liif_relu_forward(float *out, const float *inp, size_t n)
{
    // out and inp are (n)
    for (size_t i = 0; i < n; i++) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

void liif_relu_backward(float *dinp, const float *dout, const float *out, size_t n)
{
    // dinp, dout and out are (n); PyTorch's threshold_backward on the output
    for (size_t i = 0; i < n; i++) dinp[i] = out[i] > 0.0f ? dout[i] : 0.0f;
}

void liif_linear_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int IC, int OC)
{
    // out is (N,OC), inp is (N,IC), weight is (OC,IC), bias is (OC)
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            const float *x = inp + (size_t)n * IC, *wr = weight + (size_t)o * IC;
            float acc = 0.0f;
            for (int i = 0; i < IC; i++) acc += x[i] * wr[i];
            out[(size_t)n * OC + o] = acc + bias[o];
        }
}

void liif_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                          const float *weight, int N, int IC, int OC)
{
    // dinp and inp are (N,IC), dweight and weight are (OC,IC), dbias is (OC), dout is (N,OC)
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            float d = dout[(size_t)n * OC + o];
            const float *x = inp + (size_t)n * IC, *wr = weight + (size_t)o * IC;
            float *dw = dweight + (size_t)o * IC;
            dbias[o] += d;
            for (int i = 0; i < IC; i++) dw[i] += d * x[i];
            if (dinp)
                for (int i = 0; i < IC; i++) dinp[(size_t)n * IC + i] += d * wr[i];
        }
}

/* ------------------------------------------------------------ LIIF query */

/* Shifts (v_r, v_c) in the official order (-1,-1), (-1,+1), (+1,-1), (+1,+1), or (0,0). */
static void shift_of(const liif_config *c, int k, int *vr, int *vc)
{
    *vr = c->local_ensemble ? (k < 2 ? -1 : 1) : 0;
    *vc = c->local_ensemble ? (k % 2 ? 1 : -1) : 0;
}

void liif_query_forward(float *mlp_in, int *lat, float *wt, const float *feat, const float *coord, const float *cell,
                        const liif_config *c, int B, int h, int w, int Q)
{
    // mlp_in is (B,Q,K,D), lat and wt are (B,Q,K), feat is (B,h,w,F), coord and cell are (B,Q,2)
    int F = c->n_feats, K = c->local_ensemble ? 4 : 1, D = c->in_dim, base = F * (c->feat_unfold ? 9 : 1);
    for (int b = 0; b < B; b++)
        for (int q = 0; q < Q; q++) {
            size_t bq = (size_t)b * Q + q;
            float qr = coord[bq * 2], qc = coord[bq * 2 + 1], area[4];
            for (int k = 0; k < K; k++) {
                int vr, vc;
                shift_of(c, k, &vr, &vc);
                int i = liif_nearest(liif_shifted(qr, vr, h, c->local_ensemble), h);
                int j = liif_nearest(liif_shifted(qc, vc, w, c->local_ensemble), w);
                float rel_r = (qr - liif_coord(i, h)) * (float)h; /* from the UNshifted query */
                float rel_c = (qc - liif_coord(j, w)) * (float)w;
                float *v = mlp_in + (bq * K + k) * D;
                const float *fb = feat + (size_t)b * h * w * F;
                if (c->feat_unfold) { /* channel ch*9 + 3*(dy+1) + (dx+1), zeros outside */
                    for (int ch = 0; ch < F; ch++)
                        for (int dy = -1; dy <= 1; dy++)
                            for (int dx = -1; dx <= 1; dx++) {
                                int y = i + dy, x = j + dx;
                                int in = y >= 0 && y < h && x >= 0 && x < w;
                                v[ch * 9 + (dy + 1) * 3 + (dx + 1)] = in ? fb[((size_t)y * w + x) * F + ch] : 0.0f;
                            }
                } else {
                    memcpy(v, fb + ((size_t)i * w + j) * F, F * sizeof(float));
                }
                v[base] = rel_r;
                v[base + 1] = rel_c;
                if (c->cell_decode) {
                    v[base + 2] = cell[bq * 2] * (float)h;
                    v[base + 3] = cell[bq * 2 + 1] * (float)w;
                }
                lat[bq * K + k] = i * w + j;
                area[k] = fabsf(rel_r * rel_c) + 1e-9f;
            }
            if (K == 1) {
                wt[bq] = area[0] / area[0];
            } else {
                float tot = area[0] + area[1] + area[2] + area[3];
                for (int k = 0; k < 4; k++) wt[bq * 4 + k] = area[3 - k] / tot; /* the opposite rectangle */
            }
        }
}

void liif_query_backward(float *dfeat, const float *dmlp_in, const int *lat, const liif_config *c, int B, int h,
                         int w, int Q)
{
    // dfeat is (B,h,w,F), dmlp_in is (B,Q,K,D), lat is (B,Q,K)
    int F = c->n_feats, K = c->local_ensemble ? 4 : 1, D = c->in_dim;
    for (int b = 0; b < B; b++)
        for (int q = 0; q < Q; q++)
            for (int k = 0; k < K; k++) {
                size_t row = ((size_t)b * Q + q) * K + k;
                int i = lat[row] / w, j = lat[row] % w;
                const float *dv = dmlp_in + row * D;
                float *db = dfeat + (size_t)b * h * w * F;
                if (!c->feat_unfold) {
                    for (int ch = 0; ch < F; ch++) db[((size_t)i * w + j) * F + ch] += dv[ch];
                    continue;
                }
                for (int ch = 0; ch < F; ch++) /* the unfold's adjoint: sum the 9 shifted copies */
                    for (int dy = -1; dy <= 1; dy++)
                        for (int dx = -1; dx <= 1; dx++) {
                            int y = i + dy, x = j + dx;
                            if (y < 0 || y >= h || x < 0 || x >= w) continue;
                            db[((size_t)y * w + x) * F + ch] += dv[ch * 9 + (dy + 1) * 3 + (dx + 1)];
                        }
            }
}

void liif_blend_forward(float *pred, const float *mlp_out, const float *wt, int B, int Q, int K, int OC)
{
    // pred is (B,Q,OC), mlp_out is (B,Q,K,OC), wt is (B,Q,K)
    for (size_t bq = 0; bq < (size_t)B * Q; bq++)
        for (int o = 0; o < OC; o++) {
            float acc = 0.0f;
            for (int k = 0; k < K; k++) acc = acc + mlp_out[(bq * K + k) * OC + o] * wt[bq * K + k];
            pred[bq * OC + o] = acc;
        }
}

void liif_blend_backward(float *dmlp_out, const float *dpred, const float *wt, int B, int Q, int K, int OC)
{
    // dmlp_out is (B,Q,K,OC), dpred is (B,Q,OC), wt is (B,Q,K)
    for (size_t bq = 0; bq < (size_t)B * Q; bq++)
        for (int k = 0; k < K; k++)
            for (int o = 0; o < OC; o++) dmlp_out[(bq * K + k) * OC + o] += dpred[bq * OC + o] * wt[bq * K + k];
}

/* ------------------------------------------------------------ L1 loss */

float liif_l1_forward(const float *pred, const float *gt, size_t n)
{
    // pred and gt are (n)
    double acc = 0.0;
    for (size_t i = 0; i < n; i++) acc += fabsf(pred[i] - gt[i]);
    return (float)(acc / (double)n);
}

void liif_l1_backward(float *dpred, const float *pred, const float *gt, size_t n)
{
    // dpred, pred and gt are (n); mean's backward is 1/n in float, abs's is sign (sign(0) = 0)
    float inv = 1.0f / (float)n;
    for (size_t i = 0; i < n; i++) {
        float d = pred[i] - gt[i];
        dpred[i] = d > 0.0f ? inv : (d < 0.0f ? -inv : 0.0f);
    }
}

/* ------------------------------------------------------------ activations */

/* (Re)allocate a's buffers; rows: with the (B,Q,K,*) decoder buffers the reference needs. */
static liif_status acts_alloc(liif_train_acts *a, const liif_config *c, int rows_too, liif_error *err)
{
    int B = a->B, h = a->h, w = a->w, Q = a->Q;
    size_t R = (size_t)c->n_resblocks, px = (size_t)B * h * w, nf = px * c->n_feats, bq = (size_t)B * Q;
    size_t rows = rows_too ? bq * a->K : 0, C = (size_t)c->in_ch;
    free(a->mem);
    free(a->lat);
    a->mem = NULL;
    a->lat = NULL;
    /* sizes in the order of the pointers below */
    size_t sizes[9 + LIIF_MAX_HIDDEN + 1 + 6], k = 0;
    float **ptrs[9 + LIIF_MAX_HIDDEN + 1 + 6];
#define ACT(p, n) (ptrs[k] = &(p), sizes[k++] = (n))
    ACT(a->x, px * C);
    ACT(a->t, (R + 1) * nf);
    ACT(a->r, R * nf);
    ACT(a->feat, nf);
    ACT(a->wt, rows);
    ACT(a->mlp_in, rows * a->D);
    for (int l = 0; l <= c->n_hidden; l++) ACT(a->mlp_h[l], rows * (l < c->n_hidden ? c->hidden[l] : c->out_dim));
    ACT(a->pred, bq * C);
    ACT(a->gt, bq * C);
    ACT(a->dpred, bq * C);
    ACT(a->dmlp_a, rows * a->maxw);
    ACT(a->dmlp_b, rows * a->maxw);
    ACT(a->dfeat, nf);
    ACT(a->dt, nf);
    ACT(a->dr, nf);
#undef ACT
    size_t total = 0;
    for (size_t i = 0; i < k; i++) total += sizes[i];
    a->mem = malloc(total * sizeof(float));
    a->lat = malloc((rows ? rows : 1) * sizeof(int));
    if (!a->mem || !a->lat)
        return liif_error_set(err, LIIF_ERR_NOMEM, "training: out of memory for %zu activations", total);
    float *p = a->mem;
    for (size_t i = 0; i < k; i++) {
        *ptrs[i] = sizes[i] ? p : NULL;
        p += sizes[i];
    }
    return LIIF_OK;
}

liif_status liif_train_acts_new(const liif_config *c, int B, int h, int w, int Q, liif_train_acts **out,
                                liif_error *err)
{
    *out = NULL;
    if (B < 1 || h < 1 || w < 1 || Q < 1)
        return liif_error_set(err, LIIF_ERR_ARG, "training: bad batch shape B=%d h=%d w=%d Q=%d", B, h, w, Q);
    liif_train_acts *a = calloc(1, sizeof *a);
    if (!a) return liif_error_set(err, LIIF_ERR_NOMEM, "training: out of memory");
    a->B = B; a->h = h; a->w = w; a->Q = Q;
    a->K = c->local_ensemble ? 4 : 1;
    a->D = c->in_dim;
    a->maxw = c->in_dim;
    for (int l = 0; l < c->n_hidden; l++) a->maxw = c->hidden[l] > a->maxw ? c->hidden[l] : a->maxw;
    liif_status st = acts_alloc(a, c, 1, err);
    if (st) {
        liif_train_acts_free(a);
        return st;
    }
    *out = a;
    return LIIF_OK;
}

liif_status liif_train_acts_use_cpu(liif_train_acts *a, const liif_config *c, int threads, liif_error *err)
{
    liif_train_cpu_free(a->cpu);
    int widest = c->in_ch > c->n_feats ? c->in_ch : c->n_feats; /* layer 1's feature columns run as a conv */
    int h0 = c->n_hidden ? c->hidden[0] : c->out_dim;
    a->cpu = liif_train_cpu_new(widest, h0 > widest ? h0 : widest, threads);
    if (!a->cpu) return liif_error_set(err, LIIF_ERR_NOMEM, "training: out of memory for the fast CPU ops");
    return acts_alloc(a, c, 0, err);
}

void liif_train_acts_free(liif_train_acts *a)
{
    if (!a) return;
    liif_train_cpu_free(a->cpu);
    free(a->mem);
    free(a->lat);
    free(a);
}

/* ------------------------------------------------------------ the model */

/* The model's convolutions and Linear layers: the fast CPU ops when the activations have their
 * scratch, else the reference loops above. */
static void conv_forward(const liif_train_acts *a, float *out, const float *inp, const liif_train_layer *L)
{
    if (a->cpu) liif_conv3x3_forward_cpu(a->cpu, out, inp, L->w, L->b, a->B, a->h, a->w, L->ic, L->oc);
    else liif_conv3x3_forward(out, inp, L->w, L->b, a->B, a->h, a->w, L->ic, L->oc);
}

static void conv_backward(const liif_train_acts *a, float *dinp, const liif_train_layer *dL, const float *dout,
                          const float *inp, const liif_train_layer *L)
{
    if (a->cpu)
        liif_conv3x3_backward_cpu(a->cpu, dinp, dL->w, dL->b, dout, inp, L->w, a->B, a->h, a->w, L->ic, L->oc);
    else liif_conv3x3_backward(dinp, dL->w, dL->b, dout, inp, L->w, a->B, a->h, a->w, L->ic, L->oc);
}

static void linear_forward(const liif_train_acts *a, float *out, const float *inp, const liif_train_layer *L, int N)
{
    if (a->cpu) liif_linear_forward_cpu(out, inp, L->w, L->b, N, L->ic, L->oc);
    else liif_linear_forward(out, inp, L->w, L->b, N, L->ic, L->oc);
}

static void linear_backward(const liif_train_acts *a, float *dinp, const liif_train_layer *dL, const float *dout,
                            const float *inp, const liif_train_layer *L, int N)
{
    if (a->cpu) liif_linear_backward_cpu(dinp, dL->w, dL->b, dout, inp, L->w, N, L->ic, L->oc);
    else liif_linear_backward(dinp, dL->w, dL->b, dout, inp, L->w, N, L->ic, L->oc);
}

liif_status liif_train_forward(const liif_train_state *s, liif_train_acts *a, const float *inp, const float *coord,
                               const float *cell, const float *gt, liif_error *err)
{
    // inp is (B,h,w,C), coord and cell are (B,Q,2), gt is (B,Q,C)
    const liif_config *c = &s->cfg;
    const liif_train_views *p = &s->p;
    int B = a->B, h = a->h, w = a->w, Q = a->Q, K = a->K, F = c->n_feats, C = c->in_ch, R = c->n_resblocks;
    size_t px = (size_t)B * h * w, nf = px * F, rows = (size_t)B * Q * K;
    if (a->D != c->in_dim)
        return liif_error_set(err, LIIF_ERR_ARG, "training: activations were made for another model");
    for (size_t i = 0; i < px * C; i++) a->x[i] = (inp[i] - 0.5f) / 0.5f;
    /* encoder: t0 = head(x); t[r+1] = t[r] + conv2(relu(conv1(t[r]))); feat = tail(t[R]) + t0 */
    conv_forward(a, a->t, a->x, &p->head);
    for (int r = 0; r < R; r++) {
        float *tin = a->t + (size_t)r * nf, *tout = tin + nf, *act = a->r + (size_t)r * nf;
        conv_forward(a, act, tin, &p->body[2 * r]);
        liif_relu_forward(act, act, nf);
        conv_forward(a, tout, act, &p->body[2 * r + 1]);
        for (size_t i = 0; i < nf; i++) tout[i] += tin[i];
    }
    conv_forward(a, a->feat, a->t + (size_t)R * nf, &p->tail);
    for (size_t i = 0; i < nf; i++) a->feat[i] += a->t[i];
    if (a->cpu) { /* the chunked decoder, forward and (with gt) backward */
        size_t n = (size_t)B * Q * c->out_dim;
        for (size_t i = 0; gt && i < n; i++) a->gt[i] = (gt[i] - 0.5f) / 0.5f;
        return liif_train_decoder_cpu(a->cpu, s, a, coord, cell, gt != NULL, err);
    }
    /* decoder: query rows, MLP, blend */
    liif_query_forward(a->mlp_in, a->lat, a->wt, a->feat, coord, cell, c, B, h, w, Q);
    const float *x = a->mlp_in;
    for (int l = 0; l <= c->n_hidden; l++) {
        const liif_train_layer *L = &p->dec[l];
        linear_forward(a, a->mlp_h[l], x, L, (int)rows);
        if (l < c->n_hidden) liif_relu_forward(a->mlp_h[l], a->mlp_h[l], rows * L->oc);
        x = a->mlp_h[l];
    }
    liif_blend_forward(a->pred, a->mlp_h[c->n_hidden], a->wt, B, Q, K, c->out_dim);
    a->loss = 0.0f;
    if (gt) {
        size_t n = (size_t)B * Q * c->out_dim;
        for (size_t i = 0; i < n; i++) a->gt[i] = (gt[i] - 0.5f) / 0.5f;
        a->loss = liif_l1_forward(a->pred, a->gt, n);
    }
    return LIIF_OK;
}

static void encoder_backward(liif_train_state *s, liif_train_acts *a);

void liif_train_backward(liif_train_state *s, liif_train_acts *a)
{
    const liif_config *c = &s->cfg;
    const liif_train_views *p = &s->p, *g = &s->g;
    int B = a->B, h = a->h, w = a->w, Q = a->Q, K = a->K, F = c->n_feats;
    size_t nf = (size_t)B * h * w * F, rows = (size_t)B * Q * K, n = (size_t)B * Q * c->out_dim;
    if (a->cpu) { /* the forward computed the decoder's gradients and dfeat */
        liif_train_decoder_grads_cpu(a->cpu, s);
        encoder_backward(s, a);
        return;
    }
    /* loss and blend */
    liif_l1_backward(a->dpred, a->pred, a->gt, n);
    float *dy = a->dmlp_a, *dx = a->dmlp_b;
    memset(dy, 0, rows * c->out_dim * sizeof(float));
    liif_blend_backward(dy, a->dpred, a->wt, B, Q, K, c->out_dim);
    /* MLP, last layer first; dy holds d(layer l's output) */
    for (int l = c->n_hidden; l >= 0; l--) {
        const liif_train_layer *L = &p->dec[l];
        if (l < c->n_hidden) liif_relu_backward(dy, dy, a->mlp_h[l], rows * L->oc);
        const float *x = l ? a->mlp_h[l - 1] : a->mlp_in;
        memset(dx, 0, rows * L->ic * sizeof(float));
        linear_backward(a, dx, &g->dec[l], dy, x, L, (int)rows);
        float *tmp = dy; dy = dx; dx = tmp;
    }
    /* dy is d mlp_in: back through the gathers and the unfold */
    memset(a->dfeat, 0, nf * sizeof(float));
    liif_query_backward(a->dfeat, dy, a->lat, c, B, h, w, Q);
    encoder_backward(s, a);
}

/* From a->dfeat, the encoder's gradients, last conv first; dt holds d(t[r]). */
static void encoder_backward(liif_train_state *s, liif_train_acts *a)
{
    const liif_config *c = &s->cfg;
    const liif_train_views *p = &s->p, *g = &s->g;
    int R = c->n_resblocks;
    size_t nf = (size_t)a->B * a->h * a->w * c->n_feats;
    memset(a->dt, 0, nf * sizeof(float));
    conv_backward(a, a->dt, &g->tail, a->dfeat, a->t + (size_t)R * nf, &p->tail);
    for (int r = R - 1; r >= 0; r--) {
        float *tin = a->t + (size_t)r * nf, *act = a->r + (size_t)r * nf;
        memset(a->dr, 0, nf * sizeof(float));
        conv_backward(a, a->dr, &g->body[2 * r + 1], a->dt, act, &p->body[2 * r + 1]);
        liif_relu_backward(a->dr, a->dr, act, nf);
        /* dt already holds the skip path's gradient; the conv path adds to it */
        conv_backward(a, a->dt, &g->body[2 * r], a->dr, tin, &p->body[2 * r]);
    }
    for (size_t i = 0; i < nf; i++) a->dt[i] += a->dfeat[i]; /* global skip */
    conv_backward(a, NULL, &g->head, a->dt, a->x, &p->head);
}
