/* backend_cuda.cu: the CUDA backend (module liif-cuda.so): cuBLAS sgemm convs and MLP layers with fused
 * epilogues, layer-1 precompute, features kept on the device between encode and decode. */
#include <dlfcn.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.cuh"
#include "conv.cuh"
#include "cuda_module.h"
#include "decoder.cuh"
#include "query.cuh"

/* Pixels of im2col at a time (at most 9 * 64 * 4 B each: 288 MiB) and the bounds on queries per
 * decode call (each needs up to ~32 KiB of decoder buffers with the plain path). */
static const size_t COL_PX_MAX = 1 << 17, QUERIES_MIN = 16384, QUERIES_MAX = 131072, BYTES_PER_QUERY_MAX = 32768;

typedef struct {
    const float *w, *b;
} dlayer;

typedef struct {
    liif_backend base;
    int dev;
    cudaStream_t st;
    cublasHandle_t blas;
    /* Weights of model m on the device (one allocation), in the CPU backend's layouts: convs
     * [cout, 9, cin]; decoder layer 0 [out, in_dim] with its feature part as [9, F]; its extra
     * columns also as w1_coord [n_extra, out]; other layers as in PyTorch. */
    const liif_model *m;
    uint64_t m_serial;     /* m's serial: a freed model's address can come back for another */
    dbuf wts;
    dlayer *conv;
    int n_convs;
    dlayer dec[2][LIIF_MAX_HIDDEN + 1];
    const float *w1_coord[2];
    /* Encoder buffers (cap_px pixels each; F floats per pixel unless noted). */
    size_t cap_px, col_px;
    dbuf x, head, t, u, a, feat_last, feat_mid, pre[2], col;
    int th, tw, have_pre, have_mid;
    /* Decoder buffers, per call. */
    dbuf lat, ij, extra, weight, hid_a, hid_b, total, rgb;
    /* bf16 GEMM operands (LIIF_MATH_BF16 runs: bf16 set by begin); igemm: the LIIF_MATH_* kind of the
     * implicit-GEMM convolutions this run (0: im2col + GEMM), set by begin; sm: the device's compute capability. */
    int bf16, igemm, sm;
    dbuf h16;
    /* The fused decoder (decoder.cuh) for bf16 and TF32 runs: fd_ok has a bit (1 << LIIF_MATH_*) per kind whose shared
     * memory was granted at creation; math is this run's LIIF_MATH_* kind; w16: the hidden layers' weights in the
     * operand type for a call. */
    int fd_ok, math;
    dbuf w16;
    /* Host copies for the features() test hook. */
    float *host_feat;
    size_t host_feat_cap;
    /* Outputs in flight (liif_backend.deferred): a decode queues its copy into pinned[k] and returns at once, so the
     * host prepares and launches the next call while the GPU computes; slot k's rows land in their place (pend[k])
     * when k comes round again or at flush. */
    float *pinned[2];
    size_t pinned_floats[2];
    cudaEvent_t done[2];
    struct {
        float *dst;
        size_t stride;
        int rows, cols;
    } pend[2];
    int turn;
} cuda_backend;

/* ------------------------------------------------------------ weights */

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

static const liif_conv *conv_at(const liif_model *m, int i)
{
    int n = liif_model_n_convs(&m->cfg);
    return i == 0 ? &m->head : (i == n - 1 ? &m->tail : &m->body[i - 1]);
}

/* dst[o, k, i] = w[o, i, k]: OIHW (rows ldw apart) to [cout, 9, cin] (rows ldd apart). */
static void permute_conv(const float *w, int cout, int cin, int ldw, float *dst, int ldd)
{
    for (int o = 0; o < cout; o++)
        for (int i = 0; i < cin; i++)
            for (int k = 0; k < 9; k++) dst[(size_t)o * ldd + k * cin + i] = w[(size_t)o * ldw + i * 9 + k];
}

/* Lays out every prepared tensor of m in host (NULL: only counts) at offsets off[]; returns floats. */
static size_t pack_weights(const liif_model *m, float *host, size_t *off)
{
    const liif_config *c = &m->cfg;
    int F = c->n_feats, base = F * (c->feat_unfold ? 9 : 1), n_extra = c->in_dim - base, k = 0;
    size_t pos = 0;
#define PLACE(n) (off[k++] = pos, pos += align64(n), host ? host + off[k - 1] : NULL)
    for (int i = 0; i < liif_model_n_convs(c); i++) {
        const liif_conv *cv = conv_at(m, i);
        float *w = PLACE((size_t)cv->cout * 9 * cv->cin), *b = PLACE((size_t)cv->cout);
        if (host) {
            permute_conv(cv->w, cv->cout, cv->cin, cv->cin * 9, w, cv->cin * 9);
            memcpy(b, cv->b, cv->cout * sizeof(float));
        }
    }
    for (int d = 0; d < c->n_decoders; d++) {
        const liif_mlp *mlp = &m->dec[d];
        int out = mlp->dims[1], in = mlp->dims[0];
        float *w1 = PLACE((size_t)out * in), *wc = PLACE((size_t)4 * out);
        if (host) {
            if (c->feat_unfold) permute_conv(mlp->w[0], out, F, in, w1, in);
            for (int o = 0; o < out; o++) {
                if (!c->feat_unfold) memcpy(w1 + (size_t)o * in, mlp->w[0] + (size_t)o * in, F * sizeof(float));
                for (int e = 0; e < n_extra; e++) {
                    w1[(size_t)o * in + base + e] = mlp->w[0][(size_t)o * in + base + e];
                    wc[(size_t)e * out + o] = mlp->w[0][(size_t)o * in + base + e];
                }
            }
        }
        for (int l = 0; l < mlp->n_layers; l++) {
            float *w = l ? PLACE((size_t)mlp->dims[l + 1] * mlp->dims[l]) : NULL, *b = PLACE((size_t)mlp->dims[l + 1]);
            if (host && w) memcpy(w, mlp->w[l], (size_t)mlp->dims[l + 1] * mlp->dims[l] * sizeof(float));
            if (host) memcpy(b, mlp->b[l], mlp->dims[l + 1] * sizeof(float));
        }
    }
#undef PLACE
    return pos;
}

static liif_status prepare(cuda_backend *cb, const liif_model *m, liif_error *err)
{
    if (cb->m == m && cb->m_serial == m->serial) return LIIF_OK;
    cb->m = NULL; /* nothing prepared until the upload below succeeds */
    const liif_config *c = &m->cfg;
    if (c->out_dim != 3)
        return cu_error(err, LIIF_ERR_UNSUPPORTED, "CUDA backend: models with %d outputs are not supported", c->out_dim);
    int n = liif_model_n_convs(c);
    size_t n_off = 2 * (size_t)n + 2 * (2 + 2 * (LIIF_MAX_HIDDEN + 1));
    size_t *off = (size_t *)calloc(n_off, sizeof *off);
    dlayer *conv = (dlayer *)calloc(n, sizeof *conv);
    size_t total = off ? pack_weights(m, NULL, off) : 0;
    float *host = off ? (float *)calloc(total, sizeof(float)) : NULL;
    if (!off || !conv || !host) {
        free(off); free(conv); free(host);
        return cu_error(err, LIIF_ERR_NOMEM, "CUDA backend: out of host memory preparing weights");
    }
    pack_weights(m, host, off);
    cudaError_t e = dbuf_reserve(&cb->wts, total * sizeof(float));
    if (e == cudaSuccess) e = cudaMemcpy(cb->wts.p, host, total * sizeof(float), cudaMemcpyHostToDevice);
    free(host);
    if (e != cudaSuccess) {
        free(off); free(conv);
        return cu_error(err, e == cudaErrorMemoryAllocation ? LIIF_ERR_NOMEM : LIIF_ERR_UNSUPPORTED,
                        "CUDA: uploading the weights: %s", cudaGetErrorString(e));
    }
    const float *dw = DF(cb->wts);
    int k = 0;
    for (int i = 0; i < n; i++) {
        conv[i].w = dw + off[k++];
        conv[i].b = dw + off[k++];
    }
    for (int d = 0; d < c->n_decoders; d++) {
        cb->dec[d][0].w = dw + off[k++];
        cb->w1_coord[d] = dw + off[k++];
        for (int l = 0; l < m->dec[d].n_layers; l++) {
            if (l) cb->dec[d][l].w = dw + off[k++];
            cb->dec[d][l].b = dw + off[k++];
        }
    }
    free(off);
    free(cb->conv);
    cb->conv = conv;
    cb->n_convs = n;
    cb->m = m;
    cb->m_serial = m->serial;
    cb->cap_px = 0; /* another model may need other buffer sizes */
    cb->have_pre = cb->have_mid = 0;
    return LIIF_OK;
}

/* The GEMMs' arithmetic for a run: math is a LIIF_MATH_* kind (TF32 tensor cores; bf16 operands through
 * gemm_rows_run; else true fp32). The 3x3 convolutions of the TF32 and bf16 kinds run as implicit GEMMs on sm_80 and
 * later, unless the environment has LIIF_CUDA_CONV=im2col (for benchmarks: the im2col path is the reference). Each
 * call also re-selects the device: the engine may run a backend from another host thread than the one that created
 * it. */
static liif_status begin(cuda_backend *cb, int math, liif_error *err)
{
    cb->igemm = conv_igemm_kind(math, cb->sm);
    CU_TRY(cudaSetDevice(cb->dev), "selecting the device");
    BLAS_TRY(cublasSetMathMode(cb->blas, math == LIIF_MATH_TF32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH),
             "math mode");
    cb->bf16 = math == LIIF_MATH_BF16;
    cb->math = math;
    return LIIF_OK;
}

static dbuf *bf16_scratch(cuda_backend *cb) { return cb->bf16 ? &cb->h16 : NULL; }

static liif_status finish(cuda_backend *cb, const char *what, liif_error *err)
{
    CU_TRY(cudaStreamSynchronize(cb->st), what);
    return LIIF_OK;
}

/* ------------------------------------------------------------ encoder */

static size_t encoder_floats_per_px(const liif_config *c)
{
    return (size_t)c->in_ch + 6 * (size_t)c->n_feats + (size_t)c->hidden[0] * c->n_decoders;
}

static liif_status reserve_encoder(cuda_backend *cb, const liif_config *c, size_t np, liif_error *err)
{
    size_t F = c->n_feats, col_px = np < COL_PX_MAX ? np : COL_PX_MAX;
    /* im2col: the head's (its 3 input channels never suit the implicit-GEMM kernel), and the wide convolutions' where
     * that kernel does not take them (float32, before sm_80, odd widths): 288 MiB less on a GPU that runs TF32/bf16 */
    int wide_igemm = conv_igemm_takes(cb->igemm, c->n_feats, c->n_feats) &&
                     (!c->feat_unfold || conv_igemm_takes(cb->igemm, c->n_feats, c->hidden[0]));
    size_t kk = 9 * (size_t)(wide_igemm || c->n_feats < c->in_ch ? c->in_ch : c->n_feats);
    CU_TRY(dbuf_reserve(&cb->col, col_px * kk * sizeof(float)), "allocating the im2col buffer");
    cb->col_px = cb->col.bytes / (kk * sizeof(float));
    if (np <= cb->cap_px) return LIIF_OK;
    dbuf *feat[] = {&cb->head, &cb->t, &cb->u, &cb->a, &cb->feat_last, &cb->feat_mid};
    CU_TRY(dbuf_reserve(&cb->x, np * c->in_ch * sizeof(float)), "allocating encoder buffers");
    for (size_t i = 0; i < sizeof feat / sizeof feat[0]; i++)
        CU_TRY(dbuf_reserve(feat[i], np * F * sizeof(float)), "allocating encoder buffers");
    for (int d = 0; d < c->n_decoders; d++)
        CU_TRY(dbuf_reserve(&cb->pre[d], np * c->hidden[0] * sizeof(float)), "allocating precompute buffers");
    cb->cap_px = np;
    return LIIF_OK;
}

static liif_status cuda_encode(liif_backend *be, const liif_model *m, const float *rgb, size_t stride, int th,
                               int tw, int y0, int precompute, liif_error *err)
{
    (void)y0;
    cuda_backend *cb = (cuda_backend *)be;
    const liif_config *c = &m->cfg;
    size_t np = (size_t)th * tw;
    int F = c->n_feats, need_mid = c->n_decoders == 2 && c->dec_source[0] == LIIF_FEAT_MID;
    liif_status s = begin(cb, be->fast_math, err);
    if (!s) s = prepare(cb, m, err);
    if (!s) s = reserve_encoder(cb, c, np, err);
    if (s) return s;
    cb->have_pre = cb->have_mid = 0;
    cb->th = th;
    cb->tw = tw;
    cudaStream_t st = cb->st;
    float *col = DF(cb->col), *x = DF(cb->x), *head = DF(cb->head);
    size_t cp = cb->col_px;
    dbuf *h16 = bf16_scratch(cb);
    CU_TRY(cudaMemcpy2DAsync(x, (size_t)tw * c->in_ch * sizeof(float), rgb, stride * sizeof(float),
                             (size_t)tw * c->in_ch * sizeof(float), th, cudaMemcpyHostToDevice, st),
           "uploading the tile");
    normalise_kernel<<<cu_blocks(np * c->in_ch), CU_THREADS, 0, st>>>(x, np * c->in_ch);
    LAUNCH_TRY("normalise");
    s = conv_run(st, cb->blas, h16, cb->igemm, x, th, tw, c->in_ch, 3, cb->conv[0].w, 9 * c->in_ch, cb->conv[0].b,
                 NULL, 0, F, head, col, cp, err);
    const float *t = head;
    for (int b = 0; !s && b < c->n_resblocks; b++) { /* t = t + conv(relu(conv(t))) */
        float *next = t == DF(cb->t) ? DF(cb->u) : DF(cb->t);
        const dlayer *c1 = &cb->conv[1 + 2 * b], *c2 = &cb->conv[2 + 2 * b];
        s = conv_run(st, cb->blas, h16, cb->igemm, t, th, tw, F, 3, c1->w, 9 * F, c1->b, NULL, 1, F, DF(cb->a), col,
                     cp, err);
        if (!s)
            s = conv_run(st, cb->blas, h16, cb->igemm, DF(cb->a), th, tw, F, 3, c2->w, 9 * F, c2->b, t, 0, F, next, col,
                         cp, err);
        t = next;
        if (!s && need_mid && b == c->mid_block)
            CU_TRY(cudaMemcpyAsync(DF(cb->feat_mid), t, np * F * sizeof(float), cudaMemcpyDeviceToDevice, st),
                   "copying the mid-layer features");
    }
    const dlayer *tail = &cb->conv[cb->n_convs - 1];
    if (!s)
        s = conv_run(st, cb->blas, h16, cb->igemm, t, th, tw, F, 3, tail->w, 9 * F, tail->b, head, 0, F,
                     DF(cb->feat_last), col, cp, err);
    for (int d = 0; !s && precompute && d < c->n_decoders; d++) { /* layer 1's feature part, once per latent */
        const float *src = c->dec_source[d] == LIIF_FEAT_MID ? DF(cb->feat_mid) : DF(cb->feat_last);
        s = conv_run(st, cb->blas, h16, cb->igemm, src, th, tw, F, c->feat_unfold ? 3 : 1, cb->dec[d][0].w, c->in_dim,
                     NULL, NULL, 0, c->hidden[0], DF(cb->pre[d]), col, cp, err);
    }
    if (!s) s = finish(cb, "running the encoder", err);
    if (s) return s;
    cb->have_pre = precompute;
    cb->have_mid = need_mid;
    return LIIF_OK;
}

/* ------------------------------------------------------------ decoder */

static int widest(const liif_config *c, int with_input)
{
    int w = with_input ? c->in_dim : 0;
    for (int l = 0; l < c->n_hidden; l++) w = c->hidden[l] > w ? c->hidden[l] : w;
    return w;
}

static geom_args geometry_args(const liif_config *c, const liif_decode_job *job)
{
    geom_args g;
    g.H = job->H; g.W = job->W; g.h = job->h; g.w = job->w;
    g.ty = job->ty; g.tx = job->tx; g.tw = job->tw;
    g.y0 = job->y0; g.x0 = job->x0; g.cols = job->cols;
    g.ensemble = c->local_ensemble;
    g.ns = c->local_ensemble ? 4 : 1;
    g.cell_r = (float)(2.0 / job->H) * (float)job->h; /* as the reference: f32(2/H) * h */
    g.cell_c = (float)(2.0 / job->W) * (float)job->w;
    return g;
}

static liif_status run_geometry(cuda_backend *cb, const liif_config *c, const liif_decode_job *job, liif_error *err)
{
    long nq = (long)job->rows * job->cols, R = nq * (c->local_ensemble ? 4 : 1);
    CU_TRY(dbuf_reserve(&cb->lat, R * sizeof(int)), "allocating decoder buffers");
    CU_TRY(dbuf_reserve(&cb->ij, 2 * R * sizeof(int)), "allocating decoder buffers");
    CU_TRY(dbuf_reserve(&cb->extra, 4 * R * sizeof(float)), "allocating decoder buffers");
    CU_TRY(dbuf_reserve(&cb->weight, R * sizeof(float)), "allocating decoder buffers");
    geometry_kernel<<<cu_blocks(nq), CU_THREADS, 0, cb->st>>>(geometry_args(c, job), nq, (int *)cb->lat.p,
                                                               (int *)cb->ij.p, DF(cb->extra), DF(cb->weight));
    LAUNCH_TRY("geometry");
    return LIIF_OK;
}

/* y (R, n) = act(x (R, k) @ w^T + b). With bf16 GEMMs, x16 (when not NULL) is x already in bf16, and y16 (when not
 * NULL, another buffer) receives the result in bf16 instead of y, which is then only the GEMM's float32 output. */
static liif_status linear_run(cuda_backend *cb, long R, int k, const float *x, const __nv_bfloat16 *x16,
                              const dlayer *ly, int n, int relu, float *y, __nv_bfloat16 *y16, liif_error *err)
{
    liif_status s = gemm_rows_run(cb->st, cb->blas, bf16_scratch(cb), (int)R, n, k, x, k, x16, ly->w, k, y, "MLP GEMM",
                                  err);
    if (s) return s;
    bias_act_kernel<<<cu_blocks((size_t)R * n), CU_THREADS, 0, cb->st>>>(y, (size_t)R, n, ly->b, relu, y16);
    LAUNCH_TRY("bias/ReLU");
    return LIIF_OK;
}

/* A hidden layer of the decoder on the activations in *cur, *other the free buffer: float32 / TF32 alternate
 * between the two; with bf16 GEMMs the activations come in bf16, the GEMM writes float32 into *other, and its
 * bias/ReLU writes bf16 back into *cur for the next GEMM (no rounding pass), or float32 in place in *other when
 * this is the last hidden layer (the last layer reads float32, as on the CPU). Afterwards *cur holds the output. */
static liif_status hidden_layer(cuda_backend *cb, long R, int k, float **cur, float **other, const dlayer *ly, int n,
                                int last_hidden, liif_error *err)
{
    int to16 = cb->bf16 && !last_hidden;
    liif_status s = linear_run(cb, R, k, *cur, cb->bf16 ? (const __nv_bfloat16 *)*cur : NULL, ly, n, 1, *other,
                               to16 ? (__nv_bfloat16 *)*cur : NULL, err);
    if (!s && !to16) {
        float *t = *cur;
        *cur = *other;
        *other = t;
    }
    return s;
}

/* Whether decoder mlp runs fused (decoder.cuh) this call: bf16 GEMMs, the precompute, an sm_80+ device that granted
 * the kernel's shared memory, a shape it takes; LIIF_CUDA_DECODER=layers in the environment keeps the per-layer path
 * (for benchmarks: the per-layer path is the reference). */
static int fused_decoder(const cuda_backend *cb, const liif_mlp *mlp)
{
    const char *env = getenv("LIIF_CUDA_DECODER");
    return (cb->fd_ok >> cb->math & 1) && cb->have_pre && fd_shape_ok(mlp) && !(env && strcmp(env, "layers") == 0);
}

/* Decoders d0 .. d0 + n - 1 in one launch of the fused decoder of this run's kind, bf16 or TF32 (LIIF-GAN's two in one
 * pass). */
static liif_status decoder_fused(cuda_backend *cb, const liif_model *m, int d0, int n, const liif_decode_job *job,
                                 liif_error *err)
{
    const liif_config *c = &m->cfg;
    fd_args a;
    memset(&a, 0, sizeof a);
    size_t nw = 0, esz = cb->bf16 ? sizeof(__nv_bfloat16) : sizeof(float);
    for (int d = d0; d < d0 + n; d++)
        for (int l = 1; l < m->dec[d].n_layers - 1; l++) nw += (size_t)m->dec[d].dims[l] * m->dec[d].dims[l + 1];
    CU_TRY(dbuf_reserve(&cb->w16, nw * esz), "allocating the decoder's rounded weights");
    char *wq = (char *)cb->w16.p;
    for (int i = 0; i < n; i++) {
        int d = d0 + i;
        const liif_mlp *mlp = &m->dec[d];
        int last = mlp->n_layers - 1;
        fd_dec *fd = &a.dec[i];
        for (int l = 1; l < last; l++) {
            int g = l - 1, k = mlp->dims[l], nn = mlp->dims[l + 1];
            if (cb->bf16)
                to_bf16_kernel<<<cu_blocks((size_t)nn * k), CU_THREADS, 0, cb->st>>>(cb->dec[d][l].w, (size_t)nn, k,
                                                                                     (size_t)k, (__nv_bfloat16 *)wq);
            else
                to_tf32_kernel<<<cu_blocks((size_t)nn * k), CU_THREADS, 0, cb->st>>>(cb->dec[d][l].w, (size_t)nn * k,
                                                                                     (float *)wq);
            LAUNCH_TRY("rounded decoder weights");
            fd->k[g] = k;
            fd->n[g] = nn;
            fd->w[g] = wq;
            fd->b[g] = cb->dec[d][l].b;
            wq += (size_t)nn * k * esz;
        }
        fd->n_gemm = last - 1;
        fd->pre = DF(cb->pre[d]);
        fd->b1 = cb->dec[d][0].b;
        fd->wc = cb->w1_coord[d];
        fd->h1 = mlp->dims[1];
        fd->wl = cb->dec[d][last].w;
        fd->bl = cb->dec[d][last].b;
    }
    int ns = c->local_ensemble ? 4 : 1;
    a.n_dec = n;
    a.n_extra = c->in_dim - c->n_feats * (c->feat_unfold ? 9 : 1);
    a.lat = (const int *)cb->lat.p;
    a.extra = DF(cb->extra);
    a.weight = DF(cb->weight);
    a.R = (long)job->rows * job->cols * ns;
    a.ns = ns;
    a.first = d0 == 0;
    a.alpha = job->alpha;
    a.total = DF(cb->total);
    CU_TRY(fd_launch(cb->bf16, a, cb->st), "fused decoder");
    return LIIF_OK;
}

/* Decoder d on all (query, shift) rows of the job; its blended prediction goes into total. Fused where it applies;
 * else layer 1 comes from the precompute or from the gathered input (written in bf16 when the GEMMs take bf16), then
 * hidden_layer. */
static liif_status decoder_run(cuda_backend *cb, const liif_model *m, int d, const liif_decode_job *job,
                               liif_error *err)
{
    const liif_config *c = &m->cfg;
    const liif_mlp *mlp = &m->dec[d];
    int ns = c->local_ensemble ? 4 : 1, h1 = mlp->dims[1], base = c->n_feats * (c->feat_unfold ? 9 : 1);
    int last = mlp->n_layers - 1; /* the last layer; hidden layers 0 .. last - 1 */
    long nq = (long)job->rows * job->cols, R = nq * ns;
    if (fused_decoder(cb, mlp)) return decoder_fused(cb, m, d, 1, job, err);
    float *cur = DF(cb->hid_a), *other = DF(cb->hid_b);
    liif_status s = LIIF_OK;
    if (cb->have_pre) {
        layer1_pre_kernel<<<cu_blocks((size_t)R * h1), CU_THREADS, 0, cb->st>>>(
            DF(cb->pre[d]), cb->dec[d][0].b, cb->w1_coord[d], h1, c->in_dim - base, (const int *)cb->lat.p,
            DF(cb->extra), R, cur, cb->bf16 && last > 1 ? (__nv_bfloat16 *)cur : NULL);
        LAUNCH_TRY("layer 1 (precompute)");
    } else {
        const float *feat = c->dec_source[d] == LIIF_FEAT_MID ? DF(cb->feat_mid) : DF(cb->feat_last);
        float *t = cur; /* the input goes into the other buffer */
        cur = other;
        other = t;
        gather_kernel<<<cu_blocks((size_t)R * c->in_dim), CU_THREADS, 0, cb->st>>>(
            feat, c->n_feats, c->feat_unfold, c->in_dim, job->h, job->w, job->ty, job->tx, job->tw,
            (const int *)cb->lat.p, (const int *)cb->ij.p, DF(cb->extra), R, cur,
            cb->bf16 ? (__nv_bfloat16 *)cur : NULL);
        LAUNCH_TRY("gather");
        s = hidden_layer(cb, R, c->in_dim, &cur, &other, &cb->dec[d][0], h1, last == 1, err);
    }
    for (int l = 1; !s && l < last; l++)
        s = hidden_layer(cb, R, mlp->dims[l], &cur, &other, &cb->dec[d][l], mlp->dims[l + 1], l == last - 1, err);
    if (s) return s;
    last_blend_kernel<<<cu_blocks((size_t)nq * 32), CU_THREADS, 0, cb->st>>>(
        cur, mlp->dims[last], cb->dec[d][last].w, cb->dec[d][last].b, DF(cb->weight), ns, nq, d == 0, job->alpha,
        DF(cb->total));
    LAUNCH_TRY("last layer and blend");
    return LIIF_OK;
}

/* Slot k's rows, once its copy has finished, from page-locked memory to their place; nothing when k is free. The slot
 * is free afterwards whatever happened (a failed copy's rows are not written). */
static liif_status land(cuda_backend *cb, int k, liif_error *err)
{
    if (!cb->pend[k].dst) return LIIF_OK;
    float *dst = cb->pend[k].dst;
    cb->pend[k].dst = NULL;
    CU_TRY(cudaEventSynchronize(cb->done[k]), "running the decoder");
    size_t row = (size_t)cb->pend[k].cols * 3;
    for (int r = 0; r < cb->pend[k].rows; r++)
        memcpy(dst + (size_t)r * cb->pend[k].stride, cb->pinned[k] + (size_t)r * row, row * sizeof(float));
    return LIIF_OK;
}

static liif_status cuda_decode(liif_backend *be, const liif_model *m, const liif_decode_job *job, float *out,
                               size_t out_stride, liif_error *err)
{
    cuda_backend *cb = (cuda_backend *)be;
    const liif_config *c = &m->cfg;
    if (cb->m != m || cb->m_serial != m->serial || cb->th != job->th || cb->tw != job->tw)
        return cu_error(err, LIIF_ERR_ARG, "CUDA decoder: the job does not match the encoded tile");
    long nq = (long)job->rows * job->cols, R = nq * (c->local_ensemble ? 4 : 1);
    size_t maxw = widest(c, !cb->have_pre);
    liif_status s = begin(cb, be->fast_math, err);
    if (s) return s;
    int layers = 0, nd = liif_decoders_for(c, job->alpha); /* layers: a decoder takes the per-layer path */
    for (int d = 0; d < nd; d++) layers |= !fused_decoder(cb, &m->dec[d]);
    if (layers) {
        CU_TRY(dbuf_reserve(&cb->hid_a, R * maxw * sizeof(float)), "allocating decoder buffers");
        CU_TRY(dbuf_reserve(&cb->hid_b, R * maxw * sizeof(float)), "allocating decoder buffers");
    }
    CU_TRY(dbuf_reserve(&cb->total, nq * 3 * sizeof(float)), "allocating decoder buffers");
    CU_TRY(dbuf_reserve(&cb->rgb, nq * 3 * sizeof(float)), "allocating decoder buffers");
    s = run_geometry(cb, c, job, err);
    const char *env = getenv("LIIF_CUDA_DECODER"); /* "separate": one fused launch per decoder (tests, benchmarks) */
    if (!s && nd == 2 && !layers && !(env && strcmp(env, "separate") == 0))
        s = decoder_fused(cb, m, 0, 2, job, err); /* both decoders in one pass */
    else
        for (int d = 0; !s && d < nd; d++) s = decoder_run(cb, m, d, job, err);
    if (s) return s;
    output_kernel<<<cu_blocks((size_t)nq * 3), CU_THREADS, 0, cb->st>>>(DF(cb->total), (size_t)nq * 3,
                                                                         DF(cb->rgb), job->unclamped);
    LAUNCH_TRY("output");
    int k = cb->turn, defer = be->deferred && cb->done[0] && cb->done[1];
    if (defer) {
        s = land(cb, k, err); /* the call before last: its copy is long done */
        if (s) return s;
        if (cb->pinned_floats[k] < (size_t)nq * 3) {
            cudaFreeHost(cb->pinned[k]);
            cb->pinned[k] = NULL;
            cb->pinned_floats[k] = 0;
            if (cudaHostAlloc((void **)&cb->pinned[k], (size_t)nq * 3 * sizeof(float), cudaHostAllocDefault) ==
                cudaSuccess) {
                cb->pinned_floats[k] = (size_t)nq * 3;
            } else { /* no page-locked memory: this call copies directly */
                cb->pinned[k] = NULL;
                (void)cudaGetLastError();
            }
        }
    }
    if (defer && cb->pinned[k]) {
        size_t bytes = (size_t)nq * 3 * sizeof(float);
        CU_TRY(cudaMemcpyAsync(cb->pinned[k], cb->rgb.p, bytes, cudaMemcpyDeviceToHost, cb->st), "downloading the output");
        CU_TRY(cudaEventRecord(cb->done[k], cb->st), "recording the output's event");
        cb->pend[k].dst = out;
        cb->pend[k].stride = out_stride;
        cb->pend[k].rows = job->rows;
        cb->pend[k].cols = job->cols;
        cb->turn = k ^ 1;
        return LIIF_OK;
    }
    CU_TRY(cudaMemcpy2DAsync(out, out_stride * sizeof(float), cb->rgb.p, (size_t)job->cols * 3 * sizeof(float),
                             (size_t)job->cols * 3 * sizeof(float), job->rows, cudaMemcpyDeviceToHost, cb->st),
           "downloading the output");
    return finish(cb, "running the decoder", err);
}

/* Every output in flight in its place (the older first), then the stream's errors, if any. */
static liif_status cuda_flush(liif_backend *be, liif_error *err)
{
    cuda_backend *cb = (cuda_backend *)be;
    CU_TRY(cudaSetDevice(cb->dev), "selecting the device");
    liif_status s = land(cb, cb->turn, err), s2 = land(cb, cb->turn ^ 1, err);
    if (s || s2) return s ? s : s2;
    return finish(cb, "running the decoder", err);
}

/* ------------------------------------------------------------ planning, tests, lifetime */

static size_t cuda_bytes_per_tile_px(const liif_backend *be, const liif_model *m)
{
    (void)be;
    return encoder_floats_per_px(&m->cfg) * sizeof(float);
}

/* Device memory a tile may take now: the free memory plus what the encoder buffers already hold,
 * less the decoder's buffers, the im2col buffer and a margin for cuBLAS's workspace. */
static size_t cuda_memory_budget(const liif_backend *be)
{
    const cuda_backend *cb = (const cuda_backend *)be;
    size_t free_b = 0, total_b = 0;
    if (cudaSetDevice(cb->dev) != cudaSuccess || cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
        (void)cudaGetLastError();
        return (size_t)256 << 20;
    }
    const dbuf *held[] = {&cb->x, &cb->head, &cb->t, &cb->u, &cb->a, &cb->feat_last, &cb->feat_mid, &cb->pre[0], &cb->pre[1]};
    for (size_t i = 0; i < sizeof held / sizeof held[0]; i++) free_b += held[i]->bytes;
    size_t reserve = (size_t)be->queries_per_call * BYTES_PER_QUERY_MAX + (size_t)COL_PX_MAX * 9 * 64 * sizeof(float) +
                     ((size_t)512 << 20);
    size_t usable = free_b / 10 * 8;
    return usable > reserve + ((size_t)64 << 20) ? usable - reserve : (size_t)64 << 20;
}

static const float *cuda_features(liif_backend *be, int mid)
{
    cuda_backend *cb = (cuda_backend *)be;
    if (!cb->m || (mid && !cb->have_mid)) return NULL;
    size_t n = (size_t)cb->th * cb->tw * cb->m->cfg.n_feats;
    if (n > cb->host_feat_cap) {
        float *p = (float *)realloc(cb->host_feat, n * sizeof(float));
        if (!p) return NULL;
        cb->host_feat = p;
        cb->host_feat_cap = n;
    }
    if (cudaSetDevice(cb->dev) != cudaSuccess ||
        cudaMemcpy(cb->host_feat, mid ? cb->feat_mid.p : cb->feat_last.p, n * sizeof(float), cudaMemcpyDeviceToHost) !=
            cudaSuccess)
        return NULL;
    return cb->host_feat;
}

static void cuda_destroy(liif_backend *be)
{
    cuda_backend *cb = (cuda_backend *)be;
    cudaSetDevice(cb->dev);
    cudaStreamSynchronize(cb->st);
    for (int k = 0; k < 2; k++) {
        if (cb->done[k]) cudaEventDestroy(cb->done[k]);
        cudaFreeHost(cb->pinned[k]);
    }
    dbuf *all[] = {&cb->wts, &cb->x, &cb->head, &cb->t, &cb->u, &cb->a, &cb->feat_last, &cb->feat_mid, &cb->pre[0],
                   &cb->pre[1], &cb->col, &cb->lat, &cb->ij, &cb->extra, &cb->weight, &cb->hid_a, &cb->hid_b,
                   &cb->total, &cb->rgb, &cb->h16, &cb->w16};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dbuf_free(all[i]);
    if (cb->blas) cublasDestroy(cb->blas);
    if (cb->st) cudaStreamDestroy(cb->st);
    free(cb->conv);
    free(cb->host_feat);
    free(cb);
}

static liif_backend *backend_new(char *reason, size_t reason_size)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        void *drv = e == cudaErrorInsufficientDriver ? dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL) : NULL;
        if (e == cudaErrorInsufficientDriver && !drv)
            snprintf(reason, reason_size, "%s", LIIF_N_("no NVIDIA driver is installed (libcuda.so.1 not found)"));
        else if (e == cudaErrorInsufficientDriver)
            snprintf(reason, reason_size, "the NVIDIA driver is too old for this CUDA %d.%d module", CUDART_VERSION / 1000,
                     CUDART_VERSION % 1000 / 10);
        else if (e == cudaErrorNoDevice || (e == cudaSuccess && n == 0))
            snprintf(reason, reason_size, "%s", LIIF_N_("no CUDA GPU found"));
        else
            snprintf(reason, reason_size, "CUDA is unusable here (%s)", cudaGetErrorString(e));
        if (drv) dlclose(drv);
        (void)cudaGetLastError();
        return NULL;
    }
    cuda_backend *cb = (cuda_backend *)calloc(1, sizeof *cb);
    if (!cb) {
        snprintf(reason, reason_size, "out of memory");
        return NULL;
    }
    cb->dev = 0;
    cudaDeviceProp prop;
    const char *what = "reading device 0's properties";
    e = cudaGetDeviceProperties(&prop, 0);
    cb->sm = e == cudaSuccess ? prop.major * 10 + prop.minor : 0;
    if (e == cudaSuccess) {
        what = "selecting device 0";
        e = cudaSetDevice(0);
    }
    if (e == cudaSuccess) {
        what = "creating a stream";
        e = cudaStreamCreateWithFlags(&cb->st, cudaStreamNonBlocking);
    }
    if (e != cudaSuccess) {
        snprintf(reason, reason_size, "%s failed: %s", what, cudaGetErrorString(e));
        (void)cudaGetLastError();
        cuda_destroy(&cb->base);
        return NULL;
    }
    for (int k = 0; k < 2 && e == cudaSuccess; k++) /* without them, decode is synchronous */
        if (cudaEventCreateWithFlags(&cb->done[k], cudaEventDisableTiming) != cudaSuccess) cb->done[k] = NULL;
    if (cb->sm >= 80) /* the fused decoder's shared memory (above the default 48 KiB): granted, or that path is off */
        cb->fd_ok = fd_grant();
    (void)cudaGetLastError();
    cublasStatus_t bs = cublasCreate(&cb->blas);
    if (bs == CUBLAS_STATUS_SUCCESS) bs = cublasSetStream(cb->blas, cb->st);
    if (bs != CUBLAS_STATUS_SUCCESS) {
        snprintf(reason, reason_size, "cuBLAS could not start (%s)", cublas_name(bs));
        cuda_destroy(&cb->base);
        return NULL;
    }
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    size_t q = free_b / 8 / BYTES_PER_QUERY_MAX;
    q = q < QUERIES_MIN ? QUERIES_MIN : (q > QUERIES_MAX ? QUERIES_MAX : q);
    cb->base.name = "cuda";
    cb->base.fast_name = "tf32"; /* FAST: TF32 tensor-core GEMMs; bf16 GEMMs by name */
    cb->base.maths = 1u << LIIF_MATH_TF32 | 1u << LIIF_MATH_BF16;
    cb->base.encode = cuda_encode;
    cb->base.decode = cuda_decode;
    cb->base.flush = cuda_flush;
    cb->base.bytes_per_tile_px = cuda_bytes_per_tile_px;
    cb->base.memory_budget = cuda_memory_budget;
    cb->base.features = cuda_features;
    cb->base.destroy = cuda_destroy;
    cb->base.threads = 1;
    cb->base.queries_per_call = (int)(q / 1024 * 1024);
    return &cb->base;
}

static int device_info(char *name, size_t name_size, size_t *free_bytes, size_t *total_bytes)
{
    cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, 0) != cudaSuccess || cudaSetDevice(0) != cudaSuccess ||
        cudaMemGetInfo(free_bytes, total_bytes) != cudaSuccess) {
        (void)cudaGetLastError();
        return -1;
    }
    snprintf(name, name_size, "%s (sm_%d%d, %d SMs)", p.name, p.major, p.minor, p.multiProcessorCount);
    return 0;
}

#include "ops.cuh"
#include "train.cuh"
#include "train_gan.cuh"

extern "C" __attribute__((visibility("default"))) const liif_cuda_module *liif_cuda_module_entry(void)
{
    static const liif_cuda_module mod = {
        LIIF_CUDA_ABI, sizeof(liif_backend), sizeof(liif_model), sizeof(liif_decode_job),
        backend_new, device_info, op_conv3x3, op_linear, op_geometry, sgemm_gflops, LIIF_CUDA_TRAIN_ENTRIES,
    };
    return &mod;
}
