/* engine.c: backend choice, exact tiling of an output region, progress and cancel. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_module.h"
#include "internal.h"

/* The LR span whose features the backend holds from the last encode. */
typedef struct {
    uint64_t key;              /* the caller's reuse_key then; 0: nothing reusable */
    int ya, yb, xa, xb;        /* LR rows [ya, yb) x cols [xa, xb) */
    int in_w, in_h, precompute, fast; /* features depend on the precision too */
} encoded_span;

struct liif_engine {
    const liif_model *m;
    liif_backend *be;
    encoded_span held;
    long n_encodes;            /* tiles encoded so far (tests check that reuse happens) */
};

long liif_engine_encode_count(const liif_engine *e) { return e->n_encodes; }

/* With a reuse key, tiles are encoded this many LR pixels wider on each side, so that a
 * preview's next request (a slightly different scale) still falls inside the held span. */
enum { DEFAULT_BUDGET_MIB = 512, QUERIES_PER_CALL = 16384, MIN_TILE = 16, REUSE_MARGIN = 8 };

void liif_options_init(liif_options *o)
{
    memset(o, 0, sizeof *o);
    o->detail = 1.0;
    o->precompute = 1;
}

liif_status liif_engine_new(const liif_model *m, liif_backend_kind kind, liif_engine **out, char *note,
                            size_t note_size, liif_error *err)
{
    *out = NULL;
    if (note && note_size) note[0] = '\0';
    liif_backend *gpu = NULL;
    if (kind == LIIF_BACKEND_CUDA || kind == LIIF_BACKEND_AUTO) { /* the run-time CUDA module (core/cuda) */
        char why[400];
        gpu = liif_backend_cuda_new(why, sizeof why);
        if (!gpu && kind == LIIF_BACKEND_CUDA) return liif_error_set(err, LIIF_ERR_UNSUPPORTED, "CUDA: %s", why);
        if (!gpu && note && note_size) snprintf(note, note_size, "using the CPU: %s", why);
    }
    liif_engine *e = calloc(1, sizeof *e);
    if (!e) {
        if (gpu) gpu->destroy(gpu);
        return liif_error_set(err, LIIF_ERR_NOMEM, "out of memory");
    }
    e->m = m;
    e->be = gpu ? gpu : kind == LIIF_BACKEND_CPU_REF ? liif_backend_ref_new() : liif_backend_cpu_new(0);
    if (!e->be) {
        free(e);
        return liif_error_set(err, LIIF_ERR_NOMEM, "out of memory");
    }
    if (!e->be->fast_name && !e->be->fast_note[0])
        snprintf(e->be->fast_note, sizeof e->be->fast_note, "the %s backend has no fast precision", e->be->name);
    *out = e;
    return LIIF_OK;
}

void liif_engine_free(liif_engine *e)
{
    if (!e) return;
    e->be->destroy(e->be);
    free(e);
}

const char *liif_engine_backend_name(const liif_engine *e) { return e->be->name; }

static const char *const math_names[] = {"fp32", "tf32", "bf16", "int8"};

/* The LIIF_MATH_* kind precision p computes with on this engine; why, where p asked for a kind the
 * backend lacks (else empty). */
static int math_of(const liif_engine *e, liif_precision p, char *why, size_t why_size)
{
    const liif_backend *be = e->be;
    int want = p == LIIF_PRECISION_TF32   ? LIIF_MATH_TF32
               : p == LIIF_PRECISION_BF16 ? LIIF_MATH_BF16
               : p == LIIF_PRECISION_INT8 ? LIIF_MATH_INT8
                                          : LIIF_MATH_FP32;
    if (why && why_size) why[0] = '\0';
    if (p == LIIF_PRECISION_FAST) {
        for (int k = 1; be->fast_name && k < (int)(sizeof math_names / sizeof math_names[0]); k++)
            if (!strcmp(be->fast_name, math_names[k])) return k; /* the kind FAST names */
        if (why && why_size) snprintf(why, why_size, "%s", be->fast_note);
        return LIIF_MATH_FP32;
    }
    if (want == LIIF_MATH_FP32 || (be->maths & 1u << want)) return want;
    if (why && why_size) {
        if (want == LIIF_MATH_BF16 && be->fast_note[0]) snprintf(why, why_size, "%s", be->fast_note);
        else snprintf(why, why_size, "the %s backend has no %s arithmetic, using fp32", be->name, math_names[want]);
    }
    return LIIF_MATH_FP32;
}

const char *liif_engine_precision_name(const liif_engine *e, liif_precision p, char *note, size_t note_size)
{
    return math_names[math_of(e, p, note, note_size)];
}

int liif_cuda_probe(char *name, size_t name_size, char *reason, size_t reason_size)
{
    size_t free_bytes = 0, total_bytes = 0;
    const liif_cuda_module *mod = liif_cuda_module_get(reason, reason_size);
    if (name && name_size) name[0] = '\0';
    if (!mod) return 0;
    if (mod->device_info(name, name_size, &free_bytes, &total_bytes) != 0) {
        if (reason && reason_size) snprintf(reason, reason_size, "%s", LIIF_N_("no usable GPU found"));
        return 0;
    }
    return 1;
}

/* ------------------------------------------------------------ tiling */

void liif_latent_range(const liif_config *c, int r0, int r1, int H, int h, int *lo, int *hi)
{
    /* The nearest latent is monotone in the output row, so the end rows bound the range. */
    int v0 = c->local_ensemble ? -1 : 0, v1 = c->local_ensemble ? 1 : 0;
    *lo = liif_nearest(liif_shifted(liif_coord(r0, H), v0, h, c->local_ensemble), h);
    *hi = liif_nearest(liif_shifted(liif_coord(r1 - 1, H), v1, h, c->local_ensemble), h);
}

/* LR span [a, b) whose encoder output is exact on latents [lo, hi] and their unfold neighbours. */
static void lr_span(const liif_config *c, int lo, int hi, int n, int *a, int *b)
{
    int pad = liif_model_n_convs(c) + (c->feat_unfold ? 1 : 0);
    *a = lo - pad < 0 ? 0 : lo - pad;
    *b = hi + pad + 1 > n ? n : hi + pad + 1;
}

/* LR tile side (without halo) that fits the budget. */
static int plan_tile(const liif_engine *e, const liif_options *o)
{
    if (o->tile > 0) return o->tile;
    size_t budget = o->memory_budget ? o->memory_budget
                    : e->be->memory_budget ? e->be->memory_budget(e->be) : (size_t)DEFAULT_BUDGET_MIB << 20;
    size_t per_px = e->be->bytes_per_tile_px(e->be, e->m);
    int halo = liif_model_halo(e->m);
    int t = MIN_TILE;
    while (t < 4096) {
        size_t side = (size_t)(2 * t) + 2 * (size_t)halo;
        if (side * side * per_px > budget) break;
        t *= 2;
    }
    return t;
}

/* Encode LR span [ya, yb) x [xa, xb), or reuse the held features when they cover it (the span
 * is then widened to the held one, whose features are exact on every latent the request reads:
 * a larger tile only moves its inexact borders further away). */
static liif_status encode_span(liif_engine *e, const liif_image *in, const liif_options *o, int *ya, int *yb, int *xa,
                               int *xb, liif_error *err)
{
    encoded_span *h = &e->held;
    if (o->reuse_key && h->key == o->reuse_key && h->in_w == in->w && h->in_h == in->h &&
        h->precompute == o->precompute && h->fast == e->be->fast_math && h->ya <= *ya && h->yb >= *yb &&
        h->xa <= *xa && h->xb >= *xb) {
        *ya = h->ya, *yb = h->yb, *xa = h->xa, *xb = h->xb;
        return LIIF_OK;
    }
    if (o->reuse_key) {
        *ya = *ya - REUSE_MARGIN > 0 ? *ya - REUSE_MARGIN : 0;
        *xa = *xa - REUSE_MARGIN > 0 ? *xa - REUSE_MARGIN : 0;
        *yb = *yb + REUSE_MARGIN < in->h ? *yb + REUSE_MARGIN : in->h;
        *xb = *xb + REUSE_MARGIN < in->w ? *xb + REUSE_MARGIN : in->w;
    }
    h->key = 0; /* a failed or cancelled encode leaves nothing reusable */
    liif_status s = e->be->encode(e->be, e->m, in->data + (size_t)*ya * in->stride + (size_t)*xa * 3, in->stride,
                                  *yb - *ya, *xb - *xa, *ya, o->precompute, err);
    if (s) return s;
    e->n_encodes++;
    *h = (encoded_span){o->reuse_key, *ya, *yb, *xa, *xb, in->w, in->h, o->precompute, e->be->fast_math};
    return LIIF_OK;
}

static int report(const liif_options *o, double done, double total)
{
    return o->progress ? o->progress(o->progress_user, total > 0 ? done / total : 1.0) : 0;
}

static liif_status upscale_tiles(liif_engine *e, const liif_image *in, const liif_region *r, float *out,
                                 size_t out_stride, const liif_options *opts, int t, liif_error *err);
static liif_status upscale_ensemble(liif_engine *e, const liif_image *in, const liif_region *r, float *out,
                                    size_t out_stride, const liif_options *opts, liif_error *err);

liif_status liif_upscale_region(liif_engine *e, const liif_image *in, const liif_region *r, float *out,
                                size_t out_stride, const liif_options *opts, liif_error *err)
{
    liif_options defaults;
    if (!opts) {
        liif_options_init(&defaults);
        opts = &defaults;
    }
    liif_status s = liif_check_size(in->w, in->h, r->out_w, r->out_h, err);
    if (s) return s;
    if (!in->data || in->stride < (size_t)in->w * 3)
        return liif_error_set(err, LIIF_ERR_ARG, "input image: no pixels or a row stride below 3 * width");
    if (r->w < 1 || r->h < 1 || r->x < 0 || r->y < 0 || r->x > r->out_w - r->w || r->y > r->out_h - r->h)
        return liif_error_set(err, LIIF_ERR_ARG, "region %dx%d+%d+%d lies outside the %dx%d output", r->w, r->h, r->x,
                              r->y, r->out_w, r->out_h);
    if (out_stride < (size_t)r->w * 3)
        return liif_error_set(err, LIIF_ERR_ARG, "output row stride %zu is below 3 * region width", out_stride);
    if (!(opts->detail >= 0.0 && opts->detail <= 1.0))
        return liif_error_set(err, LIIF_ERR_ARG, "detail must be between 0 and 1, got %g", opts->detail);
    if ((unsigned)opts->precision > LIIF_PRECISION_INT8)
        return liif_error_set(err, LIIF_ERR_ARG, "unknown precision %d", (int)opts->precision);
    if (opts->tile < 0) return liif_error_set(err, LIIF_ERR_ARG, "tile size must be positive, got %d", opts->tile);
    if (opts->ensemble) return upscale_ensemble(e, in, r, out, out_stride, opts, err);

    e->be->threads = opts->threads > 0 ? opts->threads : omp_get_num_procs();
    e->be->fast_math = math_of(e, opts->fast_math ? LIIF_PRECISION_FAST : opts->precision, NULL, 0);
    int t = plan_tile(e, opts);
    if (report(opts, 0, (double)r->w * r->h)) return liif_error_set(err, LIIF_ERR_CANCELLED, "cancelled");
    /* A backend that can may return from decode before the rows land (the GPU computes the next call meanwhile):
     * every path out of the region flushes them, so out is complete, or untouched after, when this returns. */
    e->be->deferred = e->be->flush != NULL;
    s = upscale_tiles(e, in, r, out, out_stride, opts, t, err);
    if (e->be->flush) {
        liif_error ferr;
        liif_status fs = e->be->flush(e->be, s ? &ferr : err);
        s = s ? s : fs;
    }
    e->be->deferred = 0;
    if (s) return s;
    if (report(opts, 1, 1)) return liif_error_set(err, LIIF_ERR_CANCELLED, "cancelled");
    return LIIF_OK;
}

/* The tiles of liif_upscale_region, t latents a side. */
static liif_status upscale_tiles(liif_engine *e, const liif_image *in, const liif_region *r, float *out,
                                 size_t out_stride, const liif_options *opts, int t, liif_error *err)
{
    const liif_config *c = &e->m->cfg;
    liif_status s;
    /* Output rows/cols per tile so that a tile reads about t latents per side. */
    int step_y = (int)((double)t * r->out_h / in->h), step_x = (int)((double)t * r->out_w / in->w);
    step_y = step_y < 1 ? 1 : step_y;
    step_x = step_x < 1 ? 1 : step_x;
    double total = (double)r->w * r->h, done = 0;

    for (int ty0 = r->y; ty0 < r->y + r->h; ty0 += step_y) {
        int ty1 = ty0 + step_y < r->y + r->h ? ty0 + step_y : r->y + r->h;
        int ilo, ihi, ya, yb;
        liif_latent_range(c, ty0, ty1, r->out_h, in->h, &ilo, &ihi);
        lr_span(c, ilo, ihi, in->h, &ya, &yb);
        for (int tx0 = r->x; tx0 < r->x + r->w; tx0 += step_x) {
            int tx1 = tx0 + step_x < r->x + r->w ? tx0 + step_x : r->x + r->w;
            int jlo, jhi, xa, xb;
            liif_latent_range(c, tx0, tx1, r->out_w, in->w, &jlo, &jhi);
            lr_span(c, jlo, jhi, in->w, &xa, &xb);
            s = encode_span(e, in, opts, &ya, &yb, &xa, &xb, err);
            if (s) return s;
            int cols = tx1 - tx0, qpc = e->be->queries_per_call > 0 ? e->be->queries_per_call : QUERIES_PER_CALL;
            int rows_per_call = qpc / cols;
            rows_per_call = rows_per_call < 1 ? 1 : rows_per_call;
            for (int y = ty0; y < ty1; y += rows_per_call) {
                if (report(opts, done, total)) return liif_error_set(err, LIIF_ERR_CANCELLED, "cancelled");
                liif_decode_job job = {
                    .H = r->out_h, .W = r->out_w, .h = in->h, .w = in->w,
                    .ty = ya, .tx = xa, .th = yb - ya, .tw = xb - xa,
                    .y0 = y, .x0 = tx0, .rows = y + rows_per_call < ty1 ? rows_per_call : ty1 - y, .cols = cols,
                    .alpha = (float)opts->detail, .precompute = opts->precompute,
                    .unclamped = opts->unclamped != 0,
                };
                float *dst = out + (size_t)(y - r->y) * out_stride + (size_t)(tx0 - r->x) * 3;
                s = e->be->decode(e->be, e->m, &job, dst, out_stride, err);
                if (s) return s;
                done += (double)job.rows * job.cols;
            }
        }
    }
    return LIIF_OK;
}

/* ================================================================== self-ensemble (liif_options.ensemble) */

/* The 8 orientations k of a w x h image: bit 4 transposes, then bit 1 flips x and bit 2 flips y. The turned image is
 * *tw x *th, and pixel (x, y) lands at (*tx, *ty). */
static void turn_size(int k, int w, int h, int *tw, int *th)
{
    *tw = k & 4 ? h : w;
    *th = k & 4 ? w : h;
}

static void turn_point(int k, int w, int h, int x, int y, int *tx, int *ty)
{
    int tw, th;
    turn_size(k, w, h, &tw, &th);
    int a = k & 4 ? y : x, b = k & 4 ? x : y;
    *tx = k & 1 ? tw - 1 - a : a;
    *ty = k & 2 ? th - 1 - b : b;
}

typedef struct {
    const liif_options *o;
    int run, runs;
} ensemble_progress;

static int ensemble_report(void *user, double fraction)
{
    ensemble_progress *p = user;
    return report(p->o, p->run + fraction, p->runs);
}

/* The region as the mean of decoder 1's output (a one-decoder model's output) over the 8 orientations, each
 * computed as a region of its own (exact tiling) on the turned input and turned back into out; for a two-decoder
 * model at a detail above 0, out starts as the upright input's d1 + detail * d2 and its d1 is taken out again
 * (weight 1/8 - 1), which leaves detail * d2 once. Sub-renders are unclamped, the clamp comes last. */
static liif_status upscale_ensemble(liif_engine *e, const liif_image *in, const liif_region *r, float *out,
                                    size_t out_stride, const liif_options *opts, liif_error *err)
{
    int gan = e->m->cfg.n_decoders > 1 && opts->detail > 0;
    float *tin = malloc(sizeof(float) * 3 * (size_t)in->w * in->h), *tmp = malloc(sizeof(float) * 3 * (size_t)r->w * r->h);
    if (!tin || !tmp) {
        free(tin);
        free(tmp);
        return liif_error_set(err, LIIF_ERR_NOMEM, "self-ensemble: out of memory for a %dx%d input and a %dx%d region",
                              in->w, in->h, r->w, r->h);
    }
    ensemble_progress pr = {opts, 0, 8 + gan};
    liif_options sub = *opts;
    sub.ensemble = 0;
    sub.unclamped = 1;
    sub.reuse_key = 0;
    sub.progress = opts->progress ? ensemble_report : NULL;
    sub.progress_user = &pr;
    int threads = opts->threads > 0 ? opts->threads : omp_get_num_procs();
    liif_status s = LIIF_OK;
    if (gan) {
        s = liif_upscale_region(e, in, r, out, out_stride, &sub, err);
        pr.run++;
    }
    sub.detail = 0;
    for (int k = 0; s == LIIF_OK && k < 8; k++, pr.run++) {
        int tw, th, ow, oh, ax, ay, bx, by;
        turn_size(k, in->w, in->h, &tw, &th);
        turn_size(k, r->out_w, r->out_h, &ow, &oh);
        liif_image ti = {tin, tw, th, (size_t)tw * 3};
        if (k == 0) {
            ti = *in;
        } else {
#pragma omp parallel for num_threads(threads)
            for (int y = 0; y < in->h; y++)
                for (int x = 0; x < in->w; x++) {
                    int tx, ty;
                    turn_point(k, in->w, in->h, x, y, &tx, &ty);
                    memcpy(tin + ((size_t)ty * tw + tx) * 3, in->data + (size_t)y * in->stride + (size_t)x * 3,
                           3 * sizeof(float));
                }
        }
        turn_point(k, r->out_w, r->out_h, r->x, r->y, &ax, &ay);
        turn_point(k, r->out_w, r->out_h, r->x + r->w - 1, r->y + r->h - 1, &bx, &by);
        liif_region tr = {ow, oh, ax < bx ? ax : bx, ay < by ? ay : by, abs(bx - ax) + 1, abs(by - ay) + 1};
        s = liif_upscale_region(e, &ti, &tr, tmp, (size_t)tr.w * 3, &sub, err);
        if (s) break;
        int first = !gan && k == 0;
        float wk = gan ? (k == 0 ? 0.125f - 1.0f : 0.125f) : 1.0f;
#pragma omp parallel for num_threads(threads)
        for (int y = 0; y < r->h; y++)
            for (int x = 0; x < r->w; x++) {
                int tx, ty;
                turn_point(k, r->out_w, r->out_h, r->x + x, r->y + y, &tx, &ty);
                const float *v = tmp + ((size_t)(ty - tr.y) * tr.w + (tx - tr.x)) * 3;
                float *o = out + (size_t)y * out_stride + (size_t)x * 3;
                for (int c = 0; c < 3; c++)
                    o[c] = first ? v[c] : o[c] + wk * v[c];
            }
    }
    free(tin);
    free(tmp);
    if (s) return s;
    float scale = gan ? 1.0f : 0.125f;
#pragma omp parallel for num_threads(threads)
    for (int y = 0; y < r->h; y++)
        for (int i = 0; i < r->w * 3; i++) {
            float *o = out + (size_t)y * out_stride + i, v = *o * scale;
            *o = opts->unclamped ? v : v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
        }
    if (report(opts, 1, 1)) return liif_error_set(err, LIIF_ERR_CANCELLED, "cancelled");
    return LIIF_OK;
}
