/* backend_cpu.c: the fast CPU backend: oneDNN sgemm (or bf16 / int8 GEMM) on cache-sized blocks, OpenMP threads, layer-1 precompute. */
#include <dnnl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "winograd.h"
#include "liif-config.h"

#if LIIF_HAVE_DNNL_BF16
/* oneDNN's bf16 GEMM (bf16 operands, float32 sums and result), row-major like dnnl_sgemm. Exported
 * with this signature by oneDNN 2.x and 3.x alike but declared only in oneDNN's own tests, so it is
 * declared here; meson checks that the library has it. */
dnnl_status_t dnnl_gemm_bf16bf16f32(char transa, char transb, dnnl_dim_t M, dnnl_dim_t N, dnnl_dim_t K, float alpha,
                                    const uint16_t *A, dnnl_dim_t lda, const uint16_t *B, dnnl_dim_t ldb, float beta,
                                    float *C, dnnl_dim_t ldc);
#endif

/* Pixels per convolution block and queries per decoder block: each thread runs a whole block
 * (im2col + GEMM + epilogue, or the whole MLP) while its data sits in L2, with a single-threaded
 * sgemm (oneDNN runs single-threaded inside an OpenMP parallel region).
 * oneDNN sums a row in an order that depends on its place in the call (on AVX2, rows that fall in a short
 * tail of its 6-row kernel, or of the chunks it cuts M into, are summed differently), so the blocks are
 * aligned to the whole image: a pixel's block and place in it follow from its row in the LR image (queries:
 * from their output row), every GEMM has the full block's rows (a tile's first and last blocks are padded
 * with zero rows), and an output is the same to the bit whatever the bands and threads (--band-rows) for
 * one tile width. Another tile width (--tile, or a memory budget that changes it) moves pixels within
 * their blocks again: a few samples then differ in their last bit. Without the alignment cli-bands-large
 * saw 16-bit outputs differ by one. */
enum { CONV_BLOCK = 256, QUERY_BLOCK = 64 };

/* Weights rearranged once per model for the im2col layout used here: a 3x3 conv weight
 * [cout, cin, 3, 3] becomes [cout, 9, cin] so that an im2col row is 9 contiguous pixel
 * vectors. Layer 1 of each decoder becomes [out, in_dim] with its feature part in the same
 * [9, F] order; its 4 coordinate/cell columns are also kept transposed as [4, out]. */
typedef struct {
    const liif_model *m;   /* the model prepared (with its serial: an address can come back) */
    uint64_t serial;
    int n_convs;
    float **conv;          /* n_convs permuted conv weights: head, body..., tail */
    float *w1[2];          /* permuted layer-1 weights, [out, in_dim] */
    float *w1_coord[2];    /* [4, out] */
    /* The int8 precision's encoder: Winograd F(4x4, 3x3) transforms (winograd.h) of the 3x3 convs but the head
     * (its 3 input channels make too small a GEMM) and of layer 1's unfolded-feature part (NULL: im2col) */
    float **wino;
    float *wino_w1[2];
    /* fp32's encoder: the same convs by Winograd along rows only (winograd.h: bands stay bit-exact), made on
     * its first use */
    int have_rows;
    float **rows;
    float *rows_w1[2];
    /* The fast precision's bf16 copies (made on its first use): the convs but the head (its
     * 3-channel input keeps float32: bf16 would round 8-bit pixels by up to half a level), layer 1
     * and the hidden layers 1 .. n_layers-2 (the narrow last layer stays float32). */
    int have_bf16;
    uint16_t **conv16;
    uint16_t *w1_16[2];
    uint16_t *hid16[2][LIIF_MAX_HIDDEN + 1];
    /* The int8 precision's hidden layers 1 .. n_layers-2: weights as int8 in [-127, 127] with one scale per
     * output (its largest |w| / 127). */
    int have_int8;
    int8_t *hid8[2][LIIF_MAX_HIDDEN + 1];
    float *hid8_scale[2][LIIF_MAX_HIDDEN + 1];
} prepared;

typedef struct {
    liif_backend base;
    prepared prep;
    /* encoder buffers, [cap, F] each; P is [cap, hidden0] per decoder; x16 is a conv input in bf16 */
    size_t cap;
    float *x, *head, *t, *u, *a, *feat_last, *feat_mid, *pre[2];
    uint16_t *x16;
    int th, tw, have_pre;
    int bf16;              /* the current encode / decode computes its products in bf16 */
    int int8;              /* the current decode computes its hidden products on integers */
    int avx2;              /* the processor has AVX2 (the decoder's element-wise work uses it) */
    int wino;              /* the encoder's convs by Winograd (int8: F(4x4, 3x3); fp32: along rows); LIIF_WINOGRAD=0
                            * in the environment: im2col, to compare */
} cpu_backend;

/* Inlined into the per-block code so that its AVX-512 build (mlp_block_avx512) compiles them too. */
#if defined(__GNUC__)
#define INLINE static inline __attribute__((always_inline))
#else
#define INLINE static inline
#endif

/* A matrix in float32 and, in the fast precision, its bf16 copy (h NULL: float32 products). */
typedef struct {
    const float *f;
    const uint16_t *h;
} operand;

/* ------------------------------------------------------------ bf16 */

/* float32 -> bf16, rounded to nearest even: the top 16 bits, 8 significant bits (relative error
 * at most 2^-9). Inputs are finite. */
INLINE uint16_t bf16_round(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

INLINE void to_bf16(const float *x, size_t n, uint16_t *y)
{
    for (size_t i = 0; i < n; i++) y[i] = bf16_round(x[i]);
}

/* Whether the processor runs bf16 dot products natively, as oneDNN sees it (its effective ISA,
 * which ONEDNN_MAX_CPU_ISA can lower); otherwise `why` says what is missing. */
static int bf16_supported(char *why, size_t why_size)
{
#if LIIF_HAVE_DNNL_BF16
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa(), need = dnnl_cpu_isa_avx512_core_bf16;
    if (((unsigned)isa & (unsigned)need) == (unsigned)need) return 1; /* ISA masks nest: AMX includes it */
    snprintf(why, why_size, "this processor has no AVX512-BF16 or AMX-BF16 (oneDNN's ISA mask 0x%x), using fp32",
             (unsigned)isa);
#else
    snprintf(why, why_size, "this oneDNN has no bf16 GEMM, using fp32");
#endif
    return 0;
}

/* C[M,N] = A[M,K] . B[N,K]^T, rows lda / ldb / ldc apart, in float32 or (both bf16 copies given)
 * bf16 with float32 sums. Single-threaded inside a parallel region. */
static void gemm_nt(int M, int N, int K, operand a, int lda, operand b, int ldb, float *c, int ldc)
{
#if LIIF_HAVE_DNNL_BF16
    if (a.h && b.h) {
        dnnl_gemm_bf16bf16f32('N', 'T', M, N, K, 1.0f, a.h, lda, b.h, ldb, 0.0f, c, ldc);
        return;
    }
#endif
    dnnl_sgemm('N', 'T', M, N, K, 1.0f, a.f, lda, b.f, ldb, 0.0f, c, ldc);
}

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
    if (p->wino)
        for (int i = 0; i < n_convs; i++) free(p->wino[i]);
    free(p->wino);
    if (p->rows)
        for (int i = 0; i < n_convs; i++) free(p->rows[i]);
    free(p->rows);
    if (p->conv16)
        for (int i = 0; i < n_convs; i++) free(p->conv16[i]);
    free(p->conv16);
    for (int d = 0; d < 2; d++) {
        free(p->w1[d]);
        free(p->w1_coord[d]);
        free(p->wino_w1[d]);
        free(p->rows_w1[d]);
        free(p->w1_16[d]);
        for (int l = 0; l <= LIIF_MAX_HIDDEN; l++) {
            free(p->hid16[d][l]);
            free(p->hid8[d][l]);
            free(p->hid8_scale[d][l]);
        }
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
    if (p->m == m && p->serial == m->serial) return LIIF_OK;
    if (p->m) prepared_free(p, p->n_convs); /* the old model may be gone: nothing of it is read */
    p->m = NULL;
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
    p->serial = m->serial;
    p->n_convs = n;
    cb->cap = 0; /* the encoder buffers' sizes depend on the model (features, decoders, layer-1 width) */
    if (!ok) {
        prepared_free(p, n);
        return liif_error_set(err, LIIF_ERR_NOMEM, "fast CPU backend: out of memory preparing weights");
    }
    return LIIF_OK;
}

/* A conv's (or layer 1's unfolded part's) Winograd weights, along rows only (fp32's) or for 4x4 tiles (int8's). */
static float *wino_transform(int rows, const float *w, int cout, int cin, int ldw)
{
    float *u = malloc((rows ? liif_wino_rows_weights_len(cout, cin) : liif_wino_weights_len(cout, cin)) * sizeof(float));
    if (u) (rows ? liif_wino_rows_weights : liif_wino_weights)(w, cout, cin, ldw, u);
    return u;
}

/* The encoder's Winograd weights in one form: the convs but the head (3 input channels make too small a GEMM)
 * into convs[1 ..], layer 1's unfolded-feature part into w1[d]. 0 when out of memory (prepared_free frees it). */
static int wino_prepare(const liif_model *m, int rows, float ***convs, float *w1[2])
{
    const liif_config *c = &m->cfg;
    int nc = liif_model_n_convs(c);
    int ok = (*convs = calloc((size_t)nc, sizeof **convs)) != NULL;
    for (int i = 1; ok && i < nc; i++) {
        const liif_conv *cv = conv_at(m, i);
        ok = ((*convs)[i] = wino_transform(rows, cv->w, cv->cout, cv->cin, cv->cin * 9)) != NULL;
    }
    for (int d = 0; ok && c->feat_unfold && d < c->n_decoders; d++)
        ok = (w1[d] = wino_transform(rows, m->dec[d].w[0], m->dec[d].dims[1], c->n_feats, m->dec[d].dims[0])) != NULL;
    return ok;
}

/* fp32's Winograd-along-rows weights, once per model (nothing where LIIF_WINOGRAD=0). */
static liif_status prepare_fp32(cpu_backend *cb, const liif_model *m, liif_error *err)
{
    liif_status s = prepare(cb, m, err);
    prepared *p = &cb->prep;
    if (s || p->have_rows || !cb->wino) return s;
    int nc = liif_model_n_convs(&m->cfg);
    if (!wino_prepare(m, 1, &p->rows, p->rows_w1)) {
        prepared_free(p, nc);
        return liif_error_set(err, LIIF_ERR_NOMEM, "fast CPU backend: out of memory preparing fp32 weights");
    }
    p->have_rows = 1;
    return LIIF_OK;
}

static uint16_t *bf16_copy(const float *x, size_t n)
{
    uint16_t *y = malloc(n * sizeof *y);
    if (y) to_bf16(x, n, y);
    return y;
}

/* The bf16 copies of the prepared weights, once per model. */
static liif_status prepare_bf16(cpu_backend *cb, const liif_model *m, liif_error *err)
{
    liif_status s = prepare(cb, m, err);
    prepared *p = &cb->prep;
    if (s || p->have_bf16) return s;
    const liif_config *c = &m->cfg;
    int n = liif_model_n_convs(c);
    p->conv16 = calloc((size_t)n, sizeof *p->conv16);
    int ok = p->conv16 != NULL;
    for (int i = 1; ok && i < n; i++) {
        const liif_conv *cv = conv_at(m, i);
        ok = (p->conv16[i] = bf16_copy(p->conv[i], (size_t)cv->cout * 9 * cv->cin)) != NULL;
    }
    for (int d = 0; ok && d < c->n_decoders; d++) {
        const liif_mlp *mlp = &m->dec[d];
        ok = (p->w1_16[d] = bf16_copy(p->w1[d], (size_t)mlp->dims[1] * mlp->dims[0])) != NULL;
        for (int l = 1; ok && l < mlp->n_layers - 1; l++)
            ok = (p->hid16[d][l] = bf16_copy(mlp->w[l], (size_t)mlp->dims[l + 1] * mlp->dims[l])) != NULL;
    }
    if (!ok) {
        prepared_free(p, n);
        return liif_error_set(err, LIIF_ERR_NOMEM, "fast CPU backend: out of memory preparing bf16 weights");
    }
    p->have_bf16 = 1;
    return LIIF_OK;
}

/* ------------------------------------------------------------ int8 */

/* The int8 precision: a hidden layer's product y = x . W^T with x >= 0 (a ReLU's output) as 7-bit unsigned
 * integers, one scale per row (its largest value / 127), and W as 8-bit signed integers, one scale per output
 * (its largest |w| / 127); oneDNN's u8 x s8 GEMM sums them exactly in 32 bits (a 256-wide layer at most
 * 256 * 127 * 127, which converts to float exactly too; up to 1040 wide it still does), and y = sum * row
 * scale * output scale. 7 bits rather than 8: on AVX2 without VNNI the GEMM adds pairs of u8 * s8 products in
 * 16 bits with saturation, which 255 * 127 * 2 overflows and 127 * 127 * 2 does not; so the integer sums are
 * exact on every x86-64 processor, for any blocking or thread count (what differs between processors is the
 * float32 encoder's last bits, as in fp32). */
enum { Q_ACT = 127, Q_W = 127 };

/* The int8 weights of the prepared model's hidden layers, once per model. */
static liif_status prepare_int8(cpu_backend *cb, const liif_model *m, liif_error *err)
{
    liif_status s = prepare(cb, m, err);
    prepared *p = &cb->prep;
    if (s || p->have_int8) return s;
    const liif_config *c = &m->cfg;
    int ok = 1, nc = liif_model_n_convs(c);
    if (cb->wino) ok = wino_prepare(m, 0, &p->wino, p->wino_w1);
    for (int d = 0; ok && d < c->n_decoders; d++) {
        const liif_mlp *mlp = &m->dec[d];
        for (int l = 1; ok && l < mlp->n_layers - 1; l++) {
            int n = mlp->dims[l + 1], k = mlp->dims[l];
            p->hid8[d][l] = malloc((size_t)n * k);
            p->hid8_scale[d][l] = malloc((size_t)n * sizeof(float));
            if (!(ok = p->hid8[d][l] && p->hid8_scale[d][l])) break;
            for (int o = 0; o < n; o++) {
                const float *w = mlp->w[l] + (size_t)o * k;
                float mx = 0.0f;
                for (int i = 0; i < k; i++) mx = fabsf(w[i]) > mx ? fabsf(w[i]) : mx;
                float inv = mx > 0.0f ? (float)Q_W / mx : 0.0f;
                for (int i = 0; i < k; i++) p->hid8[d][l][(size_t)o * k + i] = (int8_t)lrintf(w[i] * inv);
                p->hid8_scale[d][l][o] = mx / (float)Q_W;
            }
        }
    }
    if (!ok) {
        prepared_free(p, nc);
        return liif_error_set(err, LIIF_ERR_NOMEM, "fast CPU backend: out of memory preparing int8 weights");
    }
    p->have_int8 = 1;
    return LIIF_OK;
}

/* The largest of n values >= 0 (0 for none above 0), in 16 lanes so that the loop vectorises. */
INLINE float row_max(const float *v, int n)
{
    float m16[16] = {0}, mx = 0.0f;
    int k = 0;
    for (; k + 16 <= n; k += 16)
        for (int j = 0; j < 16; j++) m16[j] = v[k + j] > m16[j] ? v[k + j] : m16[j];
    for (; k < n; k++) mx = v[k] > mx ? v[k] : mx;
    for (int j = 0; j < 16; j++) mx = m16[j] > mx ? m16[j] : mx;
    return mx;
}

/* A row of n values >= 0, whose largest is mx, as 7-bit integers q (rounded to nearest); returns its scale. */
INLINE float quantize_row(const float *v, int n, float mx, uint8_t *q)
{
    float inv = mx > 0.0f ? (float)Q_ACT / mx : 0.0f;
    for (int k = 0; k < n; k++) { /* rounded by truncating v * inv + 0.5, at most 127.5 (NaN: 0) */
        float t = v[k] * inv + 0.5f;
        t = t > 0.0f ? t : 0.0f;
        t = t < (float)Q_ACT ? t : (float)Q_ACT;
        q[k] = (uint8_t)(int)t;
    }
    return mx / (float)Q_ACT;
}

INLINE void quantize_rows(const float *x, int rows, int n, uint8_t *q, float *scale)
{
    for (int r = 0; r < rows; r++)
        scale[r] = quantize_row(x + (size_t)r * n, n, row_max(x + (size_t)r * n, n), q + (size_t)r * n);
}

/* y[M,N] = x[M,K] . W[N,K]^T from their integers and scales; y's memory holds the int32 sums first. With
 * next (a hidden layer that feeds another): y = relu(y + bias) too, and its integers and row scales go to
 * next / next_scale (x and xs may be them: the product has read them by then). */
INLINE void gemm_int8(int M, int N, int K, const uint8_t *x, const float *xs, const int8_t *w, const float *ws,
                      const float *bias, float *y, uint8_t *next, float *next_scale)
{
    int32_t *acc = (int32_t *)y, zero = 0;
    dnnl_gemm_u8s8s32('N', 'T', 'F', M, N, K, 1.0f, x, K, 0, w, K, 0, 0.0f, acc, N, &zero);
    for (int r = 0; r < M; r++) {
        float s = xs[r], m16[16] = {0}, mx = 0.0f;
        float *o = y + (size_t)r * N;
        const int32_t *a = acc + (size_t)r * N;
        if (!next) {
            for (int k = 0; k < N; k++) o[k] = (float)a[k] * s * ws[k];
            continue;
        }
        int k = 0;
        for (; k + 16 <= N; k += 16) /* dequantise, bias, ReLU and the row's maximum in one pass */
            for (int j = 0; j < 16; j++) {
                float v = (float)a[k + j] * s * ws[k + j] + bias[k + j];
                v = v < 0.0f ? 0.0f : v;
                o[k + j] = v;
                m16[j] = v > m16[j] ? v : m16[j];
            }
        for (; k < N; k++) {
            float v = (float)a[k] * s * ws[k] + bias[k];
            o[k] = v < 0.0f ? 0.0f : v;
            mx = o[k] > mx ? o[k] : mx;
        }
        for (int j = 0; j < 16; j++) mx = m16[j] > mx ? m16[j] : mx;
        next_scale[r] = quantize_row(o, N, mx, next + (size_t)r * N);
    }
}

/* ------------------------------------------------------------ convolution */

/* im2col of pixels [p0, p0+n) of an (h, w, cin) HWC map of `es`-byte elements: 9 neighbour
 * vectors per row, zero outside. */
static void im2col(const void *in, size_t es, int h, int w, int cin, size_t p0, int n, void *col)
{
    size_t vec = (size_t)cin * es;
    for (int p = 0; p < n; p++) {
        int y = (int)((p0 + p) / w), x = (int)((p0 + p) % w);
        for (int k = 0; k < 9; k++) {
            int yy = y + k / 3 - 1, xx = x + k % 3 - 1;
            char *dst = (char *)col + ((size_t)p * 9 + k) * vec;
            if (yy < 0 || yy >= h || xx < 0 || xx >= w) memset(dst, 0, vec);
            else memcpy(dst, (const char *)in + ((size_t)yy * w + xx) * vec, vec);
        }
    }
}

/* out = act(conv3x3(in) + bias + res) (ksize 3) or act(in @ W^T + bias + res) (ksize 1).
 * in (h, w, cin), out and res (h, w, cout), HWC. wp is [cout, ksize^2 * cin] rows ldw apart.
 * bf16 products when both in.h and wp.h are given. bias and res may be NULL. Blocks of
 * CONV_BLOCK pixels run in parallel, aligned to the image: the tile's rows are rows y0.. of it. */
static liif_status conv_fast(operand in, int h, int w, int y0, int cin, int ksize, operand wp, int ldw,
                             const float *bias, const float *res, int relu, int cout, float *out, int threads)
{
    size_t np = (size_t)h * w, es = in.h && wp.h ? sizeof(uint16_t) : sizeof(float);
    size_t first = (size_t)y0 * w, b0 = first / CONV_BLOCK; /* the tile's pixels are [first, first + np) */
    long nblocks = (long)((first + np + CONV_BLOCK - 1) / CONV_BLOCK - b0);
    int kk = ksize * ksize * cin, lda = ksize == 3 ? kk : cin, failed = 0;
    int partial = first % CONV_BLOCK || (first + np) % CONV_BLOCK;
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        /* the im2col block, or a partial block's rows with zero rows around them, and a whole block of output */
        void *col = ksize == 3 || partial ? malloc((size_t)CONV_BLOCK * lda * es) : NULL;
        float *whole = partial ? malloc((size_t)CONV_BLOCK * cout * sizeof(float)) : NULL;
        if ((ksize == 3 || partial) && !col) failed = 1;
        if (partial && !whole) failed = 1;
#pragma omp for schedule(dynamic)
        for (long blk = 0; blk < nblocks; blk++) {
            if (failed) continue;
            size_t lo = (b0 + blk) * CONV_BLOCK, hi = lo + CONV_BLOCK; /* the block, in image pixels */
            size_t skip = lo < first ? first - lo : 0;                 /* its rows before the tile */
            lo = lo < first ? first : lo;
            hi = hi > first + np ? first + np : hi;
            size_t p0 = lo - first; /* the first of its pixels in the tile */
            int n = (int)(hi - lo), full = n == CONV_BLOCK;
            operand a = {in.f + p0 * cin, in.h && wp.h ? in.h + p0 * cin : NULL};
            char *rows = (char *)col + skip * lda * es;
            if (ksize == 3)
                im2col(a.h ? (const void *)in.h : (const void *)in.f, es, h, w, cin, p0, n, rows);
            else if (!full)
                memcpy(rows, a.h ? (const void *)a.h : (const void *)a.f, (size_t)n * cin * es);
            if (ksize == 3 || !full)
                a = a.h ? (operand){NULL, col} : (operand){col, NULL};
            float *o = out + p0 * cout;
            if (full) {
                gemm_nt(n, cout, kk, a, lda, wp, ldw, o, cout);
            } else {
                memset(col, 0, skip * lda * es);
                memset(rows + (size_t)n * lda * es, 0, (CONV_BLOCK - skip - n) * lda * es);
                gemm_nt(CONV_BLOCK, cout, kk, a, lda, wp, ldw, whole, cout);
                memcpy(o, whole + skip * cout, (size_t)n * cout * sizeof(float));
            }
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
        free(whole);
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
    uint16_t *x16 = ok ? realloc(cb->x16, nf * sizeof *x16) : NULL;
    if (x16) cb->x16 = x16;
    ok = x16 != NULL;
    if (ok && c->n_decoders == 2 && c->dec_source[0] == LIIF_FEAT_MID) ok = grow(&cb->feat_mid, nf);
    for (int d = 0; ok && d < c->n_decoders; d++) ok = grow(&cb->pre[d], np * c->hidden[0]);
    if (!ok) return LIIF_ERR_NOMEM;
    cb->cap = np;
    return LIIF_OK;
}

/* Conv i's weights (0 head, then body..., tail) and decoder d's layer-1 weights in the current precision. */
static operand conv_weight(const cpu_backend *cb, int i)
{
    return (operand){cb->prep.conv[i], cb->bf16 ? cb->prep.conv16[i] : NULL};
}

static operand w1_weight(const cpu_backend *cb, int d)
{
    return (operand){cb->prep.w1[d], cb->bf16 ? cb->prep.w1_16[d] : NULL};
}

/* A conv input of n floats; in bf16 mode (n > 0) also its bf16 copy in cb->x16, converted in parallel. */
static operand conv_input(cpu_backend *cb, const float *x, size_t n, int threads)
{
    if (!cb->bf16 || n == 0) return (operand){x, NULL};
    long nchunks = (long)((n + 65535) / 65536);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (long k = 0; k < nchunks; k++) {
        size_t i0 = (size_t)k * 65536;
        to_bf16(x + i0, n - i0 < 65536 ? n - i0 : 65536, cb->x16 + i0);
    }
    return (operand){x, cb->x16};
}

/* Encoder conv i (not the head) of an F-channel map: Winograd in the int8 precision (its encoder is float32),
 * Winograd along rows in fp32 (bit-exact bands), else im2col (bf16 products). */
static liif_status conv3(cpu_backend *cb, const float *x, int th, int tw, int y0, int cin, int i, const float *bias,
                         const float *res, int relu, int cout, float *out, int T)
{
    if (cb->int8 && cb->prep.wino && cb->prep.wino[i])
        return liif_conv_wino(x, th, tw, y0, cin, cb->prep.wino[i], bias, res, relu, cout, out, T);
    if (!cb->int8 && !cb->bf16 && cb->prep.rows && cb->prep.rows[i])
        return liif_conv_wino_rows(x, th, tw, y0, cin, cb->prep.rows[i], bias, res, relu, cout, out, T);
    return conv_fast(conv_input(cb, x, (size_t)th * tw * cin, T), th, tw, y0, cin, 3, conv_weight(cb, i), 9 * cin,
                     bias, res, relu, cout, out, T);
}

static liif_status cpu_encode(liif_backend *be, const liif_model *m, const float *rgb, size_t stride, int th,
                              int tw, int y0, int precompute, liif_error *err)
{
    cpu_backend *cb = (cpu_backend *)be;
    const liif_config *c = &m->cfg;
    size_t np = (size_t)th * tw;
    int F = c->n_feats, T = liif_omp_threads(be->threads);
    cb->bf16 = be->fast_math == LIIF_MATH_BF16 && be->fast_name; /* the engine asks only where it is supported */
    cb->int8 = be->fast_math == LIIF_MATH_INT8;
    liif_status s = cb->bf16 ? prepare_bf16(cb, m, err) : cb->int8 ? prepare_int8(cb, m, err) : prepare_fp32(cb, m, err);
    if (s) return s;
    if (reserve(cb, c, np))
        return liif_error_set(err, LIIF_ERR_NOMEM, "fast CPU encoder: out of memory for a %dx%d tile", tw, th);
    cb->th = th;
    cb->tw = tw;
    cb->have_pre = 0;
    for (int y = 0; y < th; y++)
        for (int i = 0; i < tw * c->in_ch; i++) cb->x[(size_t)y * tw * c->in_ch + i] = (rgb[y * stride + i] - 0.5f) / 0.5f;
    int nc = liif_model_n_convs(c);
    s = conv_fast(conv_input(cb, cb->x, 0, T), th, tw, y0, c->in_ch, 3, conv_weight(cb, 0), 9 * c->in_ch,
                  m->head.b, NULL, 0, F, cb->head, T);
    const float *t = cb->head;
    for (int b = 0; !s && b < c->n_resblocks; b++) { /* t = t + conv(relu(conv(t))) */
        float *next = t == cb->t ? cb->u : cb->t;
        const liif_conv *c1 = &m->body[2 * b], *c2 = &m->body[2 * b + 1];
        s = conv3(cb, t, th, tw, y0, F, 1 + 2 * b, c1->b, NULL, 1, F, cb->a, T);
        if (!s) s = conv3(cb, cb->a, th, tw, y0, F, 2 + 2 * b, c2->b, t, 0, F, next, T);
        t = next;
        if (cb->feat_mid && b == c->mid_block && c->n_decoders == 2 && c->dec_source[0] == LIIF_FEAT_MID)
            memcpy(cb->feat_mid, t, np * F * sizeof(float));
    }
    if (!s) s = conv3(cb, t, th, tw, y0, F, nc - 1, m->tail.b, cb->head, 0, F, cb->feat_last, T);
    for (int d = 0; !s && precompute && d < c->n_decoders; d++) { /* layer 1's feature part, once per latent */
        const float *src = c->dec_source[d] == LIIF_FEAT_MID ? cb->feat_mid : cb->feat_last;
        if (cb->int8 && c->feat_unfold && cb->prep.wino_w1[d])
            s = liif_conv_wino(src, th, tw, y0, F, cb->prep.wino_w1[d], NULL, NULL, 0, c->hidden[0], cb->pre[d], T);
        else if (!cb->int8 && !cb->bf16 && c->feat_unfold && cb->prep.rows_w1[d])
            s = liif_conv_wino_rows(src, th, tw, y0, F, cb->prep.rows_w1[d], NULL, NULL, 0, c->hidden[0], cb->pre[d], T);
        else
            s = conv_fast(conv_input(cb, src, np * F, T), th, tw, y0, F, c->feat_unfold ? 3 : 1, w1_weight(cb, d),
                          c->in_dim, NULL, NULL, 0, c->hidden[0], cb->pre[d], T);
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

/* Unit k of layer 1 with 4 extra inputs v: relu(p + bias + v . W_coord), added in the order of the general loops
 * of layer1_finish. */
INLINE float layer1_unit(const float *p, const float *bias, const float *wc, int out, const float v[4], int k)
{
    float t = p[k] + bias[k];
    t += v[0] * wc[k];
    t += v[1] * wc[(size_t)out + k];
    t += v[2] * wc[2 * (size_t)out + k];
    t += v[3] * wc[3 * (size_t)out + k];
    return t < 0.0f ? 0.0f : t;
}

/* Layer 1 from its feature term: h = relu(P + b + W_coord . extra), where P is the precomputed row
 * of the query's latent (by_lat) or row r of pre (pre may be h). With h16, also h's bf16 copy. */
INLINE void layer1_finish(const float *pre, int by_lat, const float *bias, const float *wc, int out, int n_extra,
                          const query_geom *g, int rows, float *h, uint16_t *h16)
{
    for (int r = 0; r < rows; r++) {
        const float *p = pre + (by_lat ? g[r].lat : (size_t)r) * out;
        float *o = h + (size_t)r * out;
        if (n_extra == 4) {
            /* One pass (with h16, the bf16 result only: all the next product reads): the same additions
             * in the same order as the general loops below, so the same bits. */
            float v[4] = {g[r].extra[0], g[r].extra[1], g[r].extra[2], g[r].extra[3]};
            if (h16)
                for (int k = 0; k < out; k++) h16[(size_t)r * out + k] = bf16_round(layer1_unit(p, bias, wc, out, v, k));
            else
                for (int k = 0; k < out; k++) o[k] = layer1_unit(p, bias, wc, out, v, k);
            continue;
        }
        for (int k = 0; k < out; k++) o[k] = p[k] + bias[k];
        for (int e = 0; e < n_extra; e++) {
            float v = g[r].extra[e];
            const float *w = wc + (size_t)e * out;
            for (int k = 0; k < out; k++) o[k] += v * w[k];
        }
        for (int k = 0; k < out; k++) o[k] = o[k] < 0.0f ? 0.0f : o[k];
        if (h16) to_bf16(o, out, h16 + (size_t)r * out);
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

/* act(x + b) on rows of n, into x, or (x16 given: the next product's bf16 operand, all it needs) into
 * x16 alone. */
INLINE void bias_relu(float *x, int rows, int n, const float *b, int relu, uint16_t *x16)
{
    /* Separate loops per case: a test inside the element loop keeps it from vectorising, and this
     * is half of the fp32 decoder's non-GEMM time when it does not. */
    for (int r = 0; r < rows; r++) {
        float *o = x + (size_t)r * n;
        if (x16) {
            uint16_t *o16 = x16 + (size_t)r * n;
            if (relu)
                for (int k = 0; k < n; k++) {
                    float v = o[k] + b[k];
                    o16[k] = bf16_round(v < 0.0f ? 0.0f : v);
                }
            else
                for (int k = 0; k < n; k++) o16[k] = bf16_round(o[k] + b[k]);
        } else if (relu) {
            for (int k = 0; k < n; k++) {
                float v = o[k] + b[k];
                o[k] = v < 0.0f ? 0.0f : v;
            }
        } else {
            for (int k = 0; k < n; k++) o[k] += b[k];
        }
    }
}

/* Dot product with 8 independent partial sums, so the compiler can keep them in one vector register. */
INLINE float dot(const float *a, const float *b, int n)
{
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += a[i + j] * b[i + j];
    float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

/* Sum of 16 lanes, pairwise (vectorises to a few extract-and-add steps). */
INLINE float hsum16(float *a)
{
    for (int s = 8; s >= 1; s /= 2)
        for (int j = 0; j < s; j++) a[j] += a[j + s];
    return a[0];
}

/* The narrow last layer (n outputs, 3 for RGB): pred[r] = W . relu(y[r] + bh) + b, applying the last
 * hidden layer's bias and ReLU on the fly (bh NULL: y is final already; y may be overwritten). For
 * n = 3, all three outputs in one pass over y with 16-lane partial sums: a dot product per output with
 * an 8-lane sum spent as much time reducing its lanes as multiplying (perf), and the separate
 * bias+ReLU pass is gone. */
INLINE void last_layer(float *y, const float *bh, int rows, int k, const float *w, const float *b, int n,
                       float *pred)
{
    if (n == 3 && bh && k % 16 == 0) {
        const float *w0 = w, *w1 = w + k, *w2 = w + 2 * (size_t)k;
        for (int r = 0; r < rows; r++) {
            const float *x = y + (size_t)r * k;
            float a0[16] = {0}, a1[16] = {0}, a2[16] = {0};
            for (int i = 0; i < k; i += 16)
                for (int j = 0; j < 16; j++) {
                    float v = x[i + j] + bh[i + j];
                    v = v < 0.0f ? 0.0f : v;
                    a0[j] += w0[i + j] * v;
                    a1[j] += w1[i + j] * v;
                    a2[j] += w2[i + j] * v;
                }
            pred[(size_t)r * 3] = hsum16(a0) + b[0];
            pred[(size_t)r * 3 + 1] = hsum16(a1) + b[1];
            pred[(size_t)r * 3 + 2] = hsum16(a2) + b[2];
        }
        return;
    }
    for (int r = 0; r < rows; r++) {
        float *x = y + (size_t)r * k;
        if (bh) bias_relu(x, 1, k, bh, 1, NULL);
        for (int o = 0; o < n; o++) pred[(size_t)r * n + o] = dot(w + (size_t)o * k, x, k) + b[o];
    }
}

/* Decoder d on `rows` (query, shift) rows; the prediction of row r goes to pred[r*out_dim]. In bf16
 * mode, x16 holds the bf16 copy of each hidden product's input (layer 1's extra inputs and the last
 * layer stay float32); in int8 mode, x8 and s8 the integers and row scales of each hidden product's
 * input (layer 1 and the last layer stay float32). */
INLINE void mlp_block_impl(const cpu_backend *cb, const liif_model *m, int d, const liif_decode_job *job,
                           const query_geom *g, int rows, float *bufa, float *bufb, uint16_t *x16, uint8_t *x8,
                           float *s8, float *pred)
{
    const liif_config *c = &m->cfg;
    const liif_mlp *mlp = &m->dec[d];
    int h1 = mlp->dims[1], base = c->n_feats * (c->feat_unfold ? 9 : 1), in = c->in_dim;
    uint16_t *h16 = cb->bf16 && mlp->n_layers > 2 ? x16 : NULL; /* layer 1 feeds a bf16 product */
    const float *wc = cb->prep.w1_coord[d];
    if (cb->have_pre) {
        layer1_finish(cb->pre[d], 1, mlp->b[0], wc, h1, in - base, g, rows, bufa, h16);
    } else {
        const float *feat = c->dec_source[d] == LIIF_FEAT_MID ? cb->feat_mid : cb->feat_last;
        gather_plain(cb, feat, c, job, g, rows, bufb);
        if (cb->bf16) { /* the feature part in bf16, as the precompute would */
            for (int r = 0; r < rows; r++) to_bf16(bufb + (size_t)r * in, base, x16 + (size_t)r * base);
            gemm_nt(rows, h1, base, (operand){NULL, x16}, base, w1_weight(cb, d), in, bufa, h1);
            layer1_finish(bufa, 0, mlp->b[0], wc, h1, in - base, g, rows, bufa, h16);
        } else {
            dnnl_sgemm('N', 'T', rows, h1, in, 1.0f, bufb, in, cb->prep.w1[d], in, 0.0f, bufa, h1);
            bias_relu(bufa, rows, h1, mlp->b[0], 1, NULL);
        }
    }
    float *x = bufa, *y = bufb;
    const float *bh = NULL; /* the last hidden layer's bias, left for last_layer */
    int q8 = cb->int8 && mlp->n_layers > 2;
    if (q8) quantize_rows(bufa, rows, h1, x8, s8);
    for (int l = 1; l < mlp->n_layers - 1; l++) {
        int k = mlp->dims[l], n = mlp->dims[l + 1];
        const uint16_t *w16 = cb->bf16 ? cb->prep.hid16[d][l] : NULL;
        int more = l + 1 < mlp->n_layers - 1; /* another hidden layer follows */
        if (q8) gemm_int8(rows, n, k, x8, s8, cb->prep.hid8[d][l], cb->prep.hid8_scale[d][l], mlp->b[l], y,
                          more ? x8 : NULL, s8);
        else gemm_nt(rows, n, k, (operand){x, w16 ? x16 : NULL}, k, (operand){mlp->w[l], w16}, k, y, n);
        if (!more) bh = mlp->b[l];
        else if (!q8) bias_relu(y, rows, n, mlp->b[l], 1, w16 ? x16 : NULL);
        float *t = x; x = y; y = t;
    }
    int l = mlp->n_layers - 1;
    last_layer(x, bh, rows, mlp->dims[l], mlp->w[l], mlp->b[l], mlp->dims[l + 1], pred);
}

#if defined(__GNUC__) && defined(__x86_64__)
__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16"))) static void
mlp_block_avx512(const cpu_backend *cb, const liif_model *m, int d, const liif_decode_job *job, const query_geom *g,
                 int rows, float *bufa, float *bufb, uint16_t *x16, float *pred)
{
    mlp_block_impl(cb, m, d, job, g, rows, bufa, bufb, x16, NULL, NULL, pred);
}

/* The same for fp32 and int8 where the processor has AVX2: twice the lanes for the element-wise work. */
__attribute__((target("avx2"))) static void
mlp_block_avx2(const cpu_backend *cb, const liif_model *m, int d, const liif_decode_job *job, const query_geom *g,
               int rows, float *bufa, float *bufb, uint8_t *x8, float *s8, float *pred)
{
    mlp_block_impl(cb, m, d, job, g, rows, bufa, bufb, NULL, x8, s8, pred);
}
#endif

static void mlp_block(const cpu_backend *cb, const liif_model *m, int d, const liif_decode_job *job,
                      const query_geom *g, int rows, float *bufa, float *bufb, uint16_t *x16, uint8_t *x8, float *s8,
                      float *pred)
{
#if defined(__GNUC__) && defined(__x86_64__)
    /* bf16 mode runs only where the processor has AVX512-BF16, so there its element-wise work (layer 1's
     * extras, bias, ReLU, conversions, the last layer) may use AVX-512 too: same operations in the same
     * order (no contraction, no reassociation), so the same bits as the generic build. */
    if (cb->bf16) {
        mlp_block_avx512(cb, m, d, job, g, rows, bufa, bufb, x16, pred);
        return;
    }
    if (cb->avx2) {
        mlp_block_avx2(cb, m, d, job, g, rows, bufa, bufb, x8, s8, pred);
        return;
    }
#endif
    mlp_block_impl(cb, m, d, job, g, rows, bufa, bufb, x16, x8, s8, pred);
}

static liif_status cpu_decode(liif_backend *be, const liif_model *m, const liif_decode_job *job, float *out,
                              size_t out_stride, liif_error *err)
{
    cpu_backend *cb = (cpu_backend *)be;
    const liif_config *c = &m->cfg;
    int ns = c->local_ensemble ? 4 : 1, maxw = c->in_dim;
    for (int l = 0; l < c->n_hidden; l++) maxw = c->hidden[l] > maxw ? c->hidden[l] : maxw;
    /* blocks aligned to the output image (see CONV_BLOCK): the job's queries are [first, first + nq) of its columns' */
    long nq = (long)job->rows * job->cols, first = (long)job->y0 * job->cols, b0 = first / QUERY_BLOCK;
    long nblocks = (first + nq + QUERY_BLOCK - 1) / QUERY_BLOCK - b0;
    size_t rows_max = (size_t)QUERY_BLOCK * ns;
    int failed = 0, threads = liif_omp_threads(be->threads);
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        query_geom *g = malloc(rows_max * sizeof *g);
        float *bufa = malloc(rows_max * maxw * sizeof(float)), *bufb = malloc(rows_max * maxw * sizeof(float));
        float *pred = malloc(rows_max * 3 * sizeof(float));
        uint16_t *x16 = cb->bf16 ? malloc(rows_max * maxw * sizeof *x16) : NULL;
        uint8_t *x8 = cb->int8 ? malloc(rows_max * maxw) : NULL;
        float *s8 = cb->int8 ? malloc(rows_max * sizeof *s8) : NULL;
        if (!g || !bufa || !bufb || !pred || (cb->bf16 && !x16) || (cb->int8 && (!x8 || !s8))) failed = 1;
#pragma omp for schedule(dynamic)
        for (long blk = 0; blk < nblocks; blk++) {
            if (failed) continue;
            long lo = (b0 + blk) * QUERY_BLOCK, hi = lo + QUERY_BLOCK;
            int skip = (int)(lo < first ? first - lo : 0); /* the block's places before the job's first query */
            lo = lo < first ? first : lo;
            hi = hi > first + nq ? first + nq : hi;
            long q0 = lo - first;
            int n = (int)(hi - lo);
            query_geom *gq = g + (size_t)skip * ns; /* the block's queries; the other places copy the first */
            int rows = geometry(c, job, q0, n, gq);
            for (int r = 0; r < (int)rows_max; r++)
                if (r < skip * ns || r >= skip * ns + rows) g[r] = gq[0];
            const float *pq = pred + (size_t)skip * ns * 3;
            float total[QUERY_BLOCK][3];
            memset(total, 0, sizeof total);
            for (int d = 0; d < liif_decoders_for(c, job->alpha); d++) {
                mlp_block(cb, m, d, job, g, (int)rows_max, bufa, bufb, x16, x8, s8, pred);
                for (int q = 0; q < n; q++) {
                    float dq[3] = {0, 0, 0};
                    for (int k = 0; k < ns; k++)
                        for (int ch = 0; ch < 3; ch++)
                            dq[ch] = dq[ch] + pq[((size_t)q * ns + k) * 3 + ch] * gq[q * ns + k].weight;
                    for (int ch = 0; ch < 3; ch++) total[q][ch] += d == 0 ? dq[ch] : job->alpha * dq[ch];
                }
            }
            for (int q = 0; q < n; q++) {
                long gq = q0 + q;
                float *o = out + (size_t)(gq / job->cols) * out_stride + (size_t)(gq % job->cols) * 3;
                for (int ch = 0; ch < 3; ch++) o[ch] = liif_output_value(job, total[q][ch]);
            }
        }
        free(g); free(bufa); free(bufb); free(pred); free(x16); free(x8); free(s8);
    }
    if (failed) return liif_error_set(err, LIIF_ERR_NOMEM, "fast CPU decoder: out of memory");
    return LIIF_OK;
}

static size_t cpu_bytes_per_tile_px(const liif_backend *be, const liif_model *m)
{
    (void)be;
    const liif_config *c = &m->cfg;
    return ((size_t)c->n_feats * 6 + (size_t)c->hidden[0] * c->n_decoders + c->in_ch) * sizeof(float) +
           (size_t)c->n_feats * sizeof(uint16_t);
}

static const float *cpu_features(liif_backend *be, int mid)
{
    const cpu_backend *cb = (const cpu_backend *)be;
    return mid ? cb->feat_mid : cb->feat_last;
}

static void cpu_destroy(liif_backend *be)
{
    cpu_backend *cb = (cpu_backend *)be;
    if (cb->prep.m) prepared_free(&cb->prep, cb->prep.n_convs);
    free(cb->x); free(cb->head); free(cb->t); free(cb->u); free(cb->a);
    free(cb->feat_last); free(cb->feat_mid); free(cb->pre[0]); free(cb->pre[1]); free(cb->x16);
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
    /* FAST: bf16 where the processor has it (twice fp32's speed, within a level of it), else int8 (1.3-1.6x on
     * AVX2, 99.95% of samples within a level); fast_note keeps why bf16 is missing for --precision bf16. */
    cb->base.maths = 1u << LIIF_MATH_INT8;
    if (bf16_supported(cb->base.fast_note, sizeof cb->base.fast_note)) {
        cb->base.fast_name = "bf16";
        cb->base.maths |= 1u << LIIF_MATH_BF16;
    } else {
        cb->base.fast_name = "int8";
    }
#if defined(__GNUC__) && defined(__x86_64__)
    cb->avx2 = __builtin_cpu_supports("avx2");
#endif
    const char *wino = getenv("LIIF_WINOGRAD");
    cb->wino = !(wino && strcmp(wino, "0") == 0);
    return &cb->base;
}
