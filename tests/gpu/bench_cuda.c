/* bench_cuda.c: CUDA engine speed, 1920x1080 -> 3840x2160, fp32, TF32 and bf16, beside cuBLAS's rates in the same run;
 * the encoder with each convolution path (implicit GEMM, im2col + cuBLAS).
 * usage: bench-cuda [MODEL.safetensors] [--reps N] [--in WxH] [--out WxH] [--photo FILE.png]
 * Without a model it writes a random model of the official EDSR-baseline LIIF shape (same FLOPs). With --photo the
 * photo is the input (its size; the output twice that unless --out), so the agreement of TF32 and bf16 with fp32 is
 * on a real photo's upscale, and each precision's PSNR / SSIM against the photo itself is measured from its x2
 * bicubic downscale (benchmark protocol: Y, shave 2): the accuracy each precision costs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cuda_util.h"
#include "internal.h"
#include "metrics.h"
#include "png_image.h"
#include "randmodel.h"

/* The official model's nominal cost (as bench/bench.c): per LR pixel and per output pixel, without precompute. */
#define ENC_FLOP_PER_LR_PX 2.44e6
#define DEC_FLOP_PER_OUT_PX 2.77e6

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static float *test_image(int w, int h)
{
    unsigned long long s = 7;
    float *p = malloc((size_t)w * h * 3 * sizeof(float));
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++)
                p[((size_t)y * w + x) * 3 + c] = 0.5f + 0.3f * sinf(0.01f * x + 0.013f * y + c) + 0.1f * rm_uniform(&s);
    return p;
}

/* The photo at path as RGB floats (gray repeated, alpha dropped); its size in *w, *h. Exits on failure. */
static float *photo_rgb(const char *path, int *w, int *h)
{
    liif_png png;
    liif_error err;
    if (liif_png_read(path, &png, &err) != LIIF_OK) {
        printf("FAIL %s\n", err.msg);
        exit(1);
    }
    float *p = malloc((size_t)png.w * png.h * 3 * sizeof(float));
    for (size_t i = 0; i < (size_t)png.w * png.h; i++)
        for (int c = 0; c < 3; c++) p[i * 3 + c] = png.px[i * png.channels + (png.channels >= 3 ? c : 0)];
    *w = png.w;
    *h = png.h;
    liif_png_free(&png);
    return p;
}

/* Best of reps seconds for one whole upscale (after one warm-up run). */
static const char *const math_name[] = {"fp32", "TF32", "bf16"};

static double time_upscale_detail(liif_engine *e, const liif_image *in, const liif_region *r, float *out, int math,
                                  int pre, int reps, double detail)
{
    liif_options o;
    liif_options_init(&o);
    o.detail = detail;
    o.precision = math == 2 ? LIIF_PRECISION_BF16 : math ? LIIF_PRECISION_TF32 : LIIF_PRECISION_FP32;
    o.precompute = pre;
    liif_error err;
    double best = 1e30;
    for (int i = 0; i <= reps; i++) {
        double t = now();
        if (liif_upscale_region(e, in, r, out, (size_t)r->w * 3, &o, &err)) {
            printf("FAIL upscale: %s\n", err.msg);
            exit(1);
        }
        t = now() - t;
        if (i > 0 && t < best) best = t;
    }
    return best;
}

static double time_upscale(liif_engine *e, const liif_image *in, const liif_region *r, float *out, int math, int pre,
                           int reps)
{
    return time_upscale_detail(e, in, r, out, math, pre, reps, 1.0);
}

int main(int argc, char **argv)
{
    const char *model_path = NULL, *photo = NULL;
    int reps = 3, w = 1920, h = 1080, W = 3840, H = 2160, out_given = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--in") && i + 1 < argc) sscanf(argv[++i], "%dx%d", &w, &h);
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out_given = sscanf(argv[++i], "%dx%d", &W, &H) == 2;
        else if (!strcmp(argv[i], "--photo") && i + 1 < argc) photo = argv[++i];
        else model_path = argv[i];
    }
    char tmp[] = "/tmp/liif-bench-cuda-XXXXXX", path[128];
    const liif_cuda_module *mod;
    liif_backend *be = tc_gpu_or_skip(&mod);
    if (!model_path) {
        if (!mkdtemp(tmp)) return 1;
        snprintf(path, sizeof path, "%s/edsr-baseline-liif.safetensors", tmp);
        rm_spec sp = {64, 16, 4, 256, 1, 1, 1, "liif", 1, 3.0f};
        if (rm_write(path, &sp)) return 1;
        model_path = path;
    }
    liif_model *m;
    liif_error err;
    if (liif_model_load(model_path, &m, &err)) {
        printf("FAIL %s\n", err.msg);
        return 1;
    }
    if (model_path == path) {
        unlink(path);
        rmdir(tmp);
    }

    /* cuBLAS's rate on the decoder's products (queries x 256 x 256, and the plain layer 1 580 -> 256). */
    for (int fast = 0; fast < 3; fast++) {
        printf("cuBLAS GEMM %s: 524288x256x256 %.1f TFLOP/s, 30000x256x580 %.1f TFLOP/s, 8192^3 %.1f TFLOP/s\n",
               math_name[fast], mod->sgemm_gflops(be, 524288, 256, 256, fast, 5) / 1e3,
               mod->sgemm_gflops(be, 30000, 256, 580, fast, 5) / 1e3, mod->sgemm_gflops(be, 8192, 8192, 8192, fast, 3) / 1e3);
    }

    float *img = photo ? photo_rgb(photo, &w, &h) : test_image(w, h);
    if (photo && !out_given) W = 2 * w, H = 2 * h;
    printf("input: %s, %dx%d -> %dx%d\n", photo ? photo : "synthetic", w, h, W, H);
    /* encoder alone, on the backend: one tile of the whole image; TF32 and bf16 with the implicit-GEMM convolutions
     * (the backend's path) and with im2col + cuBLAS (LIIF_CUDA_CONV=im2col) */
    for (int run = 0; run < 5; run++) {
        int fast = (run + 1) / 2, im2col = run && run % 2 == 0;
        if (im2col) setenv("LIIF_CUDA_CONV", "im2col", 1);
        else unsetenv("LIIF_CUDA_CONV");
        be->fast_math = fast;
        double best = 1e30;
        for (int i = 0; i <= reps; i++) {
            double t = now();
            if (be->encode(be, m, img, (size_t)w * 3, h, w, 0, 1, &err)) {
                printf("FAIL encode: %s\n", err.msg);
                return 1;
            }
            t = now() - t;
            if (i > 0 && t < best) best = t;
        }
        printf("encoder + layer-1 precompute %dx%d %s%s: %.3f s, %.1f TFLOP/s effective\n", w, h, math_name[fast],
               !fast ? " (im2col + cuBLAS)" : im2col ? " im2col + cuBLAS" : " implicit GEMM", best,
               ENC_FLOP_PER_LR_PX * w * h / best / 1e12);
    }
    unsetenv("LIIF_CUDA_CONV");
    be->destroy(be);

    liif_engine *e;
    if (liif_engine_new(m, LIIF_BACKEND_CUDA, &e, NULL, 0, &err)) {
        printf("FAIL %s\n", err.msg);
        return 1;
    }
    liif_image in = {img, w, h, (size_t)w * 3};
    liif_region r = {W, H, 0, 0, W, H};
    float *out[3];
    double flop = ENC_FLOP_PER_LR_PX * w * h + DEC_FLOP_PER_OUT_PX * W * H;
    for (int fast = 0; fast < 3; fast++) {
        out[fast] = malloc((size_t)W * H * 3 * sizeof(float));
        for (int pre = 1; pre >= 0; pre--) {
            double t = time_upscale(e, &in, &r, out[fast], fast, pre, reps);
            printf("upscale %dx%d -> %dx%d %s%s: %.3f s (best of %d after warm-up), %.2f Mpx/s, %.1f TFLOP/s effective\n", w,
                   h, W, H, math_name[fast], pre ? " precompute" : " plain", t, reps, (double)W * H / t / 1e6,
                   flop / t / 1e12);
        }
    }
    /* bf16 (and TF32) without the new kernels: the per-layer decoder (LIIF_CUDA_DECODER=layers), then also im2col
     * convolutions (LIIF_CUDA_CONV=im2col), the path before them */
    float *alt = malloc((size_t)W * H * 3 * sizeof(float));
    for (int run = 0; run < 4; run++) { /* bf16 per layer, bf16 and im2col, TF32 per layer, TF32 and im2col */
        int fast = run < 2 ? 2 : 1;
        setenv("LIIF_CUDA_DECODER", "layers", 1);
        if (run % 2) setenv("LIIF_CUDA_CONV", "im2col", 1);
        double t = time_upscale(e, &in, &r, alt, fast, 1, reps);
        printf("upscale %dx%d -> %dx%d %s precompute, %s: %.3f s, %.2f Mpx/s\n", w, h, W, H, math_name[fast],
               run % 2 ? "im2col convolutions, per-layer decoder" : "per-layer decoder", t, (double)W * H / t / 1e6);
        unsetenv("LIIF_CUDA_DECODER");
        unsetenv("LIIF_CUDA_CONV");
    }
    free(alt);
    for (int fast = 1; fast < 3; fast++) { /* against fp32, in 8-bit levels of the rounded output */
        size_t n = (size_t)W * H * 3, within = 0;
        double d = 0, sum = 0;
        for (size_t i = 0; i < n; i++) {
            double a = fabs(out[0][i] - out[fast][i]);
            d = a > d ? a : d;
            sum += a;
            within += fabs(nearbyint(out[0][i] * 255.0) - nearbyint(out[fast][i] * 255.0)) <= 1.0;
        }
        printf("%s vs fp32 output: max |diff| %.3g, mean %.3g (rgb in [0,1]); 8-bit samples within one level: %.4f%%\n",
               math_name[fast], d, sum / (double)n, 100.0 * (double)within / (double)n);
    }
    if (photo) { /* what each precision costs against the photo itself: its x2 downscale upscaled back */
        int lw, lh, cw, ch;
        liif_error err2;
        if (liif_eval_lr_size(w, h, 2.0, &lw, &lh, &cw, &ch, &err2) == LIIF_OK) {
            float *crop = malloc((size_t)cw * ch * 3 * sizeof(float)), *lr = malloc((size_t)lw * lh * 3 * sizeof(float));
            float *sr = malloc((size_t)cw * ch * 3 * sizeof(float));
            liif_image lin = {lr, lw, lh, (size_t)lw * 3};
            liif_region lreg = {cw, ch, 0, 0, cw, ch};
            double p0 = 0;
            if (liif_eval_make_lr(img, w, h, 2.0, crop, lr, &err2) == LIIF_OK)
                for (int fast = 0; fast < 3; fast++) {
                    double psnr = 0, ssim = 0;
                    time_upscale(e, &lin, &lreg, sr, fast, 1, 0);
                    liif_psnr(sr, crop, cw, ch, 2, LIIF_METRIC_Y, &psnr, &err2);
                    liif_ssim(sr, crop, cw, ch, 2, LIIF_METRIC_Y, &ssim, &err2);
                    if (fast == 0) p0 = psnr;
                    printf("photo x2 (%dx%d -> %dx%d) %s: PSNR %.3f dB (%+.3f against fp32), SSIM %.4f (Y, shave 2)\n", lw,
                           lh, cw, ch, math_name[fast], psnr, psnr - p0, ssim);
                }
            free(crop); free(lr); free(sr);
        }
    }
    liif_engine_free(e);
    liif_model_free(m);

    /* LIIF-GAN (two decoders, random weights of the official shape), bf16 with the precompute: both decoders in one
     * pass of the fused decoder, one launch each (LIIF_CUDA_DECODER=separate), and detail 0 (decoder 1 alone) */
    if (mkdtemp(strcpy(tmp, "/tmp/liif-bench-cuda-XXXXXX"))) {
        snprintf(path, sizeof path, "%s/edsr-baseline-liif-gan.safetensors", tmp);
        rm_spec sp = {64, 16, 4, 256, 1, 1, 1, "liif-gan", 2, 3.0f};
        int ok = rm_write(path, &sp) == 0 && liif_model_load(path, &m, &err) == LIIF_OK;
        unlink(path);
        rmdir(tmp);
        if (ok && liif_engine_new(m, LIIF_BACKEND_CUDA, &e, NULL, 0, &err) == LIIF_OK) {
            for (int run = 0; run < 3; run++) {
                if (run == 1) setenv("LIIF_CUDA_DECODER", "separate", 1);
                double t = time_upscale_detail(e, &in, &r, out[0], 2, 1, reps, run == 2 ? 0.0 : 1.0);
                unsetenv("LIIF_CUDA_DECODER");
                printf("LIIF-GAN upscale %dx%d -> %dx%d bf16 precompute, %s: %.3f s, %.2f Mpx/s\n", w, h, W, H,
                       run == 0 ? "detail 1, both decoders in one pass" : run == 1 ? "detail 1, one launch per decoder"
                                                                          : "detail 0 (decoder 1 alone)",
                       t, (double)W * H / t / 1e6);
            }
            liif_engine_free(e);
        } else printf("FAIL LIIF-GAN model: %s\n", err.msg);
        if (ok) liif_model_free(m);
    }
    free(out[0]); free(out[1]); free(out[2]); free(img);
    return 0;
}
