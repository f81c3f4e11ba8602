/* emu_module.cpp: the CUDA module's training half (core/cuda/train.cuh, train_gan.cuh) built as host C++ with the
 * emulation headers of this folder, so the GPU training tests run their real kernels and cuBLAS call sequences
 * against the CPU reference on a machine without a GPU. Its kernel sources are the module's own, with each
 * `<<<...>>>` launch rewritten to LAUNCH_EMU (rewrite.pl). Inference ops are absent (NULL): test-cuda needs a GPU. */
#include "common.cuh"
#include "cuda_module.h"
#include "query.cuh"

emu_dim3 blockIdx, threadIdx, blockDim, gridDim;
long emu_live_buffers;

/* What the training code reads of the real backend's struct. */
typedef struct {
    liif_backend base;
    int dev;
    cudaStream_t st;
    cublasHandle_t blas;
} cuda_backend;

static void emu_destroy(liif_backend *be) { free(be); }

static liif_backend *backend_new(char *reason, size_t reason_size)
{
    (void)reason;
    (void)reason_size;
    cuda_backend *cb = (cuda_backend *)calloc(1, sizeof *cb);
    if (!cb) return NULL;
    cb->base.name = "cuda-emulation";
    cb->base.destroy = emu_destroy;
    cb->st = (void *)1;
    cb->blas = (void *)1;
    return &cb->base;
}

static int device_info(char *name, size_t name_size, size_t *free_bytes, size_t *total_bytes)
{
    snprintf(name, name_size, "CUDA emulation on the CPU (serial kernels, NaN-filled allocations, float32 only)");
    *free_bytes = *total_bytes = 0;
    return 0;
}

#include "train.cuh"
#include "train_gan.cuh"

extern "C" __attribute__((visibility("default"))) const liif_cuda_module *liif_cuda_module_entry(void)
{
    static const liif_cuda_module mod = {
        LIIF_CUDA_ABI, sizeof(liif_backend), sizeof(liif_model), sizeof(liif_decode_job),
        backend_new, device_info, NULL, NULL, NULL, NULL, LIIF_CUDA_TRAIN_ENTRIES,
    };
    return &mod;
}
