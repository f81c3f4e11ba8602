/* ops.cuh: single ops on host arrays for tests and benchmarks (tests/test_cuda.c), running the backend's kernels. */
#ifndef LIIF_CUDA_OPS_CUH
#define LIIF_CUDA_OPS_CUH

/* Device copies of host arrays, freed together. */
typedef struct {
    void *p[8];
    int n;
} dscratch;

static cudaError_t scratch_put(dscratch *s, const void *host, size_t bytes, float **dev)
{
    *dev = NULL;
    if (!host && bytes == 0) return cudaSuccess;
    cudaError_t e = cudaMalloc((void **)dev, bytes ? bytes : 4);
    if (e != cudaSuccess) return e;
    s->p[s->n++] = *dev;
    return host ? cudaMemcpy(*dev, host, bytes, cudaMemcpyHostToDevice) : cudaSuccess;
}

static void scratch_free(dscratch *s)
{
    for (int i = 0; i < s->n; i++) cudaFree(s->p[i]);
    s->n = 0;
}

#define SCRATCH_TRY(call, what)                                                       \
    do {                                                                              \
        cudaError_t e_ = (call);                                                      \
        if (e_ != cudaSuccess) {                                                      \
            scratch_free(&s);                                                         \
            return cu_error(err, LIIF_ERR_UNSUPPORTED, "CUDA: %s: %s", what, cudaGetErrorString(e_)); \
        }                                                                             \
    } while (0)

static liif_status op_conv3x3(liif_backend *be, const float *in, int h, int w, int cin, const float *weight,
                              const float *bias, const float *res, int relu, int cout, float *out, int fast,
                              liif_error *err)
{
    cuda_backend *cb = (cuda_backend *)be;
    size_t np = (size_t)h * w, kk = 9 * (size_t)cin;
    float *wp = (float *)malloc(kk * cout * sizeof(float));
    if (!wp) return cu_error(err, LIIF_ERR_NOMEM, "out of memory");
    permute_conv(weight, cout, cin, (int)kk, wp, (int)kk);
    liif_status st = begin(cb, fast & ~LIIF_CUDA_OP_IM2COL, err);
    if (st) { free(wp); return st; }
    if (fast & LIIF_CUDA_OP_IM2COL) cb->igemm = 0;
    dscratch s = {{0}, 0};
    float *d_in, *d_w, *d_b, *d_res, *d_out, *d_col;
    cudaError_t e = scratch_put(&s, in, np * cin * sizeof(float), &d_in);
    if (!e) e = scratch_put(&s, wp, kk * cout * sizeof(float), &d_w);
    free(wp);
    if (!e) e = scratch_put(&s, bias, bias ? cout * sizeof(float) : 0, &d_b);
    if (!e) e = scratch_put(&s, res, res ? np * cout * sizeof(float) : 0, &d_res);
    if (!e) e = scratch_put(&s, NULL, np * cout * sizeof(float), &d_out);
    /* a small im2col buffer, so that the test crosses chunk boundaries */
    size_t col_px = np > 97 ? 97 : np;
    if (!e) e = scratch_put(&s, NULL, col_px * kk * sizeof(float), &d_col);
    SCRATCH_TRY(e, "conv3x3 op buffers");
    st = conv_run(cb->st, cb->blas, bf16_scratch(cb), cb->igemm, d_in, h, w, cin, 3, d_w, (int)kk, d_b, d_res, relu,
                  cout, d_out, d_col, col_px, err);
    if (!st) SCRATCH_TRY(cudaMemcpyAsync(out, d_out, np * cout * sizeof(float), cudaMemcpyDeviceToHost, cb->st), "conv3x3 op");
    if (!st) SCRATCH_TRY(cudaStreamSynchronize(cb->st), "conv3x3 op");
    scratch_free(&s);
    return st;
}

static liif_status op_linear(liif_backend *be, const float *x, int rows, int k, const float *weight,
                             const float *bias, int relu, int n, float *y, int fast, liif_error *err)
{
    cuda_backend *cb = (cuda_backend *)be;
    liif_status st = begin(cb, fast, err);
    if (st) return st;
    dscratch s = {{0}, 0};
    float *d_x, *d_w, *d_b, *d_y;
    cudaError_t e = scratch_put(&s, x, (size_t)rows * k * sizeof(float), &d_x);
    if (!e) e = scratch_put(&s, weight, (size_t)n * k * sizeof(float), &d_w);
    if (!e) e = scratch_put(&s, bias, (size_t)n * sizeof(float), &d_b);
    if (!e) e = scratch_put(&s, NULL, (size_t)rows * n * sizeof(float), &d_y);
    SCRATCH_TRY(e, "linear op buffers");
    dlayer ly = {d_w, d_b};
    st = linear_run(cb, rows, k, d_x, NULL, &ly, n, relu, d_y, NULL, err);
    if (!st) SCRATCH_TRY(cudaMemcpyAsync(y, d_y, (size_t)rows * n * sizeof(float), cudaMemcpyDeviceToHost, cb->st), "linear op");
    if (!st) SCRATCH_TRY(cudaStreamSynchronize(cb->st), "linear op");
    scratch_free(&s);
    return st;
}

static liif_status op_geometry(liif_backend *be, const liif_config *c, const liif_decode_job *job, int *lat,
                               float *extra, float *weight, liif_error *err)
{
    cuda_backend *cb = (cuda_backend *)be;
    size_t R = (size_t)job->rows * job->cols * (c->local_ensemble ? 4 : 1);
    liif_status st = begin(cb, 0, err);
    if (!st) st = run_geometry(cb, c, job, err);
    if (st) return st;
    CU_TRY(cudaMemcpyAsync(lat, cb->lat.p, R * sizeof(int), cudaMemcpyDeviceToHost, cb->st), "geometry op");
    CU_TRY(cudaMemcpyAsync(extra, cb->extra.p, 4 * R * sizeof(float), cudaMemcpyDeviceToHost, cb->st), "geometry op");
    CU_TRY(cudaMemcpyAsync(weight, cb->weight.p, R * sizeof(float), cudaMemcpyDeviceToHost, cb->st), "geometry op");
    return finish(cb, "geometry op", err);
}

/* Best of reps timed runs (after one warm-up) of y (M, N) = x (M, K) @ w^T (N, K), in GFLOP/s. */
static double sgemm_gflops(liif_backend *be, int M, int N, int K, int fast, int reps)
{
    cuda_backend *cb = (cuda_backend *)be;
    liif_error e0, *err = &e0;
    if (begin(cb, fast, err)) return -1;
    float *x = NULL, *w = NULL, *y = NULL;
    cudaEvent_t t0 = NULL, t1 = NULL;
    double best = -1;
    if (cudaMalloc((void **)&x, (size_t)M * K * 4) == cudaSuccess && cudaMalloc((void **)&w, (size_t)N * K * 4) == cudaSuccess &&
        cudaMalloc((void **)&y, (size_t)M * N * 4) == cudaSuccess && cudaMemsetAsync(x, 0, (size_t)M * K * 4, cb->st) == cudaSuccess &&
        cudaMemsetAsync(w, 0, (size_t)N * K * 4, cb->st) == cudaSuccess && cudaEventCreate(&t0) == cudaSuccess &&
        cudaEventCreate(&t1) == cudaSuccess) {
        for (int r = 0; r <= reps; r++) {
            cudaEventRecord(t0, cb->st);
            const float one = 1.0f, zero = 0.0f; /* bf16: the GEMM alone, on operands already in bf16 */
            cublasStatus_t bs = fast == LIIF_MATH_BF16
                ? cublasGemmEx(cb->blas, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &one, w, CUDA_R_16BF, K, x, CUDA_R_16BF, K,
                               &zero, y, CUDA_R_32F, N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT)
                : gemm_rows(cb->blas, M, N, K, x, K, w, K, y);
            if (bs != CUBLAS_STATUS_SUCCESS) { best = -1; break; }
            cudaEventRecord(t1, cb->st);
            if (cudaEventSynchronize(t1) != cudaSuccess) { best = -1; break; }
            float ms = 0;
            cudaEventElapsedTime(&ms, t0, t1);
            double g = 2.0 * M * N * K / (ms * 1e-3) / 1e9;
            if (r > 0 && g > best) best = g;
        }
    }
    (void)cudaGetLastError();
    if (t0) cudaEventDestroy(t0);
    if (t1) cudaEventDestroy(t1);
    cudaFree(x); cudaFree(w); cudaFree(y);
    return best;
}

#endif
