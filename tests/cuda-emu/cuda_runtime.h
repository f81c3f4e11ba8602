/* cuda_runtime.h of the CUDA emulation (tests/cuda-emu): just enough of the CUDA runtime for the training kernels
 * of core/cuda/ to compile as host C++ and run serially, one thread per block, in the test process. Device memory
 * is host memory filled with 0xff bytes (NaN as floats), so a kernel that reads what nothing wrote shows it.
 * Streams and events do nothing: everything runs in call order. Not a model of races, warps or timing. */
#pragma once
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
typedef struct {
    unsigned x, y, z;
} emu_dim3;
extern emu_dim3 blockIdx, threadIdx, blockDim, gridDim;
extern long emu_live_buffers;

/* kernel<<<grid, block, shared, stream>>>(args) is rewritten to LAUNCH_EMU(grid, ...) kernel(args): every block in
 * turn, with one thread. Kernels are grid-stride loops and block reductions over blockDim, so one thread covers all. */
#define LAUNCH_EMU(g, ...)                                                                                        \
    for (gridDim.x = (unsigned)(g), blockDim.x = 1, threadIdx.x = 0, blockIdx.x = 0; blockIdx.x < gridDim.x;    \
         blockIdx.x++)

typedef enum { cudaSuccess = 0, cudaErrorInvalidValue = 1, cudaErrorMemoryAllocation = 2 } cudaError_t;
typedef void *cudaStream_t;
typedef void *cudaEvent_t;
enum { cudaStreamNonBlocking = 1 };
typedef enum { cudaMemcpyHostToDevice = 1, cudaMemcpyDeviceToHost = 2, cudaMemcpyDeviceToDevice = 3 } cudaMemcpyKind;

static inline cudaError_t cudaMalloc(void *pp, size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) return cudaErrorMemoryAllocation;
    memset(p, 0xff, n);
    *(void **)pp = p;
    emu_live_buffers++;
    return cudaSuccess;
}
template <class T> static inline cudaError_t cudaMalloc(T **pp, size_t n) { return cudaMalloc((void *)pp, n); }
static inline cudaError_t cudaFree(void *p)
{
    if (p) {
        emu_live_buffers--;
        free(p);
    }
    return cudaSuccess;
}
static inline cudaError_t cudaMemcpy(void *d, const void *s, size_t n, cudaMemcpyKind) { memcpy(d, s, n); return cudaSuccess; }
static inline cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind, cudaStream_t)
{
    memcpy(d, s, n);
    return cudaSuccess;
}
static inline cudaError_t cudaMemset(void *d, int v, size_t n) { memset(d, v, n); return cudaSuccess; }
static inline cudaError_t cudaMemsetAsync(void *d, int v, size_t n, cudaStream_t) { memset(d, v, n); return cudaSuccess; }
static inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
static inline cudaError_t cudaDeviceSynchronize(void) { return cudaSuccess; }
static inline cudaError_t cudaGetLastError(void) { return cudaSuccess; }
static inline const char *cudaGetErrorString(cudaError_t) { return "CUDA emulation error"; }
static inline cudaError_t cudaSetDevice(int) { return cudaSuccess; }
static inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned) { *s = (void *)1; return cudaSuccess; }
static inline cudaError_t cudaStreamDestroy(cudaStream_t) { return cudaSuccess; }
static inline cudaError_t cudaEventCreate(cudaEvent_t *e) { *e = (void *)1; return cudaSuccess; }
static inline cudaError_t cudaEventDestroy(cudaEvent_t) { return cudaSuccess; }
static inline cudaError_t cudaEventRecord(cudaEvent_t, cudaStream_t) { return cudaSuccess; }
static inline cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t, cudaEvent_t) { *ms = 0; return cudaSuccess; }

/* Round-to-nearest intrinsics: the host's IEEE arithmetic (built with -ffp-contract=off, as the module is). */
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline float __fsqrt_rn(float a) { return sqrtf(a); }
static inline double __dadd_rn(double a, double b) { return a + b; }
static inline double __dmul_rn(double a, double b) { return a * b; }
static inline double __ddiv_rn(double a, double b) { return a / b; }
/* One thread per block: a shuffle has no other lane to read; reductions that add it add 0. */
static inline double __shfl_down_sync(unsigned, double, int) { return 0.0; }
static inline float __shfl_down_sync(unsigned, float, int) { return 0.0f; }
static inline float __shfl_xor_sync(unsigned, float, int) { return 0.0f; }
static inline void __syncthreads(void) {}
static inline double atomicAdd(double *p, double v) { double o = *p; *p += v; return o; }
static inline float atomicAdd(float *p, float v) { float o = *p; *p += v; return o; }
