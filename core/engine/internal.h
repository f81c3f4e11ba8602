/* internal.h: model layout, coordinate math and the backend interface shared by the engine's files. */
#ifndef LIIF_INTERNAL_H
#define LIIF_INTERNAL_H

#include <math.h>

#include "liif.h"

/* Marks a fixed English message that a user interface may show translated: xgettext extracts it (po/meson.build's
 * --keyword=LIIF_N_) and the GIMP plug-in looks the message up in its catalog. The core itself never translates. */
#define LIIF_N_(s) s

/* One MLP decoder: layer l maps dims[l] -> dims[l+1], w[l] is [dims[l+1], dims[l]] (PyTorch
 * Linear layout), ReLU after every layer but the last. */
typedef struct {
    int n_layers;
    int dims[LIIF_MAX_HIDDEN + 2];
    const float *w[LIIF_MAX_HIDDEN + 1];
    const float *b[LIIF_MAX_HIDDEN + 1];
} liif_mlp;

/* A 3x3 convolution, weight [cout, cin, 3, 3] (OIHW), bias [cout]. */
typedef struct {
    int cin, cout;
    const float *w, *b;
} liif_conv;

struct liif_model {
    liif_config cfg;
    uint64_t serial;        /* unique among the models loaded in this process: what backends know their prepared
                             * weights by (a freed model's address can come back for the next one) */
    float *params;          /* one allocation holding every tensor below */
    size_t n_params;
    liif_conv head;         /* 3 -> F */
    liif_conv *body;        /* 2 * n_resblocks convs: block i is body[2i], body[2i+1] */
    liif_conv tail;         /* encoder.body.<n_resblocks>: F -> F */
    liif_mlp dec[2];
    double default_detail;  /* liif.detail: the detail the model is meant to be used at (1 when the file says none) */
};

/* Number of stacked 3x3 convolutions in the encoder (34 for EDSR-baseline). */
static inline int liif_model_n_convs(const liif_config *c) { return 2 * c->n_resblocks + 2; }

/* ---------------------------------------------------------------- coordinates
 * Bit-exact float32 replicas of the official code's arithmetic (see the golden README):
 * Python doubles are rounded to float before they meet a float tensor. The project is
 * compiled with -ffp-contract=off so no multiply-add is fused. */

/* Centre of cell i of n on [-1,1]: f32(f32(-1 + 1/n) + f32(f32(2/n) * i)) (make_coord). */
static inline float liif_coord(int i, int n)
{
    float v0 = (float)(-1.0 + 1.0 / n);
    float step = (float)(2.0 / n);
    return v0 + step * (float)i;
}

/* Nearest latent index for a (shifted, clamped) coordinate c on an axis of n latents:
 * round-half-even((c + 1) * n/2 - 0.5), as grid_sample(nearest, align_corners=False). */
static inline int liif_nearest(float c, int n)
{
    float t = (c + 1.0f) * ((float)n * 0.5f) - 0.5f;
    int i = (int)nearbyintf(t);
    return i < 0 ? 0 : (i >= n ? n - 1 : i);
}

/* The shifted, clamped query coordinate of ensemble shift v (-1, 0 or +1) on n latents. */
static inline float liif_shifted(float q, int v, int n, int ensemble)
{
    float s = ensemble ? (float)(v * (2.0 / n / 2.0) + 1e-6) : 0.0f;
    float c = q + s;
    const float lo = (float)(-1.0 + 1e-6), hi = (float)(1.0 - 1e-6);
    return c < lo ? lo : (c > hi ? hi : c);
}

/* Latent row range [lo, hi] read by output rows [r0, r1) of an H-row output over h latents. */
void liif_latent_range(const liif_config *c, int r0, int r1, int H, int h, int *lo, int *hi);

/* ------------------------------------------------------------------ backends
 * A backend owns the encoder features of one LR tile (in its own memory: host for the
 * CPU backends, device for CUDA) and decodes rectangles of output queries against them. */

/* The geometry of one decode call: output rows [y0, y0+rows) x cols [x0, x0+cols) of an
 * H x W output from an h x w LR image; the tile's features cover LR rows [ty, ty+th) and
 * cols [tx, tx+tw) and are exact on the latents those queries read. */
typedef struct {
    int H, W, h, w;
    int ty, tx, th, tw;
    int y0, x0, rows, cols;
    float alpha;        /* weight of decoder 2 */
    int precompute;     /* layer-1 precompute (fast CPU; ignored by the reference) */
    int unclamped;      /* 1: out = total * 0.5 + 0.5 as is (liif_options.unclamped); 0: clamped to [0,1] */
} liif_decode_job;

/* The denormalised output value of a decoder total: clamped to [0,1] unless the job says not. */
static inline float liif_output_value(const liif_decode_job *job, float total)
{
    float p = total * 0.5f + 0.5f;
    return job->unclamped ? p : (p < 0.0f ? 0.0f : (p > 1.0f ? 1.0f : p));
}

/* Decoders a job runs: at detail (alpha) 0 the output is decoder 1's alone (MODEL.md 2.1: the structure-only
 * image), so decoder 2 is not run at all: half the decoder's work, and its output cannot leak in (not even a NaN). */
static inline int liif_decoders_for(const liif_config *c, float alpha)
{
    return alpha == 0.0f ? 1 : c->n_decoders;
}

typedef struct liif_backend liif_backend;
struct liif_backend {
    const char *name;
    /* Run the encoder on an LR tile: rgb is [th, tw, 3] HWC in [0,1], rows `stride` floats apart; y0 is the tile's
     * first row in the whole LR image (the fast CPU backend aligns its GEMM blocks to it: see CONV_BLOCK). */
    liif_status (*encode)(liif_backend *be, const liif_model *m, const float *rgb, size_t stride,
                          int th, int tw, int y0, int precompute, liif_error *err);
    /* Decode a job into out: float RGB HWC in [0,1], rows out_stride floats apart. With `deferred` set, the rows may
     * land in out only by the next flush (out must stay valid until then). */
    liif_status (*decode)(liif_backend *be, const liif_model *m, const liif_decode_job *job,
                          float *out, size_t out_stride, liif_error *err);
    /* Optional (NULL: decode is always synchronous): puts every deferred output in its place and reports what
     * failed on the device meanwhile. */
    liif_status (*flush)(liif_backend *be, liif_error *err);
    int deferred; /* set by the engine around a region: decode may return before its rows land (then flush) */
    /* Bytes of working memory per LR tile pixel (for tile planning; decoder buffers are fixed per call). */
    size_t (*bytes_per_tile_px)(const liif_backend *be, const liif_model *m);
    /* Tests: the current tile's encoder features, [th, tw, F] HWC in host memory (mid = 1: the
     * mid-layer features, NULL when the model has none). */
    const float *(*features)(liif_backend *be, int mid);
    /* Free the backend and everything it holds. */
    void (*destroy)(liif_backend *be);
    int threads;
    /* Optional (NULL: the engine's default budget): bytes of working memory a tile may use now,
     * e.g. from a GPU's free memory. */
    size_t (*memory_budget)(const liif_backend *be);
    int queries_per_call; /* queries per decode call; 0 = the engine's default */
    int fast_math;        /* set by the engine for each run: the LIIF_MATH_* kind the products use (1: CUDA's
                           * TF32; tests may set it directly) */
    unsigned maths;       /* bits (1u << LIIF_MATH_*) of the kinds beyond fp32 the backend computes */
    const char *fast_name; /* the arithmetic of LIIF_PRECISION_FAST ("bf16", "tf32", "int8"); NULL: fp32 */
    char fast_note[160];  /* with fast_name NULL: why FAST computes in fp32 here; the fast CPU backend: why it
                           * has no bf16 (FAST is int8 there) */
};

/* The arithmetic kinds of liif_backend.fast_math. */
enum { LIIF_MATH_FP32 = 0, LIIF_MATH_TF32 = 1, LIIF_MATH_BF16 = 2, LIIF_MATH_INT8 = 3 };

liif_backend *liif_backend_ref_new(void);
/* For tests: how many LR tiles the engine has encoded (reuse_key skips some). */
long liif_engine_encode_count(const liif_engine *e);
liif_backend *liif_backend_cpu_new(int threads);

/* For tests: the MLP input rows of output pixel (row, col) of a job on the reference backend
 * (ns rows of in_dim, ns = 4 with the local ensemble, else 1). */
void liif_ref_mlp_inputs(const liif_backend *be, const liif_model *m, const liif_decode_job *job, int row, int col,
                         float *rows);

/* The OpenMP thread count to use for `want` threads (0 = all cores), clamped to OMP_THREAD_LIMIT
 * and made the calling thread's default. oneDNN's sgemm splits its work for omp_get_max_threads()
 * threads and silently computes only part of a product when the limit grants fewer, so every
 * parallel region and whole-team sgemm plans with this count. */
int liif_omp_threads(int want);

#endif
