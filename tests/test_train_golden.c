/* test_train_golden.c: one LIIF training step (forward, L1, backward, Adam x2) against PyTorch's goldens; argv[2] = cpu:
 * the fast CPU ops, cuda: the GPU trainer (exits 77 with the reason without a GPU). */
#include <string.h>
#include <time.h>

#include "safetensors.h"
#include "testutil.h"
#include "train.h"

static char train_dir[512];

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static liif_st_file *open_golden(const char *file)
{
    char path[768];
    liif_st_file *f;
    liif_error err;
    snprintf(path, sizeof path, "%s/%s", train_dir, file);
    if (liif_st_open(path, &f, &err)) { printf("FAIL %s\n", err.msg); exit(1); }
    return f;
}

/* Tensor name of f as float32, malloc'd; its element count in *numel. */
static float *read_f32(const liif_st_file *f, const char *name, size_t *numel)
{
    liif_error err;
    const liif_st_tensor *t = liif_st_find(f, name);
    if (!t) { printf("FAIL %s: no tensor %s\n", liif_st_path(f), name); exit(1); }
    float *v = malloc(t->numel * sizeof(float));
    if (liif_st_read_f32(f, name, t->ndim, t->shape, v, &err)) { printf("FAIL %s\n", err.msg); exit(1); }
    if (numel) *numel = (size_t)t->numel;
    return v;
}

/* (B,C,h,w) -> (B,h,w,C) */
static float *nchw_to_nhwc(const float *src, int B, int C, int h, int w)
{
    float *dst = malloc((size_t)B * C * h * w * sizeof(float));
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++)
            for (int i = 0; i < h * w; i++) dst[((size_t)b * h * w + i) * C + c] = src[((size_t)b * C + c) * h * w + i];
    return dst;
}

/* Gradient tensor check: max|diff| <= 1e-3 * max|grad| + 1e-9 (README); returns diff / max|grad|. */
static double check_grad(const char *tag, const float *got, const float *want, size_t n, int verbose)
{
    double d = tu_maxdiff(got, want, n), ref = tu_maxabs(want, n), tol = 1e-3 * ref + 1e-9;
    if (verbose || !(d <= tol))
        printf("  %-44s max|diff| %.3g  max|g| %.3g  rel %.2g %s\n", tag, d, ref, ref > 0 ? d / ref : d,
               d <= tol ? "ok" : "FAIL");
    if (!(d <= tol)) tu_failures++;
    return ref > 0 ? d / ref : d;
}

/* Param check after an Adam step: every element within 0.5*lr, 99.9% within 1e-7 (README). */
static void check_params(const char *tag, const float *got, const float *want, size_t n, size_t *n_far, double *worst)
{
    double d = 0;
    size_t far = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]);
        if (e != e) e = INFINITY;
        if (e > 1e-7) far++;
        if (e > d) d = e;
    }
    if (!(d <= 5e-5)) {
        printf("  %-44s max|diff| %.3g FAIL (> 0.5*lr)\n", tag, d);
        tu_failures++;
    }
    *n_far += far;
    if (d > *worst) *worst = d;
}

/* The step's pieces on the GPU trainer when there is one (results copied into s and a), else on the CPU. */
static liif_train_gpu *gpu;

static liif_status step_forward(liif_train_state *s, liif_train_acts *a, const float *inp, const float *coord,
                                const float *cell, const float *gt, liif_error *err)
{
    if (!gpu) return liif_train_forward(s, a, inp, coord, cell, gt, err);
    return liif_train_gpu_forward(gpu, inp, coord, cell, gt, a->pred, &a->loss, err);
}

static liif_status step_backward(liif_train_state *s, liif_train_acts *a, liif_error *err)
{
    if (!gpu) {
        liif_train_backward(s, a);
        return LIIF_OK;
    }
    return liif_train_gpu_backward(gpu, s, NULL, err);
}

static liif_status step_adam(liif_train_state *s, const liif_adam_config *o, liif_error *err)
{
    if (!gpu) {
        liif_adam_update(s, o);
        return LIIF_OK;
    }
    liif_status st = liif_train_gpu_adam(gpu, o, err);
    return st ? st : liif_train_gpu_pull(gpu, s, err);
}

int main(int argc, char **argv)
{
    const char *golden = argc > 1 ? argv[1] : NULL;
    tu_require_dir(golden);
    snprintf(train_dir, sizeof train_dir, "%s/liif-edsr-baseline-train", golden);
    tu_require_dir(train_dir);
    setvbuf(stdout, NULL, _IOLBF, 0);

    char path[768];
    liif_error err;
    liif_train_state *s;
    snprintf(path, sizeof path, "%s/liif-edsr-baseline/weights.safetensors", golden);
    if (liif_train_state_load(path, &s, &err)) { printf("FAIL %s\n", err.msg); return 1; }
    printf("state: %d tensors, %zu values, %zu trainable\n", s->n_tensors, s->n_params, s->n_trainable);
    CHECK(s->n_tensors == 82, "82 tensors, got %d", s->n_tensors);

    const int B = 2, C = 3, h = 16, w = 16, Q = 64;
    if (argc > 2 && !strcmp(argv[2], "cuda")) {
        liif_status st = liif_train_gpu_new(s, B, h, w, Q, 0, &gpu, &err);
        if (st) { /* no module, driver or GPU: skipped; anything else fails */
            printf("%s: %s\n", st == LIIF_ERR_UNSUPPORTED ? "SKIP" : "FAIL", err.msg);
            liif_train_state_free(s);
            return st == LIIF_ERR_UNSUPPORTED ? 77 : 1;
        }
    }
    liif_st_file *fin = open_golden("train_inputs.safetensors");
    float *inp_nchw = read_f32(fin, "inp", NULL), *norm_nchw = read_f32(fin, "inp_norm", NULL);
    float *inp = nchw_to_nhwc(inp_nchw, B, C, h, w), *inp_norm = nchw_to_nhwc(norm_nchw, B, C, h, w);
    float *coord = read_f32(fin, "coord", NULL), *cell = read_f32(fin, "cell", NULL);
    float *gt = read_f32(fin, "gt", NULL), *gt_norm = read_f32(fin, "gt_norm", NULL);
    float *pred = read_f32(fin, "pred", NULL), *loss = read_f32(fin, "loss", NULL);
    float *pred2 = read_f32(fin, "pred_step2", NULL), *loss2 = read_f32(fin, "loss_step2", NULL);

    liif_train_acts *a;
    if (liif_train_acts_new(&s->cfg, B, h, w, Q, &a, &err)) { printf("FAIL %s\n", err.msg); return 1; }
    int fast = argc > 2 && !strcmp(argv[2], "cpu");
    if (fast && liif_train_acts_use_cpu(a, &s->cfg, 2, &err)) { printf("FAIL %s\n", err.msg); return 1; }
    printf("ops: %s\n", gpu ? "GPU (CUDA module, fp32)" : fast ? "fast CPU (im2col + sgemm, 2 threads)" : "reference");

    /* ---- step 1: forward */
    double t0 = now();
    if (step_forward(s, a, inp, coord, cell, gt, &err)) { printf("FAIL %s\n", err.msg); return 1; }
    double t1 = now();
    if (!gpu) { /* the GPU keeps its normalised copies to itself: its pred checks them */
        tu_close("encoder input (rgb - 0.5) / 0.5 [2,16,16,3]", a->x, inp_norm, (size_t)B * h * w * C, 0);
        tu_close("normalised gt [2,64,3]", a->gt, gt_norm, (size_t)B * Q * C, 0);
    }
    tu_close("step 1: pred [2,64,3]", a->pred, pred, (size_t)B * Q * C, 1e-6);
    tu_close("step 1: loss", &a->loss, loss, 1, 1e-6);

    /* ---- step 1: backward, all 78 gradients */
    liif_train_zero_grad(s);
    double t2 = now();
    if (step_backward(s, a, &err)) { printf("FAIL %s\n", err.msg); return 1; }
    double t3 = now();
    liif_st_file *fg = open_golden("train_grads.safetensors");
    double worst_rel = 0, worst_abs = 0;
    const char *worst_name = "";
    int n_grads = 0;
    size_t n_zero_want = 0, n_zero_mismatch = 0;
    printf("step 1 gradients (tolerance 1e-3 * max|g| + 1e-9 per tensor):\n");
    for (int i = 0; i < s->n_tensors; i++) {
        const liif_train_tensor *t = &s->tensors[i];
        if (!t->trainable) continue;
        char name[96];
        size_t n;
        snprintf(name, sizeof name, "grad.%s", t->name);
        float *want = read_f32(fg, name, &n);
        CHECK(n == t->numel, "%s: %zu values, golden %zu", name, t->numel, n);
        double rel = check_grad(name, s->grads + t->offset, want, n, 1);
        for (size_t k = 0; k < n; k++) { /* dead ReLUs / untouched features: exactly 0 in both */
            n_zero_want += want[k] == 0.0f;
            n_zero_mismatch += (want[k] == 0.0f) != (s->grads[t->offset + k] == 0.0f);
        }
        double d = tu_maxdiff(s->grads + t->offset, want, n);
        if (rel > worst_rel) { worst_rel = rel; worst_name = t->name; }
        if (d > worst_abs) worst_abs = d;
        n_grads++;
        free(want);
    }
    printf("step 1: %d gradients checked, worst max|diff| %.3g, worst relative %.3g (%s)\n", n_grads, worst_abs,
           worst_rel, worst_name);
    printf("step 1: %zu gradients exactly 0 in the golden, %zu differ in zeroness here\n", n_zero_want, n_zero_mismatch);
    CHECK(n_grads == 78, "78 gradients, got %d", n_grads);
    CHECK(n_zero_mismatch == 0, "%zu gradients zero in one and not the other", n_zero_mismatch);
    liif_st_close(fg);

    /* ---- step 1: Adam, all 82 params */
    liif_adam_config opt = liif_adam_defaults();
    double t4 = now();
    if (step_adam(s, &opt, &err)) { printf("FAIL %s\n", err.msg); return 1; }
    double t5 = now();
    liif_st_file *fp = open_golden("train_params_after_adam.safetensors");
    size_t n_far = 0, n_all = 0;
    double worst = 0;
    for (int i = 0; i < s->n_tensors; i++) {
        const liif_train_tensor *t = &s->tensors[i];
        size_t n;
        float *want = read_f32(fp, t->name, &n);
        if (t->trainable) check_params(t->name, s->params + t->offset, want, n, &n_far, &worst);
        else tu_close(t->name, s->params + t->offset, want, n, 0); /* frozen: bit-identical */
        n_all += n;
        free(want);
    }
    printf("step 1 params: %zu values, max|diff| %.3g (tol 5e-5), %zu (%.4f%%) beyond 1e-7 (tol 0.1%%)\n", n_all,
           worst, n_far, 100.0 * n_far / n_all);
    CHECK(n_far <= n_all / 1000, "%zu params beyond 1e-7", n_far);
    CHECK(liif_st_count(fp) == s->n_tensors, "golden has %d params", liif_st_count(fp));
    liif_st_close(fp);

    /* ---- step 2 on the same batch */
    double t6 = now();
    if (step_forward(s, a, inp, coord, cell, gt, &err)) { printf("FAIL %s\n", err.msg); return 1; }
    liif_train_zero_grad(s);
    if (step_backward(s, a, &err)) { printf("FAIL %s\n", err.msg); return 1; }
    double t7 = now();
    tu_close("step 2: pred [2,64,3]", a->pred, pred2, (size_t)B * Q * C, 1e-6);
    tu_close("step 2: loss", &a->loss, loss2, 1, 1e-6);
    liif_st_file *f2 = open_golden("train_step2_subset.safetensors");
    printf("step 2 gradients (subset):\n");
    for (int i = 0; i < liif_st_count(f2); i++) {
        const char *name = liif_st_at(f2, i)->name;
        if (strncmp(name, "grad.", 5)) continue;
        const liif_train_tensor *t = liif_train_state_find(s, name + 5);
        size_t n;
        float *want = read_f32(f2, name, &n);
        if (!t || t->numel != n) { CHECK(0, "%s: no such tensor in the state", name); free(want); continue; }
        check_grad(name, s->grads + t->offset, want, n, 1);
        free(want);
    }
    if (step_adam(s, &opt, &err)) { printf("FAIL %s\n", err.msg); return 1; }
    n_far = n_all = 0;
    worst = 0;
    for (int i = 0; i < liif_st_count(f2); i++) {
        const char *name = liif_st_at(f2, i)->name;
        if (!strncmp(name, "grad.", 5)) continue;
        const liif_train_tensor *t = liif_train_state_find(s, name);
        size_t n;
        float *want = read_f32(f2, name, &n);
        if (!t || t->numel != n) { CHECK(0, "%s: no such tensor in the state", name); free(want); continue; }
        double d = tu_maxdiff(s->params + t->offset, want, n);
        printf("  %-44s max|diff| %.3g\n", name, d);
        check_params(name, s->params + t->offset, want, n, &n_far, &worst);
        n_all += n;
        free(want);
    }
    printf("step 2 params (subset): %zu values, max|diff| %.3g, %zu beyond 1e-7\n", n_all, worst, n_far);
    CHECK(n_far <= n_all / 1000, "%zu params beyond 1e-7", n_far);
    CHECK(s->step == 2, "step %lld", (long long)s->step);
    liif_st_close(f2);

    printf("time: forward %.2f s, backward %.2f s, adam %.3f s, step 2 forward+backward %.2f s\n", t1 - t0, t3 - t2,
           t5 - t4, t7 - t6);

    liif_st_close(fin);
    free(inp_nchw); free(norm_nchw); free(inp); free(inp_norm); free(coord); free(cell);
    free(gt); free(gt_norm); free(pred); free(loss); free(pred2); free(loss2);
    liif_train_gpu_free(gpu);
    liif_train_acts_free(a);
    liif_train_state_free(s);
    return tu_finish("train-golden");
}
