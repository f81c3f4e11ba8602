/* cuda_runtime.h of the CUDA emulation (tests/cuda-emu): just enough of the CUDA runtime for the kernels of
 * core/cuda/ to compile as host C++ and run in the test process. Device memory is host memory filled with 0xff
 * bytes (NaN as floats), so a kernel that reads what nothing wrote shows it. The device's work runs from a queue
 * when the host waits for it (emu_enqueue, below), in call order. Not a model of memory ordering or timing; races
 * between barriers show only as results that change with the order threads run in (LIIF_EMU_ORDER, below).
 *
 * Two ways to run a kernel (rewrite.pl turns each launch into emu_launch and marks as cooperative the kernels that
 * use __shfl_*, __syncthreads or __shared__, in their own body or through a __device__ helper):
 *  - serial (the rest: grid-stride loops and the block reductions of device helpers written over blockDim): every
 *    block in turn with ONE thread, blockDim 1; a shuffle there has no other lane and returns 0 (a sum adds 0);
 *  - cooperative: every block in turn with its real blockDim threads, each a fiber (ucontext) on its own stack,
 *    switched only at __syncthreads (all live threads of the block) and at warp shuffles (all live lanes of the
 *    warp, real lane exchange), so warp-per-query kernels and shared-memory tiles run as on a GPU. A barrier nobody
 *    can pass is reported and aborts.
 * Blocks run one after another, and between two barriers a cooperative block runs each of its threads in turn up to
 * its next barrier, in the order LIIF_EMU_ORDER names: forward (0, 1, 2, ...; the default), reverse, or
 * shuffle[:SEED] (a new random order each time). A correct kernel gives the same result in every order, up to
 * atomicAdd's rounding; tests/meson.build runs the CUDA tests in all three. */
#pragma once
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <functional>
#include <memory>
#include <tuple>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(...)
#define CUDART_VERSION 13000
typedef struct {
    unsigned x, y, z;
} emu_dim3;
extern emu_dim3 blockIdx, threadIdx, blockDim, gridDim;
extern long emu_live_buffers;

/* The device's work queue. As on a GPU, what a stream is given (kernels, async copies and memsets, cuBLAS calls) runs
 * later, not during the call: here, in call order, when the host waits for it (stream, event or device
 * synchronisation, a synchronous copy or memset, a free) and at no other time. So host code that reads what a queued
 * copy writes, or changes what a queued copy reads, before it waits, reads or sends the wrong bytes here as it would
 * on a GPU. An async copy from pageable host memory reads its source during the call (the driver stages it), one to
 * pageable memory waits for the queue first (it returns when done); page-locked memory (cudaHostAlloc) is read and
 * written when the copy runs. All streams share the one queue, which is one order a GPU may choose. */
void emu_enqueue(std::function<void()> op);
void emu_flush(void);
int emu_pinned(const void *p); /* inside a cudaHostAlloc block */

/* kernel<<<grid, block[, shared, stream]>>>(args) becomes emu_launch(&kernel, grid, block[, shared, stream])(args): the
 * arguments are converted to the kernel's parameter types and copied at the launch, as CUDA does, and the kernel
 * queued. A launch asking for more shared memory than allowed fails at once (cudaGetLastError). */
void emu_register_coop(const void *kernel);
int emu_launch_ok(const void *kernel, size_t shared);
void emu_run(const void *kernel, const std::function<void()> &body, unsigned long grid, unsigned long block,
             size_t shared);
template <class... P> struct emu_launcher {
    void (*kernel)(P...);
    unsigned long grid, block;
    size_t shared;
    void operator()(P... args) const
    {
        if (!emu_launch_ok((const void *)kernel, shared)) return;
        std::tuple<P...> a(args...);
        emu_enqueue([l = *this, a]() {
            emu_run((const void *)l.kernel, std::function<void()>([&]() { std::apply(l.kernel, a); }), l.grid, l.block,
                    l.shared);
        });
    }
};
template <class... P>
static inline emu_launcher<P...> emu_launch(void (*kernel)(P...), unsigned long grid, unsigned long block,
                                            size_t shared = 0, void * = NULL)
{
    return emu_launcher<P...>{kernel, grid, block, shared};
}
/* Dynamic shared memory: rewrite.pl turns `extern __shared__ T name[];` into `T *name = (T *)emu_dynamic_shared();`,
 * the launch's bytes, 0xff-filled for each block. A launch asking for more than 48 KiB fails (cudaGetLastError) unless
 * cudaFuncSetAttribute raised the kernel's limit, at most EMU_MAX_DYNAMIC_SHARED: the opt-in maximum of sm_86 and
 * sm_89 (99 KiB), the smallest of the GPUs the module's tensor-core kernels run on. */
void *emu_dynamic_shared(void);
/* Static shared memory (rewrite.pl): n bytes at p filled with 0xff the first time each block gets here. */
void emu_shared_fresh(void *p, size_t n);
enum { EMU_MAX_DYNAMIC_SHARED = 101376 };
struct emu_coop_reg {
    explicit emu_coop_reg(const void *kernel) { emu_register_coop(kernel); }
};
/* In a cooperative block: wait for every live thread of the block (0) or of the caller's warp (1). */
int emu_coop_active(void);
void emu_barrier(int warp);
extern double emu_lane_slot[1024];

typedef enum {
    cudaSuccess = 0, cudaErrorInvalidValue = 1, cudaErrorMemoryAllocation = 2, cudaErrorInsufficientDriver = 35,
    cudaErrorNoDevice = 100
} cudaError_t;
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
    emu_flush(); /* cudaFree waits for the device */
    if (p) {
        emu_live_buffers--;
        free(p);
    }
    return cudaSuccess;
}
static inline cudaError_t cudaMemcpy(void *d, const void *s, size_t n, cudaMemcpyKind)
{
    emu_flush();
    memcpy(d, s, n);
    return cudaSuccess;
}
static inline void emu_copy_rows(void *d, size_t dp, const void *s, size_t sp, size_t width, size_t height)
{
    for (size_t r = 0; r < height; r++) memcpy((char *)d + r * dp, (const char *)s + r * sp, width);
}
/* height rows of width bytes, pitches dp and sp: queued (see emu_enqueue) as a GPU would run it. */
static inline cudaError_t emu_copy_async(void *d, size_t dp, const void *s, size_t sp, size_t width, size_t height,
                                         cudaMemcpyKind kind)
{
    if (kind == cudaMemcpyDeviceToHost && !emu_pinned(d)) { /* to pageable memory: returns when done */
        emu_flush();
        emu_copy_rows(d, dp, s, sp, width, height);
        return cudaSuccess;
    }
    if (kind == cudaMemcpyHostToDevice && !emu_pinned(s)) { /* from pageable memory: staged now, landed later */
        std::shared_ptr<char> stage((char *)malloc(width * height + 1), free);
        if (!stage) return cudaErrorMemoryAllocation;
        emu_copy_rows(stage.get(), width, s, sp, width, height);
        emu_enqueue([=]() { emu_copy_rows(d, dp, stage.get(), width, width, height); });
        return cudaSuccess;
    }
    emu_enqueue([=]() { emu_copy_rows(d, dp, s, sp, width, height); });
    return cudaSuccess;
}
static inline cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind kind, cudaStream_t)
{
    return emu_copy_async(d, n, s, n, n, 1, kind);
}
static inline cudaError_t cudaMemset(void *d, int v, size_t n)
{
    emu_flush();
    memset(d, v, n);
    return cudaSuccess;
}
static inline cudaError_t cudaMemsetAsync(void *d, int v, size_t n, cudaStream_t)
{
    emu_enqueue([=]() { memset(d, v, n); });
    return cudaSuccess;
}
static inline cudaError_t cudaStreamSynchronize(cudaStream_t) { emu_flush(); return cudaSuccess; }
static inline cudaError_t cudaDeviceSynchronize(void) { emu_flush(); return cudaSuccess; }
extern cudaError_t emu_last_error; /* a failed launch's, until cudaGetLastError reads it */
static inline cudaError_t cudaGetLastError(void)
{
    cudaError_t e = emu_last_error;
    emu_last_error = cudaSuccess;
    return e;
}
typedef enum { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 } cudaFuncAttribute;
cudaError_t emu_func_set_dynamic_shared(const void *kernel, int bytes);
template <class T> static inline cudaError_t cudaFuncSetAttribute(T *kernel, cudaFuncAttribute, int value)
{
    return emu_func_set_dynamic_shared((const void *)kernel, value);
}
static inline const char *cudaGetErrorString(cudaError_t) { return "CUDA emulation error"; }
static inline cudaError_t cudaSetDevice(int) { return cudaSuccess; }
static inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned) { *s = (void *)1; return cudaSuccess; }
static inline cudaError_t cudaStreamDestroy(cudaStream_t) { emu_flush(); return cudaSuccess; }
static inline cudaError_t cudaEventCreate(cudaEvent_t *e) { *e = (void *)1; return cudaSuccess; }
enum { cudaEventDisableTiming = 2, cudaHostAllocDefault = 0 };
static inline cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned) { *e = (void *)1; return cudaSuccess; }
/* Page-locked host memory: NaN-filled like device memory, so a row read before a copy wrote it shows; async copies
 * to and from it run when the queue does (emu_enqueue). */
void emu_pin(const void *p, size_t n, int on);
static inline cudaError_t cudaHostAlloc(void **pp, size_t n, unsigned)
{
    void *p = malloc(n ? n : 1);
    if (!p) return cudaErrorMemoryAllocation;
    memset(p, 0xff, n);
    emu_pin(p, n ? n : 1, 1);
    *pp = p;
    return cudaSuccess;
}
static inline cudaError_t cudaFreeHost(void *p)
{
    emu_flush(); /* waits for the device, as cudaFreeHost does */
    if (p) emu_pin(p, 0, 0);
    free(p);
    return cudaSuccess;
}
static inline cudaError_t cudaEventDestroy(cudaEvent_t) { return cudaSuccess; }
static inline cudaError_t cudaEventRecord(cudaEvent_t, cudaStream_t) { return cudaSuccess; }
static inline cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t, cudaEvent_t) { *ms = 0; return cudaSuccess; }

/* Round to TF32 (10 fraction bits), to nearest with ties away from zero, as cvt.rna.tf32.f32: the tensor-core
 * kernels' operands (mma.h's __float_to_tf32) and cuBLAS's in TF32 math mode (cublas_v2.h). */
static inline float emu_tf32(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;
    memcpy(&f, &u, 4);
    return f;
}

/* Round-to-nearest intrinsics: the host's IEEE arithmetic (built with -ffp-contract=off, as the module is). */
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline float __fsqrt_rn(float a) { return sqrtf(a); }
static inline double __dadd_rn(double a, double b) { return a + b; }
static inline double __dmul_rn(double a, double b) { return a * b; }
static inline double __ddiv_rn(double a, double b) { return a / b; }
/* Shuffles: in a cooperative block a real exchange among the warp's lanes (width 32); serially (one thread) there is
 * no other lane and the result is 0, which a reduction adds harmlessly. */
template <class T> static inline T emu_shfl(T v, int mode, int arg)
{
    if (!emu_coop_active()) return (T)0;
    unsigned t = threadIdx.x, lane = t & 31u, base = t & ~31u, src = lane;
    if (mode == 0) src = lane ^ (unsigned)arg;                 /* xor */
    else if (mode == 1) src = lane + (unsigned)arg;            /* down: past the warp keeps its own */
    else src = (unsigned)arg & 31u;                            /* index */
    emu_lane_slot[t] = (double)v;
    emu_barrier(1);
    T r = (src < 32 && base + src < blockDim.x) ? (T)emu_lane_slot[base + src] : v;
    emu_barrier(1); /* nobody overwrites a slot before every lane has read */
    return r;
}
static inline double __shfl_down_sync(unsigned, double v, int d) { return emu_shfl(v, 1, d); }
static inline float __shfl_down_sync(unsigned, float v, int d) { return emu_shfl(v, 1, d); }
static inline float __shfl_xor_sync(unsigned, float v, int m) { return emu_shfl(v, 0, m); }
static inline double __shfl_xor_sync(unsigned, double v, int m) { return emu_shfl(v, 0, m); }
static inline float __shfl_sync(unsigned, float v, int l) { return emu_shfl(v, 2, l); }
static inline void __syncthreads(void)
{
    if (emu_coop_active()) emu_barrier(0);
}
static inline void __syncwarp(unsigned = 0xffffffffu)
{
    if (emu_coop_active()) emu_barrier(1);
}
static inline double atomicAdd(double *p, double v) { double o = *p; *p += v; return o; }
static inline float atomicAdd(float *p, float v) { float o = *p; *p += v; return o; }

/* Device queries: one emulated device. */
typedef struct {
    char name[256];
    int major, minor, multiProcessorCount;
    size_t totalGlobalMem;
} cudaDeviceProp;
static inline cudaError_t cudaGetDeviceCount(int *n) { *n = 1; return cudaSuccess; }
static inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int)
{
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "CUDA emulation on the CPU");
    p->major = 9; /* the module's sm_80+ kernels (wmma) run: see mma.h */
    p->multiProcessorCount = 1;
    p->totalGlobalMem = (size_t)1 << 30;
    return cudaSuccess;
}
static inline cudaError_t cudaMemGetInfo(size_t *free_b, size_t *total_b)
{
    *free_b = *total_b = (size_t)1 << 30; /* 1 GiB: the engine's tiles and query batches stay test-sized */
    return cudaSuccess;
}
static inline cudaError_t cudaMemcpy2DAsync(void *d, size_t dpitch, const void *s, size_t spitch, size_t width,
                                            size_t height, cudaMemcpyKind kind, cudaStream_t)
{
    if (width > dpitch || width > spitch) return cudaErrorInvalidValue;
    return emu_copy_async(d, dpitch, s, spitch, width, height, kind);
}
static inline cudaError_t cudaEventSynchronize(cudaEvent_t) { emu_flush(); return cudaSuccess; }
