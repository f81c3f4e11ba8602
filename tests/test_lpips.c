/* test_lpips.c: AlexNet-LPIPS against lpips_alex (PRNG weights, taps, per-layer, distance), load errors; writes test weights. */
#include <unistd.h>

#include "lpips.h"
#include "test_gan_util.h"

/* The README's PRNG weights of lpips_alex (seed 2); each proved against wfirst8/wsum when f is given. */
static void regen(liif_lpips *lp, const liif_st_file *f)
{
    char name[64];
    for (int k = 0; k < LIIF_LPIPS_TAPS; k++) {
        const liif_lpips_layer *L = &liif_lpips_layers[k];
        size_t nw = (size_t)L->oc * L->ic * L->ksize * L->ksize;
        snprintf(name, sizeof name, "net.features.%d.weight", L->module);
        tg_prng_fill(lp->w[k], nw, 2, name, TG_SYM, sqrt(6.0 / (double)(L->ic * L->ksize * L->ksize)));
        if (f) tg_check_regen(f, name, lp->w[k], nw);
        snprintf(name, sizeof name, "net.features.%d.bias", L->module);
        tg_prng_fill(lp->b[k], (size_t)L->oc, 2, name, TG_SYM, 0.05);
        if (f) tg_check_regen(f, name, lp->b[k], (size_t)L->oc);
        snprintf(name, sizeof name, "lin%d.model.1.weight", k);
        tg_prng_fill(lp->lin[k], (size_t)L->oc, 2, name, TG_POS, 1.0);
        if (f) tg_check_regen(f, name, lp->lin[k], (size_t)L->oc);
    }
}

/* An F64 tensor of n values, copied out (the mapping gives no 8-byte alignment). */
static void f64_values(const liif_st_file *f, const char *name, double *out, int n)
{
    const liif_st_tensor *t = liif_st_find(f, name);
    if (!t || t->dtype != LIIF_DT_F64 || t->numel != n) {
        printf("FAIL no F64 [%d] tensor %s\n", n, name);
        exit(1);
    }
    memcpy(out, t->data, (size_t)n * sizeof(double));
}

/* Load errors: a file without lin4, a file whose conv3 bias has the wrong shape. */
static void check_load_errors(liif_lpips *lp, const char *tmp)
{
    liif_error err;
    liif_lpips *got = NULL;
    CHECK(liif_lpips_save(lp, tmp, &err) == LIIF_OK, "save: %s", err.msg);
    CHECK(liif_lpips_load(tmp, &got, &err) == LIIF_OK, "load: %s", err.msg);
    if (got) CHECK(!memcmp(got->params, lp->params, lp->n_params * sizeof(float)), "saved weights differ");
    liif_lpips_free(got);

    liif_st_entry e[3];
    e[0] = (liif_st_entry){"net.features.0.weight", LIIF_DT_F32, 4, {64, 3, 11, 11}, lp->w[0]};
    e[1] = (liif_st_entry){"net.features.0.bias", LIIF_DT_F32, 1, {64}, lp->b[0]};
    e[2] = (liif_st_entry){"lin0.model.1.weight", LIIF_DT_F32, 4, {1, 64, 1, 1}, lp->lin[0]};
    CHECK(liif_st_write(tmp, e, 3, NULL, 0, &err) == LIIF_OK, "write: %s", err.msg);
    liif_status st = liif_lpips_load(tmp, &got, &err);
    CHECK(st == LIIF_ERR_MODEL && strstr(err.msg, "net.features.3.weight") && !got, "missing tensor: %s (%s)",
          liif_status_name(st), err.msg);
    printf("missing tensor: %s\n", err.msg);
    e[1].shape[0] = 63;
    e[1].data = lp->b[0];
    CHECK(liif_st_write(tmp, e, 3, NULL, 0, &err) == LIIF_OK, "write: %s", err.msg);
    st = liif_lpips_load(tmp, &got, &err);
    CHECK(st == LIIF_ERR_MODEL && strstr(err.msg, "net.features.0.bias") && !got, "wrong shape: %s (%s)",
          liif_status_name(st), err.msg);
    printf("wrong shape: %s\n", err.msg);
    st = liif_lpips_load("/nonexistent/lpips.safetensors", &got, &err);
    CHECK(st == LIIF_ERR_IO && !got, "missing file: %s", liif_status_name(st));
    unlink(tmp);

    liif_lpips_feats *small;
    st = liif_lpips_feats_new(64, LIIF_LPIPS_MIN_SIDE - 1, &small, &err);
    CHECK(st == LIIF_ERR_ARG && !small, "30 px wide image: %s", liif_status_name(st));
    st = liif_lpips_feats_new(LIIF_LPIPS_MIN_SIDE, LIIF_LPIPS_MIN_SIDE, &small, &err);
    CHECK(st == LIIF_OK, "31x31 image: %s", err.msg);
    liif_lpips_feats_free(small);
}

/* Taps, per-layer values and distance of x0/x1 against the golden, with the reference or the fast convs. */
static void check_golden(liif_lpips *lp, const liif_st_file *f, int reference)
{
    liif_error err;
    lp->reference = reference;
    printf("-- %s convs\n", reference ? "reference (plain loops, double sums)" : "fast (im2col + sgemm)");
    const liif_st_tensor *tx = liif_st_find(f, "x0");
    CHECK(tx && tx->ndim == 4 && tx->shape[1] == 3, "x0 shape");
    int H = (int)tx->shape[2], W = (int)tx->shape[3];
    const float *x0 = tg_f32(f, "x0", NULL), *x1 = tg_f32(f, "x1", NULL);
    liif_lpips_feats *a, *b;
    CHECK(liif_lpips_feats_new(H, W, &a, &err) == LIIF_OK, "%s", err.msg);
    CHECK(liif_lpips_feats_new(H, W, &b, &err) == LIIF_OK, "%s", err.msg);
    if (!a || !b) exit(1);
    double t0 = tg_seconds();
    CHECK(liif_lpips_forward(lp, x0, a, &err) == LIIF_OK, "%s", err.msg);
    double t1 = tg_seconds();
    CHECK(liif_lpips_forward(lp, x1, b, &err) == LIIF_OK, "%s", err.msg);
    double per_layer[LIIF_LPIPS_TAPS];
    double dist = liif_lpips_compare(lp, a, b, per_layer);

    char name[64], what[160];
    for (int k = 0; k < LIIF_LPIPS_TAPS; k++) {
        const liif_lpips_feats *fe[2] = {a, b};
        for (int i = 0; i < 2; i++) {
            size_t n;
            snprintf(name, sizeof name, "tap%d_x%d", k, i);
            const float *want = tg_f32(f, name, &n);
            size_t got_n = (size_t)fe[i]->c[k] * fe[i]->h[k] * fe[i]->w[k];
            CHECK(n == got_n, "%s: %zu values, want %zu", name, got_n, n);
            if (n != got_n) continue;
            double m = tg_maxabs(want, n);
            snprintf(what, sizeof what, "%s [%d,%d,%d] (1e-5 * max|f| = %.2g)", name, fe[i]->c[k], fe[i]->h[k],
                     fe[i]->w[k], 1e-5 * m);
            tu_close(what, fe[i]->tap[k], want, n, 1e-5 * m);
        }
    }
    const float *want_pl = tg_f32(f, "per_layer", NULL);
    double want_pl64[LIIF_LPIPS_TAPS], want_d64;
    f64_values(f, "per_layer_f64", want_pl64, LIIF_LPIPS_TAPS);
    f64_values(f, "dist_f64", &want_d64, 1);
    for (int k = 0; k < LIIF_LPIPS_TAPS; k++) {
        double d = fabs(per_layer[k] - want_pl[k]);
        printf("per_layer[%d] %.9f  want %.9f  |diff| %.2g (vs f64 %.2g) %s\n", k, per_layer[k], want_pl[k], d,
               fabs(per_layer[k] - want_pl64[k]), d <= 1e-6 ? "ok" : "FAIL");
        if (!(d <= 1e-6)) tu_failures++;
    }
    float want_d = tg_f32(f, "dist", NULL)[0];
    printf("dist %.9f  want %.9f  |diff| %.2g (vs f64 %.2g) %s\n", dist, want_d, fabs(dist - want_d),
           fabs(dist - want_d64), fabs(dist - want_d) <= 1e-6 ? "ok" : "FAIL");
    if (!(fabs(dist - want_d) <= 1e-6)) tu_failures++;

    /* The same images as RGB HWC in [0,1] (the path liif eval uses): the same distance. */
    size_t plane = (size_t)H * W;
    float *rgb0 = malloc(plane * 3 * sizeof(float)), *rgb1 = malloc(plane * 3 * sizeof(float));
    if (!rgb0 || !rgb1) exit(1);
    for (size_t p = 0; p < plane; p++)
        for (int c = 0; c < 3; c++) {
            rgb0[p * 3 + c] = (x0[c * plane + p] + 1.0f) * 0.5f;
            rgb1[p * 3 + c] = (x1[c * plane + p] + 1.0f) * 0.5f;
        }
    CHECK(liif_lpips_forward_rgb(lp, rgb0, (size_t)W * 3, a, &err) == LIIF_OK, "%s", err.msg);
    CHECK(liif_lpips_forward_rgb(lp, rgb1, (size_t)W * 3, b, &err) == LIIF_OK, "%s", err.msg);
    double dist_rgb = liif_lpips_compare(lp, a, b, NULL), self = liif_lpips_compare(lp, a, a, NULL);
    printf("dist via RGB [0,1] %.9f |diff| %.2g; d(x0, x0) = %g\n", dist_rgb, fabs(dist_rgb - want_d), self);
    CHECK(fabs(dist_rgb - want_d) <= 1e-6, "RGB path distance");
    CHECK(self == 0.0, "d(x0, x0) = %g", self);
    double dist2;
    CHECK(liif_lpips_distance(lp, x1, x0, H, W, &dist2, NULL, &err) == LIIF_OK, "%s", err.msg);
    CHECK(fabs(dist2 - dist) <= 1e-12, "d(x1, x0) %.12g != d(x0, x1) %.12g", dist2, dist);
    free(rgb0);
    free(rgb1);

    printf("%s convs: forward of one %dx%d image %.3f s (%d threads)\n", reference ? "reference" : "fast", W, H,
           t1 - t0, lp->threads);
    liif_lpips_feats_free(a);
    liif_lpips_feats_free(b);
}

/* Fast against reference convs on two random 97x83 images (several im2col blocks, odd sides). */
static void check_fast_vs_ref(liif_lpips *lp)
{
    enum { H = 97, W = 83 };
    liif_error err;
    float *x[2];
    liif_lpips_feats *ft[2][2];
    double dist[2];
    for (int i = 0; i < 2; i++) {
        x[i] = malloc(3 * H * W * sizeof(float));
        if (!x[i]) exit(1);
        tg_prng_fill(x[i], 3 * H * W, 7, i ? "x1" : "x0", TG_SYM, 1.0);
    }
    for (size_t j = 0; j < 3 * H * W; j++) x[1][j] = 0.7f * x[1][j] + 0.3f * x[0][j];
    for (int ref = 0; ref < 2; ref++) {
        lp->reference = ref;
        for (int i = 0; i < 2; i++) {
            CHECK(liif_lpips_feats_new(H, W, &ft[ref][i], &err) == LIIF_OK, "%s", err.msg);
            if (!ft[ref][i]) exit(1);
            CHECK(liif_lpips_forward(lp, x[i], ft[ref][i], &err) == LIIF_OK, "%s", err.msg);
        }
        dist[ref] = liif_lpips_compare(lp, ft[ref][0], ft[ref][1], NULL);
    }
    char what[96];
    for (int k = 0; k < LIIF_LPIPS_TAPS; k++) {
        size_t n = (size_t)ft[0][0]->c[k] * ft[0][0]->h[k] * ft[0][0]->w[k];
        snprintf(what, sizeof what, "%dx%d fast vs reference tap%d [%d,%d,%d] (1e-5 * max|f|)", W, H, k,
                 ft[0][0]->c[k], ft[0][0]->h[k], ft[0][0]->w[k]);
        tu_close(what, ft[0][0]->tap[k], ft[1][0]->tap[k], n, 1e-5 * tg_maxabs(ft[1][0]->tap[k], n));
    }
    printf("%dx%d distance fast %.9f reference %.9f |diff| %.2g\n", W, H, dist[0], dist[1], fabs(dist[0] - dist[1]));
    CHECK(fabs(dist[0] - dist[1]) <= 1e-6, "fast vs reference distance");
    for (int ref = 0; ref < 2; ref++)
        for (int i = 0; i < 2; i++) liif_lpips_feats_free(ft[ref][i]);
    free(x[0]);
    free(x[1]);
    lp->reference = 0;
}

static int write_weights(const char *path)
{
    liif_lpips *lp;
    liif_error err;
    if (liif_lpips_new(&lp, &err) != LIIF_OK) {
        printf("FAIL %s\n", err.msg);
        return 1;
    }
    regen(lp, NULL);
    liif_status st = liif_lpips_save(lp, path, &err);
    if (st != LIIF_OK) printf("FAIL %s\n", err.msg);
    liif_lpips_free(lp);
    return st != LIIF_OK;
}

int main(int argc, char **argv)
{
    /* test-lpips --write-weights PATH: the PRNG weights as a safetensors file (for the eval tests). */
    if (argc == 3 && !strcmp(argv[1], "--write-weights")) return write_weights(argv[2]);
    static char dir[1024];
    snprintf(dir, sizeof dir, "%s/components", argc > 1 ? argv[1] : "../shared/golden");
    tu_require_dir(dir);
    tg_dir = dir;
    liif_st_file *f = tg_open("lpips_alex.safetensors");
    liif_error err;
    liif_lpips *lp;
    if (liif_lpips_new(&lp, &err) != LIIF_OK) {
        printf("FAIL %s\n", err.msg);
        return 1;
    }
    lp->threads = 2;
    regen(lp, f);
    printf("lpips_alex: %zu parameters regenerated and proved against wfirst8/wsum\n", lp->n_params);

    check_golden(lp, f, 1);
    check_golden(lp, f, 0);
    check_fast_vs_ref(lp);

    char tmp[1024];
    const char *td = getenv("TMPDIR");
    snprintf(tmp, sizeof tmp, "%s/test-lpips-%ld.safetensors", td && *td ? td : "/tmp", (long)getpid());
    check_load_errors(lp, tmp);
    liif_lpips_free(lp);
    liif_st_close(f);
    return tu_finish("lpips");
}
