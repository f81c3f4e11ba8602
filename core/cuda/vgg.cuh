/* vgg.cuh: VGG19 features and the perceptual loss on the GPU (the GAN trainer's w_per term), the twin of
 * core/train/vgg.c.
 *
 * Maps are channels-last (B,h,w,C), so every 3x3 conv is train.cuh's tconv (the implicit-GEMM kernel under TF32 on
 * sm_80+, else im2col + cuBLAS). A conv followed by its ReLU runs as one fused conv: the conv's own output is never
 * needed (the ReLU's backward masks by the ReLU's output, a conv's data gradient needs only its weights). The weights
 * are frozen: the backward gives the input's gradient alone. Names: gv_* kernels, vgg_* host functions.
 * Included by train_gan.cuh (after train.cuh and its gk_block_allsum). */
#ifndef LIIF_CUDA_VGG_CUH
#define LIIF_CUDA_VGG_CUH

/* torchvision's ImageNet normalisation of channel c in float32 (vgg.c's constants) */
static __device__ float gv_mean(int c) { return c == 0 ? 0.485f : (c == 1 ? 0.456f : 0.406f); }
static __device__ float gv_std(int c) { return c == 0 ? 0.229f : (c == 1 ? 0.224f : 0.225f); }

/* x (B,HW,3) = (img (B,3,HW) - mean[c]) / std[c]: the [0,1] NCHW patch to the first conv's input. */
static __global__ void gv_input(const float *img, int B, int HW, float *x)
{
    GRID_LOOP(idx, (size_t)B * HW * 3) {
        int c = (int)(idx % 3);
        size_t bi = idx / 3, b = bi / HW, i = bi % HW;
        x[idx] = __fdiv_rn(__fsub_rn(img[(b * 3 + c) * HW + i], gv_mean(c)), gv_std(c));
    }
}

/* dimg (B,3,HW) += dx (B,HW,3) / std[c]: the gradient through the normalisation. */
static __global__ void gv_input_backward(const float *dx, int B, int HW, float *dimg)
{
    GRID_LOOP(idx, (size_t)B * 3 * HW) {
        int i = (int)(idx % HW), c = (int)(idx / HW % 3);
        size_t b = idx / ((size_t)HW * 3);
        dimg[idx] = __fadd_rn(dimg[idx], __fdiv_rn(dx[(b * HW + i) * 3 + c], gv_std(c)));
    }
}

/* out (n) = max(src, 0): a ReLU that no conv precedes (VGG19 has none; kept for any module list). */
static __global__ void gv_relu(const float *src, size_t n, float *out)
{
    GRID_LOOP(i, n) out[i] = src[i] > 0.0f ? src[i] : 0.0f;
}

/* 2x2 max pool, stride 2, of inp (B,H,W,C) into out (B,H/2,W/2,C); arg = the winner's place in its window,
 * 2 dy + dx. nn_maxpool2x2_forward's choice: scanned row by row, a larger value or a NaN takes the place. */
static __global__ void gv_pool(const float *inp, int B, int H, int W, int C, float *out, unsigned char *arg)
{
    int OH = H / 2, OW = W / 2;
    GRID_LOOP(idx, (size_t)B * OH * OW * C) {
        int c = (int)(idx % C);
        size_t p = idx / C;
        int ox = (int)(p % OW), oy = (int)(p / OW % OH);
        size_t b = p / ((size_t)OW * OH);
        const float *x = inp + ((b * H + 2 * oy) * W + 2 * ox) * C + c;
        int best = 0;
        float bv = x[0];
        for (int k = 1; k < 4; k++) {
            float v = x[((size_t)(k >> 1) * W + (k & 1)) * C];
            if (v > bv || isnan(v)) {
                best = k;
                bv = v;
            }
        }
        out[idx] = bv;
        arg[idx] = (unsigned char)best;
    }
}

/* dinp (B,H,W,C) = the pool's gradient (writes every element): dout where the element won its window, else 0
 * (also the last row / column of an odd side, which no window reads). */
static __global__ void gv_pool_backward(const float *dout, const unsigned char *arg, int B, int H, int W, int C,
                                        float *dinp)
{
    int OH = H / 2, OW = W / 2;
    GRID_LOOP(idx, (size_t)B * H * W * C) {
        int c = (int)(idx % C);
        size_t p = idx / C;
        int x = (int)(p % W), y = (int)(p / W % H);
        size_t b = p / ((size_t)W * H);
        int oy = y >> 1, ox = x >> 1;
        float d = 0.0f;
        if (oy < OH && ox < OW) {
            size_t o = ((b * OH + oy) * OW + ox) * C + c;
            if (arg[o] == (unsigned char)(2 * (y & 1) + (x & 1))) d = dout[o];
        }
        dinp[idx] = d;
    }
}

/* *loss += sum |f - r| (double); with df, df (n) = sign(f - r) * g (writes; g = scale / n in float, as
 * nn_l1_backward). */
static __global__ void gv_l1(const float *f, const float *r, size_t n, float g, double *loss, float *df)
{
    double sum = 0.0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float d = __fsub_rn(f[i], r[i]);
        sum += (double)fabsf(d);
        if (df) df[i] = d > 0.0f ? g : (d < 0.0f ? -g : 0.0f);
    }
    double s = gk_block_allsum(sum);
    if (threadIdx.x == 0) atomicAdd(loss, s);
}

/* The network on the device for one batch shape: its weights, the activations one forward keeps for the backward
 * (one allocation, laid out by vgg_plan and vgg_carve) and the reference features. */
typedef struct {
    liif_cuda_vgg_shape sh;
    const float *p;                             /* weights (sh.n_params floats) */
    int B, H, W;
    int oh[LIIF_CUDA_VGG_MODULES], ow[LIIF_CUDA_VGG_MODULES]; /* module i's output sides */
    int fused[LIIF_CUDA_VGG_MODULES];           /* conv i runs with its ReLU i + 1 */
    size_t n_out[LIIF_CUDA_VGG_MODULES];        /* floats of module i's output */
    size_t n_map, n_args, col;                  /* largest map (input included), pool winners, im2col floats */
    float *x;                                   /* (B,H,W,3) normalised input */
    float *out[LIIF_CUDA_VGG_MODULES];          /* (B,oh,ow,oc) module i's output; NULL for a fused conv */
    unsigned char *arg[LIIF_CUDA_VGG_MODULES];  /* pools: each output's winner */
    float *ref, *ga, *gb;                       /* reference features; gradient ping-pong (n_map each) */
} vgg_dev;

/* Checks sh and lays out v for B images of H x W: sides, sizes, and the bytes of its one allocation (*bytes) and the
 * im2col floats its convs need (v->col). */
static liif_status vgg_plan(vgg_dev *v, const liif_cuda_vgg_shape *sh, int B, int H, int W, size_t *bytes,
                            liif_error *err)
{
    memset(v, 0, sizeof *v);
    v->sh = *sh;
    v->B = B;
    v->H = H;
    v->W = W;
    int n = sh->n_modules;
    if (n < 1 || n > LIIF_CUDA_VGG_MODULES || B < 1 || H < 1 || W < 1)
        return cu_error(err, LIIF_ERR_ARG, "VGG19: %d modules for %d images of %dx%d", n, B, H, W);
    int h = H, w = W, ch = 3;
    size_t floats = (size_t)B * H * W * 3, map = floats, args = 0;
    for (int i = 0; i < n; i++) {
        int k = sh->kind[i], ic = sh->ic[i], oc = sh->oc[i];
        if (ic != ch || (k == LIIF_CUDA_VGG_CONV ? oc < 1 : oc != ic) || k < 0 || k > LIIF_CUDA_VGG_POOL)
            return cu_error(err, LIIF_ERR_ARG, "VGG19: module %d takes %d channels, not %d", i, ic, ch);
        if (k == LIIF_CUDA_VGG_CONV) {
            size_t c = (size_t)B * h * w * 9 * ic;
            v->col = c > v->col ? c : v->col;
            if (sh->w[i] + (size_t)oc * ic * 9 > sh->n_params || sh->b[i] + (size_t)oc > sh->n_params)
                return cu_error(err, LIIF_ERR_ARG, "VGG19: module %d's weights outside the parameters", i);
        }
        if (k == LIIF_CUDA_VGG_POOL) {
            h /= 2;
            w /= 2;
        }
        if (h < 1 || w < 1) return cu_error(err, LIIF_ERR_ARG, "VGG19: %dx%d images too small for %d modules", H, W, n);
        v->oh[i] = h;
        v->ow[i] = w;
        ch = oc;
        v->n_out[i] = (size_t)B * h * w * oc;
        map = v->n_out[i] > map ? v->n_out[i] : map;
        v->fused[i] = k == LIIF_CUDA_VGG_CONV && i + 1 < n && sh->kind[i + 1] == LIIF_CUDA_VGG_RELU;
        if (!v->fused[i]) floats += v->n_out[i];
        if (k == LIIF_CUDA_VGG_POOL) args += v->n_out[i];
    }
    v->n_map = map;
    v->n_args = args;
    floats += v->n_out[n - 1] + 2 * map;
    *bytes = floats * sizeof(float) + args;
    return LIIF_OK;
}

/* Points v's buffers into mem (vgg_plan's bytes, float-aligned) and its weights at params. */
static void vgg_carve(vgg_dev *v, void *mem, const float *params)
{
    float *f = (float *)mem;
    v->p = params;
    v->x = f;
    f += (size_t)v->B * v->H * v->W * 3;
    for (int i = 0; i < v->sh.n_modules; i++) {
        v->out[i] = v->fused[i] ? NULL : f;
        if (!v->fused[i]) f += v->n_out[i];
    }
    v->ref = f;
    f += v->n_out[v->sh.n_modules - 1];
    v->ga = f;
    f += v->n_map;
    v->gb = f;
    f += v->n_map;
    unsigned char *a = (unsigned char *)f;
    for (int i = 0; i < v->sh.n_modules; i++)
        if (v->sh.kind[i] == LIIF_CUDA_VGG_POOL) {
            v->arg[i] = a;
            a += v->n_out[i];
        }
}

/* The conv context for maps of h x w: the implicit-GEMM kernel works on 16 x 16 pixel tiles, so below that size
 * (VGG19's 12 x 12 and smaller maps of a 48 px patch: at 3 x 3, 9 of a tile's 256 pixels) im2col + cuBLAS, whose
 * im2col is small there, does less work; cuBLAS runs in the same math mode (TF32 when fast). */
static tconv_ctx vgg_conv_ctx(const tconv_ctx *cx, int h, int w)
{
    tconv_ctx c = *cx;
    if (h * w < 16 * 16) c.igemm = 0;
    return c;
}

/* The output of the last forward: (B, oh, ow, oc) of the last module. */
static const float *vgg_output(const vgg_dev *v) { return v->out[v->sh.n_modules - 1]; }

/* Forward of img (B,3,H,W) in [0,1] (vgg.c's gan_vgg_forward). */
static liif_status vgg_forward(const tconv_ctx *cx, vgg_dev *v, const float *img, liif_error *err)
{
    const liif_cuda_vgg_shape *s = &v->sh;
    int B = v->B, h = v->H, w = v->W;
    gv_input<<<cu_blocks((size_t)B * h * w * 3), CU_THREADS, 0, cx->st>>>(img, B, h * w, v->x);
    LAUNCH_TRY("VGG19 input");
    const float *in = v->x;
    for (int i = 0; i < s->n_modules; i++) {
        liif_status st;
        switch (s->kind[i]) {
        case LIIF_CUDA_VGG_CONV: {
            float *o = v->fused[i] ? v->out[i + 1] : v->out[i];
            tconv_ctx c = vgg_conv_ctx(cx, h, w);
            if ((st = tconv_forward(&c, o, in, v->p + s->w[i], 9 * s->ic[i], v->p + s->b[i], NULL, v->fused[i], B, h,
                                    w, s->ic[i], s->oc[i], err)))
                return st;
            if (v->fused[i]) i++; /* the ReLU ran in the conv's epilogue */
            break;
        }
        case LIIF_CUDA_VGG_RELU:
            gv_relu<<<cu_blocks(v->n_out[i]), CU_THREADS, 0, cx->st>>>(in, v->n_out[i], v->out[i]);
            LAUNCH_TRY("VGG19 ReLU");
            break;
        default:
            gv_pool<<<cu_blocks(v->n_out[i]), CU_THREADS, 0, cx->st>>>(in, B, h, w, s->ic[i], v->out[i], v->arg[i]);
            LAUNCH_TRY("VGG19 max pool");
        }
        in = v->out[i];
        h = v->oh[i];
        w = v->ow[i];
    }
    return LIIF_OK;
}

/* dimg (B,3,H,W) += d/d img of the last forward, given the output's gradient in v->ga (vgg.c's gan_vgg_backward). */
static liif_status vgg_backward(const tconv_ctx *cx, vgg_dev *v, float *dimg, liif_error *err)
{
    const liif_cuda_vgg_shape *s = &v->sh;
    float *dcur = v->ga, *other = v->gb;
    for (int i = s->n_modules - 1; i >= 0; i--) {
        int h = i ? v->oh[i - 1] : v->H, w = i ? v->ow[i - 1] : v->W;
        size_t nin = (size_t)v->B * h * w * s->ic[i];
        if (s->kind[i] == LIIF_CUDA_VGG_RELU) {
            tk_relu_mask<<<cu_blocks(v->n_out[i]), CU_THREADS, 0, cx->st>>>(dcur, v->out[i], v->n_out[i]);
            LAUNCH_TRY("VGG19 ReLU backward");
            continue;
        }
        if (s->kind[i] == LIIF_CUDA_VGG_POOL) {
            gv_pool_backward<<<cu_blocks(nin), CU_THREADS, 0, cx->st>>>(dcur, v->arg[i], v->B, h, w, s->ic[i], other);
            LAUNCH_TRY("VGG19 max pool backward");
        } else {
            CU_TRY(cudaMemsetAsync(other, 0, nin * sizeof(float), cx->st), "VGG19 backward");
            tconv_ctx c = vgg_conv_ctx(cx, h, w);
            liif_status st = tconv_backward(&c, other, NULL, NULL, dcur, NULL, v->p + s->w[i], 9 * s->ic[i], v->B, h, w,
                                            s->ic[i], s->oc[i], err);
            if (st) return st;
        }
        float *t = dcur;
        dcur = other;
        other = t;
    }
    gv_input_backward<<<cu_blocks((size_t)v->B * 3 * v->H * v->W), CU_THREADS, 0, cx->st>>>(dcur, v->B, v->H * v->W,
                                                                                             dimg);
    LAUNCH_TRY("VGG19 input backward");
    return LIIF_OK;
}

/* The perceptual term of gan_step_generator: VGG(ref) into v->ref, then VGG(img); *loss_sum += sum |VGG(img) -
 * VGG(ref)| (double; the caller divides by vgg_output_numel) and, when dimg is not NULL,
 * dimg += scale * d mean|...| / d img. */
static liif_status vgg_perceptual(const tconv_ctx *cx, vgg_dev *v, const float *img, const float *ref, float scale,
                                  double *loss_sum, float *dimg, liif_error *err)
{
    size_t n = v->n_out[v->sh.n_modules - 1];
    liif_status st = vgg_forward(cx, v, ref, err);
    if (st) return st;
    CU_TRY(cudaMemcpyAsync(v->ref, vgg_output(v), n * sizeof(float), cudaMemcpyDeviceToDevice, cx->st),
           "keeping VGG19's features of the real patch");
    if ((st = vgg_forward(cx, v, img, err))) return st;
    gv_l1<<<cu_blocks(n), CU_THREADS, 0, cx->st>>>(vgg_output(v), v->ref, n, scale / (float)n, loss_sum,
                                                   dimg ? v->ga : NULL);
    LAUNCH_TRY("perceptual loss");
    return dimg ? vgg_backward(cx, v, dimg, err) : LIIF_OK;
}

static size_t vgg_output_numel(const vgg_dev *v) { return v->n_out[v->sh.n_modules - 1]; }

#endif
