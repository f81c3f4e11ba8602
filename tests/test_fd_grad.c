/* test_fd_grad.c: every backward op (LIIF trainer, GAN layers, discriminator, VGG) against central finite differences. */
#include <string.h>
#include <unistd.h>

#include "disc.h"
#include "nn.h"
#include "randmodel.h"
#include "testutil.h"
#include "train.h"
#include "vgg.h"

/* The check, per op: a scalar loss L (sum(out * R) for a fixed random R, or the op's own loss),
 * the analytic gradient of every input and parameter from one backward, then on a stratified
 * random subset of each tensor's coordinates central differences (L(x+e) - L(x-e)) / (2e),
 * taken in float (the ops are float) with L summed in double, at e and e/2; the Richardson
 * combination fd = (4 fd(e/2) - fd(e)) / 3 (O(e^4) truncation) is what g is compared with, so
 * smooth curvature (BatchNorm, BCE) costs nothing.
 *
 * Criterion per coordinate: |g - fd| <= tol * (max(|g|, |fd|) + 0.1 * max|g|), max|g| over the
 * whole tensor; the printed "rel" is |g - fd| / (max(|g|, |fd|) + 0.1 * max|g|), ok at <= tol.
 * tol = 1e-2 for single ops, 2e-2 for networks (query path, model step, discriminator, VGG),
 * whose float forward through several layers (BatchNorm over few values) leaves more rounding
 * in L: its noise in fd is ~1e-7 * |L terms| / e, measured up to ~1.5e-2 of the floor over 60
 * seeds. Why this is enough: an index, sign or missing-term error in a backward is an O(1)
 * relative error; scaling every gradient by 1.05 fails every op. The 0.1 * max|g| floor keeps
 * coordinates whose true gradient is ~0 (where only the noise is left) from failing on noise.
 *
 * Kinks (ReLU, LeakyReLU, max-pool, |x|). Single ops: inputs are drawn away from them
 * (|x| >= 0.1) where the op allows; where fd(e) and fd(e/2) still disagree (beyond the same
 * criterion) a kink lies within e and the FD means nothing there: the coordinate is skipped and
 * counted; an op fails with more than 1 skipped per 3 checked. Networks: a step of any weight
 * moves many units, some across their kinks, so every coordinate with a kink or a rel above
 * tol / 4 is checked instead against the mean of the analytic gradient over [x - e, x + e]
 * (16 backwards at the midpoints): L(x+e) - L(x-e) is its integral whatever the kinks, so this
 * still tests the backward, only not at a single point ("by segment mean" in the report). */

static unsigned long long rng = 20261130;

static float urand(void) { return rm_uniform(&rng); }

/* n values U(-scale, scale). */
static float *rand_buf(size_t n, float scale)
{
    float *v = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) v[i] = urand() * scale;
    return v;
}

/* n values with |v| in [0.1, 1.1] * scale, random sign: away from the kinks at 0. */
static float *rand_away(size_t n, float scale)
{
    float *v = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        float u = urand();
        v[i] = (u < 0 ? -1.0f : 1.0f) * (0.1f + fabsf(u)) * scale;
    }
    return v;
}

static float *zeros(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

/* sum(out * r) in double. */
static double dot(const float *out, const float *r, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)out[i] * r[i];
    return s;
}

/* ------------------------------------------------------------------ the harness */

typedef double (*fd_loss)(void *ctx); /* runs the forward on the current buffers, returns L */
typedef void (*fd_regrad)(void *ctx); /* reruns forward and backward: every analytic gradient anew */

typedef struct {
    const char *op;
    fd_regrad regrad;     /* networks only (NULL for single ops): for the segment-mean check */
    double tol;           /* the criterion's factor: 1e-2 (single ops), 2e-2 (networks); 0 means 1e-2 */
    double worst;         /* max rel over the checked coordinates of every tensor */
    int checked, skipped, failed;
    int resolved;         /* coordinates checked against the segment's mean gradient */
} fd_op;

/* (L(x_i + e) - L(x_i - e)) / (actual float step), x_i restored. */
static double central(float *x, size_t i, float e, fd_loss loss, void *ctx)
{
    float v = x[i];
    x[i] = v + e;
    double xp = x[i], lp = loss(ctx);
    x[i] = v - e;
    double xm = x[i], lm = loss(ctx);
    x[i] = v;
    return (lp - lm) / (xp - xm);
}

/* The mean of the analytic gradient g[i] over [x_i - e, x_i + e] (midpoint rule, 16 points):
 * what the central difference at e measures exactly, kinks inside or not (L(x+e) - L(x-e) is
 * the integral of dL/dx_i), so it checks the backward where a network has units at kinks
 * within the step. A jump J of g inside a cell moves the midpoint sum by at most J/32: *slack
 * receives the total variation of g over the samples and the ends, over 32. The gradients are
 * recomputed at x_i afterwards. */
static double segment_mean_grad(const fd_op *o, float *x, size_t i, const float *g, float e, void *ctx,
                                double *slack)
{
    enum { M = 16 };
    float v = x[i];
    double s = 0, tv = 0, prev = 0;
    for (int k = -1; k <= M; k++) { /* k = -1 and M: the ends, for the variation only */
        float t = k < 0 ? -1.0f : (k == M ? 1.0f : (2.0f * k + 1.0f) / M - 1.0f);
        x[i] = v + e * t;
        o->regrad(ctx);
        if (k >= 0 && k < M) s += g[i];
        if (k >= 0) tv += fabs(g[i] - prev);
        prev = g[i];
    }
    x[i] = v;
    o->regrad(ctx);
    *slack = tv / (2 * M);
    return s / M;
}

/* Checks g (n) = dL/dx (n) on ncoord coordinates, one drawn at random in each of ncoord equal
 * slices of x (all of them when n <= ncoord). */
static void fd_tensor(fd_op *o, const char *name, float *x, const float *g, size_t n, int ncoord, float e,
                      fd_loss loss, void *ctx)
{
    double gmax = 0, worst = 0;
    int checked = 0, skipped = 0, failed = 0;
    if (o->tol == 0) o->tol = 1e-2;
    for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(g[i]));
    size_t m = n < (size_t)ncoord ? n : (size_t)ncoord;
    for (size_t t = 0; t < m; t++) {
        size_t lo = t * n / m, hi = (t + 1) * n / m;
        size_t i = lo + (size_t)((urand() + 1.0f) * 0.5f * (float)(hi - lo)) % (hi - lo);
        double f1 = central(x, i, e, loss, ctx), f2 = central(x, i, e * 0.5f, loss, ctx);
        int kink = !(fabs(f1 - f2) <= o->tol * (fmax(fabs(f1), fabs(f2)) + 0.1 * gmax));
        double fd = (4.0 * f2 - f1) / 3.0;
        double ga = g[i], rel = fabs(ga - fd) / (fmax(fabs(ga), fabs(fd)) + 0.1 * gmax);
        if (gmax == 0 && fd == 0) rel = 0;
        if ((kink || !(rel <= 0.25 * o->tol)) && o->regrad) { /* a network: the segment's mean gradient against f1 */
            double slack;
            ga = segment_mean_grad(o, x, i, g, e, ctx, &slack);
            fd = f1;
            rel = fmax(fabs(ga - fd) - slack, 0.0) / (fmax(fabs(ga), fabs(fd)) + 0.1 * gmax);
            o->resolved++;
        } else if (kink) {
            skipped++; /* a kink within e: the difference is not the derivative */
            continue;
        }
        if (!(rel <= o->tol)) {
            if (failed < 3) printf("    FAIL %s %s[%zu]: analytic %.6g, fd %.6g (max|g| %.3g, rel %.3g)\n", o->op, name, i,
                                   ga, fd, gmax, rel);
            failed++;
        }
        if (!(rel <= worst)) worst = rel;
        checked++;
    }
    if (gmax == 0) { /* an all-zero gradient checks nothing: the test is set up wrong */
        printf("    FAIL %s %s: the analytic gradient is all zero\n", o->op, name);
        failed++;
    }
    if (!(worst <= o->worst)) o->worst = worst;
    o->checked += checked;
    o->skipped += skipped;
    o->failed += failed;
}

static void fd_report(const fd_op *o)
{
    int ok = o->failed == 0 && o->checked > 0 && o->skipped * 3 <= o->checked;
    printf("%-44s max rel %.2e (tol %.0e) over %4d coords (%d at kinks skipped, %d by segment mean) %s\n", o->op,
           o->worst, o->tol, o->checked, o->skipped, o->resolved, ok ? "ok" : "FAIL");
    if (!ok) tu_failures++;
}

/* ------------------------------------------------------------------ LIIF trainer layers (channels-last) */

typedef struct {
    int fast, B, h, w, IC, OC;
    liif_train_cpu *cpu;
    float *inp, *wt, *bias, *out, *r;
} conv_ctx;

static double conv_loss(void *p)
{
    conv_ctx *c = p;
    if (c->fast)
        liif_conv3x3_forward_cpu(c->cpu, c->out, c->inp, c->wt, c->bias, c->B, c->h, c->w, c->IC, c->OC);
    else
        liif_conv3x3_forward(c->out, c->inp, c->wt, c->bias, c->B, c->h, c->w, c->IC, c->OC);
    return dot(c->out, c->r, (size_t)c->B * c->h * c->w * c->OC);
}

static void check_conv3x3(int fast)
{
    conv_ctx c = {.fast = fast, .B = 2, .h = 5, .w = 6, .IC = 3, .OC = 4};
    size_t ni = (size_t)c.B * c.h * c.w * c.IC, no = (size_t)c.B * c.h * c.w * c.OC, nw = (size_t)c.OC * c.IC * 9;
    c.cpu = fast ? liif_train_cpu_new(c.IC, c.OC, 1) : NULL;
    c.inp = rand_buf(ni, 1.0f), c.wt = rand_buf(nw, 0.5f), c.bias = rand_buf(c.OC, 0.5f);
    c.out = zeros(no), c.r = rand_buf(no, 1.0f);
    float *dinp = zeros(ni), *dw = zeros(nw), *db = zeros(c.OC);
    if (fast)
        liif_conv3x3_backward_cpu(c.cpu, dinp, dw, db, c.r, c.inp, c.wt, c.B, c.h, c.w, c.IC, c.OC);
    else
        liif_conv3x3_backward(dinp, dw, db, c.r, c.inp, c.wt, c.B, c.h, c.w, c.IC, c.OC);
    fd_op o = {.op = fast ? "conv3x3 (fast cpu) dinp dweight dbias" : "conv3x3 (ref) dinp dweight dbias"};
    fd_tensor(&o, "dinp", c.inp, dinp, ni, 40, 1e-2f, conv_loss, &c);
    fd_tensor(&o, "dweight", c.wt, dw, nw, 40, 1e-2f, conv_loss, &c);
    fd_tensor(&o, "dbias", c.bias, db, c.OC, 40, 1e-2f, conv_loss, &c);
    fd_report(&o);
    if (c.cpu) liif_train_cpu_free(c.cpu);
    free(c.inp); free(c.wt); free(c.bias); free(c.out); free(c.r); free(dinp); free(dw); free(db);
}

typedef struct {
    int fast, N, IC, OC;
    float *inp, *wt, *bias, *out, *r;
} linear_ctx;

static double linear_loss(void *p)
{
    linear_ctx *c = p;
    if (c->fast)
        liif_linear_forward_cpu(c->out, c->inp, c->wt, c->bias, c->N, c->IC, c->OC);
    else
        liif_linear_forward(c->out, c->inp, c->wt, c->bias, c->N, c->IC, c->OC);
    return dot(c->out, c->r, (size_t)c->N * c->OC);
}

static void check_linear(int fast)
{
    linear_ctx c = {.fast = fast, .N = 7, .IC = 9, .OC = 5};
    size_t ni = (size_t)c.N * c.IC, no = (size_t)c.N * c.OC, nw = (size_t)c.OC * c.IC;
    c.inp = rand_buf(ni, 1.0f), c.wt = rand_buf(nw, 0.5f), c.bias = rand_buf(c.OC, 0.5f);
    c.out = zeros(no), c.r = rand_buf(no, 1.0f);
    float *dinp = zeros(ni), *dw = zeros(nw), *db = zeros(c.OC);
    if (fast)
        liif_linear_backward_cpu(dinp, dw, db, c.r, c.inp, c.wt, c.N, c.IC, c.OC);
    else
        liif_linear_backward(dinp, dw, db, c.r, c.inp, c.wt, c.N, c.IC, c.OC);
    fd_op o = {.op = fast ? "linear (fast cpu) dinp dweight dbias" : "linear (ref) dinp dweight dbias"};
    fd_tensor(&o, "dinp", c.inp, dinp, ni, 40, 1e-2f, linear_loss, &c);
    fd_tensor(&o, "dweight", c.wt, dw, nw, 40, 1e-2f, linear_loss, &c);
    fd_tensor(&o, "dbias", c.bias, db, c.OC, 40, 1e-2f, linear_loss, &c);
    fd_report(&o);
    free(c.inp); free(c.wt); free(c.bias); free(c.out); free(c.r); free(dinp); free(dw); free(db);
}

typedef struct {
    size_t n;
    float *inp, *out, *r;
} relu_ctx;

static double relu_loss(void *p)
{
    relu_ctx *c = p;
    liif_relu_forward(c->out, c->inp, c->n);
    return dot(c->out, c->r, c->n);
}

static void check_relu(void)
{
    relu_ctx c = {.n = 64};
    c.inp = rand_away(c.n, 1.0f), c.out = zeros(c.n), c.r = rand_buf(c.n, 1.0f);
    float *dinp = zeros(c.n);
    liif_relu_forward(c.out, c.inp, c.n);
    liif_relu_backward(dinp, c.r, c.out, c.n);
    fd_op o = {.op = "relu dinp"};
    fd_tensor(&o, "dinp", c.inp, dinp, c.n, 64, 1e-2f, relu_loss, &c);
    fd_report(&o);
    free(c.inp); free(c.out); free(c.r); free(dinp);
}

typedef struct {
    size_t n;
    float *pred, *gt;
} l1_ctx;

static double liif_l1_loss(void *p)
{
    l1_ctx *c = p;
    return liif_l1_forward(c->pred, c->gt, c->n);
}

static double gan_l1_loss(void *p)
{
    l1_ctx *c = p;
    return nn_l1_forward(c->pred, c->gt, c->n);
}

static void check_l1(void)
{
    l1_ctx c = {.n = 48};
    c.gt = rand_buf(c.n, 1.0f), c.pred = rand_away(c.n, 0.5f);
    for (size_t i = 0; i < c.n; i++) c.pred[i] += c.gt[i]; /* |pred - gt| >= 0.05 */
    float *dpred = zeros(c.n);
    liif_l1_backward(dpred, c.pred, c.gt, c.n);
    fd_op o = {.op = "liif l1 dpred"};
    fd_tensor(&o, "dpred", c.pred, dpred, c.n, 48, 1e-2f, liif_l1_loss, &c);
    fd_report(&o);
    memset(dpred, 0, c.n * sizeof(float));
    nn_l1_backward(dpred, c.pred, c.gt, c.n, 1.0f);
    fd_op p = {.op = "gan l1 da"};
    fd_tensor(&p, "da", c.pred, dpred, c.n, 48, 1e-2f, gan_l1_loss, &c);
    fd_report(&p);
    free(c.gt); free(c.pred); free(dpred);
}

/* The LIIF query path: feat -> query (unfold, gather, 4 shifts, cell) -> Linear -> ReLU ->
 * Linear -> blend -> sum(pred * R). Gradients of feat and of both layers' weights and biases. */
typedef struct {
    liif_config cfg;
    int B, h, w, Q, K, D, H1;
    float *feat, *coord, *cell, *w1, *b1, *w2, *b2;
    float *mlp_in, *wt, *h1, *o2, *pred, *r;
    int *lat;
    float *dfeat, *dw1, *db1, *dw2, *db2, *do2, *dh1, *dmlp; /* gradients and the backward's scratch */
} query_ctx;

static double query_loss(void *p)
{
    query_ctx *c = p;
    size_t N = (size_t)c->B * c->Q * c->K;
    liif_query_forward(c->mlp_in, c->lat, c->wt, c->feat, c->coord, c->cell, &c->cfg, c->B, c->h, c->w, c->Q);
    liif_linear_forward(c->h1, c->mlp_in, c->w1, c->b1, (int)N, c->D, c->H1);
    liif_relu_forward(c->h1, c->h1, N * c->H1);
    liif_linear_forward(c->o2, c->h1, c->w2, c->b2, (int)N, c->H1, 3);
    liif_blend_forward(c->pred, c->o2, c->wt, c->B, c->Q, c->K, 3);
    return dot(c->pred, c->r, (size_t)c->B * c->Q * 3);
}

static void query_regrad(void *p)
{
    query_ctx *c = p;
    size_t N = (size_t)c->B * c->Q * c->K;
    query_loss(c);
    memset(c->dfeat, 0, (size_t)c->B * c->h * c->w * c->cfg.n_feats * sizeof(float));
    memset(c->dw1, 0, (size_t)c->H1 * c->D * sizeof(float));
    memset(c->db1, 0, (size_t)c->H1 * sizeof(float));
    memset(c->dw2, 0, (size_t)3 * c->H1 * sizeof(float));
    memset(c->db2, 0, 3 * sizeof(float));
    memset(c->do2, 0, N * 3 * sizeof(float));
    memset(c->dh1, 0, N * c->H1 * sizeof(float));
    memset(c->dmlp, 0, N * c->D * sizeof(float));
    liif_blend_backward(c->do2, c->r, c->wt, c->B, c->Q, c->K, 3);
    liif_linear_backward(c->dh1, c->dw2, c->db2, c->do2, c->h1, c->w2, (int)N, c->H1, 3);
    liif_relu_backward(c->dh1, c->dh1, c->h1, N * c->H1);
    liif_linear_backward(c->dmlp, c->dw1, c->db1, c->dh1, c->mlp_in, c->w1, (int)N, c->D, c->H1);
    liif_query_backward(c->dfeat, c->dmlp, c->lat, &c->cfg, c->B, c->h, c->w, c->Q);
}

static void check_query(int unfold, int ensemble, int cell_decode)
{
    query_ctx c = {.B = 2, .h = 4, .w = 5, .Q = 12, .H1 = 8};
    c.cfg.in_ch = 3, c.cfg.n_feats = 3, c.cfg.feat_unfold = unfold, c.cfg.local_ensemble = ensemble;
    c.cfg.cell_decode = cell_decode, c.cfg.out_dim = 3, c.cfg.n_decoders = 1;
    c.cfg.in_dim = c.cfg.n_feats * (unfold ? 9 : 1) + 2 + (cell_decode ? 2 : 0);
    c.K = ensemble ? 4 : 1, c.D = c.cfg.in_dim;
    size_t nf = (size_t)c.B * c.h * c.w * c.cfg.n_feats, N = (size_t)c.B * c.Q * c.K, np = (size_t)c.B * c.Q * 3;
    c.feat = rand_buf(nf, 1.0f);
    c.coord = malloc((size_t)c.B * c.Q * 2 * sizeof(float));
    c.cell = malloc((size_t)c.B * c.Q * 2 * sizeof(float));
    for (int b = 0; b < c.B; b++) /* queries of an HR grid 2.5x the LR one */
        for (int q = 0; q < c.Q; q++) {
            int H = 10, W = 12 + b;
            size_t i = ((size_t)b * c.Q + q) * 2;
            int y = (int)((urand() + 1.0f) * 0.5f * H) % H, x = (int)((urand() + 1.0f) * 0.5f * W) % W;
            c.coord[i] = liif_coord(y, H), c.coord[i + 1] = liif_coord(x, W);
            c.cell[i] = 2.0f / H, c.cell[i + 1] = 2.0f / W;
        }
    c.w1 = rand_buf((size_t)c.H1 * c.D, 0.6f), c.b1 = rand_buf(c.H1, 0.3f);
    c.w2 = rand_buf((size_t)3 * c.H1, 0.6f), c.b2 = rand_buf(3, 0.3f);
    c.mlp_in = zeros(N * c.D), c.wt = zeros(N), c.h1 = zeros(N * c.H1), c.o2 = zeros(N * 3), c.pred = zeros(np);
    c.r = rand_buf(np, 1.0f), c.lat = calloc(N, sizeof(int));
    float *dfeat = c.dfeat = zeros(nf), *dw1 = c.dw1 = zeros((size_t)c.H1 * c.D), *db1 = c.db1 = zeros(c.H1);
    float *dw2 = c.dw2 = zeros(3 * c.H1), *db2 = c.db2 = zeros(3), *do2 = c.do2 = zeros(N * 3);
    float *dh1 = c.dh1 = zeros(N * c.H1), *dmlp = c.dmlp = zeros(N * c.D);
    query_regrad(&c);
    char name[96];
    snprintf(name, sizeof name, "query+blend (unfold %d ens %d cell %d)", unfold, ensemble, cell_decode);
    fd_op o = {.op = name, .regrad = query_regrad, .tol = 2e-2};
    fd_tensor(&o, "dfeat", c.feat, dfeat, nf, 50, 2e-3f, query_loss, &c);
    fd_tensor(&o, "dw1", c.w1, dw1, (size_t)c.H1 * c.D, 30, 2e-3f, query_loss, &c);
    fd_tensor(&o, "db1", c.b1, db1, c.H1, 30, 2e-3f, query_loss, &c);
    fd_tensor(&o, "dw2", c.w2, dw2, (size_t)3 * c.H1, 30, 2e-3f, query_loss, &c);
    fd_tensor(&o, "db2", c.b2, db2, 3, 30, 2e-3f, query_loss, &c);
    fd_report(&o);
    free(c.feat); free(c.coord); free(c.cell); free(c.w1); free(c.b1); free(c.w2); free(c.b2);
    free(c.mlp_in); free(c.wt); free(c.h1); free(c.o2); free(c.pred); free(c.r); free(c.lat);
    free(dfeat); free(dw1); free(db1); free(dw2); free(db2); free(do2); free(dh1); free(dmlp);
}

/* The whole small LIIF model: forward with L1 loss (recomputed in double from pred and the
 * normalised gt), backward into s->grads; a few coordinates of every tensor. */
typedef struct {
    liif_train_state *s;
    liif_train_acts *a;
    float *inp, *coord, *cell, *gt;
    size_t n;
} model_ctx;

static double model_loss(void *p)
{
    model_ctx *c = p;
    liif_error err;
    if (liif_train_forward(c->s, c->a, c->inp, c->coord, c->cell, c->gt, &err)) {
        printf("FAIL forward: %s\n", err.msg);
        exit(1);
    }
    double l = 0;
    for (size_t i = 0; i < c->n; i++) l += fabs((double)c->a->pred[i] - c->a->gt[i]);
    return l / (double)c->n;
}

static void model_regrad(void *p)
{
    model_ctx *c = p;
    model_loss(c);
    liif_train_zero_grad(c->s);
    liif_train_backward(c->s, c->a);
}

static void check_model(const char *dir, int fast)
{
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    rm_spec sp = {.n_feats = 4, .n_resblocks = 1, .n_hidden = 2, .hidden = 8, .feat_unfold = 1, .local_ensemble = 1,
                  .cell_decode = 1, .variant = "liif", .seed = 3, .out_gain = 1.0f};
    model_ctx c = {0};
    liif_error err;
    const int B = 2, h = 4, w = 5, Q = 10;
    if (rm_write(path, &sp) || liif_train_state_load(path, &c.s, &err) ||
        liif_train_acts_new(&c.s->cfg, B, h, w, Q, &c.a, &err) ||
        (fast && liif_train_acts_use_cpu(c.a, &c.s->cfg, 1, &err))) {
        printf("FAIL cannot make the random model: %s\n", err.msg);
        tu_failures++;
        return;
    }
    unlink(path);
    c.n = (size_t)B * Q * 3;
    c.inp = rand_buf((size_t)B * h * w * 3, 0.5f), c.gt = rand_buf(c.n, 0.5f);
    for (size_t i = 0; i < (size_t)B * h * w * 3; i++) c.inp[i] += 0.5f;
    for (size_t i = 0; i < c.n; i++) c.gt[i] += 0.5f;
    c.coord = malloc((size_t)B * Q * 2 * sizeof(float)), c.cell = malloc((size_t)B * Q * 2 * sizeof(float));
    for (int b = 0; b < B; b++)
        for (int q = 0; q < Q; q++) {
            int H = 3 * h + b, W = 3 * w + 1;
            size_t i = ((size_t)b * Q + q) * 2;
            int y = (int)((urand() + 1.0f) * 0.5f * H) % H, x = (int)((urand() + 1.0f) * 0.5f * W) % W;
            c.coord[i] = liif_coord(y, H), c.coord[i + 1] = liif_coord(x, W);
            c.cell[i] = 2.0f / H, c.cell[i + 1] = 2.0f / W;
        }
    /* gt (rgb) = pred +- [0.1, 0.3] (normalised +- [0.2, 0.6]): no |x| kink within reach of a step; mostly +,
     * so the signs of a channel never cancel (the last bias's gradient is their mean) */
    model_loss(&c);
    for (size_t i = 0; i < c.n; i++) {
        float u = urand(), sign = urand() < 0.5f ? 1.0f : -1.0f;
        c.gt[i] = (c.a->pred[i] + 1.0f) * 0.5f + sign * (0.1f + 0.2f * fabsf(u));
    }
    double l = model_loss(&c);
    CHECK(fabs(l - c.a->loss) <= 1e-5 * (1 + l), "model loss %.7g vs double %.7g", c.a->loss, l);
    model_regrad(&c);
    fd_op o = {.op = fast ? "liif model step (fast cpu), every tensor" : "liif model step (ref), every tensor",
               .regrad = model_regrad, .tol = 2e-2};
    for (int i = 0; i < c.s->n_tensors; i++) {
        const liif_train_tensor *t = &c.s->tensors[i];
        if (!t->trainable) continue;
        fd_tensor(&o, t->name, c.s->params + t->offset, c.s->grads + t->offset, t->numel, 6, 4e-3f, model_loss, &c);
    }
    fd_report(&o);
    free(c.inp); free(c.gt); free(c.coord); free(c.cell);
    liif_train_acts_free(c.a);
    liif_train_state_free(c.s);
}

/* ------------------------------------------------------------------ GAN layers (NCHW) */

typedef struct {
    int B, IC, H, W, OC, k, stride, pad, OH, OW;
    float *inp, *wt, *bias, *out, *r;
} gconv_ctx;

static double gconv_loss(void *p)
{
    gconv_ctx *c = p;
    nn_conv2d_forward(c->out, c->inp, c->wt, c->bias, c->B, c->IC, c->H, c->W, c->OC, c->k, c->stride, c->pad);
    return dot(c->out, c->r, (size_t)c->B * c->OC * c->OH * c->OW);
}

static void check_gan_conv(int k, int stride, int pad)
{
    gconv_ctx c = {.B = 2, .IC = 3, .H = 8, .W = 7, .OC = 4, .k = k, .stride = stride, .pad = pad};
    c.OH = nn_conv_out(c.H, k, stride, pad), c.OW = nn_conv_out(c.W, k, stride, pad);
    size_t ni = (size_t)c.B * c.IC * c.H * c.W, no = (size_t)c.B * c.OC * c.OH * c.OW, nw = (size_t)c.OC * c.IC * k * k;
    c.inp = rand_buf(ni, 1.0f), c.wt = rand_buf(nw, 0.5f), c.bias = rand_buf(c.OC, 0.5f);
    c.out = zeros(no), c.r = rand_buf(no, 1.0f);
    float *dinp = zeros(ni), *dw = zeros(nw), *db = zeros(c.OC);
    nn_conv2d_backward(dinp, dw, db, c.r, c.inp, c.wt, c.B, c.IC, c.H, c.W, c.OC, k, stride, c.pad);
    char name[96];
    snprintf(name, sizeof name, "gan conv %dx%d stride %d pad %d", k, k, stride, pad);
    fd_op o = {.op = name};
    fd_tensor(&o, "dinp", c.inp, dinp, ni, 40, 1e-2f, gconv_loss, &c);
    fd_tensor(&o, "dweight", c.wt, dw, nw, 40, 1e-2f, gconv_loss, &c);
    fd_tensor(&o, "dbias", c.bias, db, c.OC, 40, 1e-2f, gconv_loss, &c);
    fd_report(&o);
    free(c.inp); free(c.wt); free(c.bias); free(c.out); free(c.r); free(dinp); free(dw); free(db);
}

typedef struct {
    int B, C, HW;
    float *inp, *gamma, *beta, *out, *mean, *rstd, *r;
} bn_ctx;

static double bn_loss(void *p)
{
    bn_ctx *c = p;
    nn_batchnorm_forward(c->out, c->mean, c->rstd, NULL, NULL, c->inp, c->gamma, c->beta, c->B, c->C, c->HW, 0.1f,
                          1e-5f);
    return dot(c->out, c->r, (size_t)c->B * c->C * c->HW);
}

static void check_batchnorm(void)
{
    bn_ctx c = {.B = 2, .C = 3, .HW = 6};
    size_t n = (size_t)c.B * c.C * c.HW;
    c.inp = rand_buf(n, 1.0f), c.gamma = rand_away(c.C, 1.0f), c.beta = rand_buf(c.C, 0.5f);
    c.out = zeros(n), c.mean = zeros(c.C), c.rstd = zeros(c.C), c.r = rand_buf(n, 1.0f);
    float *dinp = zeros(n), *dg = zeros(c.C), *dbeta = zeros(c.C);
    bn_loss(&c);
    nn_batchnorm_backward(dinp, dg, dbeta, c.r, c.inp, c.mean, c.rstd, c.gamma, c.B, c.C, c.HW);
    fd_op o = {.op = "batchnorm (train mode) dinp dgamma dbeta"};
    fd_tensor(&o, "dinp", c.inp, dinp, n, 36, 1e-2f, bn_loss, &c);
    fd_tensor(&o, "dgamma", c.gamma, dg, c.C, 36, 1e-2f, bn_loss, &c);
    fd_tensor(&o, "dbeta", c.beta, dbeta, c.C, 36, 1e-2f, bn_loss, &c);
    fd_report(&o);
    free(c.inp); free(c.gamma); free(c.beta); free(c.out); free(c.mean); free(c.rstd); free(c.r);
    free(dinp); free(dg); free(dbeta);
}

static double lrelu_loss(void *p)
{
    relu_ctx *c = p;
    nn_leakyrelu_forward(c->out, c->inp, c->n, 0.2f);
    return dot(c->out, c->r, c->n);
}

static void check_leakyrelu(void)
{
    relu_ctx c = {.n = 64};
    c.inp = rand_away(c.n, 1.0f), c.out = zeros(c.n), c.r = rand_buf(c.n, 1.0f);
    float *dinp = zeros(c.n);
    lrelu_loss(&c);
    nn_leakyrelu_backward(dinp, c.r, c.out, c.n, 0.2f);
    fd_op o = {.op = "leakyrelu(0.2) dinp"};
    fd_tensor(&o, "dinp", c.inp, dinp, c.n, 64, 1e-2f, lrelu_loss, &c);
    fd_report(&o);
    free(c.inp); free(c.out); free(c.r); free(dinp);
}

typedef struct {
    int B, C, H, W;
    float *inp, *out, *r;
    int32_t *arg;
} pool_ctx;

static double pool_loss(void *p)
{
    pool_ctx *c = p;
    nn_maxpool2x2_forward(c->out, c->arg, c->inp, c->B, c->C, c->H, c->W);
    return dot(c->out, c->r, (size_t)c->B * c->C * (c->H / 2) * (c->W / 2));
}

static void check_maxpool(void)
{
    pool_ctx c = {.B = 2, .C = 2, .H = 6, .W = 7}; /* odd W: the last column is dropped */
    size_t ni = (size_t)c.B * c.C * c.H * c.W, no = (size_t)c.B * c.C * (c.H / 2) * (c.W / 2);
    c.inp = rand_buf(ni, 1.0f), c.out = zeros(no), c.r = rand_buf(no, 1.0f), c.arg = calloc(no, sizeof(int32_t));
    float *dinp = zeros(ni);
    pool_loss(&c);
    nn_maxpool2x2_backward(dinp, c.r, c.arg, c.B, c.C, c.H, c.W);
    fd_op o = {.op = "maxpool 2x2 dinp"};
    fd_tensor(&o, "dinp", c.inp, dinp, ni, 60, 1e-2f, pool_loss, &c);
    fd_report(&o);
    free(c.inp); free(c.out); free(c.r); free(c.arg); free(dinp);
}

static double glinear_loss(void *p)
{
    linear_ctx *c = p;
    nn_linear_forward(c->out, c->inp, c->wt, c->bias, c->N, c->IC, c->OC);
    return dot(c->out, c->r, (size_t)c->N * c->OC);
}

static void check_gan_linear(void)
{
    linear_ctx c = {.N = 5, .IC = 11, .OC = 4};
    size_t ni = (size_t)c.N * c.IC, no = (size_t)c.N * c.OC, nw = (size_t)c.OC * c.IC;
    c.inp = rand_buf(ni, 1.0f), c.wt = rand_buf(nw, 0.5f), c.bias = rand_buf(c.OC, 0.5f);
    c.out = zeros(no), c.r = rand_buf(no, 1.0f);
    float *dinp = zeros(ni), *dw = zeros(nw), *db = zeros(c.OC);
    nn_linear_backward(dinp, dw, db, c.r, c.inp, c.wt, c.N, c.IC, c.OC);
    fd_op o = {.op = "gan linear dinp dweight dbias"};
    fd_tensor(&o, "dinp", c.inp, dinp, ni, 40, 1e-2f, glinear_loss, &c);
    fd_tensor(&o, "dweight", c.wt, dw, nw, 40, 1e-2f, glinear_loss, &c);
    fd_tensor(&o, "dbias", c.bias, db, c.OC, 40, 1e-2f, glinear_loss, &c);
    fd_report(&o);
    free(c.inp); free(c.wt); free(c.bias); free(c.out); free(c.r); free(dinp); free(dw); free(db);
}

typedef struct {
    size_t n;
    float target, scale;
    float *z;
} bce_ctx;

static double bce_loss(void *p)
{
    bce_ctx *c = p;
    return (double)c->scale * nn_bce_logits_forward(c->z, c->target, c->n);
}

static void check_bce(float target, float scale)
{
    bce_ctx c = {.n = 24, .target = target, .scale = scale};
    c.z = rand_buf(c.n, 3.0f);
    float *dz = zeros(c.n);
    nn_bce_logits_backward(dz, c.z, c.target, c.n, c.scale);
    char name[96];
    snprintf(name, sizeof name, "bce-with-logits (target %g, scale %g) dz", target, scale);
    fd_op o = {.op = name};
    fd_tensor(&o, "dz", c.z, dz, c.n, 24, 1e-2f, bce_loss, &c);
    fd_report(&o);
    free(c.z); free(dz);
}

/* ------------------------------------------------------------------ discriminator and VGG */

typedef struct {
    gan_disc *d;
    gan_disc_acts *a;
    float *inp, *r, *dinp;
    int B;
    const gan_disc_fm *fm;              /* NULL, or feature matching against a real batch's stage outputs */
} disc_ctx;

static double disc_loss(void *p)
{
    disc_ctx *c = p;
    gan_disc_forward(c->d, c->a, c->inp);
    double l = dot(c->a->logits, c->r, c->B);
    if (c->fm) l += (double)c->fm->scale * gan_disc_fm_loss(c->d, c->a, c->fm);
    return l;
}

static void disc_regrad(void *p)
{
    disc_ctx *c = p;
    disc_loss(c);
    gan_disc_zero_grad(c->d);
    memset(c->dinp, 0, (size_t)c->B * c->d->in_ch * c->d->P * c->d->P * sizeof(float));
    gan_disc_backward(c->d, c->a, c->r, c->fm, c->dinp, 1);
}

/* with_fm: the loss also has scale * L_fm against the stage outputs of another (real) batch, held constant */
static void check_disc(int with_fm)
{
    const int width[GAN_DISC_STAGES] = {3, 4, 4, 5, 5, 6, 6, 6}, P = 32, hidden = 6;
    disc_ctx c = {.B = 2};
    liif_error err;
    if (gan_disc_new(width, hidden, P, 3, &c.d, &err) || gan_disc_acts_new(c.d, c.B, &c.a, &err)) {
        printf("FAIL discriminator: %s\n", err.msg);
        tu_failures++;
        return;
    }
    /* He-like weights, BN gamma around 1, small biases */
    for (int i = 0; i < c.d->n_tensors; i++) {
        const liif_train_tensor *t = &c.d->tensors[i];
        if (!t->trainable) continue;
        float *v = c.d->params + t->offset;
        int is_gamma = strstr(t->name, ".bn") && strstr(t->name, ".weight");
        float bound = t->ndim >= 2 ? sqrtf(6.0f / (float)(t->numel / (size_t)t->shape[0])) : 0.2f;
        for (size_t k = 0; k < t->numel; k++) v[k] = (is_gamma ? 1.0f : 0.0f) + urand() * bound;
    }
    size_t ni = (size_t)c.B * 3 * P * P;
    c.inp = rand_buf(ni, 0.5f), c.r = rand_buf(c.B, 1.0f);
    for (size_t i = 0; i < ni; i++) c.inp[i] += 0.5f;
    gan_disc_fm fm = {{NULL}, 0.7f};
    float *real = rand_buf(ni, 0.5f), *fm_buf = zeros(gan_disc_fm_size(c.d, c.B));
    if (with_fm) {
        for (size_t i = 0; i < ni; i++) real[i] += 0.5f;
        gan_disc_forward(c.d, c.a, real);
        gan_disc_fm_keep(c.d, c.a, fm_buf, &fm);
        c.fm = &fm;
    }
    float *dinp = c.dinp = zeros(ni);
    disc_regrad(&c);
    fd_op o = {.op = with_fm ? "discriminator with feature matching (0.7 L_fm): input + every tensor"
                             : "discriminator: input + every tensor",
               .regrad = disc_regrad, .tol = 2e-2};
    fd_tensor(&o, "dinp", c.inp, dinp, ni, 30, 3e-3f, disc_loss, &c);
    for (int i = 0; i < c.d->n_tensors; i++) {
        const liif_train_tensor *t = &c.d->tensors[i];
        if (!t->trainable) continue;
        fd_tensor(&o, t->name, c.d->params + t->offset, c.d->grads + t->offset, t->numel, 6, 4e-3f, disc_loss, &c);
    }
    fd_report(&o);
    free(c.inp); free(c.r); free(dinp); free(real); free(fm_buf);
    gan_disc_acts_free(c.a);
    gan_disc_free(c.d);
}

typedef struct {
    gan_vgg *v;
    gan_vgg_acts *a;
    float *img, *r, *ref, *dimg;
    int perceptual;
} vgg_ctx;

static double vgg_loss(void *p)
{
    vgg_ctx *c = p;
    if (c->perceptual) return gan_vgg_perceptual(c->v, c->a, c->img, c->ref, NULL, 1.0f);
    size_t n;
    gan_vgg_forward(c->v, c->a, c->img);
    const float *out = gan_vgg_output(c->v, c->a, &n);
    return dot(out, c->r, n);
}

static void vgg_regrad(void *p)
{
    vgg_ctx *c = p;
    memset(c->dimg, 0, (size_t)c->a->B * 3 * c->a->H * c->a->W * sizeof(float));
    if (c->perceptual) {
        gan_vgg_perceptual(c->v, c->a, c->img, c->ref, c->dimg, 1.0f);
    } else {
        gan_vgg_forward(c->v, c->a, c->img);
        gan_vgg_backward(c->v, c->a, c->r, c->dimg);
    }
}

/* VGG19 modules 0..10 (conv1_1 .. pool2, conv3_1 before its ReLU) with narrow random convs. */
static void check_vgg(void)
{
    const int widths[5] = {4, 4, 6, 6, 8}, B = 2, H = 12, W = 10, last = 10;
    vgg_ctx c = {0};
    liif_error err;
    if (gan_vgg_new(last, widths, &c.v, &err) || gan_vgg_acts_new(c.v, B, H, W, &c.a, &err)) {
        printf("FAIL VGG: %s\n", err.msg);
        tu_failures++;
        return;
    }
    for (int i = 0; i <= last; i++) {
        if (c.v->mod[i].kind != GAN_VGG_CONV) continue;
        const gan_vgg_module *m = &c.v->mod[i];
        float *wt = gan_vgg_weight(c.v, i), *b = gan_vgg_bias(c.v, i), bound = sqrtf(6.0f / (float)(m->ic * 9));
        for (size_t k = 0; k < (size_t)m->oc * m->ic * 9; k++) wt[k] = urand() * bound;
        for (int k = 0; k < m->oc; k++) b[k] = 0.05f + 0.05f * urand();
    }
    size_t ni = (size_t)B * 3 * H * W, no;
    c.img = rand_buf(ni, 0.5f);
    for (size_t i = 0; i < ni; i++) c.img[i] += 0.5f;
    gan_vgg_forward(c.v, c.a, c.img);
    gan_vgg_output(c.v, c.a, &no);
    c.r = rand_buf(no, 1.0f);
    float *dimg = c.dimg = zeros(ni);
    vgg_regrad(&c);
    /* the image is normalised by 1/std ~ 4.4: a smaller step keeps the same reach inside */
    fd_op o = {.op = "vgg19 (to conv3_1, narrow) dimg", .regrad = vgg_regrad, .tol = 2e-2};
    fd_tensor(&o, "dimg", c.img, dimg, ni, 50, 1e-3f, vgg_loss, &c);
    fd_report(&o);

    /* the perceptual loss mean|VGG(img) - VGG(ref)|, with its own dimg */
    float *ref_img = rand_buf(ni, 0.5f);
    for (size_t i = 0; i < ni; i++) ref_img[i] += 0.5f;
    gan_vgg_forward(c.v, c.a, ref_img);
    const float *fo = gan_vgg_output(c.v, c.a, &no);
    c.ref = malloc(no * sizeof(float));
    memcpy(c.ref, fo, no * sizeof(float));
    c.perceptual = 1;
    vgg_regrad(&c);
    fd_op p = {.op = "vgg19 perceptual L1 dimg", .regrad = vgg_regrad, .tol = 2e-2};
    fd_tensor(&p, "dimg", c.img, dimg, ni, 50, 1e-3f, vgg_loss, &c);
    fd_report(&p);
    free(c.img); free(c.r); free(c.ref); free(ref_img); free(dimg);
    gan_vgg_acts_free(c.a);
    gan_vgg_free(c.v);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    char dir[] = "/tmp/liif-fd-grad-XXXXXX";
    if (!mkdtemp(dir)) { printf("FAIL mkdtemp\n"); return 1; }
    check_conv3x3(0);
    check_conv3x3(1);
    check_linear(0);
    check_linear(1);
    check_relu();
    check_l1();
    check_query(1, 1, 1);
    check_query(0, 0, 0);
    check_model(dir, 0);
    check_model(dir, 1);
    check_gan_conv(4, 2, 1);
    check_gan_conv(3, 1, 1);
    check_batchnorm();
    check_leakyrelu();
    check_maxpool();
    check_gan_linear();
    check_bce(1.0f, 1.0f);
    check_bce(0.0f, 0.5f);
    check_bce(0.3f, 2.0f);
    check_disc(0);
    check_disc(1);
    check_vgg();
    rmdir(dir);
    return tu_finish("fd-grad");
}
